package apitest

import (
	"encoding/json"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// QueuedMail is a mail the outbox holds (a River job), as tests read it.
type QueuedMail struct {
	Kind   string    `json:"mail"`
	UserID uuid.UUID `json:"user_id"`
	To     string    `json:"to"`
}

// QueuedMails lists the mails queued for user, oldest first.
func QueuedMails(t testing.TB, pool *pgxpool.Pool, userID uuid.UUID) []QueuedMail {
	t.Helper()
	rows, err := pool.Query(t.Context(), `SELECT args FROM river_job WHERE kind = 'mail' ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	all, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		t.Fatal(err)
	}
	var out []QueuedMail
	for _, b := range all {
		var m QueuedMail
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		if m.UserID == userID {
			out = append(out, m)
		}
	}
	return out
}

// AuditActions lists the actions of the audit events about subject, oldest
// first.
func AuditActions(t testing.TB, pool *pgxpool.Pool, subject uuid.UUID) []string {
	t.Helper()
	rows, err := pool.Query(t.Context(), `SELECT action FROM audit_events WHERE subject_id = $1 ORDER BY id`, subject)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return out
}
