package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/gatehouse/gatehouse/internal/account"
	"github.com/gatehouse/gatehouse/internal/keyed"
	"github.com/gatehouse/gatehouse/internal/logging"
	"github.com/gatehouse/gatehouse/internal/mail"
	"github.com/gatehouse/gatehouse/internal/secretbox"
	"github.com/gatehouse/gatehouse/internal/token"
)

// MFASettings configure multi-factor authentication.
type MFASettings struct {
	// RequiredRoles are roles whose permissions count only in a session
	// authenticated with a second factor (MFA_REQUIRED_ROLES).
	RequiredRoles []string
	// ChallengeTTL is how long the second step of a login may wait.
	ChallengeTTL time.Duration
	// ChallengeAttempts is how many wrong codes kill a login challenge.
	ChallengeAttempts int
	// EnrolTTL is how long an unconfirmed TOTP enrolment lives.
	EnrolTTL time.Duration
	// Issuer names the service in authenticator apps (otpauth issuer).
	Issuer string
}

// DefaultMFASettings are the numbers the README's MFA section documents.
var DefaultMFASettings = MFASettings{ChallengeTTL: 5 * time.Minute, ChallengeAttempts: 5, EnrolTTL: 15 * time.Minute, Issuer: "gatehouse"}

// Errors of multi-factor authentication.
var (
	// ErrInvalidMFAChallenge covers unknown, used, expired and exhausted
	// login challenges: log in again.
	ErrInvalidMFAChallenge = errors.New("invalid mfa challenge")
	// ErrInvalidMFACode covers a wrong, replayed or malformed TOTP code and
	// an unknown or used recovery code.
	ErrInvalidMFACode = errors.New("invalid mfa code")
	// ErrMFANotEnabled refuses an operation on a factor the account lacks
	// (or an enrolment that expired).
	ErrMFANotEnabled = errors.New("mfa not enabled")
	// ErrMFAEnabled refuses an enrolment while MFA is already on.
	ErrMFAEnabled = errors.New("mfa already enabled")
)

// MFARequiredError answers a correct password of an account with MFA: no
// tokens, but a challenge that VerifyMFALogin exchanges for them.
type MFARequiredError struct {
	Challenge string
	ExpiresIn time.Duration
}

func (e *MFARequiredError) Error() string { return "a second factor is required" }

// Authentication methods (RFC 8176) a session records.
var (
	amrPassword = []string{"pwd"}
	amrMFA      = []string{"pwd", "otp"}
)

func amrOf(p account.Principal) []string {
	if p.MFA {
		return amrMFA
	}
	return amrPassword
}

// TokenFacts are what an access token says of its user.
type TokenFacts struct {
	Permissions    []string // of roles that do not need MFA
	MFAPermissions []string // of roles that need MFA
	MFAEnabled     bool
	MFARole        bool // the user has a role that needs MFA
}

// MFAStatus is what the account shows of its MFA.
type MFAStatus struct {
	Enabled                bool
	RecoveryCodesRemaining int
}

// TOTPFactor is a stored TOTP factor, its secret sealed.
type TOTPFactor struct {
	ID       uuid.UUID
	Sealed   []byte
	KeyID    string
	LastStep int64
}

// NewFactor is an enrolment to store.
type NewFactor struct {
	ID        uuid.UUID
	UserID    uuid.UUID
	Sealed    []byte
	KeyID     string
	ExpiresAt time.Time
	Event     account.Event
}

// Proof is a second factor a request presented and the service checked:
// a TOTP code of Step (FactorID set), or a recovery code (RecoveryHash set).
// The store accepts it atomically with the change it allows: a TOTP step
// only above the last one accepted, a recovery code only unused.
type Proof struct {
	FactorID     uuid.UUID
	Step         int64
	RecoveryHash []byte
}

// Recovery reports whether the proof is a recovery code.
func (p Proof) Recovery() bool { return p.RecoveryHash != nil }

