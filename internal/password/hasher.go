// Package password hashes and checks passwords (argon2id, PHC strings) with
// a bound on how many hashes run at once, and holds the password policy.
package password

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/text/unicode/norm"
)

// Params are argon2id's cost parameters.
type Params struct {
	MemoryKiB uint32
	Time      uint32
	Threads   uint8
	SaltLen   int
	KeyLen    uint32
}

// DefaultParams are OWASP's argon2id recommendation: 19 MiB, 2 passes, 1 lane.
var DefaultParams = Params{MemoryKiB: 19 * 1024, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}

// maxKeyLen bounds the key length a stored hash may ask for: we write 32
// bytes; anything far beyond is a tampered row.
const maxKeyLen = 1024

// ErrBusy means every hashing slot stayed taken until the caller gave up.
var ErrBusy = errors.New("password hashing capacity exhausted")

// ErrMalformedHash means a stored hash is not an argon2id PHC string.
var ErrMalformedHash = errors.New("malformed password hash")

// Hasher computes argon2id hashes, at most `slots` at once: each takes
// MemoryKiB of memory and a core for tens of milliseconds, so an unbounded
// login storm would exhaust memory and starve every other request.
type Hasher struct {
	params Params
	slots  chan struct{}
	dummy  string
}

// NewHasher returns a hasher running at most slots hashes at once.
func NewHasher(p Params, slots int) (*Hasher, error) {
	if slots < 1 {
		slots = 1
	}
	h := &Hasher{params: p, slots: make(chan struct{}, slots)}
	dummy, err := h.hash("gatehouse dummy password, never a real one")
	if err != nil {
		return nil, err
	}
	h.dummy = dummy
	return h, nil
}

// MaxWait bounds how long a request queues for a hashing slot before it is
// answered 503: under a login storm, waiting longer only piles requests up.
const MaxWait = 5 * time.Second

func (h *Hasher) acquire(ctx context.Context) error {
	select {
	case h.slots <- struct{}{}:
		return nil
	default:
	}
	t := time.NewTimer(MaxWait)
	defer t.Stop()
	select {
	case h.slots <- struct{}{}:
		return nil
	case <-t.C:
		return ErrBusy
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", ErrBusy, ctx.Err())
	}
}

func (h *Hasher) release() { <-h.slots }

// Bounded runs fn in a hashing slot. Other CPU-heavy password work (the
// policy's strength estimate) shares the bound, so a flood of requests cannot
// run more of it at once than there are slots.
func (h *Hasher) Bounded(ctx context.Context, fn func()) error {
	if err := h.acquire(ctx); err != nil {
		return err
	}
	defer h.release()
	fn()
	return nil
}

// Hash returns the PHC string of password (NFC-normalised).
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	if err := h.acquire(ctx); err != nil {
		return "", err
	}
	defer h.release()
	return h.hash(password)
}

func (h *Hasher) hash(password string) (string, error) {
	salt := make([]byte, h.params.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("read salt: %w", err)
	}
	key := argon2.IDKey([]byte(norm.NFC.String(password)), salt, h.params.Time, h.params.MemoryKiB, h.params.Threads, h.params.KeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, h.params.MemoryKiB, h.params.Time, h.params.Threads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// Verify reports whether password matches the PHC string encoded, and
// whether the hash should be recomputed with the current parameters.
func (h *Hasher) Verify(ctx context.Context, password, encoded string) (ok, rehash bool, err error) {
	p, salt, key, err := decode(encoded)
	if err != nil {
		return false, false, err
	}
	if err := h.acquire(ctx); err != nil {
		return false, false, err
	}
	defer h.release()
	got := argon2.IDKey([]byte(norm.NFC.String(password)), salt, p.Time, p.MemoryKiB, p.Threads, p.KeyLen)
	ok = subtle.ConstantTimeCompare(got, key) == 1
	rehash = p.MemoryKiB != h.params.MemoryKiB || p.Time != h.params.Time || p.Threads != h.params.Threads ||
		len(salt) != h.params.SaltLen || p.KeyLen != h.params.KeyLen
	return ok, rehash, nil
}

// VerifyDummy spends the time of a real verification and always fails: login
// attempts for unknown, disabled or deleted accounts must take as long as
// those for real ones.
func (h *Hasher) VerifyDummy(ctx context.Context, password string) error {
	_, _, err := h.Verify(ctx, password, h.dummy)
	return err
}

func decode(s string) (Params, []byte, []byte, error) {
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return Params{}, nil, nil, ErrMalformedHash
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return Params{}, nil, nil, ErrMalformedHash
	}
	var p Params
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.MemoryKiB, &p.Time, &p.Threads); err != nil {
		return Params{}, nil, nil, ErrMalformedHash
	}
	// Refuse absurd costs from a tampered row rather than allocate them.
	if p.MemoryKiB == 0 || p.MemoryKiB > 1<<20 || p.Time == 0 || p.Time > 10 || p.Threads == 0 {
		return Params{}, nil, nil, ErrMalformedHash
	}
	salt, err := base64.RawStdEncoding.DecodeString(parts[4])
	if err != nil || len(salt) < 8 {
		return Params{}, nil, nil, ErrMalformedHash
	}
	// A tampered row could also ask argon2 for a key of any length.
	key, err := base64.RawStdEncoding.DecodeString(parts[5])
	if err != nil {
		return Params{}, nil, nil, ErrMalformedHash
	}
	n := len(key)
	if n < 16 || n > maxKeyLen {
		return Params{}, nil, nil, ErrMalformedHash
	}
	p.SaltLen, p.KeyLen = len(salt), uint32(n)
	return p, salt, key, nil
}
