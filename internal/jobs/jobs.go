package jobs

import (
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"

	"github.com/gatehouse/gatehouse/internal/outbox"
)

// Client is River's client: it inserts jobs (in the caller's transaction)
// and, when it has workers, works them.
type Client = river.Client[pgx.Tx]

// Config configures a client.
type Config struct {
	Log         *slog.Logger
	Workers     int           // how many jobs at once; 0: insert only
	RetryBase   time.Duration // first retry delay
	RescueAfter time.Duration // a job running this long is presumed dead (crashed worker) and retried
	// AttemptTimeout bounds one attempt (less than RescueAfter).
	AttemptTimeout time.Duration
	MaxAttempts    int
	// PollOnly looks for new jobs every second instead of waiting for
	// PostgreSQL's notifications: LISTEN needs a session of its own, which a
	// pooler in transaction mode does not give (DATABASE_POOLER=transaction).
	PollOnly bool
	// Mail sends the outbox's mails; Prune applies the audit retention every
	// hour. A client without them only inserts.
	Mail  *outbox.Worker
	Prune *PruneAuditWorker
}

// NewClient returns a River client on pool.
func NewClient(pool *pgxpool.Pool, c Config) (*Client, error) {
	cfg := &river.Config{
		Logger:      c.Log,
		MaxAttempts: c.MaxAttempts,
		RetryPolicy: RetryPolicy{Base: c.RetryBase, Max: time.Hour},
		// River's other uses of PostgreSQL are safe behind such a pooler:
		// its leader election is a row with an expiry (river_leader), its
		// advisory locks are transaction-scoped (pg_advisory_xact_lock), and
		// each of its statements stands alone or in one transaction.
		PollOnly: c.PollOnly,
	}
	if c.RescueAfter > 0 {
		cfg.RescueStuckJobsAfter = c.RescueAfter
	}
	if c.AttemptTimeout > 0 {
		cfg.JobTimeout = c.AttemptTimeout
	}
	if c.Workers > 0 && (c.Mail != nil || c.Prune != nil) {
		workers := river.NewWorkers()
		if c.Mail != nil {
			river.AddWorker(workers, c.Mail)
		}
		if c.Prune != nil {
			river.AddWorker(workers, c.Prune)
			cfg.PeriodicJobs = []*river.PeriodicJob{PruneAuditPeriodically(time.Hour)}
		}
		cfg.Workers = workers
		cfg.Queues = map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: c.Workers}}
	}
	client, err := river.NewClient(riverpgxv5.New(pool), cfg)
	if err != nil {
		return nil, fmt.Errorf("create job client: %w", err)
	}
	return client, nil
}

// RetryPolicy backs off exponentially: base, 2·base, 4·base ... at most max.
type RetryPolicy struct {
	Base, Max time.Duration
}

// NextRetry implements river.ClientRetryPolicy.
func (p RetryPolicy) NextRetry(job *rivertype.JobRow) time.Time {
	n := max(len(job.Errors), 1) - 1
	d := p.Max
	if n < 40 {
		d = min(time.Duration(float64(p.Base)*math.Pow(2, float64(n))), p.Max)
	}
	return time.Now().Add(d)
}
