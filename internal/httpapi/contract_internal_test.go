package httpapi

import (
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

// TestNewContract_RefusesUnknownPermissions: a permission name the contract
// does not define, scopes on the bearer scheme, or permissions on a public
// operation stop the server from starting.
func TestNewContract_RefusesUnknownPermissions(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		edit func(t *testing.T, c *contractDoc)
		want string
	}{
		"unknown name": {func(t *testing.T, c *contractDoc) {
			c.op(t, "/api/v1/users", "GET").Extensions["x-permissions"] = []any{"users:raed"}
		}, `unknown permission users:raed`},
		"not a list": {func(t *testing.T, c *contractDoc) {
			c.op(t, "/api/v1/users", "GET").Extensions["x-permissions"] = "users:read"
		}, "must be a list"},
		"empty list": {func(t *testing.T, c *contractDoc) {
			c.op(t, "/api/v1/users", "GET").Extensions["x-permissions"] = []any{}
		}, "is empty"},
		"scopes on bearerAuth": {func(t *testing.T, c *contractDoc) {
			op := c.op(t, "/api/v1/users", "GET")
			(*op.Security)[0]["bearerAuth"] = []string{"users:read"}
		}, "write them as x-permissions"},
		"permissions on a public operation": {func(t *testing.T, c *contractDoc) {
			c.op(t, "/api/v1/auth/login", "POST").Extensions["x-permissions"] = []any{"users:read"}
		}, "is public but declares x-permissions"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			doc, err := LoadSpec()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := newContract(doc, nil, 1<<20); err != nil {
				t.Fatalf("the contract as written: %v", err)
			}
			tc.edit(t, &contractDoc{doc})
			_, err = newContract(doc, nil, 1<<20)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

type contractDoc struct{ *openapi3.T }

func (c *contractDoc) op(t *testing.T, path, method string) *openapi3.Operation {
	t.Helper()
	item := c.Paths.Value(path)
	if item == nil || item.GetOperation(method) == nil {
		t.Fatalf("no operation %s %s", method, path)
	}
	op := item.GetOperation(method)
	if op.Extensions == nil {
		op.Extensions = map[string]any{}
	}
	return op
}
