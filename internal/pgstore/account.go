package pgstore

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	db "github.com/gatehouse/gatehouse/gen/db"
	"github.com/gatehouse/gatehouse/internal/account"
	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/mail"
	"github.com/gatehouse/gatehouse/internal/outbox"
)

// maxTokenAttempts is how many failed uses (a refused new password) a
// one-time token survives.
const maxTokenAttempts = 5

// Outbox inserts jobs in a transaction (the River client).
type Outbox interface {
	InsertTx(ctx context.Context, tx pgx.Tx, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error)
}

// enqueue writes mails into the outbox inside tx: they are sent if and only
// if the transaction commits.
func (s *Store) enqueue(ctx context.Context, tx pgx.Tx, mails []account.Mail) error {
	if len(mails) == 0 {
		return nil
	}
	if s.outbox == nil {
		return errors.New("no outbox configured for mails")
	}
	for _, m := range mails {
		a := outbox.Args{Mail: m.Kind, UserID: m.UserID, To: m.To, NewEmail: m.NewEmail, KeepSession: m.KeepSession, TokenVersion: m.TokenVersion}
		if c := m.Client; c != nil {
			a.IP, a.UserAgent, a.At = c.IP, c.UserAgent, &c.At
		}
		if _, err := s.outbox.InsertTx(ctx, tx, a, nil); err != nil {
			return classify(fmt.Errorf("enqueue %s mail: %w", m.Kind, err))
		}
	}
	return nil
}

// EnqueueMail records mails in the outbox.
func (s *Store) EnqueueMail(ctx context.Context, mails ...account.Mail) error {
	return s.inTx(ctx, func(tx pgx.Tx, _ *db.Queries) error { return s.enqueue(ctx, tx, mails) })
}

// RequestMail records the event and queues the mail asked for by address
// (m.To, no account), in one transaction: the same two inserts for every
// address. The outbox's worker finds the account and settles the event.
func (s *Store) RequestMail(ctx context.Context, m account.Mail, e account.Event) error {
	if s.outbox == nil {
		return errors.New("no outbox configured for mails")
	}
	p, err := auditParams(e)
	if err != nil {
		return err
	}
	return s.inTx(ctx, func(tx pgx.Tx, q *db.Queries) error {
		if err := q.InsertAuditEvent(ctx, p); err != nil {
			return fmt.Errorf("record %s: %w", e.Action, err)
		}
		args := outbox.Args{Mail: m.Kind, To: m.To, Requested: true, AuditID: p.ID}
		if _, err := s.outbox.InsertTx(ctx, tx, args, nil); err != nil {
			return classify(fmt.Errorf("enqueue requested %s mail: %w", m.Kind, err))
		}
		return nil
	})
}

// Recipient finds the live account of a normalised address (the outbox
// asks, for a mail requested by address).
func (s *Store) Recipient(ctx context.Context, email string) (outbox.Recipient, bool, error) {
	u, err := s.q.GetUserByEmail(ctx, email)
	if errors.Is(err, pgx.ErrNoRows) {
		return outbox.Recipient{}, false, nil
	}
	if err != nil {
		return outbox.Recipient{}, false, fmt.Errorf("find account: %w", err)
	}
	return outbox.Recipient{ID: u.ID, Email: u.Email, Verified: u.EmailVerifiedAt != nil, Disabled: u.DisabledAt != nil}, true, nil
}

// SettleRequest completes the audit event of a requested mail.
func (s *Store) SettleRequest(ctx context.Context, auditID uuid.UUID, subject *uuid.UUID, result string) error {
	if err := s.q.SettleAuditEvent(ctx, db.SettleAuditEventParams{ID: auditID, SubjectID: subject, Result: result}); err != nil {
		return fmt.Errorf("settle audit event: %w", err)
	}
	return nil
}

