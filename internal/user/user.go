// Package user holds the rules of account management: self-service (profile,
// email change, deletion, sessions) and administration (listing, creation,
// updates, disable, soft delete, restore, roles), and the audit log. Who may
// call what is declared in the contract and enforced before these run.
package user

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/logging"
	"github.com/gatehouse/gatehouse/internal/mail"
)

var (
	// ErrConflict refuses a change the account's state does not allow.
	ErrConflict = errors.New("conflict")
	// ErrUnknownRole names a role that does not exist.
	ErrUnknownRole = errors.New("unknown role")
)

// Status filters users.
type Status string

// Statuses of an account.
const (
	Active   Status = "active"
	Disabled Status = "disabled"
	Deleted  Status = "deleted"
)

// Filter selects users.
type Filter struct {
	EmailPrefix   string
	Role          *string
	Status        *Status
	CreatedAfter  *time.Time
	CreatedBefore *time.Time
}

// Session is a session as its owner sees it.
type Session struct {
	ID            uuid.UUID
	UserAgent     string
	IP            netip.Addr
	CreatedAt     time.Time
	LastUsedAt    time.Time
	IdleExpiresAt time.Time
	ExpiresAt     time.Time
}

// Role is a role with its permissions.
type Role struct {
	Name        string
	Description string
	Permissions []string
}

// AuditEvent is a recorded security event.
type AuditEvent struct {
	ID        uuid.UUID
	Action    string
	ActorID   *uuid.UUID
	SubjectID *uuid.UUID
	IP        *netip.Addr
	UserAgent *string
	RequestID *string
	Details   map[string]any
	CreatedAt time.Time
}

// AuditFilter selects audit events.
type AuditFilter struct {
	ActorID, SubjectID *uuid.UUID
	Action             *string
	Since, Until       *time.Time
}

// Changes is an administrator's update; nil fields stay as they are.
type Changes struct {
	Name          *string
	Email         *string
	EmailVerified *bool
	Disabled      *bool
}

// Store is the record of accounts for management.
type Store interface {
	CreateUser(ctx context.Context, u auth.NewUser) (auth.User, error)
	EnqueueMail(ctx context.Context, mails ...auth.Mail) error
	ListUsers(ctx context.Context, f Filter, before uuid.UUID, limit int) ([]auth.User, error)
	// GetUser finds any user, deleted ones included.
	GetUser(ctx context.Context, id uuid.UUID) (auth.User, error)
	UpdateName(ctx context.Context, id uuid.UUID, name *string) error
	// Update applies c in one transaction; when it disables the user it also
	// revokes every session and returns the new token version (else 0).
	Update(ctx context.Context, id uuid.UUID, c Changes) (int64, error)
	// SoftDelete marks the user deleted and revokes every session.
	SoftDelete(ctx context.Context, id uuid.UUID) (int64, error)
	Restore(ctx context.Context, id uuid.UUID) error
	// SetRoles replaces the roles and revokes every session.
	SetRoles(ctx context.Context, id uuid.UUID, roles []string) (int64, error)
	ListSessions(ctx context.Context, userID, before uuid.UUID, limit int) ([]Session, error)
	RevokeOwnSession(ctx context.Context, userID, sessionID uuid.UUID) (bool, error)
	ListRoles(ctx context.Context) ([]Role, error)
	ListAudit(ctx context.Context, f AuditFilter, before uuid.UUID, limit int) ([]AuditEvent, error)
	PruneAudit(ctx context.Context, before time.Time) (int64, error)
	TargetPermissions(ctx context.Context, id uuid.UUID) ([]string, error)
	RolePermissions(ctx context.Context, roles []string) ([]string, error)
}

// covers reports whether the caller holds every permission in perms: no one
// manages a user more powerful than themselves, or grants what they lack.
func covers(p auth.Principal, perms []string) bool { return p.Has(perms...) }

// guard refuses to act on a user whose permissions the caller lacks.
func (s *Service) guard(ctx context.Context, p auth.Principal, id uuid.UUID) error {
	perms, err := s.store.TargetPermissions(ctx, id)
	if err != nil {
		return err
	}
	if !covers(p, perms) {
		return auth.ErrForbidden
	}
	return nil
}

