package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	db "github.com/gatehouse/gatehouse/gen/db"
	"github.com/gatehouse/gatehouse/internal/account"
	"github.com/gatehouse/gatehouse/internal/auth"
)

// Store implements auth.Store, user.Store and the outbox's store on
// PostgreSQL.
type Store struct {
	pool   *pgxpool.Pool
	q      *db.Queries
	outbox Outbox
}

var _ auth.Store = (*Store)(nil)

// New returns a store on pool that records mails in outbox (a River client;
// nil for a store that never sends mail).
func New(pool *pgxpool.Pool, outbox Outbox) *Store {
	return &Store{pool: pool, q: db.New(classifyingDB{pool}), outbox: outbox}
}

// toUser is the account with its password hash, without roles.
func toUser(u db.User) account.User {
	return account.User{Profile: account.Profile{
		ID: u.ID, Email: u.Email, Name: u.Name, EmailVerifiedAt: u.EmailVerifiedAt, DisabledAt: u.DisabledAt,
		DeletedAt: u.DeletedAt, TokenVersion: u.TokenVersion, CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt,
	}, PasswordHash: u.PasswordHash}
}

// CreateUser inserts the account and its roles in one transaction.
func (s *Store) CreateUser(ctx context.Context, n account.NewUser) (account.Profile, error) {
	var out account.Profile
	err := s.inTx(ctx, func(tx pgx.Tx, q *db.Queries) error {
		var verified *time.Time
		if n.Verified {
			now := time.Now()
			verified = &now
		}
		if err := checkNotReserved(ctx, q, n.Email, uuid.Nil); err != nil {
			return err
		}
		u, err := q.CreateUser(ctx, db.CreateUserParams{ID: n.ID, Email: n.Email, PasswordHash: n.PasswordHash, Name: n.Name, EmailVerifiedAt: verified})
		if errors.Is(err, pgx.ErrNoRows) {
			return account.ErrEmailTaken // ON CONFLICT DO NOTHING: a live account has it
		}
		if err != nil {
			return fmt.Errorf("create user: %w", err)
		}
		if err := q.AddUserRoles(ctx, db.AddUserRolesParams{UserID: u.ID, Roles: n.Roles}); err != nil {
			return fmt.Errorf("grant roles: %w", err)
		}
		out = written(db.SaveUserRow(u), n.Roles)
		return s.record(ctx, tx, q, n.Events, n.Mails)
	})
	return out, err
}

// UserByEmail finds a live account by normalised email.
func (s *Store) UserByEmail(ctx context.Context, email string) (account.User, error) {
	u, err := s.q.GetUserByEmail(ctx, email)
	if err != nil {
		return account.User{}, notFound(err)
	}
	return toUser(u), nil
}

// UserByID finds a live account (with its password hash, without roles).
func (s *Store) UserByID(ctx context.Context, id uuid.UUID) (account.User, error) {
	u, err := s.q.GetUserByID(ctx, id)
	if err != nil {
		return account.User{}, notFound(err)
	}
	return toUser(u), nil
}

// RehashPassword replaces the stored hash old with new, if it is still old;
// it reports whether it did.
func (s *Store) RehashPassword(ctx context.Context, id uuid.UUID, old, new string) (bool, error) {
	n, err := s.q.RehashPassword(ctx, db.RehashPasswordParams{ID: id, OldHash: old, NewHash: new})
	return n == 1, err
}

// GrantRole adds a role (idempotent), recorded with e.
func (s *Store) GrantRole(ctx context.Context, id uuid.UUID, role string, e account.Event) error {
	return s.inTx(ctx, func(tx pgx.Tx, q *db.Queries) error {
		if err := q.AddUserRoles(ctx, db.AddUserRolesParams{UserID: id, Roles: []string{role}}); err != nil {
			return fmt.Errorf("grant role: %w", err)
		}
		return s.record(ctx, tx, q, []account.Event{e}, nil)
	})
}

// Permissions lists what the user's roles allow.
func (s *Store) Permissions(ctx context.Context, id uuid.UUID) ([]string, error) {
	p, err := s.q.ListUserPermissions(ctx, id)
	return p, err
}

