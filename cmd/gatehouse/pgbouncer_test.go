package main

import (
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/apitest"
)

// TestMigrate_BehindAPoolerRunsOnTheDirectURL: migrations hold a session
// advisory lock across their transactions, which a pooler in transaction
// mode would leave on a server connection other clients then use. With
// DATABASE_POOLER=transaction, `migrate` refuses to run without
// DATABASE_DIRECT_URL, and with it runs there alone: it succeeds while
// DATABASE_URL leads nowhere.
func TestMigrate_BehindAPoolerRunsOnTheDirectURL(t *testing.T) {
	t.Parallel()
	direct := apitest.EmptyDatabaseURL(t)
	bouncer := apitest.StartPgBouncer(t, direct, apitest.PgBouncerOptions{})

	out, err := gatehouse(t, []string{"DATABASE_URL=" + bouncer.URL, "DATABASE_POOLER=transaction"}, "migrate", "up")
	if err == nil || !strings.Contains(out, "DATABASE_DIRECT_URL must be set") {
		t.Fatalf("migrate through the pooler without DATABASE_DIRECT_URL: %v\n%s", err, out)
	}

	nowhere := "postgres://gatehouse@127.0.0.1:1/gatehouse?sslmode=disable&connect_timeout=2"
	env := []string{"DATABASE_URL=" + nowhere, "DATABASE_POOLER=transaction", "DATABASE_DIRECT_URL=" + direct}
	out, err = gatehouse(t, env, "migrate", "up")
	if err != nil || !strings.Contains(out, "applied 00001_init.sql") {
		t.Fatalf("migrate up on DATABASE_DIRECT_URL: %v\n%s", err, out)
	}
	out, err = gatehouse(t, env, "migrate", "status")
	if err != nil || strings.Contains(out, "pending") {
		t.Fatalf("status on DATABASE_DIRECT_URL: %v\n%s", err, out)
	}
}
