package apitest

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	gatehouse "github.com/gatehouse/gatehouse/clients/go"
	"github.com/gatehouse/gatehouse/gen/client"
	"github.com/gatehouse/gatehouse/internal/app"
	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/httpapi"
	"github.com/gatehouse/gatehouse/internal/logging"
	"github.com/gatehouse/gatehouse/internal/pgstore"
	"github.com/gatehouse/gatehouse/internal/ratelimit"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// Server is a gatehouse served in-process on a real PostgreSQL database and a
// real Redis of the test's own, built exactly as `gatehouse serve` builds it.
type Server struct {
	t           testing.TB
	URL         string
	DatabaseURL string
	Redis       *Redis
	Accounts    *auth.Service
	// Client is the generated typed client; every response it sees is
	// validated against the contract.
	Client *client.ClientWithResponses
	// HTTP sends raw requests through the same validating transport.
	HTTP    *http.Client
	logs    *syncBuffer
	mailDir string
	mailbox *SMTP

	mu      sync.Mutex
	secrets map[string]string // value → what it is
}

// Secret registers a value that must never appear in the server's logs
// (passwords, tokens, raw emails); every test server checks its logs for all
// of them when the test ends.
func (s *Server) Secret(what, value string) {
	if len(value) < 6 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.secrets[value] = what
}

func (s *Server) checkLogs() {
	logs := s.Logs()
	s.mu.Lock()
	defer s.mu.Unlock()
	for v, what := range s.secrets {
		if strings.Contains(logs, v) {
			s.t.Errorf("the server logged a %s", what)
		}
	}
}

// Options adjust the server under test.
type Options struct {
	// Env overrides configuration variables (after the test defaults).
	Env map[string]string
	// RateLimits replaces the default limits.
	RateLimits *ratelimit.Policies
	// Authenticator replaces the service's own token check (tests of the
	// authorization mechanism alone).
	Authenticator httpapi.Authenticator
	// Deps, when set, may change the HTTP dependencies.
	Deps func(*httpapi.Deps)
	// Mailbox, when set, receives the server's mail over SMTP.
	Mailbox *SMTP
	// DatabaseURL and Redis, when set, are shared instead of fresh ones
	// (several instances of one deployment).
	DatabaseURL string
	Redis       *Redis
	// Statements, when set, records the SQL the server runs for requests.
	Statements *Statements
	// Tracing, when set, traces the server as `gatehouse serve` does with an
	// OTLP endpoint (tests export to tracetest's in-memory exporter).
	Tracing *telemetry.Tracing
	// PgBouncer puts a real PgBouncer in transaction mode between the server
	// and its database, as DATABASE_POOLER=transaction expects:
	// DATABASE_URL goes through it, DATABASE_DIRECT_URL does not. The
	// environment switch TEST_PGBOUNCER=1 (make test-pgbouncer) sets it for
	// every test server.
	PgBouncer bool
}

// TestEnv is the configuration every test server starts from: cheap
// argon2id parameters (the race detector makes the real ones slow; the
// parameters are configuration, the code path is the same).
func TestEnv(dbURL, redisURL string) map[string]string {
	return map[string]string{
		"APP_ENV": "test", "DATABASE_URL": dbURL, "REDIS_URL": redisURL,
		"ARGON2_MEMORY_KIB": "4096", "ARGON2_TIME": "1", "PASSWORD_HASH_CONCURRENCY": "4",
		"LOG_LEVEL": "debug", "LOG_FORMAT": "json", "PUBLIC_URL": "http://gatehouse.test",
		"MAIL_RETRY_BASE": "100ms",
	}
}

// NewServer starts a server for the test and stops it when the test ends.
func NewServer(t testing.TB, o Options) *Server {
	t.Helper()
	dbURL := o.DatabaseURL
	if dbURL == "" {
		dbURL = DatabaseURL(t)
	}
	rd := o.Redis
	if rd == nil {
		rd = StartRedis(t)
	}
	env := TestEnv(dbURL, rd.URL())
	if o.PgBouncer || ThroughPgBouncer() {
		env["DATABASE_URL"] = StartPgBouncer(t, dbURL, PgBouncerOptions{}).URL
		env["DATABASE_DIRECT_URL"] = dbURL
		env["DATABASE_POOLER"] = config.PoolerTransaction
	}
	mailDir := t.TempDir()
	env["MAIL_DIR"] = mailDir
	if o.Mailbox != nil {
		for k, v := range o.Mailbox.Env() {
			env[k] = v
		}
	}
	for k, v := range o.Env {
		env[k] = v
	}
	cfg, err := config.Parse(env)
	if err != nil {
		t.Fatalf("test configuration: %v", err)
	}
	var tracer pgx.QueryTracer
	if o.Statements != nil {
		tracer = o.Statements
	}
	via := pgstore.Direct
	if cfg.BehindTransactionPooler() {
		via = pgstore.TransactionPooler
	}
	pool := connectPool(t, cfg.DatabaseURL, via, o.Tracing.PgxTracer(tracer))
	logs := &syncBuffer{}
	log := logging.New(logs, "json", slog.LevelDebug)
	deps := o.Deps
	if o.Authenticator != nil {
		deps = func(d *httpapi.Deps) {
			d.Authenticator = o.Authenticator
			if o.Deps != nil {
				o.Deps(d)
			}
		}
	}
	a, err := app.New(cfg, log, pool, rd.Client(), app.Options{RateLimits: o.RateLimits, Deps: deps, Tracing: o.Tracing})
	if err != nil {
		t.Fatalf("build server: %v", err)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatalf("start workers: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = a.Stop(ctx)
	})
	ts := httptest.NewServer(a.Handler)
	t.Cleanup(ts.Close)

	hc := &http.Client{Transport: newValidatingTransport(t, http.DefaultTransport)}
	c, err := client.NewClientWithResponses(ts.URL, client.WithHTTPClient(hc))
	if err != nil {
		t.Fatalf("build client: %v", err)
	}
	srv := &Server{t: t, URL: ts.URL, DatabaseURL: dbURL, Redis: rd, Accounts: a.Accounts, Client: c, HTTP: hc, logs: logs, secrets: map[string]string{}, mailDir: env["MAIL_DIR"], mailbox: o.Mailbox}
	t.Cleanup(srv.checkLogs) // runs after the server has stopped
	return srv
}

// Logs returns everything the server logged so far.
func (s *Server) Logs() string { return s.logs.String() }

// WithToken returns a typed client that sends token as its bearer token.
func (s *Server) WithToken(token string) *client.ClientWithResponses {
	c, err := gatehouse.New(s.URL, client.WithHTTPClient(s.HTTP), gatehouse.WithBearer(token))
	if err != nil {
		s.t.Fatal(err)
	}
	return c
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
