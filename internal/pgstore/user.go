package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"

	db "github.com/gatehouse/gatehouse/gen/db"
	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/user"
)

var _ user.Store = (*Store)(nil)

// uniqueEmail turns the violation of the live-email index into the domain error.
func uniqueEmail(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "23505":
			return auth.ErrEmailTaken
		case "23514": // the email length check: an address NFC made too long
			return auth.ErrInvalidEmail
		}
	}
	return unavailable(err)
}

// maxRows converts a page's row count for sqlc's int32 LIMIT parameter. The
// services ask for a page and one row more; a count beyond int32 is clamped
// rather than wrapped into a negative LIMIT.
func maxRows(limit int) int32 {
	if limit > math.MaxInt32 {
		return math.MaxInt32
	}
	if limit < 0 {
		return 0
	}
	return int32(limit)
}

// likePrefix escapes a prefix for LIKE.
func likePrefix(p string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return r.Replace(p) + "%"
}

func fromRow(id uuid.UUID, email string, verified *time.Time, hash string, name *string, disabled *time.Time, version int64,
	created, updated time.Time, deleted *time.Time, roles []string,
) auth.User {
	return auth.User{
		ID: id, Email: email, EmailVerifiedAt: verified, PasswordHash: hash, Name: name, DisabledAt: disabled,
		TokenVersion: version, CreatedAt: created, UpdatedAt: updated, DeletedAt: deleted, Roles: roles,
	}
}

// ListUsers lists one page of users, newest first, before the given id.
func (s *Store) ListUsers(ctx context.Context, f user.Filter, before uuid.UUID, limit int) ([]auth.User, error) {
	pattern := likePrefix(strings.ToLower(f.EmailPrefix))
	var out []auth.User
	if f.Status != nil && *f.Status == user.Deleted {
		rows, err := s.q.ListDeletedUsers(ctx, db.ListDeletedUsersParams{
			BeforeID: before, EmailPattern: pattern, Role: f.Role,
			CreatedAfter: f.CreatedAfter, CreatedBefore: f.CreatedBefore, MaxRows: maxRows(limit),
		})
		if err != nil {
			return nil, unavailable(fmt.Errorf("list deleted users: %w", err))
		}
		for _, r := range rows {
			out = append(out, fromRow(r.ID, r.Email, r.EmailVerifiedAt, r.PasswordHash, r.Name, r.DisabledAt, r.TokenVersion, r.CreatedAt, r.UpdatedAt, r.DeletedAt, r.Roles))
		}
		return out, nil
	}
	var disabled *bool
	if f.Status != nil {
		d := *f.Status == user.Disabled
		disabled = &d
	}
	rows, err := s.q.ListLiveUsers(ctx, db.ListLiveUsersParams{
		BeforeID: before, Disabled: disabled, EmailPattern: pattern, Role: f.Role,
		CreatedAfter: f.CreatedAfter, CreatedBefore: f.CreatedBefore, MaxRows: maxRows(limit),
	})
	if err != nil {
		return nil, unavailable(fmt.Errorf("list users: %w", err))
	}
	for _, r := range rows {
		out = append(out, fromRow(r.ID, r.Email, r.EmailVerifiedAt, r.PasswordHash, r.Name, r.DisabledAt, r.TokenVersion, r.CreatedAt, r.UpdatedAt, r.DeletedAt, r.Roles))
	}
	return out, nil
}

// GetUser finds any user, deleted ones included.
func (s *Store) GetUser(ctx context.Context, id uuid.UUID) (auth.User, error) {
	r, err := s.q.GetAnyUser(ctx, id)
	if err != nil {
		return auth.User{}, notFound(err)
	}
	return fromRow(r.ID, r.Email, r.EmailVerifiedAt, r.PasswordHash, r.Name, r.DisabledAt, r.TokenVersion, r.CreatedAt, r.UpdatedAt, r.DeletedAt, r.Roles), nil
}

// UpdateName sets the display name.
func (s *Store) UpdateName(ctx context.Context, id uuid.UUID, name *string) error {
	return unavailable(s.q.UpdateUserName(ctx, db.UpdateUserNameParams{ID: id, Name: name}))
}

