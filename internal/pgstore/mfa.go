package pgstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	db "github.com/gatehouse/gatehouse/gen/db"
	"github.com/gatehouse/gatehouse/internal/account"
	"github.com/gatehouse/gatehouse/internal/auth"
)

// TokenFacts reads what an access token says of the user, in one query.
func (s *Store) TokenFacts(ctx context.Context, id uuid.UUID, mfaRoles []string) (auth.TokenFacts, error) {
	if mfaRoles == nil {
		mfaRoles = []string{}
	}
	r, err := s.q.TokenFacts(ctx, db.TokenFactsParams{UserID: id, MfaRoles: mfaRoles})
	if err != nil {
		return auth.TokenFacts{}, fmt.Errorf("token facts: %w", err)
	}
	return auth.TokenFacts{Permissions: r.Permissions, MFAPermissions: r.MfaPermissions, MFAEnabled: r.MfaEnabled, MFARole: r.MfaRole}, nil
}

// MFAStatus reads whether the user has MFA and the recovery codes left.
func (s *Store) MFAStatus(ctx context.Context, id uuid.UUID) (auth.MFAStatus, error) {
	r, err := s.q.MFAStatus(ctx, id)
	if err != nil {
		return auth.MFAStatus{}, fmt.Errorf("mfa status: %w", err)
	}
	return auth.MFAStatus{Enabled: r.Enabled, RecoveryCodesRemaining: int(r.RecoveryCodesRemaining)}, nil
}

// StartEnrolment replaces the user's pending enrolment.
func (s *Store) StartEnrolment(ctx context.Context, f auth.NewFactor) error {
	return s.inTx(ctx, func(tx pgx.Tx, q *db.Queries) error {
		if err := q.DeletePendingFactors(ctx, f.UserID); err != nil {
			return fmt.Errorf("drop pending enrolments: %w", err)
		}
		if err := q.InsertFactor(ctx, db.InsertFactorParams{ID: f.ID, UserID: f.UserID, Kind: "totp", Secret: f.Sealed, KeyID: f.KeyID, ExpiresAt: &f.ExpiresAt}); err != nil {
			return fmt.Errorf("store enrolment: %w", err)
		}
		return s.record(ctx, tx, q, []account.Event{f.Event}, nil)
	})
}

// TOTPFactor reads the active (or live pending) TOTP factor.
func (s *Store) TOTPFactor(ctx context.Context, userID uuid.UUID, pending bool) (auth.TOTPFactor, error) {
	r, err := s.q.GetTOTPFactor(ctx, db.GetTOTPFactorParams{UserID: userID, Pending: pending})
	if err != nil {
		return auth.TOTPFactor{}, notFound(err)
	}
	return auth.TOTPFactor{ID: r.ID, Sealed: r.Secret, KeyID: r.KeyID, LastStep: r.LastStep}, nil
}

// acceptProof accepts a checked second factor in the transaction of the
// change it allows: one UPDATE each, so that of concurrent uses of one code
// exactly one succeeds.
func acceptProof(ctx context.Context, q *db.Queries, uid uuid.UUID, p auth.Proof) error {
	var n int64
	var err error
	if p.Recovery() {
		n, err = q.UseRecoveryCode(ctx, db.UseRecoveryCodeParams{UserID: uid, CodeHash: p.RecoveryHash})
	} else {
		n, err = q.AcceptTOTPStep(ctx, db.AcceptTOTPStepParams{ID: p.FactorID, UserID: uid, Step: p.Step})
	}
	if err != nil {
		return fmt.Errorf("accept second factor: %w", err)
	}
	if n != 1 {
		return auth.ErrInvalidMFACode
	}
	return nil
}

