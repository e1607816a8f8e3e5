package pgstore_test

import (
	"bytes"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/gatehouse/gatehouse/internal/account"
	"github.com/gatehouse/gatehouse/internal/apitest"
	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/mail"
	"github.com/gatehouse/gatehouse/internal/user"
)

// The auth.Store suite: every method of the interface against PostgreSQL,
// with what it records (audit rows, outbox mails) in its transaction.

func TestAuthStore_CreateUser(t *testing.T) {
	t.Parallel()
	store, pool := newStore(t)
	live := newUser(t, store)
	gone := newUser(t, store)
	if _, _, err := store.Manage(t.Context(), gone.ID, func(tg user.Target) (user.Edit, error) { return deleted(tg), nil }); err != nil {
		t.Fatal(err)
	}
	// An address held for the undo of another account's email change.
	reserved := apitest.NewEmail("reserved")
	newToken(t, pool, live.ID, "email_revert", reserved, nil)

	for _, tc := range []struct {
		name  string
		email string
		want  error
	}{
		{"a new address", apitest.NewEmail("new"), nil},
		{"the address of a live account", live.Email, account.ErrEmailTaken},
		{"the address of a deleted account", gone.Email, nil},
		{"an address reserved for an undo", reserved, account.ErrEmailTaken},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := uuid.Must(uuid.NewV7())
			u, err := store.CreateUser(t.Context(), account.NewUser{
				ID: id, Email: tc.email, PasswordHash: "h", Roles: []string{account.RoleUser},
				Events: []account.Event{{Action: account.ActionUserRegistered, SubjectID: &id}},
				Mails:  []account.Mail{{Kind: mail.VerifyEmail, UserID: id, To: tc.email}},
			})
			if !errors.Is(err, tc.want) {
				t.Fatalf("create: %v, want %v", err, tc.want)
			}
			wantEvents, wantMails := []string{string(account.ActionUserRegistered)}, []string{string(mail.VerifyEmail)}
			if tc.want != nil {
				wantEvents, wantMails = nil, nil
			} else if u.ID != id || u.Email != tc.email || !slices.Equal(u.Roles, []string{account.RoleUser}) {
				t.Fatalf("created %+v", u)
			}
			if got := events(t, pool, id); !slices.Equal(got, wantEvents) {
				t.Errorf("events %v, want %v", got, wantEvents)
			}
			if got := outbox(t, pool, id); !slices.Equal(got, wantMails) {
				t.Errorf("mails %v, want %v", got, wantMails)
			}
		})
	}
}

func TestAuthStore_UserLookupsFindLiveAccountsOnly(t *testing.T) {
	t.Parallel()
	store, _ := newStore(t)
	live, gone := newUser(t, store), newUser(t, store)
	if _, _, err := store.Manage(t.Context(), gone.ID, func(tg user.Target) (user.Edit, error) { return deleted(tg), nil }); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		id    uuid.UUID
		email string
		found bool
	}{
		{"live", live.ID, live.Email, true},
		{"deleted", gone.ID, gone.Email, false},
		{"unknown", uuid.New(), "nobody@example.com", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			byEmail, err := store.UserByEmail(t.Context(), tc.email)
			if tc.found != (err == nil) || (!tc.found && !errors.Is(err, account.ErrNotFound)) || (tc.found && (byEmail.ID != tc.id || byEmail.PasswordHash != "x")) {
				t.Errorf("UserByEmail: %+v, %v", byEmail, err)
			}
			byID, err := store.UserByID(t.Context(), tc.id)
			if tc.found != (err == nil) || (!tc.found && !errors.Is(err, account.ErrNotFound)) || (tc.found && byID.Email != tc.email) {
				t.Errorf("UserByID: %+v, %v", byID, err)
			}
		})
	}
}