// Challenge is a pending login challenge.
type Challenge struct {
	UserID       uuid.UUID
	TokenVersion int64
	Device       string
	Email        string
}

// NewChallenge is a challenge to store.
type NewChallenge struct {
	Hash         []byte
	UserID       uuid.UUID
	TokenVersion int64
	Device       string
	ExpiresAt    time.Time
	Event        account.Event
}

// MFAChange is a change of the account's factors, applied in one
// transaction with the proof that allowed it, its event and mails.
type MFAChange struct {
	UserID uuid.UUID
	// Proof is accepted first (ConfirmEnrolment: FactorID and Step confirm
	// the pending factor).
	Proof Proof
	// RecoveryHashes replace the account's recovery codes (enable, regenerate).
	RecoveryHashes [][]byte
	// Keep is the caller's session: it lives on with a new refresh token and
	// AMR while every other session ends (enable, disable).
	Keep  KeptSession
	AMR   []string
	Event account.Event
	Mails []account.Mail
}

// MFAStore keeps factors, recovery codes and login challenges.
type MFAStore interface {
	MFAStatus(ctx context.Context, id uuid.UUID) (MFAStatus, error)
	// StartEnrolment replaces any pending enrolment of the user with f.
	StartEnrolment(ctx context.Context, f NewFactor) error
	// TOTPFactor reads the active factor, or the live pending one; ErrNotFound.
	TOTPFactor(ctx context.Context, userID uuid.UUID, pending bool) (TOTPFactor, error)
	// ConfirmEnrolment activates the pending factor, stores the recovery
	// codes, bumps the token version and ends every session but Keep.
	// ErrMFANotEnabled when the enrolment expired; ErrMFAEnabled when
	// another factor became active meanwhile.
	ConfirmEnrolment(ctx context.Context, c MFAChange) (version int64, expires time.Time, err error)
	CreateChallenge(ctx context.Context, c NewChallenge) error
	// TakeChallengeAttempt counts an attempt on a usable challenge, before
	// its code is checked (so that parallel guesses are bounded too);
	// ErrInvalidMFAChallenge when none is left or the challenge is unusable.
	TakeChallengeAttempt(ctx context.Context, hash []byte, maxAttempts int) (Challenge, error)
	// CompleteChallenge consumes the challenge, accepts the proof and opens
	// the session, together: ErrInvalidMFAChallenge when the challenge was
	// used meanwhile, ErrInvalidMFACode when the proof was (a replay, a
	// recovery code used twice at once).
	CompleteChallenge(ctx context.Context, hash []byte, maxAttempts int, p Proof, s NewSession) error
	// StepUp accepts the proof and records c.AMR on the session c.Keep,
	// which gets a new refresh token. It returns the session's token
	// version and absolute expiry.
	StepUp(ctx context.Context, c MFAChange) (version int64, expires time.Time, err error)
	// DisableMFA accepts the proof, deletes every factor and recovery code,
	// bumps the token version and ends every session but c.Keep.
	DisableMFA(ctx context.Context, c MFAChange) (version int64, expires time.Time, err error)
	// RegenerateRecoveryCodes accepts the proof and replaces the codes.
	RegenerateRecoveryCodes(ctx context.Context, c MFAChange) error
	// ResetMFA deletes every factor and recovery code of the user and ends
	// every session (an administrator's act); ErrMFANotEnabled when it had none.
	ResetMFA(ctx context.Context, id uuid.UUID, e account.Event, mails ...account.Mail) (int64, error)
	// RekeyFactors re-seals every secret not sealed under the current key.
	RekeyFactors(ctx context.Context, current string, reseal func(TOTPFactor) ([]byte, string, error)) (int, error)
}

// mfaKeys are the keys of MFA: the keyring that seals TOTP secrets and the
// HMAC key of recovery codes.
type mfaKeys struct {
	seal     *secretbox.Keyring
	recovery keyed.Key
}

