package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	openapi_types "github.com/oapi-codegen/runtime/types"
	"go.yaml.in/yaml/v4"

	ghclient "github.com/gatehouse/gatehouse/clients/go"
	"github.com/gatehouse/gatehouse/gen/client"
	"github.com/gatehouse/gatehouse/internal/apitest"
)

// The tests of this file put a real nginx, configured from deploy/nginx.conf
// by scripts/cluster.sh, in front of several instances. nginx connects to
// them from proxyAddr, the only address in their TRUSTED_PROXIES: clients on
// 127.0.0.1 (or 127.0.0.3, ...) are never trusted, as on a real network.
const proxyAddr = "127.0.0.2"

// loadLimits lifts the per-IP and per-account limits for the load tests: all
// their clients share one address.
const loadLimits = "RATE_LIMITS=login-ip=100000/1m,login-account=100000/1m,register-ip=100000/1h,refresh-ip=100000/1m"

var clusterScript = filepath.Join("..", "..", "scripts", "cluster.sh")

func nginxPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("NGINX_BIN"); p != "" {
		return p
	}
	for _, p := range []string{"nginx", "/usr/sbin/nginx"} {
		if q, err := exec.LookPath(p); err == nil {
			return q
		}
	}
	t.Fatal("nginx not found: `make test` installs it (scripts/devservices.sh nginx-path) and sets NGINX_BIN")
	return ""
}

// nginxEnv is the test's environment without NGINX, which nginx reads as
// listening sockets handed over by an nginx it replaces (and then does not
// daemonize).
func nginxEnv() []string {
	return slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "NGINX=") })
}

// proxy is an nginx in front of some instances.
type proxy struct {
	url   string
	state string // its directory: nginx.conf, nginx.log, access.log
}

// startProxy runs nginx with the configuration scripts/cluster.sh renders from
// deploy/nginx.conf, in front of nodes, on a free port; it stops with the test.
func startProxy(t *testing.T, nodes []*instance) *proxy {
	t.Helper()
	state := t.TempDir()
	var ups []string
	for _, n := range nodes {
		ups = append(ups, strings.TrimPrefix(n.url, "http://"))
	}
	p := &proxy{url: fmt.Sprintf("http://127.0.0.1:%d", freePort(t)), state: state}
	render := exec.Command(clusterScript, "nginx-config")
	render.Env = append(os.Environ(), "NGINX_LISTEN="+strings.TrimPrefix(p.url, "http://"),
		"NGINX_UPSTREAMS="+strings.Join(ups, " "), "NGINX_STATE="+state, "NGINX_BIND="+proxyAddr)
	conf, err := render.Output()
	if err != nil {
		t.Fatalf("render the nginx configuration: %v", err)
	}
	confFile := filepath.Join(state, "nginx.conf")
	if err := os.WriteFile(confFile, conf, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(nginxPath(t), "-p", state, "-e", filepath.Join(state, "nginx.log"), "-c", confFile, "-g", "daemon off;")
	cmd.Env = nginxEnv()
	logs := &apitest.LockedLog{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// SIGTERM, not SIGKILL: the master stops its workers.
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
		}
	})
	waitUntil(t, 10*time.Second, func() bool {
		res, err := get(t, p.url+"/health/live")
		if err == nil {
			res.Body.Close()
		}
		return err == nil && res.StatusCode == 200
	})
	return p
}