// manage loads a user an administrator is about to change: it must exist,
// be live (deleted ones are restored first) and hold no permission the
// caller lacks.
func (s *Service) manage(ctx context.Context, p auth.Principal, id uuid.UUID) (auth.User, error) {
	u, err := s.store.GetUser(ctx, id)
	if err != nil {
		return auth.User{}, err
	}
	if u.DeletedAt != nil {
		return auth.User{}, auth.ErrNotFound
	}
	return u, s.guard(ctx, p, id)
}

// mayGrant refuses roles that carry permissions the caller lacks.
func (s *Service) mayGrant(ctx context.Context, p auth.Principal, roles []string) error {
	perms, err := s.store.RolePermissions(ctx, roles)
	if err != nil {
		return err
	}
	if !covers(p, perms) {
		return auth.ErrForbidden
	}
	return nil
}

// Auth is what management needs of authentication.
type Auth interface {
	ParseEmail(raw string) (string, error)
	CheckPassword(ctx context.Context, pw, email string, name *string) error
	HashPassword(ctx context.Context, pw string) (string, error)
	VerifyPassword(ctx context.Context, u auth.User, pw string) error
	RevokeUser(ctx context.Context, id uuid.UUID, reason string) error
	PublishUserRevocation(ctx context.Context, id uuid.UUID, version int64)
	PublishSessionRevocation(ctx context.Context, sid uuid.UUID)
	Audit(ctx context.Context, e auth.Event)
}

// Service implements account management.
type Service struct {
	store Store
	auth  Auth
}

// NewService returns the management service.
func NewService(s Store, a Auth) *Service { return &Service{store: s, auth: a} }

func event(action string, actor auth.Principal, subject uuid.UUID, c auth.Client, details map[string]any) auth.Event {
	return auth.Event{Action: action, ActorID: &actor.UserID, SubjectID: &subject, Client: c, Details: details}
}

// UpdateMe changes the caller's name now and, for a new email (which needs
// the current password), sends a confirmation link to it: the address
// changes only when it is followed. Whether the new address is free is not
// revealed here; the confirmation says so.
func (s *Service) UpdateMe(ctx context.Context, p auth.Principal, name, email, currentPassword *string, c auth.Client) (auth.User, error) {
	u, err := s.self(ctx, p)
	if err != nil {
		return auth.User{}, err
	}
	if email != nil {
		e, err := s.auth.ParseEmail(*email)
		if err != nil {
			return auth.User{}, err
		}
		if e != u.Email {
			if currentPassword == nil {
				return auth.User{}, auth.ErrWrongPassword
			}
			if err := s.auth.VerifyPassword(ctx, u, *currentPassword); err != nil {
				return auth.User{}, err
			}
			// The confirmation goes to the new address; the old one hears of the
			// request, so a hijacked session cannot move the account quietly.
			keep := p.SessionID
			mails := []auth.Mail{{Kind: mail.EmailChange, UserID: u.ID, To: e, KeepSession: &keep, TokenVersion: &u.TokenVersion}}
			if u.EmailVerifiedAt != nil { // no notices to an address nobody proved to own
				mails = append(mails, auth.Mail{Kind: mail.EmailChangeNotice, UserID: u.ID, To: u.Email, NewEmail: e})
			}
			if err := s.store.EnqueueMail(ctx, mails...); err != nil {
				return auth.User{}, err
			}
			s.auth.Audit(ctx, event("user.email.change_requested", p, u.ID, c, map[string]any{"new_email": logging.MaskEmail(e)}))
		}
	}
	if name != nil {
		if err := s.store.UpdateName(ctx, u.ID, name); err != nil {
			return auth.User{}, err
		}
		s.auth.Audit(ctx, event("user.updated", p, u.ID, c, map[string]any{"fields": []string{"name"}}))
	}
	return s.store.GetUser(ctx, u.ID)
}

// DeleteMe soft-deletes the caller's account after checking its password.
func (s *Service) DeleteMe(ctx context.Context, p auth.Principal, pw string, c auth.Client) error {
	u, err := s.self(ctx, p)
	if err != nil {
		return err
	}
	if err := s.auth.VerifyPassword(ctx, u, pw); err != nil {
		return err
	}
	return s.delete(ctx, p, u.ID, c)
}

