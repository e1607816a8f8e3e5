-- +goose Up

-- An email change remembers the session that asked for it: when the change
-- completes, that session lives on and every other one ends. A change can be
-- undone from the old address with an email_revert token.
ALTER TABLE one_time_tokens ADD COLUMN session_id uuid;
ALTER TABLE one_time_tokens DROP CONSTRAINT one_time_tokens_purpose_check;
ALTER TABLE one_time_tokens ADD CONSTRAINT one_time_tokens_purpose_check
    CHECK (purpose IN ('password_reset', 'email_verify', 'email_change', 'email_revert'));

-- +goose Down
DELETE FROM one_time_tokens WHERE purpose = 'email_revert';
ALTER TABLE one_time_tokens DROP CONSTRAINT one_time_tokens_purpose_check;
ALTER TABLE one_time_tokens ADD CONSTRAINT one_time_tokens_purpose_check
    CHECK (purpose IN ('password_reset', 'email_verify', 'email_change'));
ALTER TABLE one_time_tokens DROP COLUMN session_id;
