package main

import (
	"fmt"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
)

// propagation measures how long after one instance answers a logout another
// instance refuses the logged-out access token, while 64 connections read
// through that other instance: two servers on one database, one Redis key
// prefix and one signing key, as a deployment runs them. The delay of one
// sample is from the logout's response to the end of the first request the
// other instance refuses (requests sent back to back), so it includes one
// request's latency under the load.
func (b *bench) propagation(bin, dbURL string) error {
	dir, err := os.MkdirTemp("", "gatehouse-bench-pair")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	keyFile, err := writeKey(dir)
	if err != nil {
		return err
	}
	shared := []string{"JWT_SIGNING_KEY_FILES=" + keyFile, "REDIS_KEY_PREFIX=bench:" + uuid.NewString() + ":"}
	revoker, err := b.startServer(bin, dbURL, shared...)
	if err != nil {
		return err
	}
	defer revoker.stop()
	other, err := b.startServer(bin, dbURL, shared...)
	if err != nil {
		return err
	}
	defer other.stop()

	reader, err := revoker.login(benchEmail, benchPassword)
	if err != nil {
		return err
	}
	const n = 100
	sessions := make([]string, n)
	for i := range sessions {
		if sessions[i], err = revoker.login(benchEmail, benchPassword); err != nil {
			return err
		}
	}

	var wg sync.WaitGroup
	var readers sample
	wg.Add(1)
	go func() {
		defer wg.Done()
		readers = load(request{method: "GET", url: other.url + "/api/v1/users/me", token: reader}, 64, b.dur)
	}()
	time.Sleep(b.dur / 8)
	c := &http.Client{Timeout: 10 * time.Second}
	delays := make([]time.Duration, 0, n)
	started := time.Now()
	for _, tok := range sessions {
		if time.Since(started) > b.dur*3/4 {
			break
		}
		if code, err := call(c, "POST", revoker.url+"/api/v1/auth/logout", tok); err != nil || code != http.StatusNoContent {
			return fmt.Errorf("logout: %d %w", code, err)
		}
		t0 := time.Now()
		for {
			code, err := call(c, "GET", other.url+"/api/v1/users/me", tok)
			if err != nil {
				return err
			}
			if code == http.StatusUnauthorized {
				break
			}
			if time.Since(t0) > 10*time.Second {
				return fmt.Errorf("the other instance still answers %d 10 s after the logout", code)
			}
		}
		delays = append(delays, time.Since(t0))
	}
	elapsed := time.Since(started)
	wg.Wait()
	b.phase(readers, "64 readers on the other instance", "GET /api/v1/users/me")
	p := b.phase(sample{workers: 1, elapsed: elapsed, lat: delays, ok: len(delays)},
		"logout on one instance → refused by the other", "POST /api/v1/auth/logout, then GET /api/v1/users/me elsewhere")
	slices.Sort(delays)
	b.goal(goal{
		Name:   "revocation seen by another instance, p99 (64 readers there)",
		Figure: fmt.Sprintf("p50 %.1f ms, max %s over %d logouts", p.LatencyMS.P50, ms(delays[len(delays)-1]), len(delays)),
		Ratio:  &p.LatencyMS.P99, RatioText: fmt.Sprintf("%.1f ms", p.LatencyMS.P99), Goal: "≤ 100 ms",
		Status: status(p.LatencyMS.P99 <= 100),
	})
	return nil
}

// call sends one request with a bearer token and returns the status.
func call(c *http.Client, method, url, tok string) (int, error) {
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	res, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	_ = res.Body.Close()
	return res.StatusCode, nil
}
