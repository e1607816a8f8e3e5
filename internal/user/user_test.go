package user_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/account"
	"github.com/gatehouse/gatehouse/internal/apitest"
	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/user"
)

// TestManagementRules: who may change whom. The contract's permissions say
// who may call an operation at all; these rules say on whom: no one acts on
// a user holding a permission they lack, grants a role carrying one, or
// manages a deleted user (restore it first). A refused change writes
// nothing: no row, no event, no ended session.
func TestManagementRules(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	type op func(t *testing.T, p account.Principal, target account.Profile) error
	var (
		disable op = func(t *testing.T, p account.Principal, u account.Profile) error {
			_, err := e.svc.Update(t.Context(), p, u.ID, user.Changes{Disabled: new(true)}, anonymous)
			return err
		}
		rename op = func(t *testing.T, p account.Principal, u account.Profile) error {
			_, err := e.svc.Update(t.Context(), p, u.ID, user.Changes{Name: new("Renamed")}, anonymous)
			return err
		}
		remove op = func(t *testing.T, p account.Principal, u account.Profile) error {
			return e.svc.Delete(t.Context(), p, u.ID, anonymous)
		}
		restore op = func(t *testing.T, p account.Principal, u account.Profile) error {
			_, err := e.svc.Restore(t.Context(), p, u.ID, anonymous)
			return err
		}
		revoke op = func(t *testing.T, p account.Principal, u account.Profile) error {
			return e.svc.RevokeSessions(t.Context(), p, u.ID, anonymous)
		}
		setRoles = func(roles ...string) op {
			return func(t *testing.T, p account.Principal, u account.Profile) error {
				_, err := e.svc.SetRoles(t.Context(), p, u.ID, roles, anonymous)
				return err
			}
		}
	)
	const (
		plain = iota
		privileged
		deletedPlain
		deletedPrivileged
	)
	for _, tc := range []struct {
		name   string
		op     op
		caller account.Principal
		target int
		want   error
		// On success: the event recorded and whether the sessions ended.
		event string
		ends  bool
	}{
		{"an agent disables a plain user", disable, agent, plain, nil, "user.disabled", true},
		{"an agent renames a plain user", rename, agent, plain, nil, "user.updated", false},
		{"an agent cannot disable an administrator", disable, agent, privileged, account.ErrForbidden, "", false},
		{"an agent cannot rename an administrator", rename, agent, privileged, account.ErrForbidden, "", false},
		{"an administrator disables an administrator", disable, admin, privileged, nil, "user.disabled", true},
		{"a deleted user cannot be updated", rename, admin, deletedPlain, account.ErrNotFound, "", false},
		{"an agent deletes a plain user", remove, agent, plain, nil, "user.deleted", true},
		{"an agent cannot delete an administrator", remove, agent, privileged, account.ErrForbidden, "", false},
		{"a deleted user cannot be deleted again", remove, admin, deletedPlain, account.ErrNotFound, "", false},
		{"an agent restores a plain user", restore, agent, deletedPlain, nil, "user.restored", false},
		{"an agent cannot restore an administrator", restore, agent, deletedPrivileged, account.ErrForbidden, "", false},
		{"a live user cannot be restored", restore, admin, plain, user.ErrConflict, "", false},
		{"an agent ends a plain user's sessions", revoke, agent, plain, nil, "user.sessions.revoked", true},
		{"an agent cannot end an administrator's sessions", revoke, agent, privileged, account.ErrForbidden, "", false},
		{"a deleted user's sessions cannot be ended", revoke, admin, deletedPlain, account.ErrNotFound, "", false},
		{"an agent sets a plain user's roles to user", setRoles(account.RoleUser), agent, plain, nil, "user.roles.changed", true},
		{"an agent cannot grant a role with permissions it lacks", setRoles(account.RoleAdmin), agent, plain, account.ErrForbidden, "", false},
		{"an agent cannot demote an administrator", setRoles(account.RoleUser), agent, privileged, account.ErrForbidden, "", false},
		{"an administrator grants admin", setRoles(account.RoleAdmin, account.RoleUser), admin, plain, nil, "user.roles.changed", true},
		{"an unknown role", setRoles("emperor"), admin, plain, user.ErrUnknownRole, "", false},
		{"a deleted user's roles cannot be set", setRoles(account.RoleUser), admin, deletedPlain, account.ErrNotFound, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var roles []string
			if tc.target == privileged || tc.target == deletedPrivileged {
				roles = []string{account.RoleAdmin}
			}
			target := e.newAccount(t, roles...)
			sid := e.session(t, target)
			if tc.target == deletedPlain || tc.target == deletedPrivileged {
				if err := e.svc.Delete(t.Context(), admin, target.ID, anonymous); err != nil {
					t.Fatal(err)
				}
			}
			before, err := e.store.GetUser(t.Context(), target.ID)
			if err != nil {
				t.Fatal(err)
			}
			eventsBefore := e.events(t, target.ID)
			err = tc.op(t, tc.caller, target)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			after, err := e.store.GetUser(t.Context(), target.ID)
			if err != nil {
				t.Fatal(err)
			}
			got := e.events(t, target.ID)[len(eventsBefore):]
			if tc.want != nil {
				if len(got) != 0 || !after.UpdatedAt.Equal(before.UpdatedAt) || after.TokenVersion != before.TokenVersion {
					t.Fatalf("a refused change wrote: events %v, %+v → %+v", got, before, after)
				}
				return
			}
			if !slices.Equal(got, []string{tc.event}) {
				t.Fatalf("events %v, want [%s]", got, tc.event)
			}
			if ended := after.TokenVersion > before.TokenVersion; ended != tc.ends || (before.DeletedAt == nil && e.live(t, sid) == tc.ends) {
				t.Fatalf("sessions ended: version %d → %d, want ended %v", before.TokenVersion, after.TokenVersion, tc.ends)
			}
		})
	}
}

