package auth_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/account"
	"github.com/gatehouse/gatehouse/internal/auth"
)

const newPassword = "a brand new passphrase for tests"

// reuseEvents counts the refresh-token-reuse events of u.
func (e *env) reuseEvents(t *testing.T, u user) int {
	t.Helper()
	return e.count(t, `SELECT count(*) FROM audit_events WHERE subject_id = $1 AND action = $2`, u.id, string(account.ActionRefreshTokenReused))
}

func (e *env) refreshRefused(t *testing.T, what, refresh string) {
	t.Helper()
	if _, err := e.svc.Refresh(t.Context(), refresh, client); !errors.Is(err, auth.ErrInvalidRefreshToken) {
		t.Fatalf("refresh of %s: %v, want ErrInvalidRefreshToken", what, err)
	}
}

func (e *env) authRefused(t *testing.T, what, access string) {
	t.Helper()
	if _, err := e.svc.Authenticate(t.Context(), access); !errors.Is(err, auth.ErrInvalidToken) {
		t.Fatalf("access token of %s: %v, want ErrInvalidToken", what, err)
	}
}

func TestRefresh_RotatesOnceAndAgainWithinTheGraceAndRevokesOnReuseAfterIt(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil) // REFRESH_TOKEN_GRACE: the default 10 s
	t.Run("Rotated", func(t *testing.T) {
		t.Parallel()
		u := e.newUser(t)
		got, err := e.svc.Refresh(t.Context(), u.tokens.Refresh, client)
		if err != nil {
			t.Fatalf("refresh: %v", err)
		}
		if got.Refresh == u.tokens.Refresh || got.Access == u.tokens.Access || got.Access == "" {
			t.Fatal("refresh did not rotate the pair")
		}
		before, after := e.mustAuthenticate(t, u.tokens.Access), e.mustAuthenticate(t, got.Access)
		if after.SessionID != before.SessionID || after.UserID != u.id {
			t.Fatalf("the new access token belongs to %+v, want the session %s", after, before.SessionID)
		}
		if _, err := e.svc.Refresh(t.Context(), got.Refresh, client); err != nil {
			t.Fatalf("the rotated refresh token: %v", err)
		}
	})
	t.Run("GraceRotated", func(t *testing.T) {
		t.Parallel()
		u := e.newUser(t)
		first, err := e.svc.Refresh(t.Context(), u.tokens.Refresh, client)
		if err != nil {
			t.Fatal(err)
		}
		// Two tabs refreshing at once: the second gets the very same pair,
		// so the session stays one chain.
		second, err := e.svc.Refresh(t.Context(), u.tokens.Refresh, client)
		if err != nil {
			t.Fatalf("refresh within the grace: %v", err)
		}
		if second != first {
			t.Fatalf("refresh within the grace gave another pair:\n%+v\n%+v", second, first)
		}
		e.mustAuthenticate(t, second.Access)
		if n := e.count(t, `SELECT count(*) FROM sessions WHERE user_id = $1 AND revoked_at IS NULL`, u.id); n != 1 {
			t.Fatalf("%d live sessions, want 1", n)
		}
	})
	t.Run("ReuseRevoked", func(t *testing.T) {
		t.Parallel()
		u := e.newUser(t)
		next, err := e.svc.Refresh(t.Context(), u.tokens.Refresh, client)
		if err != nil {
			t.Fatal(err)
		}
		// The grace is over: the used token coming back was stolen.
		e.exec(t, `UPDATE refresh_tokens SET used_at = used_at - interval '1 minute'
			WHERE session_id IN (SELECT id FROM sessions WHERE user_id = $1) AND used_at IS NOT NULL`, u.id)
		e.refreshRefused(t, "a token used before the grace", u.tokens.Refresh)
		if n := e.count(t, `SELECT count(*) FROM sessions WHERE user_id = $1 AND revoked_reason = 'refresh_token_reuse'`, u.id); n != 1 {
			t.Fatalf("%d sessions revoked for reuse, want 1", n)
		}
		if n := e.reuseEvents(t, u); n != 1 {
			t.Fatalf("%d reuse events, want 1", n)
		}
		e.authRefused(t, "the session revoked for reuse", next.Access)
		e.authRefused(t, "the session revoked for reuse (its first token)", u.tokens.Access)
		e.refreshRefused(t, "the successor in a session revoked for reuse", next.Refresh)
	})
}

