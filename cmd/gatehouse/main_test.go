package main

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/apitest"
	"github.com/gatehouse/gatehouse/internal/token"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "gatehouse-bin")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "gatehouse")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build gatehouse: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// gatehouse runs the binary with only the given environment (plus PATH).
func gatehouse(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	cmd.Dir = t.TempDir() // no .env there
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestMigrate_UpStatusDown(t *testing.T) {
	t.Parallel()
	env := []string{"DATABASE_URL=" + apitest.EmptyDatabaseURL(t)}
	out, err := gatehouse(t, env, "migrate", "status")
	if err != nil || !strings.Contains(out, "pending") {
		t.Fatalf("status on an empty database: %v\n%s", err, out)
	}
	out, err = gatehouse(t, env, "migrate", "up")
	if err != nil || !strings.Contains(out, "applied 00001_init.sql") {
		t.Fatalf("up: %v\n%s", err, out)
	}
	out, err = gatehouse(t, env, "migrate", "up")
	if err != nil || !strings.Contains(out, "up to date") {
		t.Fatalf("second up: %v\n%s", err, out)
	}
	out, err = gatehouse(t, env, "migrate", "status")
	if err != nil || strings.Contains(out, "pending") {
		t.Fatalf("status after up: %v\n%s", err, out)
	}
	out, err = gatehouse(t, env, "migrate", "down")
	if err != nil || !strings.Contains(out, "rolled back 0000") {
		t.Fatalf("down: %v\n%s", err, out)
	}
	if out, err := gatehouse(t, env, "migrate", "sideways"); err == nil {
		t.Fatalf("unknown migrate command accepted:\n%s", out)
	}
}

func TestVersionAndUsage(t *testing.T) {
	t.Parallel()
	if out, err := gatehouse(t, nil, "version"); err != nil || !strings.HasPrefix(out, "gatehouse ") {
		t.Fatalf("version: %v %s", err, out)
	}
	if out, err := gatehouse(t, nil, "frobnicate"); err == nil || !strings.Contains(out, "usage:") {
		t.Fatalf("unknown command: %v %s", err, out)
	}
}

func TestServe_ProductionRefusesUnsafeSettings(t *testing.T) {
	t.Parallel()
	out, err := gatehouse(t, []string{"APP_ENV=production"}, "serve")
	if err == nil || !strings.Contains(out, "JWT_SIGNING_KEY_FILES") || !strings.Contains(out, "REDIS_URL") {
		t.Fatalf("production started without keys or Redis: %v\n%s", err, out)
	}
}

// TestServe_SIGTERMDrainsInFlightRequests: a readiness probe stuck on a Redis
// that never answers is in flight when SIGTERM arrives; it still gets its
// answer, then the process exits cleanly.
func TestServe_SIGTERMDrainsInFlightRequests(t *testing.T) {
	t.Parallel()
	silent, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer c.Close() // hold it open, say nothing
		}
	}()
	port := freePort(t)
	cmd := exec.Command(binary, "serve")
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"), fmt.Sprintf("PORT=%d", port), "LOG_FORMAT=json",
		"DATABASE_URL=" + apitest.DatabaseURL(t), "REDIS_URL=redis://" + silent.Addr().String() + "/0",
	}
	cmd.Dir = t.TempDir()
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	waitUntil(t, 10*time.Second, func() bool {
		res, err := get(t, base+"/health/live")
		if err == nil {
			res.Body.Close()
		}
		return err == nil && res.StatusCode == 200
	})

	type result struct {
		status int
		err    error
	}
	done := make(chan result, 1)
	go func() {
		res, err := get(t, base+"/health/ready")
		if err != nil {
			done <- result{err: err}
			return
		}
		res.Body.Close()
		done <- result{status: res.StatusCode}
	}()
	time.Sleep(500 * time.Millisecond) // the probe is now waiting on Redis
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || r.status != http.StatusServiceUnavailable {
		t.Fatalf("in-flight request was not drained: %+v\nlogs:\n%s", r, logs.String())
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, logs.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("did not exit after SIGTERM:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), `"msg":"stopped"`) {
		t.Fatalf("no clean stop in the logs:\n%s", logs.String())
	}
}

// get is http.Get bound to the test's context.
func get(t *testing.T, url string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	return http.DefaultClient.Do(req)
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func waitUntil(t *testing.T, d time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestKeygen_WritesAKeyTheServerLoads(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "k.pem")
	if out, err := gatehouse(t, nil, "keygen", "--out", file); err != nil || !strings.Contains(out, "kid") {
		t.Fatalf("keygen: %v %s", err, out)
	}
	first := apitest.Must(os.ReadFile(file))(t)
	if out, err := gatehouse(t, nil, "keygen", "--out", file); err != nil || !strings.Contains(out, "left unchanged") {
		t.Fatalf("second keygen: %v %s", err, out)
	}
	again := apitest.Must(os.ReadFile(file))(t)
	if string(first) != string(again) {
		t.Fatal("keygen overwrote an existing key")
	}
	if _, err := token.LoadKeyFile(file); err != nil {
		t.Fatal(err)
	}
	if st := apitest.Must(os.Stat(file))(t); st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v", st.Mode().Perm())
	}
}
