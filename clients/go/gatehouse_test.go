package gatehouse_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	openapi_types "github.com/oapi-codegen/runtime/types"

	"github.com/gatehouse/gatehouse/api"
	gatehouse "github.com/gatehouse/gatehouse/clients/go"
	"github.com/gatehouse/gatehouse/gen/client"
	"github.com/gatehouse/gatehouse/internal/apitest"
)

func TestBearer_AuthenticatesOneCallOrEveryCall(t *testing.T) {
	t.Parallel()
	s := apitest.NewServer(t, apitest.Options{})
	u := s.NewUser()
	ctx := context.Background()

	c, err := gatehouse.New(s.URL, client.WithHTTPClient(s.HTTP))
	if err != nil {
		t.Fatal(err)
	}
	if r, err := c.GetMeWithResponse(ctx, gatehouse.Bearer(u.Tokens.AccessToken)); err != nil || r.JSON200 == nil {
		t.Fatalf("one call with Bearer: %v %d", err, r.StatusCode())
	}
	all := apitest.Must(gatehouse.New(s.URL, client.WithHTTPClient(s.HTTP), gatehouse.WithBearer(u.Tokens.AccessToken)))(t)
	if r, err := all.ListMySessionsWithResponse(ctx, nil); err != nil || r.JSON200 == nil {
		t.Fatalf("client-wide bearer: %v %d", err, r.StatusCode())
	}
	calls := 0
	src := apitest.Must(gatehouse.New(s.URL, client.WithHTTPClient(s.HTTP), gatehouse.WithTokenSource(func(context.Context) (string, error) {
		calls++
		return u.Tokens.AccessToken, nil
	})))(t)
	if r, err := src.GetMeWithResponse(ctx); err != nil || r.JSON200 == nil || calls != 1 {
		t.Fatalf("token source: %v %d, %d calls", err, r.StatusCode(), calls)
	}
	failing := apitest.Must(gatehouse.New(s.URL, client.WithHTTPClient(s.HTTP), gatehouse.WithTokenSource(func(context.Context) (string, error) {
		return "", errors.New("logged out")
	})))(t)
	if _, err := failing.GetMeWithResponse(ctx); err == nil || !strings.Contains(err.Error(), "logged out") {
		t.Fatalf("a failing token source sent the request: %v", err)
	}
}

func TestProblemOf_ReadsTheProblemOfAnyResponse(t *testing.T) {
	t.Parallel()
	s := apitest.NewServer(t, apitest.Options{})
	admin := s.NewAdmin()
	user := s.NewUser()
	ctx := context.Background()

	anon := apitest.Must(s.Client.GetMeWithResponse(ctx))(t)
	forbidden := apitest.Must(user.Client.ListUsersWithResponse(ctx, nil))(t)
	taken := apitest.Must(admin.Client.CreateUserWithResponse(ctx, client.CreateUserJSONRequestBody{Email: openapi_types.Email(user.Email), Password: apitest.Password}))(t)
	rejected := apitest.Must(admin.Client.CreateUserWithResponse(ctx, client.CreateUserJSONRequestBody{Email: openapi_types.Email(apitest.NewEmail("weak")), Password: "password"}))(t)
	for _, tc := range []struct {
		res    any
		status int
		code   client.ProblemCode
	}{
		{anon, 401, client.ProblemCodeUnauthorized},
		{forbidden, 403, client.ProblemCodeForbidden},
		{taken, 409, client.ProblemCodeEmailTaken},
		{rejected, 422, client.ProblemCodePasswordRejected},
	} {
		p, ok := gatehouse.ProblemOf(tc.res)
		if !ok || p.Code != tc.code || p.Status != tc.status || p.RequestId == "" {
			t.Errorf("%T: %v %+v, want %d %s", tc.res, ok, p, tc.status, tc.code)
		}
		var pe *gatehouse.ProblemError
		if err := gatehouse.Check(tc.res, nil); !errors.As(err, &pe) || pe.Problem.Code != tc.code {
			t.Errorf("%T: Check gave %v", tc.res, err)
		}
	}
	if p, ok := gatehouse.ProblemOf(rejected); !ok || p.Errors == nil || len(*p.Errors) == 0 {
		t.Errorf("the field errors of a 422 are lost: %+v", p)
	}
	me := apitest.Must(admin.Client.GetMeWithResponse(ctx))(t)
	if p, ok := gatehouse.ProblemOf(me); ok || p != nil || gatehouse.Check(me, nil) != nil {
		t.Errorf("a success read as a problem: %+v", p)
	}
	if _, ok := gatehouse.ProblemOf(nil); ok {
		t.Error("nil read as a problem")
	}
}

func TestNew_TakesTheBaseURLFromTheContractWhenAbsolute(t *testing.T) {
	t.Parallel()
	// The contract's first server, read here without the package's help.
	_, rest, _ := strings.Cut(string(api.OpenAPIYAML), "\nservers:\n  - url: ")
	first, _, _ := strings.Cut(rest, "\n")
	u, ok := gatehouse.ServerURL()
	c, err := gatehouse.New("")
	if strings.HasPrefix(first, "http://") || strings.HasPrefix(first, "https://") {
		if !ok || u != strings.TrimRight(first, "/") || err != nil || c == nil {
			t.Fatalf("server %q: got %q %v, New: %v", first, u, ok, err)
		}
		return
	}
	if ok || err == nil {
		t.Fatalf("relative server %q used as a base URL: %q, New: %v", first, u, err)
	}
}
