package main

import (
	"bytes"
	"io"
	"math"
	"net/http"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/argon2"
)

// sample is what one measured load saw: the latency of every answered
// request and how many were answered with a 2xx, answered otherwise, or not
// answered at all.
type sample struct {
	workers int
	elapsed time.Duration
	lat     []time.Duration
	ok      int
	// bad counts answers outside 2xx; lost counts transport errors.
	bad, lost int
}

// measure calls do from workers goroutines until d has passed. do reports
// whether its call succeeded, or an error when it got no answer at all.
func measure(workers int, d time.Duration, do func() (bool, error)) sample {
	lat := make([][]time.Duration, workers)
	var ok, bad, lost atomic.Int64
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				t0 := time.Now()
				good, err := do()
				if err != nil {
					lost.Add(1)
					continue
				}
				lat[i] = append(lat[i], time.Since(t0))
				if good {
					ok.Add(1)
				} else {
					bad.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return sample{
		workers: workers, elapsed: time.Since(start), lat: slices.Concat(lat...),
		ok: int(ok.Load()), bad: int(bad.Load()), lost: int(lost.Load()),
	}
}

// phase is one measured load as the results record it.
type phase struct {
	Name string `json:"name"`
	// Work is what was done: a method and path, or "argon2id" for the raw
	// hash rate.
	Work string `json:"work"`
	// Conns is the number of connections (or, for hashing, goroutines).
	Conns   int     `json:"conns"`
	Seconds float64 `json:"seconds"`
	// Requests counts the answers; OK those in 2xx; Failed the other
	// answers and the requests that got none.
	Requests int `json:"requests"`
	OK       int `json:"ok"`
	Failed   int `json:"failed"`
	// ThroughputRPS is answers per second; OKRPS 2xx answers per second.
	ThroughputRPS float64     `json:"throughput_rps"`
	OKRPS         float64     `json:"ok_rps"`
	LatencyMS     percentiles `json:"latency_ms"`
}

// percentiles are latencies in milliseconds (nearest rank).
type percentiles struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

func (s sample) phase(name, work string) phase {
	lat := slices.Clone(s.lat)
	slices.Sort(lat)
	sec := s.elapsed.Seconds()
	p := phase{
		Name: name, Work: work, Conns: s.workers, Seconds: round(sec, 3),
		Requests: len(lat), OK: s.ok, Failed: s.bad + s.lost,
	}
	if sec > 0 {
		p.ThroughputRPS = round(float64(len(lat))/sec, 1)
		p.OKRPS = round(float64(s.ok)/sec, 1)
	}
	p.LatencyMS = percentiles{
		P50: toMS(quantile(lat, 0.50)), P90: toMS(quantile(lat, 0.90)),
		P99: toMS(quantile(lat, 0.99)), Max: toMS(quantile(lat, 1)),
	}
	return p
}

// quantile is the nearest-rank q-quantile of sorted s (0 when s is empty).
func quantile(s []time.Duration, q float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func toMS(d time.Duration) float64 { return round(float64(d)/float64(time.Millisecond), 3) }

func round(x float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(x*p) / p
}

// request is one kind of HTTP request a load sends.
type request struct {
	method, url, token string
	body               []byte
}

// load sends req on conns connections for d.
func load(req request, conns int, d time.Duration) sample {
	tr := &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, DisableCompression: true}
	c := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	defer tr.CloseIdleConnections()
	return measure(conns, d, func() (bool, error) {
		var body io.Reader
		if req.body != nil {
			body = bytes.NewReader(req.body)
		}
		r, err := http.NewRequest(req.method, req.url, body)
		if err != nil {
			return false, err
		}
		if req.token != "" {
			r.Header.Set("Authorization", "Bearer "+req.token)
		}
		if req.body != nil {
			r.Header.Set("Content-Type", "application/json")
		}
		res, err := c.Do(r)
		if err != nil {
			return false, err
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode < 300, nil
	})
}

// hashRate measures the raw argon2id rate of this machine with gatehouse's
// parameters (19 MiB, 2 passes, 1 lane), one goroutine per CPU, calling
// x/crypto directly: what the login path could reach if hashing were all it
// did.
func hashRate(d time.Duration) sample {
	pw, salt := []byte("correct horse battery staple"), []byte("0123456789abcdef")
	return measure(runtime.NumCPU(), d, func() (bool, error) {
		_ = argon2.IDKey(pw, salt, 2, 19*1024, 1, 32)
		return true, nil
	})
}