// keepSession moves the caller's session to version v with a new refresh
// token and amr, spending the ones it held.
func keepSession(ctx context.Context, q *db.Queries, uid uuid.UUID, v int64, amr []string, keep auth.KeptSession) (time.Time, error) {
	expires, err := q.RenewSession(ctx, db.RenewSessionParams{ID: keep.ID, TokenVersion: v, IdleExpiresAt: keep.IdleExpiresAt})
	if errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, auth.ErrInvalidToken
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("keep session: %w", err)
	}
	if _, err := q.SetSessionAMR(ctx, db.SetSessionAMRParams{ID: keep.ID, UserID: uid, Amr: amr, IdleExpiresAt: keep.IdleExpiresAt}); err != nil {
		return time.Time{}, notFound(fmt.Errorf("record session amr: %w", err))
	}
	if err := q.SpendSessionRefreshTokens(ctx, keep.ID); err != nil {
		return time.Time{}, fmt.Errorf("spend refresh tokens: %w", err)
	}
	if err := q.InsertRefreshToken(ctx, db.InsertRefreshTokenParams{TokenHash: keep.RefreshHash, SessionID: keep.ID}); err != nil {
		return time.Time{}, fmt.Errorf("store refresh token: %w", err)
	}
	return expires, nil
}

// endOtherSessions bumps the token version and ends every session but
// keep, which lives on at the new version.
func endOtherSessions(ctx context.Context, q *db.Queries, c auth.MFAChange, reason string) (int64, time.Time, error) {
	v, err := q.BumpTokenVersion(ctx, c.UserID)
	if err != nil {
		return 0, time.Time{}, notFound(err)
	}
	if _, err := q.RevokeOtherSessions(ctx, db.RevokeOtherSessionsParams{UserID: c.UserID, Keep: c.Keep.ID, Reason: &reason}); err != nil {
		return 0, time.Time{}, fmt.Errorf("revoke sessions: %w", err)
	}
	if err := q.CancelChallenges(ctx, c.UserID); err != nil {
		return 0, time.Time{}, fmt.Errorf("cancel challenges: %w", err)
	}
	expires, err := keepSession(ctx, q, c.UserID, v, c.AMR, c.Keep)
	return v, expires, err
}

// ConfirmEnrolment activates the pending factor with its first code.
func (s *Store) ConfirmEnrolment(ctx context.Context, c auth.MFAChange) (int64, time.Time, error) {
	var v int64
	var expires time.Time
	err := s.inTx(ctx, func(tx pgx.Tx, q *db.Queries) error {
		n, err := q.ConfirmFactor(ctx, db.ConfirmFactorParams{ID: c.Proof.FactorID, UserID: c.UserID, Step: c.Proof.Step})
		if isUniqueViolation(err) {
			return auth.ErrMFAEnabled // another enrolment won meanwhile
		}
		if err != nil {
			return fmt.Errorf("confirm factor: %w", err)
		}
		if n != 1 {
			return auth.ErrMFANotEnabled // expired or replaced meanwhile
		}
		if err := replaceRecoveryCodes(ctx, q, c.UserID, c.RecoveryHashes); err != nil {
			return err
		}
		if v, expires, err = endOtherSessions(ctx, q, c, "mfa_enabled"); err != nil {
			return err
		}
		return s.record(ctx, tx, q, []account.Event{c.Event}, c.Mails)
	})
	return v, expires, err
}

func replaceRecoveryCodes(ctx context.Context, q *db.Queries, uid uuid.UUID, hashes [][]byte) error {
	if err := q.DeleteRecoveryCodes(ctx, uid); err != nil {
		return fmt.Errorf("drop recovery codes: %w", err)
	}
	if err := q.InsertRecoveryCodes(ctx, db.InsertRecoveryCodesParams{UserID: uid, CodeHashes: hashes}); err != nil {
		return fmt.Errorf("store recovery codes: %w", err)
	}
	return nil
}

