package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestServe_MetricsListenerAndTracingToADeadCollector runs the binary with
// METRICS_ADDR and traces exported to a collector that accepts connections
// and never answers: requests are answered all the same (the batch span
// processor drops what it cannot export), each names its trace, /metrics is
// served on its own listener and not on the main port.
func TestServe_MetricsListenerAndTracingToADeadCollector(t *testing.T) {
	t.Parallel()
	dead, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer dead.Close()
	go func() {
		for {
			c, err := dead.Accept()
			if err != nil {
				return
			}
			defer c.Close() // hold it open, say nothing
		}
	}()
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	in := startCluster(t, 1, "METRICS_ADDR="+metricsAddr,
		"OTEL_EXPORTER_OTLP_ENDPOINT=http://"+dead.Addr().String(), "OTEL_BSP_SCHEDULE_DELAY=50")[0]

	// A client timeout well under the exporter's 10 s: a request waiting on
	// the collector would fail here.
	hc := &http.Client{Timeout: 5 * time.Second}
	fetch := func(url string) (int, http.Header, string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		res, err := hc.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v\nlogs:\n%s", url, err, in.logs.String())
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, res.Header, string(b)
	}
	for i := range 200 {
		status, h, _ := fetch(in.url + "/health/live")
		if status != http.StatusOK || !strings.HasPrefix(h.Get("traceparent"), "00-") {
			t.Fatalf("request %d: %d, traceparent %q", i, status, h.Get("traceparent"))
		}
		if i%50 == 0 {
			time.Sleep(100 * time.Millisecond) // let the processor try an export
		}
	}
	if status, _, _ := fetch(in.url + "/metrics"); status != http.StatusNotFound {
		t.Errorf("/metrics on the main port with METRICS_ADDR set: %d", status)
	}
	status, _, body := fetch("http://" + metricsAddr + "/metrics")
	if status != http.StatusOK || !strings.Contains(body, `gatehouse_http_requests_total{method="GET",operation="getLiveness",status_class="2xx"} 200`) {
		t.Fatalf("/metrics on METRICS_ADDR: %d\n%.2000s", status, body)
	}
	if !strings.Contains(in.logs.String(), "tracing to OTLP") {
		t.Errorf("no tracing in the logs:\n%s", in.logs.String())
	}
}
