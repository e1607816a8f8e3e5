package telemetry_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/gatehouse/gatehouse/internal/telemetry"
)

type slots struct{ total, busy int }

func (s slots) Slots() int                  { return s.total }
func (s slots) Busy() int                   { return s.busy }
func (s slots) FailureFloor() time.Duration { return 250 * time.Millisecond }

// TestMetrics_HooksOfTheMainSession: the hashing slots, the hash wait, the
// revocation layers, the outbox and a dependency are exposed under the
// names README documents, and the whole exposition passes promtool.
func TestMetrics_HooksOfTheMainSession(t *testing.T) {
	m := telemetry.NewMetrics("v1.2.3")
	if err := m.RegisterHashSlots(slots{total: 4, busy: 3}); err != nil {
		t.Fatal(err)
	}
	if err := m.RegisterOutbox(func(context.Context) (int64, error) { return 7, nil }); err != nil {
		t.Fatal(err)
	}
	if err := m.RegisterDependency("redis", func(context.Context) error { return errors.New("down") }); err != nil {
		t.Fatal(err)
	}
	m.ObserveHashWait(30 * time.Millisecond)
	obs := telemetry.NewObserver(m, nil)
	obs.RevocationChecked(telemetry.LayerLocal)
	obs.RevocationChecked(telemetry.LayerLocal)
	obs.RevocationChecked(telemetry.LayerPostgres)
	ctx, end := obs.StartHashing(context.Background(), "hash") // tracing off: a no-op
	end()
	if ctx == nil {
		t.Fatal("StartHashing returned no context")
	}

	want := `
# HELP gatehouse_password_hash_slots Hashing slots: the most password hashes computed at once.
# TYPE gatehouse_password_hash_slots gauge
gatehouse_password_hash_slots 4
# HELP gatehouse_password_hash_slots_busy Hashing slots computing a hash now.
# TYPE gatehouse_password_hash_slots_busy gauge
gatehouse_password_hash_slots_busy 3
# HELP gatehouse_login_failure_floor_seconds The least time a failed login takes: the slowest imported password hash verified in this hour or the last (0: none).
# TYPE gatehouse_login_failure_floor_seconds gauge
gatehouse_login_failure_floor_seconds 0.25
# HELP gatehouse_outbox_queued_mails Mails waiting in the outbox (available, scheduled or waiting for a retry); counted up to 100000.
# TYPE gatehouse_outbox_queued_mails gauge
gatehouse_outbox_queued_mails 7
# HELP gatehouse_dependency_up Whether a dependency (postgres, redis) answered a ping at scrape time (1) or not (0).
# TYPE gatehouse_dependency_up gauge
gatehouse_dependency_up{dependency="redis"} 0
# HELP gatehouse_revocation_checks_total Revocation checks of access tokens by the layer that answered: local, redis, postgres.
# TYPE gatehouse_revocation_checks_total counter
gatehouse_revocation_checks_total{layer="local"} 2
gatehouse_revocation_checks_total{layer="postgres"} 1
gatehouse_revocation_checks_total{layer="redis"} 0
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want),
		"gatehouse_password_hash_slots", "gatehouse_password_hash_slots_busy", "gatehouse_login_failure_floor_seconds", "gatehouse_outbox_queued_mails",
		"gatehouse_dependency_up", "gatehouse_revocation_checks_total"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(m.Registry(), "gatehouse_password_hash_wait_seconds"); n != 1 {
		t.Errorf("hash wait histogram: %d series", n)
	}

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `gatehouse_build_info{goversion="go`) {
		t.Fatalf("GET /metrics: %d %.300s", rec.Code, rec.Body.String())
	}
	tool := os.Getenv("PROMTOOL")
	if tool == "" {
		var err error
		if tool, err = exec.LookPath("promtool"); err != nil {
			t.Fatal("promtool not found: `make test` installs it (scripts/devservices.sh promtool-path); or set PROMTOOL")
		}
	}
	cmd := exec.CommandContext(t.Context(), tool, "check", "metrics") //nolint:gosec // G204, G702: the tool the test runner names
	cmd.Stdin = strings.NewReader(rec.Body.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}

// TestMetrics_TwoAppsInOneProcess: each App has its own registry, so two
// of them (tests, several instances in one process) neither collide nor
// count each other's traffic.
func TestMetrics_TwoAppsInOneProcess(t *testing.T) {
	a, b := telemetry.NewMetrics("a"), telemetry.NewMetrics("b")
	a.LoginOutcome(telemetry.LoginSuccess)
	a.LoginOutcome(telemetry.LoginSuccess)
	if got := loginSuccesses(t, a); got != 2 {
		t.Errorf("App a counted %v successful logins, want 2", got)
	}
	if got := loginSuccesses(t, b); got != 0 {
		t.Errorf("App b counted %v successful logins of App a", got)
	}
}

func loginSuccesses(t *testing.T, m *telemetry.Metrics) float64 {
	t.Helper()
	families, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "gatehouse_login_attempts_total" {
			continue
		}
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == "outcome" && l.GetValue() == telemetry.LoginSuccess {
					return s.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatal("no gatehouse_login_attempts_total{outcome=\"success\"}")
	return 0
}
