-- +goose Up

-- A refresh token spent by a password change (its session got a new one)
-- is refused: no grace period hands out another pair for it, and presenting
-- it is not taken for theft (the session lives on with its new token).
ALTER TABLE refresh_tokens ADD COLUMN spent boolean NOT NULL DEFAULT false;

-- +goose Down
ALTER TABLE refresh_tokens DROP COLUMN spent;
