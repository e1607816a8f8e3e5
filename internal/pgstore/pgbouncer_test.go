package pgstore_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gatehouse/gatehouse/internal/account"
	"github.com/gatehouse/gatehouse/internal/apitest"
	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/pgstore"
)

// pooledStore is a store whose pool goes through a real PgBouncer in
// transaction mode with 2 server connections for its 8 client connections.
func pooledStore(t *testing.T) (*pgstore.Store, *pgxpool.Pool, *apitest.PgBouncer) {
	t.Helper()
	bouncer := apitest.StartPgBouncer(t, apitest.DatabaseURL(t), apitest.PgBouncerOptions{ServerConns: 2})
	pool, err := pgstore.Connect(t.Context(), bouncer.URL, 8, pgstore.TransactionPooler)
	if err != nil {
		t.Fatalf("connect through pgbouncer: %v", err)
	}
	t.Cleanup(pool.Close)
	s, _ := storeOn(t, pool)
	return s, pool, bouncer
}

// TestStore_WorksBehindPgBouncerInTransactionMode: the store's statements,
// alone and in transactions, from many connections at once, all succeed
// through a pooler that hands each transaction whichever server connection
// is free (with pgx's default named statements they fail: see
// TestPgBouncer_RefusesWhatADirectConnectionDoes).
func TestStore_WorksBehindPgBouncerInTransactionMode(t *testing.T) {
	t.Parallel()
	s, _, _ := pooledStore(t)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			for range 15 {
				u, err := s.CreateUser(t.Context(), account.NewUser{ID: uuid.Must(uuid.NewV7()), Email: apitest.NewEmail("pooled"), PasswordHash: "x", Roles: []string{account.RoleUser}})
				if err != nil {
					errs <- err
					return
				}
				sid := uuid.Must(uuid.NewV7())
				now := time.Now()
				if err := s.CreateSession(t.Context(), auth.NewSession{
					ID: sid, UserID: u.ID, TokenVersion: u.TokenVersion, RefreshHash: randomHash(),
					IdleExpiresAt: now.Add(time.Hour), ExpiresAt: now.Add(2 * time.Hour),
				}); err != nil {
					errs <- err
					return
				}
				// jsonb details: a parameter whose type only the server knows.
				if err := s.Audit(t.Context(), account.Event{Action: account.ActionSessionLogout, SubjectID: &u.ID, Details: map[string]any{"reason": "pooled"}}); err != nil {
					errs <- err
					return
				}
				if _, err := s.UserByID(t.Context(), u.ID); err != nil {
					errs <- err
					return
				}
				if _, err := s.RevokeSession(t.Context(), sid, "logout"); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("through pgbouncer: %v", err)
	}
}

// TestPgBouncer_RefusesWhatADirectConnectionDoes: the test pooler is as
// strict as a production one, so the tests through it prove something. A
// pool configured for a direct connection cannot even connect (PgBouncer
// refuses the statement_timeout startup parameter), and without that
// parameter its named prepared statements break as soon as transactions
// change server connections.
func TestPgBouncer_RefusesWhatADirectConnectionDoes(t *testing.T) {
	t.Parallel()
	_, _, bouncer := pooledStore(t)

	direct, err := pgstore.Connect(t.Context(), bouncer.URL, 8, pgstore.Direct)
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	if err := direct.Ping(t.Context()); err == nil || !strings.Contains(err.Error(), "unsupported startup parameter") {
		t.Fatalf("a direct pool's startup parameters through pgbouncer: %v, want unsupported startup parameter", err)
	}

	named, err := pgstore.Connect(t.Context(), bouncer.URL, 8, pgstore.Direct, func(c *pgxpool.Config) {
		delete(c.ConnConfig.RuntimeParams, "statement_timeout")
	})
	if err != nil {
		t.Fatal(err)
	}
	defer named.Close()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failed error
	for range 8 {
		wg.Go(func() {
			for i := range 20 {
				var n int
				if err := named.QueryRow(t.Context(), "SELECT $1::int + 1", i).Scan(&n); err != nil {
					mu.Lock()
					failed = err
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	if failed == nil || !strings.Contains(failed.Error(), "prepared statement") {
		t.Fatalf("named prepared statements through pgbouncer: %v, want a prepared statement error", failed)
	}
}

// TestStore_BehindPgBouncerEachStatementIsBounded: without statement_timeout
// (PgBouncer refuses it as a startup parameter), a statement still does not
// hold a request longer than pgstore.PooledStatementDeadline; pgx gives up
// its connection without a cancel request (which PgBouncer 1.18 may crash
// on), the pooler survives and the pool keeps working.
func TestStore_BehindPgBouncerEachStatementIsBounded(t *testing.T) {
	t.Parallel()
	_, pool, _ := pooledStore(t)
	start := time.Now()
	_, err := pool.Exec(t.Context(), "SELECT pg_sleep(120)")
	took := time.Since(start)
	if !pgconn.Timeout(err) && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a two-minute statement: %v after %s, want a timeout", err, took)
	}
	if took < pgstore.PooledStatementDeadline || took > pgstore.PooledStatementDeadline+30*time.Second {
		t.Fatalf("stopped after %s, want about %s", took, pgstore.PooledStatementDeadline)
	}
	for i := range 3 { // on new server connections, and on the one freed
		if _, err := pool.Exec(t.Context(), "SELECT 1"); err != nil {
			t.Fatalf("the pool after the deadline (%d): %v", i, err)
		}
	}
}
