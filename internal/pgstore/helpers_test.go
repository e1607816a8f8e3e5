package pgstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gatehouse/gatehouse/internal/account"
	"github.com/gatehouse/gatehouse/internal/apitest"
	"github.com/gatehouse/gatehouse/internal/pgstore"
)

// newStore returns a store on a fresh, migrated database of the test's own,
// and a pool on the same database for the test's own queries.
func newStore(t *testing.T) (*pgstore.Store, *pgxpool.Pool) {
	t.Helper()
	pool := apitest.Pool(t, apitest.DatabaseURL(t))
	return pgstore.New(pool, nil), pool
}

// newUser creates a live account with roles and returns it.
func newUser(t *testing.T, s *pgstore.Store, roles ...string) account.Profile {
	t.Helper()
	u, err := s.CreateUser(t.Context(), account.NewUser{ID: uuid.Must(uuid.NewV7()), Email: apitest.NewEmail("store"), PasswordHash: "x", Roles: roles})
	if err != nil {
		t.Fatalf("create user: %v", err)
	}
	return u
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
