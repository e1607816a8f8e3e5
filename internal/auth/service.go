package auth

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sync/singleflight"

	"github.com/gatehouse/gatehouse/internal/account"
	"github.com/gatehouse/gatehouse/internal/keyed"
	"github.com/gatehouse/gatehouse/internal/logging"
	"github.com/gatehouse/gatehouse/internal/mail"
	"github.com/gatehouse/gatehouse/internal/password"
	"github.com/gatehouse/gatehouse/internal/secretbox"
	"github.com/gatehouse/gatehouse/internal/token"
)

// Settings are the lifetimes and thresholds of authentication.
type Settings struct {
	RefreshIdleTTL     time.Duration // 7 days: unused refresh tokens expire
	RefreshAbsoluteTTL time.Duration // 30 days: a session ends whatever its use
	RefreshGrace       time.Duration // seconds: a just-used refresh token may be presented again
	// Lockout bounds wrong guesses in the bucket every unknown client of an
	// account shares, and in the bucket of a signed-in user's password
	// re-checks. DeviceLockout bounds them per known device; a device that
	// reaches its BlockAfter is no longer trusted and counts as unknown.
	Lockout       LockoutPolicy
	DeviceLockout LockoutPolicy
	// DeviceTTL is how long a device token is honoured.
	DeviceTTL time.Duration
	// RequireVerifiedEmail refuses password login until the address is verified.
	RequireVerifiedEmail bool
	// AllowLocalEmailDomains lets accounts use addresses at IP literals,
	// localhost and names without a dot (development only; see ParseEmail).
	AllowLocalEmailDomains bool
	// MFA configures multi-factor authentication.
	MFA MFASettings
}

// DefaultSettings are the numbers the README's Authentication section documents.
var DefaultSettings = Settings{
	RefreshIdleTTL:     7 * 24 * time.Hour,
	RefreshAbsoluteTTL: 30 * 24 * time.Hour,
	RefreshGrace:       10 * time.Second,
	Lockout:            LockoutPolicy{FreeFailures: 5, MaxDelay: 15 * time.Minute, BlockAfter: 100, CoolDown: 24 * time.Hour, AlertAfter: 5},
	// A device that failed 10 times stays untrusted for as long as its token
	// lives, and its owner hears of it.
	DeviceLockout: LockoutPolicy{FreeFailures: 10, MaxDelay: time.Second, BlockAfter: 10, CoolDown: 180 * 24 * time.Hour, AlertAfter: 10},
	DeviceTTL:     180 * 24 * time.Hour,
	MFA:           DefaultMFASettings,
}

// PasswordRejectedError refuses a password the policy forbids. Field names
// the request field that carried it, when it is not "password".
type PasswordRejectedError struct {
	*password.Rejection
	Field string
}

// Tokens are what a login or refresh hands out.
type Tokens struct {
	Access           string
	AccessExpiresIn  time.Duration
	Refresh          string
	RefreshExpiresIn time.Duration
	// Device is the device token of a password login: the client presents it
	// at its next login to be counted in a lockout bucket of its own.
	Device string
	// MFAEnrolmentRequired: a role of the user needs multi-factor
	// authentication, which the account does not have yet; the permissions
	// of that role are held back until it has.
	MFAEnrolmentRequired bool
}

// LoginRequest is a password login.
type LoginRequest struct {
	Email, Password string
	// DeviceToken is what an earlier login of this client returned, if any.
	DeviceToken string
}

// Service implements registration, login, refresh, logout and the check of
// access tokens.
type Service struct {
	store    Store
	cache    RevocationCache
	lockout  Lockout
	hasher   hasher
	policy   *password.Policy
	tokens   *token.Issuer
	log      *slog.Logger
	obs      Observer
	now      func() time.Time
	set      Settings
	cacheTTL time.Duration
	rebuild  singleflight.Group
	local    *localRevocations
	verified *token.VerifiedCache
	// pollEvery is how often the local copy of revocations is refreshed.
	pollEvery time.Duration
	accounts  keyed.Key // email → lockout and rate-limit key
	successor keyed.Key // refresh token → its successor
	devices   *token.Devices
	mfa       mfaKeys
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
	// Secret is the server secret the keyed hashes and device tokens derive from.
	Secret []byte
	// Observer, when set, is told what operators watch (metrics, spans).
	Observer Observer
	// MFAKeys seal the TOTP secrets at rest (see package secretbox).
	MFAKeys *secretbox.Keyring
}