// clientFrom is a client of base connecting from the local address from,
// sending editors' headers with every request.
func clientFrom(t *testing.T, base, from string, editors ...client.RequestEditorFn) *client.ClientWithResponses {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	opts := []client.ClientOption{client.WithHTTPClient(&http.Client{
		Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 16},
		Timeout:   30 * time.Second,
	})}
	for _, e := range editors {
		opts = append(opts, client.WithRequestEditorFn(e))
	}
	c, err := client.NewClientWithResponses(base, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func header(name, value string) client.RequestEditorFn {
	return func(_ context.Context, r *http.Request) error {
		r.Header.Set(name, value)
		return nil
	}
}

// TestProxy_ClientAddressesLimitsAndLogoutAcrossInstances: the address
// gatehouse sees is the one nginx saw, whatever X-Forwarded-For a client
// sends, even a client whose own address is trusted; per-IP limits count
// requests spread over the instances; a logout through one instance is
// refused by the others at the next request.
func TestProxy_ClientAddressesLimitsAndLogoutAcrossInstances(t *testing.T) {
	t.Parallel()
	// 127.0.0.5 stands for a host inside a trusted range (TRUSTED_PROXIES
	// is often a whole private network): it must not choose its address
	// through nginx either.
	nodes := startCluster(t, 3, "TRUSTED_PROXIES="+proxyAddr+"/32,127.0.0.5/32", "RATE_LIMITS=login-ip=4/1m")
	px := startProxy(t, nodes)
	ctx := context.Background()
	spoof := func(i int) client.RequestEditorFn { return header("X-Forwarded-For", fmt.Sprintf("203.0.113.%d", i)) }
	badLogin := func(c *client.ClientWithResponses, editors ...client.RequestEditorFn) int {
		r := apitest.Must(c.LoginWithResponse(ctx, client.LoginJSONRequestBody{
			Email: openapi_types.Email(apitest.NewEmail("spray")), Password: "a guess that will not work",
		}, editors...))(t)
		return r.StatusCode()
	}

	// A client spraying logins with a new X-Forwarded-For each time, through
	// nginx (round robin: every instance sees some): one budget of 4.
	fromOne := clientFrom(t, px.url, "127.0.0.1")
	var statuses []int
	for i := range 5 {
		statuses = append(statuses, badLogin(fromOne, spoof(i)))
	}
	if fmt.Sprint(statuses) != "[401 401 401 401 429]" {
		t.Fatalf("statuses %v: the client chose its address, or the instances count apart", statuses)
	}
	// Another client has its own budget: the limit is per client, not per proxy.
	if st := badLogin(clientFrom(t, px.url, "127.0.0.3"), spoof(9)); st != 401 {
		t.Fatalf("another client through the same proxy: %d, want 401", st)
	}
	// Straight to an instance, bypassing nginx: the header of an untrusted
	// peer is ignored, the limited client stays limited.
	if st := badLogin(clientFrom(t, nodes[0].url, "127.0.0.1"), spoof(10)); st != 429 {
		t.Fatalf("spoofed header straight to an instance: %d, want 429", st)
	}
	// A client inside the trusted range, through nginx.
	if st := badLogin(clientFrom(t, px.url, "127.0.0.5"), spoof(11)); st != 401 {
		t.Fatalf("trusted-range client: %d", st)
	}
	// An instance writes a request's log line once the response is out:
	// wait (bounded) for the last ones.
	var logs string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		logs = ""
		for _, n := range nodes {
			logs += n.logs.String()
		}
		if strings.Contains(logs, `"ip":"127.0.0.5"`) || time.Now().After(deadline) {
			break
		}
	}
	for _, want := range []string{`"ip":"127.0.0.1"`, `"ip":"127.0.0.3"`, `"ip":"127.0.0.5"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("no request logged with %s", want)
		}
	}
	for _, bad := range []string{`"ip":"203.0.113.`, `"ip":"` + proxyAddr + `"`} {
		if strings.Contains(logs, bad) {
			t.Errorf("a request logged with %s: a spoofed or the proxy's address", bad)
		}
	}

	// Logout through the proxy: refused by every instance.
	c := clientFrom(t, px.url, "127.0.0.4")
	email := apitest.NewEmail("proxylogout")
	if r := apitest.Must(c.RegisterWithResponse(ctx, client.RegisterJSONRequestBody{Email: openapi_types.Email(email), Password: apitest.Password}))(t); r.StatusCode() != 202 {
		t.Fatalf("register: %d", r.StatusCode())
	}
	l := apitest.Must(c.LoginWithResponse(ctx, client.LoginJSONRequestBody{Email: openapi_types.Email(email), Password: apitest.Password}))(t)
	if l.JSON200 == nil {
		t.Fatalf("login: %s", l.Body)
	}
	tok := ghclient.Bearer(l.JSON200.Data.AccessToken)
	for range 3 {
		if r := apitest.Must(c.GetMeWithResponse(ctx, tok))(t); r.StatusCode() != 200 {
			t.Fatalf("before logout: %d", r.StatusCode())
		}
	}
	if r := apitest.Must(c.LogoutWithResponse(ctx, tok))(t); r.StatusCode() != 204 {
		t.Fatalf("logout: %d", r.StatusCode())
	}
	// Whichever instance answers: the revoking one at once, the others once
	// the revocation feed reaches them. Once refused, refused everywhere.
	// Six refusals in a row: every instance of the round robin, twice.
	start := time.Now()
	for run := 0; run < 6; {
		switch r := apitest.Must(c.GetMeWithResponse(ctx, tok))(t); {
		case r.StatusCode() == 401:
			run++
		case r.StatusCode() != 200:
			t.Fatalf("after logout: %d %s", r.StatusCode(), r.Body)
		case time.Since(start) > 2*time.Second:
			t.Fatal("a revoked token is still accepted 2 s after the logout")
		default:
			run = 0
		}
	}
	t.Logf("every instance refused the token %v after the logout", time.Since(start))
}

