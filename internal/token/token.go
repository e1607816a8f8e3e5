package token

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// Type is the JOSE "typ" of gatehouse access tokens (RFC 9068).
const Type = "at+jwt"

// ErrInvalid covers every reason a token is refused; the reason itself is
// for logs, never for the client.
var ErrInvalid = errors.New("invalid access token")

// Claims are what an access token asserts.
type Claims struct {
	jwt.RegisteredClaims
	SessionID    uuid.UUID `json:"sid"`
	TokenVersion int64     `json:"ver"`
	Permissions  []string  `json:"perms"`
	// AMR lists how the user authenticated in this session (RFC 8176:
	// "pwd", "otp"); ACR is the assurance level that makes ("aal1" for a
	// password, "aal2" with a second factor, as NIST SP 800-63B names them).
	AMR []string `json:"amr,omitempty"`
	ACR string   `json:"acr,omitempty"`
	// MFA is true when the account has multi-factor authentication on.
	MFA bool `json:"mfa,omitempty"`
	// MFAPermissions are permissions the user's roles grant only in a
	// multi-factor session (MFA_REQUIRED_ROLES): held back from Permissions
	// in this one, and named so that a refusal can say why.
	MFAPermissions []string `json:"mfa_perms,omitempty"`
}

// Assurance levels of a session.
const (
	AAL1 = "aal1"
	AAL2 = "aal2"
)

// ACRFor is the assurance level of a session authenticated by amr.
func ACRFor(amr []string) string {
	for _, m := range amr {
		if m == "otp" {
			return AAL2
		}
	}
	return AAL1
}

// Subject is the user the token was issued to.
type Subject struct {
	UserID       uuid.UUID
	SessionID    uuid.UUID
	TokenVersion int64
	Permissions  []string
	// AMR, MFA and MFAPermissions are as in Claims; the ACR follows from AMR.
	AMR            []string
	MFA            bool
	MFAPermissions []string
	ExpiresAt      time.Time
	// IssuedAt and ID, when set, replace the clock and the random token id:
	// the same subject then always gives the same token (Ed25519 signatures
	// are deterministic), as a refresh replayed within its grace window must.
	IssuedAt time.Time
	ID       string
}

// Issuer signs with the first key and verifies with all of them, so keys can
// be rotated: add the new key first, keep the old one until its last tokens
// expire, then drop it.
type Issuer struct {
	keys     []Key
	byID     map[string]Key
	issuer   string
	audience string
	ttl      time.Duration
	leeway   time.Duration
	now      func() time.Time
	parser   *jwt.Parser
}

// Config configures an Issuer.
type Config struct {
	Keys     []Key
	Issuer   string
	Audience string
	TTL      time.Duration
	Leeway   time.Duration
	Now      func() time.Time
}

// NewIssuer returns an issuer for c.
func NewIssuer(c Config) (*Issuer, error) {
	if len(c.Keys) == 0 {
		return nil, errors.New("no signing key")
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	i := &Issuer{keys: c.Keys, byID: map[string]Key{}, issuer: c.Issuer, audience: c.Audience, ttl: c.TTL, leeway: c.Leeway, now: c.Now}
	for _, k := range c.Keys {
		i.byID[k.ID] = k
	}
	i.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}), // pinned: no "none", no HS256 with the public key
		jwt.WithIssuer(c.Issuer),
		jwt.WithAudience(c.Audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(c.Leeway),
		jwt.WithTimeFunc(c.Now),
		jwt.WithStrictDecoding(),
	)
	return i, nil
}

// TTL is the lifetime of the tokens issued.
func (i *Issuer) TTL() time.Duration { return i.ttl }

// Keys returns the public keys, for the JWKS.
func (i *Issuer) Keys() []JWK {
	out := make([]JWK, len(i.keys))
	for n, k := range i.keys {
		out[n] = k.Public()
	}
	return out
}

// Issue signs an access token for s.
func (i *Issuer) Issue(s Subject) (string, error) {
	now, id := i.now(), s.ID
	if !s.IssuedAt.IsZero() {
		now = s.IssuedAt
	}
	if id == "" {
		jti := make([]byte, 16)
		if _, err := rand.Read(jti); err != nil {
			return "", fmt.Errorf("token id: %w", err)
		}
		id = hex.EncodeToString(jti)
	}
	c := Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    i.issuer,
			Subject:   s.UserID.String(),
			Audience:  jwt.ClaimStrings{i.audience},
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(i.ttl)),
			ID:        id,
		},
		SessionID:      s.SessionID,
		TokenVersion:   s.TokenVersion,
		Permissions:    s.Permissions,
		AMR:            s.AMR,
		ACR:            ACRFor(s.AMR),
		MFA:            s.MFA,
		MFAPermissions: s.MFAPermissions,
	}
	if len(c.AMR) == 0 {
		c.AMR = []string{"pwd"}
	}
	if c.Permissions == nil {
		c.Permissions = []string{}
	}
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
	t.Header["kid"] = i.keys[0].ID
	t.Header["typ"] = Type
	signed, err := t.SignedString(i.keys[0].private)
	if err != nil {
		return "", fmt.Errorf("sign access token: %w", err)
	}
	return signed, nil
}

// MaxLen bounds the tokens Verify reads. One this issuer signs is under
// 1 KiB (two UUIDs, a token id and a handful of permissions), so a longer one
// cannot be valid; refusing it unread keeps what an attacker's header and
// claims cost to decode (which happens before the signature is checked) small.
const MaxLen = 4096

// Verify checks signature, algorithm, key, type, issuer, audience and times,
// and returns the subject. Every failure wraps ErrInvalid.
func (i *Issuer) Verify(raw string) (Subject, error) {
	if len(raw) > MaxLen {
		return Subject{}, fmt.Errorf("%w: longer than %d bytes", ErrInvalid, MaxLen)
	}
	var c Claims
	_, err := i.parser.ParseWithClaims(raw, &c, i.key)
	if err != nil {
		return Subject{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	uid, err := uuid.Parse(c.Subject)
	if err != nil || c.SessionID == uuid.Nil || c.ID == "" {
		return Subject{}, fmt.Errorf("%w: missing subject, session or id", ErrInvalid)
	}
	return Subject{
		UserID: uid, SessionID: c.SessionID, TokenVersion: c.TokenVersion, Permissions: c.Permissions, ExpiresAt: c.ExpiresAt.Time,
		AMR: c.AMR, MFA: c.MFA, MFAPermissions: c.MFAPermissions,
	}, nil
}

// Leeway is the clock skew tolerated on expiry.
func (i *Issuer) Leeway() time.Duration { return i.leeway }

// key picks the verification key named by the token, refusing tokens that
// try to bring their own key or are not access tokens.
func (i *Issuer) key(t *jwt.Token) (any, error) {
	for _, h := range []string{"jwk", "jku", "x5c", "x5u", "crit"} {
		if _, ok := t.Header[h]; ok {
			return nil, fmt.Errorf("header %q is not accepted", h)
		}
	}
	if typ, _ := t.Header["typ"].(string); typ != Type {
		return nil, fmt.Errorf("typ %q is not %q", typ, Type)
	}
	kid, _ := t.Header["kid"].(string)
	k, ok := i.byID[kid]
	if !ok {
		return nil, errors.New("unknown kid")
	}
	return k.public, nil
}
