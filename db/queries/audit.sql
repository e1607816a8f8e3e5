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
