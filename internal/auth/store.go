package auth

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/gatehouse/gatehouse/internal/account"
)

// Domain errors of authentication. The HTTP layer maps each to one problem.
var (
	// ErrInvalidCredentials covers unknown email, wrong password, disabled and
	// deleted accounts: one answer for all, so accounts cannot be enumerated.
	ErrInvalidCredentials = errors.New("invalid credentials")
	// ErrWrongPassword: the current password a signed-in user must give to
	// confirm a sensitive change is missing or wrong. Distinct from
	// ErrInvalidCredentials because the access token is fine: the answer must
	// not read as "refresh and retry".
	ErrWrongPassword = errors.New("wrong current password")
	// ErrInvalidRefreshToken covers unknown, used, expired and revoked refresh tokens.
	ErrInvalidRefreshToken = errors.New("invalid refresh token")
	// ErrInvalidOneTimeToken covers unknown, used, superseded, expired and
	// exhausted reset and verification tokens.
	ErrInvalidOneTimeToken = errors.New("invalid one-time token")
	// ErrEmailNotVerified refuses the login of an unverified account when
	// verification is required (only after a correct password).
	ErrEmailNotVerified = errors.New("email not verified")
)

// OneTimeToken is a usable reset or verification token.
type OneTimeToken struct {
	UserID    uuid.UUID
	Email     string // the address the token was sent to
	UserEmail string // the account's current address
}

// NewSession is a session to open with its first refresh token.
type NewSession struct {
	ID            uuid.UUID
	UserID        uuid.UUID
	TokenVersion  int64 // the version the password was checked at
	Client        account.Client
	IdleExpiresAt time.Time
	ExpiresAt     time.Time
	RefreshHash   []byte
	AMR           []string        // how the user authenticated (RFC 8176)
	Mails         []account.Mail  // sent only if the session is opened
	Events        []account.Event // recorded only if the session is opened
}

// EmailConfirmation is what a consumed address token did.
type EmailConfirmation struct {
	UserID uuid.UUID
	// Changed: the account's address changed (an email change, or its undo),
	// and sessions ended at TokenVersion.
	Changed, Reverted bool
	TokenVersion      int64
}

// RefreshOutcome says what a refresh did.
type RefreshOutcome int

// Outcomes of Store.Refresh.
const (
	// Rotated: the token was live; it is now used and NewHash replaces it.
	Rotated RefreshOutcome = iota + 1
	// GraceRotated: the token was used moments ago (two tabs refreshing at
	// once); its successor, NewHash, is already stored: the caller gets the
	// same pair as the first.
	GraceRotated
	// ReuseRevoked: a used token came back after the grace window: the session
	// is revoked, since the token was likely stolen.
	ReuseRevoked
	// Refused: unknown, expired or revoked session, or inactive user.
	Refused
)

// RefreshRequest is one refresh to apply atomically.
type RefreshRequest struct {
	Hash, NewHash []byte
	Now           time.Time
	Grace         time.Duration
	IdleTTL       time.Duration
	// ReuseEvent is the event recorded with the revocation of a session
	// whose used token came back (ReuseRevoked).
	ReuseEvent func(RefreshResult) account.Event
}

// RefreshResult is what a refresh produced.
type RefreshResult struct {
	Outcome      RefreshOutcome
	UserID       uuid.UUID
	SessionID    uuid.UUID
	TokenVersion int64
	ExpiresAt    time.Time // the session's absolute expiry
	RotatedAt    time.Time // when the presented token was first used
	AMR          []string  // how the session's user authenticated
}

// SessionState is what an access-token check needs from the record.
type SessionState struct {
	UserID       uuid.UUID
	Revoked      bool
	TokenVersion int64
	UserActive   bool
}

// Revocations are the revocations of a recent window, to rebuild the cache.
type Revocations struct {
	Sessions []uuid.UUID
	Users    map[uuid.UUID]int64 // user → current token version
}

