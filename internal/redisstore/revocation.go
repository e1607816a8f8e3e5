package redisstore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/internal/auth"
)

// Revocations is the Redis fast path of revocation checks. It holds markers
// for the sessions revoked and the token versions bumped within the last
// access-token lifetime, and an "epoch" key that exists only while the
// markers are complete: after a restart or FLUSHALL the epoch is gone, and
// checks go to PostgreSQL until the markers are rebuilt from it.
//
// Every key shares the hash tag {rv}, so on Redis Cluster the markers, the
// epoch and the feed's shard channel live on one master: a failover that
// loses markers loses the epoch's node and the feed's subscription with
// them, and instances learn of it (the feed is lost, they ask PostgreSQL),
// instead of trusting an epoch that outlived markers lost on another node.
// The price is that revocation reads go to one master; they are rare, as
// instances answer from their own copy while their feed is current.
type Revocations struct {
	c      redis.UniversalClient
	prefix string
	// cluster announces on a shard channel (SPUBLISH, SSUBSCRIBE): plain
	// PUBLISH on a cluster is copied to every node, and a subscription of a
	// node outlives the failover of the master holding the markers.
	cluster *redis.ClusterClient
}

var _ auth.RevocationCache = (*Revocations)(nil)

// NewRevocations returns the cache on c.
func NewRevocations(c redis.UniversalClient, prefix string) *Revocations {
	cc, _ := c.(*redis.ClusterClient)
	return &Revocations{c: c, prefix: prefix, cluster: cc}
}

func (r *Revocations) epochKey() string               { return r.prefix + "{rv}:epoch" }
func (r *Revocations) sessionKey(id uuid.UUID) string { return r.prefix + "{rv}:s:" + id.String() }
func (r *Revocations) userKey(id uuid.UUID) string    { return r.prefix + "{rv}:u:" + id.String() }

// feedKey is the channel revocations are announced on. Outside a cluster
// it keeps the name it had before keys were tagged, so that instances of
// both versions hear each other during a rolling upgrade.
func (r *Revocations) feedKey() string {
	if r.cluster != nil {
		return r.prefix + "{rv}:feed"
	}
	return r.prefix + "rv:feed"
}

// publish queues an announcement on p (a pipeline or the client).
func (r *Revocations) publish(ctx context.Context, p redis.Cmdable, msg string) *redis.IntCmd {
	if r.cluster != nil {
		return p.SPublish(ctx, r.feedKey(), msg)
	}
	return p.Publish(ctx, r.feedKey(), msg)
}

// subscribe subscribes to the announcements, on the master of the feed's
// slot in a cluster.
func (r *Revocations) subscribe(ctx context.Context) *redis.PubSub {
	if r.cluster != nil {
		return r.cluster.SSubscribe(ctx, r.feedKey())
	}
	return r.c.Subscribe(ctx, r.feedKey())
}

// Check reads the markers of a session and its user in one round trip.
func (r *Revocations) Check(ctx context.Context, sessionID, userID uuid.UUID) (auth.CacheState, error) {
	pipe := r.c.Pipeline()
	epoch := pipe.Exists(ctx, r.epochKey())
	sess := pipe.Exists(ctx, r.sessionKey(sessionID))
	ver := pipe.Get(ctx, r.userKey(userID))
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return auth.CacheState{}, fmt.Errorf("read revocations: %w", err)
	}
	st := auth.CacheState{Warm: epoch.Val() == 1, SessionRevoked: sess.Val() == 1}
	if v, err := ver.Int64(); err == nil {
		st.MinVersion = v
	}
	return st, nil
}

// RevokeSession marks a session revoked for ttl and announces it.
func (r *Revocations) RevokeSession(ctx context.Context, id uuid.UUID, ttl time.Duration) error {
	pipe := r.c.Pipeline()
	pipe.Set(ctx, r.sessionKey(id), "1", ttl)
	r.publish(ctx, pipe, "s "+id.String())
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("revoke session: %w", err)
	}
	return nil
}

// setMax keeps the highest token version: a rebuild reading an older version
// must not lower a marker a concurrent revocation just raised.
var setMax = redis.NewScript(`
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > cur then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
return 1`)

// RevokeUser marks every token of the user below version revoked for ttl
// and announces it.
func (r *Revocations) RevokeUser(ctx context.Context, id uuid.UUID, version int64, ttl time.Duration) error {
	v := strconv.FormatInt(version, 10)
	pipe := r.c.Pipeline()
	// Eval, not EvalSha: a pipeline cannot load a script Redis lost.
	setMax.Eval(ctx, pipe, []string{r.userKey(id)}, v, ttl.Milliseconds())
	r.publish(ctx, pipe, "u "+id.String()+" "+v)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("revoke user: %w", err)
	}
	return nil
}

