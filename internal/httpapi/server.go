// Package httpapi is the HTTP face of gatehouse: it implements the strict
// server interface generated from api/openapi.yaml, enforces the contract
// (authorization and request validation) on every operation, and turns every
// error into an RFC 9457 problem. It converts between generated API types and
// domain types; it never touches the database or Redis directly.
package httpapi

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/netip"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/singleflight"

	api "github.com/gatehouse/gatehouse/gen/api"
	"github.com/gatehouse/gatehouse/internal/keyed"
	"github.com/gatehouse/gatehouse/internal/ratelimit"
	"github.com/gatehouse/gatehouse/internal/token"
)

// Check reports whether a dependency answers.
type Check func(ctx context.Context) error

// Deps is what the HTTP layer needs from the rest of the service.
type Deps struct {
	Log           *slog.Logger
	Authenticator Authenticator
	Accounts      Accounts
	Credentials   Credentials
	MFA           MFA
	Users         Users
	Importer      Importer
	Limiter       ratelimit.Limiter
	RateLimits    ratelimit.Policies
	SigningKeys   []token.JWK
	// Checks are the readiness checks, named as in the Health schema.
	PostgresCheck Check
	RedisCheck    Check

	Production         bool
	PublicURL          string
	BodyLimitBytes     int64
	TrustedProxies     []netip.Prefix
	CORSAllowedOrigins []string
	// Secret is the server secret; cursors are keyed with it.
	Secret []byte

	// Metrics, when set, counts every request and the outcomes operators
	// watch (nil: no instrumentation at all). MetricsHandler, when set, is
	// served at GET /metrics on this port, behind MetricsToken (or, without
	// one, to loopback clients only).
	Metrics        Metrics
	MetricsHandler http.Handler
	MetricsToken   string
	// TracerProvider, when set, makes a server span of every request.
	TracerProvider trace.TracerProvider
}

// Server implements the generated strict server interface.
type Server struct {
	log          *slog.Logger
	metrics      Metrics
	deps         Deps
	healthFlight singleflight.Group
	cursors      cursors
}

var _ api.StrictServerInterface = (*Server)(nil)

// New builds the Echo instance serving the whole API, its docs and health.
func New(deps Deps) (*echo.Echo, error) {
	s := &Server{log: deps.Log, deps: deps, metrics: deps.Metrics, cursors: cursors{keyed.Derive(deps.Secret, "cursor")}}
	if s.metrics == nil {
		s.metrics = noMetrics{}
	}

	doc, err := LoadSpec()
	if err != nil {
		return nil, err
	}
	k, err := newContract(doc, deps.Authenticator, deps.BodyLimitBytes)
	if err != nil {
		return nil, err
	}

	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.handleError
	e.IPExtractor = ipExtractor(deps.TrustedProxies)

	ops, err := operationIDs()
	if err != nil {
		return nil, err
	}
	e.Use(withRequestID)
	// Tracing and metrics see the answer accessLog makes of an error, and
	// accessLog's line carries the trace id.
	if deps.TracerProvider != nil {
		e.Use(s.traceRequests(deps.TracerProvider, ops, deps.TrustedProxies))
	}
	if deps.Metrics != nil {
		e.Use(s.instrument(ops))
	}
	e.Use(s.accessLog, s.recoverPanic, securityHeaders(deps.Production), withClient)
	if len(deps.CORSAllowedOrigins) > 0 {
		e.Use(middleware.CORSWithConfig(middleware.CORSConfig{
			AllowOrigins:  deps.CORSAllowedOrigins,
			AllowHeaders:  []string{echo.HeaderAuthorization, echo.HeaderContentType, "X-Request-ID"},
			ExposeHeaders: []string{"X-Request-ID", "traceparent", "Retry-After", "RateLimit", "RateLimit-Policy", "Location"},
			MaxAge:        600,
		}))
	}
	e.Use(k.middleware)

	routes := headWithGet{e}
	if err := s.registerDocs(routes); err != nil {
		return nil, err
	}
	if deps.MetricsHandler != nil {
		routes.GET("/metrics", s.serveMetrics(deps.MetricsHandler, deps.MetricsToken))
	}
	api.RegisterHandlers(routes, api.NewStrictHandler(s, nil))
	return e, nil
}

// headWithGet registers HEAD wherever it registers GET, with the same
// handler: RFC 9110 expects HEAD wherever GET works, and the spec need not
// declare it. The contract treats HEAD as the GET it mirrors (same security,
// same validation); net/http sends the status and headers and drops the body.
type headWithGet struct{ *echo.Echo }

func (r headWithGet) GET(path string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) *echo.Route {
	r.HEAD(path, h, m...)
	return r.Echo.GET(path, h, m...)
}

// ipExtractor takes the client address from X-Forwarded-For only when the
// peer is a configured trusted proxy; otherwise the peer address is the client.
func ipExtractor(trusted []netip.Prefix) echo.IPExtractor {
	if len(trusted) == 0 {
		return echo.ExtractIPDirect()
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, p := range trusted {
		_, n, err := net.ParseCIDR(p.String())
		if err == nil {
			opts = append(opts, echo.TrustIPRange(n))
		}
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}
