// Package user holds the rules of account management: self-service (profile,
// email change, deletion, sessions) and administration (listing, creation,
// updates, disable, soft delete, restore, roles), and the audit log. Who may
// call what is declared in the contract and enforced before these run.
package user

import (
	"cmp"
	"context"
	"errors"
	"net/netip"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/gatehouse/gatehouse/internal/account"
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
	// ExternalID, when set, finds the one user with this id in the system
	// it was imported from.
	ExternalID    *string
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
	Action    account.Action
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
	Action             *account.Action
	Since, Until       *time.Time
}

// Changes is an administrator's update; nil fields stay as they are.
type Changes struct {
	Name          *string
	Email         *string
	EmailVerified *bool
	Disabled      *bool
}

// Target is a user about to be changed, locked until the change commits,
// with what the rules about whom one may manage need.
type Target struct {
	User account.Profile // without its password hash
	// Roles maps every role to the permissions it grants.
	Roles map[string][]string
}

// Permissions lists what the target's roles grant.
func (t Target) Permissions() []string {
	var out []string
	for _, r := range t.User.Roles {
		out = append(out, t.Roles[r]...)
	}
	return out
}

// Edit is what a change writes, in the transaction that locked its target.
type Edit struct {
	// User is the target as the change leaves it: its name, email,
	// email_verified_at, disabled_at, deleted_at and roles are written.
	User account.Profile
	// EndSessions, when set, ends every session and access token of the
	// user, for this reason.
	EndSessions string
	// Events and Mails are recorded with the change, never without it.
	Events []account.Event
	Mails  []account.Mail
}

// Store is the record of accounts for management.
type Store interface {
	CreateUser(ctx context.Context, u account.NewUser) (account.Profile, error)
	// UserByID finds a live user with its password hash.
	UserByID(ctx context.Context, id uuid.UUID) (account.User, error)
	// GetUser finds any user, deleted ones included, without its hash.
	GetUser(ctx context.Context, id uuid.UUID) (account.Profile, error)
	// Me is GetUser with the user's MFA status, read at once.
	Me(ctx context.Context, id uuid.UUID) (account.Profile, auth.MFAStatus, error)
	ListUsers(ctx context.Context, f Filter, p account.PageRequest) (account.Page[account.Profile], error)
	// Manage changes a user in one transaction: it locks the user (deleted
	// ones included), lets decide apply the rules and say what to write, and
	// writes that with its events and mails. It returns the user as the change
	// left it and, when the change ended the sessions, the user's new token
	// version (else 0). decide's error is returned as it is.
	Manage(ctx context.Context, id uuid.UUID, decide func(Target) (Edit, error)) (account.Profile, int64, error)
	ListSessions(ctx context.Context, userID uuid.UUID, p account.PageRequest) (account.Page[Session], error)
	// RevokeOwnSession ends a session of userID's and records e with it; false
	// when userID has no such live session.
	RevokeOwnSession(ctx context.Context, userID, sessionID uuid.UUID, e account.Event) (bool, error)
	ListRoles(ctx context.Context) ([]Role, error)
	ListAudit(ctx context.Context, f AuditFilter, p account.PageRequest) (account.Page[AuditEvent], error)
	PruneAudit(ctx context.Context, before time.Time) (int64, error)
}

// The rules about whom one may manage. The contract's x-permissions say who
// may call an operation at all (users:write, roles:assign ...); these say on
// whom: no one acts on a user more powerful than themselves, or grants a
// role carrying a permission they lack. They run inside the transaction that
// locks the target, so a target promoted meanwhile is judged as promoted.

// mayManage refuses a deleted target (restore it first) and one holding a
// permission the caller lacks.
func mayManage(p account.Principal, t Target) error {
	if t.User.DeletedAt != nil {
		return account.ErrNotFound
	}
	return mayActOn(p, t)
}

// mayActOn refuses a target holding a permission the caller lacks.
func mayActOn(p account.Principal, t Target) error {
	if !p.Has(t.Permissions()...) {
		return account.ErrForbidden
	}
	return nil
}

// mayGrant refuses roles carrying a permission the caller lacks.
func mayGrant(p account.Principal, all map[string][]string, roles []string) error {
	for _, r := range roles {
		if !p.Has(all[r]...) {
			return account.ErrForbidden
		}
	}
	return nil
}

// known refuses roles that do not exist.
func known(all map[string][]string, roles []string) error {
	for _, r := range roles {
		if _, ok := all[r]; !ok {
			return ErrUnknownRole
		}
	}
	return nil
}