// ChangePassword sets the hash, bumps the token version, revokes every other
// session and enqueues the mails, together.
func (s *Store) ChangePassword(ctx context.Context, id uuid.UUID, hash string, keep auth.KeptSession, e account.Event, mails ...account.Mail) (int64, time.Time, error) {
	var v int64
	var expires time.Time
	err := s.inTx(ctx, func(tx pgx.Tx, q *db.Queries) error {
		if err := q.UpdatePasswordHash(ctx, db.UpdatePasswordHashParams{ID: id, PasswordHash: hash}); err != nil {
			return fmt.Errorf("update password: %w", err)
		}
		var err error
		if v, err = q.BumpTokenVersion(ctx, id); err != nil {
			return notFound(err)
		}
		if _, err := q.RevokeOtherSessions(ctx, db.RevokeOtherSessionsParams{UserID: id, Keep: keep.ID, Reason: ptr("password_changed")}); err != nil {
			return fmt.Errorf("revoke sessions: %w", err)
		}
		// The caller's session moves to the new version and lives on, with a
		// new refresh token in place of the ones it held.
		expires, err = q.RenewSession(ctx, db.RenewSessionParams{ID: keep.ID, TokenVersion: v, IdleExpiresAt: keep.IdleExpiresAt})
		if errors.Is(err, pgx.ErrNoRows) {
			return auth.ErrInvalidToken // revoked while the password was checked
		}
		if err != nil {
			return fmt.Errorf("keep session: %w", err)
		}
		if err := q.SpendSessionRefreshTokens(ctx, keep.ID); err != nil {
			return fmt.Errorf("spend refresh tokens: %w", err)
		}
		if err := q.InsertRefreshToken(ctx, db.InsertRefreshTokenParams{TokenHash: keep.RefreshHash, SessionID: keep.ID}); err != nil {
			return fmt.Errorf("store refresh token: %w", err)
		}
		if err := q.CancelAllOneTimeTokens(ctx, id); err != nil {
			return fmt.Errorf("cancel tokens: %w", err)
		}
		return s.record(ctx, tx, q, []account.Event{e}, mails)
	})
	return v, expires, err
}

// PeekOneTimeToken finds a usable token without consuming it.
func (s *Store) PeekOneTimeToken(ctx context.Context, hash []byte, purpose string) (auth.OneTimeToken, error) {
	r, err := s.q.PeekOneTimeToken(ctx, db.PeekOneTimeTokenParams{TokenHash: hash, Purpose: purpose, MaxAttempts: maxTokenAttempts})
	if errors.Is(err, pgx.ErrNoRows) {
		return auth.OneTimeToken{}, auth.ErrInvalidOneTimeToken
	}
	if err != nil {
		return auth.OneTimeToken{}, fmt.Errorf("find token: %w", err)
	}
	t := auth.OneTimeToken{UserID: r.UserID, UserEmail: r.UserEmail}
	if r.TokenEmail != nil {
		t.Email = *r.TokenEmail
	}
	return t, nil
}

// FailOneTimeToken counts a failed use.
func (s *Store) FailOneTimeToken(ctx context.Context, hash []byte) error {
	return s.q.FailOneTimeToken(ctx, hash)
}

// ResetPassword consumes the token (one atomic UPDATE: of concurrent callers
// exactly one wins), sets the password, bumps the token version, revokes every
// session and enqueues the mails.
func (s *Store) ResetPassword(ctx context.Context, token []byte, hash string, e account.Event, mails ...account.Mail) (uuid.UUID, int64, error) {
	var uid uuid.UUID
	var v int64
	err := s.inTx(ctx, func(tx pgx.Tx, q *db.Queries) error {
		r, err := q.ConsumeOneTimeToken(ctx, db.ConsumeOneTimeTokenParams{TokenHash: token, Purpose: account.PurposeReset, MaxAttempts: maxTokenAttempts})
		if errors.Is(err, pgx.ErrNoRows) {
			return auth.ErrInvalidOneTimeToken
		}
		if err != nil {
			return fmt.Errorf("consume token: %w", err)
		}
		uid = r.UserID
		if err := q.UpdatePasswordHash(ctx, db.UpdatePasswordHashParams{ID: uid, PasswordHash: hash}); err != nil {
			return fmt.Errorf("update password: %w", err)
		}
		if v, err = revokeAll(ctx, q, uid, "password_reset"); err != nil {
			return err
		}
		return s.record(ctx, tx, q, []account.Event{e}, mails)
	})
	return uid, v, err
}

