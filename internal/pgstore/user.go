package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	db "github.com/gatehouse/gatehouse/gen/db"
	"github.com/gatehouse/gatehouse/internal/account"
	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/user"
)

var _ user.Store = (*Store)(nil)

// fetchLimit is the LIMIT of a page's query: one row more than the page,
// which tells whether more follow (clamped to sqlc's int32 parameter rather
// than wrapped into a negative LIMIT).
func fetchLimit(p account.PageRequest) int32 {
	return int32(min(max(p.Limit, 0), math.MaxInt32-1) + 1) //nolint:gosec // clamped just above
}

// pageOf cuts the rows of a fetchLimit query into the page and whether more
// follow.
func pageOf[T any](rows []T, p account.PageRequest) account.Page[T] {
	if len(rows) > p.Limit {
		return account.Page[T]{Items: rows[:p.Limit], More: true}
	}
	return account.Page[T]{Items: rows}
}

// likePrefix escapes a prefix for LIKE.
func likePrefix(p string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return r.Replace(p) + "%"
}

// written is the profile of a users row as a write returned it (CreateUser
// and SaveUser return the same columns, never the password hash), with the
// roles the write left it.
func written(r db.SaveUserRow, roles []string) account.Profile {
	return account.Profile{
		ID: r.ID, Email: r.Email, Name: r.Name, EmailVerifiedAt: r.EmailVerifiedAt, DisabledAt: r.DisabledAt,
		DeletedAt: r.DeletedAt, TokenVersion: r.TokenVersion, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, Roles: roles,
		ExternalID: r.ExternalID,
	}
}

// profile is a user as lists and administration see it: roles, no hash.
func profile(p db.UserProfile) account.Profile {
	return account.Profile{
		ID: p.ID, Email: p.Email, Name: p.Name, EmailVerifiedAt: p.EmailVerifiedAt, DisabledAt: p.DisabledAt,
		DeletedAt: p.DeletedAt, TokenVersion: p.TokenVersion, CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt, Roles: p.Roles,
		ExternalID: p.ExternalID,
	}
}

// ListUsers lists one page of users, newest first, before the given id.
func (s *Store) ListUsers(ctx context.Context, f user.Filter, p account.PageRequest) (account.Page[account.Profile], error) {
	if f.ExternalID != nil {
		return s.userByExternalID(ctx, f, p)
	}
	pattern := likePrefix(strings.ToLower(f.EmailPrefix))
	var rows []db.UserProfile
	var err error
	if f.Status != nil && *f.Status == user.Deleted {
		rows, err = s.q.ListDeletedUsers(ctx, db.ListDeletedUsersParams{
			BeforeID: p.Before, EmailPattern: pattern, Role: f.Role,
			CreatedAfter: f.CreatedAfter, CreatedBefore: f.CreatedBefore, MaxRows: fetchLimit(p),
		})
	} else {
		var disabled *bool
		if f.Status != nil {
			disabled = ptr(*f.Status == user.Disabled)
		}
		rows, err = s.q.ListLiveUsers(ctx, db.ListLiveUsersParams{
			BeforeID: p.Before, Disabled: disabled, EmailPattern: pattern, Role: f.Role,
			CreatedAfter: f.CreatedAfter, CreatedBefore: f.CreatedBefore, MaxRows: fetchLimit(p),
		})
	}
	if err != nil {
		return account.Page[account.Profile]{}, fmt.Errorf("list users: %w", err)
	}
	out := make([]account.Profile, 0, len(rows))
	for _, r := range rows {
		out = append(out, profile(r))
	}
	return pageOf(out, p), nil
}

// userByExternalID is ListUsers for an external id: one user at most,
// found by its unique index, then held to the other filters.
func (s *Store) userByExternalID(ctx context.Context, f user.Filter, p account.PageRequest) (account.Page[account.Profile], error) {
	r, err := s.q.GetUserProfileByExternalID(ctx, f.ExternalID)
	if errors.Is(err, pgx.ErrNoRows) {
		return account.Page[account.Profile]{Items: []account.Profile{}}, nil
	}
	if err != nil {
		return account.Page[account.Profile]{}, fmt.Errorf("find user by external id: %w", err)
	}
	u := profile(r)
	deleted := f.Status != nil && *f.Status == user.Deleted
	ok := (u.DeletedAt != nil) == deleted && u.ID.String() < p.Before.String() &&
		strings.HasPrefix(u.Email, strings.ToLower(f.EmailPrefix)) &&
		(f.Status == nil || deleted || (u.DisabledAt != nil) == (*f.Status == user.Disabled)) &&
		(f.Role == nil || slices.Contains(u.Roles, *f.Role)) &&
		(f.CreatedAfter == nil || !u.CreatedAt.Before(*f.CreatedAfter)) &&
		(f.CreatedBefore == nil || u.CreatedAt.Before(*f.CreatedBefore)) && p.Limit > 0
	if !ok {
		return account.Page[account.Profile]{Items: []account.Profile{}}, nil
	}
	return account.Page[account.Profile]{Items: []account.Profile{u}}, nil
}

