package token

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/keyed"
)

// devicePrefix marks a device token (and its format version).
const devicePrefix = "gd1."

// deviceLen is the decoded length: 16-byte device id, 8-byte expiry (Unix
// seconds), an 8-byte MAC bound to the address and a 16-byte MAC bound to
// the account and its password.
const deviceLen = 16 + 8 + 8 + 16

// Devices issues and checks device tokens: proof that a client once logged
// in to an account with its password (OWASP's "device cookie"). A known
// client is throttled in a bucket of its own, so a stranger guessing an
// account's password cannot lock its owner out. A token names no account:
// its MACs bind it to the address (checked without the database, for rate
// limits) and to the account and its current password (checked before a
// password check): a token of an earlier holder of the address, or from
// before a password change or reset, proves nothing.
type Devices struct {
	key keyed.Key
	ttl time.Duration
}

// NewDevices returns the device tokens keyed by key, valid for ttl.
func NewDevices(key keyed.Key, ttl time.Duration) *Devices {
	return &Devices{key: key, ttl: ttl}
}

// Issue returns a token for the device id (a new one when id is empty) of
// the address (email) and the account (user), and the id.
func (d *Devices) Issue(email, user, id string, now time.Time) (string, string, error) {
	raw, err := hex.DecodeString(id)
	if err != nil || len(raw) != 16 {
		raw = make([]byte, 16)
		if _, err := rand.Read(raw); err != nil {
			return "", "", fmt.Errorf("device id: %w", err)
		}
	}
	b := make([]byte, 0, deviceLen)
	b = append(b, raw...)
	b = binary.BigEndian.AppendUint64(b, uint64(now.Add(d.ttl).Unix())) //nolint:gosec // G115: a time after 1970 is positive
	b = append(b, d.mac("address", email, b)[:8]...)
	b = append(b, d.mac("account", user, b)[:16]...)
	return devicePrefix + base64.RawURLEncoding.EncodeToString(b), hex.EncodeToString(raw), nil
}

// ForAddress returns the device id of an unexpired token issued for the
// address. It proves less than Verify: enough to count the client's
// requests apart, not to trust it with a bucket of guesses.
func (d *Devices) ForAddress(email, tok string, now time.Time) (string, bool) {
	b, ok := d.decode(tok, now)
	if !ok || !keyed.Equal(b[24:32], d.mac("address", email, b[:24])[:8]) {
		return "", false
	}
	return hex.EncodeToString(b[:16]), true
}

// Verify returns the device id of an unexpired token issued for the
// address and the account as it is now.
func (d *Devices) Verify(email, user, tok string, now time.Time) (string, bool) {
	id, ok := d.ForAddress(email, tok, now)
	if !ok {
		return "", false
	}
	b, _ := d.decode(tok, now)
	if !keyed.Equal(b[32:], d.mac("account", user, b[:32])[:16]) {
		return "", false
	}
	return id, true
}

func (d *Devices) decode(tok string, now time.Time) ([]byte, bool) {
	rest, ok := strings.CutPrefix(tok, devicePrefix)
	if !ok || base64.RawURLEncoding.DecodedLen(len(rest)) != deviceLen {
		return nil, false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(rest)
	if err != nil || len(b) != deviceLen {
		return nil, false
	}
	// A forged expiry beyond MaxInt64 turns negative and reads as expired;
	// the MACs are checked after.
	if exp := int64(binary.BigEndian.Uint64(b[16:24])); now.Unix() >= exp { //nolint:gosec // G115: see above
		return nil, false
	}
	return b, true
}

func (d *Devices) mac(kind, binding string, body []byte) []byte {
	return d.key.Sum([]byte(kind), []byte(binding), body)
}
