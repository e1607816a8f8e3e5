package auth

import (
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sync/singleflight"
	"golang.org/x/text/unicode/norm"

	"github.com/gatehouse/gatehouse/internal/logging"
	"github.com/gatehouse/gatehouse/internal/mail"
	"github.com/gatehouse/gatehouse/internal/password"
	"github.com/gatehouse/gatehouse/internal/token"
)

// Role names seeded by the migrations.
const (
	RoleAdmin = "admin"
	RoleUser  = "user"
)

// Settings are the lifetimes and thresholds of authentication.
type Settings struct {
	RefreshIdleTTL     time.Duration // 7 days: unused refresh tokens expire
	RefreshAbsoluteTTL time.Duration // 30 days: a session ends whatever its use
	RefreshGrace       time.Duration // seconds: a just-used refresh token may be presented again
	// Lockout: after FreeFailures consecutive failed logins for one email, each
	// further attempt waits 2^(n-FreeFailures) s (at most MaxDelay); after
	// BlockAfter failures, password login is blocked until the counter cools
	// down (CoolDown after the last failure) or the password is reset.
	FreeFailures int
	MaxDelay     time.Duration
	BlockAfter   int
	CoolDown     time.Duration
	// RequireVerifiedEmail refuses password login until the address is verified.
	RequireVerifiedEmail bool
	// AllowLocalEmailDomains lets accounts use addresses at IP literals,
	// localhost and names without a dot (development only; see ParseEmail).
	AllowLocalEmailDomains bool
}

// DefaultSettings are DESIGN.md's numbers.
var DefaultSettings = Settings{
	RefreshIdleTTL:     7 * 24 * time.Hour,
	RefreshAbsoluteTTL: 30 * 24 * time.Hour,
	RefreshGrace:       10 * time.Second,
	FreeFailures:       5,
	MaxDelay:           15 * time.Minute,
	BlockAfter:         100,
	CoolDown:           24 * time.Hour,
}

// LockoutPolicy are the thresholds of Settings, for the Lockout store.
type LockoutPolicy struct {
	FreeFailures int
	MaxDelay     time.Duration
	BlockAfter   int
	CoolDown     time.Duration
}

// Lockout counts consecutive failed logins per account key, shared by all
// instances. Attempt decides and counts in one atomic step: it returns how
// long the account must wait, or zero and counts the attempt as a failure
// until Reset (a success) clears it.
type Lockout interface {
	Attempt(ctx context.Context, key string, now time.Time, p LockoutPolicy) (time.Duration, error)
	Reset(ctx context.Context, key string) error
}

// LockedError refuses a login of an account under lockout.
type LockedError struct{ RetryAfter time.Duration }

func (e *LockedError) Error() string { return fmt.Sprintf("account locked for %s", e.RetryAfter) }

// PasswordRejectedError refuses a password the policy forbids.
type PasswordRejectedError struct{ *password.Rejection }

// Tokens are what a login or refresh hands out.
type Tokens struct {
	Access           string
	AccessExpiresIn  time.Duration
	Refresh          string
	RefreshExpiresIn time.Duration
}

// Service implements registration, login, refresh, logout and the check of
// access tokens.
type Service struct {
	store    Store
	cache    RevocationCache
	lockout  Lockout
	hasher   *password.Hasher
	policy   *password.Policy
	tokens   *token.Issuer
	log      *slog.Logger
	now      func() time.Time
	set      Settings
	cacheTTL time.Duration
	rebuild  singleflight.Group
	local    *localRevocations
	verified *token.VerifiedCache
	// pollEvery is how often the local copy of revocations is refreshed.
	pollEvery time.Duration
}

// Deps are the collaborators of a Service.
type Deps struct {
	Store    Store
	Cache    RevocationCache
	Lockout  Lockout
	Hasher   *password.Hasher
	Policy   *password.Policy
	Tokens   *token.Issuer
	Log      *slog.Logger
	Now      func() time.Time
	Settings Settings
	// Leeway is the clock skew access tokens are verified with.
	Leeway time.Duration
	// PollEvery is how often the local copy of revocations is refreshed.
	PollEvery time.Duration
}

