package main

import (
	"net/http"
	"strings"
	"testing"
)

// TestOTLPSink_CountsExportsByPath: the stand-in collector accepts OTLP/HTTP
// exports and counts them by signal, so the bench can tell a build that
// traces from one that does not.
func TestOTLPSink_CountsExportsByPath(t *testing.T) {
	sink, err := startSink()
	if err != nil {
		t.Fatal(err)
	}
	defer sink.close()
	for _, c := range []struct {
		method, path string
		want         int
	}{
		{http.MethodPost, "/v1/traces", http.StatusOK},
		{http.MethodPost, "/v1/traces", http.StatusOK},
		{http.MethodPost, "/v1/metrics", http.StatusOK},
		{http.MethodGet, "/v1/traces", http.StatusNotFound},
	} {
		req, _ := http.NewRequestWithContext(t.Context(), c.method, sink.url+c.path, strings.NewReader("span"))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != c.want {
			t.Errorf("%s %s: %d, want %d", c.method, c.path, res.StatusCode, c.want)
		}
	}
	if n, bytes := sink.count("/v1/traces"); n != 2 || bytes != 8 {
		t.Errorf("traces: %d exports, %d bytes; want 2 and 8", n, bytes)
	}
	if n, _ := sink.count("/v1/metrics"); n != 1 {
		t.Errorf("metrics: %d exports, want 1", n)
	}
}
