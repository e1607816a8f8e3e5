package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/gatehouse/gatehouse/internal/apitest"
)

// addressTiming times one request at a time to target for an address with an
// account (known, unverified: the one that gets mails) and one without, n
// each, in pairs whose order is drawn at random (so whatever a request leaves
// behind, such as the mail it queues, slows the next request of either kind
// alike), with a pause between requests for background work to settle. It
// reports the medians, the p90s, and how often the best single threshold on
// the latency tells the two apart (50%: a coin toss; the threshold is fitted
// to the same samples, so a few points above 50% are chance).
func (b *bench) addressTiming(target, known string, n int) error {
	c := &http.Client{Timeout: 30 * time.Second}
	unknown := "nobody-" + uuid.NewString() + "@example.com"
	do := func(email string) (time.Duration, error) {
		body := fmt.Sprintf(`{"email":%q}`, email)
		t0 := time.Now()
		res, err := c.Post(target, "application/json", strings.NewReader(body))
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		d := time.Since(t0)
		if res.StatusCode != http.StatusAccepted {
			return 0, fmt.Errorf("POST %s: %d", target, res.StatusCode)
		}
		return d, nil
	}
	for range 20 { // warm the connection, the pool and the plans
		for _, e := range []string{known, unknown} {
			if _, err := do(e); err != nil {
				return err
			}
		}
	}
	var k, u []time.Duration
	for range n {
		order := []string{known, unknown}
		if rand.IntN(2) == 0 { //nolint:gosec // G404: shuffles the order of timed requests; no secret
			order[0], order[1] = order[1], order[0]
		}
		for _, e := range order {
			d, err := do(e)
			if err != nil {
				return err
			}
			if e == known {
				k = append(k, d)
			} else {
				u = append(u, d)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	slices.Sort(k)
	slices.Sort(u)
	mk, mu := quantile(k, 0.5), quantile(u, 0.5)
	acc := thresholdAccuracy(k, u)
	name := "POST " + strings.TrimPrefix(target[strings.Index(target, "/api/v1"):], "/api/v1")
	b.note("%s, %d each interleaved: with account median %s p90 %s, without median %s p90 %s",
		name, n, ms(mk), ms(quantile(k, 0.9)), ms(mu), ms(quantile(u, 0.9)))
	b.goal(goal{
		Name:   name + ": account vs none, told apart",
		Figure: fmt.Sprintf("median diff %+.2f ms", float64((mk-mu).Microseconds())/1000),
		Ratio:  &acc, RatioText: fmt.Sprintf("%.0f%%", 100*acc),
		Goal: "< 60% (50% = chance)", Status: status(acc < 0.60),
	})
	return nil
}

// thresholdAccuracy is the best share of requests a single latency threshold
// classifies right (a above it and b below, or the reverse). a and b are
// sorted and of equal length.
func thresholdAccuracy(a, b []time.Duration) float64 {
	best := 0.5
	for _, t := range slices.Concat(a, b) {
		aAbove := len(a) - countBelow(a, t)
		bBelow := countBelow(b, t)
		acc := float64(aAbove+bBelow) / float64(len(a)+len(b))
		best = max(best, acc, 1-acc)
	}
	return best
}

// countBelow counts the elements of sorted s less than t.
func countBelow(s []time.Duration, t time.Duration) int {
	i, _ := slices.BinarySearch(s, t)
	return i
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }

// hostileBodies sends each hostile body shape, at the default body limit,
// to POST /api/v1/auth/login without a token, one request at a time, and
// reports the slowest answer, the bytes the server allocated per request
// (from its runtime statistics) as a multiple of the body size, and its peak
// resident memory with how far it rose above where it stood before.
func (b *bench) hostileBodies(srv *server) error {
	const limit, n = 1 << 20, 10 // BODY_LIMIT_BYTES's default
	const maxTime, maxAlloc, maxRSS = 100 * time.Millisecond, 12, 64 << 20
	c := &http.Client{Timeout: 30 * time.Second}
	pid := srv.cmd.Process.Pid
	for _, hb := range apitest.HostileBodies(limit) {
		// Writing 5 to clear_refs resets the peak (VmHWM) to the current RSS.
		if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0); err != nil {
			return fmt.Errorf("reset peak RSS: %w", err)
		}
		base, err := procStatus(pid, "VmRSS:")
		if err != nil {
			return err
		}
		before, err := srv.totalAlloc()
		if err != nil {
			return err
		}
		var worst time.Duration
		for range n {
			req, _ := http.NewRequest(http.MethodPost, srv.url+"/api/v1/auth/login", bytes.NewReader(hb.Body))
			req.Header.Set("Content-Type", "application/json")
			t0 := time.Now()
			res, err := c.Do(req)
			if err != nil {
				return fmt.Errorf("hostile body %s: %w", hb.Name, err)
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			worst = max(worst, time.Since(t0))
			if res.StatusCode != http.StatusBadRequest && res.StatusCode != http.StatusUnprocessableEntity {
				return fmt.Errorf("hostile body %s: status %d, want 400 or 422", hb.Name, res.StatusCode)
			}
		}
		after, err := srv.totalAlloc()
		if err != nil {
			return err
		}
		peak, err := procStatus(pid, "VmHWM:")
		if err != nil {
			return err
		}
		alloc := float64(after-before) / n / float64(len(hb.Body))
		b.goal(goal{
			Name:   "hostile 1 MiB body: " + hb.Name,
			Figure: fmt.Sprintf("%s, alloc %.1fx, RSS %.0f MiB (%+.1f)", ms(worst), alloc, float64(peak)/(1<<20), float64(peak-base)/(1<<20)),
			Ratio:  &alloc, RatioText: fmt.Sprintf("%.0f ms, %.1fx", float64(worst.Microseconds())/1000, alloc),
			Goal:   fmt.Sprintf("< %d ms, alloc < %dx, RSS < +%d MiB", maxTime.Milliseconds(), maxAlloc, maxRSS>>20),
			Status: status(worst < maxTime && alloc < maxAlloc && peak-base < maxRSS),
		})
	}
	return nil
}

func (b *bench) insertUsers(ctx context.Context, dbURL string, n int) error {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	start := time.Now()
	hash := "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U"
	const batch = 50_000
	for done := 0; done < n; done += batch {
		rows := make([][]any, 0, batch)
		for i := done; i < min(n, done+batch); i++ {
			id, _ := uuid.NewV7()
			rows = append(rows, []any{id, fmt.Sprintf("user%07d@example.com", i), hash})
		}
		if _, err := conn.CopyFrom(ctx, pgx.Identifier{"users"}, []string{"id", "email", "password_hash"}, pgx.CopyFromRows(rows)); err != nil {
			return err
		}
	}
	if _, err := conn.Exec(ctx, `ANALYZE users`); err != nil {
		return err
	}
	b.note("inserted %d users in %s", n, time.Since(start).Round(time.Second))
	return nil
}

// walk pages through every user, keeping the cursor of every page, then
// times the first and the last 50 pages again in pairs (one shallow page,
// one deep, in random order): both ends are measured at the same moments,
// so a change in what else the machine runs during the long walk weighs on
// both alike. It returns the two medians and the number of pages.
func walk(base, tok string, maxPages int) (first, deep time.Duration, pages int, err error) {
	c := &http.Client{Timeout: 30 * time.Second}
	get := func(cursor string) (next *string, d time.Duration, err error) {
		u := base + "/api/v1/users?limit=100"
		if cursor != "" {
			u += "&cursor=" + url.QueryEscape(cursor)
		}
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		t0 := time.Now()
		res, err := c.Do(req)
		if err != nil {
			return nil, 0, err
		}
		var out struct {
			Meta struct {
				NextCursor *string `json:"next_cursor"`
			} `json:"meta"`
		}
		err = json.NewDecoder(res.Body).Decode(&out)
		res.Body.Close()
		d = time.Since(t0)
		if err != nil {
			return nil, 0, fmt.Errorf("%d: %w", res.StatusCode, err)
		}
		if res.StatusCode != 200 {
			return nil, 0, fmt.Errorf("status %d", res.StatusCode)
		}
		return out.Meta.NextCursor, d, nil
	}
	var cursors []string // cursors[i] fetches page i+1; page 1 needs none
	cursor := ""
	for pages = 0; pages < maxPages+1; pages++ {
		cursors = append(cursors, cursor)
		next, _, err := get(cursor)
		if err != nil {
			return 0, 0, 0, fmt.Errorf("page %d: %w", pages+1, err)
		}
		if next == nil {
			pages++
			break
		}
		cursor = *next
	}
	k := min(50, len(cursors)/2)
	shallow, deepest := cursors[:k], cursors[len(cursors)-k:]
	var a, b []time.Duration
	for i := range k {
		deepFirst := rand.IntN(2) == 0 //nolint:gosec // G404: shuffles the order of timed requests; no secret
		for j := range 2 {
			isDeep := (j == 0) == deepFirst
			cur := shallow[i]
			if isDeep {
				cur = deepest[i]
			}
			_, d, err := get(cur)
			if err != nil {
				return 0, 0, 0, err
			}
			if isDeep {
				b = append(b, d)
			} else {
				a = append(a, d)
			}
		}
	}
	slices.Sort(a)
	slices.Sort(b)
	return quantile(a, 0.5), quantile(b, 0.5), pages, nil
}
