package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// otlpSink stands in for an OpenTelemetry collector on loopback: it answers
// 200 to every OTLP/HTTP export and counts them, so tracing costs what
// building and sending spans costs and nothing more.
type otlpSink struct {
	url string
	srv *http.Server
	mu  sync.Mutex
	// exports and bytes are counted by path (/v1/traces, /v1/metrics).
	exports map[string]int
	bytes   map[string]int64
}

func startSink() (*otlpSink, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &otlpSink{url: "http://" + l.Addr().String(), exports: map[string]int{}, bytes: map[string]int64{}}
	s.srv = &http.Server{Handler: http.HandlerFunc(s.serve), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(l) }()
	return s, nil
}

func (s *otlpSink) serve(w http.ResponseWriter, r *http.Request) {
	n, _ := io.Copy(io.Discard, r.Body)
	if r.Method != http.MethodPost || !strings.HasPrefix(r.URL.Path, "/v1/") {
		http.NotFound(w, r)
		return
	}
	s.mu.Lock()
	s.exports[r.URL.Path]++
	s.bytes[r.URL.Path] += n
	s.mu.Unlock()
	// An empty body is an empty ExportTraceServiceResponse: everything
	// accepted.
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.WriteHeader(http.StatusOK)
}

func (s *otlpSink) count(path string) (exports int, bytes int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.exports[path], s.bytes[path]
}

func (s *otlpSink) close() { _ = s.srv.Close() }