// VerifyEmail consumes a token sent by mail to confirm an address:
//   - verification: marks the address it was sent to verified, if it is
//     still the account's address;
//   - email change: makes the new address the account's (ErrEmailTaken if
//     another account took it meanwhile), ends every session but the one
//     that asked for the change, and tells the old address, with a link
//     that undoes the change;
//   - revert (that link): gives the account its old address back and ends
//     every session.
func (s *Store) VerifyEmail(ctx context.Context, token []byte, event func(auth.EmailConfirmation) account.Event) (auth.EmailConfirmation, error) {
	var out auth.EmailConfirmation
	err := s.inTx(ctx, func(tx pgx.Tx, q *db.Queries) error {
		mails, err := s.verifyEmail(ctx, q, token, &out)
		if err != nil {
			return err
		}
		return s.record(ctx, tx, q, []account.Event{event(out)}, mails)
	})
	return out, err
}

// verifyEmail is VerifyEmail's work in q's transaction; it returns the mails
// to send.
func (s *Store) verifyEmail(ctx context.Context, q *db.Queries, token []byte, out *auth.EmailConfirmation) ([]account.Mail, error) {
	var r db.ConsumeOneTimeTokenRow
	var purpose string
	for _, purpose = range []string{account.PurposeVerify, account.PurposeEmailChange, account.PurposeEmailRevert} {
		var err error
		r, err = q.ConsumeOneTimeToken(ctx, db.ConsumeOneTimeTokenParams{TokenHash: token, Purpose: purpose, MaxAttempts: maxTokenAttempts})
		if err == nil {
			break
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return nil, fmt.Errorf("consume token: %w", err)
		}
		if purpose == account.PurposeEmailRevert {
			return nil, auth.ErrInvalidOneTimeToken
		}
	}
	if r.Email == nil {
		return nil, auth.ErrInvalidOneTimeToken
	}
	out.UserID = r.UserID
	if purpose == account.PurposeVerify {
		n, err := q.SetEmailVerified(ctx, db.SetEmailVerifiedParams{ID: r.UserID, Email: *r.Email})
		if err != nil {
			return nil, fmt.Errorf("mark verified: %w", err)
		}
		if n == 0 && r.UserEmail != *r.Email {
			return nil, auth.ErrInvalidOneTimeToken // the address changed since the mail was sent
		}
		return nil, nil
	}
	out.Changed, out.Reverted = true, purpose == account.PurposeEmailRevert
	if err := checkNotReserved(ctx, q, *r.Email, r.UserID); err != nil {
		return nil, err
	}
	now := time.Now()
	if err := q.UpdateUserEmail(ctx, db.UpdateUserEmailParams{ID: r.UserID, Email: *r.Email, EmailVerifiedAt: &now}); err != nil {
		return nil, err
	}
	var err error
	if out.TokenVersion, err = q.BumpTokenVersion(ctx, r.UserID); err != nil {
		return nil, notFound(err)
	}
	keep := r.SessionID
	if out.Reverted || keep == nil {
		_, err = q.RevokeUserSessions(ctx, db.RevokeUserSessionsParams{UserID: r.UserID, Reason: ptr("email_reverted")})
	} else {
		_, err = q.RevokeOtherSessions(ctx, db.RevokeOtherSessionsParams{UserID: r.UserID, Keep: *keep, Reason: ptr("email_changed")})
		if err == nil {
			// The session that asked for the change moves to the new version.
			err = q.SetSessionTokenVersion(ctx, db.SetSessionTokenVersionParams{ID: *keep, TokenVersion: out.TokenVersion})
		}
	}
	if err != nil {
		return nil, fmt.Errorf("end sessions: %w", err)
	}
	// Links sent to the old address (or, on a revert, the new one) die.
	if err := q.CancelAllOneTimeTokens(ctx, r.UserID); err != nil {
		return nil, fmt.Errorf("cancel tokens: %w", err)
	}
	if out.Reverted {
		// The account is back with its owner, who may not know the password
		// any more: a reset link goes to the address, with the undo done.
		if err := q.CancelOneTimeTokens(ctx, db.CancelOneTimeTokensParams{UserID: r.UserID, Purpose: account.PurposeEmailRevert}); err != nil {
			return nil, fmt.Errorf("cancel undo tokens: %w", err)
		}
		return []account.Mail{{Kind: mail.PasswordReset, UserID: r.UserID, To: *r.Email}}, nil
	}
	// The old address stays reserved for the undo from now on, before its
	// mail is even sent: a placeholder no one can present (the hash of
	// nothing known) holds it until the mailed token replaces it.
	placeholder := make([]byte, 32)
	if _, err := rand.Read(placeholder); err != nil {
		return nil, err
	}
	if err := q.InsertOneTimeToken(ctx, db.InsertOneTimeTokenParams{
		TokenHash: placeholder, UserID: r.UserID, Purpose: account.PurposeEmailRevert,
		Email: &r.UserEmail, ExpiresAt: now.Add(outbox.RevertTTL),
	}); err != nil {
		return nil, fmt.Errorf("reserve the old address: %w", err)
	}
	return []account.Mail{{Kind: mail.EmailChanged, UserID: r.UserID, To: r.UserEmail, NewEmail: *r.Email}}, nil
}