// GetUser finds any user, deleted ones included.
func (s *Store) GetUser(ctx context.Context, id uuid.UUID) (account.Profile, error) {
	r, err := s.q.GetUserProfile(ctx, id)
	if err != nil {
		return account.Profile{}, notFound(err)
	}
	return profile(r), nil
}

// Me is GetUser with the user's MFA status, in one statement.
func (s *Store) Me(ctx context.Context, id uuid.UUID) (account.Profile, auth.MFAStatus, error) {
	r, err := s.q.GetMe(ctx, id)
	if err != nil {
		return account.Profile{}, auth.MFAStatus{}, notFound(err)
	}
	return profile(r.UserProfile), auth.MFAStatus{Enabled: r.MfaEnabled, RecoveryCodesRemaining: int(r.RecoveryCodesRemaining)}, nil
}

// Manage changes user id in one transaction: it locks the user, lets decide
// apply the rules to what it reads, and writes the edit decide returns with
// its audit events and mails. The user row is written once, and read back
// from that write.
func (s *Store) Manage(ctx context.Context, id uuid.UUID, decide func(user.Target) (user.Edit, error)) (account.Profile, int64, error) {
	var out account.Profile
	var version int64
	err := s.inTx(ctx, func(tx pgx.Tx, q *db.Queries) error {
		if _, err := q.LockUser(ctx, id); err != nil {
			return notFound(err)
		}
		row, err := q.GetUserProfile(ctx, id)
		if err != nil {
			return err
		}
		roles, err := q.ListRoles(ctx)
		if err != nil {
			return err
		}
		t := user.Target{User: profile(row), Roles: make(map[string][]string, len(roles))}
		for _, r := range roles {
			t.Roles[r.Name] = r.Permissions
		}
		e, err := decide(t)
		if err != nil {
			return err
		}
		u := e.User
		// A new address, or a restored account taking its address back, must
		// not be one held for the undo of another account's email change.
		if u.Email != row.Email || row.DeletedAt != nil && u.DeletedAt == nil {
			if err := checkNotReserved(ctx, q, u.Email, id); err != nil {
				return err
			}
		}
		rolesChanged := !slices.Equal(u.Roles, row.Roles)
		if !rolesChanged && e.EndSessions == "" && sameRow(u, t.User) {
			out = t.User // nothing to write but the events and mails
			return s.record(ctx, tx, q, e.Events, e.Mails)
		}
		saved, err := q.SaveUser(ctx, db.SaveUserParams{
			ID: id, Name: u.Name, Email: u.Email, EmailVerifiedAt: u.EmailVerifiedAt,
			DisabledAt: u.DisabledAt, DeletedAt: u.DeletedAt, EndSessions: e.EndSessions != "",
		})
		if err != nil {
			return err
		}
		if rolesChanged {
			if err := q.ReplaceUserRoles(ctx, db.ReplaceUserRolesParams{UserID: id, Roles: u.Roles}); err != nil {
				return fmt.Errorf("replace roles: %w", err)
			}
		}
		if e.EndSessions != "" {
			if err := endSessions(ctx, q, id, e.EndSessions); err != nil {
				return err
			}
			version = saved.TokenVersion
		}
		out = written(saved, u.Roles)
		return s.record(ctx, tx, q, e.Events, e.Mails)
	})
	return out, version, err
}

// sameRow reports whether the fields SaveUser writes are the same in a and b.
func sameRow(a, b account.Profile) bool {
	eq := func(x, y *time.Time) bool { return (x == nil) == (y == nil) && (x == nil || x.Equal(*y)) }
	return a.Email == b.Email && (a.Name == nil) == (b.Name == nil) && (a.Name == nil || *a.Name == *b.Name) &&
		eq(a.EmailVerifiedAt, b.EmailVerifiedAt) && eq(a.DisabledAt, b.DisabledAt) && eq(a.DeletedAt, b.DeletedAt)
}

// record writes audit events and mails in the transaction of the change
// they report: both exist if and only if the change does.
func (s *Store) record(ctx context.Context, tx pgx.Tx, q *db.Queries, events []account.Event, mails []account.Mail) error {
	for _, e := range events {
		p, err := auditParams(e)
		if err != nil {
			return err
		}
		if err := q.InsertAuditEvent(ctx, p); err != nil {
			return fmt.Errorf("record %s: %w", e.Action, err)
		}
	}
	return s.enqueue(ctx, tx, mails)
}

