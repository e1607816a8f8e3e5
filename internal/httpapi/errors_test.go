package httpapi_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/gatehouse/gatehouse/internal/account"
	"github.com/gatehouse/gatehouse/internal/apitest"
	"github.com/gatehouse/gatehouse/internal/httpapi"
)

func TestErrors_BadInputGetsTheDocumentedProblem(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	big := `{"email":"a@example.com","password":"` + strings.Repeat("x", 2<<20) + `"}`
	for _, tc := range []struct {
		name                string
		method, path, token string
		contentType, body   string
		status              int
		code                string
		fields              []fieldWant
	}{
		{
			name: "malformed JSON", method: "POST", path: "/api/v1/auth/login", contentType: "application/json",
			body: `{"email": "a@example.com",`, status: 400, code: "malformed_json",
		},
		{
			name: "not JSON at all", method: "POST", path: "/api/v1/auth/login", contentType: "application/json",
			body: `email=a@example.com`, status: 400, code: "malformed_json",
		},
		{
			name: "wrong content type", method: "POST", path: "/api/v1/auth/login", contentType: "text/plain",
			body: `{"email":"a@example.com","password":"x"}`, status: 415, code: "unsupported_media_type",
		},
		{
			name: "form content type", method: "POST", path: "/api/v1/auth/register", contentType: "application/x-www-form-urlencoded",
			body: `email=a@example.com`, status: 415, code: "unsupported_media_type",
		},
		{
			name: "oversized body", method: "POST", path: "/api/v1/auth/login", contentType: "application/json",
			body: big, status: 413, code: "payload_too_large",
		},
		// bad_request is for parameters; an empty body is unreadable JSON.
		{
			name: "missing body", method: "POST", path: "/api/v1/auth/login", contentType: "application/json",
			status: 400, code: "malformed_json",
		},
		{
			name: "missing body, no content type", method: "POST", path: "/api/v1/auth/login",
			status: 400, code: "malformed_json",
		},
		{
			name: "missing fields", method: "POST", path: "/api/v1/auth/login", contentType: "application/json",
			body: `{}`, status: 422, code: "validation_failed",
			fields: []fieldWant{{"email", "required"}, {"password", "required"}},
		},
		{
			name: "extra field", method: "POST", path: "/api/v1/auth/register", contentType: "application/json",
			body: `{"email":"a@example.com","password":"correct horse battery staple","roles":["admin"]}`, status: 422, code: "validation_failed",
			fields: []fieldWant{{"roles", "unknown_field"}},
		},
		{
			name: "wrong types", method: "POST", path: "/api/v1/auth/login", contentType: "application/json",
			body: `{"email": 42, "password": true}`, status: 422, code: "validation_failed",
			fields: []fieldWant{{"email", "type"}, {"password", "type"}},
		},
		{
			name: "not an email", method: "POST", path: "/api/v1/auth/password/forgot", contentType: "application/json",
			body: `{"email":"Alice <alice@example.com>"}`, status: 422, code: "validation_failed",
			fields: []fieldWant{{"email", "format"}},
		},
		{
			name: "JSON array instead of object", method: "POST", path: "/api/v1/auth/login", contentType: "application/json",
			body: `[]`, status: 422, code: "validation_failed",
		},
		{
			name: "empty PATCH", method: "PATCH", path: "/api/v1/users/me", token: "plain", contentType: "application/json",
			body: `{}`, status: 422, code: "validation_failed", fields: []fieldWant{{"", "min_properties"}},
		},
		{
			name: "limit out of range", method: "GET", path: "/api/v1/users?limit=500", token: "admin",
			status: 400, code: "bad_request", fields: []fieldWant{{"limit", "maximum"}},
		},
		{
			name: "unknown status filter", method: "GET", path: "/api/v1/users?status=sleeping", token: "admin",
			status: 400, code: "bad_request", fields: []fieldWant{{"status", "enum"}},
		},
		// A long enum's message still fits the contract's 500 characters.
		{
			name: "unknown audit action filter", method: "GET", path: "/api/v1/audit-events?action=nope", token: "admin",
			status: 400, code: "bad_request", fields: []fieldWant{{"action", "enum"}},
		},
		{
			name: "malformed id", method: "GET", path: "/api/v1/users/not-a-uuid", token: "admin",
			status: 400, code: "bad_request", fields: []fieldWant{{"id", "format"}},
		},
		{
			name: "duplicate keys", method: "POST", path: "/api/v1/auth/login", contentType: "application/json",
			body: `{"email":"a@example.com","email":"b@example.com","password":"x"}`, status: 400, code: "malformed_json",
		},
		{
			name: "trailing data", method: "POST", path: "/api/v1/auth/login", contentType: "application/json",
			body: `{"email":"a@example.com","password":"x"}{"email":"admin@example.com"}`, status: 400, code: "malformed_json",
		},
		{
			name: "invalid UTF-8", method: "POST", path: "/api/v1/auth/login", contentType: "application/json",
			body: "{\"email\":\"a@example.com\",\"password\":\"\xff\xfe\"}", status: 400, code: "malformed_json",
		},
		{
			name: "lone surrogate", method: "POST", path: "/api/v1/auth/login", contentType: "application/json",
			body: `{"email":"a@example.com","password":"\ud800x"}`, status: 400, code: "malformed_json",
		},
		{
			name: "NUL in a string", method: "POST", path: "/api/v1/auth/login", contentType: "application/json",
			body: `{"email":"a@example.com","password":"abc\u0000def"}`, status: 400, code: "malformed_json",
		},
		{
			name: "UTF-16 charset", method: "POST", path: "/api/v1/auth/login", contentType: "application/json; charset=utf-16",
			body: `{}`, status: 415, code: "unsupported_media_type",
		},
		{
			name: "control characters in a query", method: "GET", path: "/api/v1/users?email=%00%ff", token: "admin",
			status: 400, code: "bad_request", fields: []fieldWant{{"email", "invalid_characters"}},
		},
		{
			name: "line break in a name", method: "PATCH", path: "/api/v1/users/me", token: "plain", contentType: "application/json",
			body: `{"name":"Bob\r\nBcc: victim@example.com"}`, status: 422, code: "validation_failed", fields: []fieldWant{{"name", "pattern"}},
		},
		{
			name: "nesting 16,000 deep, no token", method: "POST", path: "/api/v1/auth/login", contentType: "application/json",
			body: nested(16_000), status: 400, code: "malformed_json",
		},
		{
			name: "nesting 100,000 deep, no token", method: "POST", path: "/api/v1/auth/login", contentType: "application/json",
			body: nested(100_000), status: 400, code: "malformed_json",
		},
		{
			name: "nesting 33 deep", method: "POST", path: "/api/v1/auth/login", contentType: "application/json",
			body: `{"email":"a@example.com","password":"x","x":` + nested(32) + `}`, status: 400, code: "malformed_json",
		},
		{
			name: "nesting 32 deep is read, then refused by the schema", method: "POST", path: "/api/v1/auth/login", contentType: "application/json",
			body: `{"email":"a@example.com","password":"x","x":` + nested(31) + `}`, status: 422, code: "validation_failed",
			fields: []fieldWant{{"x", "unknown_field"}},
		},
		{
			name: "more values than any operation takes", method: "POST", path: "/api/v1/auth/login", contentType: "application/json",
			body: unknownKeys(60_000), status: 422, code: "validation_failed", fields: []fieldWant{{"", "max_values"}},
		},
		{
			name: "half a million array items", method: "POST", path: "/api/v1/auth/login", contentType: "application/json",
			body: values(500_000), status: 422, code: "validation_failed", fields: []fieldWant{{"", "max_values"}},
		},
		{
			name: "1,000 values are read, then refused by the schema", method: "POST", path: "/api/v1/auth/login", contentType: "application/json",
			body: unknownKeys(httpapi.MaxJSONValues - 3), status: 422, code: "validation_failed", fields: []fieldWant{{"k0", "unknown_field"}},
		}, // the problem lists the first 100 fields
		{
			name: "a key longer than any field", method: "POST", path: "/api/v1/auth/login", contentType: "application/json",
			body: `{"email":"a@example.com","password":"x","` + strings.Repeat("k", 1<<10) + `":1}`, status: 422, code: "validation_failed",
			fields: []fieldWant{{"", "max_key_length"}},
		},
		{
			name: "query past 10,000 parameters", method: "GET", path: "/api/v1/users?limit=500" + strings.Repeat("&a=1", 10_000), token: "admin",
			status: 400, code: "bad_request",
		},
		{
			name: "undecodable query", method: "GET", path: "/api/v1/users?status=deleted&email=%zz", token: "admin",
			status: 400, code: "bad_request",
		},
		{name: "unknown route", method: "GET", path: "/api/v1/nope", status: 404, code: "not_found"},
		{name: "wrong method", method: "GET", path: "/api/v1/auth/login", status: 405, code: "method_not_allowed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, b := send(t, s, tc.method, tc.path, tc.token, tc.contentType, tc.body)
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", res.StatusCode, tc.status, b)
			}
			p := decodeProblem(t, b)
			if p.Code != tc.code {
				t.Fatalf("code %q, want %q: %s", p.Code, tc.code, b)
			}
			if p.RequestID == "" || p.RequestID != res.Header.Get("X-Request-ID") {
				t.Fatalf("problem request_id %q, header %q", p.RequestID, res.Header.Get("X-Request-ID"))
			}
			if p.Detail == "" || p.Instance != strings.SplitN(tc.path, "?", 2)[0] {
				t.Fatalf("problem lacks detail or instance: %s", b)
			}
			for _, want := range tc.fields {
				found := false
				for _, f := range p.Errors {
					if f.Field == want.field && f.Code == want.code && f.Message != "" {
						found = true
					}
				}
				if !found {
					t.Errorf("no field error %+v in %s", want, b)
				}
			}
			if tc.status == 405 && res.Header.Get("Allow") == "" {
				t.Error("405 without an Allow header")
			}
		})
	}
}

