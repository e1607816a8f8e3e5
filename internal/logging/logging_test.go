package logging

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"

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
