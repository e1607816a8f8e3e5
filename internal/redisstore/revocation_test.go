package redisstore_test

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/redisstore"
)

func TestRevocations_ColdUntilRebuiltAndAfterInvalidate(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, c redis.UniversalClient) {
		rv := redisstore.NewRevocations(c, prefix)
		ctx := t.Context()
		revoked, live, user, other := uuid.New(), uuid.New(), uuid.New(), uuid.New()

		st, err := rv.Check(ctx, revoked, user)
		if err != nil || st != (auth.CacheState{}) {
			t.Fatalf("empty Redis: %+v %v, want cold and no markers", st, err)
		}
		// A marker written while cold is kept, but the cache stays cold: other
		// revocations may be missing.
		if err := rv.RevokeSession(ctx, revoked, time.Hour); err != nil {
			t.Fatal(err)
		}
		if st, err := rv.Check(ctx, revoked, user); err != nil || st.Warm || !st.SessionRevoked {
			t.Fatalf("marker while cold: %+v %v", st, err)
		}

		if err := rv.Rebuild(ctx, auth.Revocations{Sessions: []uuid.UUID{revoked}, Users: map[uuid.UUID]int64{user: 3}}, time.Hour); err != nil {
			t.Fatal(err)
		}
		cases := []struct {
			name          string
			session, user uuid.UUID
			want          auth.CacheState
		}{
			{"revoked session, bumped user", revoked, user, auth.CacheState{Warm: true, SessionRevoked: true, MinVersion: 3}},
			{"live session, bumped user", live, user, auth.CacheState{Warm: true, MinVersion: 3}},
			{"live session, untouched user", live, other, auth.CacheState{Warm: true}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				st, err := rv.Check(ctx, tc.session, tc.user)
				if err != nil || st != tc.want {
					t.Fatalf("warm: %+v %v, want %+v", st, err, tc.want)
				}
			})
		}

		if err := rv.Invalidate(ctx); err != nil {
			t.Fatal(err)
		}
		st, err = rv.Check(ctx, revoked, user)
		if want := (auth.CacheState{SessionRevoked: true, MinVersion: 3}); err != nil || st != want {
			t.Fatalf("after Invalidate: %+v %v, want %+v (cold, markers kept)", st, err, want)
		}
		flushAll(t, c)
		if st, err := rv.Check(ctx, revoked, user); err != nil || st != (auth.CacheState{}) {
			t.Fatalf("after FLUSHALL: %+v %v, want cold", st, err)
		}
	})
}

func TestRevocations_RevokeUserKeepsTheHighestVersion(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, c redis.UniversalClient) {
		rv := redisstore.NewRevocations(c, prefix)
		ctx := t.Context()
		user := uuid.New()
		// Each step writes a version; the marker must never go down, whether the
		// lower version comes from a late revocation or from a rebuild that read
		// PostgreSQL before a concurrent revocation.
		steps := []struct {
			name    string
			write   func() error
			wantMin int64
		}{
			{"first revocation", func() error { return rv.RevokeUser(ctx, user, 5, time.Hour) }, 5},
			{"an older version arrives late", func() error { return rv.RevokeUser(ctx, user, 3, time.Hour) }, 5},
			{"a rebuild read an older version", func() error {
				return rv.Rebuild(ctx, auth.Revocations{Users: map[uuid.UUID]int64{user: 4}}, time.Hour)
			}, 5},
			{"a newer version", func() error { return rv.RevokeUser(ctx, user, 7, time.Hour) }, 7},
		}
		for _, s := range steps {
			if err := s.write(); err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
			st, err := rv.Check(ctx, uuid.New(), user)
			if err != nil || st.MinVersion != s.wantMin {
				t.Fatalf("%s: MinVersion %d %v, want %d", s.name, st.MinVersion, err, s.wantMin)
			}
		}
	})
}

