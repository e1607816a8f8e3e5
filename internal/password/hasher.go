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
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"
	"golang.org/x/text/unicode/norm"

	"github.com/gatehouse/gatehouse/internal/password/argon2id"
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

// Options configure a Hasher.
type Options struct {
	// Slots bounds the hashes computed at once (at least 1). Each slot keeps
	// a work memory of MemoryKiB once it has hashed.
	Slots int
	// LowPriority runs each slot on an OS thread of its own with a lower
	// scheduling priority (nice +10; Linux only, elsewhere it changes
	// nothing), so that a login storm slows logins rather than every other
	// request. The threads stay dedicated to hashing, as an unprivileged
	// process cannot raise their priority again.
	LowPriority bool
	// OnWait, when set, is called with how long each call waited for a slot,
	// including calls that gave up (for a metric). It must not block.
	OnWait func(time.Duration)
}

// Stats are a Hasher's slots at one moment, for metrics.
type Stats struct {
	Slots   int // slots in all
	Busy    int // slots running a hash (or Bounded work)
	Waiting int // calls waiting for a slot
}

// Hasher computes argon2id hashes, at most Options.Slots at once: each takes
// MemoryKiB of memory and a core for tens of milliseconds, so an unbounded
// login storm would exhaust memory and starve every other request. Each slot
// is a goroutine owning an argon2id work memory, allocated at its first hash
// and reused: allocating 19 MiB per hash either lets the heap grow by that
// much per hash in flight or, under a soft memory limit, has the runtime
// return the pages and fault them in again (a third of the hash rate).
type Hasher struct {
	params Params
	slots  *slots
	onWait func(time.Duration)
	dummy  string
	// legacyMem is the memory, in KiB, that verifications of imported
	// hashes may allocate at once beyond the slots' own (MaxLegacyMemoryKiB):
	// Werkzeug's default scrypt takes 32 MiB a verification, so two run at
	// once, and a 64 MiB one alone. It is taken before a slot, so a slot
	// never idles waiting for it.
	legacyMem *semaphore.Weighted
	// slowest is the longest verification of an imported hash lately
	// (FailureFloor).
	slowest slowest
}

// slowest keeps the longest duration added in the current hour and in the
// one before.
type slowest struct {
	mu        sync.Mutex
	hour      int64
	cur, prev time.Duration
}

func (s *slowest) roll(now time.Time) {
	h := now.Unix() / 3600
	switch h {
	case s.hour:
	case s.hour + 1:
		s.hour, s.prev, s.cur = h, s.cur, 0
	default:
		s.hour, s.prev, s.cur = h, 0, 0
	}
}

func (s *slowest) add(d time.Duration, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.roll(now)
	s.cur = max(s.cur, d)
}

func (s *slowest) get(now time.Time) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.roll(now)
	return max(s.cur, s.prev)
}

// FailureFloor is how long a failed login should take at least so that its
// time does not tell an imported account from others: the longest
// verification of an imported hash in this hour or the last (computed in a
// slot, waits left out), zero when there was none. An imported hash in a
// slower format than argon2id (Werkzeug's PBKDF2 about 0.3 s) would
// otherwise refuse a wrong password measurably later than an unknown
// address, until its owner's first login replaces it.
func (h *Hasher) FailureFloor() time.Duration { return h.slowest.get(time.Now()) }

// slots is what the slot goroutines share with their Hasher. They hold no
// reference to the Hasher, so that it can be collected, which stops them.
type slots struct {
	n       int
	jobs    chan job // unbuffered: a send succeeds when a slot is free
	quit    chan struct{}
	busy    atomic.Int32
	waiting atomic.Int32
}

// job is work for a slot: fn runs with the slot's work memory, and done
// receives what fn panicked with (nil when it returned), so that a panic
// reaches the caller's goroutine, and its recovery, as if fn had run there.
type job struct {
	fn     func(*argon2id.Memory)
	done   chan any
	waited bool // counted in slots.waiting
}

