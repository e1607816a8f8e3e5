-- name: ImportMatches :many
-- The accounts the lines of an import batch may be: by id, and by address
-- among live accounts and among deleted accounts an import wrote (a
-- deleted line imported again finds its account), and the accounts an
-- import made with the address that have another one now. With what the
-- last import wrote for each (NULL digests: never imported), what an update
-- could change, and whether the account still has the hash an import gave
-- it and its owner has not logged in; locked until the batch commits.
-- Each arm is an index lookup (the primary key, users_email_live_key,
-- users_deleted_email_idx): an OR of them would scan the table.
WITH m AS (
    SELECT id FROM users WHERE id = ANY (sqlc.arg(ids)::uuid[])
    UNION
    SELECT id FROM users WHERE email = ANY (sqlc.arg(emails)::text[]) AND deleted_at IS NULL
    UNION
    SELECT id FROM users WHERE email = ANY (sqlc.arg(emails)::text[]) AND deleted_at IS NOT NULL
    UNION
    SELECT user_id FROM user_imports WHERE email = ANY (sqlc.arg(emails)::text[])
)
SELECT u.id, u.email, u.deleted_at, u.name, u.email_verified_at, u.disabled_at, u.external_id,
       i.line_digest, i.hash_digest, i.email AS imported_email,
       coalesce(i.claimed_at IS NULL AND sha256(convert_to(u.password_hash, 'UTF8')) = i.hash_digest, false)::boolean AS holds_imported_hash,
       ARRAY(SELECT ur.role FROM user_roles ur WHERE ur.user_id = u.id)::text[] AS roles,
       ARRAY(SELECT DISTINCT rp.permission FROM user_roles ur JOIN role_permissions rp ON rp.role = ur.role
             WHERE ur.user_id = u.id ORDER BY rp.permission)::text[] AS permissions
FROM users u
JOIN m ON m.id = u.id
LEFT JOIN user_imports i ON i.user_id = u.id
WHERE u.deleted_at IS NULL OR i.user_id IS NOT NULL OR u.id = ANY (sqlc.arg(ids)::uuid[])
ORDER BY u.id
FOR UPDATE OF u;

-- name: ImportNewUsers :many
-- Creates the accounts of an import batch (a JSON array of rows), with
-- their roles and import digests, in one statement. A row whose id, live
-- address or external id an account holds already is skipped: only the ids
-- created are returned.
WITH r AS (
    SELECT (e->>'id')::uuid AS id, e->>'email' AS email, e->>'name' AS name,
           e->>'password_hash' AS password_hash, (e->>'email_verified_at')::timestamptz AS email_verified_at,
           (e->>'disabled_at')::timestamptz AS disabled_at, (e->>'deleted_at')::timestamptz AS deleted_at,
           (e->>'created_at')::timestamptz AS created_at, e->>'external_id' AS external_id,
           ARRAY(SELECT jsonb_array_elements_text(e->'roles')) AS roles,
           decode(e->>'line_digest', 'hex') AS line_digest, decode(e->>'hash_digest', 'hex') AS hash_digest
    FROM jsonb_array_elements(sqlc.arg(accounts)::jsonb) AS e
), created AS (
    INSERT INTO users (id, email, name, password_hash, email_verified_at, disabled_at, deleted_at, created_at, updated_at, external_id)
    SELECT r.id, r.email, r.name, r.password_hash, r.email_verified_at, r.disabled_at, r.deleted_at,
           r.created_at, now(), r.external_id
    FROM r
    ON CONFLICT DO NOTHING
    RETURNING id
), granted AS (
    INSERT INTO user_roles (user_id, role)
    SELECT r.id, unnest(r.roles) FROM r JOIN created USING (id)
), recorded AS (
    INSERT INTO user_imports (user_id, line_digest, hash_digest, email)
    SELECT r.id, r.line_digest, r.hash_digest, r.email FROM r JOIN created USING (id)
)
SELECT id FROM created;

-- name: ImportUpdateUser :one
-- Writes an imported line over an existing account (gatehouse import
-- --update): a NULL password_hash keeps the current one. An import verifies,
-- disables or deletes, and never undoes what was decided here (unverify,
-- enable, restore). With end_sessions, also invalidates every access token
-- of the user.
UPDATE users SET
  name = sqlc.narg(name),
  email_verified_at = CASE WHEN sqlc.arg(verified)::boolean THEN coalesce(email_verified_at, now()) ELSE email_verified_at END,
  disabled_at = CASE WHEN sqlc.arg(disabled)::boolean THEN coalesce(disabled_at, now()) ELSE disabled_at END,
  deleted_at = CASE WHEN sqlc.arg(deleted)::boolean THEN coalesce(deleted_at, now()) ELSE deleted_at END,
  external_id = sqlc.narg(external_id),
  password_hash = coalesce(sqlc.narg(password_hash), password_hash),
  token_version = token_version + CASE WHEN sqlc.arg(end_sessions)::boolean THEN 1 ELSE 0 END,
  tokens_revoked_at = CASE WHEN sqlc.arg(end_sessions)::boolean THEN now() ELSE tokens_revoked_at END,
  updated_at = now()
WHERE id = sqlc.arg(id)
RETURNING token_version;

-- name: RecordImport :exec
INSERT INTO user_imports (user_id, line_digest, hash_digest, email)
VALUES (sqlc.arg(user_id), sqlc.arg(line_digest), sqlc.arg(hash_digest), sqlc.arg(email))
ON CONFLICT (user_id) DO UPDATE SET line_digest = excluded.line_digest, email = excluded.email,
    -- the digest of the hash the account has from an import, kept when
    -- the line's hash was not written
    hash_digest = CASE WHEN sqlc.arg(set_hash)::boolean THEN excluded.hash_digest ELSE user_imports.hash_digest END,
    imported_at = now();

-- name: CreateRoles :exec
INSERT INTO roles (name, description)
SELECT unnest(sqlc.arg(names)::text[]), 'Created by an import'
ON CONFLICT DO NOTHING;

-- name: CountLegacyHashes :many
-- Live accounts by the format of their password hash, argon2id and
-- accounts without a password left out (users_legacy_hash_idx).
SELECT CASE
         WHEN password_hash LIKE '$argon2i$%' THEN 'argon2i'
         WHEN password_hash LIKE '$2%' THEN 'bcrypt'
         WHEN password_hash LIKE '$pbkdf2%' THEN 'pbkdf2'
         WHEN password_hash LIKE 'pbkdf2:%' THEN 'werkzeug-pbkdf2'
         WHEN password_hash LIKE 'scrypt:%' THEN 'werkzeug-scrypt'
         ELSE 'other'
       END::text AS format,
       count(*) AS accounts
FROM users
WHERE deleted_at IS NULL AND password_hash <> '' AND password_hash NOT LIKE '$argon2id$%'
GROUP BY 1
ORDER BY 1;

-- name: CountPasswordless :one
-- Live accounts without a password (imported without a hash, not yet set).
SELECT count(*) FROM users WHERE deleted_at IS NULL AND password_hash = '';

-- name: CountLegacyAccounts :one
-- Live accounts on a hash other than argon2id, up to max_counted (the
-- metric; users_legacy_hash_idx).
SELECT count(*) FROM (
    SELECT 1 FROM users
    WHERE deleted_at IS NULL AND password_hash <> '' AND password_hash NOT LIKE '$argon2id$%'
    LIMIT sqlc.arg(max_counted)
) AS legacy;
