package httpapi

// Exported for the tests of package httpapi_test, which can use apitest
// (apitest imports httpapi, so httpapi's own tests cannot).
var (
	CheckStrictJSON  = checkStrictJSON
	ErrTooManyValues = errTooManyValues
)

const (
	MaxJSONDepth  = maxJSONDepth
	MaxJSONValues = maxJSONValues
)
