package pgstore_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/gatehouse/gatehouse/internal/account"
	"github.com/gatehouse/gatehouse/internal/user"
)

// rulesOnly is the part of authentication management's rules never reach in
// these tests (no email, password or revocation cache involved).
type rulesOnly struct{}

func (rulesOnly) ParseEmail(raw string) (string, error)                        { return raw, nil }
func (rulesOnly) CheckPassword(context.Context, string, string, *string) error { return nil }
func (rulesOnly) HashPassword(context.Context, string) (string, error)         { return "x", nil }
func (rulesOnly) VerifyPassword(context.Context, account.User, string) error   { return nil }
func (rulesOnly) PublishUserRevocation(context.Context, uuid.UUID, int64)      {}
func (rulesOnly) PublishSessionRevocation(context.Context, uuid.UUID)          {}

// TestManage_ARuleSeesTheTargetAsItIsWhenTheChangeCommits: a support agent
// (users:write, not an administrator) disables a user while an administrator
// promotes that user to admin. The agent's change waits for the promotion's
// lock and is then judged on the promoted user: refused. Checking before the
// transaction (as a separate read) let it through.
func TestManage_ARuleSeesTheTargetAsItIsWhenTheChangeCommits(t *testing.T) {
	t.Parallel()
	store, pool := newStore(t)
	target := newUser(t, store, account.RoleUser)
	agent := account.Principal{UserID: uuid.New(), Permissions: []string{"users:read", "users:write"}}
	svc := user.NewService(store, rulesOnly{})

	locked, release, promoted := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		_, _, err := store.Manage(t.Context(), target.ID, func(tg user.Target) (user.Edit, error) {
			close(locked)
			<-release // hold the lock while the agent's change arrives
			e := user.Edit{User: tg.User, EndSessions: "roles_changed"}
			e.User.Roles = []string{account.RoleAdmin}
			return e, nil
		})
		promoted <- err
	}()
	<-locked
	disabled := make(chan error, 1)
	go func() {
		_, err := svc.Update(t.Context(), agent, target.ID, user.Changes{Disabled: new(true)}, account.Client{})
		disabled <- err
	}()
	waitForLockWaiter(t, pool) // the agent's change waits for the target's row
	close(release)
	if err := <-promoted; err != nil {
		t.Fatalf("promote: %v", err)
	}
	if err := <-disabled; !errors.Is(err, account.ErrForbidden) {
		t.Fatalf("the agent's change of a user promoted meanwhile: %v, want forbidden", err)
	}
	u, err := store.GetUser(t.Context(), target.ID)
	if err != nil {
		t.Fatal(err)
	}
	if u.DisabledAt != nil || !slices.Equal(u.Roles, []string{account.RoleAdmin}) {
		t.Fatalf("after both: disabled %v, roles %v", u.DisabledAt, u.Roles)
	}
}

// TestManage_TheAuditEventIsPartOfTheChange: an event that cannot be recorded
// undoes the change it reports, so no change exists without its audit row.
func TestManage_TheAuditEventIsPartOfTheChange(t *testing.T) {
	t.Parallel()
	store, pool := newStore(t)
	target := newUser(t, store, account.RoleUser)
	_, _, err := store.Manage(t.Context(), target.ID, func(tg user.Target) (user.Edit, error) {
		e := user.Edit{User: tg.User, EndSessions: "disabled"}
		e.User.DisabledAt = new(tg.User.CreatedAt)
		// Details that cannot be encoded: the event cannot be written.
		e.Events = []account.Event{{Action: "user.disabled", SubjectID: &tg.User.ID, Details: map[string]any{"x": make(chan int)}}}
		return e, nil
	})
	if err == nil {
		t.Fatal("a change whose event cannot be recorded succeeded")
	}
	u, err := store.GetUser(t.Context(), target.ID)
	if err != nil {
		t.Fatal(err)
	}
	if u.DisabledAt != nil || u.TokenVersion != target.TokenVersion {
		t.Fatalf("the change stayed without its event: disabled %v, version %d", u.DisabledAt, u.TokenVersion)
	}
	var events int
	if err := pool.QueryRow(t.Context(), `SELECT count(*) FROM audit_events WHERE subject_id = $1`, target.ID).Scan(&events); err != nil {
		t.Fatal(err)
	}
	if events != 0 {
		t.Fatalf("%d events", events)
	}
}

