package redisstore_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/internal/apitest"
)

// prefix is the key prefix of every store under test (gatehouse's own is
// "gatehouse:"); the keys the tests read directly start with it.
const prefix = "t:"

// newRedis returns a client of an empty Redis of the test's own, and the
// server, which the test may stop.
func newRedis(t *testing.T) (redis.UniversalClient, *apitest.Redis) {
	t.Helper()
	r := apitest.StartRedis(t)
	return r.Client(), r
}

// backend is a Redis deployment the stores must work on.
type backend struct {
	name  string
	start func(t *testing.T) redis.UniversalClient
}

// backends are the deployments whose differences matter to the stores: a
// cluster spreads keys over masters (multi-key scripts and pipelines need
// one hash slot, announcements use a shard channel).
var backends = []backend{
	{"standalone", func(t *testing.T) redis.UniversalClient { c, _ := newRedis(t); return c }},
	{"cluster", func(t *testing.T) redis.UniversalClient { return apitest.StartRedisCluster(t, 3).Client() }},
}

// eachBackend runs f, in parallel, on an empty Redis of each backend.
func eachBackend(t *testing.T, f func(t *testing.T, c redis.UniversalClient)) {
	t.Helper()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			f(t, b.start(t))
		})
	}
}

// forEachMaster runs f on every master of a cluster, or on c itself.
func forEachMaster(t *testing.T, c redis.UniversalClient, f func(c redis.UniversalClient) error) {
	t.Helper()
	var err error
	if cc, ok := c.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(t.Context(), func(_ context.Context, n *redis.Client) error { return f(n) })
	} else {
		err = f(c)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// flushAll empties every master.
func flushAll(t *testing.T, c redis.UniversalClient) {
	t.Helper()
	forEachMaster(t, c, func(c redis.UniversalClient) error { return c.FlushAll(t.Context()).Err() })
}

// pttl returns the time to live of key, failing the test when the key is
// missing or has no expiry.
func pttl(t *testing.T, c redis.UniversalClient, key string) time.Duration {
	t.Helper()
	d, err := c.PTTL(t.Context(), key).Result()
	if err != nil {
		t.Fatalf("PTTL %s: %v", key, err)
	}
	if d < 0 {
		t.Fatalf("PTTL %s = %v: missing or without expiry", key, d)
	}
	return d
}

// keys lists every key of the server (of every master of a cluster).
func keys(t *testing.T, c redis.UniversalClient) []string {
	t.Helper()
	var mu sync.Mutex
	var all []string
	forEachMaster(t, c, func(c redis.UniversalClient) error {
		ks, err := c.Keys(t.Context(), "*").Result()
		if err != nil {
			return fmt.Errorf("KEYS: %w", err)
		}
		mu.Lock()
		defer mu.Unlock()
		all = append(all, ks...)
		return nil
	})
	return all
}

// hashTag is the part of key Redis Cluster hashes to pick its slot: the
// text between the first "{" and the next "}", when not empty, else the
// whole key (the rule of the Cluster specification).
func hashTag(key string) string {
	_, rest, ok := strings.Cut(key, "{")
	if !ok {
		return key
	}
	tag, _, ok := strings.Cut(rest, "}")
	if !ok || tag == "" {
		return key
	}
	return tag
}

// within fails the test unless lo < d <= hi.
func within(t *testing.T, what string, d, lo, hi time.Duration) {
	t.Helper()
	if d <= lo || d > hi {
		t.Fatalf("%s = %v, want in (%v, %v]", what, d, lo, hi)
	}
}
