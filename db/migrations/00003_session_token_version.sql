-- +goose Up

-- The user's token version a session was opened (or last confirmed) at. A
-- session older than the user's current version is dead even if no one
-- revoked it: a login that raced a logout-all or a password reset cannot
-- keep a session alive through its refresh token.
ALTER TABLE sessions ADD COLUMN token_version bigint NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE sessions DROP COLUMN token_version;