// Store is the system of record for accounts, sessions and revocations.
type Store interface {
	// CreateUser returns ErrEmailTaken when a live account holds the email.
	CreateUser(ctx context.Context, u account.NewUser) (account.Profile, error)
	// UserByEmail finds a live (not deleted) account.
	UserByEmail(ctx context.Context, email string) (account.User, error)
	UserByID(ctx context.Context, id uuid.UUID) (account.User, error)
	// RehashPassword replaces the hash old with new (the same password,
	// hashed anew) if old is still the stored hash, and reports whether it did.
	RehashPassword(ctx context.Context, id uuid.UUID, old, new string) (bool, error)
	// GrantRole adds a role (idempotent), recorded with e.
	GrantRole(ctx context.Context, id uuid.UUID, role string, e account.Event) error
	Permissions(ctx context.Context, id uuid.UUID) ([]string, error)
	// TokenFacts reads what an access token says of the user: permissions
	// (those of mfaRoles apart) and whether MFA is on.
	TokenFacts(ctx context.Context, id uuid.UUID, mfaRoles []string) (TokenFacts, error)
	MFAStore

	CreateSession(ctx context.Context, s NewSession) error
	Refresh(ctx context.Context, r RefreshRequest) (RefreshResult, error)
	// RevokeSession reports whether the session was live. Events are
	// recorded with the revocation.
	RevokeSession(ctx context.Context, id uuid.UUID, reason string, events ...account.Event) (bool, error)
	// RevokeUser revokes every session of the user and bumps its token
	// version, returning the new version. Events are recorded with it.
	RevokeUser(ctx context.Context, id uuid.UUID, reason string, events ...account.Event) (int64, error)
	SessionState(ctx context.Context, id uuid.UUID) (SessionState, error)
	RevocationsSince(ctx context.Context, since time.Time) (Revocations, error)

	// Audit records an event that reports no change of its own (a refused
	// attempt): changes record theirs in their own transaction.
	Audit(ctx context.Context, e account.Event) error

	// EnqueueMail records mails in the outbox.
	EnqueueMail(ctx context.Context, mails ...account.Mail) error
	// RequestMail records e and queues a mail asked for by address (m.To;
	// m.UserID unused) in one transaction, without looking the address up:
	// the outbox finds the account, if any, when it works the mail, so the
	// request does the same work for every address.
	RequestMail(ctx context.Context, m account.Mail, e account.Event) error
	// ChangePassword stores a new hash, bumps the token version, revokes
	// every session but keep and gives keep the new version and a new refresh
	// token (spending its old ones), with e and the mails, in one transaction. It
	// returns the new token version and keep's absolute expiry; ErrInvalidToken
	// when keep is no longer live.
	ChangePassword(ctx context.Context, id uuid.UUID, hash string, keep KeptSession, e account.Event, mails ...account.Mail) (int64, time.Time, error)
	// PeekOneTimeToken finds a usable token without consuming it.
	PeekOneTimeToken(ctx context.Context, hash []byte, purpose string) (OneTimeToken, error)
	// FailOneTimeToken counts a failed use (the token dies after a few).
	FailOneTimeToken(ctx context.Context, hash []byte) error
	// ResetPassword consumes a reset token and sets the password, bumping the
	// token version and revoking every session, with e and the mails, in one
	// transaction.
	ResetPassword(ctx context.Context, token []byte, hash string, e account.Event, mails ...account.Mail) (uuid.UUID, int64, error)
	// VerifyEmail consumes a verification, email-change or revert token, and
	// records the event event makes of what it did, in one transaction.
	VerifyEmail(ctx context.Context, token []byte, event func(EmailConfirmation) account.Event) (EmailConfirmation, error)
}

// CacheState is what the revocation cache knows about a token's session and user.
type CacheState struct {
	// Warm is false when the cache may have lost revocations (Redis restarted
	// or was flushed): the record must be asked.
	Warm           bool
	SessionRevoked bool
	// MinVersion is the user's token version when it changed recently; tokens
	// of an older version are revoked. Zero when it did not change recently.
	MinVersion int64
}

// RevocationCache is the shared fast path of revocation checks. It holds the
// revocations of the last access-token lifetime only: older ones concern no
// live access token.
type RevocationCache interface {
	Check(ctx context.Context, sessionID, userID uuid.UUID) (CacheState, error)
	RevokeSession(ctx context.Context, sessionID uuid.UUID, ttl time.Duration) error
	RevokeUser(ctx context.Context, userID uuid.UUID, version int64, ttl time.Duration) error
	// Rebuild loads revocations and marks the cache warm.
	Rebuild(ctx context.Context, r Revocations, ttl time.Duration) error
	// Invalidate marks the cache cold, so checks go to the record until the
	// next rebuild. Used when a revocation could not be cached.
	Invalidate(ctx context.Context) error
	// Follow subscribes to the revocations every instance caches (each
	// RevokeSession and RevokeUser is also announced) and reports to l until
	// ctx ends, subscribing again whenever the subscription breaks.
	Follow(ctx context.Context, l FeedListener)
}

// Revocation is one revocation as instances announce it: a session
// (SessionID set), or every token of a user below Version (UserID set).
type Revocation struct {
	SessionID uuid.UUID
	UserID    uuid.UUID
	Version   int64
}

// FeedListener hears what RevocationCache.Follow reports. Its methods are
// called one at a time, in order.
type FeedListener interface {
	// Subscribed: every revocation announced from now on will be heard,
	// until Lost.
	Subscribed()
	// Alive: the subscription answered a heartbeat, so nothing announced
	// before the heartbeat was sent was missed.
	Alive()
	// Revoked: an instance announced r.
	Revoked(r Revocation)
	// Lost: the subscription broke; announcements may be missed until the
	// next Subscribed.
	Lost()
}

// KeptSession is the session a password change keeps: it gets the refresh
// token whose hash is RefreshHash, and its idle expiry moves to
// IdleExpiresAt (never past its absolute expiry).
type KeptSession struct {
	ID            uuid.UUID
	RefreshHash   []byte
	IdleExpiresAt time.Time
}
