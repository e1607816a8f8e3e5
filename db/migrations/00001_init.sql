-- +goose Up

-- Users. The email is stored normalised (trimmed, NFC, lower case) with the C
-- collation, so the unique index also serves "email LIKE 'prefix%'" searches.
-- Soft-deleted rows keep their email but leave the unique index, so the address
-- can be registered again.
CREATE TABLE users (
    id                uuid PRIMARY KEY,
    email             text COLLATE "C" NOT NULL CHECK (email = lower(email) AND length(email) BETWEEN 3 AND 254),
    email_verified_at timestamptz,
    password_hash     text NOT NULL,
    name              text CHECK (length(name) <= 100),
    disabled_at       timestamptz,
    token_version     bigint NOT NULL DEFAULT 1,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    deleted_at        timestamptz
);

-- One live account per address; also the index for login and prefix search.
CREATE UNIQUE INDEX users_email_live_key ON users (email) WHERE deleted_at IS NULL;
-- Keyset pagination of live users: ids are UUIDv7, so id order is creation order.
CREATE INDEX users_live_id_idx ON users (id) WHERE deleted_at IS NULL;
-- Listing and purging deleted users.
CREATE INDEX users_deleted_id_idx ON users (id) WHERE deleted_at IS NOT NULL;
-- Created-range filters on live users.
CREATE INDEX users_live_created_idx ON users (created_at, id) WHERE deleted_at IS NULL;

-- Roles and permissions are data, seeded here; the spec names the permissions
-- each operation needs.
CREATE TABLE permissions (
    name        text PRIMARY KEY,
    description text NOT NULL
);

CREATE TABLE roles (
    name        text PRIMARY KEY,
    description text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE role_permissions (
    role       text NOT NULL REFERENCES roles (name) ON DELETE CASCADE,
    permission text NOT NULL REFERENCES permissions (name) ON DELETE CASCADE,
    PRIMARY KEY (role, permission)
);

CREATE TABLE user_roles (
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role       text NOT NULL REFERENCES roles (name) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, role)
);
CREATE INDEX user_roles_role_idx ON user_roles (role, user_id);

INSERT INTO permissions (name, description) VALUES
    ('users:read',      'List and read user accounts'),
    ('users:write',     'Create, update, disable and restore user accounts'),
    ('users:delete',    'Soft-delete user accounts'),
    ('roles:read',      'List roles and their permissions'),
    ('roles:assign',    'Change the roles of a user'),
    ('sessions:revoke', 'Revoke every session of a user'),
    ('audit:read',      'Read the audit log');

INSERT INTO roles (name, description) VALUES
    ('admin', 'Full administrative access'),
    ('user',  'A regular account: its own profile and sessions only');

INSERT INTO role_permissions (role, permission)
SELECT 'admin', name FROM permissions;

-- One session per login. Revocation is recorded here (the system of record);
-- Redis only caches it.
CREATE TABLE sessions (
    id              uuid PRIMARY KEY,
    user_id         uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    user_agent      text NOT NULL DEFAULT '' CHECK (length(user_agent) <= 512),
    ip              inet,
    created_at      timestamptz NOT NULL DEFAULT now(),
    last_used_at    timestamptz NOT NULL DEFAULT now(),
    idle_expires_at timestamptz NOT NULL,
    expires_at      timestamptz NOT NULL,
    revoked_at      timestamptz,
    revoked_reason  text
);
CREATE INDEX sessions_user_live_idx ON sessions (user_id, id) WHERE revoked_at IS NULL;
CREATE INDEX sessions_expires_idx ON sessions (expires_at);

-- Refresh tokens: only the SHA-256 of the token is stored. parent_hash links
-- the rotation chain; used_at marks a rotated token (reuse detection).
CREATE TABLE refresh_tokens (
    token_hash  bytea PRIMARY KEY CHECK (length(token_hash) = 32),
    session_id  uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    parent_hash bytea,
    created_at  timestamptz NOT NULL DEFAULT now(),
    used_at     timestamptz
);
CREATE INDEX refresh_tokens_session_idx ON refresh_tokens (session_id);

-- Password reset, email verification and email change tokens: hash only,
-- single use, purpose-bound, expiring, with an attempt counter.
CREATE TABLE one_time_tokens (
    token_hash bytea PRIMARY KEY CHECK (length(token_hash) = 32),
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose    text NOT NULL CHECK (purpose IN ('password_reset', 'email_verify', 'email_change')),
    email      text COLLATE "C",
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz,
    attempts   integer NOT NULL DEFAULT 0
);
CREATE INDEX one_time_tokens_user_live_idx ON one_time_tokens (user_id, purpose) WHERE used_at IS NULL;

-- Security events. No secrets; PII masked before it gets here.
CREATE TABLE audit_events (
    id         uuid PRIMARY KEY,
    action     text NOT NULL,
    actor_id   uuid,
    subject_id uuid,
    ip         inet,
    user_agent text,
    request_id text,
    details    jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_events_created_idx ON audit_events (created_at);
CREATE INDEX audit_events_actor_idx ON audit_events (actor_id, id) WHERE actor_id IS NOT NULL;
CREATE INDEX audit_events_subject_idx ON audit_events (subject_id, id) WHERE subject_id IS NOT NULL;
CREATE INDEX audit_events_action_idx ON audit_events (action, id);

-- +goose Down
DROP TABLE audit_events;
DROP TABLE one_time_tokens;
DROP TABLE refresh_tokens;
DROP TABLE sessions;
DROP TABLE user_roles;
DROP TABLE role_permissions;
DROP TABLE roles;
DROP TABLE permissions;
DROP TABLE users;
