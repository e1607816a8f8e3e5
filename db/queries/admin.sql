-- name: ListLiveUsers :many
-- Keyset pagination, newest first: ids are UUIDv7. Pass the last id of the
-- previous page as before_id (the maximum UUID for the first page). Served by
-- users_live_id_idx (deleted_at IS NULL).
SELECT u.*, ARRAY(SELECT ur.role FROM user_roles ur WHERE ur.user_id = u.id ORDER BY ur.role)::text[] AS roles
FROM users u
WHERE u.deleted_at IS NULL
  AND u.id < sqlc.arg(before_id)
  AND (sqlc.narg(disabled)::boolean IS NULL OR (u.disabled_at IS NOT NULL) = sqlc.narg(disabled)::boolean)
  AND u.email LIKE sqlc.arg(email_pattern)
  AND (sqlc.narg(role)::text IS NULL OR EXISTS (SELECT 1 FROM user_roles r WHERE r.user_id = u.id AND r.role = sqlc.narg(role)::text))
  AND (sqlc.narg(created_after)::timestamptz IS NULL OR u.created_at >= sqlc.narg(created_after)::timestamptz)
  AND (sqlc.narg(created_before)::timestamptz IS NULL OR u.created_at < sqlc.narg(created_before)::timestamptz)
ORDER BY u.id DESC
LIMIT sqlc.arg(max_rows);

-- name: ListDeletedUsers :many
-- As ListLiveUsers, for soft-deleted users (users_deleted_id_idx).
SELECT u.*, ARRAY(SELECT ur.role FROM user_roles ur WHERE ur.user_id = u.id ORDER BY ur.role)::text[] AS roles
FROM users u
WHERE u.deleted_at IS NOT NULL
  AND u.id < sqlc.arg(before_id)
  AND u.email LIKE sqlc.arg(email_pattern)
  AND (sqlc.narg(role)::text IS NULL OR EXISTS (SELECT 1 FROM user_roles r WHERE r.user_id = u.id AND r.role = sqlc.narg(role)::text))
  AND (sqlc.narg(created_after)::timestamptz IS NULL OR u.created_at >= sqlc.narg(created_after)::timestamptz)
  AND (sqlc.narg(created_before)::timestamptz IS NULL OR u.created_at < sqlc.narg(created_before)::timestamptz)
ORDER BY u.id DESC
LIMIT sqlc.arg(max_rows);

-- name: GetAnyUser :one
-- Any user, deleted ones included (administration).
SELECT u.*, ARRAY(SELECT ur.role FROM user_roles ur WHERE ur.user_id = u.id ORDER BY ur.role)::text[] AS roles
FROM users u WHERE u.id = sqlc.arg(id);

-- name: GetAnyUserForUpdate :one
SELECT * FROM users WHERE id = sqlc.arg(id) FOR UPDATE;

-- name: UpdateUserName :exec
UPDATE users SET name = sqlc.narg(name), updated_at = now() WHERE id = sqlc.arg(id);

-- name: UpdateUserEmail :exec
-- Fails with 23505 when a live account holds the address.
UPDATE users SET email = sqlc.arg(email), email_verified_at = sqlc.narg(email_verified_at), updated_at = now()
WHERE id = sqlc.arg(id);

-- name: SetUserVerified :exec
UPDATE users SET email_verified_at = sqlc.narg(email_verified_at), updated_at = now() WHERE id = sqlc.arg(id);

-- name: SetUserDisabled :exec
UPDATE users SET disabled_at = sqlc.narg(disabled_at), updated_at = now() WHERE id = sqlc.arg(id);

-- name: SoftDeleteUser :exec
UPDATE users SET deleted_at = now(), updated_at = now() WHERE id = sqlc.arg(id) AND deleted_at IS NULL;

-- name: RestoreUser :exec
-- Fails with 23505 when the address was taken meanwhile.
UPDATE users SET deleted_at = NULL, updated_at = now() WHERE id = sqlc.arg(id);

-- name: DeleteUserRoles :exec
DELETE FROM user_roles WHERE user_id = sqlc.arg(user_id);

-- name: ListUserSessions :many
SELECT * FROM sessions
WHERE user_id = sqlc.arg(user_id) AND revoked_at IS NULL AND expires_at > now() AND idle_expires_at > now()
  AND id < sqlc.arg(before_id)
ORDER BY id DESC
LIMIT sqlc.arg(max_rows);

-- name: RevokeUserSession :execrows
-- Revokes a session only if it belongs to the user.
UPDATE sessions SET revoked_at = now(), revoked_reason = sqlc.arg(reason)
WHERE id = sqlc.arg(id) AND user_id = sqlc.arg(user_id) AND revoked_at IS NULL;

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
