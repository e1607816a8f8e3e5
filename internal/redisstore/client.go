// Package redisstore keeps the state gatehouse shares between instances in
// Redis: the fast path of revocation checks and the rate-limit counters.
// Redis may lose its data at any time; nothing here is the record of truth.
package redisstore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"

	"github.com/redis/go-redis/v9"
)

// Options selects the Redis deployment.
type Options struct {
	// URL is a redis://, rediss:// or unix:// URL: address, credentials,
	// database, TLS. For Sentinel and Cluster, more addresses may follow as
	// addr parameters (redis://host1:26379?addr=host2:26379&addr=host3:26379),
	// so that one node down at start-up does not stop the instance.
	URL string
	// SentinelMaster, when set, treats the URL's addresses as Sentinels and
	// follows the named master. The URL's credentials are the master's.
	SentinelMaster string
	// Cluster treats the URL's addresses as seed nodes of a Redis Cluster.
	Cluster bool
}

// Connect returns a universal client (standalone, Sentinel or Cluster) with
// short timeouts: a slow Redis must not hold requests for long.
func Connect(o Options) (redis.UniversalClient, error) {
	if o.SentinelMaster != "" && o.Cluster {
		return nil, errors.New("REDIS_SENTINEL_MASTER and REDIS_CLUSTER exclude each other")
	}
	// redis.ParseURL refuses the addr parameter: take the extra addresses
	// out first.
	pu, err := url.Parse(o.URL)
	if err != nil {
		return nil, fmt.Errorf("parse REDIS_URL: %w", err)
	}
	q := pu.Query()
	extra := q["addr"]
	q.Del("addr")
	pu.RawQuery = q.Encode()
	u, err := redis.ParseURL(pu.String())
	if err != nil {
		return nil, fmt.Errorf("parse REDIS_URL: %w", err)
	}
	standalone := o.SentinelMaster == "" && !o.Cluster
	switch {
	case standalone && len(extra) > 0:
		return nil, errors.New("REDIS_URL: several addresses need REDIS_SENTINEL_MASTER or REDIS_CLUSTER")
	case !standalone && u.Network == "unix":
		// Sentinels and cluster nodes name each other by TCP address.
		return nil, errors.New("REDIS_URL: Sentinel and Cluster need TCP addresses, not a unix socket")
	case o.Cluster && u.DB != 0:
		return nil, errors.New("REDIS_URL: Redis Cluster has database 0 only")
	}
	for _, a := range extra {
		if h, p, err := net.SplitHostPort(a); err != nil || h == "" || p == "" {
			return nil, fmt.Errorf("REDIS_URL: addr %q is not host:port", a)
		}
	}
	uo := &redis.UniversalOptions{
		Addrs:         append([]string{u.Addr}, extra...),
		DB:            u.DB,
		Username:      u.Username,
		Password:      u.Password,
		TLSConfig:     u.TLSConfig,
		MasterName:    o.SentinelMaster,
		IsClusterMode: o.Cluster,
		DialTimeout:   2 * time.Second,
		ReadTimeout:   time.Second,
		WriteTimeout:  time.Second,
		PoolTimeout:   2 * time.Second,
		MaxRetries:    1,
		// A resharding answers MOVED, ASK and TRYAGAIN while a slot's keys
		// move: follow a few more redirects than the default before failing.
		MaxRedirects:    8,
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
