// Package userimport moves accounts in from another system: it reads them
// (JSON Lines from `gatehouse import users`, or the items of POST
// /api/v1/users/import), validates each one on its own, and has the store
// create or update them in batches, idempotently, with their password
// hashes in the formats internal/password verifies.
package userimport

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/gatehouse/gatehouse/internal/account"
	"github.com/gatehouse/gatehouse/internal/password"
)

// Line is one account as an import gives it.
type Line struct {
	ID            *uuid.UUID  `json:"id,omitempty"`
	ExternalID    *ExternalID `json:"external_id,omitempty"`
	Email         string      `json:"email"`
	Name          *string     `json:"name,omitempty"`
	EmailVerified bool        `json:"email_verified,omitempty"`
	Roles         []string    `json:"roles,omitempty"`
	CreatedAt     *time.Time  `json:"created_at,omitempty"`
	Disabled      bool        `json:"disabled,omitempty"`
	Deleted       bool        `json:"deleted,omitempty"`
	PasswordHash  string      `json:"password_hash,omitempty"`
}

// ExternalID is the old system's id of an account: a string, or an integer
// (the Flask service's ids), kept as its decimal text.
type ExternalID string

// UnmarshalJSON accepts a string or an integer.
func (e *ExternalID) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*e = ExternalID(s)
		return nil
	}
	if _, err := strconv.ParseInt(string(b), 10, 64); err != nil {
		return errors.New("external_id must be a string or an integer")
	}
	*e = ExternalID(b)
	return nil
}

// Limits of a line's fields.
const (
	maxNameLen       = 100
	maxExternalIDLen = 255
	maxRoles         = 20
	// MaxLineBytes bounds one line of an import file (and one item of the
	// API): an account is a few hundred bytes.
	MaxLineBytes = 16 << 10
)

// rolePattern is what a role created by an import may be called.
var rolePattern = regexp.MustCompile(`^[a-z][a-z0-9_.:-]{0,63}$`)

// Account is a line that passed validation: normalised, with its digests.
type Account struct {
	Line         int // 1-based line (or 0-based item of the API), for the report
	ID           uuid.UUID
	GivenID      bool // ID came from the line (else it is new)
	Email        string
	Name         *string
	Verified     bool
	Roles        []string // sorted, at least one
	CreatedAt    *time.Time
	Disabled     bool
	Deleted      bool
	PasswordHash string // "" is no password
	Format       string // of PasswordHash (password.Format...)
	ExternalID   *string
	// LineDigest is SHA-256 of the normalised line: an account whose last
	// import had the same one is unchanged. HashDigest is SHA-256 of the
	// hash string alone.
	LineDigest, HashDigest [32]byte
}

// Refusal is why a line was refused. Its text names the field and the
// rule, never the value of a password hash.
type Refusal struct{ Reason string }

func (r *Refusal) Error() string { return r.Reason }

func refuse(format string, args ...any) *Refusal {
	return &Refusal{Reason: fmt.Sprintf(format, args...)}
}

// Decode reads one JSON line strictly: unknown fields and wrong types are
// refused, with the field named. The error never quotes the line.
func Decode(b []byte) (Line, error) {
	var l Line
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&l); err != nil {
		var te *json.UnmarshalTypeError
		var se *json.SyntaxError
		switch {
		case errors.As(err, &te):
			return Line{}, refuse("field %s has the wrong type (want %s)", te.Field, te.Type)
		case errors.As(err, &se):
			return Line{}, refuse("not valid JSON (at byte %d)", se.Offset)
		case errors.Is(err, io.ErrUnexpectedEOF):
			return Line{}, refuse("not valid JSON (the line ends inside a value)")
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			return Line{}, refuse("unknown field %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
		case strings.Contains(err.Error(), "external_id"):
			return Line{}, refuse("external_id must be a string or an integer")
		case errors.Is(err, errors.ErrUnsupported), strings.Contains(err.Error(), "parsing time"):
			return Line{}, refuse("created_at is not an RFC 3339 time")
		}
		return Line{}, refuse("not a JSON object of an account")
	}
	if d.More() {
		return Line{}, refuse("more than one JSON value on the line")
	}
	return l, nil
}