// TOTP parameters (RFC 6238 defaults, which every authenticator app reads).
const (
	totpPeriod = 30
	totpDigits = otp.DigitsSix
	totpSkew   = 1 // steps of drift accepted either way
	// recoveryCodes is how many recovery codes an account gets; each is
	// recoveryBytes random bytes (80 bits), shown as 16 base32 characters.
	recoveryCodes = 10
	recoveryBytes = 10
)

var recoveryEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// Enrolment is a started TOTP enrolment: what the authenticator app needs.
type Enrolment struct {
	Secret    string // base32
	URI       string // otpauth://totp/...
	ExpiresAt time.Time
}

// mfaBucket counts the wrong codes of a signed-in user: only holders of the
// user's access token reach it, so no stranger can fill it.
func mfaBucket(id uuid.UUID) Bucket { return Bucket{Account: "mfa:u:" + id.String()} }

func (s *Service) mfaEnabled(ctx context.Context, id uuid.UUID) (bool, error) {
	st, err := s.store.MFAStatus(ctx, id)
	return st.Enabled, err
}

// challenge issues the second step of a login whose password was right.
func (s *Service) challenge(ctx context.Context, u account.User, chk *check, c account.Client) error {
	raw, hash, err := token.NewOpaque()
	if err != nil {
		return err
	}
	device := ""
	if chk != nil {
		device = chk.bucket.Device
	}
	ttl := s.set.MFA.ChallengeTTL
	if err := s.store.CreateChallenge(ctx, NewChallenge{
		Hash: hash, UserID: u.ID, TokenVersion: u.TokenVersion, Device: device, ExpiresAt: s.now().Add(ttl),
		Event: s.event(ctx, account.Event{Action: account.ActionLoginMFARequired, SubjectID: &u.ID, Client: c}),
	}); err != nil {
		return err
	}
	return &MFARequiredError{Challenge: raw, ExpiresIn: ttl}
}

