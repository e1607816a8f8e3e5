// Package account is gatehouse's domain model: the account and its profile,
// the caller (Principal) and where a request comes from (Client), audit
// events and their actions, mails to send, permissions and roles, and the
// errors every layer shares. It depends on no other package of gatehouse but
// the mail kinds; services (auth, user), stores and the HTTP layer all speak
// it.
package account

import (
	"errors"
	"net/netip"
	"time"

	"github.com/google/uuid"

	"github.com/gatehouse/gatehouse/internal/mail"
)

// Errors every layer shares. The HTTP layer maps each to one problem.
var (
	// ErrNotFound means no live record matched.
	ErrNotFound = errors.New("not found")
	// ErrEmailTaken means a live account holds the address.
	ErrEmailTaken = errors.New("email taken")
	// ErrForbidden refuses an action on a user with permissions the caller
	// lacks, or granting permissions the caller lacks.
	ErrForbidden = errors.New("forbidden")
	// ErrInvalidEmail refuses an address that is too long once normalised.
	ErrInvalidEmail = errors.New("invalid email")
	// ErrUnavailable means a dependency (PostgreSQL, or the revocation
	// state) cannot answer now: the request fails closed, with a 503.
	ErrUnavailable = errors.New("authentication state unavailable")
)

// Role names seeded by the migrations.
const (
	RoleAdmin = "admin"
	RoleUser  = "user"
)

// Profile is an account as lists, administration and its owner see it:
// never its password hash.
type Profile struct {
	ID              uuid.UUID
	Email           string
	Name            *string
	EmailVerifiedAt *time.Time
	DisabledAt      *time.Time
	DeletedAt       *time.Time
	TokenVersion    int64
	Roles           []string // sorted; empty where the store does not read them
	CreatedAt       time.Time
	UpdatedAt       time.Time
	// ExternalID is the account's id in the system it was imported from.
	ExternalID *string
}

// User is an account as password checks see it: its profile and its
// password hash.
type User struct {
	Profile
	PasswordHash string
}

// NewUser is an account to create.
type NewUser struct {
	ID           uuid.UUID
	Email        string
	PasswordHash string
	Name         *string
	Verified     bool
	Roles        []string
	Mails        []Mail  // sent only if the account is created
	Events       []Event // recorded only if the account is created
}

// Client describes where a request comes from, for sessions and audit.
type Client struct {
	IP        netip.Addr
	UserAgent string
	RequestID string
}

// Event is an audit record. Details hold no secret and only masked PII.
type Event struct {
	Action    Action
	ActorID   *uuid.UUID
	SubjectID *uuid.UUID
	Client    Client
	Details   map[string]any
}

// Mail is a mail to send, recorded in the outbox with the event it reports.
type Mail struct {
	Kind   mail.Kind
	UserID uuid.UUID
	To     string
	// Client, for mails that report a sign-in, says where it came from.
	Client *MailClient
	// NewEmail, for a notice to the old address of an email change, is the
	// address asked for.
	NewEmail string
	// TokenVersion, when set, is the account's token version when the mail
	// was asked for: the mail is moot once it changed (an email change asked
	// for before a password change or reset).
	TokenVersion *int64
	// KeepSession, for an email change, is the session that asked for it: it
	// lives on when the change completes, every other session ends.
	KeepSession *uuid.UUID
}

// MailClient is where an event reported by mail came from.
type MailClient struct {
	IP        string
	UserAgent string
	At        time.Time
}

// NewID returns a new, time-ordered id (UUIDv7): ids of accounts, sessions,
// events and requests sort by creation, which keyset pagination relies on.
func NewID() uuid.UUID {
	id, err := uuid.NewV7()
	if err != nil { // the system's random source failed: still unique, not ordered
		return uuid.New()
	}
	return id
}

// Purposes of one-time tokens (one_time_tokens.purpose): what a mailed link
// may do.
const (
	PurposeVerify      = "email_verify"
	PurposeReset       = "password_reset"
	PurposeEmailChange = "email_change"
	PurposeEmailRevert = "email_revert"
)
