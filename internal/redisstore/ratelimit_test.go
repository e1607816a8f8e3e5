package redisstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/internal/ratelimit"
	"github.com/gatehouse/gatehouse/internal/redisstore"
)

func TestLimiter_AllowsRatePerPeriodPerLimitAndKey(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, c redis.UniversalClient) {
		l := redisstore.NewLimiter(c, prefix)
		ctx := t.Context()
		limit := ratelimit.Limit{Name: "login-ip", Rate: 3, Period: time.Minute}
		for i := range limit.Rate {
			d, err := l.Allow(ctx, limit, "1.2.3.4")
			if err != nil || !d.Allowed || d.Remaining != limit.Rate-1-i {
				t.Fatalf("request %d: %+v %v, want allowed with %d left", i+1, d, err, limit.Rate-1-i)
			}
			within(t, "ResetAfter", d.ResetAfter, 0, limit.Period)
		}
		d, err := l.Allow(ctx, limit, "1.2.3.4")
		if err != nil || d.Allowed || d.Remaining != 0 {
			t.Fatalf("request over the rate: %+v %v, want refused", d, err)
		}
		// One request comes back every Period/Rate.
		within(t, "RetryAfter", d.RetryAfter, 0, limit.Period/time.Duration(limit.Rate))
		within(t, "ResetAfter", d.ResetAfter, limit.Period-time.Second, limit.Period)

		others := []struct {
			name  string
			limit ratelimit.Limit
			key   string
		}{
			{"another key", limit, "5.6.7.8"},
			{"another limit, same key", ratelimit.Limit{Name: "register-ip", Rate: 3, Period: time.Minute}, "1.2.3.4"},
		}
		for _, o := range others {
			t.Run(o.name, func(t *testing.T) {
				if d, err := l.Allow(ctx, o.limit, o.key); err != nil || !d.Allowed || d.Remaining != o.limit.Rate-1 {
					t.Fatalf("%+v %v, want allowed with a full quota", d, err)
				}
			})
		}
	})
}

func TestFirst_TrueOncePerWindow(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, c redis.UniversalClient) {
		impls := []struct {
			name  string
			first func(ctx context.Context, key string, ttl time.Duration) (bool, error)
		}{
			{"Limiter", redisstore.NewLimiter(c, prefix).First},
			{"Lockout", redisstore.NewLockout(c, prefix).First},
		}
		for _, impl := range impls {
			t.Run(impl.name, func(t *testing.T) {
				t.Parallel()
				ctx := t.Context()
				key, other := impl.name+":k", impl.name+":other"
				steps := []struct {
					key  string
					want bool
				}{{key, true}, {key, false}, {key, false}, {other, true}}
				for i, s := range steps {
					if got, err := impl.first(ctx, s.key, time.Hour); err != nil || got != s.want {
						t.Fatalf("call %d (%s): %v %v, want %v", i+1, s.key, got, err, s.want)
					}
				}
				within(t, "window", pttl(t, c, prefix+"once:"+key), 59*time.Minute, time.Hour)
				// A new window: true again.
				short := impl.name + ":short"
				for i, want := range []bool{true, false} {
					if got, err := impl.first(ctx, short, 50*time.Millisecond); err != nil || got != want {
						t.Fatalf("short window, call %d: %v %v, want %v", i+1, got, err, want)
					}
				}
				time.Sleep(150 * time.Millisecond)
				if got, err := impl.first(ctx, short, 50*time.Millisecond); err != nil || !got {
					t.Fatalf("after the window: %v %v, want true", got, err)
				}
			})
		}
	})
}
