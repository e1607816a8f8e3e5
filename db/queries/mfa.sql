-- name: TokenFacts :one
-- What an access token says besides the session: the permissions of the
-- user's roles, split between roles that need a multi-factor session
-- (mfa_roles) and the others, and whether the account has MFA.
SELECT
  EXISTS (SELECT 1 FROM mfa_factors f WHERE f.user_id = sqlc.arg(user_id) AND f.confirmed_at IS NOT NULL) AS mfa_enabled,
  EXISTS (SELECT 1 FROM user_roles ur WHERE ur.user_id = sqlc.arg(user_id) AND ur.role = ANY (sqlc.arg(mfa_roles)::text[])) AS mfa_role,
  coalesce((SELECT array_agg(DISTINCT rp.permission ORDER BY rp.permission) FROM user_roles ur JOIN role_permissions rp ON rp.role = ur.role
            WHERE ur.user_id = sqlc.arg(user_id) AND ur.role <> ALL (sqlc.arg(mfa_roles)::text[])), '{}')::text[] AS permissions,
  coalesce((SELECT array_agg(DISTINCT rp.permission ORDER BY rp.permission) FROM user_roles ur JOIN role_permissions rp ON rp.role = ur.role
            WHERE ur.user_id = sqlc.arg(user_id) AND ur.role = ANY (sqlc.arg(mfa_roles)::text[])), '{}')::text[] AS mfa_permissions;

-- name: MFAStatus :one
SELECT
  EXISTS (SELECT 1 FROM mfa_factors f WHERE f.user_id = sqlc.arg(user_id) AND f.confirmed_at IS NOT NULL) AS enabled,
  (SELECT count(*) FROM mfa_recovery_codes c WHERE c.user_id = sqlc.arg(user_id) AND c.used_at IS NULL) AS recovery_codes_remaining;

-- name: DeletePendingFactors :exec
DELETE FROM mfa_factors WHERE user_id = sqlc.arg(user_id) AND confirmed_at IS NULL;

-- name: InsertFactor :exec
INSERT INTO mfa_factors (id, user_id, kind, secret, key_id, expires_at)
VALUES (sqlc.arg(id), sqlc.arg(user_id), sqlc.arg(kind), sqlc.arg(secret), sqlc.arg(key_id), sqlc.arg(expires_at));

-- name: GetTOTPFactor :one
-- The active TOTP factor (confirmed) or, with pending, the live enrolment.
SELECT id, secret, key_id, last_step FROM mfa_factors
WHERE user_id = sqlc.arg(user_id) AND kind = 'totp'
  AND CASE WHEN sqlc.arg(pending)::boolean THEN confirmed_at IS NULL AND expires_at > now() ELSE confirmed_at IS NOT NULL END
ORDER BY created_at DESC
LIMIT 1;

-- name: AcceptTOTPStep :execrows
-- A code is accepted once: of concurrent uses of one code, or of codes of
-- an older step, only one UPDATE finds last_step below its step.
UPDATE mfa_factors SET last_step = sqlc.arg(step)
WHERE id = sqlc.arg(id) AND user_id = sqlc.arg(user_id) AND confirmed_at IS NOT NULL AND last_step < sqlc.arg(step);

-- name: ConfirmFactor :execrows
UPDATE mfa_factors SET confirmed_at = now(), expires_at = NULL, last_step = sqlc.arg(step)
WHERE id = sqlc.arg(id) AND user_id = sqlc.arg(user_id) AND confirmed_at IS NULL AND expires_at > now();

-- name: UseRecoveryCode :execrows
-- Single use: of concurrent uses exactly one UPDATE finds the code unused.
UPDATE mfa_recovery_codes SET used_at = now()
WHERE user_id = sqlc.arg(user_id) AND code_hash = sqlc.arg(code_hash) AND used_at IS NULL;

-- name: DeleteRecoveryCodes :exec
DELETE FROM mfa_recovery_codes WHERE user_id = sqlc.arg(user_id);

-- name: InsertRecoveryCodes :exec
INSERT INTO mfa_recovery_codes (user_id, code_hash)
SELECT sqlc.arg(user_id), unnest(sqlc.arg(code_hashes)::bytea[]);

-- name: DeleteFactors :execrows
-- Every factor, active or pending.
DELETE FROM mfa_factors WHERE user_id = sqlc.arg(user_id);

-- name: ListFactorSecrets :many
-- Every stored secret, for re-encryption under the current key.
SELECT id, secret, key_id FROM mfa_factors WHERE key_id <> sqlc.arg(current_key_id);

-- name: UpdateFactorSecret :exec
UPDATE mfa_factors SET secret = sqlc.arg(secret), key_id = sqlc.arg(key_id) WHERE id = sqlc.arg(id);

-- name: InsertChallenge :exec
INSERT INTO mfa_challenges (challenge_hash, user_id, token_version, device, expires_at)
VALUES (sqlc.arg(challenge_hash), sqlc.arg(user_id), sqlc.arg(token_version), sqlc.arg(device), sqlc.arg(expires_at));

-- name: TakeChallengeAttempt :one
-- Counts an attempt on a usable challenge of a live, enabled account before
-- the code is checked: parallel guesses on one challenge each take one of
-- its few attempts, however many arrive at once.
UPDATE mfa_challenges c SET attempts = c.attempts + 1
FROM users u
WHERE c.challenge_hash = sqlc.arg(challenge_hash) AND c.used_at IS NULL AND c.expires_at > now()
  AND c.attempts < sqlc.arg(max_attempts) AND u.id = c.user_id AND u.deleted_at IS NULL AND u.disabled_at IS NULL
RETURNING c.user_id, c.token_version, c.device, u.email;

-- name: ConsumeChallenge :one
-- Single use: of concurrent verifications exactly one gets the row.
-- The attempt was counted by TakeChallengeAttempt.
UPDATE mfa_challenges SET used_at = now()
WHERE challenge_hash = sqlc.arg(challenge_hash) AND used_at IS NULL AND expires_at > now() AND attempts <= sqlc.arg(max_attempts)
RETURNING user_id, token_version;

-- name: CancelChallenges :exec
UPDATE mfa_challenges SET used_at = now() WHERE user_id = sqlc.arg(user_id) AND used_at IS NULL;

-- name: SetSessionAMR :one
-- A step-up: the session records the factor, moves to the account's token
-- version, and gets a new refresh token (set by the caller).
UPDATE sessions SET amr = sqlc.arg(amr)::text[], last_used_at = now(),
    idle_expires_at = LEAST(sqlc.arg(idle_expires_at)::timestamptz, expires_at)
WHERE id = sqlc.arg(id) AND user_id = sqlc.arg(user_id) AND revoked_at IS NULL
RETURNING expires_at, token_version;

-- name: PruneChallenges :exec
DELETE FROM mfa_challenges WHERE expires_at < sqlc.arg(before)::timestamptz;

-- name: PrunePendingFactors :exec
DELETE FROM mfa_factors WHERE confirmed_at IS NULL AND expires_at < sqlc.arg(before)::timestamptz;
