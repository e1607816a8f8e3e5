package httpapi_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/apitest"
	"github.com/gatehouse/gatehouse/internal/httpapi"
)

// FuzzRequestBody feeds arbitrary bodies and content types to an operation
// with a JSON body (one that needs no database, so the fuzzer runs fast): the answer is always a well-formed problem with a client
// error (or the operation's own answer), never a 5xx, and never echoes the
// body back.
func FuzzRequestBody(f *testing.F) {
	for _, seed := range []struct{ ct, body string }{
		{"application/json", `{"email":"a@example.com","password":"correct horse battery staple"}`},
		{"application/json", `{"email":`},
		{"application/json", `{"email":"a@example.com","email":"b@example.com","password":"x"}`},
		{"application/json", `{"password":"s3cret-value","extra":{"nested":[1,2,3]}}`},
		{"application/json; charset=utf-8", `[]`},
		{"application/json", `null`},
		{"application/json", "\x00\xff"},
		{"text/plain", `{}`},
		{"", `{}`},
		{"application/json", `{"email":"` + strings.Repeat("a", 300) + `@x.io","password":1e400}`},
	} {
		f.Add(seed.ct, seed.body)
	}
	for _, hb := range apitest.HostileBodies(1 << 12) {
		f.Add("application/json", string(hb.Body))
	}
	e, err := httpapi.New(httpapi.Deps{
		Log:            slog.New(slog.NewTextHandler(io.Discard, nil)),
		Authenticator:  tokenTable{},
		Limiter:        allowAll{},
		Credentials:    acceptAll{},
		BodyLimitBytes: 1 << 16,
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, ct, body string) {
		req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/api/v1/auth/password/forgot", strings.NewReader(body))
		if strings.ContainsAny(ct, "\r\n") {
			return // not a header a client can send
		}
		req.Header.Set("Content-Type", ct)
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("status %d for %q %q: %s", rec.Code, ct, body, rec.Body)
		}
		if rec.Code == http.StatusAccepted {
			return // a well-formed request: the operation's own answer
		}
		if rec.Header().Get("Content-Type") != "application/problem+json" {
			t.Fatalf("Content-Type %q", rec.Header().Get("Content-Type"))
		}
		var p struct {
			Code      string `json:"code"`
			Status    int    `json:"status"`
			RequestID string `json:"request_id"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || p.Code == "" || p.Status != rec.Code || p.RequestID == "" {
			t.Fatalf("not a problem: %v %s", err, rec.Body)
		}
		if len(body) >= 8 && strings.Contains(rec.Body.String(), body) {
			t.Fatalf("problem echoes the body: %s", rec.Body)
		}
	})
}