func TestAuthStore_CreateSessionRecordsItsEventsAndMailsOnlyIfOpened(t *testing.T) {
	t.Parallel()
	store, pool := newStore(t)
	disabled := newUser(t, store)
	if _, _, err := store.Manage(t.Context(), disabled.ID, func(tg user.Target) (user.Edit, error) {
		e := user.Edit{User: tg.User, EndSessions: "disabled"}
		e.User.DisabledAt = new(time.Now())
		return e, nil
	}); err != nil {
		t.Fatal(err)
	}
	live := newUser(t, store)
	for _, tc := range []struct {
		name    string
		u       account.Profile
		version int64
		want    error
	}{
		{"a live user", live, live.TokenVersion, nil},
		{"a password checked before a revocation", live, live.TokenVersion - 1, auth.ErrInvalidCredentials},
		{"a user disabled since the password check", disabled, disabled.TokenVersion, auth.ErrInvalidCredentials},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sid, now := uuid.Must(uuid.NewV7()), time.Now()
			err := store.CreateSession(t.Context(), auth.NewSession{
				ID: sid, UserID: tc.u.ID, TokenVersion: tc.version, IdleExpiresAt: now.Add(time.Hour), ExpiresAt: now.Add(time.Hour), RefreshHash: randomHash(),
				Events: []account.Event{{Action: account.ActionLoginSucceeded, SubjectID: &sid}},
				Mails:  []account.Mail{{Kind: mail.NewSignIn, UserID: sid, To: tc.u.Email}},
			})
			if !errors.Is(err, tc.want) {
				t.Fatalf("create session: %v, want %v", err, tc.want)
			}
			n := 1
			if tc.want != nil {
				n = 0
			}
			if got := len(events(t, pool, sid)); got != n {
				t.Errorf("%d events, want %d", got, n)
			}
			if got := len(outbox(t, pool, sid)); got != n {
				t.Errorf("%d mails, want %d", got, n)
			}
			if _, err := store.SessionState(t.Context(), sid); (err == nil) != (n == 1) {
				t.Errorf("the session's state: %v", err)
			}
		})
	}
}

// TestAuthStore_RefreshOutcomes: what a refresh does with each kind of token.
func TestAuthStore_RefreshOutcomes(t *testing.T) {
	t.Parallel()
	store, _ := newStore(t)
	refresh := func(t *testing.T, h []byte, now time.Time, grace time.Duration) (auth.RefreshResult, []byte) {
		t.Helper()
		next := randomHash()
		r, err := store.Refresh(t.Context(), auth.RefreshRequest{Hash: h, NewHash: next, Now: now, Grace: grace, IdleTTL: time.Hour})
		if err != nil {
			t.Fatalf("refresh: %v", err)
		}
		return r, next
	}
	now := time.Now()
	for _, tc := range []struct {
		name string
		// prepare returns the token to present and when.
		prepare     func(t *testing.T, u account.Profile, sid uuid.UUID, h []byte) ([]byte, time.Time)
		want        auth.RefreshOutcome
		liveAfter   bool // the session is live after the refresh
		successorOK bool // the new hash rotates afterwards
	}{
		{"a live token rotates", func(_ *testing.T, _ account.Profile, _ uuid.UUID, h []byte) ([]byte, time.Time) { return h, now }, auth.Rotated, true, true},
		{"a token used within the grace window gives the same pair", func(t *testing.T, _ account.Profile, _ uuid.UUID, h []byte) ([]byte, time.Time) {
			refresh(t, h, now, 0)
			return h, now.Add(time.Second)
		}, auth.GraceRotated, true, false},
		{"a token used after the grace window revokes the session", func(t *testing.T, _ account.Profile, _ uuid.UUID, h []byte) ([]byte, time.Time) {
			refresh(t, h, now, 0)
			return h, now.Add(time.Minute)
		}, auth.ReuseRevoked, false, false},
		{"an unknown token", func(*testing.T, account.Profile, uuid.UUID, []byte) ([]byte, time.Time) { return randomHash(), now }, auth.Refused, true, false},
		{"a token past its session's idle expiry", func(_ *testing.T, _ account.Profile, _ uuid.UUID, h []byte) ([]byte, time.Time) {
			return h, now.Add(2 * time.Hour)
		}, auth.Refused, true, false},
		{"a token of a revoked session", func(t *testing.T, _ account.Profile, sid uuid.UUID, h []byte) ([]byte, time.Time) {
			if _, err := store.RevokeSession(t.Context(), sid, "logout"); err != nil {
				t.Fatal(err)
			}
			return h, now
		}, auth.Refused, false, false},
		{"a token of a user revoked everywhere", func(t *testing.T, u account.Profile, _ uuid.UUID, h []byte) ([]byte, time.Time) {
			if _, err := store.RevokeUser(t.Context(), u.ID, "logout_all"); err != nil {
				t.Fatal(err)
			}
			return h, now
		}, auth.Refused, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := newUser(t, store)
			sid, h := newSession(t, store, u)
			present, at := tc.prepare(t, u, sid, h)
			r, next := refresh(t, present, at, 10*time.Second)
			if r.Outcome != tc.want {
				t.Fatalf("outcome %d, want %d", r.Outcome, tc.want)
			}
			if tc.want != auth.Refused && r.SessionID != sid {
				t.Errorf("session %v, want %v", r.SessionID, sid)
			}
			st, err := store.SessionState(t.Context(), sid)
			if err != nil || st.Revoked == tc.liveAfter {
				t.Errorf("after: %+v, %v; want live %v", st, err, tc.liveAfter)
			}
			if tc.successorOK {
				if again, _ := refresh(t, next, at, 0); again.Outcome != auth.Rotated {
					t.Errorf("the successor: outcome %d", again.Outcome)
				}
			}
		})
	}
}

