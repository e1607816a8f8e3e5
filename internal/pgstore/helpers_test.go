package pgstore_test

import (
	"context"
	"crypto/rand"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gatehouse/gatehouse/internal/account"
	"github.com/gatehouse/gatehouse/internal/apitest"
	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/jobs"
	"github.com/gatehouse/gatehouse/internal/pgstore"
	"github.com/gatehouse/gatehouse/internal/user"
)

// newStore returns a store on a fresh, migrated database of the test's own,
// with an outbox, and a pool on the same database for the test's own queries.
func newStore(t *testing.T) (*pgstore.Store, *pgxpool.Pool) {
	t.Helper()
	return storeOn(t, apitest.Pool(t, apitest.DatabaseURL(t)))
}

// storeOn is a store on pool whose mails go to an insert-only River client:
// the rows land in river_job as the real outbox writes them, and no worker
// sends them.
func storeOn(t *testing.T, pool *pgxpool.Pool) (*pgstore.Store, *pgxpool.Pool) {
	t.Helper()
	outbox, err := jobs.NewClient(pool, jobs.Config{MaxAttempts: 25})
	if err != nil {
		t.Fatalf("outbox: %v", err)
	}
	return pgstore.New(pool, outbox), pool
}

// newTracedStore is newStore with every query the store sends recorded.
func newTracedStore(t *testing.T) (*pgstore.Store, *pgxpool.Pool, *queries) {
	t.Helper()
	q := &queries{}
	pool, err := pgstore.Connect(t.Context(), apitest.DatabaseURL(t), 4, pgstore.Direct, func(c *pgxpool.Config) { c.ConnConfig.Tracer = q })
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(pool.Close)
	s, _ := storeOn(t, pool)
	return s, pool, q
}

// query is one statement a store sent, as it sent it.
type query struct {
	SQL  string
	Args []any
}

// queries records statements (a pgx.QueryTracer).
type queries struct {
	mu  sync.Mutex
	all []query
}

func (q *queries) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.all = append(q.all, query{SQL: d.SQL, Args: d.Args})
	return ctx
}

func (*queries) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// named returns the statements of the sqlc query called name, in order.
func (q *queries) named(name string) []query {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []query
	for _, s := range q.all {
		if strings.HasPrefix(s.SQL, "-- name: "+name+" ") {
			out = append(out, s)
		}
	}
	return out
}

// reset forgets what was recorded.
func (q *queries) reset() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.all = nil
}

// newUser creates a live account with roles and returns it.
func newUser(t *testing.T, s *pgstore.Store, roles ...string) account.Profile {
	t.Helper()
	return newUserAt(t, s, apitest.NewEmail("store"), roles...)
}

// newUserAt creates a live account with this address.
func newUserAt(t *testing.T, s *pgstore.Store, email string, roles ...string) account.Profile {
	t.Helper()
	u, err := s.CreateUser(t.Context(), account.NewUser{ID: uuid.Must(uuid.NewV7()), Email: email, PasswordHash: "x", Roles: roles})
	if err != nil {
		t.Fatalf("create user: %v", err)
	}
	return u
}

// randomHash is the hash of a token nobody else holds.
func randomHash() []byte {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return b
}

// newSession opens a live session of u and returns it with its refresh token's hash.
func newSession(t *testing.T, s *pgstore.Store, u account.Profile) (uuid.UUID, []byte) {
	t.Helper()
	id, h := uuid.Must(uuid.NewV7()), randomHash()
	now := time.Now()
	err := s.CreateSession(t.Context(), auth.NewSession{
		ID: id, UserID: u.ID, TokenVersion: u.TokenVersion, IdleExpiresAt: now.Add(time.Hour), ExpiresAt: now.Add(24 * time.Hour), RefreshHash: h,
	})
	if err != nil {
		t.Fatalf("create session: %v", err)
	}
	return id, h
}

// newToken stores a one-time token as the mailer does when it sends one
// (written here so that the suites do not depend on the mailer), and returns
// its hash.
func newToken(t *testing.T, pool *pgxpool.Pool, userID uuid.UUID, purpose, email string, session *uuid.UUID) []byte {
	t.Helper()
	h := randomHash()
	_, err := pool.Exec(t.Context(), `INSERT INTO one_time_tokens (token_hash, user_id, purpose, email, expires_at, session_id) VALUES ($1, $2, $3, $4, now() + interval '1 hour', $5)`,
		h, userID, purpose, email, session)
	if err != nil {
		t.Fatalf("store token: %v", err)
	}
	return h
}

// events lists the actions of the audit events about subject, oldest first.
func events(t *testing.T, pool *pgxpool.Pool, subject uuid.UUID) []string {
	t.Helper()
	return apitest.AuditActions(t, pool, subject)
}

// outbox lists the kinds of the mails queued for user, oldest first.
func outbox(t *testing.T, pool *pgxpool.Pool, userID uuid.UUID) []string {
	t.Helper()
	var out []string
	for _, m := range apitest.QueuedMails(t, pool, userID) {
		out = append(out, m.Kind)
	}
	return out
}

// waitForLockWaiter returns once a backend of the database waits for a lock.
func waitForLockWaiter(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for {
		var n int
		err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&n)
		if err != nil {
			t.Fatalf("no backend waited for a lock: %v", err)
		}
		if n > 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// deleted is the edit that soft-deletes the target.
func deleted(t user.Target) user.Edit {
	e := user.Edit{User: t.User, EndSessions: "deleted"}
	e.User.DeletedAt = new(time.Now())
	return e
}

// items is the items of a page, for tests that read one page.
func items[T any](p account.Page[T], err error) ([]T, error) { return p.Items, err }
