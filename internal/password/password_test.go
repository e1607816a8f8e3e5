package password

import (
	"context"
	"encoding/base64"
	"errors"
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
	for _, bad := range []string{"", "$argon2i$v=19$m=1024,t=1,p=1$c2FsdHNhbHQ$a2V5", "$argon2id$v=19$m=99999999,t=1,p=1$c2FsdHNhbHRzYWx0$a2V5a2V5a2V5a2V5a2V5", "plaintext", longKey} {
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
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := h.acquire(context.Background()); err != nil {
				t.Error(err)
				return
			}
			n := running.Add(1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			time.Sleep(5 * time.Millisecond)
			running.Add(-1)
			h.release()
		}()
	}
	wg.Wait()
	if peak.Load() > 2 {
		t.Fatalf("%d hashes ran at once, the bound is 2", peak.Load())
	}
	// A caller that cannot get a slot in time gets ErrBusy.
	h.slots <- struct{}{}
	h.slots <- struct{}{}
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
	h.release()
	if err := h.Bounded(context.Background(), func() { ran = true }); err != nil || !ran {
		t.Fatalf("Bounded with a free slot: %v, ran=%v", err, ran)
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
