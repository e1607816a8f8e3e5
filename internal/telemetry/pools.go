package telemetry

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// RegisterPostgres exposes the PostgreSQL pool's statistics
// (gatehouse_postgres_pool_*), read from pgxpool.Stat at each scrape.
func (m *Metrics) RegisterPostgres(pool *pgxpool.Pool) error {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(namespace+"_postgres_pool_"+name, help, nil, nil)
	}
	stat := func(f func(*pgxpool.Stat) float64) func() float64 {
		return func() float64 { return f(pool.Stat()) }
	}
	return m.reg.Register(funcCollector{
		{
			d("max_connections", "Connections the pool may open (DB_MAX_CONNS)."), prometheus.GaugeValue,
			stat(func(s *pgxpool.Stat) float64 { return float64(s.MaxConns()) }),
		},
		{
			d("connections", "Open connections (acquired, idle and being opened)."), prometheus.GaugeValue,
			stat(func(s *pgxpool.Stat) float64 { return float64(s.TotalConns()) }),
		},
		{
			d("acquired_connections", "Connections in use by a request or job."), prometheus.GaugeValue,
			stat(func(s *pgxpool.Stat) float64 { return float64(s.AcquiredConns()) }),
		},
		{
			d("idle_connections", "Open connections waiting for work."), prometheus.GaugeValue,
			stat(func(s *pgxpool.Stat) float64 { return float64(s.IdleConns()) }),
		},
		{
			d("acquires_total", "Connections acquired from the pool."), prometheus.CounterValue,
			stat(func(s *pgxpool.Stat) float64 { return float64(s.AcquireCount()) }),
		},
		{
			d("empty_acquires_total", "Acquires that waited because no connection was free."), prometheus.CounterValue,
			stat(func(s *pgxpool.Stat) float64 { return float64(s.EmptyAcquireCount()) }),
		},
		{
			d("canceled_acquires_total", "Acquires given up because their context ended."), prometheus.CounterValue,
			stat(func(s *pgxpool.Stat) float64 { return float64(s.CanceledAcquireCount()) }),
		},
		{
			d("acquire_wait_seconds_total", "Time spent waiting for a connection."), prometheus.CounterValue,
			stat(func(s *pgxpool.Stat) float64 { return s.EmptyAcquireWaitTime().Seconds() }),
		},
		{
			d("new_connections_total", "Connections opened."), prometheus.CounterValue,
			stat(func(s *pgxpool.Stat) float64 { return float64(s.NewConnsCount()) }),
		},
	})
}

// RegisterRedis exposes the Redis client's pool statistics
// (gatehouse_redis_pool_*), read from PoolStats at each scrape. With Cluster
// they add up the pools of every node.
func (m *Metrics) RegisterRedis(rdb redis.UniversalClient) error {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(namespace+"_redis_pool_"+name, help, nil, nil)
	}
	stat := func(f func(*redis.PoolStats) float64) func() float64 {
		return func() float64 { return f(rdb.PoolStats()) }
	}
	return m.reg.Register(funcCollector{
		{
			d("connections", "Open connections."), prometheus.GaugeValue,
			stat(func(s *redis.PoolStats) float64 { return float64(s.TotalConns) }),
		},
		{
			d("idle_connections", "Open connections waiting for work."), prometheus.GaugeValue,
			stat(func(s *redis.PoolStats) float64 { return float64(s.IdleConns) }),
		},
		{
			d("hits_total", "Commands that found a free connection in the pool."), prometheus.CounterValue,
			stat(func(s *redis.PoolStats) float64 { return float64(s.Hits) }),
		},
		{
			d("misses_total", "Commands that found no free connection and opened or waited for one."), prometheus.CounterValue,
			stat(func(s *redis.PoolStats) float64 { return float64(s.Misses) }),
		},
		{
			d("timeouts_total", "Waits for a connection that timed out."), prometheus.CounterValue,
			stat(func(s *redis.PoolStats) float64 { return float64(s.Timeouts) }),
		},
		{
			d("stale_connections_total", "Connections closed as stale."), prometheus.CounterValue,
			stat(func(s *redis.PoolStats) float64 { return float64(s.StaleConns) }),
		},
	})
}

// RegisterDependency exposes gatehouse_dependency_up{dependency=name}: 1 when
// check answers within a second at scrape time, else 0. Alerts on a
// dependency being down read it (with `up` for the instance itself).
func (m *Metrics) RegisterDependency(name string, check func(ctx context.Context) error) error {
	return m.reg.Register(&dependencyCollector{check: check, desc: prometheus.NewDesc(namespace+"_dependency_up",
		"Whether a dependency (postgres, redis) answered a ping at scrape time (1) or not (0).", nil, prometheus.Labels{"dependency": name})})
}

type dependencyCollector struct {
	check func(ctx context.Context) error
	desc  *prometheus.Desc
}

func (c *dependencyCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *dependencyCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	up := 1.0
	if err := c.check(ctx); err != nil {
		up = 0
	}
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, up)
}
