// Package pgstore implements gatehouse's storage interfaces on PostgreSQL,
// through the sqlc-generated queries in gen/db. It is the only package that
// knows pgx and SQLSTATEs; it hands domain errors upward.
package pgstore

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Connect opens a pool with bounded size and timeouts. It does not wait for
// the database: readiness reports whether it answers. Each of adjust may
// change the configuration first (tests attach a query tracer).
func Connect(ctx context.Context, url string, maxConns int32, adjust ...func(*pgxpool.Config)) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse DATABASE_URL: %w", err)
	}
	cfg.MaxConns = maxConns
	cfg.MaxConnIdleTime = 5 * time.Minute
	cfg.HealthCheckPeriod = 30 * time.Second
	cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	if cfg.ConnConfig.RuntimeParams == nil {
		cfg.ConnConfig.RuntimeParams = map[string]string{}
	}
	cfg.ConnConfig.RuntimeParams["application_name"] = "gatehouse"
	// A runaway query must not hold a connection (and a request) forever.
	cfg.ConnConfig.RuntimeParams["statement_timeout"] = "10000"
	for _, f := range adjust {
		f(cfg)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("create pool: %w", err)
	}
	return pool, nil
}
