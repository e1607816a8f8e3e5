-- name: CreateUser :one
-- Inserts a user unless a live account holds the email already; no row then.
INSERT INTO users (id, email, password_hash, name, email_verified_at)
VALUES (sqlc.arg(id), sqlc.arg(email), sqlc.arg(password_hash), sqlc.narg(name), sqlc.narg(email_verified_at))
ON CONFLICT (email) WHERE deleted_at IS NULL DO NOTHING
RETURNING id, email, name, email_verified_at, disabled_at, deleted_at, token_version, created_at, updated_at, external_id;

-- name: GetUserByID :one
SELECT * FROM users WHERE id = sqlc.arg(id) AND deleted_at IS NULL;

-- name: GetUserByEmail :one
SELECT * FROM users WHERE email = sqlc.arg(email) AND deleted_at IS NULL;

-- name: GetUserProfileByExternalID :one
-- Any user, deleted ones included, by its id in the system it was imported
-- from (users_external_id_key).
SELECT * FROM user_profiles WHERE external_id = sqlc.arg(external_id);

-- name: GetUserProfile :one
-- Any user, deleted ones included, with its roles and without its password hash.
SELECT * FROM user_profiles WHERE id = sqlc.arg(id);

-- name: GetMe :one
-- GetUserProfile with the user's MFA status, in one statement: GET /users/me
-- is the hottest authenticated read.
SELECT sqlc.embed(user_profiles),
  EXISTS (SELECT 1 FROM mfa_factors f WHERE f.user_id = user_profiles.id AND f.confirmed_at IS NOT NULL) AS mfa_enabled,
  (SELECT count(*) FROM mfa_recovery_codes c WHERE c.user_id = user_profiles.id AND c.used_at IS NULL) AS recovery_codes_remaining
FROM user_profiles WHERE user_profiles.id = sqlc.arg(id);

-- name: LockUser :one
-- Locks a user (deleted ones included) until the transaction ends, so that a
-- change decided on what is read next cannot be overtaken by another one.
-- Read the user after this statement: a statement that waited for the lock
-- still sees the other tables (the roles) as they were when it started.
SELECT id FROM users WHERE id = sqlc.arg(id) FOR UPDATE;

-- name: SaveUser :one
-- Writes the fields an administrative change decides, on a locked user
-- (the store calls it only when something changes).
-- With end_sessions, also invalidates every access token of the user.
UPDATE users SET
  name = sqlc.narg(name),
  email = sqlc.arg(email),
  email_verified_at = sqlc.narg(email_verified_at),
  disabled_at = sqlc.narg(disabled_at),
  deleted_at = sqlc.narg(deleted_at),
  token_version = token_version + CASE WHEN sqlc.arg(end_sessions)::boolean THEN 1 ELSE 0 END,
  tokens_revoked_at = CASE WHEN sqlc.arg(end_sessions)::boolean THEN now() ELSE tokens_revoked_at END,
  updated_at = now()
WHERE id = sqlc.arg(id)
RETURNING id, email, name, email_verified_at, disabled_at, deleted_at, token_version, created_at, updated_at, external_id;

-- name: ListLiveUsers :many
-- Keyset pagination, newest first: ids are UUIDv7. Pass the last id of the
-- previous page as before_id (the maximum UUID for the first page). Served by
-- users_live_id_idx (deleted_at IS NULL).
SELECT u.* FROM user_profiles u
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
SELECT u.* FROM user_profiles u
WHERE u.deleted_at IS NOT NULL
  AND u.id < sqlc.arg(before_id)
  AND u.email LIKE sqlc.arg(email_pattern)
  AND (sqlc.narg(role)::text IS NULL OR EXISTS (SELECT 1 FROM user_roles r WHERE r.user_id = u.id AND r.role = sqlc.narg(role)::text))
  AND (sqlc.narg(created_after)::timestamptz IS NULL OR u.created_at >= sqlc.narg(created_after)::timestamptz)
  AND (sqlc.narg(created_before)::timestamptz IS NULL OR u.created_at < sqlc.narg(created_before)::timestamptz)
ORDER BY u.id DESC
LIMIT sqlc.arg(max_rows);

-- name: UpdatePasswordHash :exec
UPDATE users SET password_hash = sqlc.arg(password_hash), updated_at = now()
WHERE id = sqlc.arg(id);

-- name: RehashPassword :execrows
-- Replaces the hash a login verified with a new hash of the same password,
-- only if it is still the stored one: a password changed, reset or
-- imported meanwhile is not overwritten with the old password.
UPDATE users SET password_hash = sqlc.arg(new_hash), updated_at = now()
WHERE id = sqlc.arg(id) AND password_hash = sqlc.arg(old_hash);

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

-- name: UserMailable :one
-- Whether a mail to this address for this account should still go out.
-- With a token version, also only while nothing revoked the account's
-- tokens since the mail was asked for (an email change asked for before a
-- password change or reset must not go on after it).
SELECT EXISTS (SELECT 1 FROM users WHERE id = sqlc.arg(id) AND deleted_at IS NULL AND disabled_at IS NULL
  AND (sqlc.arg(any_address)::boolean OR email = sqlc.arg(email))
  AND (sqlc.narg(token_version)::bigint IS NULL OR token_version = sqlc.narg(token_version)));

-- name: UpdateUserEmail :exec
-- Fails with 23505 when a live account holds the address.
UPDATE users SET email = sqlc.arg(email), email_verified_at = sqlc.narg(email_verified_at), updated_at = now()
WHERE id = sqlc.arg(id);
