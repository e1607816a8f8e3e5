package redisstore_test

import (
	"strings"
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

// keys lists every key of the server.
func keys(t *testing.T, c redis.UniversalClient) []string {
	t.Helper()
	ks, err := c.Keys(t.Context(), "*").Result()
	if err != nil {
		t.Fatalf("KEYS: %v", err)
	}
	return ks
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
