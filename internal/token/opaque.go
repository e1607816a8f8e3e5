package token

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
)

// NewOpaque returns a 256-bit random token (43 URL-safe characters) and the
// SHA-256 that is stored in its place: refresh tokens and one-time tokens.
func NewOpaque() (string, []byte, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", nil, fmt.Errorf("random token: %w", err)
	}
	t := base64.RawURLEncoding.EncodeToString(b)
	return t, HashOpaque(t), nil
}

// HashOpaque is the stored form of an opaque token.
func HashOpaque(t string) []byte {
	sum := sha256.Sum256([]byte(t))
	return sum[:]
}
