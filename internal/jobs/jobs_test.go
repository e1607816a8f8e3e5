package jobs_test

import (
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river/rivertype"

	"github.com/gatehouse/gatehouse/internal/apitest"
	"github.com/gatehouse/gatehouse/internal/jobs"
	"github.com/gatehouse/gatehouse/internal/pgstore"
)

// TestPruneAudit_AWorkingClientAppliesTheRetentionAtStart: the retention
// runs when a working client starts (then hourly), and deletes only the
// events past it.
func TestPruneAudit_AWorkingClientAppliesTheRetentionAtStart(t *testing.T) {
	t.Parallel()
	pool := apitest.Pool(t, apitest.DatabaseURL(t))
	old, recent := uuid.New(), uuid.New()
	if _, err := pool.Exec(t.Context(), `INSERT INTO audit_events (id, action, created_at) VALUES ($1, 'old', now() - interval '40 days'), ($2, 'recent', now())`, old, recent); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	client, err := jobs.NewClient(pool, jobs.Config{
		Log: log, Workers: 1, MaxAttempts: 3, RetryBase: time.Second,
		Prune: &jobs.PruneAuditWorker{Store: pgstore.New(pool, nil), Retention: 30 * 24 * time.Hour, Log: log},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := client.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Stop(t.Context()) })
	deadline := time.Now().Add(20 * time.Second)
	for {
		var left []uuid.UUID
		if err := pool.QueryRow(t.Context(), `SELECT coalesce(array_agg(id), '{}') FROM audit_events WHERE id = ANY($1)`, []uuid.UUID{old, recent}).Scan(&left); err != nil {
			t.Fatal(err)
		}
		if len(left) == 1 && left[0] == recent {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("events left %v, want only the recent one", left)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRetryPolicy_BacksOffExponentiallyUpToTheMaximum.
func TestRetryPolicy_BacksOffExponentiallyUpToTheMaximum(t *testing.T) {
	t.Parallel()
	p := jobs.RetryPolicy{Base: time.Second, Max: time.Minute}
	for _, tc := range []struct {
		failures int
		want     time.Duration
	}{{1, time.Second}, {2, 2 * time.Second}, {4, 8 * time.Second}, {7, time.Minute}, {100, time.Minute}} {
		t.Run(tc.want.String(), func(t *testing.T) {
			t.Parallel()
			job := &rivertype.JobRow{Errors: make([]rivertype.AttemptError, tc.failures)}
			got := time.Until(p.NextRetry(job))
			if got > tc.want || got < tc.want-time.Second {
				t.Fatalf("after %d failures: retry in %v, want %v", tc.failures, got, tc.want)
			}
		})
	}
}
