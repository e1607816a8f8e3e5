package redisstore_test

import (
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/internal/redisstore"
)

func TestConnect_BuildsTheClientOfEachTopology(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		o    redisstore.Options
		want string // the client's type, or "error"
	}{
		{"standalone", redisstore.Options{URL: "redis://127.0.0.1:6379/2"}, "*redis.Client"},
		{"unix socket", redisstore.Options{URL: "unix:///run/redis.sock"}, "*redis.Client"},
		{"several standalone addresses", redisstore.Options{URL: "redis://a:1?addr=b:2"}, "error"},
		{"sentinels", redisstore.Options{URL: "redis://s1:26379?addr=s2:26379&addr=s3:26379", SentinelMaster: "m"}, "*redis.Client"},
		{"cluster seeds", redisstore.Options{URL: "redis://n1:6379?addr=n2:6379", Cluster: true}, "*redis.ClusterClient"},
		{"one cluster seed", redisstore.Options{URL: "redis://n1:6379", Cluster: true}, "*redis.ClusterClient"},
		{"cluster database 1", redisstore.Options{URL: "redis://n1:6379/1", Cluster: true}, "error"},
		{"cluster on a unix socket", redisstore.Options{URL: "unix:///run/redis.sock", Cluster: true}, "error"},
		{"sentinel on a unix socket", redisstore.Options{URL: "unix:///run/redis.sock", SentinelMaster: "m"}, "error"},
		{"sentinel and cluster", redisstore.Options{URL: "redis://n1:6379", SentinelMaster: "m", Cluster: true}, "error"},
		{"bad addr", redisstore.Options{URL: "redis://n1:6379?addr=n2", Cluster: true}, "error"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := redisstore.Connect(tc.o)
			got := "error"
			if err == nil {
				defer func() { _ = c.Close() }()
				switch c.(type) {
				case *redis.Client:
					got = "*redis.Client"
				case *redis.ClusterClient:
					got = "*redis.ClusterClient"
				default:
					got = "other"
				}
			}
			if got != tc.want {
				t.Fatalf("Connect(%+v) = %s (%v), want %s", tc.o, got, err, tc.want)
			}
		})
	}
}
