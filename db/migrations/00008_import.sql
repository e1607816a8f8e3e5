-- +goose Up

-- Accounts moved in from another system (gatehouse import users, POST
-- /api/v1/users/import). external_id is the old system's id of the account
-- (the Flask service's integer id, an Auth0 user_id ...), kept so that
-- systems referencing the old ids can map them; unique among accounts.
ALTER TABLE users ADD COLUMN external_id text CHECK (length(external_id) BETWEEN 1 AND 255);
CREATE UNIQUE INDEX users_external_id_key ON users (external_id) WHERE external_id IS NOT NULL;
-- An import finds the deleted accounts it wrote by address (live ones are in
-- users_email_live_key).
CREATE INDEX users_deleted_email_idx ON users (email) WHERE deleted_at IS NOT NULL;

-- Live accounts still on a hash in another format than argon2id (an
-- imported hash not yet replaced by a login); '' is no password. The
-- operators' count of legacy hashes reads this index alone.
CREATE INDEX users_legacy_hash_idx ON users (id)
    WHERE deleted_at IS NULL AND password_hash <> '' AND password_hash NOT LIKE '$argon2id$%';

-- What the last import wrote for an account, so that importing the same
-- line again changes nothing, and a changed line that keeps its hash does
-- not undo a password changed (or rehashed) here since: SHA-256 of the
-- normalised line and of its password hash string.
CREATE TABLE user_imports (
    user_id     uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    line_digest bytea NOT NULL CHECK (length(line_digest) = 32),
    hash_digest bytea NOT NULL CHECK (length(hash_digest) = 32),
    imported_at timestamptz NOT NULL DEFAULT now()
);

INSERT INTO permissions (name, description) VALUES
    ('users:import', 'Import user accounts from another system, with their password hashes');
INSERT INTO role_permissions (role, permission) VALUES ('admin', 'users:import');

CREATE OR REPLACE VIEW user_profiles AS
SELECT u.id, u.email, u.name, u.email_verified_at, u.disabled_at, u.deleted_at, u.token_version,
       u.created_at, u.updated_at,
       ARRAY(SELECT ur.role FROM user_roles ur WHERE ur.user_id = u.id ORDER BY ur.role)::text[] AS roles,
       u.external_id
FROM users u;

-- +goose Down
DROP VIEW user_profiles;
CREATE VIEW user_profiles AS
SELECT u.id, u.email, u.name, u.email_verified_at, u.disabled_at, u.deleted_at, u.token_version,
       u.created_at, u.updated_at,
       ARRAY(SELECT ur.role FROM user_roles ur WHERE ur.user_id = u.id ORDER BY ur.role)::text[] AS roles
FROM users u;
DELETE FROM role_permissions WHERE permission = 'users:import';
DELETE FROM permissions WHERE name = 'users:import';
DROP TABLE user_imports;
DROP INDEX users_legacy_hash_idx;
DROP INDEX users_deleted_email_idx;
DROP INDEX users_external_id_key;
ALTER TABLE users DROP COLUMN external_id;