// CreateChallenge stores a login challenge with its event.
func (s *Store) CreateChallenge(ctx context.Context, c auth.NewChallenge) error {
	return s.inTx(ctx, func(tx pgx.Tx, q *db.Queries) error {
		if err := q.InsertChallenge(ctx, db.InsertChallengeParams{ChallengeHash: c.Hash, UserID: c.UserID, TokenVersion: c.TokenVersion, Device: c.Device, ExpiresAt: c.ExpiresAt}); err != nil {
			return fmt.Errorf("store challenge: %w", err)
		}
		return s.record(ctx, tx, q, []account.Event{c.Event}, nil)
	})
}

// TakeChallengeAttempt counts an attempt on a usable challenge.
func (s *Store) TakeChallengeAttempt(ctx context.Context, hash []byte, maxAttempts int) (auth.Challenge, error) {
	r, err := s.q.TakeChallengeAttempt(ctx, db.TakeChallengeAttemptParams{ChallengeHash: hash, MaxAttempts: int32(maxAttempts)}) //nolint:gosec // G115: a handful
	if errors.Is(err, pgx.ErrNoRows) {
		return auth.Challenge{}, auth.ErrInvalidMFAChallenge
	}
	if err != nil {
		return auth.Challenge{}, fmt.Errorf("find challenge: %w", err)
	}
	return auth.Challenge{UserID: r.UserID, TokenVersion: r.TokenVersion, Device: r.Device, Email: r.Email}, nil
}

// CompleteChallenge consumes the challenge, accepts the proof and opens the
// session in one transaction.
func (s *Store) CompleteChallenge(ctx context.Context, hash []byte, maxAttempts int, p auth.Proof, n auth.NewSession) error {
	return s.inTx(ctx, func(tx pgx.Tx, q *db.Queries) error {
		ch, err := q.ConsumeChallenge(ctx, db.ConsumeChallengeParams{ChallengeHash: hash, MaxAttempts: int32(maxAttempts)}) //nolint:gosec // G115: a handful
		if errors.Is(err, pgx.ErrNoRows) {
			return auth.ErrInvalidMFAChallenge
		}
		if err != nil {
			return fmt.Errorf("consume challenge: %w", err)
		}
		if ch.UserID != n.UserID {
			return auth.ErrInvalidMFAChallenge
		}
		if err := acceptProof(ctx, q, n.UserID, p); err != nil {
			return err
		}
		return s.openSession(ctx, tx, q, n)
	})
}

// StepUp records the second factor on the caller's session.
func (s *Store) StepUp(ctx context.Context, c auth.MFAChange) (int64, time.Time, error) {
	var r db.SetSessionAMRRow
	err := s.inTx(ctx, func(tx pgx.Tx, q *db.Queries) error {
		if err := acceptProof(ctx, q, c.UserID, c.Proof); err != nil {
			return err
		}
		var err error
		r, err = q.SetSessionAMR(ctx, db.SetSessionAMRParams{ID: c.Keep.ID, UserID: c.UserID, Amr: c.AMR, IdleExpiresAt: c.Keep.IdleExpiresAt})
		if errors.Is(err, pgx.ErrNoRows) {
			return auth.ErrInvalidToken
		}
		if err != nil {
			return fmt.Errorf("step up session: %w", err)
		}
		if err := q.SpendSessionRefreshTokens(ctx, c.Keep.ID); err != nil {
			return fmt.Errorf("spend refresh tokens: %w", err)
		}
		if err := q.InsertRefreshToken(ctx, db.InsertRefreshTokenParams{TokenHash: c.Keep.RefreshHash, SessionID: c.Keep.ID}); err != nil {
			return fmt.Errorf("store refresh token: %w", err)
		}
		return s.record(ctx, tx, q, []account.Event{c.Event}, c.Mails)
	})
	return r.TokenVersion, r.ExpiresAt, err
}