func TestErrors_FieldMessagesSayWhatToFix(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	_, b := send(t, s, "POST", "/api/v1/auth/register", "", "application/json",
		`{"email":"nope","password":"short","name":"`+strings.Repeat("n", 101)+`","admin":true}`)
	p := decodeProblem(t, b)
	want := map[string]string{
		"email":    "must be an email address such as name@example.com",
		"password": "must be at least 8 characters long",
		"name":     "must be at most 100 characters long",
		"admin":    "is not a field of this request; remove it",
	}
	for _, f := range p.Errors {
		if msg, ok := want[f.Field]; ok && f.Message == msg {
			delete(want, f.Field)
		}
	}
	if len(want) > 0 {
		t.Fatalf("missing messages %v in %s", want, b)
	}
}

func TestRequestID_TakenWhenWellFormedElseGenerated(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	for _, tc := range []struct{ sent, want string }{
		{"abc-123.x:y_z", "abc-123.x:y_z"},
		{"bad id with spaces", ""},
		{strings.Repeat("a", 129), ""},
		{"", ""},
	} {
		t.Run(fmt.Sprintf("%.40q", tc.sent), func(t *testing.T) {
			req, _ := http.NewRequestWithContext(t.Context(), "GET", s.URL+"/health/live", nil)
			if tc.sent != "" {
				req.Header.Set("X-Request-ID", tc.sent)
			}
			res, err := s.HTTP.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			got := res.Header.Get("X-Request-ID")
			if tc.want != "" && got != tc.want {
				t.Errorf("sent %q, got %q", tc.sent, got)
			}
			if tc.want == "" {
				if _, err := uuid.Parse(got); err != nil || got == tc.sent {
					t.Errorf("sent %q, got %q: want a fresh UUID", tc.sent, got)
				}
			}
		})
	}
	// The id reaches the log line of the request.
	req, _ := http.NewRequestWithContext(t.Context(), "GET", s.URL+"/api/v1/nope", nil)
	req.Header.Set("X-Request-ID", "trace-me-42")
	res, err := s.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if !strings.Contains(s.Logs(), `"request_id":"trace-me-42"`) {
		t.Fatalf("request id not in the logs:\n%s", s.Logs())
	}
}