// TestAuthStore_ParallelRefreshesOfOneTokenRotateOnce: of refreshes of one
// token at once (no grace), exactly one rotates; the others are reuse.
func TestAuthStore_ParallelRefreshesOfOneTokenRotateOnce(t *testing.T) {
	t.Parallel()
	store, _ := newStore(t)
	_, h := newSession(t, store, newUser(t, store))
	outcomes := parallel(t, 6, func() (auth.RefreshOutcome, error) {
		r, err := store.Refresh(t.Context(), auth.RefreshRequest{Hash: h, NewHash: randomHash(), Now: time.Now(), IdleTTL: time.Hour})
		return r.Outcome, err
	})
	if n := count(outcomes, auth.Rotated); n != 1 {
		t.Fatalf("outcomes %v: %d rotated, want 1", outcomes, n)
	}
}

func TestAuthStore_RevocationsAreRecordedWithTheirEvents(t *testing.T) {
	t.Parallel()
	store, pool := newStore(t)
	since := time.Now().Add(-time.Second)
	u := newUser(t, store)
	a, _ := newSession(t, store, u)
	b, _ := newSession(t, store, u)
	other := newUser(t, store)
	c, _ := newSession(t, store, other)

	t.Run("RevokeSession", func(t *testing.T) {
		e := account.Event{Action: account.ActionSessionLogout, SubjectID: &other.ID}
		if live, err := store.RevokeSession(t.Context(), c, "logout", e); err != nil || !live {
			t.Fatalf("revoke a live session: %v, %v", live, err)
		}
		if live, err := store.RevokeSession(t.Context(), c, "logout", e); err != nil || live {
			t.Fatalf("revoke it again: %v, %v", live, err)
		}
		if st, err := store.SessionState(t.Context(), c); err != nil || !st.Revoked || !st.UserActive {
			t.Fatalf("state %+v, %v", st, err)
		}
		// Events are recorded with each call (the caller decides whether to send any).
		if got := events(t, pool, other.ID); len(got) != 2 {
			t.Fatalf("events %v", got)
		}
	})
	t.Run("RevokeUser", func(t *testing.T) {
		v, err := store.RevokeUser(t.Context(), u.ID, "logout_all", account.Event{Action: account.ActionLogoutAll, SubjectID: &u.ID})
		if err != nil || v != u.TokenVersion+1 {
			t.Fatalf("revoke user: %d, %v", v, err)
		}
		for _, sid := range []uuid.UUID{a, b} {
			if st, err := store.SessionState(t.Context(), sid); err != nil || !st.Revoked || st.TokenVersion != v {
				t.Fatalf("session %v: %+v, %v", sid, st, err)
			}
		}
		if got := events(t, pool, u.ID); !slices.Equal(got, []string{string(account.ActionLogoutAll)}) {
			t.Fatalf("events %v", got)
		}
		if _, err := store.RevokeUser(t.Context(), uuid.New(), "logout_all"); !errors.Is(err, account.ErrNotFound) {
			t.Fatalf("an unknown user: %v", err)
		}
	})
	t.Run("RevocationsSince", func(t *testing.T) {
		r, err := store.RevocationsSince(t.Context(), since)
		if err != nil {
			t.Fatal(err)
		}
		slices.SortFunc(r.Sessions, func(x, y uuid.UUID) int { return bytes.Compare(x[:], y[:]) })
		want := []uuid.UUID{a, b, c}
		slices.SortFunc(want, func(x, y uuid.UUID) int { return bytes.Compare(x[:], y[:]) })
		if !slices.Equal(r.Sessions, want) || len(r.Users) != 1 || r.Users[u.ID] != u.TokenVersion+1 {
			t.Fatalf("since before: %+v", r)
		}
		later, err := store.RevocationsSince(t.Context(), time.Now().Add(time.Second))
		if err != nil || len(later.Sessions) != 0 || len(later.Users) != 0 {
			t.Fatalf("since after: %+v, %v", later, err)
		}
	})
}

