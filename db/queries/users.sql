-- name: CreateUser :one
-- Inserts a user unless a live account holds the email already; no row then.
INSERT INTO users (id, email, password_hash, name, email_verified_at)
VALUES (sqlc.arg(id), sqlc.arg(email), sqlc.arg(password_hash), sqlc.narg(name), sqlc.narg(email_verified_at))
ON CONFLICT (email) WHERE deleted_at IS NULL DO NOTHING
RETURNING *;

-- name: GetUserByID :one
SELECT * FROM users WHERE id = sqlc.arg(id) AND deleted_at IS NULL;

-- name: GetUserByEmail :one
SELECT * FROM users WHERE email = sqlc.arg(email) AND deleted_at IS NULL;

-- name: UpdatePasswordHash :exec
UPDATE users SET password_hash = sqlc.arg(password_hash), updated_at = now()
WHERE id = sqlc.arg(id);

-- name: BumpTokenVersion :one
-- Invalidates every access token of the user.
UPDATE users SET token_version = token_version + 1, tokens_revoked_at = now(), updated_at = now()
WHERE id = sqlc.arg(id)
RETURNING token_version;

-- name: RecentlyBumpedUsers :many
SELECT id, token_version FROM users WHERE tokens_revoked_at > sqlc.arg(since)::timestamptz;

-- name: SetEmailVerified :execrows
UPDATE users SET email_verified_at = now(), updated_at = now()
WHERE id = sqlc.arg(id) AND email = sqlc.arg(email) AND deleted_at IS NULL AND email_verified_at IS NULL;

-- name: GetLiveUserWithRoles :one
SELECT u.*, ARRAY(SELECT ur.role FROM user_roles ur WHERE ur.user_id = u.id ORDER BY ur.role)::text[] AS roles
FROM users u WHERE u.id = sqlc.arg(id) AND u.deleted_at IS NULL;

-- name: UserMailable :one
-- Whether a mail to this address for this account should still go out.
-- With a token version, also only while nothing revoked the account's
-- tokens since the mail was asked for (an email change asked for before a
-- password change or reset must not go on after it).
SELECT EXISTS (SELECT 1 FROM users WHERE id = sqlc.arg(id) AND deleted_at IS NULL AND disabled_at IS NULL
  AND (sqlc.arg(any_address)::boolean OR email = sqlc.arg(email))
  AND (sqlc.narg(token_version)::bigint IS NULL OR token_version = sqlc.narg(token_version)));