func (s *Service) delete(ctx context.Context, p auth.Principal, id uuid.UUID, c auth.Client) error {
	v, err := s.store.SoftDelete(ctx, id)
	if err != nil {
		return err
	}
	s.auth.PublishUserRevocation(ctx, id, v)
	s.auth.Audit(ctx, event("user.deleted", p, id, c, nil))
	return nil
}

// self is the caller's own, live account.
func (s *Service) self(ctx context.Context, p auth.Principal) (auth.User, error) {
	u, err := s.store.GetUser(ctx, p.UserID)
	if err == nil && u.DeletedAt != nil {
		return auth.User{}, auth.ErrNotFound
	}
	return u, err
}

// MySessions lists the caller's live sessions.
func (s *Service) MySessions(ctx context.Context, p auth.Principal, before uuid.UUID, limit int) ([]Session, error) {
	return s.store.ListSessions(ctx, p.UserID, before, limit)
}

// RevokeMySession ends one of the caller's sessions; another user's session
// is "not found", never revealed.
func (s *Service) RevokeMySession(ctx context.Context, p auth.Principal, sid uuid.UUID, c auth.Client) error {
	ok, err := s.store.RevokeOwnSession(ctx, p.UserID, sid)
	if err != nil {
		return err
	}
	if !ok {
		return auth.ErrNotFound
	}
	s.auth.PublishSessionRevocation(ctx, sid)
	s.auth.Audit(ctx, event("session.revoked", p, p.UserID, c, map[string]any{"session_id": sid}))
	return nil
}

// List lists users.
func (s *Service) List(ctx context.Context, f Filter, before uuid.UUID, limit int) ([]auth.User, error) {
	return s.store.ListUsers(ctx, f, before, limit)
}

// Get reads any user.
func (s *Service) Get(ctx context.Context, id uuid.UUID) (auth.User, error) {
	return s.store.GetUser(ctx, id)
}

// NewAccount is an account an administrator creates.
type NewAccount struct {
	Email, Password string
	Name            *string
	Roles           []string
	Verified        bool
}

// Create makes an account (409 when the address is taken).
func (s *Service) Create(ctx context.Context, p auth.Principal, n NewAccount, c auth.Client) (auth.User, error) {
	email, err := s.auth.ParseEmail(n.Email)
	if err != nil {
		return auth.User{}, err
	}
	if err := s.auth.CheckPassword(ctx, n.Password, email, n.Name); err != nil {
		return auth.User{}, err
	}
	roles := n.Roles
	if len(roles) == 0 {
		roles = []string{auth.RoleUser}
	}
	if err := s.checkRoles(ctx, roles); err != nil {
		return auth.User{}, err
	}
	// Granting roles is assigning them: it needs roles:assign, and only
	// permissions the caller holds.
	if !slices.Equal(roles, []string{auth.RoleUser}) && !p.Has("roles:assign") {
		return auth.User{}, auth.ErrForbidden
	}
	if err := s.mayGrant(ctx, p, roles); err != nil {
		return auth.User{}, err
	}
	hash, err := s.auth.HashPassword(ctx, n.Password)
	if err != nil {
		return auth.User{}, err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return auth.User{}, err
	}
	nu := auth.NewUser{ID: id, Email: email, PasswordHash: hash, Name: n.Name, Verified: n.Verified, Roles: roles}
	if !n.Verified {
		nu.Mails = []auth.Mail{{Kind: mail.VerifyEmail, UserID: id, To: email}}
	}
	u, err := s.store.CreateUser(ctx, nu)
	if err != nil {
		return auth.User{}, err
	}
	s.auth.Audit(ctx, event("user.created", p, u.ID, c, map[string]any{"email": logging.MaskEmail(email), "roles": roles}))
	return s.store.GetUser(ctx, u.ID)
}

func (s *Service) checkRoles(ctx context.Context, roles []string) error {
	all, err := s.store.ListRoles(ctx)
	if err != nil {
		return err
	}
	for _, r := range roles {
		if !slices.ContainsFunc(all, func(x Role) bool { return x.Name == r }) {
			return ErrUnknownRole
		}
	}
	return nil
}