// Auth is what management needs of authentication.
type Auth interface {
	ParseEmail(raw string) (string, error)
	CheckPassword(ctx context.Context, pw, email string, name *string) error
	HashPassword(ctx context.Context, pw string) (string, error)
	VerifyPassword(ctx context.Context, u account.User, pw string) error
	PublishUserRevocation(ctx context.Context, id uuid.UUID, version int64)
	PublishSessionRevocation(ctx context.Context, sid uuid.UUID)
}

// Service implements account management.
type Service struct {
	store Store
	auth  Auth
	now   func() time.Time
}

// NewService returns the management service.
func NewService(s Store, a Auth) *Service { return &Service{store: s, auth: a, now: time.Now} }

func event(action account.Action, actor account.Principal, subject uuid.UUID, c account.Client, details map[string]any) account.Event {
	return account.Event{Action: action, ActorID: &actor.UserID, SubjectID: &subject, Client: c, Details: details}
}

// manage runs one change through the store and makes the revocation it
// caused known to every instance.
func (s *Service) manage(ctx context.Context, id uuid.UUID, decide func(Target) (Edit, error)) (account.Profile, error) {
	u, v, err := s.store.Manage(ctx, id, decide)
	if err != nil {
		return account.Profile{}, err
	}
	if v > 0 {
		s.auth.PublishUserRevocation(ctx, id, v)
	}
	return u, nil
}

// Me returns the caller's own, live account and its MFA status.
func (s *Service) Me(ctx context.Context, p account.Principal) (account.Profile, auth.MFAStatus, error) {
	u, st, err := s.store.Me(ctx, p.UserID)
	if err == nil && u.DeletedAt != nil {
		return account.Profile{}, auth.MFAStatus{}, account.ErrNotFound
	}
	return u, st, err
}

// UpdateMe changes the caller's name now and, for a new email (which needs
// the current password), sends a confirmation link to it: the address
// changes only when it is followed. Whether the new address is free is not
// revealed here; the confirmation says so.
func (s *Service) UpdateMe(ctx context.Context, p account.Principal, name, email, currentPassword *string, c account.Client) (account.Profile, error) {
	var newEmail string
	if email != nil {
		e, err := s.auth.ParseEmail(*email)
		if err != nil {
			return account.Profile{}, err
		}
		newEmail = e
	}
	var asked bool // an email change the password confirmed
	if name == nil && newEmail == "" {
		u, _, err := s.Me(ctx, p)
		return u, err
	}
	if newEmail != "" {
		u, err := s.store.UserByID(ctx, p.UserID)
		if err != nil {
			return account.Profile{}, err
		}
		if newEmail != u.Email {
			if currentPassword == nil {
				return account.Profile{}, auth.ErrWrongPassword
			}
			if err := s.auth.VerifyPassword(ctx, u, *currentPassword); err != nil {
				return account.Profile{}, err
			}
			asked = true
		}
	}
	return s.manage(ctx, p.UserID, func(t Target) (Edit, error) {
		u := t.User
		if u.DeletedAt != nil {
			return Edit{}, account.ErrNotFound
		}
		e := Edit{User: u}
		if asked && newEmail != u.Email {
			// The confirmation goes to the new address; the old one hears of the
			// request, so a hijacked session cannot move the account quietly.
			keep := p.SessionID
			e.Mails = []account.Mail{{Kind: mail.EmailChange, UserID: u.ID, To: newEmail, KeepSession: &keep, TokenVersion: &u.TokenVersion}}
			if u.EmailVerifiedAt != nil { // no notices to an address nobody proved to own
				e.Mails = append(e.Mails, account.Mail{Kind: mail.EmailChangeNotice, UserID: u.ID, To: u.Email, NewEmail: newEmail})
			}
			e.Events = append(e.Events, event(account.ActionEmailChangeRequested, p, u.ID, c, map[string]any{"new_email": logging.MaskEmail(newEmail)}))
		}
		if name != nil {
			e.User.Name = name
			e.Events = append(e.Events, event(account.ActionUserUpdated, p, u.ID, c, map[string]any{"fields": []string{"name"}}))
		}
		return e, nil
	})
}

// DeleteMe soft-deletes the caller's account after checking its password.
func (s *Service) DeleteMe(ctx context.Context, p account.Principal, pw string, c account.Client) error {
	u, err := s.store.UserByID(ctx, p.UserID)
	if err != nil {
		return err
	}
	if err := s.auth.VerifyPassword(ctx, u, pw); err != nil {
		return err
	}
	_, err = s.manage(ctx, u.ID, func(t Target) (Edit, error) {
		if t.User.DeletedAt != nil {
			return Edit{}, account.ErrNotFound
		}
		return s.deletion(p, t, c), nil
	})
	return err
}