// Update applies an administrator's changes in one transaction.
func (s *Store) Update(ctx context.Context, id uuid.UUID, c user.Changes) (int64, error) {
	var v int64
	err := s.withTx(ctx, func(q *db.Queries) error {
		u, err := q.GetAnyUserForUpdate(ctx, id)
		if err != nil {
			return notFound(err)
		}
		now := time.Now()
		if c.Name != nil {
			if err := q.UpdateUserName(ctx, db.UpdateUserNameParams{ID: id, Name: c.Name}); err != nil {
				return err
			}
		}
		if c.Email != nil && *c.Email != u.Email {
			// An administrator's change applies at once; it is verified only if said so.
			var verified *time.Time
			if c.EmailVerified != nil && *c.EmailVerified {
				verified = &now
			}
			if err := checkNotReserved(ctx, q, *c.Email, id); err != nil {
				return err
			}
			if err := q.UpdateUserEmail(ctx, db.UpdateUserEmailParams{ID: id, Email: *c.Email, EmailVerifiedAt: verified}); err != nil {
				return uniqueEmail(err)
			}
			// A new address ends every session and kills every pending link.
			if v, err = revokeAll(ctx, q, id, "email_changed"); err != nil {
				return err
			}
		} else if c.EmailVerified != nil {
			var verified *time.Time
			if *c.EmailVerified {
				verified = cmpOr(u.EmailVerifiedAt, &now)
			}
			if err := q.SetUserVerified(ctx, db.SetUserVerifiedParams{ID: id, EmailVerifiedAt: verified}); err != nil {
				return err
			}
		}
		if c.Disabled != nil {
			switch {
			case *c.Disabled && u.DisabledAt == nil:
				if err := q.SetUserDisabled(ctx, db.SetUserDisabledParams{ID: id, DisabledAt: &now}); err != nil {
					return err
				}
				if v, err = revokeAll(ctx, q, id, "disabled"); err != nil {
					return err
				}
			case !*c.Disabled && u.DisabledAt != nil:
				if err := q.SetUserDisabled(ctx, db.SetUserDisabledParams{ID: id}); err != nil {
					return err
				}
			}
		}
		return nil
	})
	return v, err
}

func cmpOr(a, b *time.Time) *time.Time {
	if a != nil {
		return a
	}
	return b
}

// revokeAll bumps the token version and revokes every session, in q's transaction.
func revokeAll(ctx context.Context, q *db.Queries, id uuid.UUID, reason string) (int64, error) {
	v, err := q.BumpTokenVersion(ctx, id)
	if err != nil {
		return 0, notFound(err)
	}
	if _, err := q.RevokeUserSessions(ctx, db.RevokeUserSessionsParams{UserID: id, Reason: &reason}); err != nil {
		return 0, fmt.Errorf("revoke sessions: %w", err)
	}
	if err := q.CancelAllOneTimeTokens(ctx, id); err != nil {
		return 0, fmt.Errorf("cancel tokens: %w", err)
	}
	return v, nil
}

// SoftDelete marks the user deleted and revokes every session, together.
func (s *Store) SoftDelete(ctx context.Context, id uuid.UUID) (int64, error) {
	var v int64
	err := s.withTx(ctx, func(q *db.Queries) error {
		if err := q.SoftDeleteUser(ctx, id); err != nil {
			return err
		}
		var err error
		v, err = revokeAll(ctx, q, id, "deleted")
		return err
	})
	return v, err
}

// Restore undoes a soft delete; ErrEmailTaken when the address was reused.
func (s *Store) Restore(ctx context.Context, id uuid.UUID) error {
	return uniqueEmail(s.q.RestoreUser(ctx, id))
}

