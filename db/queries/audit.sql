-- name: InsertAuditEvent :exec
INSERT INTO audit_events (id, action, actor_id, subject_id, ip, user_agent, request_id, details)
VALUES (sqlc.arg(id), sqlc.arg(action), sqlc.narg(actor_id), sqlc.narg(subject_id), sqlc.narg(ip),
        sqlc.narg(user_agent), sqlc.narg(request_id), sqlc.arg(details));

-- name: SettleAuditEvent :exec
-- Completes an event recorded before what it led to was known: a mail asked
-- for by address names its account and result only when the outbox works it.
UPDATE audit_events
SET subject_id = sqlc.narg(subject_id),
    details = details || jsonb_build_object('result', sqlc.arg(result)::text)
WHERE id = sqlc.arg(id);

-- name: ListAuditEvents :many
SELECT * FROM audit_events
WHERE id < sqlc.arg(before_id)
  AND (sqlc.narg(actor_id)::uuid IS NULL OR actor_id = sqlc.narg(actor_id)::uuid)
  AND (sqlc.narg(subject_id)::uuid IS NULL OR subject_id = sqlc.narg(subject_id)::uuid)
  AND (sqlc.narg(action)::text IS NULL OR action = sqlc.narg(action)::text)
  AND (sqlc.narg(since)::timestamptz IS NULL OR created_at >= sqlc.narg(since)::timestamptz)
  AND (sqlc.narg(until)::timestamptz IS NULL OR created_at < sqlc.narg(until)::timestamptz)
ORDER BY id DESC
LIMIT sqlc.arg(max_rows);

-- name: PruneAuditEvents :execrows
DELETE FROM audit_events WHERE created_at < sqlc.arg(before);