// deletion soft-deletes the target and ends every session.
func (s *Service) deletion(p account.Principal, t Target, c account.Client) Edit {
	e := Edit{User: t.User, EndSessions: "deleted", Events: []account.Event{event(account.ActionUserDeleted, p, t.User.ID, c, nil)}}
	e.User.DeletedAt = ptr(s.now())
	return e
}

// MySessions lists the caller's live sessions.
func (s *Service) MySessions(ctx context.Context, p account.Principal, pr account.PageRequest) (account.Page[Session], error) {
	return s.store.ListSessions(ctx, p.UserID, pr)
}

// RevokeMySession ends one of the caller's sessions; another user's session
// is "not found", never revealed.
func (s *Service) RevokeMySession(ctx context.Context, p account.Principal, sid uuid.UUID, c account.Client) error {
	ok, err := s.store.RevokeOwnSession(ctx, p.UserID, sid, event(account.ActionSessionRevoked, p, p.UserID, c, map[string]any{"session_id": sid}))
	if err != nil {
		return err
	}
	if !ok {
		return account.ErrNotFound
	}
	s.auth.PublishSessionRevocation(ctx, sid)
	return nil
}

// List lists users.
func (s *Service) List(ctx context.Context, f Filter, p account.PageRequest) (account.Page[account.Profile], error) {
	return s.store.ListUsers(ctx, f, p)
}

