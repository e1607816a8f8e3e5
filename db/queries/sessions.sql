-- name: CreateSession :one
INSERT INTO sessions (id, user_id, user_agent, ip, idle_expires_at, expires_at)
VALUES (sqlc.arg(id), sqlc.arg(user_id), sqlc.arg(user_agent), sqlc.narg(ip), sqlc.arg(idle_expires_at), sqlc.arg(expires_at))
RETURNING *;

-- name: InsertRefreshToken :exec
INSERT INTO refresh_tokens (token_hash, session_id, parent_hash)
VALUES (sqlc.arg(token_hash), sqlc.arg(session_id), sqlc.narg(parent_hash));

-- name: GetRefreshTokenForUpdate :one
-- Locks the session, so concurrent refreshes of one session run one at a time.
SELECT rt.token_hash, rt.parent_hash, rt.used_at,
       s.id AS session_id, s.user_id, s.idle_expires_at, s.expires_at, s.revoked_at,
       u.token_version, u.disabled_at, u.deleted_at
FROM refresh_tokens rt
JOIN sessions s ON s.id = rt.session_id
JOIN users u ON u.id = s.user_id
WHERE rt.token_hash = sqlc.arg(token_hash)
FOR UPDATE OF s;

-- name: MarkRefreshTokenUsed :exec
UPDATE refresh_tokens SET used_at = sqlc.arg(used_at) WHERE token_hash = sqlc.arg(token_hash) AND used_at IS NULL;

-- name: TouchSession :exec
UPDATE sessions SET last_used_at = now(), idle_expires_at = sqlc.arg(idle_expires_at)
WHERE id = sqlc.arg(id);

-- name: RevokeSession :execrows
UPDATE sessions SET revoked_at = now(), revoked_reason = sqlc.arg(reason)
WHERE id = sqlc.arg(id) AND revoked_at IS NULL;

-- name: RevokeUserSessions :execrows
UPDATE sessions SET revoked_at = now(), revoked_reason = sqlc.arg(reason)
WHERE user_id = sqlc.arg(user_id) AND revoked_at IS NULL;

-- name: SessionState :one
-- What an access token check needs when the Redis fast path cannot answer.
SELECT s.user_id, s.revoked_at, s.expires_at, u.token_version, u.disabled_at, u.deleted_at
FROM sessions s JOIN users u ON u.id = s.user_id
WHERE s.id = sqlc.arg(id);

-- name: RecentlyRevokedSessions :many
SELECT id FROM sessions WHERE revoked_at > sqlc.arg(since)::timestamptz;

-- name: RevokeOtherSessions :execrows
UPDATE sessions SET revoked_at = now(), revoked_reason = sqlc.arg(reason)
WHERE user_id = sqlc.arg(user_id) AND id <> sqlc.arg(keep) AND revoked_at IS NULL;