// Update applies an administrator's changes. Disabling ends every session.
func (s *Service) Update(ctx context.Context, p auth.Principal, id uuid.UUID, ch Changes, c auth.Client) (auth.User, error) {
	if _, err := s.manage(ctx, p, id); err != nil {
		return auth.User{}, err
	}
	if ch.Email != nil {
		e, err := s.auth.ParseEmail(*ch.Email)
		if err != nil {
			return auth.User{}, err
		}
		ch.Email = &e
	}
	v, err := s.store.Update(ctx, id, ch)
	if err != nil {
		return auth.User{}, err
	}
	if v > 0 {
		s.auth.PublishUserRevocation(ctx, id, v)
	}
	var fields []string
	if ch.Name != nil {
		fields = append(fields, "name")
	}
	if ch.Email != nil {
		fields = append(fields, "email")
	}
	if ch.EmailVerified != nil {
		fields = append(fields, "email_verified")
	}
	if ch.Disabled != nil {
		action := "user.enabled"
		if *ch.Disabled {
			action = "user.disabled"
		}
		s.auth.Audit(ctx, event(action, p, id, c, nil))
	}
	if len(fields) > 0 {
		s.auth.Audit(ctx, event("user.updated", p, id, c, map[string]any{"fields": fields}))
	}
	return s.store.GetUser(ctx, id)
}

// Delete soft-deletes a user and ends every session.
func (s *Service) Delete(ctx context.Context, p auth.Principal, id uuid.UUID, c auth.Client) error {
	if _, err := s.manage(ctx, p, id); err != nil {
		return err
	}
	return s.delete(ctx, p, id, c)
}

// Restore undoes a soft delete (409 when the address was taken meanwhile, or
// when the user is not deleted).
func (s *Service) Restore(ctx context.Context, p auth.Principal, id uuid.UUID, c auth.Client) (auth.User, error) {
	u, err := s.store.GetUser(ctx, id)
	if err != nil {
		return auth.User{}, err
	}
	if u.DeletedAt == nil {
		return auth.User{}, ErrConflict
	}
	if err := s.guard(ctx, p, id); err != nil {
		return auth.User{}, err
	}
	if err := s.store.Restore(ctx, id); err != nil {
		return auth.User{}, err
	}
	s.auth.Audit(ctx, event("user.restored", p, id, c, nil))
	return s.store.GetUser(ctx, id)
}

// SetRoles replaces a user's roles; the user's tokens are refused from the
// next request on, so the new permissions apply at once.
func (s *Service) SetRoles(ctx context.Context, p auth.Principal, id uuid.UUID, roles []string, c auth.Client) (auth.User, error) {
	if err := s.checkRoles(ctx, roles); err != nil {
		return auth.User{}, err
	}
	u, err := s.manage(ctx, p, id)
	if err != nil {
		return auth.User{}, err
	}
	if err := s.mayGrant(ctx, p, roles); err != nil {
		return auth.User{}, err
	}
	v, err := s.store.SetRoles(ctx, id, roles)
	if err != nil {
		return auth.User{}, err
	}
	s.auth.PublishUserRevocation(ctx, id, v)
	s.auth.Audit(ctx, event("user.roles.changed", p, id, c, map[string]any{"from": u.Roles, "to": roles}))
	return s.store.GetUser(ctx, id)
}

// RevokeSessions ends every session of a user.
func (s *Service) RevokeSessions(ctx context.Context, p auth.Principal, id uuid.UUID, c auth.Client) error {
	if _, err := s.manage(ctx, p, id); err != nil {
		return err
	}
	if err := s.auth.RevokeUser(ctx, id, "revoked_by_admin"); err != nil {
		return err
	}
	s.auth.Audit(ctx, event("user.sessions.revoked", p, id, c, nil))
	return nil
}

// Roles lists the roles.
func (s *Service) Roles(ctx context.Context) ([]Role, error) { return s.store.ListRoles(ctx) }

// Audit lists audit events, newest first.
func (s *Service) Audit(ctx context.Context, f AuditFilter, before uuid.UUID, limit int) ([]AuditEvent, error) {
	return s.store.ListAudit(ctx, f, before, limit)
}