func TestRevocations_MarkersLiveForTheirTTLAndTheEpochForever(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, c redis.UniversalClient) {
		rv := redisstore.NewRevocations(c, prefix)
		ctx := t.Context()
		sess, user, rebuiltSess, rebuiltUser := uuid.New(), uuid.New(), uuid.New(), uuid.New()
		const ttl = 20 * time.Minute
		if err := rv.RevokeSession(ctx, sess, ttl); err != nil {
			t.Fatal(err)
		}
		if err := rv.RevokeUser(ctx, user, 2, ttl); err != nil {
			t.Fatal(err)
		}
		if err := rv.Rebuild(ctx, auth.Revocations{Sessions: []uuid.UUID{rebuiltSess}, Users: map[uuid.UUID]int64{rebuiltUser: 9}}, ttl); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"{rv}:s:" + sess.String(), "{rv}:u:" + user.String(), "{rv}:s:" + rebuiltSess.String(), "{rv}:u:" + rebuiltUser.String()} {
			within(t, "PTTL "+k, pttl(t, c, prefix+k), ttl-time.Minute, ttl)
		}
		// The epoch says the markers are complete; it must not expire while they
		// are: only a loss of data (or Invalidate) removes it.
		if d, err := c.PTTL(ctx, prefix+"{rv}:epoch").Result(); err != nil || d != -1 {
			t.Fatalf("epoch PTTL %v %v, want no expiry (-1ms)", d, err)
		}

		// A marker whose time is up is gone: its tokens have expired anyway.
		short := uuid.New()
		if err := rv.RevokeSession(ctx, short, 50*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		if err := rv.RevokeUser(ctx, short, 4, 50*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		time.Sleep(150 * time.Millisecond)
		st, err := rv.Check(ctx, short, short)
		if want := (auth.CacheState{Warm: true}); err != nil || st != want {
			t.Fatalf("after the TTL: %+v %v, want %+v", st, err, want)
		}
	})
}

func TestRevocations_RedisDownIsAnError(t *testing.T) {
	t.Parallel()
	c, r := newRedis(t)
	rv := redisstore.NewRevocations(c, prefix)
	r.Stop()
	// The service falls back to PostgreSQL on an error; a zero state
	// without one would read as "cold" and hide the outage from the logs,
	// and a write that fails silently would lose a revocation.
	if _, err := rv.Check(t.Context(), uuid.New(), uuid.New()); err == nil {
		t.Error("Check with Redis down: no error")
	}
	if err := rv.RevokeSession(t.Context(), uuid.New(), time.Hour); err == nil {
		t.Error("RevokeSession with Redis down: no error")
	}
	if err := rv.RevokeUser(t.Context(), uuid.New(), 2, time.Hour); err == nil {
		t.Error("RevokeUser with Redis down: no error")
	}
}

// On Redis Cluster the epoch says the markers are complete only if both
// live on one master: a failover that lost markers of another master would
// leave the epoch standing over incomplete markers. With one hash tag, the
// master that loses markers loses the epoch and the feed's shard channel
// too, and instances learn of the loss.
func TestRevocations_EveryKeyIsInOneClusterSlot(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, c redis.UniversalClient) {
		rv := redisstore.NewRevocations(c, prefix)
		ctx := t.Context()
		if err := rv.Rebuild(ctx, auth.Revocations{Sessions: []uuid.UUID{uuid.New(), uuid.New()}, Users: map[uuid.UUID]int64{uuid.New(): 2, uuid.New(): 3}}, time.Hour); err != nil {
			t.Fatal(err)
		}
		for range 5 {
			if err := rv.RevokeSession(ctx, uuid.New(), time.Hour); err != nil {
				t.Fatal(err)
			}
			if err := rv.RevokeUser(ctx, uuid.New(), 4, time.Hour); err != nil {
				t.Fatal(err)
			}
		}
		ks := keys(t, c)
		if len(ks) != 15 {
			t.Fatalf("%d keys, want 15 (epoch, 14 markers): %v", len(ks), ks)
		}
		for _, k := range ks {
			if tag := hashTag(k); tag != "rv" {
				t.Errorf("key %s hashes on %q, want %q", k, tag, "rv")
			}
		}
	})
}
