package httpapi_test

import "testing"

// must fails the test when a call returns an error (the request could not
// be sent, or its answer could not be read) and gives its result otherwise:
// `r := must(c.GetMeWithResponse(ctx))(t)`. Discarding the error instead
// would leave r nil and panic on its first use, hiding the cause.
func must[T any](v T, err error) func(testing.TB) T {
	return func(t testing.TB) T {
		t.Helper()
		if err != nil {
			t.Fatalf("request: %v", err)
		}
		return v
	}
}
