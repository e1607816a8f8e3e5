package httpapi_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	openapi_types "github.com/oapi-codegen/runtime/types"

	"github.com/gatehouse/gatehouse/gen/client"
	"github.com/gatehouse/gatehouse/internal/account"
	"github.com/gatehouse/gatehouse/internal/apitest"
)

// TestEmail_LocalDomainsRefusedOutsideDevelopment: an address at an IP
// literal, at a name without a dot or at localhost cannot enter anywhere
// (register, create, either email change): 422 on the email field. Forgot
// and resend answer as for an unknown address, and login finds no account.
func TestEmail_LocalDomainsRefusedOutsideDevelopment(t *testing.T) {
	t.Parallel()
	s := apitest.NewServer(t, apitest.Options{}) // APP_ENV=test
	admin := s.NewAdmin()
	u := s.NewUser()
	target := userID(t, s, s.NewUser().Tokens.AccessToken)
	strip := func(r *http.Response, b []byte) string {
		return r.Status + " " + strings.ReplaceAll(string(b), r.Header.Get("X-Request-ID"), "")
	}
	unknown := apitest.NewEmail("nobody")
	unknownForgot := forgot(t, s, unknown)
	unknownResend, err := s.Client.ResendVerificationWithResponse(ctx, client.ResendVerificationJSONRequestBody{Email: openapi_types.Email(unknown)})
	if err != nil {
		t.Fatal(err)
	}
	for addr, code := range map[string]string{
		"user@[127.0.0.1]":   "ip_literal",
		"user@10.0.0.1":      "ip_literal",
		"a@b":                "local_domain",
		"dave@localhost":     "local_domain",
		"dave@app.localhost": "local_domain",
	} {
		t.Run(addr, func(t *testing.T) {
			e := openapi_types.Email(addr)
			refused := func(what string, status int, body []byte) {
				t.Helper()
				if status != 422 {
					t.Fatalf("%s %s: %d %s", what, addr, status, body)
				}
				p := decodeProblem(t, body)
				if p.Code != "validation_failed" || len(p.Errors) != 1 || p.Errors[0].Field != "email" || p.Errors[0].Code != code || !strings.Contains(p.Errors[0].Message, "example.com") {
					t.Fatalf("%s %s: %s", what, addr, body)
				}
			}
			r, err := s.Client.RegisterWithResponse(ctx, client.RegisterJSONRequestBody{Email: e, Password: apitest.Password})
			if err != nil {
				t.Fatal(err)
			}
			refused("register", r.StatusCode(), r.Body)
			c, err := admin.Client.CreateUserWithResponse(ctx, client.CreateUserJSONRequestBody{Email: e, Password: apitest.Password})
			if err != nil {
				t.Fatal(err)
			}
			refused("create user", c.StatusCode(), c.Body)
			a, err := admin.Client.UpdateUserWithResponse(ctx, target, client.UpdateUserJSONRequestBody{Email: &e})
			if err != nil {
				t.Fatal(err)
			}
			refused("update user", a.StatusCode(), a.Body)
			m, err := u.Client.UpdateMeWithResponse(ctx, client.UpdateMeJSONRequestBody{Email: &e, CurrentPassword: &u.Password})
			if err != nil {
				t.Fatal(err)
			}
			refused("update me", m.StatusCode(), m.Body)

			if f := forgot(t, s, addr); strip(f.HTTPResponse, f.Body) != strip(unknownForgot.HTTPResponse, unknownForgot.Body) {
				t.Fatalf("forgot %s: %s", addr, f.Body)
			}
			v, err := s.Client.ResendVerificationWithResponse(ctx, client.ResendVerificationJSONRequestBody{Email: e})
			if err != nil {
				t.Fatal(err)
			}
			if strip(v.HTTPResponse, v.Body) != strip(unknownResend.HTTPResponse, unknownResend.Body) {
				t.Fatalf("resend %s: %s", addr, v.Body)
			}
			if l := login(t, s, addr, apitest.Password); l.StatusCode() != 401 || !strings.Contains(string(l.Body), "invalid_credentials") {
				t.Fatalf("login %s: %d %s", addr, l.StatusCode(), l.Body)
			}
		})
	}
	// The command line's create-admin goes through the same rule.
	if _, _, err := s.Accounts.CreateAdmin(ctx, "root@localhost", apitest.Password); !errors.Is(err, account.ErrInvalidEmail) {
		t.Fatalf("create-admin root@localhost: %v", err)
	}
}

// TestEmail_LocalDomainsAllowedInDevelopment: development accepts them (mail
// goes to files there). An account made so keeps logging in under another
// APP_ENV, but nothing is mailed to its address.
func TestEmail_LocalDomainsAllowedInDevelopment(t *testing.T) {
	t.Parallel()
	dbURL := apitest.DatabaseURL(t)
	dev := apitest.NewServer(t, apitest.Options{DatabaseURL: dbURL, Env: map[string]string{"APP_ENV": "development"}})
	for _, addr := range []string{"dave@localhost", "user@[127.0.0.1]", "a@b"} {
		dev.Register(addr, apitest.Password)
		dev.Login(addr, apitest.Password)
	}
	s := apitest.NewServer(t, apitest.Options{DatabaseURL: dbURL, Redis: dev.Redis})
	s.Login("dave@localhost", apitest.Password)
	if r := forgot(t, s, "dave@localhost"); r.StatusCode() != 202 {
		t.Fatalf("forgot: %d %s", r.StatusCode(), r.Body)
	}
	var n int
	if err := apitest.Pool(t, dbURL).QueryRow(ctx, `SELECT count(*) FROM river_job WHERE kind = 'mail' AND args->>'to' = 'dave@localhost' AND args->>'mail' = 'password_reset'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("%d reset mails queued for dave@localhost outside development", n)
	}
}