// Rebuild writes the markers of rv, then marks the cache warm. Instances
// rebuild after each loss of their feed, so the markers go in batches of
// pipelined commands, not one round trip each.
func (r *Revocations) Rebuild(ctx context.Context, rv auth.Revocations, ttl time.Duration) error {
	// Every instance loaded these from PostgreSQL already: not announced.
	pipe := r.c.Pipeline()
	flush := func(atLeast int) error {
		if pipe.Len() < atLeast {
			return nil
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return fmt.Errorf("rebuild revocations: %w", err)
		}
		return nil
	}
	for _, id := range rv.Sessions {
		pipe.Set(ctx, r.sessionKey(id), "1", ttl)
		if err := flush(rebuildBatch); err != nil {
			return err
		}
	}
	for id, v := range rv.Users {
		setMax.Eval(ctx, pipe, []string{r.userKey(id)}, strconv.FormatInt(v, 10), ttl.Milliseconds())
		if err := flush(rebuildBatch); err != nil {
			return err
		}
	}
	if err := flush(1); err != nil {
		return err
	}
	return r.c.Set(ctx, r.epochKey(), time.Now().UTC().Format(time.RFC3339Nano), 0).Err()
}

// rebuildBatch is how many markers Rebuild sends per round trip.
const rebuildBatch = 256

// Invalidate marks the cache cold.
func (r *Revocations) Invalidate(ctx context.Context) error {
	return r.c.Del(ctx, r.epochKey()).Err()
}

// heartbeat is how often each instance publishes a beat on the channel and
// waits for it to come back: a beat heard tells the listener that Redis
// takes this instance's announcements and that the subscription hears them,
// so nothing announced before the beat was missed (auth trusts its copy for
// a second after the last beat heard). A ping of the subscription would not
// do: a Redis that refuses writes (paused for a failover, out of memory)
// still answers pings, while announcements are lost.
const heartbeat = 250 * time.Millisecond

// Follow subscribes to the announcements and reports to l until ctx ends. A
// subscription that errs, or whose beat fails to publish or does not come
// back within two seconds, is lost: l hears Lost, and Follow subscribes
// again on a new connection.
func (r *Revocations) Follow(ctx context.Context, l auth.FeedListener) {
	for ctx.Err() == nil {
		r.follow(ctx, l)
		if r.cluster != nil {
			// The feed's slot may have moved (a resharding, a failover): learn
			// where it lives before subscribing again, or the subscription
			// goes back to the old master until the map is next refreshed.
			r.cluster.ReloadState(ctx)
		}
		select {
		case <-ctx.Done():
		case <-time.After(heartbeat):
		}
	}
}

func (r *Revocations) follow(ctx context.Context, l auth.FeedListener) {
	ps := r.subscribe(ctx)
	defer func() { _ = ps.Close() }()
	subscribed := false
	defer func() {
		if subscribed {
			l.Lost()
		}
	}()
	// Beats of this subscription: "b <random> <n>", told apart from other
	// instances' beats and from an earlier subscription's.
	beat := "b " + uuid.NewString() + " "
	var n int
	var sent, due time.Time
	for {
		now := time.Now()
		if subscribed && due.IsZero() && now.Sub(sent) >= heartbeat {
			n++
			// From the client's pool, as announcements are published.
			if err := r.publish(ctx, r.c, beat+strconv.Itoa(n)).Err(); err != nil {
				return
			}
			sent, due = now, now.Add(8*heartbeat)
		}
		if !due.IsZero() && now.After(due) {
			return // the connection died without an error, or Redis lost the beat
		}
		msg, err := ps.ReceiveTimeout(ctx, heartbeat)
		var ne net.Error
		switch {
		case err != nil && errors.As(err, &ne) && ne.Timeout() && ctx.Err() == nil:
			continue
		case err != nil:
			return
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			switch m.Kind {
			case "subscribe", "ssubscribe":
				subscribed = true
				l.Subscribed()
			case "unsubscribe", "sunsubscribe":
				// A cluster whose feed slot moved to another master (a
				// resharding, a failover) unsubscribes its shard channel:
				// subscribe again, where the slot now lives.
				return
			}
		case *redis.Message:
			if m.Payload == beat+strconv.Itoa(n) {
				due = time.Time{}
				l.Alive()
			} else if rv, ok := parseAnnouncement(m.Payload); ok {
				l.Revoked(rv)
			}
		}
	}
}

// parseAnnouncement reads "s <session id>" or "u <user id> <version>".
func parseAnnouncement(s string) (auth.Revocation, bool) {
	f := strings.Fields(s)
	switch {
	case len(f) == 2 && f[0] == "s":
		id, err := uuid.Parse(f[1])
		return auth.Revocation{SessionID: id}, err == nil
	case len(f) == 3 && f[0] == "u":
		id, err := uuid.Parse(f[1])
		v, verr := strconv.ParseInt(f[2], 10, 64)
		return auth.Revocation{UserID: id, Version: v}, err == nil && verr == nil
	}
	return auth.Revocation{}, false
}
