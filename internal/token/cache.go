package token

import (
	"crypto/sha256"
	"hash"
	"io"
	"sync"

	lru "github.com/hashicorp/golang-lru/v2"
)

// VerifiedCache remembers tokens that passed Verify, so the signature of a
// token presented again (a client reuses its access token for minutes) is
// not checked again: Ed25519 verification is most of the CPU an
// authenticated request costs. A hit still honours the token's expiry, and
// revocation is checked on every request by the caller, cached or not.
type VerifiedCache struct {
	i   *Issuer
	lru *lru.Cache[[32]byte, Subject]
}

// NewVerifiedCache keeps up to size verified tokens (by SHA-256).
func NewVerifiedCache(i *Issuer, size int) *VerifiedCache {
	c, _ := lru.New[[32]byte, Subject](size)
	return &VerifiedCache{i: i, lru: c}
}

// Verify is Issuer.Verify with memory.
func (c *VerifiedCache) Verify(raw string) (Subject, error) {
	key := digest(raw)
	if s, ok := c.lru.Get(key); ok {
		if c.i.now().Before(s.ExpiresAt.Add(c.i.leeway)) {
			return s, nil
		}
		c.lru.Remove(key)
	}
	s, err := c.i.Verify(raw)
	if err != nil {
		return Subject{}, err
	}
	c.lru.Add(key, s)
	return s, nil
}

var hashers = sync.Pool{New: func() any { return sha256.New() }}

// digest is sha256.Sum256([]byte(s)) without copying s: a token is most of
// a kilobyte, and the copy was the largest allocation of a cached check.
func digest(s string) [32]byte {
	h := hashers.Get().(hash.Hash) //nolint:forcetypeassert // the pool holds nothing else
	defer hashers.Put(h)
	h.Reset()
	_, _ = io.WriteString(h, s)
	var key [32]byte
	h.Sum(key[:0])
	return key
}