// load is a steady mix of requests through a proxy by a few workers, each
// with an account of its own: an authenticated read, a refresh, a login, a
// registration and, if asked, a password change per round.
type load struct {
	t               *testing.T
	c               *client.ClientWithResponses
	changePasswords bool

	mu         sync.Mutex
	ok         map[string]int
	failed     map[string][]string // by operation: status or error
	registered []string            // acknowledged registrations
	users      []*loadUser
}

type loadUser struct {
	email, password string
	pending         string // a password change whose answer was lost
	changed         int    // acknowledged password changes
	access, refresh string
	loggedOut       bool
}

func (l *load) record(op string, status int, err error, want ...int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err == nil && slices.Contains(want, status) {
		l.ok[op]++
		return true
	}
	if err != nil {
		l.failed[op] = append(l.failed[op], err.Error())
	} else {
		l.failed[op] = append(l.failed[op], fmt.Sprint(status))
	}
	return false
}

func (l *load) count(op string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ok[op]
}

// waitFor waits until n requests of op succeeded: on a loaded machine the
// load may run slowly, and the test must see some of it.
func (l *load) waitFor(t *testing.T, op string, n int) {
	t.Helper()
	waitUntil(t, 60*time.Second, func() bool { return l.count(op) >= n })
}

func (l *load) failures() (n int, summary string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var parts []string
	for op, f := range l.failed {
		n += len(f)
		parts = append(parts, fmt.Sprintf("%s: %d %v", op, len(f), f[:min(len(f), 5)]))
	}
	slices.Sort(parts)
	var oks []string
	for op, k := range l.ok {
		oks = append(oks, fmt.Sprintf("%s=%d", op, k))
	}
	slices.Sort(oks)
	return n, fmt.Sprintf("ok %v; failed %v", oks, parts)
}

// login logs u in with its password, or with the pending one when a change
// whose answer was lost did happen.
func (l *load) login(ctx context.Context, u *loadUser) bool {
	for _, pw := range []string{u.password, u.pending} {
		if pw == "" {
			continue
		}
		r, err := l.c.LoginWithResponse(ctx, client.LoginJSONRequestBody{Email: openapi_types.Email(u.email), Password: pw})
		if ctx.Err() != nil {
			return false
		}
		if err == nil && r.JSON200 != nil {
			l.record("login", 200, nil, 200)
			if pw == u.pending {
				u.password = pw
			}
			u.pending = ""
			u.access, u.refresh, u.loggedOut = r.JSON200.Data.AccessToken, r.JSON200.Data.RefreshToken, false
			return true
		}
		if err != nil || r.StatusCode() != 401 {
			code := 0
			if r != nil {
				code = r.StatusCode()
			}
			l.record("login", code, err, 200)
			return false
		}
	}
	l.t.Errorf("%s: neither its password nor the pending one logs in", u.email)
	return false
}