// TestAuthStore_ChangePasswordKeepsOneSession: the caller's session lives
// on with a new refresh token; every other session and the old refresh
// tokens end.
func TestAuthStore_ChangePasswordKeepsOneSession(t *testing.T) {
	t.Parallel()
	store, pool := newStore(t)
	u := newUser(t, store)
	keep, oldHash := newSession(t, store, u)
	other, _ := newSession(t, store, u)
	reset := newToken(t, pool, u.ID, "password_reset", u.Email, nil)
	newHash := randomHash()
	e := account.Event{Action: account.ActionPasswordChanged, SubjectID: &u.ID}
	v, expires, err := store.ChangePassword(t.Context(), u.ID, "new hash", auth.KeptSession{ID: keep, RefreshHash: newHash, IdleExpiresAt: time.Now().Add(time.Hour)}, e,
		account.Mail{Kind: mail.PasswordChanged, UserID: u.ID, To: u.Email})
	if err != nil || v != u.TokenVersion+1 || expires.IsZero() {
		t.Fatalf("change: %d, %v, %v", v, expires, err)
	}
	if st, err := store.SessionState(t.Context(), keep); err != nil || st.Revoked {
		t.Fatalf("the kept session: %+v, %v", st, err)
	}
	if st, err := store.SessionState(t.Context(), other); err != nil || !st.Revoked {
		t.Fatalf("the other session: %+v, %v", st, err)
	}
	if r, err := store.Refresh(t.Context(), auth.RefreshRequest{Hash: oldHash, NewHash: randomHash(), Now: time.Now(), IdleTTL: time.Hour}); err != nil || r.Outcome != auth.Refused {
		t.Fatalf("the kept session's old refresh token: %d, %v", r.Outcome, err)
	}
	if r, err := store.Refresh(t.Context(), auth.RefreshRequest{Hash: newHash, NewHash: randomHash(), Now: time.Now(), IdleTTL: time.Hour}); err != nil || r.Outcome != auth.Rotated || r.TokenVersion != v {
		t.Fatalf("its new refresh token: %+v, %v", r, err)
	}
	if _, err := store.PeekOneTimeToken(t.Context(), reset, "password_reset"); !errors.Is(err, auth.ErrInvalidOneTimeToken) {
		t.Fatalf("a pending reset link survived: %v", err)
	}
	if got, _ := store.UserByID(t.Context(), u.ID); got.PasswordHash != "new hash" {
		t.Fatalf("hash %q", got.PasswordHash)
	}
	if got := events(t, pool, u.ID); !slices.Equal(got, []string{string(account.ActionPasswordChanged)}) {
		t.Fatalf("events %v", got)
	}
	if got := outbox(t, pool, u.ID); !slices.Equal(got, []string{string(mail.PasswordChanged)}) {
		t.Fatalf("mails %v", got)
	}

	// Keeping a session revoked meanwhile changes nothing.
	_, _, err = store.ChangePassword(t.Context(), u.ID, "other hash", auth.KeptSession{ID: other, RefreshHash: randomHash(), IdleExpiresAt: time.Now().Add(time.Hour)}, e)
	if !errors.Is(err, auth.ErrInvalidToken) {
		t.Fatalf("keeping a revoked session: %v", err)
	}
	if got, _ := store.UserByID(t.Context(), u.ID); got.PasswordHash != "new hash" || got.TokenVersion != v {
		t.Fatalf("after a refused change: %q, version %d", got.PasswordHash, got.TokenVersion)
	}
}

