package auth_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/auth"
)

// slowPoll makes the poll of PostgreSQL too rare to matter: only the feed
// can tell an instance of a revocation in time.
var slowPoll = map[string]string{"REVOCATION_POLL_INTERVAL": "1m"}

// runningPair starts two running instances on one database and Redis: e
// revokes, b checks.
func runningPair(t *testing.T) (*env, instance) {
	t.Helper()
	e := newEnv(t, slowPoll)
	b := e.instance(t)
	run(t, e.svc)
	run(t, b.svc)
	return e, b
}

// refusedSoon waits (up to 5 s) until svc refuses access.
func refusedSoon(t *testing.T, svc *auth.Service, what, access string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		_, err := svc.Authenticate(t.Context(), access)
		if errors.Is(err, auth.ErrInvalidToken) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still answered %v after 5 s, want ErrInvalidToken", what, err)
		}
	}
}

// TestFeed_AnotherInstanceHearsRevocationsAndAsksNoOne: while its copy is
// current, an instance checks tokens without a Redis read, and the
// revocations another instance makes reach it through the feed (the poll
// is a minute away).
func TestFeed_AnotherInstanceHearsRevocationsAndAsksNoOne(t *testing.T) {
	t.Parallel()
	e, b := runningPair(t)
	u, v := e.newUser(t), e.newUser(t)
	other := e.login(t, u)
	waitFeed(t, b.svc, true)

	b.reads.Store(0)
	for _, tok := range []string{u.tokens.Access, other.Access, v.tokens.Access} {
		if _, err := b.svc.Authenticate(t.Context(), tok); err != nil {
			t.Fatalf("a live token: %v", err)
		}
	}
	if n := b.reads.Load(); n != 0 {
		t.Fatalf("%d Redis reads for checks a current copy answers", n)
	}

	if err := e.svc.Logout(t.Context(), e.mustAuthenticate(t, u.tokens.Access), client); err != nil {
		t.Fatal(err)
	}
	refusedSoon(t, b.svc, "a session logged out on another instance", u.tokens.Access)
	if _, err := b.svc.Authenticate(t.Context(), other.Access); err != nil {
		t.Fatalf("the same user's other session: %v", err)
	}
	if err := e.svc.LogoutAll(t.Context(), e.mustAuthenticate(t, v.tokens.Access), client); err != nil {
		t.Fatal(err)
	}
	refusedSoon(t, b.svc, "a user logged out everywhere on another instance", v.tokens.Access)
	if n := b.reads.Load(); n != 0 {
		t.Fatalf("%d Redis reads for checks a current copy answers", n)
	}

	// What the feed says is taken as said: an announcement alone (nothing
	// in PostgreSQL or the markers) refuses the session.
	p := e.mustAuthenticate(t, other.Access)
	if err := e.rdb.Publish(t.Context(), "gatehouse:rv:feed", fmt.Sprintf("s %s", p.SessionID)).Err(); err != nil {
		t.Fatal(err)
	}
	refusedSoon(t, b.svc, "a session announced revoked", other.Access)
}

// TestFeed_RevocationsMissedWhileUnsubscribedAreLoaded: while its feed is
// lost an instance checks every token in PostgreSQL; when its subscription
// is back, it loads what it missed before trusting its copy again.
func TestFeed_RevocationsMissedWhileUnsubscribedAreLoaded(t *testing.T) {
	t.Parallel()
	e, b := runningPair(t)
	u := e.newUser(t)
	waitFeed(t, b.svc, true)

	e.redis.Stop()
	waitFeed(t, b.svc, false)
	if err := e.svc.Logout(t.Context(), e.mustAuthenticate(t, u.tokens.Access), client); err != nil {
		t.Fatal(err)
	}
	b.reads.Store(0)
	if _, err := b.svc.Authenticate(t.Context(), u.tokens.Access); !errors.Is(err, auth.ErrInvalidToken) {
		t.Fatalf("revoked while Redis is down, asked of PostgreSQL: %v, want ErrInvalidToken", err)
	}
	// With its feed lost, an instance cannot tell whether the markers hold
	// what the announcements lost: it does not ask them.
	if n := b.reads.Load(); n != 0 {
		t.Fatalf("%d Redis reads with the feed lost", n)
	}

	e.redis.Start() // empty: the markers and the announcement are lost
	waitFeed(t, b.svc, true)
	b.reads.Store(0)
	if _, err := b.svc.Authenticate(t.Context(), u.tokens.Access); !errors.Is(err, auth.ErrInvalidToken) {
		t.Fatalf("revoked while unsubscribed, copy current again: %v, want ErrInvalidToken", err)
	}
	if n := b.reads.Load(); n != 0 {
		t.Fatalf("%d Redis reads: the copy did not know the revocation", n)
	}
}

// TestFeed_RedisRefusingWritesSendsChecksToPostgreSQL: while Redis refuses
// writes, a logout's marker and announcement are both lost, and the markers
// Redis still serves look complete. The other instance's beats fail too, so
// its feed is lost: it asks PostgreSQL (and reloads its copy from it each
// time it subscribes again), never the markers.
func TestFeed_RedisRefusingWritesSendsChecksToPostgreSQL(t *testing.T) {
	t.Parallel()
	e, b := runningPair(t)
	u := e.newUser(t)
	waitFeed(t, b.svc, true)
	for deadline := time.Now().Add(10 * time.Second); e.rdb.Exists(t.Context(), epochKey).Val() != 1; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the markers were never rebuilt after the feed's load")
		}
	}

	if err := e.rdb.Do(t.Context(), "CLIENT", "PAUSE", "30000", "WRITE").Err(); err != nil {
		t.Fatal(err)
	}
	waitFeed(t, b.svc, false)
	if err := e.svc.Logout(t.Context(), e.mustAuthenticate(t, u.tokens.Access), client); err != nil {
		t.Fatal(err)
	}
	if _, err := b.svc.Authenticate(t.Context(), u.tokens.Access); !errors.Is(err, auth.ErrInvalidToken) {
		t.Fatalf("logged out while Redis refused writes: %v, want ErrInvalidToken", err)
	}
}

// TestFeed_MarkersAFailoverLostAreRewritten: a Redis replica promoted by a
// failover may miss the last markers written on the old master while it
// holds the epoch, so the markers look complete. The failover breaks every
// subscription; once subscribed again, the instances rewrite the markers
// from PostgreSQL, so an instance without a current copy (one starting, or
// whose feed went quiet) that asks the markers is not misled for long.
func TestFeed_MarkersAFailoverLostAreRewritten(t *testing.T) {
	t.Parallel()
	e, b := runningPair(t)
	u := e.newUser(t)
	waitFeed(t, b.svc, true)
	for deadline := time.Now().Add(10 * time.Second); e.rdb.Exists(t.Context(), epochKey).Val() != 1; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the markers were never rebuilt after the feed's load")
		}
	}
	sid := e.mustAuthenticate(t, u.tokens.Access).SessionID
	if err := e.svc.Logout(t.Context(), e.mustAuthenticate(t, u.tokens.Access), client); err != nil {
		t.Fatal(err)
	}
	// The promoted replica never got the marker; the epoch it has.
	if err := e.rdb.Del(t.Context(), "gatehouse:{rv}:s:"+sid.String()).Err(); err != nil {
		t.Fatal(err)
	}
	if err := e.rdb.Do(t.Context(), "CLIENT", "KILL", "TYPE", "pubsub").Err(); err != nil {
		t.Fatal(err)
	}
	starting := e.instance(t) // not running: it asks the markers
	refusedSoon(t, starting.svc, "a session whose marker a failover lost", u.tokens.Access)
}
