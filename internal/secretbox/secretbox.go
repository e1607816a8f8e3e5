// Package secretbox seals small secrets (TOTP seeds) for storage with
// AES-256-GCM under keys from configuration. Several keys may be configured
// for rotation, like the signing keys: the first seals, every one opens, and
// each sealed value names the key that sealed it.
package secretbox

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// KeySize is the size of a key: AES-256.
const KeySize = 32

// ErrUnknownKey means a value was sealed with a key that is not configured.
var ErrUnknownKey = errors.New("sealed with a key that is not configured")

type key struct {
	id   string
	aead cipher.AEAD
}

// Keyring seals with its first key and opens with any of them.
type Keyring struct {
	keys []key
	byID map[string]key
}

// New returns a keyring of raw keys, each KeySize bytes; the first seals.
func New(raw ...[]byte) (*Keyring, error) {
	if len(raw) == 0 {
		return nil, errors.New("no encryption key")
	}
	r := &Keyring{byID: map[string]key{}}
	for i, b := range raw {
		if len(b) != KeySize {
			return nil, fmt.Errorf("encryption key %d: %d bytes, want %d", i+1, len(b), KeySize)
		}
		block, err := aes.NewCipher(b)
		if err != nil {
			return nil, fmt.Errorf("encryption key %d: %w", i+1, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("encryption key %d: %w", i+1, err)
		}
		k := key{id: KeyID(b), aead: aead}
		if _, dup := r.byID[k.id]; dup {
			return nil, fmt.Errorf("encryption key %d is listed twice", i+1)
		}
		r.keys = append(r.keys, k)
		r.byID[k.id] = k
	}
	return r, nil
}

// Parse reads a comma-separated list of base64 (standard or URL alphabet,
// padded or not) keys, as MFA_ENCRYPTION_KEYS holds them.
func Parse(list string) ([][]byte, error) {
	var out [][]byte
	for i, s := range strings.Split(list, ",") {
		s = strings.TrimRight(strings.TrimSpace(s), "=")
		if s == "" {
			continue
		}
		b, err := base64.RawStdEncoding.DecodeString(s)
		if err != nil {
			b, err = base64.RawURLEncoding.DecodeString(s)
		}
		if err != nil || len(b) != KeySize {
			return nil, fmt.Errorf("key %d is not %d bytes in base64 (make one with `openssl rand -base64 32`)", i+1, KeySize)
		}
		out = append(out, b)
	}
	if len(out) == 0 {
		return nil, errors.New("no key listed")
	}
	return out, nil
}

// KeyID names a key without revealing it: a truncated SHA-256.
func KeyID(raw []byte) string {
	sum := sha256.Sum256(append([]byte("gatehouse secretbox key id\x00"), raw...))
	return hex.EncodeToString(sum[:8])
}

// Current is the id of the key that seals.
func (r *Keyring) Current() string { return r.keys[0].id }

// Seal encrypts plaintext bound to aad (the record it belongs to, so a
// sealed value copied to another record does not open) and returns nonce ||
// ciphertext and the id of the key used.
func (r *Keyring) Seal(plaintext, aad []byte) ([]byte, string, error) {
	k := r.keys[0]
	nonce := make([]byte, k.aead.NonceSize(), k.aead.NonceSize()+len(plaintext)+k.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, "", fmt.Errorf("nonce: %w", err)
	}
	return k.aead.Seal(nonce, nonce, plaintext, aad), k.id, nil
}

// Open decrypts what Seal returned.
func (r *Keyring) Open(sealed []byte, keyID string, aad []byte) ([]byte, error) {
	k, ok := r.byID[keyID]
	if !ok {
		return nil, fmt.Errorf("%w (key id %s)", ErrUnknownKey, keyID)
	}
	n := k.aead.NonceSize()
	if len(sealed) < n+k.aead.Overhead() {
		return nil, errors.New("sealed value too short")
	}
	out, err := k.aead.Open(nil, sealed[:n], sealed[n:], aad)
	if err != nil {
		return nil, fmt.Errorf("open sealed value: %w", err)
	}
	return out, nil
}