// Get reads any user.
func (s *Service) Get(ctx context.Context, id uuid.UUID) (account.Profile, error) {
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
func (s *Service) Create(ctx context.Context, p account.Principal, n NewAccount, c account.Client) (account.Profile, error) {
	email, err := s.auth.ParseEmail(n.Email)
	if err != nil {
		return account.Profile{}, err
	}
	if err := s.auth.CheckPassword(ctx, n.Password, email, n.Name); err != nil {
		return account.Profile{}, err
	}
	roles := slices.Compact(slices.Sorted(slices.Values(n.Roles)))
	if len(roles) == 0 {
		roles = []string{account.RoleUser}
	}
	all, err := s.roles(ctx)
	if err != nil {
		return account.Profile{}, err
	}
	if err := known(all, roles); err != nil {
		return account.Profile{}, err
	}
	// Granting roles is assigning them: it needs roles:assign, and only
	// permissions the caller holds.
	if !slices.Equal(roles, []string{account.RoleUser}) && !p.Has(account.PermRolesAssign) {
		return account.Profile{}, account.ErrForbidden
	}
	if err := mayGrant(p, all, roles); err != nil {
		return account.Profile{}, err
	}
	hash, err := s.auth.HashPassword(ctx, n.Password)
	if err != nil {
		return account.Profile{}, err
	}
	id := account.NewID()
	nu := account.NewUser{
		ID: id, Email: email, PasswordHash: hash, Name: n.Name, Verified: n.Verified, Roles: roles,
		Events: []account.Event{event(account.ActionUserCreated, p, id, c, map[string]any{"email": logging.MaskEmail(email), "roles": roles})},
	}
	if !n.Verified {
		nu.Mails = []account.Mail{{Kind: mail.VerifyEmail, UserID: id, To: email}}
	}
	return s.store.CreateUser(ctx, nu)
}

// roles maps every role to its permissions. Roles are fixed by the
// migrations, so a check against them outside a transaction cannot go stale.
func (s *Service) roles(ctx context.Context) (map[string][]string, error) {
	list, err := s.store.ListRoles(ctx)
	if err != nil {
		return nil, err
	}
	all := make(map[string][]string, len(list))
	for _, r := range list {
		all[r.Name] = r.Permissions
	}
	return all, nil
}

// Update applies an administrator's changes. A new address or disabling
// ends every session.
func (s *Service) Update(ctx context.Context, p account.Principal, id uuid.UUID, ch Changes, c account.Client) (account.Profile, error) {
	if ch.Email != nil {
		e, err := s.auth.ParseEmail(*ch.Email)
		if err != nil {
			return account.Profile{}, err
		}
		ch.Email = &e
	}
	return s.manage(ctx, id, func(t Target) (Edit, error) {
		if err := mayManage(p, t); err != nil {
			return Edit{}, err
		}
		return s.update(p, t, ch, c), nil
	})
}

// update is the edit of an administrator's changes.
func (s *Service) update(p account.Principal, t Target, ch Changes, c account.Client) Edit {
	now := s.now()
	e := Edit{User: t.User}
	u := &e.User
	var fields []string
	if ch.Name != nil {
		u.Name = ch.Name
		fields = append(fields, "name")
	}
	if ch.Email != nil {
		fields = append(fields, "email")
	}
	if ch.EmailVerified != nil {
		fields = append(fields, "email_verified")
	}
	switch {
	case ch.Email != nil && *ch.Email != u.Email:
		// An administrator's change applies at once, verified only if said so;
		// it ends every session and kills every pending link.
		u.Email, u.EmailVerifiedAt = *ch.Email, nil
		if ch.EmailVerified != nil && *ch.EmailVerified {
			u.EmailVerifiedAt = &now
		}
		e.EndSessions = "email_changed"
	case ch.EmailVerified != nil && !*ch.EmailVerified:
		u.EmailVerifiedAt = nil
	case ch.EmailVerified != nil && u.EmailVerifiedAt == nil:
		u.EmailVerifiedAt = &now
	}
	if ch.Disabled != nil {
		action := account.ActionUserEnabled
		if *ch.Disabled {
			action = account.ActionUserDisabled
		}
		switch {
		case *ch.Disabled && u.DisabledAt == nil:
			u.DisabledAt = &now
			e.EndSessions = cmp.Or(e.EndSessions, "disabled")
		case !*ch.Disabled:
			u.DisabledAt = nil
		}
		e.Events = append(e.Events, event(action, p, u.ID, c, nil))
	}
	if len(fields) > 0 {
		e.Events = append(e.Events, event(account.ActionUserUpdated, p, u.ID, c, map[string]any{"fields": fields}))
	}
	return e
}

// Delete soft-deletes a user and ends every session.
func (s *Service) Delete(ctx context.Context, p account.Principal, id uuid.UUID, c account.Client) error {
	_, err := s.manage(ctx, id, func(t Target) (Edit, error) {
		if err := mayManage(p, t); err != nil {
			return Edit{}, err
		}
		return s.deletion(p, t, c), nil
	})
	return err
}

// Restore undoes a soft delete (409 when the address was taken meanwhile, or
// when the user is not deleted).
func (s *Service) Restore(ctx context.Context, p account.Principal, id uuid.UUID, c account.Client) (account.Profile, error) {
	return s.manage(ctx, id, func(t Target) (Edit, error) {
		if t.User.DeletedAt == nil {
			return Edit{}, ErrConflict
		}
		if err := mayActOn(p, t); err != nil {
			return Edit{}, err
		}
		e := Edit{User: t.User, Events: []account.Event{event(account.ActionUserRestored, p, t.User.ID, c, nil)}}
		e.User.DeletedAt = nil
		return e, nil
	})
}

// SetRoles replaces a user's roles; the user's tokens are refused from the
// next request on, so the new permissions apply at once.
func (s *Service) SetRoles(ctx context.Context, p account.Principal, id uuid.UUID, roles []string, c account.Client) (account.Profile, error) {
	roles = slices.Compact(slices.Sorted(slices.Values(roles))) // the order they are listed in
	return s.manage(ctx, id, func(t Target) (Edit, error) {
		if err := known(t.Roles, roles); err != nil {
			return Edit{}, err
		}
		if err := mayManage(p, t); err != nil {
			return Edit{}, err
		}
		if err := mayGrant(p, t.Roles, roles); err != nil {
			return Edit{}, err
		}
		e := Edit{
			User: t.User, EndSessions: "roles_changed",
			Events: []account.Event{event(account.ActionRolesChanged, p, t.User.ID, c, map[string]any{"from": t.User.Roles, "to": roles})},
		}
		e.User.Roles = roles
		return e, nil
	})
}

// RevokeSessions ends every session of a user.
func (s *Service) RevokeSessions(ctx context.Context, p account.Principal, id uuid.UUID, c account.Client) error {
	_, err := s.manage(ctx, id, func(t Target) (Edit, error) {
		if err := mayManage(p, t); err != nil {
			return Edit{}, err
		}
		return Edit{User: t.User, EndSessions: "revoked_by_admin", Events: []account.Event{event(account.ActionSessionsRevoked, p, t.User.ID, c, nil)}}, nil
	})
	return err
}

// Roles lists the roles.
func (s *Service) Roles(ctx context.Context) ([]Role, error) { return s.store.ListRoles(ctx) }

// Audit lists audit events, newest first.
func (s *Service) Audit(ctx context.Context, f AuditFilter, p account.PageRequest) (account.Page[AuditEvent], error) {
	return s.store.ListAudit(ctx, f, p)
}

func ptr[T any](v T) *T { return &v }
