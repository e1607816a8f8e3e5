// Package keyed derives the keys gatehouse uses to fingerprint and sign its
// own opaque values (rate-limit and lockout keys, cursors, device tokens,
// refresh-token successors) from one server secret. A keyed hash of an email
// cannot be tested against a list of addresses by someone who reads Redis but
// not the secret, which a bare SHA-256 can.
package keyed

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
)

// Key is an HMAC-SHA256 key for one purpose.
type Key []byte

// Derive returns the key of purpose under secret. Keys of different
// purposes are independent: a value made for one is useless for another.
func Derive(secret []byte, purpose string) Key {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("gatehouse key v1\x00" + purpose))
	return m.Sum(nil)
}

// Sum is the HMAC-SHA256 of the parts, each length-prefixed so that no two
// different lists of parts collide.
func (k Key) Sum(parts ...[]byte) []byte {
	m := hmac.New(sha256.New, k)
	var n [4]byte
	for _, p := range parts {
		l := len(p)
		// The parts are request-sized, far below the 4 GiB a 32-bit length holds.
		n[0], n[1], n[2], n[3] = byte(l>>24), byte(l>>16), byte(l>>8), byte(l) //nolint:gosec // G115: bytes taken on purpose
		m.Write(n[:])
		m.Write(p)
	}
	return m.Sum(nil)
}

// Hex is the first 16 bytes of Sum of a string, in hex: a short, stable
// fingerprint for keys of Redis entries.
func (k Key) Hex(s string) string {
	return hex.EncodeToString(k.Sum([]byte(s))[:16])
}

// Equal compares two MACs in constant time.
func Equal(a, b []byte) bool { return hmac.Equal(a, b) }