// run drives the load until ctx ends.
func (l *load) run(ctx context.Context, u *loadUser) {
	for round := 0; ctx.Err() == nil; round++ {
		time.Sleep(10 * time.Millisecond)
		if u.loggedOut && !l.login(ctx, u) {
			continue
		}
		me, err := l.c.GetMeWithResponse(ctx, ghclient.Bearer(u.access))
		if ctx.Err() != nil {
			return
		}
		l.record("getMe", code(me), err, 200)

		ref, err := l.c.RefreshTokensWithResponse(ctx, client.RefreshTokensJSONRequestBody{RefreshToken: u.refresh})
		if ctx.Err() != nil {
			return
		}
		if l.record("refresh", code(ref), err, 200) {
			u.access, u.refresh = ref.JSON200.Data.AccessToken, ref.JSON200.Data.RefreshToken
		} else {
			u.loggedOut = true // the old refresh token may be spent
			continue
		}

		email := apitest.NewEmail("load")
		reg, err := l.c.RegisterWithResponse(ctx, client.RegisterJSONRequestBody{Email: openapi_types.Email(email), Password: apitest.Password})
		if ctx.Err() != nil {
			return
		}
		if l.record("register", code(reg), err, 202) {
			l.mu.Lock()
			l.registered = append(l.registered, email)
			l.mu.Unlock()
		}

		if l.changePasswords {
			next := fmt.Sprintf("%s %d", apitest.Password, round) // no part of the address
			cp, err := l.c.ChangePasswordWithResponse(ctx, client.ChangePasswordJSONRequestBody{CurrentPassword: u.password, NewPassword: next}, ghclient.Bearer(u.access))
			if ctx.Err() != nil {
				u.pending, u.loggedOut = next, true
				return
			}
			if l.record("changePassword", code(cp), err, 200) {
				u.password, u.changed = next, u.changed+1
				u.access, u.refresh = cp.JSON200.Data.AccessToken, cp.JSON200.Data.RefreshToken
			} else {
				u.pending, u.loggedOut = next, true
			}
		} else {
			u.loggedOut = true
			l.login(ctx, u)
		}
	}
}

// code is a response's status, 0 without a response.
func code[T any, P interface {
	*T
	StatusCode() int
}](r P) int {
	if r == nil {
		return 0
	}
	return r.StatusCode()
}

// startLoad makes workers accounts (registered through base, verified in
// the database) and drives them until the returned stop is called.
func startLoad(t *testing.T, base, dbURL string, workers int, changePasswords bool) (l *load, stop func()) {
	t.Helper()
	l = &load{t: t, c: clientFrom(t, base, "127.0.0.1"), changePasswords: changePasswords, ok: map[string]int{}, failed: map[string][]string{}}
	pool := apitest.Pool(t, dbURL)
	ctx := context.Background()
	for range workers {
		u := &loadUser{email: apitest.NewEmail("worker"), password: apitest.Password, loggedOut: true}
		if r := apitest.Must(l.c.RegisterWithResponse(ctx, client.RegisterJSONRequestBody{Email: openapi_types.Email(u.email), Password: u.password}))(t); r.StatusCode() != 202 {
			t.Fatalf("register a worker: %d", r.StatusCode())
		}
		if _, err := pool.Exec(ctx, `UPDATE users SET email_verified_at = now() WHERE email = $1`, u.email); err != nil {
			t.Fatal(err)
		}
		l.users = append(l.users, u)
	}
	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, u := range l.users {
		wg.Add(1)
		go func() { defer wg.Done(); l.run(runCtx, u) }()
	}
	return l, func() { cancel(); wg.Wait() }
}

