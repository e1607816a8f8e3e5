package httpapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	spec "github.com/gatehouse/gatehouse/api"
	api "github.com/gatehouse/gatehouse/gen/api"
	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/requestid"
)

// Metrics counts what operators watch of the HTTP layer (internal/telemetry
// implements it). Every label value it is given comes from a fixed set.
type Metrics interface {
	// ObserveRequest records one answered request: operation is an
	// operation id of the contract, or "docs", "metrics" or "unmatched".
	ObserveRequest(operation, method string, status int, d time.Duration)
	// LoginOutcome counts a password login by outcome (the login* constants).
	LoginOutcome(outcome string)
	// RateLimitBlocked counts a request refused by the named limit.
	RateLimitBlocked(limit string)
}

// Login outcomes, as Metrics.LoginOutcome names them.
const (
	loginSuccess     = "success"
	loginInvalid     = "invalid_credentials"
	loginLocked      = "locked"
	loginRateLimited = "rate_limited"
	loginUnverified  = "email_not_verified"
	loginMFARequired = "mfa_required"
	loginError       = "error"
)

type noMetrics struct{}

func (noMetrics) ObserveRequest(string, string, int, time.Duration) {}
func (noMetrics) LoginOutcome(string)                               {}
func (noMetrics) RateLimitBlocked(string)                           {}

// loginOutcome names the outcome of a login from the error it ended with.
func loginOutcome(err error) string {
	var locked *auth.LockedError
	var p *problem
	switch {
	case err == nil:
		return loginSuccess
	case errors.Is(err, auth.ErrInvalidCredentials):
		return loginInvalid
	case errors.As(err, &locked):
		return loginLocked
	case errors.Is(err, auth.ErrEmailNotVerified):
		return loginUnverified
	case errors.As(err, new(*auth.MFARequiredError)):
		return loginMFARequired
	case errors.As(err, &p) && p.code == api.ProblemCodeRateLimited:
		return loginRateLimited
	}
	return loginError
}

// Labels of requests that are not operations of the contract.
const (
	opDocs      = "docs"
	opMetrics   = "metrics"
	opUnmatched = "unmatched"
)

// operations names each route by the operation id of the contract: the label
// of its metrics and the name of its span. The raw path never is one: it
// may hold an id or an email.
type operations map[string]string // "METHOD /echo/:path" → operation id

// operationIDs reads the operation ids as api/openapi.yaml writes them
// (the embedded copy of gen/api has them capitalised for Go).
func operationIDs() (operations, error) {
	doc, err := openapi3.NewLoader().LoadFromData(spec.OpenAPIYAML)
	if err != nil {
		return nil, fmt.Errorf("load api/openapi.yaml: %w", err)
	}
	ops := operations{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			ops[method+" "+echoPath(path)] = op.OperationID
		}
	}
	return ops, nil
}

func (ops operations) name(c echo.Context) string {
	method := c.Request().Method
	if method == http.MethodHead {
		method = http.MethodGet
	}
	if id, ok := ops[method+" "+c.Path()]; ok {
		return id
	}
	switch c.Path() {
	case "/docs", "/docs/*", "/openapi.yaml", "/openapi.json":
		return opDocs
	case "/metrics":
		return opMetrics
	}
	return opUnmatched
}

// instrument counts and times every request. It runs outside accessLog,
// which turns an error into the response, so the status is the one sent.
func (s *Server) instrument(ops operations) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			err := next(c)
			s.metrics.ObserveRequest(ops.name(c), c.Request().Method, c.Response().Status, time.Since(start))
			return err
		}
	}
}

// traceRequests makes the server span of each request, named by its
// operation id. A W3C traceparent is continued only from a peer of
// TRUSTED_PROXIES (the rule of X-Forwarded-For): anyone else could otherwise
// pick trace ids and sampling. The span's trace context goes back in the
// traceparent response header, so a caller can find the trace.
func (s *Server) traceRequests(tp trace.TracerProvider, ops operations, trusted []netip.Prefix) echo.MiddlewareFunc {
	tracer := tp.Tracer("github.com/gatehouse/gatehouse/internal/httpapi")
	prop := propagation.TraceContext{}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req := c.Request()
			ctx := req.Context()
			if trustedPeer(req.RemoteAddr, trusted) {
				ctx = prop.Extract(ctx, propagation.HeaderCarrier(req.Header))
			}
			name, route := ops.name(c), c.Path()
			if name == opUnmatched {
				route = "" // Echo's catch-all says nothing
			}
			ctx, span := tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindServer))
			defer span.End()
			recording := span.IsRecording() // not when sampled out: its attributes would be dropped
			if recording {
				span.SetAttributes(
					attribute.String("http.request.method", req.Method),
					attribute.String("http.route", route),
					attribute.String("gatehouse.request_id", requestid.From(ctx)),
				)
			}
			if span.SpanContext().IsValid() {
				c.Response().Header().Set("traceparent", traceparent(span.SpanContext()))
			}
			c.SetRequest(req.WithContext(ctx))
			err := next(c)
			if !recording {
				return err
			}
			status := c.Response().Status
			span.SetAttributes(attribute.Int("http.response.status_code", status))
			if status >= 500 {
				span.SetStatus(codes.Error, http.StatusText(status))
			}
			return err
		}
	}
}

// traceparent formats a span context as a W3C traceparent header (version 00).
func traceparent(sc trace.SpanContext) string {
	return "00-" + sc.TraceID().String() + "-" + sc.SpanID().String() + "-" + sc.TraceFlags().String()
}

func trustedPeer(remote string, trusted []netip.Prefix) bool {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return false
	}
	for _, p := range trusted {
		if p.Contains(ap.Addr().Unmap()) {
			return true
		}
	}
	return false
}

// serveMetrics serves /metrics on the main port. With METRICS_TOKEN it asks
// for that bearer token (compared in constant time); without one it answers
// loopback clients only: the configuration refuses that case in production.
// The client must be loopback both as the peer and as the address the
// trusted-proxy rules find, so a reverse proxy on the same host does not
// open it to the world.
func (s *Server) serveMetrics(h http.Handler, token string) echo.HandlerFunc {
	return func(c echo.Context) error {
		if token != "" {
			if !BearerMatches(c.Request().Header.Get(echo.HeaderAuthorization), token) {
				return errUnauthorized(api.ProblemCodeUnauthorized, "The metrics need the bearer token of METRICS_TOKEN: send `Authorization: Bearer <token>`.")
			}
		} else if !loopback(c.Request().RemoteAddr) || !loopback(c.RealIP()) {
			return newProblem(http.StatusForbidden, api.ProblemCodeForbidden, "Without METRICS_TOKEN, the metrics are served to loopback clients only.")
		}
		h.ServeHTTP(c.Response(), c.Request())
		return nil
	}
}

func loopback(addr string) bool {
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		return ap.Addr().Unmap().IsLoopback()
	}
	a, err := netip.ParseAddr(addr)
	return err == nil && a.Unmap().IsLoopback()
}

// BearerMatches reports whether an Authorization header carries the bearer
// token want (compared in constant time, by hash so that the length of want
// does not show either). Both listeners of /metrics ask METRICS_TOKEN so.
func BearerMatches(authorization, want string) bool {
	got, ok := bearerToken(authorization)
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return ok && subtle.ConstantTimeCompare(g[:], w[:]) == 1
}