// CreateSession opens a session with its first refresh token.
func (s *Store) CreateSession(ctx context.Context, n auth.NewSession) error {
	return s.inTx(ctx, func(tx pgx.Tx, q *db.Queries) error {
		return s.openSession(ctx, tx, q, n)
	})
}

// openSession opens a session in the transaction tx.
func (s *Store) openSession(ctx context.Context, tx pgx.Tx, q *db.Queries, n auth.NewSession) error {
	ip := &n.Client.IP
	if !n.Client.IP.IsValid() {
		ip = nil
	}
	amr := n.AMR
	if len(amr) == 0 {
		amr = []string{"pwd"}
	}
	_, err := q.CreateSession(ctx, db.CreateSessionParams{
		ID: n.ID, UserID: n.UserID, UserAgent: truncate(n.Client.UserAgent, 512), IP: ip,
		IdleExpiresAt: n.IdleExpiresAt, ExpiresAt: n.ExpiresAt, TokenVersion: n.TokenVersion, Amr: amr,
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return auth.ErrInvalidCredentials // revoked, disabled or deleted since the password check
	}
	if err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	if err := q.InsertRefreshToken(ctx, db.InsertRefreshTokenParams{TokenHash: n.RefreshHash, SessionID: n.ID}); err != nil {
		return fmt.Errorf("store refresh token: %w", err)
	}
	return s.record(ctx, tx, q, n.Events, n.Mails)
}

// Refresh applies one rotation atomically. The session row is locked, so
// concurrent refreshes of a session are serialised and exactly one of them
// finds the presented token unused.
func (s *Store) Refresh(ctx context.Context, r auth.RefreshRequest) (auth.RefreshResult, error) {
	var res auth.RefreshResult
	err := s.inTx(ctx, func(tx pgx.Tx, q *db.Queries) error {
		row, err := q.GetRefreshTokenForUpdate(ctx, r.Hash)
		if errors.Is(err, pgx.ErrNoRows) {
			res.Outcome = auth.Refused
			return nil
		}
		if err != nil {
			return fmt.Errorf("find refresh token: %w", err)
		}
		res.UserID, res.SessionID, res.TokenVersion, res.ExpiresAt, res.AMR = row.UserID, row.SessionID, row.TokenVersion, row.ExpiresAt, row.Amr
		if row.Spent || row.RevokedAt != nil || !r.Now.Before(row.ExpiresAt) || !r.Now.Before(row.IdleExpiresAt) ||
			row.DisabledAt != nil || row.DeletedAt != nil || row.SessionTokenVersion < row.TokenVersion {
			res.Outcome = auth.Refused
			return nil
		}
		switch {
		case row.UsedAt == nil:
			n, err := q.MarkRefreshTokenUsed(ctx, db.MarkRefreshTokenUsedParams{TokenHash: r.Hash, UsedAt: &r.Now})
			if err != nil {
				return fmt.Errorf("mark refresh token used: %w", err)
			}
			if n != 1 { // cannot happen with the row locked; refuse rather than fork
				res.Outcome = auth.Refused
				return nil
			}
			res.Outcome, res.RotatedAt = auth.Rotated, r.Now
		case r.Grace > 0 && r.Now.Sub(*row.UsedAt) <= r.Grace:
			// The successor was stored by the first use: hand out the same one.
			res.Outcome, res.RotatedAt = auth.GraceRotated, *row.UsedAt
			return nil
		default:
			if _, err := q.RevokeSession(ctx, db.RevokeSessionParams{ID: row.SessionID, Reason: ptr("refresh_token_reuse")}); err != nil {
				return fmt.Errorf("revoke session: %w", err)
			}
			res.Outcome = auth.ReuseRevoked
			if r.ReuseEvent == nil {
				return nil
			}
			return s.record(ctx, tx, q, []account.Event{r.ReuseEvent(res)}, nil)
		}
		if err := q.InsertRefreshToken(ctx, db.InsertRefreshTokenParams{TokenHash: r.NewHash, SessionID: row.SessionID, ParentHash: r.Hash}); err != nil {
			return fmt.Errorf("store refresh token: %w", err)
		}
		idle := r.Now.Add(r.IdleTTL)
		if idle.After(row.ExpiresAt) {
			idle = row.ExpiresAt
		}
		if err := q.TouchSession(ctx, db.TouchSessionParams{ID: row.SessionID, IdleExpiresAt: idle}); err != nil {
			return fmt.Errorf("touch session: %w", err)
		}
		return nil
	})
	return res, err
}

// RevokeSession records the end of one session, with events.
func (s *Store) RevokeSession(ctx context.Context, id uuid.UUID, reason string, events ...account.Event) (bool, error) {
	var live bool
	err := s.inTx(ctx, func(tx pgx.Tx, q *db.Queries) error {
		n, err := q.RevokeSession(ctx, db.RevokeSessionParams{ID: id, Reason: &reason})
		if err != nil {
			return err
		}
		live = n > 0
		return s.record(ctx, tx, q, events, nil)
	})
	return live, err
}

// RevokeUser bumps the token version and revokes every session, with
// events, together.
func (s *Store) RevokeUser(ctx context.Context, id uuid.UUID, reason string, events ...account.Event) (int64, error) {
	var v int64
	err := s.inTx(ctx, func(tx pgx.Tx, q *db.Queries) error {
		var err error
		if v, err = q.BumpTokenVersion(ctx, id); err != nil {
			return notFound(err)
		}
		if _, err := q.RevokeUserSessions(ctx, db.RevokeUserSessionsParams{UserID: id, Reason: &reason}); err != nil {
			return fmt.Errorf("revoke sessions: %w", err)
		}
		return s.record(ctx, tx, q, events, nil)
	})
	return v, err
}

// SessionState reads what an access-token check needs.
func (s *Store) SessionState(ctx context.Context, id uuid.UUID) (auth.SessionState, error) {
	r, err := s.q.SessionState(ctx, id)
	if err != nil {
		return auth.SessionState{}, notFound(err)
	}
	return auth.SessionState{
		UserID:       r.UserID,
		Revoked:      r.RevokedAt != nil || !time.Now().Before(r.ExpiresAt) || r.SessionTokenVersion < r.TokenVersion,
		TokenVersion: r.TokenVersion,
		UserActive:   r.DisabledAt == nil && r.DeletedAt == nil,
	}, nil
}

// RevocationsSince lists the revocations recorded after since.
func (s *Store) RevocationsSince(ctx context.Context, since time.Time) (auth.Revocations, error) {
	sessions, err := s.q.RecentlyRevokedSessions(ctx, since)
	if err != nil {
		return auth.Revocations{}, fmt.Errorf("recent session revocations: %w", err)
	}
	users, err := s.q.RecentlyBumpedUsers(ctx, since)
	if err != nil {
		return auth.Revocations{}, fmt.Errorf("recent token revocations: %w", err)
	}
	r := auth.Revocations{Sessions: sessions, Users: make(map[uuid.UUID]int64, len(users))}
	for _, u := range users {
		r.Users[u.ID] = u.TokenVersion
	}
	return r, nil
}

// Audit records a security event.
func (s *Store) Audit(ctx context.Context, e account.Event) error {
	p, err := auditParams(e)
	if err != nil {
		return err
	}
	return s.q.InsertAuditEvent(ctx, p)
}

// auditParams is the row of an event, with a new id.
func auditParams(e account.Event) (db.InsertAuditEventParams, error) {
	details := e.Details
	if details == nil {
		details = map[string]any{}
	}
	b, err := json.Marshal(details)
	if err != nil {
		return db.InsertAuditEventParams{}, fmt.Errorf("encode audit details: %w", err)
	}
	p := db.InsertAuditEventParams{ID: account.NewID(), Action: string(e.Action), ActorID: e.ActorID, SubjectID: e.SubjectID, Details: b}
	if e.Client.IP.IsValid() {
		p.IP = &e.Client.IP
	}
	if e.Client.UserAgent != "" {
		ua := truncate(e.Client.UserAgent, 512)
		p.UserAgent = &ua
	}
	if e.Client.RequestID != "" {
		p.RequestID = &e.Client.RequestID
	}
	return p, nil
}

func ptr[T any](v T) *T { return &v }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Cut on a rune boundary.
	for n > 0 && (s[n]&0xC0) == 0x80 {
		n--
	}
	return s[:n]
}