// TestProxy_SIGKILLMidTrafficLosesNoAcknowledgedWriteOrMail: one of three
// instances is killed while registrations and password changes flow through
// nginx. Requests it held fail (nginx does not resend a POST it sent), but
// every one answered 2xx is in the database, and its mail is delivered by
// the survivors, the mails the killed instance was sending included.
func TestProxy_SIGKILLMidTrafficLosesNoAcknowledgedWriteOrMail(t *testing.T) {
	t.Parallel()
	started := time.Now()
	mailbox := apitest.StartSMTP(t)
	env := append(smtpEnv(mailbox), "MAIL_RESCUE_AFTER=3s", "TRUSTED_PROXIES="+proxyAddr+"/32", loadLimits)
	nodes := startCluster(t, 3, env...)
	px := startProxy(t, nodes)
	dbURL := nodes[0].env["DATABASE_URL"]
	l, stop := startLoad(t, px.url, dbURL, 4, true)
	l.waitFor(t, "changePassword", 8) // traffic on every instance
	if err := nodes[1].cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	time.Sleep(2 * time.Second)
	l.waitFor(t, "changePassword", l.count("changePassword")+8) // and on the survivors
	stop()
	failed, summary := l.failures()
	t.Logf("SIGKILL of 1 of 3 instances under load: %d failed requests; %s", failed, summary)
	// Every acknowledged registration is stored and mailed.
	pool := apitest.Pool(t, dbURL)
	ctx := context.Background()
	var stored int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM users WHERE email = ANY($1)`, l.registered).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if stored != len(l.registered) {
		t.Fatalf("%d of %d acknowledged registrations stored", stored, len(l.registered))
	}
	for _, e := range l.registered {
		mailbox.WaitForSubject(e, "Confirm your email address", 1, 60*time.Second)
	}
	// Every acknowledged password change holds (the password logs in) and
	// was mailed.
	for _, u := range l.users {
		u.loggedOut = true
		if !l.login(ctx, u) {
			t.Fatalf("%s cannot log in after the crash: %s", u.email, summary)
		}
		mailbox.WaitForSubject(u.email, "password was changed", u.changed, 60*time.Second)
	}
	t.Logf("%d registrations and %d password changes acknowledged, all stored and mailed, %s after the kill; test took %s",
		len(l.registered), l.ok["changePassword"], time.Since(killed).Round(100*time.Millisecond), time.Since(started).Round(100*time.Millisecond))
}

// TestProxy_RollingRestartDropsNoRequest: `scripts/cluster.sh up` (what
// `make cluster` runs) on a free port, a rolling restart of its three
// instances under a steady load through nginx, then `down`, which stops
// every process it started.
func TestProxy_RollingRestartDropsNoRequest(t *testing.T) {
	t.Parallel()
	started := time.Now()
	nginxPath(t)
	dbURL := apitest.DatabaseURL(t)
	rd := apitest.StartRedis(t)
	state := t.TempDir()
	port := freePort(t)
	env := nginxEnv()
	for k, v := range apitest.TestEnv(dbURL, rd.URL()) {
		env = append(env, k+"="+v)
	}
	env = append(env, "LOG_LEVEL=info", "MAIL_DIR="+t.TempDir(), loadLimits, "INSTANCES=3",
		fmt.Sprintf("CLUSTER_PORT=%d", port), "CLUSTER_STATE="+state, "GATEHOUSE_BIN="+binary, "CLUSTER_RESTART_PAUSE=6")
	script := func(cmd string) string {
		// Bounded: a stuck script fails this test, not the package's timeout.
		ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
		defer cancel()
		c := exec.CommandContext(ctx, clusterScript, cmd)
		c.Env = env
		c.WaitDelay = 5 * time.Second
		out, err := c.CombinedOutput()
		if err != nil {
			t.Fatalf("cluster.sh %s: %v\n%s", cmd, err, out)
		}
		return string(out)
	}
	pids := func() []string {
		files, _ := filepath.Glob(filepath.Join(state, "instance-*.pid"))
		var out []string
		for _, f := range files {
			b, _ := os.ReadFile(f)
			out = append(out, strings.TrimSpace(string(b)))
		}
		return out
	}
	t.Cleanup(func() { // also after a failed up: what it started
		c := exec.Command(clusterScript, "down")
		c.Env = env // its own state dir, never the repository's
		_ = c.Run()
	})
	script("up")
	before := pids()
	if len(before) != 3 {
		t.Fatalf("pids after up: %v", before)
	}

	l, stop := startLoad(t, fmt.Sprintf("http://127.0.0.1:%d", port), dbURL, 4, false)
	time.Sleep(time.Second)
	restartStarted := time.Now()
	out := script("restart")
	restartTook := time.Since(restartStarted)
	time.Sleep(time.Second)
	stop()
	failed, summary := l.failures()
	t.Logf("rolling restart of 3 instances (%s) under load: %d failed requests; %s", restartTook.Round(100*time.Millisecond), failed, summary)
	after := pids()
	for _, p := range before {
		if slices.Contains(after, p) {
			t.Errorf("instance pid %s not replaced: %v -> %v\n%s", p, before, after, out)
		}
	}
	if failed > 0 {
		access, _ := os.ReadFile(filepath.Join(state, "access.log"))
		var bad []string
		for _, line := range strings.Split(string(access), "\n") {
			if strings.Contains(line, "upstream_status=") && !strings.Contains(line, "\" 20") && !strings.Contains(line, "\" 401") {
				bad = append(bad, line)
			}
		}
		errs, _ := os.ReadFile(filepath.Join(state, "nginx.log"))
		t.Errorf("requests failed during the rolling restart: %s\nnginx:\n%s\n%s", summary, strings.Join(bad[:min(len(bad), 20)], "\n"), errs)
	}

	script("down")
	for _, p := range after {
		// Gone, or a zombie nobody reaped yet (PID 1 of a container may not).
		if st, err := os.ReadFile("/proc/" + p + "/stat"); err == nil && !strings.Contains(string(st), ") Z") {
			t.Errorf("process %s still runs after down", p)
		}
	}
	t.Logf("test took %s", time.Since(started).Round(100*time.Millisecond))
}

// TestProxy_ComposeAndNginxConfigAgree: deploy/nginx.conf is the server
// block of deploy/compose.yaml's nginx too; its upstream list names exactly
// the compose file's gatehouse instances, on the port they serve, and it
// listens on the port compose publishes.
func TestProxy_ComposeAndNginxConfigAgree(t *testing.T) {
	t.Parallel()
	var compose struct {
		Services map[string]struct {
			Image   string         `yaml:"image"`
			Ports   []string       `yaml:"ports"`
			Volumes []string       `yaml:"volumes"`
			Command []string       `yaml:"command"`
			Env     map[string]any `yaml:"environment"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(apitest.Must(os.ReadFile("../../deploy/compose.yaml"))(t), &compose); err != nil {
		t.Fatal(err)
	}
	conf := string(apitest.Must(os.ReadFile("../../deploy/nginx.conf"))(t))
	var instances []string
	for name, s := range compose.Services {
		if strings.HasPrefix(name, "gatehouse-") {
			if p, ok := s.Env["PORT"]; ok && fmt.Sprint(p) != "5500" {
				t.Errorf("%s serves on %v, nginx.conf sends to 5500", name, p)
			}
			instances = append(instances, name+":5500")
		}
	}
	slices.Sort(instances)
	var upstreams []string
	for _, m := range regexp.MustCompile(`(?m)^\s*server\s+([^\s;{]+)[^;]*;`).FindAllStringSubmatch(conf, -1) {
		upstreams = append(upstreams, m[1])
	}
	slices.Sort(upstreams)
	if len(instances) == 0 || !slices.Equal(instances, upstreams) {
		t.Errorf("compose.yaml runs %v, nginx.conf sends to %v", instances, upstreams)
	}
	lb, ok := compose.Services["lb"]
	if !ok || !strings.HasPrefix(lb.Image, "nginx:") {
		t.Fatal("compose.yaml has no nginx service lb")
	}
	if !slices.Contains(lb.Volumes, "./nginx.conf:/etc/nginx/conf.d/default.conf:ro") {
		t.Errorf("lb does not mount deploy/nginx.conf: %v", lb.Volumes)
	}
	listen := regexp.MustCompile(`(?m)^\s*listen\s+(\d+);`).FindStringSubmatch(conf)
	if listen == nil || !slices.Contains(lb.Ports, listen[1]+":"+listen[1]) {
		t.Errorf("nginx.conf listens on %v, compose publishes %v", listen, lb.Ports)
	}
}

