// Package jobs runs gatehouse's background work on River, the job queue in
// PostgreSQL: the mail outbox's deliveries (package outbox) on every
// working instance, and periodic maintenance (the audit retention) on one
// instance at a time.
package jobs

import (
	"context"
	"log/slog"
	"time"

	"github.com/riverqueue/river"
)

// PruneAuditArgs asks for the deletion of audit events past retention.
type PruneAuditArgs struct{}

// Kind is River's job kind.
func (PruneAuditArgs) Kind() string { return "prune_audit_events" }

// AuditPruner deletes old audit events.
type AuditPruner interface {
	PruneAudit(ctx context.Context, before time.Time) (int64, error)
}

// PruneAuditWorker applies the audit retention.
type PruneAuditWorker struct {
	river.WorkerDefaults[PruneAuditArgs]
	Store     AuditPruner
	Retention time.Duration
	Log       *slog.Logger
}

// Work deletes the events older than the retention.
func (w *PruneAuditWorker) Work(ctx context.Context, _ *river.Job[PruneAuditArgs]) error {
	n, err := w.Store.PruneAudit(ctx, time.Now().Add(-w.Retention))
	if err != nil {
		return err
	}
	w.Log.InfoContext(ctx, "audit events pruned", "deleted", n, "retention", w.Retention.String())
	return nil
}

// PruneAuditPeriodically runs the pruning every interval, and once at start.
func PruneAuditPeriodically(interval time.Duration) *river.PeriodicJob {
	return river.NewPeriodicJob(river.PeriodicInterval(interval),
		func() (river.JobArgs, *river.InsertOpts) { return PruneAuditArgs{}, nil },
		&river.PeriodicJobOpts{RunOnStart: true})
}
