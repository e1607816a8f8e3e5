package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
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
type Revocations struct {
	c      redis.UniversalClient
	prefix string
}

var _ auth.RevocationCache = (*Revocations)(nil)

// NewRevocations returns the cache on c.
func NewRevocations(c redis.UniversalClient, prefix string) *Revocations {
	return &Revocations{c: c, prefix: prefix}
}

func (r *Revocations) epochKey() string               { return r.prefix + "rv:epoch" }
func (r *Revocations) sessionKey(id uuid.UUID) string { return r.prefix + "rv:s:" + id.String() }
func (r *Revocations) userKey(id uuid.UUID) string    { return r.prefix + "rv:u:" + id.String() }

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

// RevokeSession marks a session revoked for ttl.
func (r *Revocations) RevokeSession(ctx context.Context, id uuid.UUID, ttl time.Duration) error {
	return r.c.Set(ctx, r.sessionKey(id), "1", ttl).Err()
}

// setMax keeps the highest token version: a rebuild reading an older version
// must not lower a marker a concurrent revocation just raised.
var setMax = redis.NewScript(`
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > cur then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
return 1`)

// RevokeUser marks every token of the user below version revoked for ttl.
func (r *Revocations) RevokeUser(ctx context.Context, id uuid.UUID, version int64, ttl time.Duration) error {
	return setMax.Run(ctx, r.c, []string{r.userKey(id)}, strconv.FormatInt(version, 10), ttl.Milliseconds()).Err()
}

// Rebuild writes the markers of rv, then marks the cache warm.
func (r *Revocations) Rebuild(ctx context.Context, rv auth.Revocations, ttl time.Duration) error {
	for _, id := range rv.Sessions {
		if err := r.RevokeSession(ctx, id, ttl); err != nil {
			return err
		}
	}
	for id, v := range rv.Users {
		if err := r.RevokeUser(ctx, id, v, ttl); err != nil {
			return err
		}
	}
	return r.c.Set(ctx, r.epochKey(), time.Now().UTC().Format(time.RFC3339Nano), 0).Err()
}

// Invalidate marks the cache cold.
func (r *Revocations) Invalidate(ctx context.Context) error {
	return r.c.Del(ctx, r.epochKey()).Err()
}