// TestManage_WritesTheEditAndReturnsTheRowItWrote covers the fields an edit
// writes, the token version of ended sessions, and the rule's own error.
func TestManage_WritesTheEditAndReturnsTheRowItWrote(t *testing.T) {
	t.Parallel()
	store, _ := newStore(t)
	target := newUser(t, store, account.RoleUser)
	refused := errors.New("refused by the rule")
	if _, _, err := store.Manage(t.Context(), target.ID, func(user.Target) (user.Edit, error) { return user.Edit{}, refused }); !errors.Is(err, refused) {
		t.Fatalf("the rule's error: %v", err)
	}
	if _, _, err := store.Manage(t.Context(), uuid.New(), func(user.Target) (user.Edit, error) { return user.Edit{}, nil }); !errors.Is(err, account.ErrNotFound) {
		t.Fatalf("an unknown user: %v", err)
	}
	name := "Renamed"
	got, v, err := store.Manage(t.Context(), target.ID, func(tg user.Target) (user.Edit, error) {
		if !slices.Equal(tg.Permissions(), nil) && !slices.Contains(tg.Roles[account.RoleAdmin], "users:write") {
			t.Errorf("the target's permissions %v, the roles %v", tg.Permissions(), tg.Roles)
		}
		e := user.Edit{User: tg.User, EndSessions: "roles_changed"}
		e.User.Name, e.User.Roles = &name, []string{account.RoleAdmin, account.RoleUser}
		return e, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if v != target.TokenVersion+1 || got.TokenVersion != v || *got.Name != name || !slices.Equal(got.Roles, []string{account.RoleAdmin, account.RoleUser}) {
		t.Fatalf("returned %+v, version %d", got, v)
	}
	again, err := store.GetUser(t.Context(), target.ID)
	if err != nil {
		t.Fatal(err)
	}
	if again.UpdatedAt != got.UpdatedAt || *again.Name != name || !slices.Equal(again.Roles, got.Roles) {
		t.Fatalf("stored %+v, returned %+v", again, got)
	}
	// An edit that changes nothing writes nothing: updated_at stays.
	same, v, err := store.Manage(t.Context(), target.ID, func(tg user.Target) (user.Edit, error) { return user.Edit{User: tg.User}, nil })
	if err != nil || v != 0 || !same.UpdatedAt.Equal(got.UpdatedAt) {
		t.Fatalf("a no-op edit: %v, version %d, updated %v → %v", err, v, got.UpdatedAt, same.UpdatedAt)
	}
}

// TestManage_ARestoreDoesNotTakeAnAddressHeldForAnUndo: an address another
// account may take back (the undo of its email change) is not free for a
// deleted account's restore either.
func TestManage_ARestoreDoesNotTakeAnAddressHeldForAnUndo(t *testing.T) {
	t.Parallel()
	store, pool := newStore(t)
	gone, other := newUser(t, store), newUser(t, store)
	restore := func(deleted bool) error {
		_, _, err := store.Manage(t.Context(), gone.ID, func(tg user.Target) (user.Edit, error) {
			e := user.Edit{User: tg.User}
			e.User.DeletedAt = nil
			if deleted {
				e.User.DeletedAt = new(time.Now())
			}
			return e, nil
		})
		return err
	}
	if err := restore(true); err != nil {
		t.Fatal(err)
	}
	newToken(t, pool, other.ID, account.PurposeEmailRevert, gone.Email, nil)
	if err := restore(false); !errors.Is(err, account.ErrEmailTaken) {
		t.Fatalf("restoring onto an address held for an undo: %v, want email taken", err)
	}
}
