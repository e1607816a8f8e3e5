package apitest

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/gatehouse/gatehouse/gen/client"
	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/httpapi"
	"github.com/gatehouse/gatehouse/internal/logging"
	"github.com/gatehouse/gatehouse/internal/redisstore"
)

// Server is a gatehouse served in-process on a real PostgreSQL database and a
// real Redis of the test's own.
type Server struct {
	URL         string
	DatabaseURL string
	Redis       *Redis
	// Client is the generated typed client; every response it sees is
	// validated against the contract.
	Client *client.ClientWithResponses
	// HTTP sends raw requests through the same validating transport.
	HTTP *http.Client
	logs *syncBuffer
}

// Options adjust the server under test.
type Options struct {
	// Authenticator replaces the service's own token check.
	Authenticator httpapi.Authenticator
	// Deps, when set, may change the dependencies before the server is built.
	Deps func(*httpapi.Deps)
}

// NewServer starts a server for the test and stops it when the test ends.
func NewServer(t testing.TB, o Options) *Server {
	t.Helper()
	dbURL := DatabaseURL(t)
	pool := Pool(t, dbURL)
	rd := StartRedis(t)
	rdb := rd.Client()

	logs := &syncBuffer{}
	deps := httpapi.Deps{
		Log:            logging.New(logs, "json", slog.LevelDebug),
		Authenticator:  auth.RejectAll{},
		PostgresCheck:  pool.Ping,
		RedisCheck:     func(ctx context.Context) error { return redisstore.Ping(ctx, rdb) },
		BodyLimitBytes: 1 << 20,
	}
	if o.Authenticator != nil {
		deps.Authenticator = o.Authenticator
	}
	if o.Deps != nil {
		o.Deps(&deps)
	}
	e, err := httpapi.New(deps)
	if err != nil {
		t.Fatalf("build server: %v", err)
	}
	ts := httptest.NewServer(e)
	t.Cleanup(ts.Close)

	hc := &http.Client{Transport: newValidatingTransport(t, http.DefaultTransport)}
	c, err := client.NewClientWithResponses(ts.URL, client.WithHTTPClient(hc))
	if err != nil {
		t.Fatalf("build client: %v", err)
	}
	return &Server{URL: ts.URL, DatabaseURL: dbURL, Redis: rd, Client: c, HTTP: hc, logs: logs}
}

// Logs returns everything the server logged so far.
func (s *Server) Logs() string { return s.logs.String() }

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