// VerifyMFALogin completes a login: the challenge of its password step and
// a current TOTP code or an unused recovery code give the token pair.
// Wrong codes count against the challenge (it dies after a few) and in the
// lockout bucket the password step used (the account's, shared by unknown
// clients, or the known device's), never in one a stranger fills for the
// owner's known devices.
func (s *Service) VerifyMFALogin(ctx context.Context, challenge, code, recovery string, c account.Client) (Tokens, error) {
	hash, ok := hashRefreshToken(challenge) // same shape as a refresh token
	if !ok {
		return Tokens{}, ErrInvalidMFAChallenge
	}
	ch, err := s.store.TakeChallengeAttempt(ctx, hash, s.set.MFA.ChallengeAttempts)
	if err != nil {
		return Tokens{}, err
	}
	// Wrong codes count in a bucket of their own beside the password's (a
	// correct password, which clears that one, must not clear this one),
	// split the same way: per known device, else shared by unknown clients.
	// Only holders of the password can reach it.
	acct := s.AccountKey(ch.Email)
	var chk *check
	if ch.Device != "" {
		chk, err = s.begin(ctx, Bucket{Account: acct + ":mfa", Device: ch.Device}, s.set.DeviceLockout)
		// Too many wrong codes from that device (locked, chk nil): it
		// counts as an unknown client now, as at the password step, rather
		// than being shut out for the device policy's whole cool-down.
		var locked *LockedError
		if err != nil && !errors.As(err, &locked) {
			return Tokens{}, err
		}
	}
	if chk == nil {
		if chk, err = s.begin(ctx, Bucket{Account: acct + ":mfa"}, s.set.Lockout); err != nil {
			return Tokens{}, err
		}
	}
	fail := func(reason string) error {
		s.end(ctx, chk, CheckFailed)
		s.audit(ctx, account.Event{Action: account.ActionMFACodeRejected, SubjectID: &ch.UserID, Client: c, Details: map[string]any{"reason": reason, "step": "login"}})
		return ErrInvalidMFACode
	}
	proof, err := s.proof(ctx, ch.UserID, code, recovery)
	if errors.Is(err, ErrInvalidMFACode) || errors.Is(err, account.ErrNotFound) {
		return Tokens{}, fail("wrong_code")
	}
	if err != nil {
		s.end(ctx, chk, CheckAbandoned)
		return Tokens{}, err
	}
	u, err := s.store.UserByID(ctx, ch.UserID)
	if err != nil {
		s.end(ctx, chk, CheckAbandoned)
		if errors.Is(err, account.ErrNotFound) {
			return Tokens{}, ErrInvalidMFAChallenge
		}
		return Tokens{}, err
	}
	refresh, rhash, err := token.NewOpaque()
	if err != nil {
		s.end(ctx, chk, CheckAbandoned)
		return Tokens{}, err
	}
	now, sid := s.now(), account.NewID()
	var mails []account.Mail
	if ch.Device == "" {
		mails = notices(u, account.Mail{Kind: mail.NewSignIn, UserID: u.ID, To: u.Email, Client: mailClient(c, now)})
	}
	events := []account.Event{s.event(ctx, account.Event{
		Action: account.ActionLoginSucceeded, ActorID: &u.ID, SubjectID: &u.ID, Client: c,
		Details: map[string]any{"session_id": sid, "known_device": ch.Device != "", "amr": amrMFA},
	})}
	if proof.Recovery() {
		events = append(events, s.event(ctx, account.Event{Action: account.ActionMFARecoveryCodeUsed, ActorID: &u.ID, SubjectID: &u.ID, Client: c}))
		mails = append(mails, notices(u, account.Mail{Kind: mail.MFARecoveryCodeUsed, UserID: u.ID, To: u.Email, Client: mailClient(c, now)})...)
	}
	err = s.store.CompleteChallenge(ctx, hash, s.set.MFA.ChallengeAttempts, proof, NewSession{
		ID: sid, UserID: u.ID, TokenVersion: ch.TokenVersion, Client: c, RefreshHash: rhash, AMR: amrMFA,
		IdleExpiresAt: now.Add(s.set.RefreshIdleTTL), ExpiresAt: now.Add(s.set.RefreshAbsoluteTTL),
		Mails: mails, Events: events,
	})
	switch {
	case errors.Is(err, ErrInvalidMFACode):
		return Tokens{}, fail("replayed_or_used")
	case errors.Is(err, ErrInvalidCredentials):
		// The password changed, or the account was disabled, since the
		// password step: that step is void.
		s.end(ctx, chk, CheckAbandoned)
		return Tokens{}, ErrInvalidMFAChallenge
	case err != nil:
		s.end(ctx, chk, CheckAbandoned)
		return Tokens{}, err
	}
	s.end(ctx, chk, CheckSucceeded)
	t, err := s.issue(ctx, u.ID, sid, ch.TokenVersion, amrMFA)
	if err != nil {
		return Tokens{}, err
	}
	t.Refresh, t.RefreshExpiresIn = refresh, s.set.RefreshIdleTTL
	if t.Device, _, err = s.devices.Issue(acct, deviceBinding(u), ch.Device, now); err != nil {
		return Tokens{}, err
	}
	return t, nil
}

// proof checks a TOTP code or a recovery code of the user. A TOTP code
// must be of the current step or one step either side, and above the last
// step accepted (the store checks that again, atomically, when it accepts
// the proof). A recovery code is only hashed here: the store's atomic use
// decides.
func (s *Service) proof(ctx context.Context, uid uuid.UUID, code, recovery string) (Proof, error) {
	switch {
	case code != "" && recovery == "":
		f, err := s.store.TOTPFactor(ctx, uid, false)
		if errors.Is(err, account.ErrNotFound) {
			return Proof{}, ErrMFANotEnabled
		}
		if err != nil {
			return Proof{}, err
		}
		step, ok, err := s.matchTOTP(f, code)
		if err != nil {
			return Proof{}, err
		}
		if !ok || step <= f.LastStep {
			return Proof{}, ErrInvalidMFACode
		}
		return Proof{FactorID: f.ID, Step: step}, nil
	case recovery != "" && code == "":
		h, ok := s.recoveryHash(recovery)
		if !ok {
			return Proof{}, ErrInvalidMFACode
		}
		return Proof{RecoveryHash: h}, nil
	default:
		return Proof{}, ErrInvalidMFACode
	}
}