func TestRefresh_RefusedTokens(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	cases := []struct {
		name string
		// present sets the case up and returns the refresh token to present.
		present func(t *testing.T, u user) string
	}{
		{"malformed", func(*testing.T, user) string { return "not-a-token" }},
		{"unknown", func(*testing.T, user) string { return strings.Repeat("A", 43) }},
		{"idle expired", func(t *testing.T, u user) string {
			e.exec(t, `UPDATE sessions SET idle_expires_at = now() - interval '1 second' WHERE user_id = $1`, u.id)
			return u.tokens.Refresh
		}},
		{"absolutely expired", func(t *testing.T, u user) string {
			e.exec(t, `UPDATE sessions SET expires_at = now() - interval '1 second' WHERE user_id = $1`, u.id)
			return u.tokens.Refresh
		}},
		{"session logged out", func(t *testing.T, u user) string {
			if err := e.svc.Logout(t.Context(), e.mustAuthenticate(t, u.tokens.Access), client); err != nil {
				t.Fatal(err)
			}
			return u.tokens.Refresh
		}},
		{"every session logged out", func(t *testing.T, u user) string {
			if err := e.svc.LogoutAll(t.Context(), e.mustAuthenticate(t, u.tokens.Access), client); err != nil {
				t.Fatal(err)
			}
			return u.tokens.Refresh
		}},
		{"user disabled", func(t *testing.T, u user) string {
			e.exec(t, `UPDATE users SET disabled_at = now() WHERE id = $1`, u.id)
			return u.tokens.Refresh
		}},
		{"session behind the user's token version", func(t *testing.T, u user) string {
			e.exec(t, `UPDATE users SET token_version = token_version + 1, tokens_revoked_at = now() WHERE id = $1`, u.id)
			return u.tokens.Refresh
		}},
		{"spent by a password change (unused)", func(t *testing.T, u user) string {
			next, err := e.svc.Refresh(t.Context(), u.tokens.Refresh, client)
			if err != nil {
				t.Fatal(err)
			}
			e.changePassword(t, u, next.Access)
			return next.Refresh
		}},
		{"spent by a password change (used within the grace)", func(t *testing.T, u user) string {
			next, err := e.svc.Refresh(t.Context(), u.tokens.Refresh, client)
			if err != nil {
				t.Fatal(err)
			}
			e.changePassword(t, u, next.Access)
			return u.tokens.Refresh // would be GraceRotated without the change
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			u := e.newUser(t)
			e.refreshRefused(t, tc.name, tc.present(t, u))
			// Refused, not ReuseRevoked: nothing was taken for a theft.
			if n := e.reuseEvents(t, u); n != 0 {
				t.Fatalf("%d reuse events, want 0", n)
			}
		})
	}
}

// changePassword changes u's password from the session of access, and
// checks the session goes on with the pair the change returns.
func (e *env) changePassword(t *testing.T, u user, access string) {
	t.Helper()
	tok, err := e.svc.ChangePassword(t.Context(), e.mustAuthenticate(t, access), u.password, newPassword, client)
	if err != nil {
		t.Fatalf("change password: %v", err)
	}
	e.mustAuthenticate(t, tok.Access)
	if _, err := e.svc.Refresh(t.Context(), tok.Refresh, client); err != nil {
		t.Fatalf("the refresh token the password change gave: %v", err)
	}
}

func TestLogout_EndsOnlyThatSession(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	u := e.newUser(t)
	other := e.login(t, u)
	if err := e.svc.Logout(t.Context(), e.mustAuthenticate(t, u.tokens.Access), client); err != nil {
		t.Fatal(err)
	}
	e.authRefused(t, "a logged-out session", u.tokens.Access)
	e.refreshRefused(t, "a logged-out session", u.tokens.Refresh)
	e.mustAuthenticate(t, other.Access)
	if _, err := e.svc.Refresh(t.Context(), other.Refresh, client); err != nil {
		t.Fatalf("logout ended another session: %v", err)
	}
	if n := e.count(t, `SELECT count(*) FROM audit_events WHERE actor_id = $1 AND action = $2`, u.id, string(account.ActionSessionLogout)); n != 1 {
		t.Fatalf("%d logout events, want 1", n)
	}
}

func TestLogoutAll_EndsEverySessionAndLaterLoginsWork(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	u := e.newUser(t)
	other := e.login(t, u)
	if err := e.svc.LogoutAll(t.Context(), e.mustAuthenticate(t, other.Access), client); err != nil {
		t.Fatal(err)
	}
	for what, tok := range map[string]auth.Tokens{"the calling session": other, "another session": u.tokens} {
		e.authRefused(t, what, tok.Access)
		e.refreshRefused(t, what, tok.Refresh)
	}
	if n := e.count(t, `SELECT count(*) FROM audit_events WHERE actor_id = $1 AND action = $2`, u.id, string(account.ActionLogoutAll)); n != 1 {
		t.Fatalf("%d logout-all events, want 1", n)
	}
	again := e.login(t, u)
	e.mustAuthenticate(t, again.Access)
}

