// Package logging builds the service's structured logger and the types that
// keep personal data out of log lines.
package logging

import (
	"context"
	"io"
	"log/slog"
	"strings"

	"go.opentelemetry.io/otel/trace"

	"github.com/gatehouse/gatehouse/internal/requestid"
)

// New returns a logger writing to w in format "json" or "text" at level, that
// adds the request id of the context to every record logged with one.
func New(w io.Writer, format string, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	if format == "json" {
		h = slog.NewJSONHandler(w, opts)
	} else {
		h = slog.NewTextHandler(w, opts)
	}
	return slog.New(requestIDHandler{h})
}

// requestIDHandler adds request_id to records logged with a request
// context, and trace_id and span_id when the context holds a span (tracing
// is on): a log line leads to its trace.
type requestIDHandler struct{ slog.Handler }

func (h requestIDHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := requestid.From(ctx); id != "" {
		r.AddAttrs(slog.String("request_id", id))
	}
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return h.Handler.Handle(ctx, r)
}

func (h requestIDHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return requestIDHandler{h.Handler.WithAttrs(attrs)}
}

func (h requestIDHandler) WithGroup(name string) slog.Handler {
	return requestIDHandler{h.Handler.WithGroup(name)}
}

// Email is an address that masks itself when logged or printed:
// "alice@example.com" becomes "a***@e***.com". Wrap every email that may
// reach a log line or an audit record in it.
type Email string

// LogValue implements slog.LogValuer.
func (e Email) LogValue() slog.Value { return slog.StringValue(e.String()) }

// String implements fmt.Stringer, so %s and %v mask too.
func (e Email) String() string { return MaskEmail(string(e)) }

// MaskEmail keeps the first character of the local part and of the domain and
// the top-level domain, enough to tell addresses apart in an investigation
// without recording them.
func MaskEmail(s string) string {
	at := strings.LastIndexByte(s, '@')
	if at <= 0 || at == len(s)-1 {
		return "***"
	}
	local, domain := s[:at], s[at+1:]
	tld := ""
	if dot := strings.LastIndexByte(domain, '.'); dot > 0 {
		tld = domain[dot:]
		domain = domain[:dot]
	}
	return firstRune(local) + "***@" + firstRune(domain) + "***" + tld
}

func firstRune(s string) string {
	for _, r := range s {
		return string(r)
	}
	return ""
}
