package redisstore

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/internal/auth"
)

// Lockout counts failed password checks per bucket in Redis, shared by every
// instance. A bucket is a hash of failures (n, last, alerted) and a sorted set
// of the checks in flight; both keys share the hash tag of the account, so
// each script touches one Redis Cluster slot.
type Lockout struct {
	c      redis.UniversalClient
	prefix string
}

var _ auth.Lockout = (*Lockout)(nil)

// NewLockout returns the failure counters on c.
func NewLockout(c redis.UniversalClient, prefix string) *Lockout {
	return &Lockout{c: c, prefix: prefix}
}

func (l *Lockout) keys(b auth.Bucket) []string {
	k := l.prefix + "lo:{" + b.Account + "}:"
	if b.Device == "" {
		k += "a"
	} else {
		k += "d:" + b.Device
	}
	return []string{k, k + ":p"}
}

// begin decides whether a password check may start, and registers it as in
// flight when it may. The checks in flight take the free failures left, so
// parallel guesses cannot all pass the decision before any is counted; a
// check that finds no slot free is told to retry (-1) rather than refused,
// since it may well carry the right password. A check in flight is
// forgotten after ARGV[7] ms (an instance that crashed mid-check).
// Times come from Redis's clock, so instances with skewed clocks agree.
// ARGV: (unused), free failures, max delay (ms), block after, cool-down (ms),
// check id, in-flight timeout (ms).
// Returns 0 (go ahead), -1 (busy: retry shortly) or the ms to wait.
var begin = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local free, block = tonumber(ARGV[2]), tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[7]))
local p = redis.call('ZCARD', KEYS[2])
local n = tonumber(redis.call('HGET', KEYS[1], 'n') or '0')
local last = tonumber(redis.call('HGET', KEYS[1], 'last') or '0')
if n >= block then
  local wait = last + tonumber(ARGV[5]) - now
  if wait > 0 then return wait end
  redis.call('DEL', KEYS[1])
  n = 0
end
if n >= free then
  local e = n - free
  local d = tonumber(ARGV[3])
  if e < 30 then d = math.min(1000 * 2 ^ e, d) end
  local wait = last + d - now
  if wait > 0 then return wait end
  if p > 0 then return -1 end
elseif n + p >= free then
  return -1
end
redis.call('ZADD', KEYS[2], now, ARGV[6])
redis.call('PEXPIRE', KEYS[2], ARGV[7])
return 0`)

// finish records the outcome of a check that begin let through.
// ARGV: check id, outcome (f: failed, s: succeeded, x: abandoned), (unused),
// cool-down (ms), alert at (failures), block after (failures).
// Returns the failures now counted, and 1 when this failure is the first to
// reach the alert threshold since the bucket was last clear.
var finish = redis.NewScript(`
redis.call('ZREM', KEYS[2], ARGV[1])
if ARGV[2] == 's' then
  redis.call('DEL', KEYS[1])
  return {0, 0}
elseif ARGV[2] ~= 'f' then
  return {tonumber(redis.call('HGET', KEYS[1], 'n') or '0'), 0}
end
local t = redis.call('TIME')
local n = redis.call('HINCRBY', KEYS[1], 'n', 1)
redis.call('HSET', KEYS[1], 'last', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
-- Below the block, a day without failures forgets them; a blocked bucket
-- is kept for its whole cool-down (180 days for a device).
local ttl = tonumber(ARGV[4])
if n < tonumber(ARGV[6]) then ttl = math.min(ttl, 86400000) end
redis.call('PEXPIRE', KEYS[1], ttl)
local alert = 0
if n >= tonumber(ARGV[5]) and redis.call('HSETNX', KEYS[1], 'alerted', '1') == 1 then alert = 1 end
return {n, alert}`)

// inFlightTimeout forgets a check in flight after this long.
const inFlightTimeout = 30 * time.Second

// Begin implements auth.Lockout.
func (l *Lockout) Begin(ctx context.Context, b auth.Bucket, id string, now time.Time, p auth.LockoutPolicy) (time.Duration, bool, error) {
	ms, err := begin.Run(ctx, l.c, l.keys(b), now.UnixMilli(), p.FreeFailures, p.MaxDelay.Milliseconds(),
		p.BlockAfter, p.CoolDown.Milliseconds(), id, inFlightTimeout.Milliseconds()).Int64()
	if err != nil {
		return 0, false, fmt.Errorf("begin password check: %w", err)
	}
	if ms < 0 {
		return 0, true, nil
	}
	return time.Duration(ms) * time.Millisecond, false, nil
}

// End implements auth.Lockout.
func (l *Lockout) End(ctx context.Context, b auth.Bucket, id string, r auth.CheckResult, now time.Time, p auth.LockoutPolicy) (auth.Outcome, error) {
	res, err := finish.Run(ctx, l.c, l.keys(b), id, string(r), now.UnixMilli(), p.CoolDown.Milliseconds(), p.AlertAfter, p.BlockAfter).Int64Slice()
	if err != nil || len(res) != 2 {
		return auth.Outcome{}, fmt.Errorf("end password check: %w", err)
	}
	return auth.Outcome{Failures: int(res[0]), Alert: res[1] == 1}, nil
}

// Reset clears a bucket (a password reset clears the account's shared one).
func (l *Lockout) Reset(ctx context.Context, b auth.Bucket) error {
	return l.c.Del(ctx, l.keys(b)...).Err()
}

// First implements auth.Lockout.
func (l *Lockout) First(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	return first(ctx, l.c, l.prefix, key, ttl)
}
