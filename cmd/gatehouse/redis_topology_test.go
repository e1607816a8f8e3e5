package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	openapi_types "github.com/oapi-codegen/runtime/types"

	ghclient "github.com/gatehouse/gatehouse/clients/go"
	"github.com/gatehouse/gatehouse/gen/client"
	"github.com/gatehouse/gatehouse/internal/apitest"
	"github.com/gatehouse/gatehouse/internal/token"
)

// The Redis topologies of production (issue 12): gatehouse instances on a
// real Redis Cluster through a resharding, and on a Sentinel deployment
// through the failover of its master, under traffic.

// topologyLimits lets the traffic through (one client address sends it
// all) and keeps one small limit to test: forgot-account.
const topologyLimits = "RATE_LIMITS=login-ip=100000/1m,login-account=100000/1m,register-ip=100000/1h,refresh-ip=100000/1m,forgot-account=3/1h"

// startDeployment runs n gatehouse binaries on one database and signing
// key, and the Redis that redisEnv describes (REDIS_URL and its mode).
func startDeployment(t *testing.T, n int, redisEnv ...string) []*instance {
	t.Helper()
	k, err := token.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "signing.pem")
	if err := os.WriteFile(keyFile, apitest.Must(token.MarshalKeyPEM(k))(t), 0o600); err != nil {
		t.Fatal(err)
	}
	shared := apitest.TestEnv(apitest.DatabaseURL(t), "")
	shared["JWT_SIGNING_KEY_FILES"] = keyFile
	for _, kv := range redisEnv {
		k, v, _ := strings.Cut(kv, "=")
		shared[k] = v
	}
	var out []*instance
	for range n {
		out = append(out, startInstance(t, shared, []string{topologyLimits}))
	}
	return out
}