func TestErrors_NeverLeakInternals(t *testing.T) {
	t.Parallel()
	sqlErr := errors.New(`ERROR: relation "users" does not exist (SQLSTATE 42P01) at pgstore/users.go:42`)
	s := apitest.NewServer(t, apitest.Options{Authenticator: panicky{}})
	res, b := send(t, s, "GET", "/api/v1/users/me", "any", "", "")
	if res.StatusCode != http.StatusInternalServerError {
		t.Fatalf("status %d, want 500: %s", res.StatusCode, b)
	}
	if p := decodeProblem(t, b); p.Code != "internal_error" {
		t.Fatalf("code %q: %s", p.Code, b)
	}
	for _, leak := range []string{"panic", "hunter2", "goroutine", ".go:", "SQLSTATE", "relation"} {
		if strings.Contains(string(b), leak) {
			t.Errorf("response leaks %q: %s", leak, b)
		}
	}
	// The operator still learns what happened, once, with the request id.
	logs := s.Logs()
	if strings.Count(logs, "authenticator exploded") != 1 || !strings.Contains(logs, res.Header.Get("X-Request-ID")) {
		t.Fatalf("the panic should be logged once with its request id:\n%s", logs)
	}

	s2 := apitest.NewServer(t, apitest.Options{Deps: func(d *httpapi.Deps) {
		d.PostgresCheck = func(context.Context) error { return sqlErr }
	}})
	res, b = send(t, s2, "GET", "/health", "", "", "")
	if res.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503: %s", res.StatusCode, b)
	}
	for _, leak := range []string{"SQLSTATE", "relation", ".go:"} {
		if strings.Contains(string(b), leak) {
			t.Errorf("health leaks %q: %s", leak, b)
		}
	}
}

type panicky struct{}

