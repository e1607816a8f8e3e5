package auth_test

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/internal/account"
	"github.com/gatehouse/gatehouse/internal/apitest"
	"github.com/gatehouse/gatehouse/internal/app"
	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/token"
)

// env is a service under test: built by internal/app as `gatehouse serve`
// builds it (pgstore, redisstore, the argon2id hasher with the tests' cheap
// parameters), on a fresh database and a Redis of the test's own. Its poll
// of PostgreSQL (Service.Run) is not started, so an access-token check is
// answered by the Redis cache when warm and by PostgreSQL when cold.
type env struct {
	svc   *auth.Service
	cfg   config.Config
	pool  *pgxpool.Pool
	rdb   redis.UniversalClient
	redis *apitest.Redis
}

// epochKey marks the revocation cache warm (redisstore, with the default
// REDIS_KEY_PREFIX).
const epochKey = "gatehouse:{rv}:epoch"

// client is the request every call of the tests comes with.
var client = account.Client{IP: netip.MustParseAddr("192.0.2.1"), UserAgent: "auth_test"}

func newEnv(t *testing.T, vars map[string]string) *env {
	t.Helper()
	dbURL := apitest.DatabaseURL(t)
	rd := apitest.StartRedis(t)
	e := apitest.TestEnv(dbURL, rd.URL())
	e["MAIL_DIR"] = t.TempDir()
	// One signing key for every instance of the test.
	k, err := token.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	pem, err := token.MarshalKeyPEM(k)
	if err != nil {
		t.Fatal(err)
	}
	e["JWT_SIGNING_KEY_FILES"] = filepath.Join(t.TempDir(), "signing.pem")
	if err := os.WriteFile(e["JWT_SIGNING_KEY_FILES"], pem, 0o600); err != nil {
		t.Fatal(err)
	}
	for k, v := range vars {
		e[k] = v
	}
	cfg, err := config.Parse(e)
	if err != nil {
		t.Fatalf("test configuration: %v", err)
	}
	pool := apitest.Pool(t, dbURL)
	rdb := rd.Client()
	svc, err := app.NewAccounts(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), pool, rdb)
	if err != nil {
		t.Fatalf("build service: %v", err)
	}
	return &env{svc: svc, cfg: cfg, pool: pool, rdb: rdb, redis: rd}
}

// instance is another instance of the service on the same database and
// Redis, whose reads of revocation markers are counted.
type instance struct {
	svc   *auth.Service
	reads *atomic.Int64
}

func (e *env) instance(t *testing.T) instance {
	t.Helper()
	rdb := e.redis.Client()
	reads := &atomic.Int64{}
	rdb.AddHook(markerReads{reads})
	svc, err := app.NewAccounts(e.cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), e.pool, rdb)
	if err != nil {
		t.Fatalf("build service: %v", err)
	}
	return instance{svc: svc, reads: reads}
}

// run runs svc's background work (the revocation feed and poll) until the
// test ends.
func run(t *testing.T, svc *auth.Service) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); svc.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

// waitFeed waits until svc's copy of the revocations is current, or not.
func waitFeed(t *testing.T, svc *auth.Service, current bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); svc.FeedCurrent() != current; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the revocation feed is not current=%v after 10 s", current)
		}
	}
}

// markerReads counts the commands that read revocation markers.
type markerReads struct{ n *atomic.Int64 }

func (markerReads) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h markerReads) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.count(cmd)
		return next(ctx, cmd)
	}
}

func (h markerReads) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, c := range cmds {
			h.count(c)
		}
		return next(ctx, cmds)
	}
}

func (h markerReads) count(cmd redis.Cmder) {
	if name := cmd.Name(); name == "exists" || name == "get" {
		h.n.Add(1)
	}
}

// user is an account registered and logged in through the service.
type user struct {
	id       uuid.UUID
	email    string
	password string
	tokens   auth.Tokens
}

// newUser registers an account and logs it in.
func (e *env) newUser(t *testing.T) user {
	t.Helper()
	u := user{email: apitest.NewEmail("auth"), password: apitest.Password}
	if err := e.svc.Register(t.Context(), u.email, u.password, nil, client); err != nil {
		t.Fatalf("register: %v", err)
	}
	u.tokens = e.login(t, u)
	p := e.mustAuthenticate(t, u.tokens.Access)
	u.id = p.UserID
	return u
}

// login opens another session of u.
func (e *env) login(t *testing.T, u user) auth.Tokens {
	t.Helper()
	tok, err := e.svc.Login(t.Context(), auth.LoginRequest{Email: u.email, Password: u.password}, client)
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	return tok
}

func (e *env) mustAuthenticate(t *testing.T, access string) account.Principal {
	t.Helper()
	p, err := e.svc.Authenticate(t.Context(), access)
	if err != nil {
		t.Fatalf("a live access token is refused: %v", err)
	}
	return p
}

// exec runs SQL on the test's database.
func (e *env) exec(t *testing.T, sql string, args ...any) {
	t.Helper()
	if _, err := e.pool.Exec(t.Context(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// count returns the single number sql selects.
func (e *env) count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := e.pool.QueryRow(t.Context(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// warm waits until the revocation cache is warm: a check that finds it
// cold rebuilds it from PostgreSQL in the background.
func (e *env) warm(t *testing.T, svc *auth.Service, access string) {
	t.Helper()
	_, _ = svc.Authenticate(t.Context(), access)
	for deadline := time.Now().Add(10 * time.Second); e.rdb.Exists(t.Context(), epochKey).Val() != 1; {
		if time.Now().After(deadline) {
			t.Fatal("the revocation cache never warmed up")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// cold empties Redis: the markers and the epoch are gone.
func (e *env) cold(t *testing.T) {
	t.Helper()
	if err := e.rdb.FlushAll(t.Context()).Err(); err != nil {
		t.Fatal(err)
	}
}
