// Command bench measures gatehouse against its performance goals (listed,
// with figures measured, in the README's Performance section) on this
// machine: it starts a real gatehouse binary on a private database of its
// own, loads it from this process over loopback, and prints each figure next
// to its goal. The load generator shares the machine, so the goals are
// ratios of figures measured in the same run. The results go to
// bench/results/TIME.json with a chart beside them (TIME.svg); -compare
// draws two runs side by side. Run it with `make bench`.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"
)

func main() {
	dur := flag.Duration("duration", 8*time.Second, "length of each load phase")
	users := flag.Int("users", 1_000_000, "users inserted for the listing benchmark")
	out := flag.String("out", "bench/results", "folder for the results (TIME.json) and their chart (TIME.svg)")
	compare := flag.Bool("compare", false, "measure nothing: draw the results files given as arguments (A.json [B.json]) side by side in one SVG and print their goals side by side")
	svg := flag.String("o", "", "with -compare, the SVG to write (default: A_vs_B.svg beside B.json)")
	only := flag.String("only", "", "run only this step (e.g. -only import: the 1 M-user import alone)")
	flag.Parse()
	if *compare {
		if err := runCompare(flag.Args(), *svg); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	if err := measureAll(*dur, *users, *out, *only); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// measureAll runs every phase and writes what it measured, also when a
// phase fails.
func measureAll(dur time.Duration, users int, out, only string) error {
	b := &bench{dur: dur, only: only, res: runResult{
		Started: time.Now().UTC(), Machine: machineInfo(),
		Settings: settings{PhaseSeconds: dur.Seconds(), Users: users},
	}}
	base, err := resultsBase(out, b.res.Started)
	if err != nil {
		return err
	}
	b.serverLog, err = os.Create(base + "-server.log")
	if err != nil {
		return err
	}
	defer b.serverLog.Close()
	b.res.ServerLog = b.serverLog.Name()

	err = b.run(context.Background(), users)
	b.res.Seconds = round(time.Since(b.res.Started).Seconds(), 1)
	b.res.Machine.LoadAvgEnd = loadAvg()
	if err != nil {
		b.res.Error = err.Error()
	}
	b.summary()
	if werr := b.res.write(base); werr != nil {
		return fmt.Errorf("write results: %w", werr)
	}
	fmt.Printf("results: %s.json\nchart:   %s.svg\nservers' output: %s (%d lines)\n", base, base, b.res.ServerLog, countLines(b.res.ServerLog))
	return err
}

func countLines(path string) int {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	return bytes.Count(data, []byte("\n"))
}

func (b *bench) summary() {
	count := map[string]int{}
	for _, g := range b.res.Goals {
		count[g.Status]++
	}
	fmt.Printf("\n%d goals met, %d missed", count[met], count[missed])
	if count[na] > 0 {
		fmt.Printf(", %d not measurable in this build", count[na])
	}
	fmt.Printf(" (run took %s; load average %s at the start, %s at the end)\n",
		time.Duration(b.res.Seconds*float64(time.Second)).Round(time.Second), b.res.Machine.LoadAvgStart, b.res.Machine.LoadAvgEnd)
}

const (
	benchEmail    = "bench@example.com"
	benchPassword = "correct horse battery staple"
)

func (b *bench) run(ctx context.Context, nUsers int) error {
	dur := b.dur
	base := os.Getenv("DATABASE_URL")
	if base == "" || os.Getenv("REDIS_URL") == "" {
		return errors.New("DATABASE_URL and REDIS_URL must be set (make bench sets them)")
	}
	m := b.res.Machine
	commit := m.GitCommit[:min(len(m.GitCommit), 10)]
	if m.GitDirty {
		commit += " with uncommitted changes"
	}
	fmt.Printf("gatehouse bench of commit %s on %d CPUs, %s per phase, load average %s;\n"+
		"the load generator shares the machine, so each goal is a ratio of figures measured in this run.\n\n",
		commit, runtime.NumCPU(), dur, m.LoadAvgStart)

	dbURL, err := freshDatabase(ctx, base, "gatehouse_bench")
	if err != nil {
		return err
	}
	if err := migrate(ctx, dbURL); err != nil {
		return err
	}
	binDir, err := os.MkdirTemp("", "gatehouse-bench-bin")
	if err != nil {
		return err
	}
	defer os.RemoveAll(binDir)
	bin, err := buildServer(binDir)
	if err != nil {
		return err
	}

	if err := b.step("import", func() error { return b.importUsers(ctx, bin, base, nUsers) }); err != nil {
		return fmt.Errorf("import: %w", err)
	}
	if b.only == "import" {
		return nil
	}

	// Hostile request bodies cost time and memory in proportion to their
	// size, whatever their shape: measured on a server of their own, so its
	// memory starts where a fresh process's does.
	if err := b.step("hostile bodies", func() error {
		srv, err := b.startServer(bin, dbURL)
		if err != nil {
			return err
		}
		defer srv.stop()
		return b.hostileBodies(srv)
	}); err != nil {
		return err
	}

	srv, err := b.startServer(bin, dbURL)
	if err != nil {
		return err
	}
	var stopOnce sync.Once
	stop := func() { stopOnce.Do(srv.stop) }
	defer stop()
	if err := srv.post("/api/v1/auth/register", fmt.Sprintf(`{"email":%q,"password":%q}`, benchEmail, benchPassword), 202); err != nil {
		return err
	}
	tok, err := srv.login(benchEmail, benchPassword)
	if err != nil {
		return err
	}
	read := request{method: "GET", url: srv.url + "/api/v1/users/me", token: tok}
	live := request{method: "GET", url: srv.url + "/health/live"}
	login := request{method: "POST", url: srv.url + "/api/v1/auth/login", body: []byte(fmt.Sprintf(`{"email":%q,"password":%q}`, benchEmail, benchPassword))}

	steps := []struct {
		name string
		f    func() error
	}{
		{"read vs liveness", func() error { b.readVsLiveness(read, live); return nil }},
		{"logins vs raw hash rate", func() error { b.loginRate(login); return nil }},
		{"reads during a login storm", func() error { b.storm(read, login); return nil }},
		{"memory", func() error { return b.memory(srv, read, login) }},
		{"forgot and resend timing", func() error {
			// An address with an account takes as long as one without (no
			// timing oracle).
			for _, path := range []string{"/api/v1/auth/password/forgot", "/api/v1/auth/email/resend"} {
				if err := b.addressTiming(srv.url+path, benchEmail, 300); err != nil {
					return err
				}
			}
			return nil
		}},
		{"listing depth", func() error { return b.listing(ctx, srv, dbURL, nUsers) }},
		{"revocation propagation", func() error {
			stop() // the two servers of this step and the three of the next run alone
			return b.propagation(bin, dbURL)
		}},
		{"metrics and tracing overhead", func() error {
			return b.observability(bin, dbURL)
		}},
	}
	for _, s := range steps {
		if err := b.step(s.name, s.f); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	return nil
}

// readVsLiveness compares the authenticated read with the cheapest request
// the server answers, at the same concurrency.
func (b *bench) readVsLiveness(read, live request) {
	l := b.phase(load(live, 64, b.dur), "liveness, 64 conns", "GET /health/live")
	r := b.phase(load(read, 64, b.dur), "read, 64 conns", "GET /api/v1/users/me")
	tr := r.OKRPS / l.OKRPS
	b.goal(goal{
		Name:   "/users/me throughput / /health/live (64 conns)",
		Figure: fmt.Sprintf("%.0f vs %.0f req/s", r.OKRPS, l.OKRPS),
		Ratio:  &tr, RatioText: fmt.Sprintf("%.2f", tr), Goal: "≥ 0.40", Status: status(tr >= 0.40),
	})
	pr := r.LatencyMS.P99 / l.LatencyMS.P99
	b.goal(goal{
		Name:   "/users/me p99 / /health/live p99 (64 conns)",
		Figure: fmt.Sprintf("%.1f vs %.1f ms", r.LatencyMS.P99, l.LatencyMS.P99),
		Ratio:  &pr, RatioText: fmt.Sprintf("%.2fx", pr), Goal: "≤ 2x", Status: status(pr <= 2),
	})
}

// loginRate compares logins alone with the raw argon2id rate of the
// machine, measured half before and half after the logins so that a change
// in what else the machine runs weighs on both alike.
func (b *bench) loginRate(login request) {
	before := hashRate(b.dur / 4)
	logins := load(login, 32, b.dur)
	raw := b.phase(merge(before, hashRate(b.dur/4)), "raw argon2id, 1 goroutine per CPU", "argon2id m=19 MiB t=2 p=1")
	l := b.phase(logins, "logins alone, 32 conns", "POST /api/v1/auth/login")
	r := l.OKRPS / raw.OKRPS
	b.goal(goal{
		Name:   "login throughput / raw argon2id rate",
		Figure: fmt.Sprintf("%.1f vs %.1f /s", l.OKRPS, raw.OKRPS),
		Ratio:  &r, RatioText: fmt.Sprintf("%.2f", r), Goal: "≥ 0.90", Status: status(r >= 0.90),
	})
}

// storm measures 8 readers alone, then the same 8 readers while 32
// connections log in without pause.
func (b *bench) storm(read, login request) {
	alone := b.phase(load(read, 8, b.dur*3/4), "8 readers alone", "GET /api/v1/users/me")
	var logins sample
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); logins = load(login, 32, b.dur) }()
	time.Sleep(b.dur / 8)
	during := load(read, 8, b.dur*3/4)
	wg.Wait()
	b.phase(logins, "login storm, 32 conns", "POST /api/v1/auth/login")
	d := b.phase(during, "8 readers during the storm", "GET /api/v1/users/me")
	r := d.LatencyMS.P99 / alone.LatencyMS.P99
	b.goal(goal{
		Name:   "readers' p99 during a login storm / without",
		Figure: fmt.Sprintf("%.1f vs %.1f ms (p50 %.1f vs %.1f)", d.LatencyMS.P99, alone.LatencyMS.P99, d.LatencyMS.P50, alone.LatencyMS.P50),
		Ratio:  &r, RatioText: fmt.Sprintf("%.2fx", r), Goal: "≤ 3x", Status: status(r <= 3),
	})
}

// memory loads the server with 256 connections, 32 of them logging in, and
// reads its peak resident memory since it started.
func (b *bench) memory(srv *server, read, login request) error {
	var readers, logins sample
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); readers = load(read, 224, b.dur) }()
	go func() { defer wg.Done(); logins = load(login, 32, b.dur) }()
	wg.Wait()
	b.phase(readers, "224 readers with a login storm", "GET /api/v1/users/me")
	l := b.phase(logins, "login storm with 224 readers", "POST /api/v1/auth/login")
	rss, err := peakRSS(srv.cmd.Process.Pid)
	if err != nil {
		return err
	}
	mib := float64(rss) / (1 << 20)
	b.goal(goal{
		Name:   "peak RSS, login storm + 256 connections",
		Figure: fmt.Sprintf("%.1f MiB, logins at %.1f/s", mib, l.OKRPS),
		Ratio:  &mib, RatioText: fmt.Sprintf("%.0f MiB", mib), Goal: "< 150 MiB", Status: status(rss < 150<<20),
	})
	return nil
}

// listing checks that the cost of a page of users does not grow with its
// depth.
func (b *bench) listing(ctx context.Context, srv *server, dbURL string, nUsers int) error {
	if err := b.insertUsers(ctx, dbURL, nUsers); err != nil {
		return err
	}
	admin, err := srv.admin(ctx, dbURL)
	if err != nil {
		return err
	}
	first, deep, pages, err := walk(srv.url, admin, nUsers/100)
	if err != nil {
		return err
	}
	r := float64(deep) / float64(first)
	b.goal(goal{
		Name:   "list users: deepest page / page 1 (100 a page)",
		Figure: fmt.Sprintf("page %d of %d users %s vs %s", pages, nUsers, ms(deep), ms(first)),
		Ratio:  &r, RatioText: fmt.Sprintf("%.2fx", r), Goal: "≤ 1.5x (or < 1 ms apart)",
		Status: status(deep <= first*3/2 || deep-first < time.Millisecond),
	})
	return nil
}
