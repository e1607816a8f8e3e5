package auth

import (
	"context"
	"errors"

	"github.com/google/uuid"

	"github.com/gatehouse/gatehouse/internal/logging"
	"github.com/gatehouse/gatehouse/internal/mail"
	"github.com/gatehouse/gatehouse/internal/password"
	"github.com/gatehouse/gatehouse/internal/token"
)

// purposeReset is the one_time_tokens.purpose of password reset tokens.
const purposeReset = "password_reset"

func hashOneTimeToken(t string) []byte { return token.HashOpaque(t) }

// ChangePassword replaces the caller's password. Every other session ends
// and every access token dies (token version); the caller's session lives on
// through its refresh token.
func (s *Service) ChangePassword(ctx context.Context, p Principal, current, next string, c Client) error {
	u, err := s.store.UserByID(ctx, p.UserID)
	if err != nil {
		return err
	}
	if err := s.VerifyPassword(ctx, u, current); err != nil {
		return err
	}
	if err := s.CheckPassword(ctx, next, u.Email, u.Name); err != nil {
		return err
	}
	hash, err := s.hasher.Hash(ctx, next)
	if err != nil {
		return err
	}
	v, err := s.store.ChangePassword(ctx, u.ID, hash, p.SessionID, Mail{Kind: mail.PasswordChanged, UserID: u.ID, To: u.Email})
	if err != nil {
		return err
	}
	s.cacheWrite(ctx, func(ctx context.Context) error { return s.cache.RevokeUser(ctx, u.ID, v, s.cacheTTL) })
	s.audit(ctx, Event{Action: "user.password.changed", ActorID: &u.ID, SubjectID: &u.ID, Client: c, Details: map[string]any{"kept_session_id": p.SessionID}})
	return nil
}

// ForgotPassword mails a reset link to a live, enabled account. The answer
// is the same whether or not one exists.
func (s *Service) ForgotPassword(ctx context.Context, email string, c Client) error {
	email, err := s.ParseEmail(email)
	if err != nil {
		return nil // no account may hold it: answered like an unknown address, and nothing is mailed
	}
	u, err := s.store.UserByEmail(ctx, email)
	if errors.Is(err, ErrNotFound) {
		s.audit(ctx, Event{Action: "user.password.reset_requested", Client: c, Details: map[string]any{"email": logging.MaskEmail(email), "account": "none"}})
		return nil
	}
	if err != nil {
		return err
	}
	if u.DisabledAt != nil {
		return nil
	}
	if err := s.store.EnqueueMail(ctx, Mail{Kind: mail.PasswordReset, UserID: u.ID, To: u.Email}); err != nil {
		return err
	}
	s.audit(ctx, Event{Action: "user.password.reset_requested", SubjectID: &u.ID, Client: c, Details: map[string]any{"email": logging.MaskEmail(email)}})
	return nil
}

// ResetPassword sets a new password with a reset token: single use, every
// session ends, no automatic login.
func (s *Service) ResetPassword(ctx context.Context, token, pw string, c Client) error {
	h := hashOneTimeToken(token)
	t, err := s.store.PeekOneTimeToken(ctx, h, purposeReset)
	if err != nil {
		return err
	}
	if err := s.CheckPassword(ctx, pw, t.UserEmail, nil); err != nil {
		if ferr := s.store.FailOneTimeToken(ctx, h); ferr != nil {
			s.log.WarnContext(ctx, "count failed token use", "error", ferr)
		}
		return err
	}
	hash, err := s.hasher.Hash(ctx, pw)
	if err != nil {
		return err
	}
	uid, v, err := s.store.ResetPassword(ctx, h, hash, Mail{Kind: mail.PasswordResetDone, UserID: t.UserID, To: t.UserEmail})
	if err != nil {
		return err
	}
	s.cacheWrite(ctx, func(ctx context.Context) error { return s.cache.RevokeUser(ctx, uid, v, s.cacheTTL) })
	if s.lockout != nil {
		if err := s.lockout.Reset(ctx, t.UserEmail); err != nil {
			s.log.WarnContext(ctx, "reset login failures", "error", err)
		}
	}
	s.audit(ctx, Event{Action: "user.password.reset", ActorID: &uid, SubjectID: &uid, Client: c})
	return nil
}

// VerifyEmail confirms an address with a verification token.
func (s *Service) VerifyEmail(ctx context.Context, token string, c Client) error {
	uid, err := s.store.VerifyEmail(ctx, hashOneTimeToken(token))
	if err != nil {
		return err
	}
	s.audit(ctx, Event{Action: "user.email.verified", ActorID: &uid, SubjectID: &uid, Client: c})
	return nil
}

// ResendVerification mails a new verification link to a live, unverified
// account; the answer is the same for every address.
func (s *Service) ResendVerification(ctx context.Context, email string, c Client) error {
	email, err := s.ParseEmail(email)
	if err != nil {
		return nil // as for an unknown address
	}
	u, err := s.store.UserByEmail(ctx, email)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if u.EmailVerifiedAt != nil || u.DisabledAt != nil {
		return nil
	}
	if err := s.store.EnqueueMail(ctx, Mail{Kind: mail.VerifyEmail, UserID: u.ID, To: u.Email}); err != nil {
		return err
	}
	s.audit(ctx, Event{Action: "user.email.verification_resent", SubjectID: &u.ID, Client: c})
	return nil
}

// HashPassword hashes a password that passed the policy.
func (s *Service) HashPassword(ctx context.Context, pw string) (string, error) {
	return s.hasher.Hash(ctx, pw)
}

// VerifyPassword checks a signed-in user's password before a sensitive
// change (ErrInvalidCredentials when wrong). It counts against the same
// lockout as login, so a stolen access token cannot be used to guess it.
func (s *Service) VerifyPassword(ctx context.Context, u User, pw string) error {
	if wait := s.lockedFor(ctx, u.Email); wait > 0 {
		return &LockedError{RetryAfter: wait}
	}
	ok, _, err := s.hasher.Verify(ctx, pw, u.PasswordHash)
	if err != nil && !errors.Is(err, password.ErrMalformedHash) {
		return err
	}
	if !ok {
		s.audit(ctx, Event{Action: "user.password.check_failed", ActorID: &u.ID, SubjectID: &u.ID})
		return ErrInvalidCredentials
	}
	if s.lockout != nil {
		if err := s.lockout.Reset(ctx, u.Email); err != nil {
			s.log.WarnContext(ctx, "reset login failures", "error", err)
		}
	}
	return nil
}

// PublishUserRevocation spreads a revocation of every token of a user,
// already recorded in PostgreSQL, to every instance.
func (s *Service) PublishUserRevocation(ctx context.Context, id uuid.UUID, version int64) {
	s.cacheWrite(ctx, func(ctx context.Context) error { return s.cache.RevokeUser(ctx, id, version, s.cacheTTL) })
}

// PublishSessionRevocation spreads a session revocation, already recorded.
func (s *Service) PublishSessionRevocation(ctx context.Context, sid uuid.UUID) {
	s.cacheSessionRevoked(ctx, sid)
}

// Audit records a security event (best effort: a failure is logged).
func (s *Service) Audit(ctx context.Context, e Event) { s.audit(ctx, e) }