// NewService returns a Service.
func NewService(d Deps) *Service {
	if d.Now == nil {
		d.Now = time.Now
	}
	var h hasher = d.Hasher
	if d.Observer == nil {
		d.Observer = noObserver{}
	} else {
		h = observedHasher{d.Hasher, d.Observer}
	}
	return &Service{
		store: d.Store, cache: d.Cache, lockout: d.Lockout, hasher: h, policy: d.Policy, tokens: d.Tokens,
		log: d.Log, obs: d.Observer, now: d.Now, set: d.Settings,
		// A revocation matters while tokens issued before it may still be
		// accepted: their lifetime plus the verification leeway, plus margin.
		// The longest configurable lifetime is used, so a rolling change of
		// ACCESS_TOKEN_TTL cannot let markers expire before their tokens.
		cacheTTL:  max(d.Tokens.TTL(), time.Hour) + d.Leeway + time.Minute,
		local:     newLocalRevocations(),
		verified:  token.NewVerifiedCache(d.Tokens, 10000),
		pollEvery: cmp.Or(d.PollEvery, 2*time.Second),
		accounts:  keyed.Derive(d.Secret, "account"),
		successor: keyed.Derive(d.Secret, "refresh successor"),
		devices:   token.NewDevices(keyed.Derive(d.Secret, "device"), cmp.Or(d.Settings.DeviceTTL, DefaultSettings.DeviceTTL)),
		mfa:       mfaKeys{seal: d.MFAKeys, recovery: keyed.Derive(d.Secret, "mfa recovery code")},
	}
}

// AccountKey is the keyed hash of an email that names its lockout and
// rate-limit counters, whether or not an account has it.
func (s *Service) AccountKey(email string) string {
	return s.accounts.Hex(account.NormalizeEmail(email))
}

// LoginKey is the rate-limit key of a login: the account's, shared by
// unknown clients, or its own for a client with a valid device token.
func (s *Service) LoginKey(email, deviceToken string) string {
	acct := s.AccountKey(email)
	if dev, ok := s.devices.ForAddress(acct, deviceToken, s.now()); ok {
		return acct + ":" + dev
	}
	return acct
}

