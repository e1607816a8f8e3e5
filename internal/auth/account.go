package auth

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/gatehouse/gatehouse/internal/account"
	"github.com/gatehouse/gatehouse/internal/logging"
	"github.com/gatehouse/gatehouse/internal/mail"
	"github.com/gatehouse/gatehouse/internal/password"
	"github.com/gatehouse/gatehouse/internal/token"
)

func hashOneTimeToken(t string) []byte { return token.HashOpaque(t) }

// ChangePassword replaces the caller's password. Every other session ends
// and every access token dies (token version); the caller's session lives on
// with the fresh token pair returned.
func (s *Service) ChangePassword(ctx context.Context, p account.Principal, current, next string, c account.Client) (Tokens, error) {
	u, err := s.store.UserByID(ctx, p.UserID)
	if err != nil {
		return Tokens{}, err
	}
	if err := s.VerifyPassword(ctx, u, current); err != nil {
		return Tokens{}, err
	}
	if err := s.CheckPassword(ctx, next, u.Email, u.Name); err != nil {
		return Tokens{}, err
	}
	hash, err := s.hasher.Hash(ctx, next)
	if err != nil {
		return Tokens{}, err
	}
	refresh, refreshHash, err := token.NewOpaque()
	if err != nil {
		return Tokens{}, err
	}
	now := s.now()
	v, expires, err := s.store.ChangePassword(ctx, u.ID, hash,
		KeptSession{ID: p.SessionID, RefreshHash: refreshHash, IdleExpiresAt: now.Add(s.set.RefreshIdleTTL)},
		s.event(ctx, account.Event{Action: account.ActionPasswordChanged, ActorID: &u.ID, SubjectID: &u.ID, Client: c, Details: map[string]any{"kept_session_id": p.SessionID}}),
		notices(u, account.Mail{Kind: mail.PasswordChanged, UserID: u.ID, To: u.Email})...)
	if err != nil {
		return Tokens{}, err
	}
	s.PublishUserRevocation(ctx, u.ID, v)
	// The caller's access token carries the old version and is refused from
	// now on: the answer carries the pair that continues its session.
	t, err := s.issue(ctx, u.ID, p.SessionID, v, amrOf(p))
	if err != nil {
		return Tokens{}, err
	}
	t.Refresh, t.RefreshExpiresIn = refresh, min(s.set.RefreshIdleTTL, expires.Sub(now)).Truncate(time.Second)
	return t, nil
}

// ForgotPassword queues a reset mail for the address; the outbox sends it
// if a live, enabled account has the address. The request does the same work
// for every address (one event, one job), so neither its answer nor its
// duration tells whether one does.
func (s *Service) ForgotPassword(ctx context.Context, email string, c account.Client) error {
	return s.requestMail(ctx, mail.PasswordReset, account.ActionPasswordResetRequested, email, c)
}

// ResetPassword sets a new password with a reset token: single use, every
// session ends, no automatic login.
func (s *Service) ResetPassword(ctx context.Context, token, pw string, c account.Client) error {
	h := hashOneTimeToken(token)
	t, err := s.store.PeekOneTimeToken(ctx, h, account.PurposeReset)
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
	uid, v, err := s.store.ResetPassword(ctx, h, hash, s.event(ctx, account.Event{Action: account.ActionPasswordReset, ActorID: &t.UserID, SubjectID: &t.UserID, Client: c}),
		account.Mail{Kind: mail.PasswordResetDone, UserID: t.UserID, To: t.UserEmail})
	if err != nil {
		return err
	}
	s.PublishUserRevocation(ctx, uid, v)
	if s.lockout != nil {
		// The owner proved control of the address: guesses so far are moot.
		for _, b := range []Bucket{{Account: s.AccountKey(t.UserEmail)}, recheckBucket(uid)} {
			if err := s.lockout.Reset(ctx, b); err != nil {
				s.log.WarnContext(ctx, "reset login failures", "error", err)
			}
		}
	}
	return nil
}

