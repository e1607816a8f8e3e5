-- name: CancelOneTimeTokens :exec
-- A newer token cancels the older ones of the same purpose.
UPDATE one_time_tokens SET used_at = now()
WHERE user_id = sqlc.arg(user_id) AND purpose = sqlc.arg(purpose) AND used_at IS NULL;

-- name: InsertOneTimeToken :exec
INSERT INTO one_time_tokens (token_hash, user_id, purpose, email, expires_at, session_id)
VALUES (sqlc.arg(token_hash), sqlc.arg(user_id), sqlc.arg(purpose), sqlc.narg(email), sqlc.arg(expires_at), sqlc.narg(session_id));

-- name: PeekOneTimeToken :one
-- A usable token and its account, without consuming it. Reset and
-- verification tokens are bound to the address they were sent to: they die
-- when the account's address changes, and on disabled or deleted accounts.
SELECT t.user_id, t.email AS token_email, u.email AS user_email
FROM one_time_tokens t JOIN users u ON u.id = t.user_id
WHERE t.token_hash = sqlc.arg(token_hash) AND t.purpose = sqlc.arg(purpose)
  AND t.used_at IS NULL AND t.expires_at > now() AND t.attempts < sqlc.arg(max_attempts)
  AND u.deleted_at IS NULL AND u.disabled_at IS NULL
  AND (t.purpose = 'email_change' OR t.email = u.email);

-- name: ConsumeOneTimeToken :one
-- Single use: of concurrent consumers exactly one gets the row. Same
-- binding as PeekOneTimeToken.
UPDATE one_time_tokens t SET used_at = now()
FROM users u
WHERE t.token_hash = sqlc.arg(token_hash) AND t.purpose = sqlc.arg(purpose)
  AND t.used_at IS NULL AND t.expires_at > now() AND t.attempts < sqlc.arg(max_attempts)
  AND u.id = t.user_id AND u.deleted_at IS NULL AND u.disabled_at IS NULL
  AND (t.purpose IN ('email_change', 'email_revert') OR t.email = u.email)
RETURNING t.user_id, t.email, t.session_id, u.email AS user_email;

-- name: FailOneTimeToken :exec
UPDATE one_time_tokens SET attempts = attempts + 1 WHERE token_hash = sqlc.arg(token_hash);

-- name: CancelAllOneTimeTokens :exec
-- Every pending reset, verification and email-change token of the user dies:
-- its credentials or address just changed. The undo link of an email change
-- survives: whoever took the account over must not be able to cancel it.
UPDATE one_time_tokens SET used_at = now()
WHERE user_id = sqlc.arg(user_id) AND used_at IS NULL AND purpose <> 'email_revert';

-- name: EmailReserved :one
-- Whether an address is held for the undo of another account's email
-- change: nobody else may take it while the undo link works.
SELECT EXISTS (SELECT 1 FROM one_time_tokens
  WHERE purpose = 'email_revert' AND email = sqlc.arg(email) AND used_at IS NULL AND expires_at > now()
    AND user_id <> sqlc.arg(user_id));
