package pgstore_test

import (
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/account"
	"github.com/gatehouse/gatehouse/internal/user"
)

// TestHotQueries_UseThePartialIndexes shows, with EXPLAIN, that the queries
// the store really sends for the hot paths (looking a user up by address,
// listing live and deleted users) are served by the partial indexes on live
// or deleted rows. The statements and their arguments are captured as the
// store sends them, so a change of a query (or of what the store passes to
// it) is what is checked.
func TestHotQueries_UseThePartialIndexes(t *testing.T) {
	t.Parallel()
	store, pool, sent := newTracedStore(t)
	u := newUser(t, store)
	deletedStatus := user.Deleted
	for _, tc := range []struct {
		name  string
		call  func() error
		query string // the sqlc name of the statement to explain
		index string
	}{
		{"a login's lookup by address", func() error {
			_, err := store.UserByEmail(t.Context(), u.Email)
			return err
		}, "GetUserByEmail", "users_email_live_key"},
		{"the list of live users", func() error {
			_, err := store.ListUsers(t.Context(), user.Filter{}, account.PageRequest{Before: maxID, Limit: 20})
			return err
		}, "ListLiveUsers", "users_live_id_idx"},
		{"live users by email prefix", func() error {
			_, err := store.ListUsers(t.Context(), user.Filter{EmailPrefix: "ali"}, account.PageRequest{Before: maxID, Limit: 20})
			return err
		}, "ListLiveUsers", "users_live_id_idx"},
		{"the list of deleted users", func() error {
			_, err := store.ListUsers(t.Context(), user.Filter{Status: &deletedStatus}, account.PageRequest{Before: maxID, Limit: 20})
			return err
		}, "ListDeletedUsers", "users_deleted_id_idx"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sent.reset()
			if err := tc.call(); err != nil {
				t.Fatal(err)
			}
			qs := sent.named(tc.query)
			if len(qs) != 1 {
				t.Fatalf("the store sent %d %s statements", len(qs), tc.query)
			}
			conn, err := pool.Acquire(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Release()
			// The tables are nearly empty: forbid the sequential scan to ask
			// which index the planner would serve the query from.
			if _, err := conn.Exec(t.Context(), `SET enable_seqscan = off`); err != nil {
				t.Fatal(err)
			}
			defer func() { _, _ = conn.Exec(t.Context(), `RESET enable_seqscan`) }()
			rows, err := conn.Query(t.Context(), "EXPLAIN "+qs[0].SQL, qs[0].Args...)
			if err != nil {
				t.Fatalf("explain: %v", err)
			}
			var plan strings.Builder
			for rows.Next() {
				var line string
				if err := rows.Scan(&line); err != nil {
					t.Fatal(err)
				}
				plan.WriteString(line + "\n")
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(plan.String(), tc.index) {
				t.Errorf("%s is not served by %s:\n%s", tc.query, tc.index, plan.String())
			}
		})
	}
}