// matchTOTP returns the step whose code is code, within the drift allowed.
func (s *Service) matchTOTP(f TOTPFactor, code string) (int64, bool, error) {
	if len(code) != 6 || strings.Trim(code, "0123456789") != "" {
		return 0, false, nil
	}
	secret, err := s.mfa.seal.Open(f.Sealed, f.KeyID, f.ID[:])
	if err != nil {
		return 0, false, fmt.Errorf("open TOTP secret of factor %s: %w", f.ID, err)
	}
	now := s.now().Unix() / totpPeriod
	found, match := int64(0), false
	for d := int64(-totpSkew); d <= totpSkew; d++ {
		step := now + d
		want, err := totp.GenerateCodeCustom(string(secret), time.Unix(step*totpPeriod, 0), totp.ValidateOpts{
			Period: totpPeriod, Digits: totpDigits, Algorithm: otp.AlgorithmSHA1,
		})
		if err != nil {
			return 0, false, fmt.Errorf("TOTP code: %w", err)
		}
		// Every candidate is compared, in constant time: the answer's timing
		// does not tell which step matched.
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 && !match {
			found, match = step, true
		}
	}
	return found, match, nil
}

// recoveryHash is the stored form of a recovery code: its HMAC under a
// server key, after the same normalisation the user's typing gets
// (case, dashes and spaces do not matter).
func (s *Service) recoveryHash(code string) ([]byte, bool) {
	c := strings.ToUpper(strings.NewReplacer("-", "", " ", "").Replace(code))
	b, err := recoveryEncoding.DecodeString(c)
	if err != nil || len(b) != recoveryBytes {
		return nil, false
	}
	return s.mfa.recovery.Sum([]byte(c)), true
}

// newRecoveryCodes returns fresh codes and their stored hashes.
func (s *Service) newRecoveryCodes() ([]string, [][]byte, error) {
	codes, hashes := make([]string, recoveryCodes), make([][]byte, recoveryCodes)
	for i := range codes {
		b := make([]byte, recoveryBytes)
		if _, err := rand.Read(b); err != nil {
			return nil, nil, fmt.Errorf("recovery code: %w", err)
		}
		c := strings.ToLower(recoveryEncoding.EncodeToString(b)) // 16 characters
		codes[i] = c[0:4] + "-" + c[4:8] + "-" + c[8:12] + "-" + c[12:16]
		h, _ := s.recoveryHash(codes[i])
		hashes[i] = h
	}
	return codes, hashes, nil
}

// checkProof checks the code a signed-in user sent, counting wrong ones in
// the user's own bucket, and ends the check once fn (which makes the store
// accept the proof) says how it went.
func (s *Service) checkProof(ctx context.Context, u account.User, code, recovery string, c account.Client, step string, fn func(Proof) error) error {
	p := s.set.Lockout
	p.AlertAfter = noAlert
	chk, err := s.begin(ctx, mfaBucket(u.ID), p)
	if err != nil {
		return err
	}
	proof, err := s.proof(ctx, u.ID, code, recovery)
	if err == nil {
		err = fn(proof)
	}
	switch {
	case errors.Is(err, ErrInvalidMFACode):
		s.end(ctx, chk, CheckFailed)
		s.audit(ctx, account.Event{Action: account.ActionMFACodeRejected, ActorID: &u.ID, SubjectID: &u.ID, Client: c, Details: map[string]any{"reason": "wrong_code", "step": step}})
		return err
	case err != nil:
		s.end(ctx, chk, CheckAbandoned)
		return err
	}
	s.end(ctx, chk, CheckSucceeded)
	return nil
}

