-- +goose Up

-- When every token of a user was last invalidated (token_version bumped). The
-- revocation cache in Redis is rebuilt from this and sessions.revoked_at after
-- Redis loses its data.
ALTER TABLE users ADD COLUMN tokens_revoked_at timestamptz;
CREATE INDEX users_tokens_revoked_idx ON users (tokens_revoked_at) WHERE tokens_revoked_at IS NOT NULL;
CREATE INDEX sessions_revoked_idx ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;

-- +goose Down
DROP INDEX sessions_revoked_idx;
DROP INDEX users_tokens_revoked_idx;
ALTER TABLE users DROP COLUMN tokens_revoked_at;