// DisableMFA removes every factor and recovery code.
func (s *Store) DisableMFA(ctx context.Context, c auth.MFAChange) (int64, time.Time, error) {
	var v int64
	var expires time.Time
	err := s.inTx(ctx, func(tx pgx.Tx, q *db.Queries) error {
		if err := acceptProof(ctx, q, c.UserID, c.Proof); err != nil {
			return err
		}
		if _, err := q.DeleteFactors(ctx, c.UserID); err != nil {
			return fmt.Errorf("delete factors: %w", err)
		}
		if err := q.DeleteRecoveryCodes(ctx, c.UserID); err != nil {
			return fmt.Errorf("delete recovery codes: %w", err)
		}
		var err error
		if v, expires, err = endOtherSessions(ctx, q, c, "mfa_disabled"); err != nil {
			return err
		}
		return s.record(ctx, tx, q, []account.Event{c.Event}, c.Mails)
	})
	return v, expires, err
}

// RegenerateRecoveryCodes replaces the recovery codes.
func (s *Store) RegenerateRecoveryCodes(ctx context.Context, c auth.MFAChange) error {
	return s.inTx(ctx, func(tx pgx.Tx, q *db.Queries) error {
		if err := acceptProof(ctx, q, c.UserID, c.Proof); err != nil {
			return err
		}
		if err := replaceRecoveryCodes(ctx, q, c.UserID, c.RecoveryHashes); err != nil {
			return err
		}
		return s.record(ctx, tx, q, []account.Event{c.Event}, c.Mails)
	})
}

// ResetMFA removes the user's MFA and ends every session.
func (s *Store) ResetMFA(ctx context.Context, id uuid.UUID, e account.Event, mails ...account.Mail) (int64, error) {
	var v int64
	err := s.inTx(ctx, func(tx pgx.Tx, q *db.Queries) error {
		st, err := q.MFAStatus(ctx, id)
		if err != nil {
			return fmt.Errorf("mfa status: %w", err)
		}
		if !st.Enabled {
			return auth.ErrMFANotEnabled
		}
		if _, err := q.DeleteFactors(ctx, id); err != nil {
			return fmt.Errorf("delete factors: %w", err)
		}
		if err := q.DeleteRecoveryCodes(ctx, id); err != nil {
			return fmt.Errorf("delete recovery codes: %w", err)
		}
		if err := q.CancelChallenges(ctx, id); err != nil {
			return fmt.Errorf("cancel challenges: %w", err)
		}
		if v, err = q.BumpTokenVersion(ctx, id); err != nil {
			return notFound(err)
		}
		if _, err := q.RevokeUserSessions(ctx, db.RevokeUserSessionsParams{UserID: id, Reason: ptr("mfa_reset")}); err != nil {
			return fmt.Errorf("revoke sessions: %w", err)
		}
		return s.record(ctx, tx, q, []account.Event{e}, mails)
	})
	return v, err
}

// RekeyFactors re-seals the secrets that another key than current sealed,
// each in a transaction of its own that locks nothing else.
func (s *Store) RekeyFactors(ctx context.Context, current string, reseal func(auth.TOTPFactor) ([]byte, string, error)) (int, error) {
	rows, err := s.q.ListFactorSecrets(ctx, current)
	if err != nil {
		return 0, fmt.Errorf("list factors to re-seal: %w", err)
	}
	for i, r := range rows {
		sealed, kid, err := reseal(auth.TOTPFactor{ID: r.ID, Sealed: r.Secret, KeyID: r.KeyID})
		if err != nil {
			return i, fmt.Errorf("re-seal factor %s: %w", r.ID, err)
		}
		if err := s.q.UpdateFactorSecret(ctx, db.UpdateFactorSecretParams{ID: r.ID, Secret: sealed, KeyID: kid}); err != nil {
			return i, fmt.Errorf("store re-sealed factor %s: %w", r.ID, err)
		}
	}
	return len(rows), nil
}

// isUniqueViolation reports a unique violation of the one-active-factor index.
func isUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505" && pe.ConstraintName == "mfa_factors_active_idx"
}