// EnrolTOTP starts a TOTP enrolment for the signed-in user, after checking
// the password. The secret is sealed at rest; the answer is the only place
// it appears in clear.
func (s *Service) EnrolTOTP(ctx context.Context, p account.Principal, pw string, c account.Client) (Enrolment, error) {
	u, err := s.store.UserByID(ctx, p.UserID)
	if err != nil {
		return Enrolment{}, err
	}
	if err := s.VerifyPassword(ctx, u, pw); err != nil {
		return Enrolment{}, err
	}
	if on, err := s.mfaEnabled(ctx, u.ID); err != nil {
		return Enrolment{}, err
	} else if on {
		return Enrolment{}, ErrMFAEnabled
	}
	key, err := totp.Generate(totp.GenerateOpts{
		Issuer: s.set.MFA.Issuer, AccountName: u.Email, Period: totpPeriod, SecretSize: 20, Digits: totpDigits, Algorithm: otp.AlgorithmSHA1,
	})
	if err != nil {
		return Enrolment{}, fmt.Errorf("generate TOTP secret: %w", err)
	}
	id := account.NewID()
	sealed, kid, err := s.mfa.seal.Seal([]byte(key.Secret()), id[:])
	if err != nil {
		return Enrolment{}, err
	}
	exp := s.now().Add(s.set.MFA.EnrolTTL)
	if err := s.store.StartEnrolment(ctx, NewFactor{
		ID: id, UserID: u.ID, Sealed: sealed, KeyID: kid, ExpiresAt: exp,
		Event: s.event(ctx, account.Event{Action: account.ActionMFAEnrolmentStarted, ActorID: &u.ID, SubjectID: &u.ID, Client: c, Details: map[string]any{"factor_id": id, "kind": "totp"}}),
	}); err != nil {
		return Enrolment{}, err
	}
	return Enrolment{Secret: key.Secret(), URI: key.URL(), ExpiresAt: exp}, nil
}

// ConfirmTOTP activates the pending enrolment with a current code: MFA is
// on, every other session ends, and the caller's session, now a
// multi-factor one, continues with the returned pair. The recovery codes
// are returned once and stored only hashed.
func (s *Service) ConfirmTOTP(ctx context.Context, p account.Principal, code string, c account.Client) (Tokens, []string, error) {
	u, err := s.store.UserByID(ctx, p.UserID)
	if err != nil {
		return Tokens{}, nil, err
	}
	pol := s.set.Lockout
	pol.AlertAfter = noAlert
	chk, err := s.begin(ctx, mfaBucket(u.ID), pol)
	if err != nil {
		return Tokens{}, nil, err
	}
	f, err := s.store.TOTPFactor(ctx, u.ID, true)
	if errors.Is(err, account.ErrNotFound) {
		s.end(ctx, chk, CheckAbandoned)
		return Tokens{}, nil, ErrMFANotEnabled
	}
	if err != nil {
		s.end(ctx, chk, CheckAbandoned)
		return Tokens{}, nil, err
	}
	step, ok, err := s.matchTOTP(f, code)
	if err != nil {
		s.end(ctx, chk, CheckAbandoned)
		return Tokens{}, nil, err
	}
	if !ok {
		s.end(ctx, chk, CheckFailed)
		s.audit(ctx, account.Event{Action: account.ActionMFACodeRejected, ActorID: &u.ID, SubjectID: &u.ID, Client: c, Details: map[string]any{"reason": "wrong_code", "step": "confirm"}})
		return Tokens{}, nil, ErrInvalidMFACode
	}
	s.end(ctx, chk, CheckSucceeded)
	codes, hashes, err := s.newRecoveryCodes()
	if err != nil {
		return Tokens{}, nil, err
	}
	refresh, rhash, err := token.NewOpaque()
	if err != nil {
		return Tokens{}, nil, err
	}
	now := s.now()
	v, expires, err := s.store.ConfirmEnrolment(ctx, MFAChange{
		UserID: u.ID, Proof: Proof{FactorID: f.ID, Step: step}, RecoveryHashes: hashes, AMR: amrMFA,
		Keep:  KeptSession{ID: p.SessionID, RefreshHash: rhash, IdleExpiresAt: now.Add(s.set.RefreshIdleTTL)},
		Event: s.event(ctx, account.Event{Action: account.ActionMFAEnabled, ActorID: &u.ID, SubjectID: &u.ID, Client: c, Details: map[string]any{"factor_id": f.ID, "kind": "totp", "kept_session_id": p.SessionID}}),
		Mails: notices(u, account.Mail{Kind: mail.MFAEnabled, UserID: u.ID, To: u.Email, Client: mailClient(c, now)}),
	})
	if err != nil {
		return Tokens{}, nil, err
	}
	s.PublishUserRevocation(ctx, u.ID, v)
	t, err := s.keptPair(ctx, u.ID, p.SessionID, v, amrMFA, refresh, expires, now)
	return t, codes, err
}