func (panicky) Authenticate(context.Context, string) (account.Principal, error) {
	panic("authenticator exploded: secret=hunter2")
}

func TestHealth_APanickingCheckReportsDown(t *testing.T) {
	t.Parallel()
	s := apitest.NewServer(t, apitest.Options{Deps: func(d *httpapi.Deps) {
		d.RedisCheck = func(context.Context) error { panic("boom") }
	}})
	res, b := send(t, s, "GET", "/health/ready", "", "", "")
	if res.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(b), `"redis":{"error":"unreachable"`) {
		t.Fatalf("got %d %s", res.StatusCode, b)
	}
}

func TestSecurityHeaders_OnEveryResponse(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	for _, path := range []string{"/health/live", "/api/v1/nope", "/docs/"} {
		res, _ := send(t, s, "GET", path, "", "", "")
		for _, h := range []string{"X-Content-Type-Options", "X-Frame-Options", "Content-Security-Policy", "Referrer-Policy"} {
			if res.Header.Get(h) == "" {
				t.Errorf("%s: no %s header", path, h)
			}
		}
	}
}

// TestBadInput_EveryOperationWithABody walks the contract: each operation
// that takes a JSON body answers malformed, mistyped, oversized and
// unexpected bodies with its documented problem.
func TestBadInput_EveryOperationWithABody(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	doc, err := httpapi.LoadSpec()
	if err != nil {
		t.Fatal(err)
	}
	big := `{"x":"` + strings.Repeat("y", 2<<20) + `"}`
	n := 0
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			if op.RequestBody == nil {
				continue
			}
			n++
			url := regexp.MustCompile(`\{[^}]+\}`).ReplaceAllString(path, uuid.NewString())
			for _, tc := range []struct {
				name, ct, body string
				status         int
				code           string
			}{
				{"malformed", "application/json", `{"a":`, 400, "malformed_json"},
				{"array", "application/json", `[]`, 422, "validation_failed"},
				{"null", "application/json", `null`, 422, "validation_failed"},
				{"unknown field", "application/json", `{"definitely_not_a_field":1}`, 422, "validation_failed"},
				{"wrong type", "application/json", `{"email":1,"password":1,"token":1,"name":1,"roles":1,"refresh_token":1,"current_password":1,"new_password":1}`, 422, "validation_failed"},
				{"text", "text/plain", `{}`, 415, "unsupported_media_type"},
				{"oversized", "application/json", big, 413, "payload_too_large"},
			} {
				t.Run(method+" "+path+" "+tc.name, func(t *testing.T) {
					res, b := send(t, s, method, url, "admin", tc.ct, tc.body)
					if res.StatusCode != tc.status || decodeProblem(t, b).Code != tc.code {
						t.Errorf("%s %s, %s: %d %.200s, want %d %s", method, path, tc.name, res.StatusCode, b, tc.status, tc.code)
					}
				})
			}
		}
	}
	if n < 13 {
		t.Fatalf("walked %d operations with a body, want 13", n)
	}
}

// TestInput_OnlyWhatAnOperationTakesIsChecked: undeclared query parameters
// and bodies sent to operations without one are ignored, not refused.
func TestInput_OnlyWhatAnOperationTakesIsChecked(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	if res, b := send(t, s, "GET", "/health/live?x=%01", "", "", ""); res.StatusCode != 200 {
		t.Fatalf("undeclared parameter: %d %s", res.StatusCode, b)
	}
	if res, b := send(t, s, "GET", "/health/live", "", "text/plain", strings.Repeat("y", 2<<20)); res.StatusCode != 200 {
		t.Fatalf("body on an operation without one: %d %s", res.StatusCode, b)
	}
}

func TestCORSAndProductionHeaders(t *testing.T) {
	t.Parallel()
	s := apitest.NewServer(t, apitest.Options{Authenticator: tokenTable{}, Deps: func(d *httpapi.Deps) {
		d.CORSAllowedOrigins = []string{"https://app.example.com"}
		d.Production = true
	}})
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodOptions, s.URL+"/api/v1/auth/login", nil)
	req.Header.Set("Origin", "https://app.example.com")
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "content-type")
	res, err := http.DefaultClient.Do(req) // a preflight is not an operation of the contract
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" {
		t.Fatalf("preflight from an allowed origin: %d %v", res.StatusCode, res.Header)
	}
	req.Header.Set("Origin", "https://evil.example")
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("preflight from another origin allowed: %v", res.Header)
	}
	res, _ = send(t, s, "GET", "/health/live", "", "", "")
	if !strings.HasPrefix(res.Header.Get("Strict-Transport-Security"), "max-age=") {
		t.Fatalf("no HSTS in production: %v", res.Header)
	}
}
