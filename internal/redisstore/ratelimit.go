package redisstore

import (
	"context"
	"fmt"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/internal/ratelimit"
)

// Limiter counts requests in Redis with GCRA (redis_rate), so every instance
// shares the same counters.
type Limiter struct {
	l      *redis_rate.Limiter
	rdb    redis.UniversalClient
	prefix string
}

var _ ratelimit.Limiter = (*Limiter)(nil)

// NewLimiter returns a limiter on c whose keys start with prefix.
func NewLimiter(c redis.UniversalClient, prefix string) *Limiter {
	return &Limiter{l: redis_rate.NewLimiter(c), rdb: c, prefix: prefix}
}

// Allow counts one request for key under l.
func (r *Limiter) Allow(ctx context.Context, l ratelimit.Limit, key string) (ratelimit.Decision, error) {
	res, err := r.l.Allow(ctx, r.prefix+l.Name+":"+key, redis_rate.Limit{Rate: l.Rate, Burst: l.Rate, Period: l.Period})
	if err != nil {
		return ratelimit.Decision{}, fmt.Errorf("rate limit %s: %w", l.Name, err)
	}
	return ratelimit.Decision{
		Allowed: res.Allowed > 0, Remaining: res.Remaining, RetryAfter: res.RetryAfter, ResetAfter: res.ResetAfter,
	}, nil
}

// First implements ratelimit.Limiter.
func (r *Limiter) First(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	return first(ctx, r.rdb, r.prefix, key, ttl)
}

// first reports whether key was not marked in the last ttl, and marks it
// (SET NX): the rate limiter and the lockout write one audit event per
// window with it.
func first(ctx context.Context, c redis.UniversalClient, prefix, key string, ttl time.Duration) (bool, error) {
	ok, err := c.SetNX(ctx, prefix+"once:"+key, "1", ttl).Result()
	if err != nil {
		return false, fmt.Errorf("once %s: %w", key, err)
	}
	return ok, nil
}