// checkNotReserved refuses (ErrEmailTaken) an address held for the undo of
// another account's email change.
func checkNotReserved(ctx context.Context, q *db.Queries, email string, owner uuid.UUID) error {
	reserved, err := q.EmailReserved(ctx, db.EmailReservedParams{Email: &email, UserID: owner})
	if err != nil {
		return fmt.Errorf("check reservation: %w", err)
	}
	if reserved {
		return account.ErrEmailTaken
	}
	return nil
}

// IssueOneTimeToken stores the hash of a new token, cancelling the older
// tokens of the same purpose (the outbox calls it when it sends the mail).
// It refuses (outbox.ErrNotMailable) when the account is no longer live or,
// for reset and verification, no longer has this address.
func (s *Store) IssueOneTimeToken(ctx context.Context, t outbox.NewToken) error {
	userID, purpose, email := t.UserID, t.Purpose, t.Email
	return s.inTx(ctx, func(_ pgx.Tx, q *db.Queries) error {
		// A change and its undo are sent to an address the account does not have.
		anyAddress := purpose == account.PurposeEmailChange || purpose == account.PurposeEmailRevert
		ok, err := q.UserMailable(ctx, db.UserMailableParams{ID: userID, Email: email, AnyAddress: anyAddress, TokenVersion: t.TokenVersion})
		if err != nil {
			return err
		}
		if !ok {
			return outbox.ErrNotMailable
		}
		if err := q.CancelOneTimeTokens(ctx, db.CancelOneTimeTokensParams{UserID: userID, Purpose: purpose}); err != nil {
			return fmt.Errorf("cancel older tokens: %w", err)
		}
		return q.InsertOneTimeToken(ctx, db.InsertOneTimeTokenParams{TokenHash: t.Hash, UserID: userID, Purpose: purpose, Email: &email, ExpiresAt: t.ExpiresAt, SessionID: t.KeepSession})
	})
}