// TestAuthenticate_RefusesRevokedTokensWarmAndCold checks each revocation
// against each source of the answer. Warm: the revocation is then erased
// from PostgreSQL, so only the Redis markers can refuse the token. Cold:
// Redis is emptied, so only PostgreSQL can.
func TestAuthenticate_RefusesRevokedTokensWarmAndCold(t *testing.T) {
	t.Parallel()
	revocations := []struct {
		name string
		// revoke revokes and returns the access tokens that must be refused
		// and those that must still pass.
		revoke func(t *testing.T, e *env, u user) (refused, live []string)
	}{
		{"logout", func(t *testing.T, e *env, u user) ([]string, []string) {
			other := e.login(t, u)
			if err := e.svc.Logout(t.Context(), e.mustAuthenticate(t, u.tokens.Access), client); err != nil {
				t.Fatal(err)
			}
			return []string{u.tokens.Access}, []string{other.Access}
		}},
		{"logout-all: the old token version", func(t *testing.T, e *env, u user) ([]string, []string) {
			other := e.login(t, u)
			if err := e.svc.LogoutAll(t.Context(), e.mustAuthenticate(t, u.tokens.Access), client); err != nil {
				t.Fatal(err)
			}
			return []string{u.tokens.Access, other.Access}, nil
		}},
		{"password change: the old token version", func(t *testing.T, e *env, u user) ([]string, []string) {
			other := e.login(t, u)
			tok, err := e.svc.ChangePassword(t.Context(), e.mustAuthenticate(t, u.tokens.Access), u.password, newPassword, client)
			if err != nil {
				t.Fatal(err)
			}
			// The kept session's own old token carries the old version too.
			return []string{u.tokens.Access, other.Access}, []string{tok.Access}
		}},
		{"refresh token reuse", func(t *testing.T, e *env, u user) ([]string, []string) {
			other := e.login(t, u)
			next, err := e.svc.Refresh(t.Context(), u.tokens.Refresh, client)
			if err != nil {
				t.Fatal(err)
			}
			e.exec(t, `UPDATE refresh_tokens SET used_at = used_at - interval '1 minute' WHERE used_at IS NOT NULL`)
			e.refreshRefused(t, "a reused token", u.tokens.Refresh)
			return []string{u.tokens.Access, next.Access}, []string{other.Access}
		}},
	}
	for _, rv := range revocations {
		for _, warm := range []bool{true, false} {
			name := rv.name + map[bool]string{true: " (warm)", false: " (cold)"}[warm]
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				e := newEnv(t, nil)
				b := e.instance(t) // the instance that checks: it did not revoke, and has no copy
				u := e.newUser(t)
				var version int64
				if err := e.pool.QueryRow(t.Context(), `SELECT token_version FROM users WHERE id = $1`, u.id).Scan(&version); err != nil {
					t.Fatal(err)
				}
				e.warm(t, b.svc, u.tokens.Access) // also waits for the rebuild newUser's check started
				refused, live := rv.revoke(t, e, u)
				if warm {
					e.exec(t, `UPDATE sessions SET revoked_at = NULL, revoked_reason = NULL, token_version = $2 WHERE user_id = $1`, u.id, version)
					e.exec(t, `UPDATE users SET token_version = $2, tokens_revoked_at = NULL WHERE id = $1`, u.id, version)
				}
				for i, tok := range refused {
					if !warm {
						e.warm(t, b.svc, tok) // no rebuild in flight: none can warm the cache behind the check
						e.cold(t)
					}
					if _, err := b.svc.Authenticate(t.Context(), tok); !errors.Is(err, auth.ErrInvalidToken) {
						t.Fatalf("revoked token %d: %v, want ErrInvalidToken", i, err)
					}
				}
				for _, tok := range live {
					if _, err := b.svc.Authenticate(t.Context(), tok); err != nil {
						t.Fatalf("a live token: %v", err)
					}
				}
			})
		}
	}
}

// TestAuthenticate_ColdCacheIsRebuiltFromPostgreSQL: after Redis lost its
// data, the first check asks PostgreSQL and rebuilds the markers of the
// recent revocations. Once warm, the revocations are then erased from
// PostgreSQL: only the rebuilt markers can still refuse the tokens.
func TestAuthenticate_ColdCacheIsRebuiltFromPostgreSQL(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	b := e.instance(t) // the instance that checks: it did not revoke, and has no copy
	refused := func(what, access string) {
		t.Helper()
		if _, err := b.svc.Authenticate(t.Context(), access); !errors.Is(err, auth.ErrInvalidToken) {
			t.Fatalf("access token of %s: %v, want ErrInvalidToken", what, err)
		}
	}
	loggedOut, allOut, live := e.newUser(t), e.newUser(t), e.newUser(t)
	if err := e.svc.Logout(t.Context(), e.mustAuthenticate(t, loggedOut.tokens.Access), client); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.LogoutAll(t.Context(), e.mustAuthenticate(t, allOut.tokens.Access), client); err != nil {
		t.Fatal(err)
	}
	e.warm(t, b.svc, live.tokens.Access) // no rebuild in flight
	e.cold(t)
	refused("a logged-out session, cache cold", loggedOut.tokens.Access) // starts the rebuild
	e.warm(t, b.svc, live.tokens.Access)
	e.exec(t, `UPDATE sessions SET revoked_at = NULL, revoked_reason = NULL, token_version = 1`)
	e.exec(t, `UPDATE users SET token_version = 1, tokens_revoked_at = NULL`)
	refused("a logged-out session, cache rebuilt", loggedOut.tokens.Access)
	refused("a user logged out everywhere, cache rebuilt", allOut.tokens.Access)
	if _, err := b.svc.Authenticate(t.Context(), live.tokens.Access); err != nil {
		t.Fatalf("a live token: %v", err)
	}
}
