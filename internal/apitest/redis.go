package apitest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/internal/redisstore"
)

// Redis is a redis-server of the test's own on a unix socket: tests in
// parallel never share keys, and a test may stop, restart or flush it.
type Redis struct {
	t      testing.TB
	dir    string
	socket string
	mu     sync.Mutex
	cmd    *exec.Cmd
}

// quietRedis stops go-redis from printing every failed dial while a test has
// stopped its Redis on purpose (its logger is process-wide).
var quietRedis sync.Once

// StartRedis starts a private, empty, non-persistent Redis for the test.
func StartRedis(t testing.TB) *Redis {
	t.Helper()
	quietRedis.Do(func() { redis.SetLogger(silentLogger{}) })
	// Unix socket paths are limited to ~100 bytes: keep the folder short.
	dir, err := os.MkdirTemp("", "ghr")
	if err != nil {
		t.Fatal(err)
	}
	r := &Redis{t: t, dir: dir, socket: filepath.Join(dir, "r.sock")}
	t.Cleanup(func() {
		r.Stop()
		_ = os.RemoveAll(dir)
	})
	r.Start()
	return r
}

func redisServerPath(t testing.TB) string {
	if p := os.Getenv("REDIS_SERVER"); p != "" {
		return p
	}
	if p, err := exec.LookPath("redis-server"); err == nil {
		return p
	}
	for _, p := range []string{"/usr/bin/redis-server", "/usr/local/bin/redis-server"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Fatal("redis-server not found: run `make test` (it installs it) or set REDIS_SERVER")
	return ""
}

// Start (re)starts the server on the same socket, empty.
func (r *Redis) Start() {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd != nil {
		return
	}
	cmd := exec.Command(redisServerPath(r.t),
		"--port", "0", "--unixsocket", r.socket, "--unixsocketperm", "700",
		"--save", "", "--appendonly", "no", "--dir", r.dir, "--loglevel", "warning")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		r.t.Fatalf("start redis-server: %v", err)
	}
	r.cmd = cmd
	c := r.client()
	defer func() { _ = c.Close() }()
	deadline := time.Now().Add(10 * time.Second)
	for c.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			r.t.Fatalf("redis-server did not answer: %s", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Stop kills the server (like a crash: nothing is saved).
func (r *Redis) Stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
	_ = os.Remove(r.socket)
	r.cmd = nil
}

// URL is the REDIS_URL of this server.
func (r *Redis) URL() string { return "unix://" + r.socket }

func (r *Redis) client() redis.UniversalClient {
	c, err := redisstore.Connect(redisstore.Options{URL: r.URL()})
	if err != nil {
		r.t.Fatal(err)
	}
	return c
}

// Client returns a client of this server, closed when the test ends.
func (r *Redis) Client() redis.UniversalClient {
	c := r.client()
	r.t.Cleanup(func() { _ = c.Close() })
	return c
}

type silentLogger struct{}

func (silentLogger) Printf(context.Context, string, ...any) {}
