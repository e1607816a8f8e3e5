package pgstore_test

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/gatehouse/gatehouse/internal/account"
	"github.com/gatehouse/gatehouse/internal/user"
)

// The user.Store suite (Manage has its own tests in user_test.go).

// maxID is the keyset cursor of a first page.
var maxID = uuid.Max

func ids(ps []account.Profile) []uuid.UUID {
	out := make([]uuid.UUID, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.ID)
	}
	return out
}

func TestUserStore_ListUsersFilters(t *testing.T) {
	t.Parallel()
	store, _ := newStore(t)
	alice := newUserAt(t, store, "alice@example.com", account.RoleUser)
	admin := newUserAt(t, store, "al_admin@example.com", account.RoleAdmin, account.RoleUser)
	off := newUserAt(t, store, "bob@example.com", account.RoleUser)
	gone := newUserAt(t, store, "alfred@example.com", account.RoleUser)
	if _, _, err := store.Manage(t.Context(), off.ID, func(tg user.Target) (user.Edit, error) {
		e := user.Edit{User: tg.User, EndSessions: "disabled"}
		e.User.DisabledAt = new(time.Now())
		return e, nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := store.Manage(t.Context(), gone.ID, func(tg user.Target) (user.Edit, error) { return deleted(tg), nil }); err != nil {
		t.Fatal(err)
	}
	status := func(s user.Status) *user.Status { return &s }
	future, past := time.Now().Add(time.Hour), time.Now().Add(-time.Hour)
	for _, tc := range []struct {
		name string
		f    user.Filter
		want []account.Profile // newest first
	}{
		{"no filter lists live users", user.Filter{}, []account.Profile{off, admin, alice}},
		{"active", user.Filter{Status: status(user.Active)}, []account.Profile{admin, alice}},
		{"disabled", user.Filter{Status: status(user.Disabled)}, []account.Profile{off}},
		{"deleted", user.Filter{Status: status(user.Deleted)}, []account.Profile{gone}},
		{"an email prefix, any case", user.Filter{EmailPrefix: "AL"}, []account.Profile{admin, alice}},
		{"an email prefix among the deleted", user.Filter{EmailPrefix: "al", Status: status(user.Deleted)}, []account.Profile{gone}},
		{"LIKE's wildcards are literal in a prefix", user.Filter{EmailPrefix: "al_"}, []account.Profile{admin}},
		{"a percent sign matches only itself", user.Filter{EmailPrefix: "%"}, nil},
		{"a role", user.Filter{Role: new(account.RoleAdmin)}, []account.Profile{admin}},
		{"created after", user.Filter{CreatedAfter: &future}, nil},
		{"created before", user.Filter{CreatedBefore: &past}, nil},
		{"created in a window", user.Filter{CreatedAfter: &past, CreatedBefore: &future, Status: status(user.Active)}, []account.Profile{admin, alice}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := items(store.ListUsers(t.Context(), tc.f, account.PageRequest{Before: maxID, Limit: 10}))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(ids(got), ids(tc.want)) {
				t.Fatalf("got %v, want %v", ids(got), ids(tc.want))
			}
		})
	}
	t.Run("rows carry roles and no secrets", func(t *testing.T) {
		got, err := items(store.ListUsers(t.Context(), user.Filter{Role: new(account.RoleAdmin)}, account.PageRequest{Before: maxID, Limit: 10}))
		if err != nil || len(got) != 1 || !slices.Equal(got[0].Roles, []string{account.RoleAdmin, account.RoleUser}) || got[0].Email != admin.Email {
			t.Fatalf("%+v, %v", got, err)
		}
	})
}

// TestUserStore_ListUsersPagesByKeyset: pages of two, each after the last
// id of the previous one, list every user once, newest first.
func TestUserStore_ListUsersPagesByKeyset(t *testing.T) {
	t.Parallel()
	store, _ := newStore(t)
	var want []uuid.UUID
	for range 5 {
		want = append([]uuid.UUID{newUser(t, store).ID}, want...)
	}
	var got []uuid.UUID
	before := maxID
	for page := 0; ; page++ {
		pg, err := store.ListUsers(t.Context(), user.Filter{}, account.PageRequest{Before: before, Limit: 2})
		if err != nil {
			t.Fatal(err)
		}
		rows := pg.Items
		if len(rows) > 2 || page > 3 || pg.More != (page < 2) {
			t.Fatalf("page %d: %d rows, more %v", page, len(rows), pg.More)
		}
		got = append(got, ids(rows)...)
		if !pg.More {
			break
		}
		before = rows[len(rows)-1].ID
	}
	if !slices.Equal(got, want) {
		t.Fatalf("pages list %v, want %v", got, want)
	}
}

func TestUserStore_GetUserFindsDeletedUsersToo(t *testing.T) {
	t.Parallel()
	store, _ := newStore(t)
	u := newUser(t, store, account.RoleUser)
	if _, _, err := store.Manage(t.Context(), u.ID, func(tg user.Target) (user.Edit, error) { return deleted(tg), nil }); err != nil {
		t.Fatal(err)
	}
	got, err := store.GetUser(t.Context(), u.ID)
	if err != nil || got.DeletedAt == nil || got.Email != u.Email || !slices.Equal(got.Roles, []string{account.RoleUser}) {
		t.Fatalf("%+v, %v", got, err)
	}
	if _, err := store.GetUser(t.Context(), uuid.New()); !errors.Is(err, account.ErrNotFound) {
		t.Fatalf("unknown: %v", err)
	}
}

func TestUserStore_Sessions(t *testing.T) {
	t.Parallel()
	store, pool := newStore(t)
	u, other := newUser(t, store), newUser(t, store)
	a, _ := newSession(t, store, u)
	b, _ := newSession(t, store, u)
	c, _ := newSession(t, store, u)
	theirs, _ := newSession(t, store, other)
	e := account.Event{Action: account.ActionSessionRevoked, SubjectID: &u.ID}

	if ok, err := store.RevokeOwnSession(t.Context(), u.ID, b, e); err != nil || !ok {
		t.Fatalf("revoke an own session: %v, %v", ok, err)
	}
	for _, tc := range []struct {
		name string
		sid  uuid.UUID
	}{
		{"one already revoked", b},
		{"another user's", theirs},
		{"an unknown one", uuid.New()},
	} {
		t.Run("revoking "+tc.name+" does nothing", func(t *testing.T) {
			if ok, err := store.RevokeOwnSession(t.Context(), u.ID, tc.sid, e); err != nil || ok {
				t.Fatalf("%v, %v", ok, err)
			}
		})
	}
	if st, _ := store.SessionState(t.Context(), theirs); st.Revoked {
		t.Fatal("another user's session was revoked")
	}
	if got := events(t, pool, u.ID); len(got) != 1 {
		t.Fatalf("events %v: one per revocation that happened", got)
	}
	for _, tc := range []struct {
		name   string
		before uuid.UUID
		limit  int
		want   []uuid.UUID
	}{
		{"live ones, newest first", maxID, 10, []uuid.UUID{c, a}},
		{"a page", maxID, 1, []uuid.UUID{c}},
		{"the next page", c, 1, []uuid.UUID{a}},
	} {
		t.Run("list "+tc.name, func(t *testing.T) {
			got, err := items(store.ListSessions(t.Context(), u.ID, account.PageRequest{Before: tc.before, Limit: tc.limit}))
			if err != nil {
				t.Fatal(err)
			}
			var gotIDs []uuid.UUID
			for _, s := range got {
				gotIDs = append(gotIDs, s.ID)
			}
			if !slices.Equal(gotIDs, tc.want) {
				t.Fatalf("got %v, want %v", gotIDs, tc.want)
			}
		})
	}
}

func TestUserStore_ListRoles(t *testing.T) {
	t.Parallel()
	store, _ := newStore(t)
	roles, err := store.ListRoles(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, r := range roles {
		got[r.Name] = r.Permissions
	}
	if len(got) != 2 || len(got[account.RoleUser]) != 0 || !slices.Contains(got[account.RoleAdmin], string(account.PermRolesAssign)) || len(got[account.RoleAdmin]) != 9 {
		t.Fatalf("roles %v", got)
	}
}

func TestUserStore_Audit(t *testing.T) {
	t.Parallel()
	store, pool := newStore(t)
	actor, subject, someone := uuid.New(), uuid.New(), uuid.New()
	record := func(a account.Action, actorID, subjectID *uuid.UUID) uuid.UUID {
		if err := store.Audit(t.Context(), account.Event{Action: a, ActorID: actorID, SubjectID: subjectID, Details: map[string]any{"n": 1}}); err != nil {
			t.Fatal(err)
		}
		var id uuid.UUID
		if err := pool.QueryRow(t.Context(), `SELECT id FROM audit_events ORDER BY id DESC LIMIT 1`).Scan(&id); err != nil {
			t.Fatal(err)
		}
		return id
	}
	e1 := record(account.ActionUserDisabled, &actor, &subject)
	e2 := record(account.ActionUserEnabled, &actor, &someone)
	e3 := record(account.ActionLoginFailed, nil, &subject)
	// e0 is old: a retention prune removes it.
	e0 := record(account.ActionLoginFailed, nil, &someone)
	if _, err := pool.Exec(t.Context(), `UPDATE audit_events SET created_at = now() - interval '100 days' WHERE id = $1`, e0); err != nil {
		t.Fatal(err)
	}
	action := account.ActionLoginFailed
	weekAgo, soon := time.Now().Add(-7*24*time.Hour), time.Now().Add(time.Minute)
	for _, tc := range []struct {
		name   string
		f      user.AuditFilter
		before uuid.UUID
		limit  int
		want   []uuid.UUID
	}{
		{"all, newest first", user.AuditFilter{}, maxID, 10, []uuid.UUID{e0, e3, e2, e1}},
		{"by actor", user.AuditFilter{ActorID: &actor}, maxID, 10, []uuid.UUID{e2, e1}},
		{"by subject", user.AuditFilter{SubjectID: &subject}, maxID, 10, []uuid.UUID{e3, e1}},
		{"by action", user.AuditFilter{Action: &action}, maxID, 10, []uuid.UUID{e0, e3}},
		{"since", user.AuditFilter{Since: &weekAgo}, maxID, 10, []uuid.UUID{e3, e2, e1}},
		{"until", user.AuditFilter{Until: &weekAgo}, maxID, 10, []uuid.UUID{e0}},
		{"until later", user.AuditFilter{Until: &soon, Action: &action}, maxID, 10, []uuid.UUID{e0, e3}},
		{"a page", user.AuditFilter{}, maxID, 2, []uuid.UUID{e0, e3}},
		{"the next page", user.AuditFilter{}, e3, 2, []uuid.UUID{e2, e1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := items(store.ListAudit(t.Context(), tc.f, account.PageRequest{Before: tc.before, Limit: tc.limit}))
			if err != nil {
				t.Fatal(err)
			}
			var gotIDs []uuid.UUID
			for _, e := range got {
				gotIDs = append(gotIDs, e.ID)
			}
			if !slices.Equal(gotIDs, tc.want) {
				t.Fatalf("got %v, want %v", gotIDs, tc.want)
			}
			if len(got) > 0 && got[0].Details["n"] != float64(1) {
				t.Fatalf("details %v", got[0].Details)
			}
		})
	}
	t.Run("prune removes what is older than the retention only", func(t *testing.T) {
		n, err := store.PruneAudit(t.Context(), time.Now().Add(-90*24*time.Hour))
		if err != nil || n != 1 {
			t.Fatalf("pruned %d, %v", n, err)
		}
		left, err := items(store.ListAudit(t.Context(), user.AuditFilter{}, account.PageRequest{Before: maxID, Limit: 10}))
		if err != nil || len(left) != 3 || slices.ContainsFunc(left, func(e user.AuditEvent) bool { return e.ID == e0 }) {
			t.Fatalf("left %d, %v", len(left), err)
		}
	})
}

// TestUserStore_PruneDropsDeadChallengesAndEnrolments: the hourly pruning
// also deletes login challenges and unconfirmed enrolments dead for a day,
// and nothing alive, nor a confirmed factor.
func TestUserStore_PruneDropsDeadChallengesAndEnrolments(t *testing.T) {
	t.Parallel()
	store, pool := newStore(t)
	u := newUser(t, store, account.RoleUser)
	deadEnrolment, liveEnrolment, confirmed := uuid.New(), uuid.New(), uuid.New()
	if _, err := pool.Exec(t.Context(), `INSERT INTO mfa_factors (id, user_id, kind, secret, key_id, expires_at, confirmed_at) VALUES
		($1, $4, 'totp', '\x00', 'k', now() - interval '25 hours', NULL),
		($2, $4, 'totp', '\x00', 'k', now() - interval '1 hour', NULL),
		($3, $4, 'totp', '\x00', 'k', NULL, now() - interval '400 days')`, deadEnrolment, liveEnrolment, confirmed, u.ID); err != nil {
		t.Fatal(err)
	}
	deadChallenge, recentChallenge := randomHash(), randomHash()
	if _, err := pool.Exec(t.Context(), `INSERT INTO mfa_challenges (challenge_hash, user_id, token_version, expires_at) VALUES
		($1, $3, 1, now() - interval '25 hours'), ($2, $3, 1, now() - interval '1 hour')`, deadChallenge, recentChallenge, u.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := store.PruneAudit(t.Context(), time.Now().Add(-90*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	var factors []uuid.UUID
	if err := pool.QueryRow(t.Context(), `SELECT coalesce(array_agg(id ORDER BY id), '{}') FROM mfa_factors WHERE user_id = $1`, u.ID).Scan(&factors); err != nil {
		t.Fatal(err)
	}
	want := []uuid.UUID{liveEnrolment, confirmed}
	slices.SortFunc(want, func(a, b uuid.UUID) int { return strings.Compare(a.String(), b.String()) })
	if !slices.Equal(factors, want) {
		t.Fatalf("factors left %v, want the live enrolment and the confirmed factor %v", factors, want)
	}
	var challenges [][]byte
	if err := pool.QueryRow(t.Context(), `SELECT coalesce(array_agg(challenge_hash), '{}') FROM mfa_challenges WHERE user_id = $1`, u.ID).Scan(&challenges); err != nil {
		t.Fatal(err)
	}
	if len(challenges) != 1 || !bytes.Equal(challenges[0], recentChallenge) {
		t.Fatalf("%d challenges left, want only the recent one", len(challenges))
	}
}