// call bounds one request: a Redis gone must not hang the test.
func call(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func register(t *testing.T, in *instance, email string) {
	t.Helper()
	r, err := in.c.RegisterWithResponse(call(t), client.RegisterJSONRequestBody{Email: openapi_types.Email(email), Password: apitest.Password})
	if err != nil || r.StatusCode() != 202 {
		t.Fatalf("register: %v %v", err, r)
	}
}

func login(t *testing.T, in *instance, email, pw string) (*client.LoginResponse, error) {
	return in.c.LoginWithResponse(call(t), client.LoginJSONRequestBody{Email: openapi_types.Email(email), Password: pw})
}

// meStatus is the status of GET /users/me with tok on in (0 on a transport
// error).
func meStatus(t *testing.T, in *instance, tok string) int {
	r, err := in.c.GetMeWithResponse(call(t), ghclient.Bearer(tok))
	if err != nil {
		return 0
	}
	return r.StatusCode()
}

// refused waits until in refuses tok, which was revoked on another
// instance: other instances learn of it through the feed, within 100 ms by
// design, but the announcement may arrive after the next request.
func refused(t *testing.T, in *instance, tok string) bool {
	t.Helper()
	deadline := time.Now().Add(propagationBound)
	for {
		st := meStatus(t, in, tok)
		if st == 401 {
			return true
		}
		if st != 200 || time.Now().After(deadline) {
			t.Logf("a revoked token answered %d", st)
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// checkAuthFlow runs the flow every deployment must serve across its
// instances: login, refresh, logout, logout everywhere, a shared rate limit
// and the shared lockout. It returns the account it locked and the tokens
// it revoked.
func checkAuthFlow(t *testing.T, nodes []*instance) (string, []string) {
	t.Helper()
	a, b := nodes[0], nodes[1]
	email := apitest.NewEmail("topo")
	register(t, a, email)
	l1 := apitest.Must(login(t, a, email, apitest.Password))(t)
	l2 := apitest.Must(login(t, b, email, apitest.Password))(t)
	if l1.JSON200 == nil || l2.JSON200 == nil {
		t.Fatalf("login: %s %s", l1.Body, l2.Body)
	}
	ref := apitest.Must(b.c.RefreshTokensWithResponse(call(t), client.RefreshTokensJSONRequestBody{RefreshToken: l1.JSON200.Data.RefreshToken}))(t)
	if ref.JSON200 == nil {
		t.Fatalf("refresh: %s", ref.Body)
	}
	for i, n := range nodes {
		for _, tok := range []string{l1.JSON200.Data.AccessToken, l2.JSON200.Data.AccessToken, ref.JSON200.Data.AccessToken} {
			if st := meStatus(t, n, tok); st != 200 {
				t.Fatalf("instance %d refuses a valid token: %d", i, st)
			}
		}
	}
	if r := apitest.Must(a.c.LogoutWithResponse(call(t), ghclient.Bearer(l2.JSON200.Data.AccessToken)))(t); r.StatusCode() != 204 {
		t.Fatalf("logout: %d", r.StatusCode())
	}
	for i, n := range nodes {
		if !refused(t, n, l2.JSON200.Data.AccessToken) {
			t.Fatalf("instance %d accepts a logged-out token", i)
		}
		if st := meStatus(t, n, ref.JSON200.Data.AccessToken); st != 200 {
			t.Fatalf("instance %d: another session's token answered %d", i, st)
		}
	}
	if r := apitest.Must(b.c.LogoutAllWithResponse(call(t), ghclient.Bearer(ref.JSON200.Data.AccessToken)))(t); r.StatusCode() != 204 {
		t.Fatalf("logout-all: %d", r.StatusCode())
	}
	for i, n := range nodes {
		for _, tok := range []string{l1.JSON200.Data.AccessToken, ref.JSON200.Data.AccessToken} {
			if !refused(t, n, tok) {
				t.Fatalf("instance %d accepts a token logged out everywhere", i)
			}
		}
	}
	checkForgotLimit(t, nodes)
	// Five free failures, counted across instances; then the account waits.
	for i := range 5 {
		if r := apitest.Must(login(t, nodes[i%2], email, "not the password at all"))(t); r.StatusCode() != 401 {
			t.Fatalf("wrong password %d: %d", i, r.StatusCode())
		}
	}
	checkLocked(t, nodes, email)
	return email, []string{l1.JSON200.Data.AccessToken, l2.JSON200.Data.AccessToken, ref.JSON200.Data.AccessToken}
}

// checkForgotLimit: forgot-account allows 3 an hour per address, counted
// across instances.
func checkForgotLimit(t *testing.T, nodes []*instance) {
	t.Helper()
	if got := forgotStatuses(t, nodes); got != "[202 202 202 429]" {
		t.Fatalf("forgot-password statuses %s, want the limit of 3 shared", got)
	}
}

func forgotStatuses(t *testing.T, nodes []*instance) string {
	email := openapi_types.Email(apitest.NewEmail("limit"))
	var got []int
	for i := range 4 {
		r, err := nodes[i%2].c.ForgotPasswordWithResponse(call(t), client.ForgotPasswordJSONRequestBody{Email: email})
		if err != nil {
			return err.Error()
		}
		got = append(got, r.StatusCode())
	}
	return fmt.Sprint(got)
}

// checkLocked: the right password is refused while the account waits, on
// every instance.
func checkLocked(t *testing.T, nodes []*instance, email string) {
	t.Helper()
	for i, n := range nodes {
		if r := apitest.Must(login(t, n, email, apitest.Password))(t); r.StatusCode() != 429 {
			t.Fatalf("instance %d: a locked account logged in: %d", i, r.StatusCode())
		}
	}
}

// traffic is a steady load of logins, authenticated reads, refreshes and
// logouts on every instance, checking each answer: a valid token must
// never be refused (401) and a revoked one never accepted. 503s and
// transport errors are counted with their times: a Redis outage may cost
// some, by design.
type traffic struct {
	t      *testing.T
	nodes  []*instance
	mu     sync.Mutex
	errs   []string
	n      int         // requests sent
	failed []time.Time // 503s and transport errors
	// revoked are tokens whose session was logged out, with the time.
	revoked []revokedToken
	secrets []string // a sample of tokens, which no log may contain
	// late is the longest another instance still accepted a logged-out
	// token.
	late time.Duration
}

type revokedToken struct {
	tok string
	at  time.Time
}

func (tr *traffic) errorf(format string, args ...any) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if len(tr.errs) < 20 {
		tr.errs = append(tr.errs, fmt.Sprintf(format, args...))
	}
}

// counted records one answer; it reports whether it was a real one.
func (tr *traffic) counted(status int) bool {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.n++
	if status == 0 || status == 503 {
		tr.failed = append(tr.failed, time.Now())
		return false
	}
	return true
}

// run sends the load from workers goroutines until ctx ends.
func (tr *traffic) run(ctx context.Context, workers int) (wait func()) {
	var wg sync.WaitGroup
	for w := range workers {
		email := apitest.NewEmail("load")
		register(tr.t, tr.nodes[w%2], email)
		wg.Go(func() { tr.worker(ctx, w, email) })
	}
	return wg.Wait
}

func (tr *traffic) worker(ctx context.Context, w int, email string) {
	for i := 0; ctx.Err() == nil; i++ {
		a, b := tr.nodes[(w+i)%2], tr.nodes[(w+i+1)%2]
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
		tr.session(rctx, a, b, email)
		cancel()
	}
}

// session logs in on a, reads on both, refreshes on b, reads, logs out on a
// and reads the logged-out tokens on both.
func (tr *traffic) session(ctx context.Context, a, b *instance, email string) {
	me := func(in *instance, tok string, want int, role string) {
		r, err := in.c.GetMeWithResponse(ctx, ghclient.Bearer(tok))
		st := 0
		if err == nil {
			st = r.StatusCode()
		}
		if tr.counted(st) && st != want {
			tr.errorf("GET /users/me on %s (%s): %d, want %d", in.url, role, st, want)
		}
	}
	l, err := a.c.LoginWithResponse(ctx, client.LoginJSONRequestBody{Email: openapi_types.Email(email), Password: apitest.Password})
	if err != nil || !tr.counted(l.StatusCode()) {
		return
	}
	if l.JSON200 == nil {
		tr.errorf("login on %s: %d %s", a.url, l.StatusCode(), l.Body)
		return
	}
	first := l.JSON200.Data
	me(a, first.AccessToken, 200, "issuer")
	me(b, first.AccessToken, 200, "other")
	r, err := b.c.RefreshTokensWithResponse(ctx, client.RefreshTokensJSONRequestBody{RefreshToken: first.RefreshToken})
	if err != nil || !tr.counted(r.StatusCode()) {
		return
	}
	if r.JSON200 == nil {
		tr.errorf("refresh on %s: %d %s", b.url, r.StatusCode(), r.Body)
		return
	}
	next := r.JSON200.Data
	me(a, next.AccessToken, 200, "a")
	me(b, next.AccessToken, 200, "refresher")
	out, err := a.c.LogoutWithResponse(ctx, ghclient.Bearer(next.AccessToken))
	if err != nil || !tr.counted(out.StatusCode()) {
		return
	}
	if out.StatusCode() != 204 {
		tr.errorf("logout on %s: %d", a.url, out.StatusCode())
		return
	}
	tr.mu.Lock()
	tr.revoked = append(tr.revoked, revokedToken{first.AccessToken, time.Now()}, revokedToken{next.AccessToken, time.Now()})
	if len(tr.secrets) < 60 {
		tr.secrets = append(tr.secrets, first.AccessToken, first.RefreshToken, next.RefreshToken)
	}
	tr.mu.Unlock()
	loggedOut := time.Now()
	for _, tok := range []string{first.AccessToken, next.AccessToken} {
		me(a, tok, 401, "revoker")
		// Other instances learn of it through the feed (or PostgreSQL):
		// within 100 ms by design, but the announcement can arrive after
		// the next request, so they are given a generous bound.
		for {
			r, err := b.c.GetMeWithResponse(ctx, ghclient.Bearer(tok))
			st := 0
			if err == nil {
				st = r.StatusCode()
			}
			if !tr.counted(st) || st == 401 {
				break
			}
			if st != 200 || time.Since(loggedOut) > propagationBound {
				tr.errorf("GET /users/me on %s %v after a logout on another instance: %d, want 401", b.url, time.Since(loggedOut).Round(time.Millisecond), st)
				break
			}
			tr.mu.Lock()
			tr.late = max(tr.late, time.Since(loggedOut))
			tr.mu.Unlock()
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// propagationBound is how long another instance may still accept a
// token logged out elsewhere before the test fails: 100 ms by design
// (README), far more here because the machine is shared and loaded.
const propagationBound = time.Second

// report fails the test on a wrong answer, rechecks every revoked token on
// every instance, and logs the figures.
func (tr *traffic) report(name string, start time.Time) {
	t := tr.t
	t.Helper()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for _, e := range tr.errs {
		t.Error(e)
	}
	if len(tr.errs) > 0 {
		for i, n := range tr.nodes {
			for _, line := range strings.Split(n.logs.String(), "\n") {
				if strings.Contains(line, `"level":"WARN"`) || strings.Contains(line, `"level":"ERROR"`) {
					t.Logf("instance %d: %.400s", i, line)
				}
			}
		}
	}
	for _, rv := range tr.revoked {
		for i, n := range tr.nodes {
			if st := meStatus(t, n, rv.tok); st != 401 {
				t.Errorf("instance %d accepts a token revoked at +%v: %d", i, rv.at.Sub(start).Round(time.Millisecond), st)
			}
		}
	}
	window := time.Duration(0)
	if len(tr.failed) > 0 {
		window = tr.failed[len(tr.failed)-1].Sub(tr.failed[0])
	}
	t.Logf("%s: %d requests, %d refused (503 or no answer) over a window of %v, %d sessions logged out and still refused everywhere; another instance accepted a logged-out token for at most %v",
		name, tr.n, len(tr.failed), window.Round(time.Millisecond), len(tr.revoked)/2, tr.late.Round(time.Millisecond))
}

// noSecretsLogged fails when an instance logged a password or a token.
func noSecretsLogged(t *testing.T, nodes []*instance, secrets []string) {
	t.Helper()
	secrets = append(slices.Clone(secrets), apitest.Password)
	for i, n := range nodes {
		logs := n.logs.String()
		for _, s := range secrets {
			if strings.Contains(logs, s) {
				t.Errorf("instance %d logged a secret", i)
			}
		}
	}
}

func TestRedisCluster_TwoInstancesThroughAResharding(t *testing.T) {
	t.Parallel()
	start := time.Now()
	rc := apitest.StartRedisCluster(t, 3)
	nodes := startDeployment(t, 2, "REDIS_URL="+rc.URL(), "REDIS_CLUSTER=true")
	t.Logf("deployment up after %v", time.Since(start).Round(time.Millisecond))
	locked, _ := checkAuthFlow(t, nodes)
	t.Logf("auth flow checked after %v", time.Since(start).Round(time.Millisecond))

	// Reshard while the load runs: the 500 slots around the revocation
	// slot, it among them, move to another master, then the revocation slot
	// moves again.
	tr := &traffic{t: t, nodes: nodes}
	ctx, stop := context.WithCancel(t.Context())
	wait := tr.run(ctx, 4)
	time.Sleep(time.Second)
	rv := rc.Slot("gatehouse:{rv}:feed")
	from := rc.Owner(rv)
	to := (from + 1) % 3
	moved, began := 0, time.Now()
	for s := max(rv-250, 0); s < min(rv+250, 16384); s++ {
		if rc.Owner(s) != from {
			continue
		}
		if err := rc.MoveSlot(s, to); err != nil {
			t.Fatal(err)
		}
		moved++
	}
	if err := rc.MoveSlot(rv, (to+1)%3); err != nil {
		t.Fatal(err)
	}
	t.Logf("moved %d slots in %v", moved+1, time.Since(began).Round(time.Millisecond))
	time.Sleep(2 * time.Second)
	stop()
	wait()
	tr.report("cluster resharding", began)
	if len(tr.failed) > 0 {
		t.Errorf("%d requests refused during a resharding", len(tr.failed))
	}
	// What the resharding moved still holds: the five failures (a sixth
	// makes the account wait again) and the limits.
	if r := apitest.Must(login(t, nodes[0], locked, "not the password at all"))(t); r.StatusCode() != 401 {
		t.Fatalf("sixth wrong password: %d", r.StatusCode())
	}
	checkLocked(t, nodes, locked)
	checkForgotLimit(t, nodes)
	noSecretsLogged(t, nodes, tr.secrets)
	t.Logf("test took %v", time.Since(start).Round(time.Millisecond))
}

func TestRedisSentinel_TwoInstancesThroughAFailover(t *testing.T) {
	t.Parallel()
	start := time.Now()
	rs := apitest.StartRedisSentinel(t)
	nodes := startDeployment(t, 2, "REDIS_URL="+rs.URL(), "REDIS_SENTINEL_MASTER="+rs.Master)
	_, revokedBefore := checkAuthFlow(t, nodes)

	tr := &traffic{t: t, nodes: nodes}
	for _, tok := range revokedBefore {
		tr.revoked = append(tr.revoked, revokedToken{tok, time.Now()})
	}
	ctx, stop := context.WithCancel(t.Context())
	wait := tr.run(ctx, 4)
	time.Sleep(1500 * time.Millisecond)
	killed := time.Now()
	rs.KillMaster()
	rs.WaitFailover(30 * time.Second)
	promoted := time.Since(killed)
	// The limits count again on the new master (go-redis learns of it from
	// the sentinels).
	for forgotStatuses(t, nodes) != "[202 202 202 429]" {
		if time.Since(killed) > 30*time.Second {
			t.Fatal("rate limits did not resume within 30 s of the failover")
		}
		time.Sleep(100 * time.Millisecond)
	}
	resumed := time.Since(killed)
	time.Sleep(2 * time.Second)
	stop()
	wait()
	tr.report("sentinel failover", killed)
	t.Logf("master killed: replica promoted after %v, rate limits counted again after %v",
		promoted.Round(time.Millisecond), resumed.Round(time.Millisecond))
	// PostgreSQL stayed up: by design no call fails while Redis is away
	// (checks ask PostgreSQL, limits and the lockout are not enforced).
	if len(tr.failed) > 0 {
		t.Errorf("%d requests refused during the failover", len(tr.failed))
	}
	noSecretsLogged(t, nodes, tr.secrets)
	t.Logf("test took %v", time.Since(start).Round(time.Millisecond))
}