// NewHasher returns a hasher running at most slots hashes at once, at the
// process's priority.
func NewHasher(p Params, slots int) (*Hasher, error) {
	return New(p, Options{Slots: slots})
}

// New returns a hasher with the given options.
func New(p Params, o Options) (*Hasher, error) {
	s := &slots{n: max(o.Slots, 1), jobs: make(chan job), quit: make(chan struct{})}
	started := make(chan error, s.n)
	for range s.n {
		go s.work(p.MemoryKiB, o.LowPriority, started)
	}
	var errs []error
	for range s.n {
		errs = append(errs, <-started)
	}
	if err := errors.Join(errs...); err != nil {
		close(s.quit)
		return nil, err
	}
	h := &Hasher{params: p, slots: s, onWait: o.OnWait, legacyMem: semaphore.NewWeighted(MaxLegacyMemoryKiB)}
	runtime.AddCleanup(h, func(s *slots) { close(s.quit) }, s)
	dummy, err := h.Hash(context.Background(), "gatehouse dummy password, never a real one")
	if err != nil {
		return nil, err
	}
	h.dummy = dummy
	return h, nil
}

// work is a slot: it runs jobs until quit is closed. With lowPriority its
// thread is its own for good: a goroutine that ends locked to its thread
// takes the thread with it, so the lowered priority never reaches other work.
func (s *slots) work(memoryKiB uint32, lowPriority bool, started chan<- error) {
	if lowPriority {
		runtime.LockOSThread()
		if err := lowerThreadPriority(); err != nil {
			started <- fmt.Errorf("lower the priority of a hashing thread: %w", err)
			return
		}
	}
	started <- nil
	mem := argon2id.Memory{Limit: memoryKiB}
	for {
		select {
		case j := <-s.jobs:
			if j.waited {
				s.waiting.Add(-1)
			}
			s.busy.Add(1)
			p := runJob(j.fn, &mem)
			s.busy.Add(-1) // before done: a caller that returned sees its slot free
			j.done <- p
		case <-s.quit:
			return
		}
	}
}

func runJob(fn func(*argon2id.Memory), mem *argon2id.Memory) (panicked any) {
	defer func() { panicked = recover() }()
	fn(mem)
	return nil
}

// MaxWait bounds how long a request queues for a hashing slot before it is
// answered 503: under a login storm, waiting longer only piles requests up.
const MaxWait = 5 * time.Second

// run runs fn in a free slot, waiting at most MaxWait for one.
func (h *Hasher) run(ctx context.Context, fn func(*argon2id.Memory)) error {
	j := job{fn: fn, done: make(chan any, 1)}
	start := time.Now()
	err := h.slots.send(ctx, j)
	if h.onWait != nil {
		h.onWait(time.Since(start))
	}
	if err != nil {
		return err
	}
	if p := <-j.done; p != nil {
		panic(p)
	}
	return nil
}

func (s *slots) send(ctx context.Context, j job) error {
	select {
	case s.jobs <- j:
		return nil
	default:
	}
	// The slot that takes a job that waited counts it out of the waiting,
	// so that a job is never counted as both waiting and busy.
	j.waited = true
	s.waiting.Add(1)
	t := time.NewTimer(MaxWait)
	defer t.Stop()
	select {
	case s.jobs <- j:
		return nil
	case <-t.C:
		s.waiting.Add(-1)
		return ErrBusy
	case <-ctx.Done():
		s.waiting.Add(-1)
		return fmt.Errorf("%w: %w", ErrBusy, ctx.Err())
	}
}

// Stats returns the slots in all, busy and waited for.
func (h *Hasher) Stats() Stats {
	return Stats{Slots: h.slots.n, Busy: int(h.slots.busy.Load()), Waiting: int(h.slots.waiting.Load())}
}

// Slots is the number of slots (for a metrics collector).
func (h *Hasher) Slots() int { return h.slots.n }

// Busy is the number of slots at work (for a metrics collector).
func (h *Hasher) Busy() int { return int(h.slots.busy.Load()) }