// NewService returns a Service.
func NewService(d Deps) *Service {
	if d.Now == nil {
		d.Now = time.Now
	}
	return &Service{
		store: d.Store, cache: d.Cache, lockout: d.Lockout, hasher: d.Hasher, policy: d.Policy, tokens: d.Tokens,
		log: d.Log, now: d.Now, set: d.Settings,
		// A revocation matters while tokens issued before it may still be
		// accepted: their lifetime plus the verification leeway, plus margin.
		// The longest configurable lifetime is used, so a rolling change of
		// ACCESS_TOKEN_TTL cannot let markers expire before their tokens.
		cacheTTL:  max(d.Tokens.TTL(), time.Hour) + d.Leeway + time.Minute,
		local:     newLocalRevocations(),
		verified:  token.NewVerifiedCache(d.Tokens, 10000),
		pollEvery: cmp.Or(d.PollEvery, 2*time.Second),
	}
}

// maxEmailLength bounds a normalised address (RFC 5321's 254).
const maxEmailLength = 254

// NormalizeEmail is the one form in which emails are stored and compared.
func NormalizeEmail(email string) string {
	return strings.ToLower(norm.NFC.String(strings.TrimSpace(email)))
}

// CheckPassword applies the policy for the account with email and display
// name (nil when unknown). The strength estimate costs up to tens of
// milliseconds of CPU, so it runs within the hasher's bound on concurrent work.
func (s *Service) CheckPassword(ctx context.Context, pw, email string, name *string) error {
	var err error
	if berr := s.hasher.Bounded(ctx, func() { err = s.policy.Check(pw, NormalizeEmail(email), deref(name)) }); berr != nil {
		return berr
	}
	var r *password.Rejection
	if errors.As(err, &r) {
		return &PasswordRejectedError{r}
	}
	return err
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// Register creates an account, or does nothing visible when the email is
// taken: the caller answers the same either way.
func (s *Service) Register(ctx context.Context, email, pw string, name *string, c Client) error {
	email, err := s.ParseEmail(email)
	if err != nil {
		return err
	}
	if err := s.CheckPassword(ctx, pw, email, name); err != nil {
		return err
	}
	// Hash even when the email turns out to be taken: both answers take the
	// same time.
	hash, err := s.hasher.Hash(ctx, pw)
	if err != nil {
		return err
	}
	id := newID()
	u, err := s.store.CreateUser(ctx, NewUser{ID: id, Email: email, PasswordHash: hash, Name: name, Roles: []string{RoleUser},
		Mails: []Mail{{Kind: mail.VerifyEmail, UserID: id, To: email}}})
	if errors.Is(err, ErrEmailTaken) {
		// Tell the owner instead; the caller learns nothing.
		// Failures are logged, not answered: the caller must see no difference.
		owner, oerr := s.store.UserByEmail(ctx, email)
		if oerr == nil {
			if err := s.store.EnqueueMail(ctx, Mail{Kind: mail.EmailInUse, UserID: owner.ID, To: owner.Email}); err != nil {
				s.log.ErrorContext(ctx, "enqueue email-in-use mail", "error", err)
			}
		}
		s.audit(ctx, Event{Action: "user.register.email_taken", SubjectID: ptrIf(oerr == nil, owner.ID), Client: c, Details: map[string]any{"email": logging.MaskEmail(email)}})
		return nil
	}
	if err != nil {
		return err
	}
	s.audit(ctx, Event{Action: "user.registered", ActorID: &u.ID, SubjectID: &u.ID, Client: c, Details: map[string]any{"email": logging.MaskEmail(email)}})
	return nil
}

// Login checks a password and opens a session.
func (s *Service) Login(ctx context.Context, email, pw string, c Client) (Tokens, error) {
	email = NormalizeEmail(email)
	masked := logging.MaskEmail(email)
	if wait := s.lockedFor(ctx, email); wait > 0 {
		s.audit(ctx, Event{Action: "user.login.locked", Client: c, Details: map[string]any{"email": masked}})
		return Tokens{}, &LockedError{RetryAfter: wait}
	}
	u, err := s.store.UserByEmail(ctx, email)
	if errors.Is(err, ErrNotFound) {
		if err := s.hasher.VerifyDummy(ctx, pw); err != nil {
			return Tokens{}, err
		}
		return Tokens{}, s.loginFailed(ctx, email, nil, "unknown_email", c)
	}
	if err != nil {
		return Tokens{}, err
	}
	ok, rehash, err := s.hasher.Verify(ctx, pw, u.PasswordHash)
	if errors.Is(err, password.ErrMalformedHash) {
		// A damaged or foreign hash matches no password; say so in the log,
		// answer like any wrong password.
		s.log.ErrorContext(ctx, "stored password hash is not argon2id", "user_id", u.ID)
		ok, err = false, s.hasher.VerifyDummy(ctx, pw)
	}
	if err != nil {
		return Tokens{}, err
	}
	if !ok {
		return Tokens{}, s.loginFailed(ctx, email, &u.ID, "wrong_password", c)
	}
	if u.DisabledAt != nil {
		return Tokens{}, s.loginFailed(ctx, email, &u.ID, "disabled", c)
	}
	if s.set.RequireVerifiedEmail && u.EmailVerifiedAt == nil {
		// Only after a correct password: this reveals nothing to a guesser.
		s.audit(ctx, Event{Action: "user.login.unverified", SubjectID: &u.ID, Client: c})
		return Tokens{}, ErrEmailNotVerified
	}
	if rehash {
		if h, err := s.hasher.Hash(ctx, pw); err == nil {
			if err := s.store.SetPasswordHash(ctx, u.ID, h); err != nil {
				s.log.WarnContext(ctx, "rehash password", "error", err)
			}
		}
	}
	if s.lockout != nil {
		if err := s.lockout.Reset(ctx, email); err != nil {
			s.log.WarnContext(ctx, "reset login failures", "error", err)
		}
	}
	t, sid, err := s.openSession(ctx, u, c)
	if err != nil {
		return Tokens{}, err
	}
	s.audit(ctx, Event{Action: "user.login.succeeded", ActorID: &u.ID, SubjectID: &u.ID, Client: c, Details: map[string]any{"session_id": sid}})
	return t, nil
}

func (s *Service) loginFailed(ctx context.Context, email string, id *uuid.UUID, reason string, c Client) error {
	s.audit(ctx, Event{Action: "user.login.failed", SubjectID: id, Client: c, Details: map[string]any{"email": logging.MaskEmail(email), "reason": reason}})
	return ErrInvalidCredentials
}

// lockedFor returns how long password login of email must wait, counting
// the attempt when it may go ahead. When the counters cannot be reached it
// lets the attempt through (logged): the per-account rate limit and the
// bounded hasher remain, and locking everyone out would be worse.
func (s *Service) lockedFor(ctx context.Context, email string) time.Duration {
	if s.lockout == nil {
		return 0
	}
	wait, err := s.lockout.Attempt(ctx, email, s.now(), LockoutPolicy{
		FreeFailures: s.set.FreeFailures, MaxDelay: s.set.MaxDelay, BlockAfter: s.set.BlockAfter, CoolDown: s.set.CoolDown,
	})
	if err != nil {
		s.log.WarnContext(ctx, "login lockout not enforced", "error", err)
		return 0
	}
	return wait
}

func (s *Service) openSession(ctx context.Context, u User, c Client) (Tokens, uuid.UUID, error) {
	refresh, hash, err := token.NewOpaque()
	if err != nil {
		return Tokens{}, uuid.Nil, err
	}
	now := s.now()
	sid := newID()
	if err := s.store.CreateSession(ctx, NewSession{
		ID: sid, UserID: u.ID, TokenVersion: u.TokenVersion, Client: c, RefreshHash: hash,
		IdleExpiresAt: now.Add(s.set.RefreshIdleTTL), ExpiresAt: now.Add(s.set.RefreshAbsoluteTTL),
	}); err != nil {
		return Tokens{}, uuid.Nil, err
	}
	t, err := s.issue(ctx, u.ID, sid, u.TokenVersion)
	if err != nil {
		return Tokens{}, uuid.Nil, err
	}
	t.Refresh, t.RefreshExpiresIn = refresh, s.set.RefreshIdleTTL
	return t, sid, nil
}

func (s *Service) issue(ctx context.Context, uid, sid uuid.UUID, version int64) (Tokens, error) {
	perms, err := s.store.Permissions(ctx, uid)
	if err != nil {
		return Tokens{}, err
	}
	access, err := s.tokens.Issue(token.Subject{UserID: uid, SessionID: sid, TokenVersion: version, Permissions: perms})
	if err != nil {
		return Tokens{}, err
	}
	return Tokens{Access: access, AccessExpiresIn: s.tokens.TTL()}, nil
}

// Refresh rotates a refresh token into a new token pair.
func (s *Service) Refresh(ctx context.Context, refresh string, c Client) (Tokens, error) {
	hash, ok := hashRefreshToken(refresh)
	if !ok {
		return Tokens{}, ErrInvalidRefreshToken
	}
	next, nextHash, err := token.NewOpaque()
	if err != nil {
		return Tokens{}, err
	}
	res, err := s.store.Refresh(ctx, RefreshRequest{Hash: hash, NewHash: nextHash, Now: s.now(), Grace: s.set.RefreshGrace, IdleTTL: s.set.RefreshIdleTTL})
	if err != nil {
		return Tokens{}, err
	}
	switch res.Outcome {
	case Rotated, GraceRotated:
		t, err := s.issue(ctx, res.UserID, res.SessionID, res.TokenVersion)
		if err != nil {
			return Tokens{}, err
		}
		t.Refresh, t.RefreshExpiresIn = next, min(s.set.RefreshIdleTTL, res.ExpiresAt.Sub(s.now()))
		return t, nil
	case ReuseRevoked:
		s.cacheSessionRevoked(ctx, res.SessionID)
		s.audit(ctx, Event{Action: "session.refresh_token_reused", SubjectID: &res.UserID, Client: c,
			Details: map[string]any{"session_id": res.SessionID, "effect": "session revoked"}})
	}
	return Tokens{}, ErrInvalidRefreshToken
}

// Logout revokes the caller's session.
func (s *Service) Logout(ctx context.Context, p Principal, c Client) error {
	if _, err := s.store.RevokeSession(ctx, p.SessionID, "logout"); err != nil {
		return err
	}
	s.cacheSessionRevoked(ctx, p.SessionID)
	s.audit(ctx, Event{Action: "session.logout", ActorID: &p.UserID, SubjectID: &p.UserID, Client: c, Details: map[string]any{"session_id": p.SessionID}})
	return nil
}

// LogoutAll revokes every session of the caller and every access token
// issued to it.
func (s *Service) LogoutAll(ctx context.Context, p Principal, c Client) error {
	if err := s.RevokeUser(ctx, p.UserID, "logout_all"); err != nil {
		return err
	}
	s.audit(ctx, Event{Action: "user.logout_all", ActorID: &p.UserID, SubjectID: &p.UserID, Client: c})
	return nil
}

// RevokeUser ends every session of a user at once, on every instance. The
// password, disable, delete and role operations call it.
func (s *Service) RevokeUser(ctx context.Context, id uuid.UUID, reason string) error {
	v, err := s.store.RevokeUser(ctx, id, reason)
	if err != nil {
		return err
	}
	s.cacheWrite(ctx, func(ctx context.Context) error { return s.cache.RevokeUser(ctx, id, v, s.cacheTTL) })
	return nil
}

func (s *Service) cacheSessionRevoked(ctx context.Context, sid uuid.UUID) {
	s.cacheWrite(ctx, func(ctx context.Context) error { return s.cache.RevokeSession(ctx, sid, s.cacheTTL) })
}

// cacheWrite publishes a revocation already recorded in PostgreSQL. If Redis
// will not take it, the cache is marked cold so that every instance asks
// PostgreSQL until it is rebuilt: a revocation is never lost in the cache.
func (s *Service) cacheWrite(ctx context.Context, write func(context.Context) error) {
	ctx = context.WithoutCancel(ctx)
	var err error
	for range 3 {
		if err = write(ctx); err == nil {
			return
		}
	}
	if ierr := s.cache.Invalidate(ctx); ierr != nil {
		// Redis is unreachable from here; checks that cannot reach it fall back
		// to PostgreSQL, and the cache is cold again after a restart.
		s.log.ErrorContext(ctx, "revocation not cached and cache not invalidated", "error", err, "invalidate_error", ierr)
		return
	}
	s.log.WarnContext(ctx, "revocation not cached; cache invalidated", "error", err)
}

// Authenticate checks an access token: signature and claims, then
// revocation, in Redis when it can answer and in PostgreSQL otherwise. It
// fails closed (ErrUnavailable) when neither can.
func (s *Service) Authenticate(ctx context.Context, raw string) (Principal, error) {
	sub, err := s.verified.Verify(raw)
	if err != nil {
		return Principal{}, ErrInvalidToken
	}
	p := Principal{UserID: sub.UserID, SessionID: sub.SessionID, Permissions: sub.Permissions}
	if revoked, _ := s.local.revoked(sub.SessionID, sub.UserID, sub.TokenVersion, s.now(), 3*s.pollEvery); revoked {
		return Principal{}, ErrInvalidToken
	}
	st, err := s.cache.Check(ctx, sub.SessionID, sub.UserID)
	switch {
	case err == nil && st.Warm:
		if st.SessionRevoked || sub.TokenVersion < st.MinVersion {
			return Principal{}, ErrInvalidToken
		}
		return p, nil
	case err == nil:
		go s.rebuildCache()
	default:
		s.log.DebugContext(ctx, "revocation cache unavailable, asking PostgreSQL", "error", err)
	}
	ss, err := s.store.SessionState(ctx, sub.SessionID)
	if errors.Is(err, ErrNotFound) {
		return Principal{}, ErrInvalidToken
	}
	if err != nil {
		return Principal{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if ss.Revoked || !ss.UserActive || ss.UserID != sub.UserID || sub.TokenVersion < ss.TokenVersion {
		return Principal{}, ErrInvalidToken
	}
	return p, nil
}

// rebuildCache reloads the recent revocations into a cold cache, once at a
// time per instance.
func (s *Service) rebuildCache() {
	_, _, _ = s.rebuild.Do("rebuild", func() (any, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r, err := s.store.RevocationsSince(ctx, s.now().Add(-s.cacheTTL))
		if err == nil {
			err = s.cache.Rebuild(ctx, r, s.cacheTTL)
		}
		if err != nil {
			s.log.Warn("rebuild revocation cache", "error", err)
		}
		return nil, err
	})
}

// CreateAdmin makes email an administrator: a new, verified account with the
// given password, or an existing account granted the admin role.
func (s *Service) CreateAdmin(ctx context.Context, email, pw string) (User, bool, error) {
	email, err := s.ParseEmail(email)
	if err != nil {
		return User{}, false, err
	}
	if u, err := s.store.UserByEmail(ctx, email); err == nil {
		// Anyone can register an address; only its verified owner may be promoted.
		if u.EmailVerifiedAt == nil {
			return User{}, false, fmt.Errorf("%s has an account whose address is not verified: verify it (or delete the account) before making it an administrator", logging.MaskEmail(email))
		}
		if err := s.store.GrantRole(ctx, u.ID, RoleAdmin); err != nil {
			return User{}, false, err
		}
		s.audit(ctx, Event{Action: "user.roles.changed", SubjectID: &u.ID, Details: map[string]any{"granted": RoleAdmin, "by": "create-admin"}})
		return u, false, nil
	} else if !errors.Is(err, ErrNotFound) {
		return User{}, false, err
	}
	if err := s.CheckPassword(ctx, pw, email, nil); err != nil {
		return User{}, false, err
	}
	hash, err := s.hasher.Hash(ctx, pw)
	if err != nil {
		return User{}, false, err
	}
	u, err := s.store.CreateUser(ctx, NewUser{ID: newID(), Email: email, PasswordHash: hash, Verified: true, Roles: []string{RoleUser, RoleAdmin}})
	if err != nil {
		return User{}, false, err
	}
	s.audit(ctx, Event{Action: "user.created", SubjectID: &u.ID, Details: map[string]any{"email": logging.MaskEmail(email), "roles": []string{RoleUser, RoleAdmin}, "by": "create-admin"}})
	return u, true, nil
}

// Me returns the caller's account.
func (s *Service) Me(ctx context.Context, p Principal) (User, error) {
	return s.store.UserByID(ctx, p.UserID)
}

func (s *Service) audit(ctx context.Context, e Event) {
	if e.Client.RequestID == "" {
		e.Client = ClientFrom(ctx, e.Client)
	}
	if err := s.store.Audit(context.WithoutCancel(ctx), e); err != nil {
		s.log.ErrorContext(ctx, "write audit event", "action", e.Action, "error", err)
	}
}

// hashRefreshToken returns the SHA-256 of a well-formed refresh token.
func hashRefreshToken(t string) ([]byte, bool) {
	if len(t) != 43 {
		return nil, false
	}
	if _, err := base64.RawURLEncoding.Strict().DecodeString(t); err != nil {
		return nil, false
	}
	return token.HashOpaque(t), true
}

func ptrIf(ok bool, id uuid.UUID) *uuid.UUID {
	if !ok {
		return nil
	}
	return &id
}

func newID() uuid.UUID {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.New()
	}
	return id
}