// revokeAll bumps the token version and ends every session, in q's transaction.
func revokeAll(ctx context.Context, q *db.Queries, id uuid.UUID, reason string) (int64, error) {
	v, err := q.BumpTokenVersion(ctx, id)
	if err != nil {
		return 0, notFound(err)
	}
	return v, endSessions(ctx, q, id, reason)
}

// endSessions revokes every session of the user and kills every pending
// link, in q's transaction; the caller bumps the token version.
func endSessions(ctx context.Context, q *db.Queries, id uuid.UUID, reason string) error {
	if _, err := q.RevokeUserSessions(ctx, db.RevokeUserSessionsParams{UserID: id, Reason: &reason}); err != nil {
		return fmt.Errorf("revoke sessions: %w", err)
	}
	if err := q.CancelAllOneTimeTokens(ctx, id); err != nil {
		return fmt.Errorf("cancel tokens: %w", err)
	}
	return nil
}

// ListSessions lists a user's live sessions, newest first.
func (s *Store) ListSessions(ctx context.Context, userID uuid.UUID, p account.PageRequest) (account.Page[user.Session], error) {
	rows, err := s.q.ListUserSessions(ctx, db.ListUserSessionsParams{UserID: userID, BeforeID: p.Before, MaxRows: fetchLimit(p)})
	if err != nil {
		return account.Page[user.Session]{}, err
	}
	out := make([]user.Session, 0, len(rows))
	for _, r := range rows {
		ss := user.Session{ID: r.ID, UserAgent: r.UserAgent, CreatedAt: r.CreatedAt, LastUsedAt: r.LastUsedAt, IdleExpiresAt: r.IdleExpiresAt, ExpiresAt: r.ExpiresAt}
		if r.IP != nil {
			ss.IP = *r.IP
		}
		out = append(out, ss)
	}
	return pageOf(out, p), nil
}

// RevokeOwnSession revokes a session only if it belongs to userID, and
// records e with it.
func (s *Store) RevokeOwnSession(ctx context.Context, userID, sessionID uuid.UUID, e account.Event) (bool, error) {
	var ok bool
	err := s.inTx(ctx, func(tx pgx.Tx, q *db.Queries) error {
		n, err := q.RevokeUserSession(ctx, db.RevokeUserSessionParams{ID: sessionID, UserID: userID, Reason: ptr("revoked_by_owner")})
		if ok = n > 0; err != nil || !ok {
			return err
		}
		return s.record(ctx, tx, q, []account.Event{e}, nil)
	})
	return ok, err
}

// ListRoles lists the roles with their permissions.
func (s *Store) ListRoles(ctx context.Context) ([]user.Role, error) {
	rows, err := s.q.ListRoles(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]user.Role, 0, len(rows))
	for _, r := range rows {
		out = append(out, user.Role{Name: r.Name, Description: r.Description, Permissions: r.Permissions})
	}
	return out, nil
}

// ListAudit lists audit events, newest first.
func (s *Store) ListAudit(ctx context.Context, f user.AuditFilter, p account.PageRequest) (account.Page[user.AuditEvent], error) {
	rows, err := s.q.ListAuditEvents(ctx, db.ListAuditEventsParams{
		BeforeID: p.Before, ActorID: f.ActorID, SubjectID: f.SubjectID,
		Action: (*string)(f.Action), Since: f.Since, Until: f.Until, MaxRows: fetchLimit(p),
	})
	if err != nil {
		return account.Page[user.AuditEvent]{}, err
	}
	out := make([]user.AuditEvent, 0, len(rows))
	for _, r := range rows {
		e := user.AuditEvent{
			ID: r.ID, Action: account.Action(r.Action), ActorID: r.ActorID, SubjectID: r.SubjectID, IP: r.IP, UserAgent: r.UserAgent,
			RequestID: r.RequestID, CreatedAt: r.CreatedAt,
		}
		if err := json.Unmarshal(r.Details, &e.Details); err != nil {
			return account.Page[user.AuditEvent]{}, fmt.Errorf("decode audit details: %w", err)
		}
		out = append(out, e)
	}
	return pageOf(out, p), nil
}

// PruneAudit deletes the events older than before.
func (s *Store) PruneAudit(ctx context.Context, before time.Time) (int64, error) {
	n, err := s.q.PruneAuditEvents(ctx, before)
	if err != nil {
		return n, err
	}
	// The hourly job also drops login challenges and unconfirmed enrolments
	// (with their sealed secrets) dead for a day: they live minutes; the day
	// keeps them for an investigation of the moment.
	dead := time.Now().Add(-24 * time.Hour)
	if err := s.q.PruneChallenges(ctx, dead); err != nil {
		return n, fmt.Errorf("prune mfa challenges: %w", err)
	}
	if err := s.q.PrunePendingFactors(ctx, dead); err != nil {
		return n, fmt.Errorf("prune mfa enrolments: %w", err)
	}
	return n, nil
}