// TestServe_SIGTERMRefusesNewConnectionsAndAnswersOnOpenOnes: a proxy's
// kept-alive connection idle when SIGTERM arrives still carries one more
// request, answered with "Connection: close", while new connections are
// refused (a proxy retries those elsewhere, whatever the method). Closing
// the idle connection at once could reset a request the proxy was sending,
// which it may not resend.
func TestServe_SIGTERMRefusesNewConnectionsAndAnswersOnOpenOnes(t *testing.T) {
	t.Parallel()
	in := startCluster(t, 1)[0]
	addr := strings.TrimPrefix(in.url, "http://")
	dial := &net.Dialer{Timeout: time.Second}
	conn, err := dial.DialContext(t.Context(), "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	// ask sends a request on conn: its status, and whether the server
	// closes the connection after it.
	ask := func() (status int, closing bool, err error) {
		if _, err := io.WriteString(conn, "GET /health/live HTTP/1.1\r\nHost: gatehouse\r\n\r\n"); err != nil {
			return 0, false, err
		}
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			return 0, false, err
		}
		defer res.Body.Close()
		_, _ = io.Copy(io.Discard, res.Body)
		return res.StatusCode, res.Close, nil
	}
	if st, closing, err := ask(); err != nil || st != 200 || closing {
		t.Fatalf("before SIGTERM: %v %d closing=%v", err, st, closing)
	}
	if err := in.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 10*time.Second, func() bool { // the listener is closed: draining
		c, err := dial.DialContext(t.Context(), "tcp", addr)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	if st, closing, err := ask(); err != nil || st != 200 || !closing {
		t.Fatalf("request on a connection open at SIGTERM: %v %d closing=%v\n%s", err, st, closing, in.logs.String())
	}
	if _, err := br.ReadByte(); err != io.EOF { // closed after that answer
		t.Fatalf("connection still open after Connection: close: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- in.cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, in.logs.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("did not exit after SIGTERM:\n%s", in.logs.String())
	}
}