// Bounded runs fn in a hashing slot. Other CPU-heavy password work (the
// policy's strength estimate) shares the bound, so a flood of requests cannot
// run more of it at once than there are slots.
func (h *Hasher) Bounded(ctx context.Context, fn func()) error {
	return h.run(ctx, func(*argon2id.Memory) { fn() })
}

// Hash returns the PHC string of password (NFC-normalised).
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	salt := make([]byte, h.params.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("read salt: %w", err)
	}
	pw := []byte(norm.NFC.String(password))
	var key []byte
	if err := h.run(ctx, func(m *argon2id.Memory) {
		key = m.Key(pw, salt, nil, nil, h.params.Time, h.params.MemoryKiB, h.params.Threads, h.params.KeyLen)
	}); err != nil {
		return "", err
	}
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2id.Version, h.params.MemoryKiB, h.params.Time, h.params.Threads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// Verify reports whether password matches the hash encoded, and whether the
// hash should be recomputed: with the current parameters, or as argon2id
// when it is in another format (an imported hash, see Inspect). A hash
// with a larger memory cost than a slot's (older parameters, other formats)
// is computed in memory of its own, left to the garbage collector, within
// the legacy memory budget. An empty hash (an account without a password)
// is ErrNoPassword; one in no known format ErrMalformedHash.
func (h *Hasher) Verify(ctx context.Context, password, encoded string) (ok, rehash bool, err error) {
	if encoded == "" {
		return false, false, ErrNoPassword
	}
	if !strings.HasPrefix(encoded, "$argon2id$") {
		return h.verifyLegacy(ctx, password, encoded)
	}
	p, salt, key, err := decode(encoded)
	if err != nil {
		return false, false, err
	}
	pw := []byte(norm.NFC.String(password))
	var got []byte
	if p.MemoryKiB > h.params.MemoryKiB {
		release, err := h.reserve(ctx, p.MemoryKiB)
		if err != nil {
			return false, false, err
		}
		defer release()
	}
	if err := h.run(ctx, func(m *argon2id.Memory) {
		got = m.Key(pw, salt, nil, nil, p.Time, p.MemoryKiB, p.Threads, p.KeyLen)
	}); err != nil {
		return false, false, err
	}
	ok = subtle.ConstantTimeCompare(got, key) == 1
	rehash = p.MemoryKiB != h.params.MemoryKiB || p.Time != h.params.Time || p.Threads != h.params.Threads ||
		len(salt) != h.params.SaltLen || p.KeyLen != h.params.KeyLen
	return ok, rehash, nil
}

// verifyLegacy verifies a hash in another format than argon2id. The
// password is used as given, not NFC-normalised: the other system hashed
// the bytes it received. A match always asks for a rehash.
func (h *Hasher) verifyLegacy(ctx context.Context, password, encoded string) (ok, rehash bool, err error) {
	l, err := parse(encoded)
	if err != nil {
		// Bounds are checked at import; a stored hash beyond them was
		// altered since, and is as good as a malformed one.
		return false, false, fmt.Errorf("%w: %w", ErrMalformedHash, err)
	}
	if l.memKiB > 0 {
		release, err := h.reserve(ctx, l.memKiB)
		if err != nil {
			return false, false, err
		}
		defer release()
	}
	pw := []byte(password)
	if err := h.run(ctx, func(m *argon2id.Memory) {
		start := time.Now()
		ok = l.verify(pw, m)
		h.slowest.add(time.Since(start), time.Now())
	}); err != nil {
		return false, false, err
	}
	return ok, ok, nil
}

// reserve takes kib of the legacy memory budget (all of it at most), waiting
// at most MaxWait like a slot.
func (h *Hasher) reserve(ctx context.Context, kib uint32) (release func(), err error) {
	n := int64(min(kib, MaxLegacyMemoryKiB))
	wctx, cancel := context.WithTimeout(ctx, MaxWait)
	defer cancel()
	if err := h.legacyMem.Acquire(wctx, n); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBusy, err)
	}
	return func() { h.legacyMem.Release(n) }, nil
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
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2id.Version {
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