func TestAuthStore_OneTimeTokens(t *testing.T) {
	t.Parallel()
	store, pool := newStore(t)
	t.Run("peek finds a token of its purpose and address only", func(t *testing.T) {
		u := newUser(t, store)
		h := newToken(t, pool, u.ID, "password_reset", u.Email, nil)
		if tok, err := store.PeekOneTimeToken(t.Context(), h, "password_reset"); err != nil || tok.UserID != u.ID || tok.Email != u.Email {
			t.Fatalf("peek: %+v, %v", tok, err)
		}
		if _, err := store.PeekOneTimeToken(t.Context(), h, "email_verify"); !errors.Is(err, auth.ErrInvalidOneTimeToken) {
			t.Fatalf("another purpose: %v", err)
		}
		stale := newToken(t, pool, u.ID, "email_verify", "old@example.com", nil)
		if _, err := store.PeekOneTimeToken(t.Context(), stale, "email_verify"); !errors.Is(err, auth.ErrInvalidOneTimeToken) {
			t.Fatalf("a token sent to another address: %v", err)
		}
	})
	t.Run("a token dies after five failed uses", func(t *testing.T) {
		u := newUser(t, store)
		h := newToken(t, pool, u.ID, "password_reset", u.Email, nil)
		for i := range 5 {
			if _, err := store.PeekOneTimeToken(t.Context(), h, "password_reset"); err != nil {
				t.Fatalf("after %d failures: %v", i, err)
			}
			if err := store.FailOneTimeToken(t.Context(), h); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := store.PeekOneTimeToken(t.Context(), h, "password_reset"); !errors.Is(err, auth.ErrInvalidOneTimeToken) {
			t.Fatalf("after five failures: %v", err)
		}
		if _, _, err := store.ResetPassword(t.Context(), h, "h", account.Event{Action: account.ActionPasswordReset}); !errors.Is(err, auth.ErrInvalidOneTimeToken) {
			t.Fatalf("reset after five failures: %v", err)
		}
	})
	t.Run("of parallel resets with one token exactly one wins", func(t *testing.T) {
		u := newUser(t, store)
		sid, _ := newSession(t, store, u)
		h := newToken(t, pool, u.ID, "password_reset", u.Email, nil)
		errs := parallel(t, 6, func() (error, error) {
			_, _, err := store.ResetPassword(t.Context(), h, "reset hash", account.Event{Action: account.ActionPasswordReset, SubjectID: &u.ID},
				account.Mail{Kind: mail.PasswordResetDone, UserID: u.ID, To: u.Email})
			if errors.Is(err, auth.ErrInvalidOneTimeToken) {
				return err, nil
			}
			return nil, err
		})
		if n := count(errs, nil); n != 1 {
			t.Fatalf("%d of %d resets won", n, len(errs))
		}
		if st, err := store.SessionState(t.Context(), sid); err != nil || !st.Revoked || st.TokenVersion != u.TokenVersion+1 {
			t.Fatalf("the session after a reset: %+v, %v", st, err)
		}
		if got := events(t, pool, u.ID); !slices.Equal(got, []string{string(account.ActionPasswordReset)}) {
			t.Fatalf("events %v", got)
		}
		if got := outbox(t, pool, u.ID); !slices.Equal(got, []string{string(mail.PasswordResetDone)}) {
			t.Fatalf("mails %v", got)
		}
	})
}

// TestAuthStore_VerifyEmail: what each kind of address token does.
func TestAuthStore_VerifyEmail(t *testing.T) {
	t.Parallel()
	store, pool := newStore(t)
	record := func(c auth.EmailConfirmation) account.Event {
		return account.Event{Action: account.ActionEmailVerified, SubjectID: &c.UserID}
	}
	t.Run("verification marks the address verified", func(t *testing.T) {
		u := newUser(t, store)
		h := newToken(t, pool, u.ID, "email_verify", u.Email, nil)
		c, err := store.VerifyEmail(t.Context(), h, record)
		if err != nil || c.Changed || c.UserID != u.ID {
			t.Fatalf("verify: %+v, %v", c, err)
		}
		if got, _ := store.UserByID(t.Context(), u.ID); got.EmailVerifiedAt == nil {
			t.Fatal("not verified")
		}
		if _, err := store.VerifyEmail(t.Context(), h, record); !errors.Is(err, auth.ErrInvalidOneTimeToken) {
			t.Fatalf("used twice: %v", err)
		}
		if got := events(t, pool, u.ID); len(got) != 1 {
			t.Fatalf("events %v", got)
		}
	})
	t.Run("a change moves the address, keeps the asking session and reserves the old address", func(t *testing.T) {
		u := newUser(t, store)
		keep, _ := newSession(t, store, u)
		other, _ := newSession(t, store, u)
		to := apitest.NewEmail("moved")
		h := newToken(t, pool, u.ID, "email_change", to, &keep)
		c, err := store.VerifyEmail(t.Context(), h, record)
		if err != nil || !c.Changed || c.Reverted || c.TokenVersion != u.TokenVersion+1 {
			t.Fatalf("confirm: %+v, %v", c, err)
		}
		if got, _ := store.UserByID(t.Context(), u.ID); got.Email != to || got.EmailVerifiedAt == nil {
			t.Fatalf("after: %+v", got.Profile)
		}
		if st, _ := store.SessionState(t.Context(), keep); st.Revoked {
			t.Fatal("the asking session ended")
		}
		if st, _ := store.SessionState(t.Context(), other); !st.Revoked {
			t.Fatal("another session lives on")
		}
		if got := outbox(t, pool, u.ID); !slices.Equal(got, []string{string(mail.EmailChanged)}) {
			t.Fatalf("mails %v", got)
		}
		if _, err := store.CreateUser(t.Context(), account.NewUser{ID: uuid.Must(uuid.NewV7()), Email: u.Email, PasswordHash: "x"}); !errors.Is(err, account.ErrEmailTaken) {
			t.Fatalf("the old address is free for others during the undo window: %v", err)
		}
	})
	t.Run("an undo gives the old address back and ends every session", func(t *testing.T) {
		u := newUser(t, store)
		sid, _ := newSession(t, store, u)
		to := apitest.NewEmail("moved")
		if _, err := store.VerifyEmail(t.Context(), newToken(t, pool, u.ID, "email_change", to, &sid), record); err != nil {
			t.Fatal(err)
		}
		c, err := store.VerifyEmail(t.Context(), newToken(t, pool, u.ID, "email_revert", u.Email, nil), record)
		if err != nil || !c.Changed || !c.Reverted {
			t.Fatalf("undo: %+v, %v", c, err)
		}
		if got, _ := store.UserByID(t.Context(), u.ID); got.Email != u.Email {
			t.Fatalf("address %s", got.Email)
		}
		if st, _ := store.SessionState(t.Context(), sid); !st.Revoked {
			t.Fatal("the session lives on")
		}
		if got := outbox(t, pool, u.ID); !slices.Equal(got, []string{string(mail.EmailChanged), string(mail.PasswordReset)}) {
			t.Fatalf("mails %v", got)
		}
	})
	for _, tc := range []struct {
		name    string
		prepare func(t *testing.T, u account.Profile) []byte
		want    error
	}{
		{"a verification sent to an address the account no longer has", func(t *testing.T, u account.Profile) []byte {
			return newToken(t, pool, u.ID, "email_verify", "before@example.com", nil)
		}, auth.ErrInvalidOneTimeToken},
		{"a change to an address another account took meanwhile", func(t *testing.T, u account.Profile) []byte {
			return newToken(t, pool, u.ID, "email_change", newUser(t, store).Email, nil)
		}, account.ErrEmailTaken},
		{"an unknown token", func(*testing.T, account.Profile) []byte { return randomHash() }, auth.ErrInvalidOneTimeToken},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := newUser(t, store)
			if _, err := store.VerifyEmail(t.Context(), tc.prepare(t, u), record); !errors.Is(err, tc.want) {
				t.Fatalf("%v, want %v", err, tc.want)
			}
			if got := events(t, pool, u.ID); len(got) != 0 {
				t.Fatalf("a refused confirmation recorded %v", got)
			}
		})
	}
	t.Run("of parallel confirmations of one change exactly one wins", func(t *testing.T) {
		u := newUser(t, store)
		h := newToken(t, pool, u.ID, "email_change", apitest.NewEmail("race"), nil)
		errs := parallel(t, 6, func() (error, error) {
			_, err := store.VerifyEmail(t.Context(), h, record)
			if errors.Is(err, auth.ErrInvalidOneTimeToken) {
				return err, nil
			}
			return nil, err
		})
		if n := count(errs, nil); n != 1 {
			t.Fatalf("%d of %d confirmations won", n, len(errs))
		}
	})
}

