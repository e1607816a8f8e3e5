package httpapi_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	openapi_types "github.com/oapi-codegen/runtime/types"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/gatehouse/gatehouse/gen/client"
	"github.com/gatehouse/gatehouse/internal/apitest"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// tracedServer is a server whose spans go to an in-memory exporter.
func tracedServer(t *testing.T, env map[string]string) (*apitest.Server, func() tracetest.SpanStubs) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tr, err := telemetry.NewTracing(t.Context(), "test", exp)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Shutdown(context.Background()) })
	s := apitest.NewServer(t, apitest.Options{Env: env, Tracing: tr})
	return s, func() tracetest.SpanStubs {
		if err := tr.ForceFlush(t.Context()); err != nil {
			t.Fatal(err)
		}
		return exp.GetSpans()
	}
}

// serverSpan finds the one server span named name.
func serverSpan(t *testing.T, spans tracetest.SpanStubs, name string) tracetest.SpanStub {
	t.Helper()
	var found []tracetest.SpanStub
	for _, s := range spans {
		if s.SpanKind == trace.SpanKindServer && s.Name == name {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d server spans named %s among %d spans", len(found), name, len(spans))
	}
	return found[0]
}

func attr(s tracetest.SpanStub, key string) string {
	for _, a := range s.Attributes {
		if string(a.Key) == key {
			return a.Value.String()
		}
	}
	return ""
}

// TestTracing_LoginSpanHasPostgresRedisAndHashingChildren: a login makes one
// server span named by its operation id, carrying the request id, with child
// spans of its PostgreSQL queries, its Redis commands and the password
// verification; the response names the trace in its traceparent header; no
// span holds the email, the password or a token.
func TestTracing_LoginSpanHasPostgresRedisAndHashingChildren(t *testing.T) {
	t.Parallel()
	s, spans := tracedServer(t, nil)
	email := apitest.NewEmail("traced")
	s.Register(email, apitest.Password)
	res := apitest.Must(s.Client.LoginWithResponse(context.Background(), client.LoginJSONRequestBody{Email: openapi_types.Email(email), Password: apitest.Password}))(t)
	if res.JSON200 == nil {
		t.Fatalf("login: %d %s", res.StatusCode(), res.Body)
	}
	tokens := res.JSON200.Data
	s.Secret("access token", tokens.AccessToken)
	s.Secret("refresh token", tokens.RefreshToken)

	all := spans()
	login := serverSpan(t, all, "login")
	if got, want := attr(login, "gatehouse.request_id"), res.HTTPResponse.Header.Get("X-Request-ID"); got == "" || got != want {
		t.Errorf("span request id %q, response X-Request-ID %q", got, want)
	}
	if got := attr(login, "http.route"); got != "/api/v1/auth/login" {
		t.Errorf("http.route = %q", got)
	}
	if got := attr(login, "http.response.status_code"); got != "200" {
		t.Errorf("http.response.status_code = %q", got)
	}
	sc := login.SpanContext
	if got, want := res.HTTPResponse.Header.Get("traceparent"), "00-"+sc.TraceID().String()+"-"+sc.SpanID().String()+"-01"; got != want {
		t.Errorf("traceparent response header %q, want %q", got, want)
	}

	// Children of the login span, directly or through another child.
	inTrace := map[trace.SpanID]bool{sc.SpanID(): true}
	for changed := true; changed; {
		changed = false
		for _, sp := range all {
			if sp.SpanContext.TraceID() == sc.TraceID() && inTrace[sp.Parent.SpanID()] && !inTrace[sp.SpanContext.SpanID()] {
				inTrace[sp.SpanContext.SpanID()], changed = true, true
			}
		}
	}
	var pg, redis, hashing int
	for _, sp := range all {
		if !inTrace[sp.SpanContext.SpanID()] || sp.SpanContext.SpanID() == sc.SpanID() {
			continue
		}
		switch scope := sp.InstrumentationScope.Name; {
		case strings.Contains(scope, "otelpgx"):
			pg++
		case strings.Contains(scope, "redisotel"):
			redis++
		case sp.Name == "password.verify":
			hashing++
		}
	}
	if pg == 0 || redis == 0 || hashing != 1 {
		t.Errorf("children of the login span: %d PostgreSQL, %d Redis, %d password.verify", pg, redis, hashing)
	}

	secrets := []string{email, strings.ToLower(email), apitest.Password, tokens.AccessToken, tokens.RefreshToken}
	for _, sp := range all {
		values := []string{sp.Name, sp.Status.Description}
		for _, a := range sp.Attributes {
			values = append(values, a.Value.String())
		}
		for _, ev := range sp.Events {
			for _, a := range ev.Attributes {
				values = append(values, a.Value.String())
			}
		}
		for _, v := range values {
			for _, secret := range secrets {
				if strings.Contains(v, secret) {
					t.Errorf("span %s holds a secret of the request: %.200q", sp.Name, v)
				}
			}
		}
	}
}

// TestTracing_TraceparentOnlyFromTrustedPeers: a traceparent is continued
// when the peer is a trusted proxy, and ignored (a new root trace) otherwise.
func TestTracing_TraceparentOnlyFromTrustedPeers(t *testing.T) {
	t.Parallel()
	const (
		traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
		spanID  = "00f067aa0ba902b7"
	)
	for _, c := range []struct {
		name      string
		env       map[string]string
		continues bool
	}{
		{"untrusted peer", nil, false},
		{"trusted proxy", map[string]string{"TRUSTED_PROXIES": "127.0.0.1"}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s, spans := tracedServer(t, c.env)
			res := apitest.Must(s.Client.GetLivenessWithResponse(context.Background(), func(_ context.Context, r *http.Request) error {
				r.Header.Set("traceparent", "00-"+traceID+"-"+spanID+"-01")
				return nil
			}))(t)
			if res.StatusCode() != http.StatusOK {
				t.Fatalf("liveness: %d", res.StatusCode())
			}
			live := serverSpan(t, spans(), "getLiveness")
			continued := live.SpanContext.TraceID().String() == traceID && live.Parent.SpanID().String() == spanID && live.Parent.IsRemote()
			if continued != c.continues {
				t.Errorf("trace %s parent %s: continued = %v, want %v", live.SpanContext.TraceID(), live.Parent.SpanID(), continued, c.continues)
			}
			if !c.continues && live.Parent.IsValid() {
				t.Errorf("an untrusted traceparent became the parent %s", live.Parent.SpanID())
			}
		})
	}
}
