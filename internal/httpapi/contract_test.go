package httpapi_test

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/google/uuid"

	"github.com/gatehouse/gatehouse/internal/apitest"
	"github.com/gatehouse/gatehouse/internal/httpapi"
)

// TestContract_EveryOperationEnforcesItsDeclaredSecurity walks the contract:
// each protected operation refuses a missing, invalid or uncheckable token,
// and one that declares permissions refuses a caller without them. A new
// operation is covered the moment it enters the spec.
func TestContract_EveryOperationEnforcesItsDeclaredSecurity(t *testing.T) {
	t.Parallel()
	s := apitest.NewServer(t, apitest.Options{})
	plain := s.NewUser().Tokens.AccessToken
	admin := s.NewAdmin().Tokens.AccessToken
	doc, err := httpapi.LoadSpec()
	if err != nil {
		t.Fatal(err)
	}
	param := regexp.MustCompile(`\{[^}]+\}`)
	ops := 0
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			ops++
			if op.Security == nil {
				t.Errorf("%s %s declares no security", method, path)
				continue
			}
			url := param.ReplaceAllString(path, uuid.NewString())
			body, ct := "", ""
			if op.RequestBody != nil {
				body, ct = "{}", "application/json"
			}
			public := len(*op.Security) == 0
			var scopes []string
			for _, req := range *op.Security {
				if len(req["bearerAuth"]) > 0 {
					t.Errorf("%s %s lists bearerAuth scopes: OpenAPI 3.0 allows them only for OAuth2", method, path)
				}
			}
			if raw, ok := op.Extensions["x-permissions"].([]any); ok {
				for _, p := range raw {
					scopes = append(scopes, p.(string))
				}
			}
			mfa, _ := op.Extensions["x-mfa"].(string)
			switch mfa {
			case "", "always", "if-enrolled":
			default:
				t.Errorf("%s %s: x-mfa %q", method, path, mfa)
			}
			if mfa != "" && public {
				t.Errorf("%s %s is public but declares x-mfa", method, path)
			}
			t.Run(op.OperationID, func(t *testing.T) {
				res, b := send(t, s, method, url, "", ct, body)
				if public {
					if res.StatusCode == http.StatusUnauthorized || res.StatusCode == http.StatusForbidden {
						t.Fatalf("public operation answered %d without a token: %s", res.StatusCode, b)
					}
					return
				}
				if res.StatusCode != http.StatusUnauthorized || decodeProblem(t, b).Code != "unauthorized" {
					t.Fatalf("no token: got %d %s, want 401 unauthorized", res.StatusCode, b)
				}
				if res.Header.Get("WWW-Authenticate") == "" {
					t.Error("401 without WWW-Authenticate")
				}
				res, b = send(t, s, method, url, "forged", ct, body)
				if res.StatusCode != http.StatusUnauthorized || decodeProblem(t, b).Code != "invalid_token" {
					t.Fatalf("bad token: got %d %s, want 401 invalid_token", res.StatusCode, b)
				}
				userToken := plain
				if strings.HasPrefix(path, "/api/v1/auth/logout") {
					userToken = s.NewUser().Tokens.AccessToken // logging out ends it
				}
				res, b = send(t, s, method, url, userToken, ct, body)
				if len(scopes) > 0 {
					if res.StatusCode != http.StatusForbidden || decodeProblem(t, b).Code != "forbidden" {
						t.Fatalf("token without %v: got %d %s, want 403 forbidden", scopes, res.StatusCode, b)
					}
				} else if mfa == "always" {
					// Neither user has MFA: their sessions are single-factor.
					if res.StatusCode != http.StatusForbidden || decodeProblem(t, b).Code != "mfa_required" {
						t.Fatalf("single-factor token on an x-mfa: always operation: got %d %s, want 403 mfa_required", res.StatusCode, b)
					}
					return
				} else if res.StatusCode == http.StatusUnauthorized || res.StatusCode == http.StatusForbidden {
					t.Fatalf("self-service operation refused a valid token: %d %s", res.StatusCode, b)
				}
				if method == http.MethodPost && strings.HasPrefix(path, "/api/v1/auth/logout") {
					return // would end the admin's session for the operations after it
				}
				res, b = send(t, s, method, url, admin, ct, body)
				if res.StatusCode == http.StatusUnauthorized || res.StatusCode == http.StatusForbidden {
					t.Fatalf("token holding %v refused: %d %s", scopes, res.StatusCode, b)
				}
			})
		}
	}
	if ops < 29 {
		t.Fatalf("walked %d operations, the v1 contract has at least 29", ops)
	}
}

// TestContract_UncheckableTokenFailsClosed: when the authenticator cannot
// decide, every protected operation answers 503, never 200.
func TestContract_UncheckableTokenFailsClosed(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	for _, path := range []string{"/api/v1/users/me", "/api/v1/users", "/api/v1/roles"} {
		res, b := send(t, s, http.MethodGet, path, "unavailable", "", "")
		if res.StatusCode != http.StatusServiceUnavailable || decodeProblem(t, b).Code != "service_unavailable" || res.Header.Get("Retry-After") == "" {
			t.Fatalf("%s: got %d %s, want 503 with Retry-After", path, res.StatusCode, b)
		}
	}
}

