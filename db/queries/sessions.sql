-- name: CreateSession :one
-- Opens a session only while the user is active and still at the token
-- version the caller read: no row when a revocation got in between. An
-- imported account whose owner opens a session is theirs from then on: no
-- import replaces its password (user_imports.claimed_at; a no-op for
-- accounts not imported).
WITH claimed AS (
    UPDATE user_imports SET claimed_at = now() WHERE user_id = sqlc.arg(user_id) AND claimed_at IS NULL
)
INSERT INTO sessions (id, user_id, user_agent, ip, idle_expires_at, expires_at, token_version, amr)
SELECT sqlc.arg(id), u.id, sqlc.arg(user_agent), sqlc.narg(ip), sqlc.arg(idle_expires_at), sqlc.arg(expires_at), u.token_version, sqlc.arg(amr)::text[]
FROM users u
WHERE u.id = sqlc.arg(user_id) AND u.token_version = sqlc.arg(token_version)
  AND u.disabled_at IS NULL AND u.deleted_at IS NULL
RETURNING *;

-- name: InsertRefreshToken :exec
INSERT INTO refresh_tokens (token_hash, session_id, parent_hash)
VALUES (sqlc.arg(token_hash), sqlc.arg(session_id), sqlc.narg(parent_hash));

-- name: GetRefreshTokenForUpdate :one
-- Locks the session and the token, so concurrent refreshes of one session
-- run one at a time and each sees the token as the previous one left it.
SELECT rt.token_hash, rt.parent_hash, rt.used_at, rt.spent,
       s.id AS session_id, s.user_id, s.idle_expires_at, s.expires_at, s.revoked_at,
       s.token_version AS session_token_version, s.amr,
       u.token_version, u.disabled_at, u.deleted_at
FROM refresh_tokens rt
JOIN sessions s ON s.id = rt.session_id
JOIN users u ON u.id = s.user_id
WHERE rt.token_hash = sqlc.arg(token_hash)
FOR UPDATE OF s, rt;

-- name: MarkRefreshTokenUsed :execrows
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
SELECT s.user_id, s.revoked_at, s.expires_at, s.token_version AS session_token_version,
       u.token_version, u.disabled_at, u.deleted_at
FROM sessions s JOIN users u ON u.id = s.user_id
WHERE s.id = sqlc.arg(id);

-- name: RecentlyRevokedSessions :many
SELECT id FROM sessions WHERE revoked_at > sqlc.arg(since)::timestamptz;

-- name: RevokeOtherSessions :execrows
UPDATE sessions SET revoked_at = now(), revoked_reason = sqlc.arg(reason)
WHERE user_id = sqlc.arg(user_id) AND id <> sqlc.arg(keep) AND revoked_at IS NULL;

-- name: SetSessionTokenVersion :exec
UPDATE sessions SET token_version = sqlc.arg(token_version) WHERE id = sqlc.arg(id);

-- name: RenewSession :one
-- The session that changed the password moves to the new token version and
-- lives on; no row when it was revoked meanwhile.
UPDATE sessions SET token_version = sqlc.arg(token_version), last_used_at = now(),
    idle_expires_at = LEAST(sqlc.arg(idle_expires_at)::timestamptz, expires_at)
WHERE id = sqlc.arg(id) AND revoked_at IS NULL
RETURNING expires_at;

-- name: SpendSessionRefreshTokens :exec
-- The refresh tokens a session holds stop working when it gets a new one;
-- those used moments ago lose their grace period too.
UPDATE refresh_tokens SET used_at = coalesce(used_at, now()), spent = true
WHERE session_id = sqlc.arg(session_id) AND NOT spent;

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
