package httpapi

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/gatehouse/gatehouse/internal/requestid"
)

// withRequestID takes a well-formed X-Request-ID from the client or makes
// one, and puts it in the response header and the request context, where the
// logger, the problems and the envelopes find it.
func withRequestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		id := requestid.FromHeader(c.Request().Header.Get(requestid.Header))
		c.Response().Header().Set(requestid.Header, id)
		c.SetRequest(c.Request().WithContext(requestid.With(c.Request().Context(), id)))
		return next(c)
	}
}

// accessLog writes one line per request. It logs the route pattern, never
// the path itself (a path or query may hold an email or a token), headers or
// bodies. A 5xx carries its internal cause; that is the one place an error is
// logged.
func (s *Server) accessLog(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		if err := next(c); err != nil {
			c.Error(err)
		}
		req, res := c.Request(), c.Response()
		cause, _ := c.Get(causeKey).(error)
		level := slog.LevelInfo
		if res.Status >= 500 && !errors.Is(cause, errClientGone) {
			level = slog.LevelError
		}
		if !s.log.Enabled(req.Context(), level) {
			return nil // spare the attributes on every request when the line is filtered out
		}
		attrs := []slog.Attr{
			slog.String("method", req.Method),
			slog.String("route", c.Path()),
			slog.Int("status", res.Status),
			slog.Int64("bytes", res.Size),
			slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
			slog.String("ip", c.RealIP()),
		}
		if cause != nil {
			attrs = append(attrs, slog.String("error", cause.Error()))
		}
		s.log.LogAttrs(req.Context(), level, "request", attrs...)
		return nil
	}
}

// recoverPanic turns a panic into a 500 problem; the stack goes to the log,
// never to the client.
func (s *Server) recoverPanic(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			r := recover()
			if r == nil {
				return
			}
			if e, ok := r.(error); ok && errors.Is(e, http.ErrAbortHandler) {
				panic(r)
			}
			stack := make([]byte, 8<<10)
			stack = stack[:runtime.Stack(stack, false)]
			err = fmt.Errorf("panic: %v\n%s", r, stack)
		}()
		return next(c)
	}
}

// securityHeaders sets the headers every API response should carry. The docs
// page gets a policy that lets its own scripts and styles run.
func securityHeaders(production bool) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			h := c.Response().Header()
			h.Set("X-Content-Type-Options", "nosniff")
			h.Set("X-Frame-Options", "DENY")
			h.Set("Referrer-Policy", "no-referrer")
			h.Set("Cross-Origin-Opener-Policy", "same-origin")
			if strings.HasPrefix(c.Request().URL.Path, "/docs") {
				h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'")
			} else {
				h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
			}
			if production {
				h.Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
			}
			return next(c)
		}
	}
}
