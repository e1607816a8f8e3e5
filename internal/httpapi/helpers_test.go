package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	openapi_types "github.com/oapi-codegen/runtime/types"

	"github.com/gatehouse/gatehouse/gen/client"
	"github.com/gatehouse/gatehouse/internal/account"
	"github.com/gatehouse/gatehouse/internal/apitest"
	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/httpapi"
	"github.com/gatehouse/gatehouse/internal/ratelimit"
)

const newPassword = "a brand new passphrase for tests"

func withSMTP(t *testing.T, extra map[string]string) (*apitest.Server, *apitest.SMTP) {
	t.Helper()
	mailbox := apitest.StartSMTP(t)
	return apitest.NewServer(t, apitest.Options{Env: extra, Mailbox: mailbox}), mailbox
}

func forgot(t *testing.T, s *apitest.Server, email string) *client.ForgotPasswordResponse {
	t.Helper()
	res, err := s.Client.ForgotPasswordWithResponse(ctx, client.ForgotPasswordJSONRequestBody{Email: openapi_types.Email(email)})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func reset(t *testing.T, s *apitest.Server, token, password string) *client.ResetPasswordResponse {
	t.Helper()
	s.Secret("reset token", token)
	res, err := s.Client.ResetPasswordWithResponse(ctx, client.ResetPasswordJSONRequestBody{Token: token, Password: password})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// listSessions counts the live sessions the token's user sees.
func listSessions(t *testing.T, s *apitest.Server, access string) int {
	t.Helper()
	return len(sessionsOf(t, s, access))
}

// sessionsOf lists the live sessions the token's user sees (the first page).
func sessionsOf(t *testing.T, s *apitest.Server, access string) []client.Session {
	t.Helper()
	res := apitest.Must(s.WithToken(access).ListMySessionsWithResponse(ctx, nil))(t)
	if res.JSON200 == nil {
		t.Fatalf("list sessions: %d %s", res.StatusCode(), res.Body)
	}
	return res.JSON200.Data
}

var ctx = context.Background()

func me(t *testing.T, s *apitest.Server, token string) int {
	t.Helper()
	res, err := s.WithToken(token).GetMeWithResponse(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode()
}

func refresh(t *testing.T, s *apitest.Server, rt string) *client.RefreshTokensResponse {
	t.Helper()
	res, err := s.Client.RefreshTokensWithResponse(ctx, client.RefreshTokensJSONRequestBody{RefreshToken: rt})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func login(t *testing.T, s *apitest.Server, email, password string) *client.LoginResponse {
	t.Helper()
	res, err := s.Client.LoginWithResponse(ctx, client.LoginJSONRequestBody{Email: openapi_types.Email(email), Password: password})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func dbName(url string) string {
	rest := url[strings.LastIndex(url, "/")+1:]
	name, _, _ := strings.Cut(rest, "?")
	return name
}

// tokenTable stands in for access-token verification in these tests of the
// authorization mechanism: a token names the principal it belongs to.
type tokenTable map[string]account.Principal

func (tt tokenTable) Authenticate(_ context.Context, token string) (account.Principal, error) {
	if token == "unavailable" {
		return account.Principal{}, account.ErrUnavailable
	}
	p, ok := tt[token]
	if !ok {
		return account.Principal{}, auth.ErrInvalidToken
	}
	return p, nil
}

var allPermissions = []string{"users:read", "users:write", "users:delete", "roles:read", "roles:assign", "sessions:revoke", "audit:read", "users:import", "mfa:reset"}

func newServer(t *testing.T) *apitest.Server {
	t.Helper()
	return apitest.NewServer(t, apitest.Options{Authenticator: tokenTable{
		"plain": {UserID: uuid.New(), SessionID: uuid.New()},
		// A multi-factor session, so that operations declaring x-mfa reach
		// their input checks.
		"admin": {UserID: uuid.New(), SessionID: uuid.New(), Permissions: allPermissions, MFA: true, MFAEnrolled: true},
	}})
}

type problemBody struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail"`
	Instance  string `json:"instance"`
	Code      string `json:"code"`
	RequestID string `json:"request_id"`
	Errors    []struct {
		Field, Code, Message string
	} `json:"errors"`
}

// send makes a raw request through the validating client.
func send(t *testing.T, s *apitest.Server, method, path, token, contentType, body string) (*http.Response, []byte) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, s.URL+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	res, err := s.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, b
}

func decodeProblem(t *testing.T, b []byte) problemBody {
	t.Helper()
	var p problemBody
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatalf("not a problem: %v: %s", err, b)
	}
	return p
}

func get(t *testing.T, s *apitest.Server, path string) []byte {
	t.Helper()
	res, b := send(t, s, "GET", path, "", "", "")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %.200s", path, res.StatusCode, b)
	}
	return b
}

type fieldWant struct{ field, code string }

// currentSession is the id of the session the access token belongs to.
func currentSession(t *testing.T, s *apitest.Server, access string) string {
	t.Helper()
	for _, sess := range sessionsOf(t, s, access) {
		if sess.Current {
			return sess.Id.String()
		}
	}
	t.Fatal("no current session")
	return ""
}

func toString(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// generous lifts the request-rate limits so that a test sees the lockout
// alone.
func generous() *ratelimit.Policies {
	l := ratelimit.Default
	l.LoginIP.Rate, l.LoginAccount.Rate = 10000, 10000
	return &l
}

// loginFrom logs in as a client at ip (the test server trusts the loopback
// proxy), with a device token when device is not empty.
func loginFrom(t *testing.T, s *apitest.Server, ip, email, password, device string) *client.LoginResponse {
	t.Helper()
	body := client.LoginJSONRequestBody{Email: openapi_types.Email(email), Password: password}
	if device != "" {
		body.DeviceToken = &device
	}
	res, err := s.Client.LoginWithResponse(ctx, body, func(_ context.Context, r *http.Request) error {
		r.Header.Set("X-Forwarded-For", ip)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func deviceOf(t *testing.T, r *client.LoginResponse) string {
	t.Helper()
	if r.JSON200 == nil || r.JSON200.Data.DeviceToken == nil || *r.JSON200.Data.DeviceToken == "" {
		t.Fatalf("login returned no device token: %d %s", r.StatusCode(), r.Body)
	}
	return *r.JSON200.Data.DeviceToken
}

func count(m *apitest.SMTP, to, subject string) int {
	n := 0
	for _, x := range m.Mails() {
		if strings.EqualFold(x.To, to) && strings.Contains(x.Subject, subject) {
			n++
		}
	}
	return n
}

// nested returns a body depth arrays deep, holding 1.
func nested(depth int) string {
	return strings.Repeat("[", depth) + "1" + strings.Repeat("]", depth)
}

// values returns a body of n values in all: an array of n-1 zeros.
func values(n int) string {
	return "[" + strings.TrimSuffix(strings.Repeat("0,", n-1), ",") + "]"
}

// unknownKeys returns a login body with n more keys.
func unknownKeys(n int) string {
	var b strings.Builder
	b.WriteString(`{"email":"a@example.com","password":"correct horse battery staple"`)
	for i := range n {
		fmt.Fprintf(&b, `,"k%d":0`, i)
	}
	return b.String() + "}"
}

func userID(t *testing.T, s *apitest.Server, token string) openapi_types.UUID {
	t.Helper()
	res, err := s.WithToken(token).GetMeWithResponse(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.JSON200 == nil {
		t.Fatalf("me: %v %s", err, res.Body)
	}
	return res.JSON200.Data.Id
}

func ptr[T any](v T) *T { return &v }

// bareHandler is the HTTP layer alone, with no store behind it: every
// token refused, no rate limit, and credential operations that succeed. For
// tests and benchmarks of what happens before a handler runs.
func bareHandler(tb testing.TB, bodyLimit int64) *echo.Echo {
	tb.Helper()
	e, err := httpapi.New(httpapi.Deps{
		Log:            slog.New(slog.NewTextHandler(io.Discard, nil)),
		Authenticator:  tokenTable{},
		Limiter:        allowAll{},
		Credentials:    acceptAll{},
		BodyLimitBytes: bodyLimit,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return e
}

// The fuzz target exercises the HTTP layer alone (parsing, validation,
// problems): the operation behind it accepts everything.
type allowAll struct{}

type acceptAll struct{ httpapi.Credentials }

func (allowAll) Allow(context.Context, ratelimit.Limit, string) (ratelimit.Decision, error) {
	return ratelimit.Decision{Allowed: true}, nil
}

func (allowAll) First(context.Context, string, time.Duration) (bool, error) { return true, nil }

func (acceptAll) ForgotPassword(context.Context, string, account.Client) error { return nil }

// waitMailsSettled returns once no mail job of s is waiting, running or
// retrying. A test that stops its mailbox right after a mail arrived must
// wait for this first: the mailbox records a mail before its last reply
// reaches the sender, and a sender cut off then retries, sending it twice.
func waitMailsSettled(t *testing.T, s *apitest.Server) {
	t.Helper()
	pool := apitest.Pool(t, s.DatabaseURL)
	deadline := time.Now().Add(20 * time.Second)
	for {
		var n int
		if err := pool.QueryRow(t.Context(), `SELECT count(*) FROM river_job WHERE kind = 'mail' AND state NOT IN ('completed', 'cancelled', 'discarded')`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d mail jobs still unsettled", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