// keptPair is the token pair of a session that lives on through a change
// that ended the others.
func (s *Service) keptPair(ctx context.Context, uid, sid uuid.UUID, v int64, amr []string, refresh string, expires, now time.Time) (Tokens, error) {
	t, err := s.issue(ctx, uid, sid, v, amr)
	if err != nil {
		return Tokens{}, err
	}
	t.Refresh, t.RefreshExpiresIn = refresh, min(s.set.RefreshIdleTTL, expires.Sub(now)).Truncate(time.Second)
	return t, nil
}

// StepUp makes the caller's session a multi-factor one with a current code
// (or a recovery code), without a new password login. The answer carries
// the pair that continues the session; refreshes keep its new level.
func (s *Service) StepUp(ctx context.Context, p account.Principal, code, recovery string, c account.Client) (Tokens, error) {
	u, err := s.store.UserByID(ctx, p.UserID)
	if err != nil {
		return Tokens{}, err
	}
	refresh, rhash, err := token.NewOpaque()
	if err != nil {
		return Tokens{}, err
	}
	now := s.now()
	var v int64
	var expires time.Time
	err = s.checkProof(ctx, u, code, recovery, c, "step_up", func(pr Proof) error {
		ch := MFAChange{
			UserID: u.ID, Proof: pr, AMR: amrMFA,
			Keep:  KeptSession{ID: p.SessionID, RefreshHash: rhash, IdleExpiresAt: now.Add(s.set.RefreshIdleTTL)},
			Event: s.event(ctx, account.Event{Action: account.ActionMFASteppedUp, ActorID: &u.ID, SubjectID: &u.ID, Client: c, Details: map[string]any{"session_id": p.SessionID, "recovery_code": pr.Recovery()}}),
		}
		if pr.Recovery() {
			ch.Mails = notices(u, account.Mail{Kind: mail.MFARecoveryCodeUsed, UserID: u.ID, To: u.Email, Client: mailClient(c, now)})
		}
		var err error
		v, expires, err = s.store.StepUp(ctx, ch)
		return err
	})
	if err != nil {
		return Tokens{}, err
	}
	return s.keptPair(ctx, u.ID, p.SessionID, v, amrMFA, refresh, expires, now)
}

