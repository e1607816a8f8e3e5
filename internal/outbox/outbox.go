// Package outbox delivers gatehouse's mails through a transactional outbox:
// a River job inserted in the same PostgreSQL transaction as the event that
// calls for the mail, worked by every instance with retries and backoff. A
// crash or an SMTP outage loses no mail, and River's row locking makes one
// instance send each mail.
//
// Jobs never hold a secret. A mail that carries a one-time token (reset,
// verification) creates the token when it is sent, storing only its hash; a
// retry creates a fresh token, which cancels the one of a failed attempt.
//
// A mail asked for by address (forgot password, resend verification) is
// queued without looking the address up, so that the request does the same
// work whether or not an account has it (else its duration would tell). The
// worker looks the address up and sends only if a live account takes the
// mail; otherwise the job ends having sent nothing.
package outbox

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"

	"github.com/gatehouse/gatehouse/internal/account"
	"github.com/gatehouse/gatehouse/internal/logging"
	"github.com/gatehouse/gatehouse/internal/mail"
	"github.com/gatehouse/gatehouse/internal/token"
)

// Args is the job of one mail. It names the mail, the account and the
// address, nothing secret.
type Args struct {
	Mail   mail.Kind `json:"mail"`
	UserID uuid.UUID `json:"user_id,omitzero"`
	To     string    `json:"to"`
	// NewEmail is the address asked for, in notices of an email change.
	NewEmail string `json:"new_email,omitempty"`
	// KeepSession is the session that asked for an email change.
	KeepSession *uuid.UUID `json:"keep_session,omitempty"`
	// TokenVersion, when set, cancels the mail if the account's tokens were
	// revoked since it was asked for.
	TokenVersion *int64 `json:"token_version,omitempty"`
	// IP, UserAgent and At say where and when a reported sign-in happened.
	IP        string     `json:"ip,omitempty"`
	UserAgent string     `json:"user_agent,omitempty"`
	At        *time.Time `json:"at,omitempty"`
	// Requested marks a mail asked for by address (To, normalised), with no
	// account yet: the worker finds it, and records the account and the
	// result in the request's audit event (AuditID).
	Requested bool      `json:"requested,omitzero"`
	AuditID   uuid.UUID `json:"audit_id,omitzero"`
}

// Kind is River's job kind.
func (Args) Kind() string { return "mail" }

// RevertTTL is how long the old address of an email change can undo it.
const RevertTTL = 7 * 24 * time.Hour

// ErrNotMailable means a token mail no longer applies: the account is gone or
// disabled, or its address is no longer the one the mail was meant for.
var ErrNotMailable = errors.New("account no longer takes this mail")

// Results of a requested mail, as its audit event records them.
const (
	ResultMailed          = "mailed"
	ResultNoAccount       = "no_account"
	ResultDisabled        = "disabled"
	ResultAlreadyVerified = "already_verified"
)

// Recipient is the live account that holds an address.
type Recipient struct {
	ID       uuid.UUID
	Email    string
	Verified bool
	Disabled bool
}

// Store records one-time tokens (hash only) and finds the accounts of
// requested mails.
type Store interface {
	IssueOneTimeToken(ctx context.Context, t NewToken) error
	// Recipient finds the live account of a normalised address; false when
	// none has it.
	Recipient(ctx context.Context, email string) (Recipient, bool, error)
	// SettleRequest completes the audit event of a requested mail with the
	// account (nil: none) and the result.
	SettleRequest(ctx context.Context, auditID uuid.UUID, subject *uuid.UUID, result string) error
}

// NewToken is a one-time token to record (its hash only).
type NewToken struct {
	UserID      uuid.UUID
	Purpose     string
	Email       string // the address it is sent to
	Hash        []byte
	ExpiresAt   time.Time
	KeepSession *uuid.UUID // email change: the session that lives on
	// TokenVersion, when set, must still be the account's.
	TokenVersion *int64
}

// Config is what links and messages need.
type Config struct {
	Product   string
	PublicURL string
	ResetTTL  time.Duration
	VerifyTTL time.Duration
	// AttemptTimeout bounds one delivery attempt.
	AttemptTimeout time.Duration
	// Failed, when set, is called after each failed delivery attempt (a
	// metric counts them); a mail cancelled as moot is not a failure.
	Failed func()
}

// Worker renders and sends one mail per job.
type Worker struct {
	river.WorkerDefaults[Args]
	store  Store
	render *mail.Renderer
	send   mail.Sender
	cfg    Config
	now    func() time.Time
}

// NewWorker returns the mail worker.
func NewWorker(store Store, r *mail.Renderer, s mail.Sender, c Config) *Worker {
	return &Worker{store: store, render: r, send: s, cfg: c, now: time.Now}
}

// Timeout bounds one delivery attempt.
func (w *Worker) Timeout(*river.Job[Args]) time.Duration { return w.cfg.AttemptTimeout }

// Work delivers the mail of a job.
func (w *Worker) Work(ctx context.Context, job *river.Job[Args]) error {
	err := w.work(ctx, job)
	var cancel *river.JobCancelError
	if err != nil && w.cfg.Failed != nil && !errors.As(err, &cancel) {
		w.cfg.Failed()
	}
	return err
}

