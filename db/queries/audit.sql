-- name: InsertAuditEvent :exec
INSERT INTO audit_events (id, action, actor_id, subject_id, ip, user_agent, request_id, details)
VALUES (sqlc.arg(id), sqlc.arg(action), sqlc.narg(actor_id), sqlc.narg(subject_id), sqlc.narg(ip),
        sqlc.narg(user_agent), sqlc.narg(request_id), sqlc.arg(details));