// observability measures what metrics and tracing cost the authenticated
// read: four servers, (a) metrics off, (b) metrics on, (c) metrics on and
// every request traced to a loopback OTLP sink, (d) the same with one trace
// in ten sampled (what a busy production runs), loaded in turn at 64
// connections, in six short rounds whose order rotates so that a drift of
// the machine's load falls on each alike. Servers without metrics or tracing
// ignore the variables; the goals then say so instead of met or missed.
func (b *bench) observability(bin, dbURL string) error {
	sink, err := startSink()
	if err != nil {
		return err
	}
	defer sink.close()
	variants := []struct {
		name string
		env  []string
	}{
		{"read, metrics off, 64 conns", []string{"METRICS_ENABLED=false"}},
		{"read, metrics on, 64 conns", []string{"METRICS_ENABLED=true"}},
		{"read, metrics + tracing, 64 conns", []string{
			"METRICS_ENABLED=true", "OTEL_EXPORTER_OTLP_ENDPOINT=" + sink.url,
			"OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf", "OTEL_SERVICE_NAME=gatehouse-bench",
		}},
		{"read, metrics + tracing 10% sampled, 64 conns", []string{
			"METRICS_ENABLED=true", "OTEL_EXPORTER_OTLP_ENDPOINT=" + sink.url,
			"OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf", "OTEL_SERVICE_NAME=gatehouse-bench",
			"OTEL_TRACES_SAMPLER=parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG=0.1",
		}},
	}
	servers := make([]*server, len(variants))
	stopAll := func() {
		// Stopping flushes the span exporter: the sink's count is complete
		// once every server has exited.
		for i, s := range servers {
			if s != nil {
				s.stop()
				servers[i] = nil
			}
		}
	}
	defer stopAll()
	reads := make([]request, len(variants))
	for i, v := range variants {
		s, err := b.startServer(bin, dbURL, v.env...)
		if err != nil {
			return fmt.Errorf("%s: %w", v.name, err)
		}
		servers[i] = s
		tok, err := s.login(benchEmail, benchPassword)
		if err != nil {
			return fmt.Errorf("%s: %w", v.name, err)
		}
		reads[i] = request{method: "GET", url: s.url + "/api/v1/users/me", token: tok}
		load(reads[i], 64, time.Second) // warm the connections, pools and caches
	}
	offStatus, err := servers[0].metricsStatus()
	if err != nil {
		return err
	}
	onStatus, err := servers[1].metricsStatus()
	if err != nil {
		return err
	}
	if offStatus == http.StatusOK {
		return errors.New("METRICS_ENABLED=false still serves /metrics")
	}

	const rounds = 6
	samples := make([][]sample, len(variants))
	for r := range rounds {
		for k := range variants {
			i := (r + k) % len(variants)
			samples[i] = append(samples[i], load(reads[i], 64, b.dur/4))
		}
	}
	stopAll()
	phases := make([]phase, len(variants))
	for i, v := range variants {
		phases[i] = b.phase(merge(samples[i]...), v.name, "GET /api/v1/users/me")
	}
	traceExports, traceBytes := sink.count("/v1/traces")
	metricExports, _ := sink.count("/v1/metrics")

	off := phases[0]
	// The cost of variant i is the median over the rounds of what it lost
	// against variant (a) in the same round: a round in which something
	// else took the machine moves it less than it moves the totals. The
	// rounds are listed too: how far apart they are shows this machine's
	// noise.
	costs := func(i int) (float64, string) {
		var cs []float64
		var parts []string
		for r := range rounds {
			c := 1 - rate(samples[i][r])/rate(samples[0][r])
			cs = append(cs, c)
			parts = append(parts, fmt.Sprintf("%+.1f%%", 100*c))
		}
		slices.Sort(cs)
		return (cs[(len(cs)-1)/2] + cs[len(cs)/2]) / 2, strings.Join(parts, ", ")
	}
	// overhead is the goal of variant i against variant (a); inactive, when
	// not empty, says why this build cannot measure it.
	overhead := func(i int, name, note, inactive string) {
		c, rounds := costs(i)
		g := goal{
			Name: "/users/me throughput lost to " + name,
			Figure: fmt.Sprintf("%.0f vs %.0f req/s, p99 %.1f vs %.1f ms",
				phases[i].OKRPS, off.OKRPS, phases[i].LatencyMS.P99, off.LatencyMS.P99),
			Ratio: &c, RatioText: fmt.Sprintf("%+.1f%%", 100*c), Goal: "≤ 5%", Status: status(c <= 0.05),
			Note: note + "rounds: " + rounds + "; the cost is their median",
		}
		if inactive != "" {
			g.Status, g.Note = na, inactive+"; rounds: "+rounds
		}
		b.goal(g)
	}
	var noMetrics, noTraces string
	if onStatus != http.StatusOK {
		noMetrics = fmt.Sprintf("metrics not active in this build (GET /metrics: %d): the figure is the noise between two like servers", onStatus)
	}
	if traceExports == 0 {
		noTraces = "tracing not active in this build: the OTLP sink received no spans"
	}
	overhead(1, "metrics", "", noMetrics)
	overhead(2, "metrics + tracing", fmt.Sprintf("%d trace exports, %d KiB; ", traceExports, traceBytes>>10), noTraces)
	overhead(3, "metrics + tracing 10% sampled", "", noTraces)
	if metricExports > 0 {
		b.note("the OTLP sink also received %d metric exports", metricExports)
	}
	return nil
}

// rate is a sample's 2xx answers per second.
func rate(s sample) float64 {
	if s.elapsed <= 0 {
		return 0
	}
	return float64(s.ok) / s.elapsed.Seconds()
}

// merge adds samples of the same load taken one after the other: their
// requests and times add up.
func merge(ss ...sample) sample {
	var m sample
	for _, s := range ss {
		m.workers = max(m.workers, s.workers)
		m.elapsed += s.elapsed
		m.lat = append(m.lat, s.lat...)
		m.ok += s.ok
		m.bad += s.bad
		m.lost += s.lost
	}
	return m
}

// metricsStatus is the status of an authorised GET /metrics on the main
// port: 200 when the build serves metrics and they are enabled.
func (s *server) metricsStatus() (int, error) {
	req, _ := http.NewRequest(http.MethodGet, s.url+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+s.metricsToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode, nil
}