func (w *Worker) work(ctx context.Context, job *river.Job[Args]) error {
	a := job.Args
	if a.Requested {
		var send bool
		var err error
		if a, send, err = w.resolve(ctx, a); err != nil || !send {
			return err
		}
	}
	d := mail.Data{
		Product: w.cfg.Product, To: a.To, ResetURL: w.link("/forgot-password", ""),
		NewEmail: a.NewEmail, IP: a.IP, UserAgent: a.UserAgent,
	}
	if a.At != nil {
		d.When = a.At.UTC().Format("2 January 2006 at 15:04 UTC")
	}
	var purpose, path string
	var ttl time.Duration
	switch a.Mail {
	case mail.VerifyEmail:
		purpose, path, ttl = account.PurposeVerify, "/verify-email", w.cfg.VerifyTTL
	case mail.EmailChange:
		purpose, path, ttl = account.PurposeEmailChange, "/verify-email", w.cfg.VerifyTTL
	case mail.EmailChanged:
		purpose, path, ttl = account.PurposeEmailRevert, "/undo-email-change", RevertTTL
	case mail.PasswordReset:
		purpose, path, ttl = account.PurposeReset, "/reset-password", w.cfg.ResetTTL
	case mail.SetPassword:
		// A reset link, as long-lived as a verification link: an invitation
		// is not read within the hour a reset asked for is.
		purpose, path, ttl = account.PurposeReset, "/reset-password", w.cfg.VerifyTTL
	case mail.PasswordChanged, mail.PasswordResetDone, mail.EmailInUse, mail.NewSignIn, mail.LoginAttempts,
		mail.EmailChangeNotice, mail.MFAEnabled, mail.MFADisabled, mail.MFAReset, mail.MFARecoveryCodeUsed,
		mail.MFARecoveryCodesRegenerated:
		// Notices: they carry no link, so no token is issued.
	}
	if purpose != "" {
		tok, hash, err := token.NewOpaque()
		if err != nil {
			return err
		}
		if err := w.store.IssueOneTimeToken(ctx, NewToken{
			UserID: a.UserID, Purpose: purpose, Email: a.To, Hash: hash,
			ExpiresAt: w.now().Add(ttl), KeepSession: a.KeepSession, TokenVersion: a.TokenVersion,
		}); err != nil {
			if errors.Is(err, ErrNotMailable) {
				return river.JobCancel(err) // the account or its address changed: the mail is moot
			}
			return fmt.Errorf("issue %s token: %w", purpose, err)
		}
		d.Link, d.Expires = w.link(path, tok), words(ttl)
	}
	m, err := w.render.Render(a.Mail, d)
	if err != nil {
		return river.JobCancel(err) // a template error will not fix itself
	}
	m.ID = fmt.Sprintf("%d.%s@gatehouse", job.ID, a.Mail)
	if err := w.send.Send(ctx, m); err != nil {
		// SMTP servers quote the recipient in their refusals; River logs the
		// error and keeps it in the job row. Neither gets the raw address.
		return errors.New(strings.ReplaceAll(err.Error(), a.To, logging.MaskEmail(a.To)))
	}
	return nil
}

// resolve finds the account of a mail asked for by address and decides
// whether it gets the mail: a reset goes to a live, enabled account, a
// verification to a live, enabled, unverified one. The decision is recorded
// in the request's audit event ("mailed" once it is handed to delivery); a
// retry decides again, on the account as it is then.
func (w *Worker) resolve(ctx context.Context, a Args) (Args, bool, error) {
	if a.Mail != mail.PasswordReset && a.Mail != mail.VerifyEmail {
		return a, false, river.JobCancel(fmt.Errorf("mail %s cannot be requested by address", a.Mail))
	}
	r, found, err := w.store.Recipient(ctx, a.To)
	if err != nil {
		return a, false, fmt.Errorf("find the account of a requested %s mail: %w", a.Mail, err)
	}
	var subject *uuid.UUID
	result := ResultMailed
	switch {
	case !found:
		result = ResultNoAccount
	case r.Disabled:
		subject, result = &r.ID, ResultDisabled
	case a.Mail == mail.VerifyEmail && r.Verified:
		subject, result = &r.ID, ResultAlreadyVerified
	default:
		subject = &r.ID
	}
	if a.AuditID != uuid.Nil {
		if err := w.store.SettleRequest(ctx, a.AuditID, subject, result); err != nil {
			return a, false, fmt.Errorf("record the result of a requested %s mail: %w", a.Mail, err)
		}
	}
	if result != ResultMailed {
		return a, false, nil
	}
	a.UserID, a.To = r.ID, r.Email
	return a, true, nil
}

// link builds a link from PUBLIC_URL, never from a request's Host header.
func (w *Worker) link(path, token string) string {
	u := w.cfg.PublicURL + path
	if token != "" {
		u += "?token=" + url.QueryEscape(token)
	}
	return u
}

func words(d time.Duration) string {
	if h := d.Hours(); h >= 1 && h == math.Trunc(h) {
		if h == 1 {
			return "1 hour"
		}
		return fmt.Sprintf("%d hours", int(h))
	}
	return fmt.Sprintf("%d minutes", int(d.Minutes()))
}