// TestContract_AuthenticationComesBeforeValidation: an anonymous caller
// learns nothing about a protected operation's schema.
func TestContract_AuthenticationComesBeforeValidation(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	res, b := send(t, s, http.MethodPatch, "/api/v1/users/me", "", "application/json", `{"bogus": 1}`)
	if res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("got %d %s, want 401", res.StatusCode, b)
	}
}

// TestContract_PermissionEnumIsWhatTheMigrationsSeed: the names the server
// accepts in x-permissions (the spec's Permission enum) are exactly the
// permissions the database knows, which the admin role holds all of.
func TestContract_PermissionEnumIsWhatTheMigrationsSeed(t *testing.T) {
	t.Parallel()
	s := apitest.NewServer(t, apitest.Options{})
	admin := s.NewAdmin()
	res, err := admin.Client.ListRolesWithResponse(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if res.JSON200 == nil {
		t.Fatalf("list roles: %v %s", err, res.Body)
	}
	var seeded []string
	for _, r := range res.JSON200.Data {
		if r.Name == "admin" {
			for _, p := range r.Permissions {
				seeded = append(seeded, string(p))
			}
		}
	}
	doc, err := httpapi.LoadSpec()
	if err != nil {
		t.Fatal(err)
	}
	var enum []string
	for _, v := range doc.Components.Schemas["Permission"].Value.Enum {
		enum = append(enum, v.(string))
	}
	slices.Sort(seeded)
	slices.Sort(enum)
	if !slices.Equal(seeded, enum) {
		t.Fatalf("the migrations seed %v, the contract's Permission enum lists %v", seeded, enum)
	}
}

// TestContract_RequestBodiesFitTheJSONLimits: the body limits of the strict
// JSON check (nesting depth, number of values, key length) must leave room for the
// largest body every operation accepts, so that they only ever refuse what
// no schema would take. A schema that has no bound (an array without
// maxItems, an object open to any key) fails here and needs a decision.
func TestContract_RequestBodiesFitTheJSONLimits(t *testing.T) {
	t.Parallel()
	doc, err := httpapi.LoadSpec()
	if err != nil {
		t.Fatal(err)
	}
	bodies := 0
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			if op.RequestBody == nil || op.RequestBody.Value == nil {
				continue
			}
			mt := op.RequestBody.Value.Content.Get("application/json")
			if mt == nil {
				continue
			}
			bodies++
			depth, values, err := bounds(mt.Schema)
			if err != nil {
				t.Errorf("%s %s: %v", method, path, err)
				continue
			}
			limit := httpapi.MaxJSONValues
			if v, ok := op.Extensions["x-max-json-values"].(float64); ok {
				limit = int(v) // an operation that takes more says so
			}
			if depth > httpapi.MaxJSONDepth || values > limit {
				t.Errorf("%s %s accepts bodies %d deep with %d values, beyond the limits (%d, %d)",
					method, path, depth, values, httpapi.MaxJSONDepth, limit)
			}
		}
	}
	if bodies == 0 {
		t.Fatal("no operation with a JSON body: the walk is broken")
	}
}

// bounds returns the deepest nesting and the most values a value of the
// schema can hold.
func bounds(ref *openapi3.SchemaRef) (depth, values int, err error) {
	s := ref.Value
	if len(s.AllOf)+len(s.AnyOf)+len(s.OneOf) > 0 || s.Not != nil {
		return 0, 0, errors.New("composed schemas are not handled by this test; extend it")
	}
	switch {
	case s.Type.Is("object"):
		if s.AdditionalProperties.Has == nil || *s.AdditionalProperties.Has || s.AdditionalProperties.Schema != nil {
			return 0, 0, errors.New("an object open to unknown keys has no bound")
		}
		values = 1
		for name, p := range s.Properties {
			if len(strconv.Quote(name)) > httpapi.MaxJSONKeyBytes {
				return 0, 0, fmt.Errorf("the field %q is longer than a key may be", name)
			}
			d, v, err := bounds(p)
			if err != nil {
				return 0, 0, fmt.Errorf("%s: %w", name, err)
			}
			depth, values = max(depth, d), values+v
		}
		return depth + 1, values, nil
	case s.Type.Is("array"):
		if s.MaxItems == nil {
			return 0, 0, errors.New("an array without maxItems has no bound")
		}
		d, v, err := bounds(s.Items)
		if err != nil {
			return 0, 0, fmt.Errorf("items: %w", err)
		}
		return d + 1, 1 + int(*s.MaxItems)*v, nil //nolint:gosec // G115: the spec's maxItems are small
	}
	return 0, 1, nil
}
