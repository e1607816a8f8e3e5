package apitest

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// PgBouncerEnv names the environment switch that runs every test server
// (NewServer) behind a PgBouncer of its own: `make test-pgbouncer` sets it.
const PgBouncerEnv = "TEST_PGBOUNCER"

// ThroughPgBouncer reports whether PgBouncerEnv asks for it.
func ThroughPgBouncer() bool { return os.Getenv(PgBouncerEnv) == "1" }

// PgBouncer is a real PgBouncer (Debian's 1.18 under `make test`) in
// transaction pooling mode in front of one test database, as production
// runs it: fewer server connections than the application opens, so
// consecutive transactions of one client connection run on different server
// connections and anything a session keeps (named prepared statements, SET,
// session advisory locks, LISTEN) is lost or seen by another client.
type PgBouncer struct {
	// URL reaches the database through the pooler (a unix socket of the
	// test's own: no port to collide with other tests).
	URL string
	// ServerConns is the pool size towards PostgreSQL.
	ServerConns int
}

// PgBouncerOptions adjust StartPgBouncer.
type PgBouncerOptions struct {
	// ServerConns is pgbouncer's default_pool_size (default 3, fewer than
	// the test server's 8 client connections).
	ServerConns int
}

// StartPgBouncer starts pgbouncer in front of dbURL and stops it (by its PID)
// when the test ends. It refuses unknown startup parameters, as a default
// PgBouncer does: ignore_startup_parameters is empty.
func StartPgBouncer(t testing.TB, dbURL string, o PgBouncerOptions) *PgBouncer {
	t.Helper()
	if o.ServerConns == 0 {
		o.ServerConns = 3
	}
	cc, err := pgx.ParseConfig(dbURL)
	if err != nil {
		t.Fatalf("parse test database URL: %v", err)
	}
	// Unix socket paths are limited to ~100 bytes: keep the folder short.
	dir, err := os.MkdirTemp("", "ghpgb")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	const port = 6432 // only names the socket: .s.PGSQL.6432
	quote := func(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
	conf := fmt.Sprintf(`[databases]
%s = host=%s port=%d dbname=%s user=%s password=%s

[pgbouncer]
listen_addr =
listen_port = %d
unix_socket_dir = %s
auth_type = trust
auth_file = %s
pool_mode = transaction
default_pool_size = %d
max_client_conn = 200
query_wait_timeout = 30
server_check_delay = 0
server_login_retry = 1
log_connections = 0
log_disconnections = 0
`, cc.Database, cc.Host, cc.Port, cc.Database, cc.User, cc.Password,
		port, dir, filepath.Join(dir, "users.txt"), o.ServerConns)
	// server_login_retry: after PostgreSQL refused a login PgBouncer waits
	// this long before trying again (15 s by default), answering every
	// client with an error meanwhile; tests that stop the database expect
	// it back at once.
	// auth_type = trust still needs the user listed; the server (the private
	// cluster trusts loopback) gets the password from [databases] if it asks.
	users := quote(cc.User) + " " + quote(cc.Password) + "\n"
	ini := filepath.Join(dir, "pgbouncer.ini")
	if err := os.WriteFile(ini, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "users.txt"), []byte(users), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{ini}
	if os.Geteuid() == 0 {
		// PgBouncer refuses to run as root; -u drops to nobody, who must own
		// the folder of its socket.
		args = []string{"-u", "nobody", ini}
		chownTo(t, "nobody", dir, ini, filepath.Join(dir, "users.txt"))
	}
	cmd := exec.Command(pgBouncerPath(t), args...)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start pgbouncer: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		// SIGINT: PgBouncer's safe shutdown (waits for the transactions in
		// flight; the server under test has stopped by now).
		_ = cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("pgbouncer's log:\n%s", out.String())
		}
	})
	socket := filepath.Join(dir, ".s.PGSQL."+strconv.Itoa(port))
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := (&net.Dialer{Timeout: time.Second}).DialContext(context.Background(), "unix", socket)
		if err == nil {
			_ = c.Close()
			break
		}
		select {
		case <-exited:
			t.Fatalf("pgbouncer exited: %s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("pgbouncer did not listen on %s: %s", socket, out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	u := url.URL{
		Scheme: "postgres", User: url.UserPassword(cc.User, cc.Password), Path: "/" + cc.Database,
		RawQuery: url.Values{"host": {dir}, "port": {strconv.Itoa(port)}, "sslmode": {"disable"}}.Encode(),
	}
	return &PgBouncer{URL: u.String(), ServerConns: o.ServerConns}
}

func pgBouncerPath(t testing.TB) string {
	if p := os.Getenv("PGBOUNCER"); p != "" {
		return p
	}
	if p, err := exec.LookPath("pgbouncer"); err == nil {
		return p
	}
	for _, p := range []string{"/usr/sbin/pgbouncer", "/usr/local/bin/pgbouncer", "/usr/bin/pgbouncer"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Fatal("pgbouncer not found: run `make test` (it installs it) or set PGBOUNCER")
	return ""
}

func chownTo(t testing.TB, name string, paths ...string) {
	t.Helper()
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatalf("look up user %s: %v", name, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	for _, p := range paths {
		if err := os.Chown(p, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
}
