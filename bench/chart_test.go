package main

import (
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestQuantile_IsTheNearestRank(t *testing.T) {
	s := make([]time.Duration, 100)
	for i := range s {
		s[i] = time.Duration(i+1) * time.Millisecond
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 50 * time.Millisecond}, {0.9, 90 * time.Millisecond}, {0.99, 99 * time.Millisecond}, {1, 100 * time.Millisecond}} {
		if got := quantile(s, c.q); got != c.want {
			t.Errorf("quantile(1..100 ms, %v) = %v, want %v", c.q, got, c.want)
		}
	}
	if got := quantile(nil, 0.99); got != 0 {
		t.Errorf("quantile(nil) = %v, want 0", got)
	}
}

func testRun(started string, phases []phase, goals []goal) *runResult {
	ts, _ := time.Parse(time.RFC3339, started)
	return &runResult{Started: ts, Machine: machine{CPUs: 2, GitCommit: "0123456789abcdef"}, Phases: phases, Goals: goals}
}

// TestCompare_DrawsBothRunsInOneWellFormedSVG: two runs whose phases and
// goals differ in part give one SVG that an XML parser reads to the end,
// naming every phase and goal of either run, beside the second file.
func TestCompare_DrawsBothRunsInOneWellFormedSVG(t *testing.T) {
	r := 0.22
	a := testRun("2026-12-02T14:00:00Z",
		[]phase{
			{Name: "liveness, 64 conns", OKRPS: 18500, LatencyMS: percentiles{P50: 2, P99: 13}},
			{Name: "read, 64 conns", OKRPS: 4100, LatencyMS: percentiles{P50: 9, P99: 45}},
		},
		[]goal{{Name: "/users/me throughput / /health/live", Ratio: &r, RatioText: "0.22", Goal: "≥ 0.40", Status: missed}})
	b := testRun("2026-12-02T15:00:00Z",
		[]phase{
			{Name: "read, 64 conns", OKRPS: 8000, LatencyMS: percentiles{P50: 4, P99: 20}},
			{Name: "raw argon2id <1 goroutine per CPU>", OKRPS: 62, LatencyMS: percentiles{P50: 30, P99: 40}},
		},
		[]goal{{Name: "metrics & tracing", RatioText: "+1.0%", Goal: "≤ 5%", Status: na}})
	dir := t.TempDir()
	files := []string{filepath.Join(dir, "A.json"), filepath.Join(dir, "B.json")}
	for i, run := range []*runResult{a, b} {
		if err := run.write(strings.TrimSuffix(files[i], ".json")); err != nil {
			t.Fatal(err)
		}
	}

	if err := runCompare(files, ""); err != nil {
		t.Fatal(err)
	}

	svg, err := os.ReadFile(filepath.Join(dir, "A_vs_B.svg"))
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	d := xml.NewDecoder(strings.NewReader(string(svg)))
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("the SVG is not well-formed: %v", err)
		}
		if cd, ok := tok.(xml.CharData); ok {
			texts = append(texts, string(cd))
		}
	}
	all := strings.Join(texts, "\n")
	for _, want := range []string{
		"liveness, 64 conns", "read, 64 conns", "raw argon2id <1 goroutine per CPU>",
		"/users/me throughput / /health/live", "metrics & tracing", "0.22  missed", "+1.0%  n/a", "18.5k", "8.0k",
		"A: 2026-12-02 14:00:00Z", "B: 2026-12-02 15:00:00Z",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("the chart's text lacks %q", want)
		}
	}
}
