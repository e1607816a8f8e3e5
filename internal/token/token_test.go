package token

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func newIssuer(t *testing.T, keys ...Key) *Issuer {
	t.Helper()
	if len(keys) == 0 {
		k, err := GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		keys = []Key{k}
	}
	i, err := NewIssuer(Config{Keys: keys, Issuer: "https://auth.example.com", Audience: "gatehouse", TTL: 15 * time.Minute, Leeway: 30 * time.Second, Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	return i
}

var subject = Subject{UserID: uuid.New(), SessionID: uuid.New(), TokenVersion: 3, Permissions: []string{"users:read"}}

func TestIssueVerify_RoundTrip(t *testing.T) {
	i := newIssuer(t)
	raw, err := i.Issue(subject)
	if err != nil {
		t.Fatal(err)
	}
	got, err := i.Verify(raw)
	if err != nil {
		t.Fatal(err)
	}
	if got.UserID != subject.UserID || got.SessionID != subject.SessionID || got.TokenVersion != 3 || len(got.Permissions) != 1 {
		t.Fatalf("got %+v", got)
	}
	h := header(t, raw)
	if h["alg"] != "EdDSA" || h["typ"] != "at+jwt" || h["kid"] != i.keys[0].ID {
		t.Fatalf("header %v", h)
	}
}

// Verify refuses tokens longer than MaxLen unread: the tokens the issuer
// signs, with every permission of the contract, must stay well below it.
func TestIssue_TokensStayWellBelowMaxLen(t *testing.T) {
	i := newIssuer(t)
	s := subject
	s.Permissions = []string{"users:read", "users:write", "users:delete", "roles:read", "roles:assign", "sessions:revoke", "audit:read"}
	raw, err := i.Issue(s)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) > MaxLen/2 {
		t.Fatalf("an access token is %d bytes, more than half of MaxLen (%d)", len(raw), MaxLen)
	}
}

func TestVerify_KeyRotation(t *testing.T) {
	old, _ := GenerateKey()
	next, _ := GenerateKey()
	before := newIssuer(t, old)
	raw, _ := before.Issue(subject)
	after := newIssuer(t, next, old) // new key signs, old still verifies
	if _, err := after.Verify(raw); err != nil {
		t.Fatalf("token of the previous key refused during rotation: %v", err)
	}
	fresh, _ := after.Issue(subject)
	if header(t, fresh)["kid"] != next.ID {
		t.Fatal("the first key must sign")
	}
	if _, err := newIssuer(t, next).Verify(raw); err == nil {
		t.Fatal("token of a dropped key accepted")
	}
}

func TestThumbprint_RFC8037Example(t *testing.T) {
	// RFC 8037 appendix A.3: the thumbprint of the example Ed25519 key.
	x, _ := base64.RawURLEncoding.DecodeString("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
	if got := Thumbprint(ed25519.PublicKey(x)); got != "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k" {
		t.Fatalf("thumbprint %s", got)
	}
}

func TestVerify_RefusesEveryAttack(t *testing.T) {
	i := newIssuer(t)
	key := i.keys[0]
	attacker, _ := GenerateKey()
	valid := func() jwt.MapClaims {
		return jwt.MapClaims{
			"iss": "https://auth.example.com", "aud": []string{"gatehouse"}, "sub": subject.UserID.String(),
			"sid": subject.SessionID.String(), "ver": 3, "perms": []string{"users:read"}, "jti": "abc",
			"iat": t0.Unix(), "nbf": t0.Unix(), "exp": t0.Add(15 * time.Minute).Unix(),
		}
	}
	sign := func(method jwt.SigningMethod, secret any, claims jwt.MapClaims, hdr map[string]any) string {
		tok := jwt.NewWithClaims(method, claims)
		tok.Header["typ"] = "at+jwt"
		tok.Header["kid"] = key.ID
		for k, v := range hdr {
			if v == nil {
				delete(tok.Header, k)
			} else {
				tok.Header[k] = v
			}
		}
		s, err := tok.SignedString(secret)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	with := func(k string, v any) jwt.MapClaims {
		c := valid()
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	// Control: the forging helper makes tokens the issuer accepts.
	if _, err := i.Verify(sign(jwt.SigningMethodEdDSA, key.private, valid(), nil)); err != nil {
		t.Fatalf("control token refused: %v", err)
	}
	good, _ := i.Issue(subject)
	parts := strings.Split(good, ".")
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(decode64(t, parts[1]), `"users:read"`, `"users:delete"`, 1))) + "." + parts[2]
	noneTok := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"at+jwt","kid":"`+key.ID+`"}`)) + "." + parts[1] + "."
	attackerJWK := attacker.Public()
	for name, raw := range map[string]string{
		"alg none":              noneTok,
		"HS256 with public key": sign(jwt.SigningMethodHS256, []byte(key.public), valid(), nil),
		"embedded jwk":          sign(jwt.SigningMethodEdDSA, attacker.private, valid(), map[string]any{"jwk": attackerJWK, "kid": attacker.ID}),
		"jwk with known kid":    sign(jwt.SigningMethodEdDSA, attacker.private, valid(), map[string]any{"jwk": attackerJWK}),
		"jku":                   sign(jwt.SigningMethodEdDSA, key.private, valid(), map[string]any{"jku": "https://evil.example/jwks.json"}),
		"x5c":                   sign(jwt.SigningMethodEdDSA, key.private, valid(), map[string]any{"x5c": []string{"MIIB"}}),
		"unknown kid":           sign(jwt.SigningMethodEdDSA, attacker.private, valid(), map[string]any{"kid": attacker.ID}),
		"path traversal kid":    sign(jwt.SigningMethodEdDSA, key.private, valid(), map[string]any{"kid": "../../../../dev/null"}),
		"SQL kid":               sign(jwt.SigningMethodEdDSA, key.private, valid(), map[string]any{"kid": "' OR '1'='1"}),
		"no kid":                sign(jwt.SigningMethodEdDSA, key.private, valid(), map[string]any{"kid": nil}),
		"other key, same kid":   sign(jwt.SigningMethodEdDSA, attacker.private, valid(), nil),
		"no exp":                sign(jwt.SigningMethodEdDSA, key.private, with("exp", nil), nil),
		"expired beyond leeway": sign(jwt.SigningMethodEdDSA, key.private, with("exp", t0.Add(-31*time.Second).Unix()), nil),
		"issued in the future":  sign(jwt.SigningMethodEdDSA, key.private, with("iat", t0.Add(time.Hour).Unix()), nil),
		"wrong issuer":          sign(jwt.SigningMethodEdDSA, key.private, with("iss", "https://evil.example"), nil),
		"wrong audience":        sign(jwt.SigningMethodEdDSA, key.private, with("aud", []string{"other-service"}), nil),
		"wrong typ":             sign(jwt.SigningMethodEdDSA, key.private, valid(), map[string]any{"typ": "JWT"}),
		"no typ":                sign(jwt.SigningMethodEdDSA, key.private, valid(), map[string]any{"typ": nil}),
		"refresh-like typ":      sign(jwt.SigningMethodEdDSA, key.private, valid(), map[string]any{"typ": "refresh+jwt"}),
		"no session":            sign(jwt.SigningMethodEdDSA, key.private, with("sid", nil), nil),
		"subject not a UUID":    sign(jwt.SigningMethodEdDSA, key.private, with("sub", "admin"), nil),
		"tampered payload":      tampered,
		"truncated signature":   good[:len(good)-4],
		"not a JWT":             "opaque-token",
		"empty":                 "",
		"crit header":           sign(jwt.SigningMethodEdDSA, key.private, valid(), map[string]any{"crit": []string{"exp"}}),
		"longer than any token": sign(jwt.SigningMethodEdDSA, key.private, with("pad", strings.Repeat("x", MaxLen)), nil),
	} {
		if _, err := i.Verify(raw); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: accepted or wrong error: %v", name, err)
		}
	}
	// Within the leeway is fine: clocks differ a little between instances.
	if _, err := i.Verify(sign(jwt.SigningMethodEdDSA, key.private, with("exp", t0.Add(-20*time.Second).Unix()), nil)); err != nil {
		t.Errorf("token expired within the leeway refused: %v", err)
	}
}

func TestParseKeyPEM(t *testing.T) {
	k, _ := GenerateKey()
	pemBytes, err := MarshalKeyPEM(k)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseKeyPEM(pemBytes)
	if err != nil || got.ID != k.ID {
		t.Fatalf("round trip: %v %v", got.ID, err)
	}
	for _, bad := range []string{"", "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----\n", "not pem"} {
		if _, err := ParseKeyPEM([]byte(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func header(t *testing.T, raw string) map[string]any {
	t.Helper()
	var h map[string]any
	if err := json.Unmarshal([]byte(decode64(t, strings.Split(raw, ".")[0])), &h); err != nil {
		t.Fatal(err)
	}
	return h
}

func decode64(t *testing.T, s string) string {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestDigest_IsSHA256(t *testing.T) {
	for _, s := range []string{"", "a", strings.Repeat("token", 200)} {
		if got, want := digest(s), sha256.Sum256([]byte(s)); got != want {
			t.Fatalf("digest(%d bytes) = %x, want %x", len(s), got, want)
		}
	}
}
