package password

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var fast = Params{MemoryKiB: 1024, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

func TestHasher_HashVerifyRehash(t *testing.T) {
	h, err := NewHasher(fast, 2)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	enc, err := h.Hash(ctx, "correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(enc, "$argon2id$v=19$m=1024,t=1,p=1$") {
		t.Fatalf("not a PHC argon2id string: %s", enc)
	}
	if ok, rehash, err := h.Verify(ctx, "correct horse battery staple", enc); !ok || rehash || err != nil {
		t.Fatalf("verify: %v %v %v", ok, rehash, err)
	}
	if ok, _, _ := h.Verify(ctx, "correct horse battery stapler", enc); ok {
		t.Fatal("wrong password accepted")
	}
	// NFC: the composed and decomposed forms of "é" are one password.
	enc2, _ := h.Hash(ctx, "caf\u00e9 au lait avec du sucre")
	if ok, _, _ := h.Verify(ctx, "cafe\u0301 au lait avec du sucre", enc2); !ok {
		t.Fatal("NFC-equivalent password refused")
	}
	stronger, _ := NewHasher(Params{MemoryKiB: 2048, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}, 1)
	if ok, rehash, _ := stronger.Verify(ctx, "correct horse battery staple", enc); !ok || !rehash {
		t.Fatalf("changed parameters must ask for a rehash: ok=%v rehash=%v", ok, rehash)
	}
	// A key longer than any we write would have argon2 compute it all.
	longKey := "$argon2id$v=19$m=1024,t=1,p=1$c2FsdHNhbHRzYWx0$" + base64.RawStdEncoding.EncodeToString(make([]byte, maxKeyLen+1))
	for _, bad := range []string{"$argon2i$v=19$m=1024,t=1,p=1$c2FsdHNhbHQ$a2V5", "$argon2id$v=19$m=99999999,t=1,p=1$c2FsdHNhbHRzYWx0$a2V5a2V5a2V5a2V5a2V5", "plaintext", longKey} {
		if _, _, err := h.Verify(ctx, "x", bad); !errors.Is(err, ErrMalformedHash) {
			t.Errorf("Verify(%.80q) = %v, want ErrMalformedHash", bad, err)
		}
	}
}

func TestHasher_BoundsConcurrentHashes(t *testing.T) {
	h, err := NewHasher(fast, 2)
	if err != nil {
		t.Fatal(err)
	}
	var running, peak atomic.Int32
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			err := h.Bounded(context.Background(), func() {
				n := running.Add(1)
				for {
					p := peak.Load()
					if n <= p || peak.CompareAndSwap(p, n) {
						break
					}
				}
				time.Sleep(5 * time.Millisecond)
				running.Add(-1)
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if peak.Load() > 2 {
		t.Fatalf("%d hashes ran at once, the bound is 2", peak.Load())
	}
	// A caller that cannot get a slot in time gets ErrBusy.
	release := takeSlots(t, h, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := h.Hash(ctx, "x"); !errors.Is(err, ErrBusy) {
		t.Fatalf("got %v, want ErrBusy", err)
	}
	// Other work run in the bound (the strength estimate) waits alike.
	ran := false
	if err := h.Bounded(ctx, func() { ran = true }); !errors.Is(err, ErrBusy) || ran {
		t.Fatalf("Bounded with every slot taken: %v, ran=%v", err, ran)
	}
	release()
	if err := h.Bounded(context.Background(), func() { ran = true }); err != nil || !ran {
		t.Fatalf("Bounded with a free slot: %v, ran=%v", err, ran)
	}
}

// takeSlots occupies n slots of h until the returned function is called.
func takeSlots(t *testing.T, h *Hasher, n int) (release func()) {
	t.Helper()
	hold, held := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			if err := h.Bounded(context.Background(), func() { held <- struct{}{}; <-hold }); err != nil {
				t.Error(err)
			}
		})
	}
	for range n {
		<-held
	}
	return func() { close(hold); wg.Wait() }
}

// TestHasher_VerifiesHashesOfXCrypto: hashes written before the hasher had
// its own argon2id (computed with x/crypto's argon2.IDKey) still verify,
// including one with a memory cost above the slots' (computed in memory of
// its own) and one with 2 lanes.
func TestHasher_VerifiesHashesOfXCrypto(t *testing.T) {
	h, err := NewHasher(fast, 1)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tc := range []struct {
		enc    string
		rehash bool
	}{
		{"$argon2id$v=19$m=1024,t=1,p=1$Z2F0ZWhvdXNlLXNhbHQxNg$0iA8pNrbxbvg8hoV8iEUM/Fsk4CnW0qz62ynOpCm/q0", false},
		{"$argon2id$v=19$m=2048,t=1,p=1$Z2F0ZWhvdXNlLXNhbHQxNg$b4gGRCKatyFi8MzYGx2DBI/WL6hqiBavR7Jl5k8JueE", true},
		{"$argon2id$v=19$m=512,t=2,p=2$Z2F0ZWhvdXNlLXNhbHQxNg$nJiKFFglxMhE44gkGYxTHV2ARbIv/BSDFeH4NlMZ+6w", true},
	} {
		ok, rehash, err := h.Verify(ctx, "correct horse battery staple", tc.enc)
		if !ok || rehash != tc.rehash || err != nil {
			t.Errorf("Verify(%s) = %v, %v, %v; want true, %v, nil", tc.enc, ok, rehash, err, tc.rehash)
		}
		if ok, _, _ := h.Verify(ctx, "correct horse battery stapler", tc.enc); ok {
			t.Errorf("Verify(%s) accepted a wrong password", tc.enc)
		}
	}
}

// TestHasher_ParallelCallsShareSlotMemory: many hashes and verifications at
// once, of different passwords and costs, through two slots whose work
// memory each call reuses, all give their own right answer (run with -race).
func TestHasher_ParallelCallsShareSlotMemory(t *testing.T) {
	h, err := NewHasher(fast, 2)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	old := "$argon2id$v=19$m=2048,t=1,p=1$Z2F0ZWhvdXNlLXNhbHQxNg$b4gGRCKatyFi8MzYGx2DBI/WL6hqiBavR7Jl5k8JueE"
	var wg sync.WaitGroup
	for i := range 24 {
		wg.Go(func() {
			pw := fmt.Sprintf("password number %d", i)
			enc, err := h.Hash(ctx, pw)
			if err != nil {
				t.Error(err)
				return
			}
			if ok, _, err := h.Verify(ctx, pw, enc); !ok || err != nil {
				t.Errorf("%q refused: %v", pw, err)
			}
			if ok, _, _ := h.Verify(ctx, pw+"!", enc); ok {
				t.Errorf("%q accepted for %q", pw+"!", pw)
			}
			if i%4 == 0 {
				if ok, _, _ := h.Verify(ctx, "correct horse battery staple", old); !ok {
					t.Error("a hash with a larger memory cost refused")
				}
			}
		})
	}
	wg.Wait()
}

func TestHasher_StatsAndWaitHook(t *testing.T) {
	var waits atomic.Int32
	h, err := New(fast, Options{Slots: 2, OnWait: func(time.Duration) { waits.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	if got := h.Stats(); got != (Stats{Slots: 2}) {
		t.Fatalf("idle: %+v", got)
	}
	waits.Store(0)
	release := takeSlots(t, h, 2)
	if got := h.Stats(); got != (Stats{Slots: 2, Busy: 2}) || h.Slots() != 2 || h.Busy() != 2 {
		t.Fatalf("every slot taken: %+v, Slots() %d, Busy() %d", got, h.Slots(), h.Busy())
	}
	done := make(chan error)
	go func() { _, err := h.Hash(context.Background(), "x"); done <- err }()
	for h.Stats().Waiting != 1 {
		time.Sleep(time.Millisecond)
	}
	release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := h.Stats(); got != (Stats{Slots: 2}) {
		t.Fatalf("after: %+v", got)
	}
	if n := waits.Load(); n != 3 {
		t.Fatalf("OnWait called %d times for 3 calls", n)
	}
}

// TestHasher_PanicReachesCaller: work that panics in a slot panics in the
// caller's goroutine (where the HTTP server's recovery is), and the slot
// keeps working.
func TestHasher_PanicReachesCaller(t *testing.T) {
	h, err := NewHasher(fast, 1)
	if err != nil {
		t.Fatal(err)
	}
	func() {
		defer func() {
			if r := recover(); r != "boom" {
				t.Fatalf("recovered %v, want boom", r)
			}
		}()
		_ = h.Bounded(context.Background(), func() { panic("boom") })
		t.Fatal("no panic")
	}()
	if _, err := h.Hash(context.Background(), "x"); err != nil {
		t.Fatal(err)
	}
}

func TestPolicy(t *testing.T) {
	p, err := NewPolicy(15)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewPolicy(7); err == nil {
		t.Fatal("a minimum below 8 was accepted")
	}
	for _, tc := range []struct {
		name, pw, email, user, code string
	}{
		{"passphrase", "correct horse battery staple", "alice@example.com", "", ""},
		{"unicode passphrase", "ünïcödé pässwörd with spaces", "alice@example.com", "", ""},
		{"long passphrase", "a sentence long enough to be memorable, and more than 64 characters", "a@example.com", "", ""},
		{"mixed symbols", "Tr0ub4dor&3 horse staple", "alice@example.com", "", ""},
		{"short", "short one", "alice@example.com", "", "too_short"},
		{"too long", strings.Repeat("x", 257), "alice@example.com", "", "too_long"},
		{"common", "1qaz2wsx3edc4rfv", "alice@example.com", "", "common"},
		{"one character", "aaaaaaaaaaaaaaaaaaaa", "alice@example.com", "", "repetitive"},
		{"whole email", "my alice@example.com password", "alice@example.com", "", "contains_email"},
		{"email name part", "horses are alice's friends", "alice@example.com", "", "contains_email"},
		{"digits", "123456789012345", "alice@example.com", "", "predictable"},
		{"common word and digits", "password1234567890", "alice@example.com", "", "predictable"},
		{"keyboard run", "qwertyuiopasdfghjkl", "alice@example.com", "", "predictable"},
		{"keyboard columns", "zaq12wsxcde34rfv", "alice@example.com", "", "predictable"},
		{"alphabet", "abcdefghijklmnopqr", "alice@example.com", "", "predictable"},
		{"repeated word", "iloveyouiloveyou", "alice@example.com", "", "predictable"},
		{"repeated pattern", "abcabcabcabcabcabc", "alice@example.com", "", "predictable"},
		{"repeated pattern past 32 characters", strings.Repeat("hello", 20), "alice@example.com", "", "predictable"},
		{"email pieces run together", "mariacallas1923", "maria.callas@example.com", "", "predictable"},
		{"same, another account", "mariacallas1923", "alice@example.com", "", ""},
		{"display name", "GraceHopper1906", "alice@example.com", "Grace Hopper", "predictable"},
		{"same, another name", "GraceHopper1906", "alice@example.com", "Ada Lovelace", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := p.Check(tc.pw, tc.email, tc.user)
			var r *Rejection
			switch {
			case tc.code == "" && err != nil:
				t.Errorf("%q refused: %v", tc.pw, err)
			case tc.code != "" && (!errors.As(err, &r) || r.Code != tc.code):
				t.Errorf("%q: got %v, want %s", tc.pw, err, tc.code)
			}
		})
	}
	p8, _ := NewPolicy(8)
	var r *Rejection
	if err := p8.Check("Password1", "bob@example.com", ""); !errors.As(err, &r) || r.Code != "common" {
		t.Fatalf("a common password passed: %v", err)
	}
}

// BenchmarkPolicy_Check is the cost the policy adds to every register,
// reset and change: mostly the strength estimate. The worst case is a long
// run of l33t symbols (every substitution combination is tried), which the
// 32-character bound keeps near the cost of one argon2id hash.
func BenchmarkPolicy_Check(b *testing.B) {
	p, err := NewPolicy(15)
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct{ name, pw string }{
		{"passphrase", "correct horse battery staple"},
		{"refused sequence", "123456789012345"},
		{"random 20", "kq8Zr2Lm0vXp3Yt7Wn1B"},
		{"symbols 256", strings.Repeat("4@8({[<369!|70$5+%2", 14)[:256]},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				_ = p.Check(bc.pw, "alice.smith@example.com", "Alice Smith")
			}
		})
	}
}
