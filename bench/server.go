package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/gatehouse/gatehouse/internal/pgstore"
	"github.com/gatehouse/gatehouse/internal/token"
)

// server is one running gatehouse process.
type server struct {
	url string
	cmd *exec.Cmd
	dir string
	// pprof serves the server's memory statistics (PPROF_ADDR).
	pprof string
	// metricsToken is the bearer token of its /metrics (METRICS_TOKEN).
	metricsToken string
}

// buildServer builds the gatehouse binary into dir once; every server of
// the run starts from it.
func buildServer(dir string) (string, error) {
	bin := filepath.Join(dir, "gatehouse")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/gatehouse").CombinedOutput(); err != nil {
		return "", fmt.Errorf("build: %w\n%s", err, out)
	}
	return bin, nil
}

// ownedEnv are the variables of the bench's own environment a server does not
// inherit: each phase says which of them it wants, so a tracing endpoint set
// in the shell does not slow down phases measured without it.
var ownedEnv = []string{"OTEL_", "METRICS_"}

// startServer starts bin on free loopback ports with its own signing key,
// mail folder and Redis key prefix, the variables in env added, its output
// sent to the run's server log, and waits until it is ready.
func (b *bench) startServer(bin, dbURL string, env ...string) (*server, error) {
	dir, err := os.MkdirTemp("", "gatehouse-bench")
	if err != nil {
		return nil, err
	}
	keyFile, err := writeKey(dir)
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	pprofPort, err := freePort()
	if err != nil {
		return nil, err
	}
	secret := make([]byte, 16)
	_, _ = rand.Read(secret)
	metricsToken := hex.EncodeToString(secret)
	var inherited []string
	for _, kv := range os.Environ() {
		if !hasAnyPrefix(kv, ownedEnv) {
			inherited = append(inherited, kv)
		}
	}
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(inherited, "DATABASE_URL="+dbURL, "PORT="+strconv.Itoa(port), "LOG_LEVEL=error",
		"PPROF_ADDR=127.0.0.1:"+strconv.Itoa(pprofPort), "METRICS_TOKEN="+metricsToken,
		"JWT_SIGNING_KEY_FILES="+keyFile, "MAIL_DIR="+filepath.Join(dir, "mail"), "REDIS_KEY_PREFIX=bench:"+uuid.NewString()+":",
		"RATE_LIMITS=login-ip=100000000/1s,login-account=100000000/1s,register-ip=1000/1s,"+
			"forgot-ip=1000000/1s,forgot-account=1000000/1s,resend-ip=1000000/1s,resend-account=1000000/1s")
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdout, cmd.Stderr = b.serverLog, b.serverLog
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{
		url: fmt.Sprintf("http://127.0.0.1:%d", port), cmd: cmd, dir: dir,
		pprof: fmt.Sprintf("http://127.0.0.1:%d", pprofPort), metricsToken: metricsToken,
	}
	for i := 0; ; i++ {
		res, err := http.Get(s.url + "/health/ready")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return s, nil
			}
		}
		if i > 300 {
			s.stop()
			return nil, fmt.Errorf("gatehouse did not become ready (its output: %s)", b.serverLog.Name())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// stop interrupts the server (a graceful shutdown, which flushes its
// exporters), kills it if it has not exited within 10 s, and removes its
// files.
func (s *server) stop() {
	_ = s.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
	}
	_ = os.RemoveAll(s.dir)
}

func (s *server) post(path, body string, want int) error {
	res, err := http.Post(s.url+path, "application/json", strings.NewReader(body))
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != want {
		b, _ := io.ReadAll(res.Body)
		return fmt.Errorf("POST %s: %d %s", path, res.StatusCode, b)
	}
	return nil
}

func (s *server) login(email, pw string) (string, error) {
	res, err := http.Post(s.url+"/api/v1/auth/login", "application/json", strings.NewReader(fmt.Sprintf(`{"email":%q,"password":%q}`, email, pw)))
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	var out struct {
		Data struct {
			AccessToken string `json:"access_token"`
		} `json:"data"`
	}
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
		return "", fmt.Errorf("login: %d: %w", res.StatusCode, err)
	}
	if out.Data.AccessToken == "" {
		return "", fmt.Errorf("login: %d: no access token", res.StatusCode)
	}
	return out.Data.AccessToken, nil
}

// admin makes bench@example.com an administrator and logs in again.
func (s *server) admin(ctx context.Context, dbURL string) (string, error) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `INSERT INTO user_roles (user_id, role) SELECT id, 'admin' FROM users WHERE email = 'bench@example.com' ON CONFLICT DO NOTHING`); err != nil {
		return "", err
	}
	return s.login("bench@example.com", "correct horse battery staple")
}

// totalAlloc is the server's cumulative bytes allocated, read from the
// runtime statistics its profiler prints.
func (s *server) totalAlloc() (uint64, error) {
	res, err := http.Get(s.pprof + "/debug/pprof/heap?debug=1")
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "# TotalAlloc = "); ok {
			return strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, errors.New("no TotalAlloc in the heap profile")
}

func peakRSS(pid int) (int64, error) { return procStatus(pid, "VmHWM:") }

// procStatus reads one memory figure of /proc/PID/status, in bytes.
func procStatus(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

func freshDatabase(ctx context.Context, base, name string) (string, error) {
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`); err != nil {
		return "", err
	}
	if _, err := conn.Exec(ctx, `CREATE DATABASE `+name); err != nil {
		return "", err
	}
	u, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	u.Path = "/" + name
	return u.String(), nil
}

func migrate(ctx context.Context, dbURL string) error {
	pool, err := pgstore.Connect(ctx, dbURL, 2, pgstore.Direct)
	if err != nil {
		return err
	}
	defer pool.Close()
	m, err := pgstore.NewMigrator(pool)
	if err != nil {
		return err
	}
	defer m.Close()
	return m.Up(ctx, io.Discard)
}

// writeKey writes a new signing key into dir and returns its file.
func writeKey(dir string) (string, error) {
	k, err := token.GenerateKey()
	if err != nil {
		return "", err
	}
	pemBytes, err := token.MarshalKeyPEM(k)
	if err != nil {
		return "", err
	}
	keyFile := filepath.Join(dir, "key.pem")
	return keyFile, os.WriteFile(keyFile, pemBytes, 0o600)
}