// VerifyEmail confirms an address with a verification token.
// It also completes an email change (every session but the one that asked
// for it ends) and undoes one from the old address (every session ends).
func (s *Service) VerifyEmail(ctx context.Context, token string, c account.Client) error {
	r, err := s.store.VerifyEmail(ctx, hashOneTimeToken(token), func(r EmailConfirmation) account.Event {
		action := account.ActionEmailVerified
		switch {
		case r.Reverted:
			action = account.ActionEmailChangeReverted
		case r.Changed:
			action = account.ActionEmailChanged
		}
		return s.event(ctx, account.Event{Action: action, ActorID: &r.UserID, SubjectID: &r.UserID, Client: c})
	})
	if err != nil {
		return err
	}
	if r.Changed {
		s.PublishUserRevocation(ctx, r.UserID, r.TokenVersion)
	}
	return nil
}

// ResendVerification queues a verification mail for the address; the outbox
// sends a fresh link if a live, enabled, unverified account has it. Like
// ForgotPassword, the same work for every address.
func (s *Service) ResendVerification(ctx context.Context, email string, c account.Client) error {
	return s.requestMail(ctx, mail.VerifyEmail, account.ActionVerificationRequested, email, c)
}

// requestMail records the request and queues its mail, together, without
// looking the address up (the worker does, and completes the event with the
// account and the result). An address no account may hold is answered alike
// and mails nothing.
func (s *Service) requestMail(ctx context.Context, kind mail.Kind, action account.Action, email string, c account.Client) error {
	email, err := s.ParseEmail(email)
	if err != nil {
		return nil
	}
	if c.RequestID == "" {
		c = account.ClientFrom(ctx, c)
	}
	return s.store.RequestMail(ctx, account.Mail{Kind: kind, To: email}, account.Event{Action: action, Client: c, Details: map[string]any{"email": logging.MaskEmail(email)}})
}

// HashPassword hashes a password that passed the policy.
func (s *Service) HashPassword(ctx context.Context, pw string) (string, error) {
	return s.hasher.Hash(ctx, pw)
}

// VerifyPassword checks a signed-in user's password before a sensitive
// change (ErrWrongPassword when wrong). Its failures count in a bucket
// of the user's own, which only a holder of the user's access token can
// reach: a stolen token cannot be used to guess the password, and a
// stranger guessing at the login cannot block these checks.
func (s *Service) VerifyPassword(ctx context.Context, u account.User, pw string) error {
	p := s.set.Lockout
	p.AlertAfter = noAlert
	chk, err := s.begin(ctx, recheckBucket(u.ID), p)
	if err != nil {
		return err
	}
	ok, _, err := s.hasher.Verify(ctx, pw, u.PasswordHash)
	if err != nil && !errors.Is(err, password.ErrMalformedHash) && !errors.Is(err, password.ErrNoPassword) {
		s.end(ctx, chk, CheckAbandoned)
		return err
	}
	if !ok {
		s.end(ctx, chk, CheckFailed)
		s.audit(ctx, account.Event{Action: account.ActionPasswordCheckFailed, ActorID: &u.ID, SubjectID: &u.ID})
		return ErrWrongPassword
	}
	s.end(ctx, chk, CheckSucceeded)
	return nil
}

// recheckBucket counts the failed password re-checks of a signed-in user.
func recheckBucket(id uuid.UUID) Bucket { return Bucket{Account: "u:" + id.String()} }

// PublishUserRevocation spreads a revocation of every token of a user,
// already recorded in PostgreSQL, to every instance.
func (s *Service) PublishUserRevocation(ctx context.Context, id uuid.UUID, version int64) {
	s.local.record(Revocation{UserID: id, Version: version}, s.now())
	s.cacheWrite(ctx, func(ctx context.Context) error { return s.cache.RevokeUser(ctx, id, version, s.cacheTTL) })
}

// PublishSessionRevocation spreads a session revocation, already recorded.
func (s *Service) PublishSessionRevocation(ctx context.Context, sid uuid.UUID) {
	s.local.record(Revocation{SessionID: sid}, s.now())
	s.cacheWrite(ctx, func(ctx context.Context) error { return s.cache.RevokeSession(ctx, sid, s.cacheTTL) })
}

// Audit records a security event (best effort: a failure is logged).
func (s *Service) Audit(ctx context.Context, e account.Event) { s.audit(ctx, e) }

// notices returns the account notices to send to u: none while its address
// is unverified. Anyone can register someone else's address; the account's
// own activity must not become a way to mail that address at will.
func notices(u account.User, mails ...account.Mail) []account.Mail {
	if u.EmailVerifiedAt == nil {
		return nil
	}
	return mails
}
