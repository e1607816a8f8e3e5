-- name: CancelOneTimeTokens :exec
-- A newer token cancels the older ones of the same purpose.
UPDATE one_time_tokens SET used_at = now()
WHERE user_id = sqlc.arg(user_id) AND purpose = sqlc.arg(purpose) AND used_at IS NULL;

-- name: InsertOneTimeToken :exec
INSERT INTO one_time_tokens (token_hash, user_id, purpose, email, expires_at)
VALUES (sqlc.arg(token_hash), sqlc.arg(user_id), sqlc.arg(purpose), sqlc.narg(email), sqlc.arg(expires_at));

-- name: PeekOneTimeToken :one
-- A usable token and its account, without consuming it.
SELECT t.user_id, t.email AS token_email, u.email AS user_email
FROM one_time_tokens t JOIN users u ON u.id = t.user_id
WHERE t.token_hash = sqlc.arg(token_hash) AND t.purpose = sqlc.arg(purpose)
  AND t.used_at IS NULL AND t.expires_at > now() AND t.attempts < sqlc.arg(max_attempts)
  AND u.deleted_at IS NULL;

-- name: ConsumeOneTimeToken :one
-- Single use: of concurrent consumers exactly one gets the row.
UPDATE one_time_tokens SET used_at = now()
WHERE token_hash = sqlc.arg(token_hash) AND purpose = sqlc.arg(purpose)
  AND used_at IS NULL AND expires_at > now() AND attempts < sqlc.arg(max_attempts)
RETURNING user_id, email;

-- name: FailOneTimeToken :exec
UPDATE one_time_tokens SET attempts = attempts + 1 WHERE token_hash = sqlc.arg(token_hash);
