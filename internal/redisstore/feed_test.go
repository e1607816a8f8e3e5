package redisstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/internal/apitest"
	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/redisstore"
)

// listener records what a feed reports, in order, as strings.
type listener chan string

func (l listener) Subscribed() { l <- "subscribed" }
func (l listener) Alive()      { l <- "alive" }
func (l listener) Lost()       { l <- "lost" }
func (l listener) Revoked(r auth.Revocation) {
	l <- fmt.Sprintf("revoked %s %s %d", r.SessionID, r.UserID, r.Version)
}

// next returns the next report that is not a heartbeat answer.
func (l listener) next(t *testing.T) string {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case s := <-l:
			if s != "alive" {
				return s
			}
		case <-timeout:
			t.Fatal("the feed reported nothing for 10 s")
		}
	}
}

func (l listener) expect(t *testing.T, want string) {
	t.Helper()
	if got := l.next(t); got != want {
		t.Fatalf("feed reported %q, want %q", got, want)
	}
}

// follow runs Follow on a client of its own until the test ends.
func follow(t *testing.T, rv *redisstore.Revocations) listener {
	t.Helper()
	l := make(listener, 100)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); rv.Follow(ctx, l) }()
	t.Cleanup(func() { cancel(); <-done })
	return l
}

func TestFeed_AnnouncesRevocationsButNotRebuilds(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, c redis.UniversalClient) {
		rv := redisstore.NewRevocations(c, prefix)
		l := follow(t, rv)
		l.expect(t, "subscribed")
		ctx := t.Context()
		sid, uid := uuid.New(), uuid.New()
		if err := rv.Rebuild(ctx, auth.Revocations{Sessions: []uuid.UUID{uuid.New()}, Users: map[uuid.UUID]int64{uuid.New(): 9}}, time.Hour); err != nil {
			t.Fatal(err)
		}
		if err := rv.RevokeSession(ctx, sid, time.Hour); err != nil {
			t.Fatal(err)
		}
		if err := rv.RevokeUser(ctx, uid, 7, time.Hour); err != nil {
			t.Fatal(err)
		}
		l.expect(t, fmt.Sprintf("revoked %s %s 0", sid, uuid.Nil))
		l.expect(t, fmt.Sprintf("revoked %s %s 7", uuid.Nil, uid))
		// The markers are written with the announcement.
		if st, err := rv.Check(ctx, sid, uid); err != nil || !st.SessionRevoked || st.MinVersion != 7 {
			t.Fatalf("markers: %+v %v", st, err)
		}
		// Another prefix is another deployment: it hears nothing of these.
		other := follow(t, redisstore.NewRevocations(c, "other:"))
		other.expect(t, "subscribed")
		if err := rv.RevokeSession(ctx, sid, time.Hour); err != nil {
			t.Fatal(err)
		}
		l.expect(t, fmt.Sprintf("revoked %s %s 0", sid, uuid.Nil))
		select {
		case s := <-other:
			if s != "alive" {
				t.Fatalf("another prefix heard %q", s)
			}
		case <-time.After(300 * time.Millisecond):
		}
	})
}

func TestFeed_HeartbeatsAreAnswered(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, c redis.UniversalClient) {
		l := follow(t, redisstore.NewRevocations(c, prefix))
		l.expect(t, "subscribed")
		for range 3 {
			select {
			case s := <-l:
				if s != "alive" {
					t.Fatalf("feed reported %q, want alive", s)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("no heartbeat answered in 10 s")
			}
		}
	})
}

// A subscription can break (a killed connection, a Redis restart): the
// listener hears Lost, then Subscribed again once the feed is back, so it
// knows to reload what it may have missed.
func TestFeed_LostAndSubscribedAgain(t *testing.T) {
	t.Parallel()
	c, r := newRedis(t)
	rv := redisstore.NewRevocations(c, prefix)
	l := follow(t, rv)
	l.expect(t, "subscribed")
	if err := c.Do(t.Context(), "CLIENT", "KILL", "TYPE", "pubsub").Err(); err != nil {
		t.Fatal(err)
	}
	l.expect(t, "lost")
	l.expect(t, "subscribed")
	r.Stop()
	l.expect(t, "lost")
	r.Start()
	l.expect(t, "subscribed")
	sid := uuid.New()
	if err := rv.RevokeSession(t.Context(), sid, time.Hour); err != nil {
		t.Fatal(err)
	}
	l.expect(t, fmt.Sprintf("revoked %s %s 0", sid, uuid.Nil))
}

// A Redis that refuses writes (paused for a failover, out of memory) still
// answers the subscription, but announcements are lost: the beats, published
// like them, stop coming back and the feed is lost until writes resume.
func TestFeed_LostWhileRedisRefusesWrites(t *testing.T) {
	t.Parallel()
	c, _ := newRedis(t)
	l := follow(t, redisstore.NewRevocations(c, prefix))
	l.expect(t, "subscribed")
	if err := c.Do(t.Context(), "CLIENT", "PAUSE", "3000", "WRITE").Err(); err != nil {
		t.Fatal(err)
	}
	l.expect(t, "lost")
	l.expect(t, "subscribed")
}

// On a cluster the feed is a shard channel of the master that holds the
// markers. A resharding that moves its slot away unsubscribes it: the
// listener hears Lost (it then asks PostgreSQL), and the feed subscribes
// again on the slot's new master, where announcements are heard again.
func TestFeed_OnAClusterFollowsItsSlotToAnotherMaster(t *testing.T) {
	t.Parallel()
	rc := apitest.StartRedisCluster(t, 3)
	c := rc.Client()
	rv := redisstore.NewRevocations(c, prefix)
	l := follow(t, rv)
	l.expect(t, "subscribed")
	slot := rc.Slot(prefix + "{rv}:feed")
	for range 2 {
		if err := rc.MoveSlot(slot, (rc.Owner(slot)+1)%3); err != nil {
			t.Fatal(err)
		}
		l.expect(t, "lost")
		l.expect(t, "subscribed")
		sid := uuid.New()
		if err := rv.RevokeSession(t.Context(), sid, time.Hour); err != nil {
			t.Fatal(err)
		}
		l.expect(t, fmt.Sprintf("revoked %s %s 0", sid, uuid.Nil))
	}
	// Announcements use the shard channel: a plain subscriber hears none.
	plain := c.Subscribe(t.Context(), prefix+"{rv}:feed")
	defer func() { _ = plain.Close() }()
	if _, err := plain.Receive(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := rv.RevokeSession(t.Context(), uuid.New(), time.Hour); err != nil {
		t.Fatal(err)
	}
	if m, err := plain.ReceiveTimeout(t.Context(), 300*time.Millisecond); err == nil {
		t.Fatalf("a plain subscriber heard %v", m)
	}
}