// TestCreate_GrantsOnlyWhatTheCallerMay: creating an account with roles is
// assigning them.
func TestCreate_GrantsOnlyWhatTheCallerMay(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	taken := e.newAccount(t)
	// A role whose permissions the callers below hold, so that only
	// roles:assign decides whether they may grant it.
	if _, err := e.pool.Exec(t.Context(), `INSERT INTO roles (name, description) VALUES ('reader', 'reads users');
		INSERT INTO role_permissions (role, permission) VALUES ('reader', 'users:read')`); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		caller    account.Principal
		email     string
		password  string
		roles     []string
		verified  bool
		want      error
		wantRoles []string
	}{
		{"without roles: user", helpdesk, "", apitest.Password, nil, false, nil, []string{account.RoleUser}},
		{"the user role needs no roles:assign", helpdesk, "", apitest.Password, []string{account.RoleUser}, true, nil, []string{account.RoleUser}},
		{"another role needs roles:assign", helpdesk, "", apitest.Password, []string{"reader"}, true, account.ErrForbidden, nil},
		{"roles:assign grants a role whose permissions are held", agent, "", apitest.Password, []string{"reader"}, true, nil, []string{"reader"}},
		{"roles:assign grants only permissions held", agent, "", apitest.Password, []string{account.RoleAdmin}, true, account.ErrForbidden, nil},
		{"an administrator grants admin", admin, "", apitest.Password, []string{account.RoleUser, account.RoleAdmin, account.RoleAdmin}, true, nil, []string{account.RoleAdmin, account.RoleUser}},
		{"an unknown role", admin, "", apitest.Password, []string{"emperor"}, true, user.ErrUnknownRole, nil},
		{"a taken address, in another case", admin, strings.ToUpper(taken.Email), apitest.Password, nil, true, account.ErrEmailTaken, nil},
		{"a password the policy refuses", admin, "", "password", nil, true, new(auth.PasswordRejectedError), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			email := tc.email
			if email == "" {
				email = apitest.NewEmail("create")
			}
			u, err := e.svc.Create(t.Context(), tc.caller, user.NewAccount{Email: email, Password: tc.password, Roles: tc.roles, Verified: tc.verified}, anonymous)
			if rej := new(auth.PasswordRejectedError); errors.As(tc.want, &rej) {
				if !errors.As(err, &rej) {
					t.Fatalf("got %v, want a rejection", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if err != nil {
				return
			}
			if !slices.Equal(u.Roles, tc.wantRoles) {
				t.Fatalf("roles %v, want %v", u.Roles, tc.wantRoles)
			}
			if got, _ := e.store.UserByID(t.Context(), u.ID); got.PasswordHash == tc.password || got.PasswordHash == "" {
				t.Fatal("the password is not hashed")
			}
			var wantMails []string
			if !tc.verified {
				wantMails = []string{"verify_email " + u.Email}
			}
			if got := e.mails(t, u.ID); !slices.Equal(got, wantMails) {
				t.Fatalf("mails %v, want %v", got, wantMails)
			}
		})
	}
}

// TestSelfService: what a user may do to their own account, and what each
// path records and sends.
func TestSelfService(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	me := func(u account.Profile, sid ...[16]byte) account.Principal {
		p := account.Principal{UserID: u.ID}
		if len(sid) > 0 {
			p.SessionID = sid[0]
		}
		return p
	}
	t.Run("a new name applies at once", func(t *testing.T) {
		t.Parallel()
		u := e.newAccount(t)
		got, err := e.svc.UpdateMe(t.Context(), me(u), new("New Name"), nil, nil, anonymous)
		if err != nil || got.Name == nil || *got.Name != "New Name" {
			t.Fatalf("%+v, %v", got, err)
		}
		if ev := e.events(t, u.ID); !slices.Equal(ev, []string{"user.updated"}) {
			t.Fatalf("events %v", ev)
		}
	})
	for _, tc := range []struct {
		name     string
		password *string
		want     error
		events   []string // a wrong password is recorded, the change is not
	}{
		{"a new email needs the password", nil, auth.ErrWrongPassword, nil},
		{"a new email with a wrong password", new("not the password at all"), auth.ErrWrongPassword, []string{"user.password.check_failed"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			u := e.newAccount(t)
			if _, err := e.svc.UpdateMe(t.Context(), me(u), new("Name"), new(apitest.NewEmail("new")), tc.password, anonymous); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if ev, m := e.events(t, u.ID), e.mails(t, u.ID); !slices.Equal(ev, tc.events) || len(m) != 0 {
				t.Fatalf("a refused change recorded %v and sent %v", ev, m)
			}
			if got, _, _ := e.svc.Me(t.Context(), me(u)); got.Name != nil {
				t.Fatal("the name of a refused change applied")
			}
		})
	}
	t.Run("a new email is confirmed by mail, and the old address hears of it", func(t *testing.T) {
		t.Parallel()
		u := e.newAccount(t)
		sid := e.session(t, u)
		to := apitest.NewEmail("new")
		got, err := e.svc.UpdateMe(t.Context(), me(u, sid), nil, new(to), new(apitest.Password), anonymous)
		if err != nil || got.Email != u.Email {
			t.Fatalf("the address changed before its confirmation: %+v, %v", got, err)
		}
		if ev := e.events(t, u.ID); !slices.Equal(ev, []string{"user.email.change_requested"}) {
			t.Fatalf("events %v", ev)
		}
		if m := e.mails(t, u.ID); !slices.Equal(m, []string{"email_change " + to, "email_change_notice " + u.Email}) {
			t.Fatalf("mails %v", m)
		}
		if !e.live(t, sid) {
			t.Fatal("asking for a change ended the session")
		}
	})
	t.Run("the current address needs no password and sends nothing", func(t *testing.T) {
		t.Parallel()
		u := e.newAccount(t)
		if _, err := e.svc.UpdateMe(t.Context(), me(u), nil, new(u.Email), nil, anonymous); err != nil {
			t.Fatal(err)
		}
		if ev, m := e.events(t, u.ID), e.mails(t, u.ID); len(ev) != 0 || len(m) != 0 {
			t.Fatalf("recorded %v, sent %v", ev, m)
		}
	})
	t.Run("deleting oneself needs the password and ends every session", func(t *testing.T) {
		t.Parallel()
		u := e.newAccount(t)
		sid := e.session(t, u)
		if err := e.svc.DeleteMe(t.Context(), me(u), "not the password at all", anonymous); !errors.Is(err, auth.ErrWrongPassword) {
			t.Fatalf("a wrong password: %v", err)
		}
		if _, _, err := e.svc.Me(t.Context(), me(u)); err != nil || !e.live(t, sid) {
			t.Fatalf("deleted with a wrong password: %v", err)
		}
		if err := e.svc.DeleteMe(t.Context(), me(u), apitest.Password, anonymous); err != nil {
			t.Fatal(err)
		}
		if _, _, err := e.svc.Me(t.Context(), me(u)); !errors.Is(err, account.ErrNotFound) {
			t.Fatalf("after deletion: %v", err)
		}
		if e.live(t, sid) {
			t.Fatal("a session survived the deletion")
		}
		if ev := e.events(t, u.ID); !slices.Equal(ev, []string{"user.password.check_failed", "user.deleted"}) {
			t.Fatalf("events %v", ev)
		}
	})
	t.Run("another user's session is not found", func(t *testing.T) {
		t.Parallel()
		u, other := e.newAccount(t), e.newAccount(t)
		theirs := e.session(t, other)
		if err := e.svc.RevokeMySession(t.Context(), me(u), theirs, anonymous); !errors.Is(err, account.ErrNotFound) {
			t.Fatalf("%v", err)
		}
		if !e.live(t, theirs) {
			t.Fatal("another user's session ended")
		}
		mine := e.session(t, u)
		if err := e.svc.RevokeMySession(t.Context(), me(u), mine, anonymous); err != nil || e.live(t, mine) {
			t.Fatalf("an own session: %v", err)
		}
		if ev := e.events(t, u.ID); !slices.Equal(ev, []string{"session.revoked"}) {
			t.Fatalf("events %v", ev)
		}
	})
}
