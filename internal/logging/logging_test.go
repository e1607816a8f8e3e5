package logging

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/gatehouse/gatehouse/internal/requestid"
)

func TestMaskEmail(t *testing.T) {
	for in, want := range map[string]string{
		"alice@example.com":      "a***@e***.com",
		"Ünïcode@bücher.example": "Ü***@b***.example",
		"x@localhost":            "x***@l***",
		"not-an-email":           "***",
		"@example.com":           "***",
		"alice@":                 "***",
		"":                       "***",
	} {
		if got := MaskEmail(in); got != want {
			t.Errorf("MaskEmail(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestEmail_NeverLogsTheAddress(t *testing.T) {
	var buf bytes.Buffer
	log := New(&buf, "json", slog.LevelDebug)
	e := Email("alice@example.com")
	log.InfoContext(requestid.With(context.Background(), "req-1"), "login", "email", e, "printed", fmt.Sprintf("%v", e))
	out := buf.String()
	if strings.Contains(out, "alice@example.com") || strings.Contains(out, "alice") {
		t.Fatalf("log line leaks the address: %s", out)
	}
	if !strings.Contains(out, `"request_id":"req-1"`) {
		t.Fatalf("log line lacks the request id: %s", out)
	}
}

func TestNew_AddsTheTraceOfTheContext(t *testing.T) {
	var buf bytes.Buffer
	log := New(&buf, "json", slog.LevelDebug)
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ctx := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled}))
	log.InfoContext(ctx, "traced")
	log.Info("untraced")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 lines, got %q", buf.String())
	}
	if !strings.Contains(lines[0], `"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"`) || !strings.Contains(lines[0], `"span_id":"00f067aa0ba902b7"`) {
		t.Errorf("traced line lacks trace_id and span_id: %s", lines[0])
	}
	if strings.Contains(lines[1], "trace_id") {
		t.Errorf("a line without a span has a trace id: %s", lines[1])
	}
}
