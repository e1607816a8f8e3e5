package httpapi

import (
	"errors"

	api "github.com/gatehouse/gatehouse/gen/api"
)

// Exported for the tests of package httpapi_test, which can use apitest
// (apitest imports httpapi, so httpapi's own tests cannot).
// CheckStrictJSON checks a body under the limits of most operations.
func CheckStrictJSON(body []byte) error { return checkStrictJSON(body, maxJSONValues) }

const (
	MaxJSONDepth    = maxJSONDepth
	MaxJSONValues   = maxJSONValues
	MaxJSONKeyBytes = maxJSONKeyBytes
)

// BeyondLimit returns the field error code of a body past a structure limit,
// or "".
func BeyondLimit(err error) string {
	var e *beyondLimitError
	if errors.As(err, &e) {
		return e.code
	}
	return ""
}

// ProblemTitle is the title the server sends with a problem code.
func ProblemTitle(code string) string { return problemTitle(api.ProblemCode(code), 0) }