// CheckPassword applies the policy for the account with email and display
// name (nil when unknown). The strength estimate costs up to tens of
// milliseconds of CPU, so it runs within the hasher's bound on concurrent work.
func (s *Service) CheckPassword(ctx context.Context, pw, email string, name *string) error {
	var err error
	if berr := s.hasher.Bounded(ctx, func() { err = s.policy.Check(pw, account.NormalizeEmail(email), deref(name)) }); berr != nil {
		return berr
	}
	var r *password.Rejection
	if errors.As(err, &r) {
		return &PasswordRejectedError{Rejection: r}
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
func (s *Service) Register(ctx context.Context, email, pw string, name *string, c account.Client) error {
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
	id := account.NewID()
	_, err = s.store.CreateUser(ctx, account.NewUser{
		ID: id, Email: email, PasswordHash: hash, Name: name, Roles: []string{account.RoleUser},
		Mails:  []account.Mail{{Kind: mail.VerifyEmail, UserID: id, To: email}},
		Events: []account.Event{s.event(ctx, account.Event{Action: account.ActionUserRegistered, ActorID: &id, SubjectID: &id, Client: c, Details: map[string]any{"email": logging.MaskEmail(email)}})},
	})
	if errors.Is(err, account.ErrEmailTaken) {
		// Tell the owner instead; the caller learns nothing.
		// Failures are logged, not answered: the caller must see no difference.
		owner, oerr := s.store.UserByEmail(ctx, email)
		if oerr == nil {
			if err := s.store.EnqueueMail(ctx, account.Mail{Kind: mail.EmailInUse, UserID: owner.ID, To: owner.Email}); err != nil {
				s.log.ErrorContext(ctx, "enqueue email-in-use mail", "error", err)
			}
		}
		s.audit(ctx, account.Event{Action: account.ActionRegisterEmailTaken, SubjectID: ptrIf(oerr == nil, owner.ID), Client: c, Details: map[string]any{"email": logging.MaskEmail(email)}})
		return nil
	}
	return err
}

// Login checks a password and opens a session. A client with a valid
// device token for the account is throttled in a bucket of its own; every
// other client shares the account's bucket, so a stranger's guesses cannot
// keep the owner's known devices out.
func (s *Service) Login(ctx context.Context, r LoginRequest, c account.Client) (Tokens, error) {
	email := account.NormalizeEmail(r.Email)
	acct := s.accounts.Hex(email)
	// The account is read first, for every address alike: a device token is
	// bound to the account and its password, not only to the address.
	u, err := s.store.UserByEmail(ctx, email)
	found := err == nil
	if err != nil && !errors.Is(err, account.ErrNotFound) {
		return Tokens{}, err
	}
	var device string
	known := false
	if found {
		device, known = s.devices.Verify(acct, deviceBinding(u), r.DeviceToken, s.now())
	}
	var chk *check
	if known {
		chk, err = s.begin(ctx, Bucket{Account: acct, Device: device}, s.set.DeviceLockout)
		var locked *LockedError
		if errors.As(err, &locked) {
			known, device = false, "" // too many failures from it: no longer trusted
		} else if err != nil {
			return Tokens{}, err
		}
	}
	if !known {
		if chk, err = s.begin(ctx, Bucket{Account: acct}, s.set.Lockout); err != nil {
			var locked *LockedError
			if errors.As(err, &locked) {
				// One event per account and MaxDelay: refusals cost no row each.
				if first, ferr := s.lockout.First(ctx, "locked:"+acct, max(locked.RetryAfter, s.set.Lockout.MaxDelay)); first || ferr != nil {
					s.audit(ctx, account.Event{Action: account.ActionLoginLocked, Client: c, Details: map[string]any{"email": logging.MaskEmail(email)}})
				}
			}
			return Tokens{}, err
		}
	}
	start := time.Now()
	t, u, err := s.login(ctx, email, r.Password, c, chk, known, u, found)
	if err != nil {
		if errors.Is(err, ErrInvalidCredentials) {
			s.padFailure(ctx, start)
		}
		return Tokens{}, err
	}
	if t.Device, _, err = s.devices.Issue(acct, deviceBinding(u), device, s.now()); err != nil {
		return Tokens{}, err
	}
	return t, nil
}

// padFailure makes a failed login that began at start last at least the
// hasher's FailureFloor (the slowest imported hash verified lately), so that
// an unknown address, a wrong password on argon2id and one on a slow
// imported hash take as long. It waits on a timer, outside the hashing
// slots: no CPU.
func (s *Service) padFailure(ctx context.Context, start time.Time) {
	wait := s.hasher.FailureFloor() - time.Since(start)
	if wait <= 0 {
		return
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// deviceBinding is what a device token is bound to besides the address: the
// account and its password hash (a password change or reset, which changes
// the hash, forgets every device).
func deviceBinding(u account.User) string {
	sum := sha256.Sum256([]byte(u.PasswordHash))
	return u.ID.String() + ":" + hex.EncodeToString(sum[:8])
}

// login is Login once the check may go ahead; it ends chk with the result.
func (s *Service) login(ctx context.Context, email, pw string, c account.Client, chk *check, known bool, u account.User, found bool) (Tokens, account.User, error) {
	if !found {
		if err := s.hasher.VerifyDummy(ctx, pw); err != nil {
			s.end(ctx, chk, CheckAbandoned)
			return Tokens{}, u, err
		}
		s.end(ctx, chk, CheckFailed) // unknown addresses are counted alike: lockout reveals nothing
		return Tokens{}, u, s.loginFailed(ctx, email, nil, "unknown_email", c)
	}
	ok, rehash, err := s.hasher.Verify(ctx, pw, u.PasswordHash)
	switch {
	case errors.Is(err, password.ErrNoPassword):
		// An imported account without a password yet (its owner sets one
		// through the reset link): no password matches, in the usual time.
		ok, err = false, s.hasher.VerifyDummy(ctx, pw)
	case errors.Is(err, password.ErrMalformedHash):
		// A damaged or foreign hash matches no password; say so in the log,
		// answer like any wrong password.
		s.log.ErrorContext(ctx, "stored password hash is in no known format, or beyond the import bounds", "user_id", u.ID)
		ok, err = false, s.hasher.VerifyDummy(ctx, pw)
	}
	if err != nil {
		s.end(ctx, chk, CheckAbandoned)
		return Tokens{}, u, err
	}
	if !ok {
		if s.end(ctx, chk, CheckFailed) {
			s.alertGuessing(ctx, u)
		}
		return Tokens{}, u, s.loginFailed(ctx, email, &u.ID, "wrong_password", c)
	}
	if u.DisabledAt != nil {
		s.end(ctx, chk, CheckFailed)
		return Tokens{}, u, s.loginFailed(ctx, email, &u.ID, "disabled", c)
	}
	s.end(ctx, chk, CheckSucceeded)
	if s.set.RequireVerifiedEmail && u.EmailVerifiedAt == nil {
		// Only after a correct password: this reveals nothing to a guesser.
		s.audit(ctx, account.Event{Action: account.ActionLoginUnverified, SubjectID: &u.ID, Client: c})
		return Tokens{}, u, ErrEmailNotVerified
	}
	if rehash {
		// Only over the hash just verified: a password changed, reset or
		// imported since the account was read stays (the login goes on).
		if h, err := s.hasher.Hash(ctx, pw); err == nil {
			if done, err := s.store.RehashPassword(ctx, u.ID, u.PasswordHash, h); err != nil {
				s.log.WarnContext(ctx, "rehash password", "error", err)
			} else if done {
				u.PasswordHash = h
			}
		}
	}
	// Only now, after a correct password, may the answer tell that the
	// account has a second factor: a guesser learns nothing from it.
	if on, err := s.mfaEnabled(ctx, u.ID); err != nil {
		return Tokens{}, u, err
	} else if on {
		return Tokens{}, u, s.challenge(ctx, u, chk, c)
	}
	var mails []account.Mail
	if !known {
		// The owner hears of every sign-in from a client that never signed in before.
		mails = notices(u, account.Mail{Kind: mail.NewSignIn, UserID: u.ID, To: u.Email, Client: mailClient(c, s.now())})
	}
	t, err := s.openSession(ctx, u, c, known, amrPassword, mails...)
	if err != nil {
		return Tokens{}, u, err
	}
	return t, u, nil
}

// alertGuessing tells the owner, once per episode, that someone is trying
// passwords on the account.
func (s *Service) alertGuessing(ctx context.Context, u account.User) {
	if len(notices(u, account.Mail{})) == 0 {
		return
	}
	if err := s.store.EnqueueMail(context.WithoutCancel(ctx), account.Mail{Kind: mail.LoginAttempts, UserID: u.ID, To: u.Email}); err != nil {
		s.log.ErrorContext(ctx, "enqueue login-attempts mail", "error", err)
	}
	s.audit(ctx, account.Event{Action: account.ActionLoginGuessingAlerted, SubjectID: &u.ID})
}

func mailClient(c account.Client, at time.Time) *account.MailClient {
	mc := &account.MailClient{UserAgent: c.UserAgent, At: at.UTC()}
	if c.IP.IsValid() {
		mc.IP = c.IP.String()
	}
	return mc
}

func (s *Service) loginFailed(ctx context.Context, email string, id *uuid.UUID, reason string, c account.Client) error {
	s.audit(ctx, account.Event{Action: account.ActionLoginFailed, SubjectID: id, Client: c, Details: map[string]any{"email": logging.MaskEmail(email), "reason": reason}})
	return ErrInvalidCredentials
}

// openSession opens the session of a successful login, recorded with its
// event and mails.
func (s *Service) openSession(ctx context.Context, u account.User, c account.Client, known bool, amr []string, mails ...account.Mail) (Tokens, error) {
	refresh, hash, err := token.NewOpaque()
	if err != nil {
		return Tokens{}, err
	}
	now := s.now()
	sid := account.NewID()
	if err := s.store.CreateSession(ctx, NewSession{
		ID: sid, UserID: u.ID, TokenVersion: u.TokenVersion, Client: c, RefreshHash: hash, AMR: amr,
		IdleExpiresAt: now.Add(s.set.RefreshIdleTTL), ExpiresAt: now.Add(s.set.RefreshAbsoluteTTL), Mails: mails,
		Events: []account.Event{s.event(ctx, account.Event{
			Action: account.ActionLoginSucceeded, ActorID: &u.ID, SubjectID: &u.ID, Client: c,
			Details: map[string]any{"session_id": sid, "known_device": known, "amr": amr},
		})},
	}); err != nil {
		return Tokens{}, err
	}
	t, err := s.issue(ctx, u.ID, sid, u.TokenVersion, amr)
	if err != nil {
		return Tokens{}, err
	}
	t.Refresh, t.RefreshExpiresIn = refresh, s.set.RefreshIdleTTL
	return t, nil
}

func (s *Service) issue(ctx context.Context, uid, sid uuid.UUID, version int64, amr []string) (Tokens, error) {
	return s.issueAt(ctx, uid, sid, version, amr, time.Time{}, "")
}

// issueAt issues an access token; a non-zero at and a non-empty jti make it
// the same token every time.
func (s *Service) issueAt(ctx context.Context, uid, sid uuid.UUID, version int64, amr []string, at time.Time, jti string) (Tokens, error) {
	f, err := s.store.TokenFacts(ctx, uid, s.set.MFA.RequiredRoles)
	if err != nil {
		return Tokens{}, err
	}
	sub := token.Subject{UserID: uid, SessionID: sid, TokenVersion: version, Permissions: f.Permissions, AMR: amr, MFA: f.MFAEnabled, IssuedAt: at, ID: jti}
	// The permissions of roles that need MFA count only in an MFA session.
	var withheld []string
	for _, p := range f.MFAPermissions {
		if slices.Contains(sub.Permissions, p) {
			continue
		}
		// Only while the account has MFA: a session that was multi-factor
		// before MFA was disabled is not one any more.
		if f.MFAEnabled && token.ACRFor(amr) == token.AAL2 {
			sub.Permissions = append(sub.Permissions, p)
		} else {
			withheld = append(withheld, p)
		}
	}
	slices.Sort(sub.Permissions)
	sub.MFAPermissions = withheld
	access, err := s.tokens.Issue(sub)
	if err != nil {
		return Tokens{}, err
	}
	return Tokens{Access: access, AccessExpiresIn: s.tokens.TTL(), MFAEnrolmentRequired: f.MFARole && !f.MFAEnabled}, nil
}

// Refresh rotates a refresh token into a new token pair. The successor of
// a refresh token is derived from it with a keyed hash, and the access token
// from the moment the parent was used: a refresh replayed within the grace
// window (two tabs at once) gets the very same pair, so the session stays
// one chain. Only hashes are stored; without the server secret a refresh
// token says nothing about its successor.
func (s *Service) Refresh(ctx context.Context, refresh string, c account.Client) (Tokens, error) {
	hash, ok := hashRefreshToken(refresh)
	if !ok {
		return Tokens{}, ErrInvalidRefreshToken
	}
	next := base64.RawURLEncoding.EncodeToString(s.successor.Sum([]byte("refresh"), []byte(refresh)))
	res, err := s.store.Refresh(ctx, RefreshRequest{
		Hash: hash, NewHash: token.HashOpaque(next), Now: s.now().Truncate(time.Microsecond), Grace: s.set.RefreshGrace, IdleTTL: s.set.RefreshIdleTTL,
		ReuseEvent: func(res RefreshResult) account.Event {
			return s.event(ctx, account.Event{
				Action: account.ActionRefreshTokenReused, SubjectID: &res.UserID, Client: c,
				Details: map[string]any{"session_id": res.SessionID, "effect": "session revoked"},
			})
		},
	})
	if err != nil {
		return Tokens{}, err
	}
	switch res.Outcome {
	case Rotated, GraceRotated:
		jti := hex.EncodeToString(s.successor.Sum([]byte("jti"), []byte(refresh))[:16])
		// The session keeps how it was authenticated: a refresh neither
		// upgrades nor downgrades it.
		t, err := s.issueAt(ctx, res.UserID, res.SessionID, res.TokenVersion, res.AMR, res.RotatedAt, jti)
		if err != nil {
			return Tokens{}, err
		}
		t.Refresh, t.RefreshExpiresIn = next, min(s.set.RefreshIdleTTL, res.ExpiresAt.Sub(res.RotatedAt)).Truncate(time.Second)
		return t, nil
	case ReuseRevoked:
		s.obs.RefreshReuseDetected()
		s.PublishSessionRevocation(ctx, res.SessionID)
	case Refused: // answered below, like any token it cannot rotate
	}
	return Tokens{}, ErrInvalidRefreshToken
}

// Logout revokes the caller's session.
func (s *Service) Logout(ctx context.Context, p account.Principal, c account.Client) error {
	e := s.event(ctx, account.Event{Action: account.ActionSessionLogout, ActorID: &p.UserID, SubjectID: &p.UserID, Client: c, Details: map[string]any{"session_id": p.SessionID}})
	if _, err := s.store.RevokeSession(ctx, p.SessionID, "logout", e); err != nil {
		return err
	}
	s.PublishSessionRevocation(ctx, p.SessionID)
	return nil
}

// LogoutAll revokes every session of the caller and every access token
// issued to it.
func (s *Service) LogoutAll(ctx context.Context, p account.Principal, c account.Client) error {
	return s.RevokeUser(ctx, p.UserID, "logout_all", s.event(ctx, account.Event{Action: account.ActionLogoutAll, ActorID: &p.UserID, SubjectID: &p.UserID, Client: c}))
}

// RevokeUser ends every session of a user at once, on every instance, and
// records events with it (logout everywhere; the management operations end
// sessions in their own transaction, through user.Store.Manage).
func (s *Service) RevokeUser(ctx context.Context, id uuid.UUID, reason string, events ...account.Event) error {
	v, err := s.store.RevokeUser(ctx, id, reason, events...)
	if err != nil {
		return err
	}
	s.PublishUserRevocation(ctx, id, v)
	return nil
}

// cacheWrite writes and announces a revocation already recorded in
// PostgreSQL. If Redis will not take it, the cache is marked cold so that
// instances without a current copy ask PostgreSQL until it is rebuilt. If
// Redis takes neither (it refuses writes), every instance's heartbeat, which
// is published like an announcement, fails too: their feeds are lost, and
// they ask PostgreSQL until their copies are current again.
func (s *Service) cacheWrite(ctx context.Context, write func(context.Context) error) {
	ctx = context.WithoutCancel(ctx)
	var err error
	for range 3 {
		if err = write(ctx); err == nil {
			return
		}
	}
	s.obs.RevocationUnannounced()
	if ierr := s.cache.Invalidate(ctx); ierr != nil {
		// Redis is unreachable from here; checks that cannot reach it fall back
		// to PostgreSQL, and the cache is cold again after a restart.
		s.log.ErrorContext(ctx, "revocation not cached and cache not invalidated", "error", err, "invalidate_error", ierr)
		return
	}
	s.log.WarnContext(ctx, "revocation not cached; cache invalidated", "error", err)
}

// Authenticate checks an access token: signature and claims, then
// revocation: in this instance's copy of the recent revocations while it is
// current, else in Redis when it can answer and in PostgreSQL otherwise. It
// fails closed (ErrUnavailable) when neither can.
func (s *Service) Authenticate(ctx context.Context, raw string) (account.Principal, error) {
	sub, err := s.verified.Verify(raw)
	if err != nil {
		return account.Principal{}, ErrInvalidToken
	}
	p := account.Principal{
		UserID: sub.UserID, SessionID: sub.SessionID, Permissions: sub.Permissions,
		MFA: token.ACRFor(sub.AMR) == token.AAL2, MFAEnrolled: sub.MFA, MFAPermissions: sub.MFAPermissions,
	}
	switch s.local.check(sub.SessionID, sub.UserID, sub.TokenVersion, s.now()) {
	case revokedToken:
		s.obs.RevocationChecked(LayerLocal)
		return account.Principal{}, ErrInvalidToken
	case liveToken:
		s.obs.RevocationChecked(LayerLocal)
		return p, nil
	case askPostgres: // the markers may miss what the lost feed carried
	case unknown:
		st, err := s.cache.Check(ctx, sub.SessionID, sub.UserID)
		switch {
		case err == nil && st.Warm:
			s.obs.RevocationChecked(LayerRedis)
			if st.SessionRevoked || sub.TokenVersion < st.MinVersion {
				return account.Principal{}, ErrInvalidToken
			}
			return p, nil
		case err == nil:
			go s.rebuildCache()
		default:
			s.log.DebugContext(ctx, "revocation cache unavailable, asking PostgreSQL", "error", err)
		}
	}
	ss, err := s.store.SessionState(ctx, sub.SessionID)
	if err == nil || errors.Is(err, account.ErrNotFound) {
		s.obs.RevocationChecked(LayerPostgres)
	}
	if errors.Is(err, account.ErrNotFound) {
		return account.Principal{}, ErrInvalidToken
	}
	if err != nil {
		return account.Principal{}, fmt.Errorf("%w: %w", account.ErrUnavailable, err)
	}
	if ss.Revoked || !ss.UserActive || ss.UserID != sub.UserID || sub.TokenVersion < ss.TokenVersion {
		return account.Principal{}, ErrInvalidToken
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
func (s *Service) CreateAdmin(ctx context.Context, email, pw string) (account.Profile, bool, error) {
	email, err := s.ParseEmail(email)
	if err != nil {
		return account.Profile{}, false, err
	}
	if u, err := s.store.UserByEmail(ctx, email); err == nil {
		// Anyone can register an address; only its verified owner may be promoted.
		if u.EmailVerifiedAt == nil {
			return account.Profile{}, false, fmt.Errorf("%s has an account whose address is not verified: verify it (or delete the account) before making it an administrator", logging.MaskEmail(email))
		}
		if err := s.store.GrantRole(ctx, u.ID, account.RoleAdmin, s.event(ctx, account.Event{Action: account.ActionRolesChanged, SubjectID: &u.ID, Details: map[string]any{"granted": account.RoleAdmin, "by": "create-admin"}})); err != nil {
			return account.Profile{}, false, err
		}
		return u.Profile, false, nil
	} else if !errors.Is(err, account.ErrNotFound) {
		return account.Profile{}, false, err
	}
	if err := s.CheckPassword(ctx, pw, email, nil); err != nil {
		return account.Profile{}, false, err
	}
	hash, err := s.hasher.Hash(ctx, pw)
	if err != nil {
		return account.Profile{}, false, err
	}
	id := account.NewID()
	u, err := s.store.CreateUser(ctx, account.NewUser{
		ID: id, Email: email, PasswordHash: hash, Verified: true, Roles: []string{account.RoleAdmin, account.RoleUser},
		Events: []account.Event{s.event(ctx, account.Event{Action: account.ActionUserCreated, SubjectID: &id, Details: map[string]any{"email": logging.MaskEmail(email), "roles": []string{account.RoleAdmin, account.RoleUser}, "by": "create-admin"}})},
	})
	if err != nil {
		return account.Profile{}, false, err
	}
	return u, true, nil
}

// event completes e with the request's client when e has none.
func (s *Service) event(ctx context.Context, e account.Event) account.Event {
	if e.Client.RequestID == "" {
		e.Client = account.ClientFrom(ctx, e.Client)
	}
	return e
}

// audit records an event that reports no change of its own (a refused
// attempt, an alert): best effort, outside any transaction.
func (s *Service) audit(ctx context.Context, e account.Event) {
	e = s.event(ctx, e)
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
