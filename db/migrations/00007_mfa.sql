-- +goose Up

-- Second factors of an account: a list, so that other kinds (WebAuthn) can
-- join TOTP later. A TOTP secret is stored encrypted (AES-256-GCM; key_id
-- names the configured key that sealed it, so keys can rotate), never in
-- clear. An enrolment is unconfirmed (confirmed_at NULL) until the user
-- proves a code; it dies at expires_at. last_step is the last TOTP time step
-- accepted: a code of that step or an earlier one is never accepted again,
-- whatever Redis knows (replay protection lives in the record).
CREATE TABLE mfa_factors (
    id           uuid PRIMARY KEY,
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind         text NOT NULL CHECK (kind IN ('totp')),
    secret       bytea NOT NULL,
    key_id       text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz,
    confirmed_at timestamptz,
    last_step    bigint NOT NULL DEFAULT 0,
    CHECK ((confirmed_at IS NULL) <> (expires_at IS NULL))
);
-- One active factor of a kind per account.
CREATE UNIQUE INDEX mfa_factors_active_idx ON mfa_factors (user_id, kind) WHERE confirmed_at IS NOT NULL;
CREATE INDEX mfa_factors_user_idx ON mfa_factors (user_id);

-- Recovery codes: random (80 bits), so an HMAC-SHA-256 under a server key
-- is enough (a slow hash protects guessable secrets). Single use: consumed
-- by one UPDATE ... WHERE used_at IS NULL.
CREATE TABLE mfa_recovery_codes (
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash  bytea NOT NULL CHECK (length(code_hash) = 32),
    created_at timestamptz NOT NULL DEFAULT now(),
    used_at    timestamptz,
    PRIMARY KEY (user_id, code_hash)
);

-- The second step of a login: issued only after a correct password, short
-- lived, single use, dies after a few wrong codes. device is the known device
-- of the password step ('' for none), whose lockout bucket counts wrong codes.
CREATE TABLE mfa_challenges (
    challenge_hash bytea PRIMARY KEY CHECK (length(challenge_hash) = 32),
    user_id        uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_version  bigint NOT NULL,
    device         text NOT NULL DEFAULT '',
    created_at     timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL,
    used_at        timestamptz,
    attempts       integer NOT NULL DEFAULT 0
);
CREATE INDEX mfa_challenges_user_idx ON mfa_challenges (user_id);
CREATE INDEX mfa_challenges_expires_idx ON mfa_challenges (expires_at);

-- How a session's user authenticated (RFC 8176 values): refreshes keep it,
-- a step-up adds "otp".
ALTER TABLE sessions ADD COLUMN amr text[] NOT NULL DEFAULT '{pwd}';

INSERT INTO permissions (name, description) VALUES
    ('mfa:reset', 'Remove the multi-factor authentication of a user (lost device)');
INSERT INTO role_permissions (role, permission) VALUES ('admin', 'mfa:reset');

-- +goose Down
DELETE FROM role_permissions WHERE permission = 'mfa:reset';
DELETE FROM permissions WHERE name = 'mfa:reset';
ALTER TABLE sessions DROP COLUMN amr;
DROP TABLE mfa_challenges;
DROP TABLE mfa_recovery_codes;
DROP TABLE mfa_factors;