// parallel runs f n times at once and returns the results; an error
// (second result) fails the test.
func parallel[T any](t *testing.T, n int, f func() (T, error)) []T {
	t.Helper()
	out := make([]T, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			out[i], errs[i] = f()
		})
	}
	close(start)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	return out
}

func count[T comparable](s []T, v T) int {
	n := 0
	for _, x := range s {
		if x == v {
			n++
		}
	}
	return n
}

func TestAuthStore_RolesPasswordsAndRequestedMails(t *testing.T) {
	t.Parallel()
	store, pool := newStore(t)
	u := newUser(t, store, account.RoleUser)
	t.Run("GrantRole adds the role's permissions, once, with its event", func(t *testing.T) {
		if p, err := store.Permissions(t.Context(), u.ID); err != nil || len(p) != 0 {
			t.Fatalf("a plain user's permissions: %v, %v", p, err)
		}
		e := account.Event{Action: account.ActionRolesChanged, SubjectID: &u.ID}
		for range 2 {
			if err := store.GrantRole(t.Context(), u.ID, account.RoleAdmin, e); err != nil {
				t.Fatal(err)
			}
		}
		if p, err := store.Permissions(t.Context(), u.ID); err != nil || !slices.Contains(p, string(account.PermRolesAssign)) || len(p) != 9 {
			t.Fatalf("an administrator's permissions: %v, %v", p, err)
		}
		if got, _ := store.GetUser(t.Context(), u.ID); !slices.Equal(got.Roles, []string{account.RoleAdmin, account.RoleUser}) {
			t.Fatalf("roles %v", got.Roles)
		}
		if got := events(t, pool, u.ID); len(got) != 2 {
			t.Fatalf("events %v: one per call", got)
		}
	})
	t.Run("RehashPassword replaces only the hash it was given", func(t *testing.T) {
		before, err := store.UserByID(t.Context(), u.ID)
		if err != nil {
			t.Fatal(err)
		}
		if done, err := store.RehashPassword(t.Context(), u.ID, "not the stored hash", "stale"); err != nil || done {
			t.Fatalf("over another hash: done %v, %v", done, err)
		}
		if done, err := store.RehashPassword(t.Context(), u.ID, before.PasswordHash, "rehashed"); err != nil || !done {
			t.Fatalf("over the stored hash: done %v, %v", done, err)
		}
		if got, _ := store.UserByID(t.Context(), u.ID); got.PasswordHash != "rehashed" {
			t.Fatalf("hash %q", got.PasswordHash)
		}
	})
	t.Run("RequestMail records the request and queues the mail together", func(t *testing.T) {
		var before int
		if err := pool.QueryRow(t.Context(), `SELECT count(*) FROM river_job`).Scan(&before); err != nil {
			t.Fatal(err)
		}
		addr := apitest.NewEmail("asked")
		if err := store.RequestMail(t.Context(), account.Mail{Kind: mail.PasswordReset, To: addr}, account.Event{Action: account.ActionPasswordResetRequested}); err != nil {
			t.Fatal(err)
		}
		var jobs, requests int
		if err := pool.QueryRow(t.Context(), `SELECT count(*) FROM river_job WHERE args->>'to' = $1 AND (args->>'requested')::boolean`, addr).Scan(&jobs); err != nil {
			t.Fatal(err)
		}
		if err := pool.QueryRow(t.Context(), `SELECT count(*) FROM audit_events WHERE action = $1`, account.ActionPasswordResetRequested).Scan(&requests); err != nil {
			t.Fatal(err)
		}
		if jobs != 1 || requests != 1 {
			t.Fatalf("%d mails and %d events", jobs, requests)
		}
		// An event that cannot be recorded queues no mail.
		err := store.RequestMail(t.Context(), account.Mail{Kind: mail.PasswordReset, To: addr}, account.Event{Action: account.ActionPasswordResetRequested, Details: map[string]any{"x": make(chan int)}})
		var after int
		if qerr := pool.QueryRow(t.Context(), `SELECT count(*) FROM river_job`).Scan(&after); qerr != nil {
			t.Fatal(qerr)
		}
		if err == nil || after != before+1 {
			t.Fatalf("a request whose event failed: %v, %d mails queued", err, after-before)
		}
	})
}