// DisableMFA turns MFA off with the password and a current code (or a
// recovery code): every factor and recovery code is deleted, every other
// session ends, and the caller continues with the returned pair.
func (s *Service) DisableMFA(ctx context.Context, p account.Principal, pw, code, recovery string, c account.Client) (Tokens, error) {
	u, err := s.store.UserByID(ctx, p.UserID)
	if err != nil {
		return Tokens{}, err
	}
	if err := s.VerifyPassword(ctx, u, pw); err != nil {
		return Tokens{}, err
	}
	refresh, rhash, err := token.NewOpaque()
	if err != nil {
		return Tokens{}, err
	}
	now := s.now()
	var v int64
	var expires time.Time
	err = s.checkProof(ctx, u, code, recovery, c, "disable", func(pr Proof) error {
		var err error
		v, expires, err = s.store.DisableMFA(ctx, MFAChange{
			UserID: u.ID, Proof: pr, AMR: amrOf(p),
			Keep:  KeptSession{ID: p.SessionID, RefreshHash: rhash, IdleExpiresAt: now.Add(s.set.RefreshIdleTTL)},
			Event: s.event(ctx, account.Event{Action: account.ActionMFADisabled, ActorID: &u.ID, SubjectID: &u.ID, Client: c, Details: map[string]any{"kept_session_id": p.SessionID, "recovery_code": pr.Recovery()}}),
			Mails: notices(u, account.Mail{Kind: mail.MFADisabled, UserID: u.ID, To: u.Email, Client: mailClient(c, now)}),
		})
		return err
	})
	if err != nil {
		return Tokens{}, err
	}
	s.PublishUserRevocation(ctx, u.ID, v)
	return s.keptPair(ctx, u.ID, p.SessionID, v, amrOf(p), refresh, expires, now)
}

// RegenerateRecoveryCodes replaces the recovery codes, with the password
// and a current code; the new codes are returned once.
func (s *Service) RegenerateRecoveryCodes(ctx context.Context, p account.Principal, pw, code string, c account.Client) ([]string, error) {
	u, err := s.store.UserByID(ctx, p.UserID)
	if err != nil {
		return nil, err
	}
	if err := s.VerifyPassword(ctx, u, pw); err != nil {
		return nil, err
	}
	codes, hashes, err := s.newRecoveryCodes()
	if err != nil {
		return nil, err
	}
	err = s.checkProof(ctx, u, code, "", c, "regenerate", func(pr Proof) error {
		return s.store.RegenerateRecoveryCodes(ctx, MFAChange{
			UserID: u.ID, Proof: pr, RecoveryHashes: hashes,
			Event: s.event(ctx, account.Event{Action: account.ActionMFARecoveryCodesRegenerated, ActorID: &u.ID, SubjectID: &u.ID, Client: c}),
			Mails: notices(u, account.Mail{Kind: mail.MFARecoveryCodesRegenerated, UserID: u.ID, To: u.Email, Client: mailClient(c, s.now())}),
		})
	})
	if err != nil {
		return nil, err
	}
	return codes, nil
}

// ResetMFA removes the MFA of a user who lost their device: an
// administrator's act (permission mfa:reset). Every session of the user
// ends; the user is told by mail.
func (s *Service) ResetMFA(ctx context.Context, actor account.Principal, id uuid.UUID, c account.Client) error {
	u, err := s.store.UserByID(ctx, id)
	if err != nil {
		return err
	}
	// As for every administrative act: not on a user who holds permissions
	// the caller lacks (that user's second factor protects more).
	perms, err := s.store.Permissions(ctx, id)
	if err != nil {
		return err
	}
	if !actor.Has(perms...) {
		return account.ErrForbidden
	}
	v, err := s.store.ResetMFA(ctx, id,
		s.event(ctx, account.Event{Action: account.ActionMFAReset, ActorID: &actor.UserID, SubjectID: &id, Client: c, Details: map[string]any{"email": logging.MaskEmail(u.Email)}}),
		notices(u, account.Mail{Kind: mail.MFAReset, UserID: u.ID, To: u.Email})...)
	if err != nil {
		return err
	}
	s.PublishUserRevocation(ctx, id, v)
	return nil
}

// RekeyMFASecrets re-seals every TOTP secret that the current key did not
// seal, so that an old key can then be dropped from configuration.
func (s *Service) RekeyMFASecrets(ctx context.Context) (int, error) {
	return s.store.RekeyFactors(ctx, s.mfa.seal.Current(), func(f TOTPFactor) ([]byte, string, error) {
		secret, err := s.mfa.seal.Open(f.Sealed, f.KeyID, f.ID[:])
		if err != nil {
			return nil, "", err
		}
		return s.mfa.seal.Seal(secret, f.ID[:])
	})
}
