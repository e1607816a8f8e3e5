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
// seconds), 16-byte MAC.
const deviceLen = 16 + 8 + 16

// Devices issues and checks device tokens: proof that a client once logged
// in to an account with its password (OWASP's "device cookie"). A known
// client is throttled in a bucket of its own, so a stranger guessing an
// account's password cannot lock its owner out. A token names no account:
// it is bound by its MAC to the account key it was issued for, and proves
// nothing for any other.
type Devices struct {
	key keyed.Key
	ttl time.Duration
}

// NewDevices returns the device tokens keyed by key, valid for ttl.
func NewDevices(key keyed.Key, ttl time.Duration) *Devices {
	return &Devices{key: key, ttl: ttl}
}

// Issue returns a token for the device id (a new one when id is empty) of
// the account, and the id.
func (d *Devices) Issue(account, id string, now time.Time) (string, string, error) {
	raw, err := hex.DecodeString(id)
	if err != nil || len(raw) != 16 {
		raw = make([]byte, 16)
		if _, err := rand.Read(raw); err != nil {
			return "", "", fmt.Errorf("device id: %w", err)
		}
	}
	b := make([]byte, 0, deviceLen)
	b = append(b, raw...)
	b = binary.BigEndian.AppendUint64(b, uint64(now.Add(d.ttl).Unix()))
	b = append(b, d.mac(account, b)...)
	return devicePrefix + base64.RawURLEncoding.EncodeToString(b), hex.EncodeToString(raw), nil
}

// Verify returns the device id of a token issued for account and not yet
// expired.
func (d *Devices) Verify(account, tok string, now time.Time) (string, bool) {
	rest, ok := strings.CutPrefix(tok, devicePrefix)
	if !ok || base64.RawURLEncoding.DecodedLen(len(rest)) != deviceLen {
		return "", false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(rest)
	if err != nil || len(b) != deviceLen {
		return "", false
	}
	if !keyed.Equal(b[24:], d.mac(account, b[:24])) {
		return "", false
	}
	if exp := int64(binary.BigEndian.Uint64(b[16:24])); now.Unix() >= exp {
		return "", false
	}
	return hex.EncodeToString(b[:16]), true
}

func (d *Devices) mac(account string, body []byte) []byte {
	return d.key.Sum([]byte(account), body)[:16]
}
