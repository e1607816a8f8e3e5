// Package redisstore keeps the state gatehouse shares between instances in
// Redis: the fast path of revocation checks and the rate-limit counters.
// Redis may lose its data at any time; nothing here is the record of truth.
package redisstore

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/redis/go-redis/v9"
)

// Options selects the Redis deployment.
type Options struct {
	URL string // redis://, rediss:// or unix:// URL: address, credentials, database, TLS
	// SentinelMaster, when set, treats the URL's address as a Sentinel and
	// follows the named master.
	SentinelMaster string
	// Cluster treats the URL's address as a seed node of a Redis Cluster.
	Cluster bool
}

// Connect returns a universal client (standalone, Sentinel or Cluster) with
// short timeouts: a slow Redis must not hold requests for long.
func Connect(o Options) (redis.UniversalClient, error) {
	u, err := redis.ParseURL(o.URL)
	if err != nil {
		return nil, fmt.Errorf("parse REDIS_URL: %w", err)
	}
	uo := &redis.UniversalOptions{
		Addrs:           []string{u.Addr},
		DB:              u.DB,
		Username:        u.Username,
		Password:        u.Password,
		TLSConfig:       u.TLSConfig,
		MasterName:      o.SentinelMaster,
		IsClusterMode:   o.Cluster,
		DialTimeout:     2 * time.Second,
		ReadTimeout:     time.Second,
		WriteTimeout:    time.Second,
		PoolTimeout:     2 * time.Second,
		MaxRetries:      1,
		ClientName:      "gatehouse",
		DisableIdentity: true,
	}
	if u.Network == "unix" {
		addr := u.Addr
		uo.Dialer = func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", addr)
		}
	}
	return redis.NewUniversalClient(uo), nil
}

// Ping reports whether Redis answers.
func Ping(ctx context.Context, c redis.UniversalClient) error {
	return c.Ping(ctx).Err()
}