// Rules are what validation needs besides the line.
type Rules struct {
	// Roles are the roles that exist; with CreateRoles, others are created
	// (when their names are acceptable) instead of refused.
	Roles       map[string]bool
	CreateRoles bool
	// Grantable, when set, says whether the importer may grant a role.
	Grantable func(role string) bool
	// AllowLocalEmailDomains accepts addresses at localhost and the like
	// (development, as registration does).
	AllowLocalEmailDomains bool
	Now                    time.Time
}

// Validate checks a line and normalises it into an Account. The password
// hash must be in a format internal/password verifies, within its bounds.
func Validate(l Line, r Rules) (Account, error) {
	email, err := account.ParseEmail(l.Email, r.AllowLocalEmailDomains)
	if err != nil {
		var ie *account.InvalidEmailError
		if errors.As(err, &ie) {
			return Account{}, refuse("bad email: %s", ie.Message)
		}
		return Account{}, refuse("bad email")
	}
	a := Account{
		Email: email, Verified: l.EmailVerified, Disabled: l.Disabled, Deleted: l.Deleted,
		PasswordHash: l.PasswordHash, CreatedAt: l.CreatedAt,
	}
	if l.Name != nil {
		name := strings.TrimSpace(*l.Name)
		switch {
		case !utf8.ValidString(name) || utf8.RuneCountInString(name) > maxNameLen:
			return Account{}, refuse("name longer than %d characters", maxNameLen)
		case name != "":
			a.Name = &name
		}
	}
	if l.ExternalID != nil {
		x := string(*l.ExternalID)
		if x == "" || len(x) > maxExternalIDLen || !utf8.ValidString(x) {
			return Account{}, refuse("external_id must be 1 to %d bytes of text", maxExternalIDLen)
		}
		a.ExternalID = &x
	}
	if l.CreatedAt != nil {
		t := l.CreatedAt.UTC().Truncate(time.Microsecond) // PostgreSQL's precision
		if t.After(r.Now.Add(24*time.Hour)) || t.Year() < 1970 {
			return Account{}, refuse("created_at is in the future or before 1970")
		}
		a.CreatedAt = &t
	}
	if l.ID != nil {
		if *l.ID == uuid.Nil || *l.ID == uuid.Max {
			return Account{}, refuse("id must be a UUID other than the nil and max UUIDs")
		}
		a.ID, a.GivenID = *l.ID, true
	} else {
		a.ID = account.NewID()
	}
	roles := slices.Compact(slices.Sorted(slices.Values(l.Roles)))
	if len(roles) == 0 {
		roles = []string{account.RoleUser}
	}
	if len(roles) > maxRoles {
		return Account{}, refuse("more than %d roles", maxRoles)
	}
	for _, role := range roles {
		if r.Roles[role] {
			if r.Grantable != nil && !r.Grantable(role) {
				return Account{}, refuse("role %q grants permissions you lack", role)
			}
			continue
		}
		if !r.CreateRoles {
			return Account{}, refuse("unknown role %q (create it, or import with --create-roles / create_roles)", role)
		}
		if !rolePattern.MatchString(role) {
			return Account{}, refuse("role name %q is not lower-case letters, digits and _.:- (at most 64)", role)
		}
	}
	a.Roles = roles
	if a.Format, err = password.Inspect(l.PasswordHash); err != nil {
		var ce *password.CostError
		if errors.As(err, &ce) {
			return Account{}, refuse("password_hash %s", strings.TrimPrefix(ce.Error(), "password hash "))
		}
		return Account{}, refuse("password_hash: %s", err.Error())
	}
	a.LineDigest, a.HashDigest = a.digest(l.ID), sha256.Sum256([]byte(a.PasswordHash))
	return a, nil
}

// digest is SHA-256 of the normalised line (the id only when given: a new
// one is drawn each run).
func (a Account) digest(given *uuid.UUID) [32]byte {
	n := struct {
		ID         *uuid.UUID `json:"id"`
		ExternalID *string    `json:"x"`
		Email      string     `json:"e"`
		Name       *string    `json:"n"`
		Verified   bool       `json:"v"`
		Roles      []string   `json:"r"`
		CreatedAt  *time.Time `json:"c"`
		Disabled   bool       `json:"d"`
		Deleted    bool       `json:"del"`
		Hash       string     `json:"h"`
	}{given, a.ExternalID, a.Email, a.Name, a.Verified, a.Roles, a.CreatedAt, a.Disabled, a.Deleted, a.PasswordHash}
	b, _ := json.Marshal(n) //nolint:errchkjson // plain types only
	return sha256.Sum256(b)
}
