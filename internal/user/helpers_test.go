package user_test

import (
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gatehouse/gatehouse/internal/account"
	"github.com/gatehouse/gatehouse/internal/apitest"
	"github.com/gatehouse/gatehouse/internal/app"
	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/jobs"
	"github.com/gatehouse/gatehouse/internal/logging"
	"github.com/gatehouse/gatehouse/internal/pgstore"
	"github.com/gatehouse/gatehouse/internal/user"
)

// env is the management service on a real store, with the real
// authentication service (password hashing and checks, revocations) that
// `gatehouse serve` gives it, on a database and a Redis of the test's own.
type env struct {
	svc   *user.Service
	store *pgstore.Store
	pool  *pgxpool.Pool
}

func newEnv(t *testing.T) env {
	t.Helper()
	url := apitest.DatabaseURL(t)
	pool := apitest.Pool(t, url)
	rd := apitest.StartRedis(t)
	cfg, err := config.Parse(apitest.TestEnv(url, rd.URL()))
	if err != nil {
		t.Fatal(err)
	}
	accounts, err := app.NewAccounts(cfg, logging.New(io.Discard, "json", slog.LevelError), pool, rd.Client())
	if err != nil {
		t.Fatal(err)
	}
	// The service's own store writes mails to an insert-only outbox: the
	// rows are there to read, nothing sends them.
	outbox, err := jobs.NewClient(pool, jobs.Config{MaxAttempts: 25})
	if err != nil {
		t.Fatal(err)
	}
	store := pgstore.New(pool, outbox)
	return env{svc: user.NewService(store, accounts), store: store, pool: pool}
}

// Principals of the rules: an administrator holds every permission; a
// support agent may manage plain users but holds none of the
// administrators' other permissions.
var (
	admin = account.Principal{UserID: uuid.New(), Permissions: []string{
		"users:read", "users:write", "users:delete", "roles:read", "roles:assign", "sessions:revoke", "audit:read", "mfa:reset", "users:import",
	}}
	agent     = account.Principal{UserID: uuid.New(), Permissions: []string{"users:read", "users:write", "users:delete", "sessions:revoke", "roles:assign"}}
	helpdesk  = account.Principal{UserID: uuid.New(), Permissions: []string{"users:read", "users:write"}}
	anonymous = account.Client{}
)

// newAccount creates a verified account with the test password and roles.
func (e env) newAccount(t *testing.T, roles ...string) account.Profile {
	t.Helper()
	u, err := e.svc.Create(t.Context(), admin, user.NewAccount{Email: apitest.NewEmail("svc"), Password: apitest.Password, Roles: roles, Verified: true}, anonymous)
	if err != nil {
		t.Fatalf("create account: %v", err)
	}
	return u
}

// session opens a live session of u.
func (e env) session(t *testing.T, u account.Profile) uuid.UUID {
	t.Helper()
	id, now := uuid.Must(uuid.NewV7()), time.Now()
	h := id[:]
	h = append(h, id[:]...)
	if err := e.store.CreateSession(t.Context(), auth.NewSession{
		ID: id, UserID: u.ID, TokenVersion: u.TokenVersion, IdleExpiresAt: now.Add(time.Hour), ExpiresAt: now.Add(time.Hour), RefreshHash: h,
	}); err != nil {
		t.Fatalf("create session: %v", err)
	}
	return id
}

// live reports whether a session is live.
func (e env) live(t *testing.T, sid uuid.UUID) bool {
	t.Helper()
	st, err := e.store.SessionState(t.Context(), sid)
	if err != nil {
		t.Fatal(err)
	}
	return !st.Revoked
}

// events lists the actions of the audit events about subject but its
// creation, oldest first.
func (e env) events(t *testing.T, subject uuid.UUID) []string {
	t.Helper()
	return slices.DeleteFunc(apitest.AuditActions(t, e.pool, subject), func(a string) bool { return a == string(account.ActionUserCreated) })
}

// mails lists the mails queued for user as "kind to", oldest first.
func (e env) mails(t *testing.T, userID uuid.UUID) []string {
	t.Helper()
	var out []string
	for _, m := range apitest.QueuedMails(t, e.pool, userID) {
		out = append(out, m.Kind+" "+m.To)
	}
	return out
}