// SetRoles replaces the roles and revokes every session, together.
func (s *Store) SetRoles(ctx context.Context, id uuid.UUID, roles []string) (int64, error) {
	var v int64
	err := s.withTx(ctx, func(q *db.Queries) error {
		if err := q.DeleteUserRoles(ctx, id); err != nil {
			return err
		}
		for _, r := range roles {
			if err := q.AddUserRole(ctx, db.AddUserRoleParams{UserID: id, Role: r}); err != nil {
				return fmt.Errorf("grant %s: %w", r, err)
			}
		}
		var err error
		v, err = revokeAll(ctx, q, id, "roles_changed")
		return err
	})
	return v, err
}

// ListSessions lists a user's live sessions, newest first.
func (s *Store) ListSessions(ctx context.Context, userID, before uuid.UUID, limit int) ([]user.Session, error) {
	rows, err := s.q.ListUserSessions(ctx, db.ListUserSessionsParams{UserID: userID, BeforeID: before, MaxRows: maxRows(limit)})
	if err != nil {
		return nil, unavailable(err)
	}
	out := make([]user.Session, 0, len(rows))
	for _, r := range rows {
		ss := user.Session{ID: r.ID, UserAgent: r.UserAgent, CreatedAt: r.CreatedAt, LastUsedAt: r.LastUsedAt, IdleExpiresAt: r.IdleExpiresAt, ExpiresAt: r.ExpiresAt}
		if r.IP != nil {
			ss.IP = *r.IP
		}
		out = append(out, ss)
	}
	return out, nil
}

// RevokeOwnSession revokes a session only if it belongs to userID.
func (s *Store) RevokeOwnSession(ctx context.Context, userID, sessionID uuid.UUID) (bool, error) {
	n, err := s.q.RevokeUserSession(ctx, db.RevokeUserSessionParams{ID: sessionID, UserID: userID, Reason: ptr("revoked_by_owner")})
	return n > 0, unavailable(err)
}

// ListRoles lists the roles with their permissions.
func (s *Store) ListRoles(ctx context.Context) ([]user.Role, error) {
	rows, err := s.q.ListRoles(ctx)
	if err != nil {
		return nil, unavailable(err)
	}
	out := make([]user.Role, 0, len(rows))
	for _, r := range rows {
		out = append(out, user.Role{Name: r.Name, Description: r.Description, Permissions: r.Permissions})
	}
	return out, nil
}

// ListAudit lists audit events, newest first.
func (s *Store) ListAudit(ctx context.Context, f user.AuditFilter, before uuid.UUID, limit int) ([]user.AuditEvent, error) {
	rows, err := s.q.ListAuditEvents(ctx, db.ListAuditEventsParams{
		BeforeID: before, ActorID: f.ActorID, SubjectID: f.SubjectID,
		Action: f.Action, Since: f.Since, Until: f.Until, MaxRows: maxRows(limit),
	})
	if err != nil {
		return nil, unavailable(err)
	}
	out := make([]user.AuditEvent, 0, len(rows))
	for _, r := range rows {
		e := user.AuditEvent{
			ID: r.ID, Action: r.Action, ActorID: r.ActorID, SubjectID: r.SubjectID, IP: r.IP, UserAgent: r.UserAgent,
			RequestID: r.RequestID, CreatedAt: r.CreatedAt,
		}
		if err := json.Unmarshal(r.Details, &e.Details); err != nil {
			return nil, fmt.Errorf("decode audit details: %w", err)
		}
		out = append(out, e)
	}
	return out, nil
}

// PruneAudit deletes the events older than before.
func (s *Store) PruneAudit(ctx context.Context, before time.Time) (int64, error) {
	n, err := s.q.PruneAuditEvents(ctx, before)
	return n, unavailable(err)
}

// Permissions of a user (for the rule that no one manages a user with
// permissions they lack themselves).
func (s *Store) TargetPermissions(ctx context.Context, id uuid.UUID) ([]string, error) {
	return s.Permissions(ctx, id)
}

// RolePermissions lists the permissions the given roles grant.
func (s *Store) RolePermissions(ctx context.Context, roles []string) ([]string, error) {
	all, err := s.ListRoles(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, r := range all {
		for _, want := range roles {
			if r.Name == want {
				out = append(out, r.Permissions...)
			}
		}
	}
	return out, nil
}
