// Package pgstore implements gatehouse's storage interfaces on PostgreSQL,
// through the sqlc-generated queries in gen/db. It is the only package that
// knows pgx and SQLSTATEs; it hands domain errors upward.
package pgstore

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/multitracer"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Via says what a URL reaches.
type Via int

const (
	// Direct is PostgreSQL itself (or a pooler in session mode): pgx keeps
	// its cache of named prepared statements per connection, and the server
	// bounds every statement with statement_timeout, a startup parameter.
	Direct Via = iota
	// TransactionPooler is a pooler such as PgBouncer in pool_mode =
	// transaction: each transaction (or statement outside one) may run on
	// another server connection, shared with other clients, so nothing may
	// be left on a session. See pooled.
	TransactionPooler
)

// StatementTimeout bounds every statement, so that a runaway query cannot
// hold a connection (and a request) forever.
const StatementTimeout = 10 * time.Second

// PooledStatementDeadline bounds every statement behind a transaction
// pooler, from the client (see pooled). It leaves the server's own
// statement_timeout, when the operator sets one for gatehouse's role, the
// time to act first: the server's cancel keeps the connection, the client's
// deadline closes it.
const PooledStatementDeadline = StatementTimeout + 5*time.Second

// Connect opens a pool with bounded size and timeouts. It does not wait for
// the database: readiness reports whether it answers. Each of adjust may
// change the configuration first (tests attach a query tracer).
func Connect(ctx context.Context, url string, maxConns int32, via Via, adjust ...func(*pgxpool.Config)) (*pgxpool.Pool, error) {
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
	// PgBouncer passes application_name on (it is one of the parameters it
	// tracks per client).
	cfg.ConnConfig.RuntimeParams["application_name"] = "gatehouse"
	if via == Direct {
		cfg.ConnConfig.RuntimeParams["statement_timeout"] = fmt.Sprint(StatementTimeout.Milliseconds())
	}
	for _, f := range adjust {
		f(cfg)
	}
	if via == TransactionPooler {
		pooled(cfg)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("create pool: %w", err)
	}
	return pool, nil
}

// pooled adapts a pool to a pooler in transaction mode.
//
// Statements: pgx's default (QueryExecModeCacheStatement) prepares a named
// statement once per connection and runs it later by name; behind the
// pooler the name exists on one server connection and the next transaction
// may get another ("prepared statement stmtcache_... does not exist"), and
// PgBouncer before 1.21 cannot track names. QueryExecModeCacheDescribe uses
// only the unnamed statement, parsed again in every round trip that runs it
// (Parse, Bind, Describe, Execute, Sync: one message group, which the pooler
// sends to one server connection), and caches what the first Describe
// learned of the parameter and result types. So queries keep pgx's binary
// formats and the server's own types: the text modes (QueryExecModeExec,
// QueryExecModeSimpleProtocol) guess the types from Go values and send a
// []byte as bytea, which a jsonb parameter refuses, and the simple protocol
// interpolates the arguments into the SQL on the client.
//
// Timeouts: PgBouncer refuses a startup parameter it does not know
// ("unsupported startup parameter: statement_timeout"), and one it is told
// to ignore would be lost; a SET would stay on whichever server connection
// ran it. The server-side bound is the role's own setting (ALTER ROLE ...
// SET statement_timeout, README "PgBouncer"), which every server connection
// starts with. Gatehouse adds a deadline of its own to each statement
// (statementDeadline), so that a request never waits on the database for
// longer whatever the server is set to. When it passes, pgx closes the
// connection (its default); it does not send a cancel request, which
// PgBouncer 1.18 may crash on (pgbouncer issues #801 and #904, fixed in
// 1.20 and 1.21).
func pooled(cfg *pgxpool.Config) {
	if cfg.ConnConfig.DefaultQueryExecMode == pgx.QueryExecModeCacheStatement {
		cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeCacheDescribe
	}
	cfg.ConnConfig.StatementCacheCapacity = 0
	delete(cfg.ConnConfig.RuntimeParams, "statement_timeout")
	if cfg.ConnConfig.Tracer == nil {
		cfg.ConnConfig.Tracer = statementDeadline{}
	} else {
		cfg.ConnConfig.Tracer = multitracer.New(statementDeadline{}, cfg.ConnConfig.Tracer)
	}
}

// statementDeadline gives each statement (and each batch) PooledStatementDeadline:
// the context pgx runs it under ends then, and is released when pgx reports
// the statement over (for a query, when its rows are closed).
type statementDeadline struct{}

type cancelKey struct{}

func (statementDeadline) start(ctx context.Context) context.Context {
	ctx, cancel := context.WithTimeout(ctx, PooledStatementDeadline)
	return context.WithValue(ctx, cancelKey{}, cancel)
}

func (statementDeadline) end(ctx context.Context) {
	if cancel, ok := ctx.Value(cancelKey{}).(context.CancelFunc); ok {
		cancel()
	}
}

func (d statementDeadline) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	return d.start(ctx)
}

func (d statementDeadline) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryEndData) {
	d.end(ctx)
}

func (d statementDeadline) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return d.start(ctx)
}

func (statementDeadline) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}

func (d statementDeadline) TraceBatchEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchEndData) {
	d.end(ctx)
}

func (d statementDeadline) TraceCopyFromStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceCopyFromStartData) context.Context {
	return d.start(ctx)
}

func (d statementDeadline) TraceCopyFromEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceCopyFromEndData) {
	d.end(ctx)
}
