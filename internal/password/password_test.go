package password

import (
	"context"
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
	for _, bad := range []string{"", "$argon2i$v=19$m=1024,t=1,p=1$c2FsdHNhbHQ$a2V5", "$argon2id$v=19$m=99999999,t=1,p=1$c2FsdHNhbHRzYWx0$a2V5a2V5a2V5a2V5a2V5", "plaintext"} {
		if _, _, err := h.Verify(ctx, "x", bad); !errors.Is(err, ErrMalformedHash) {
			t.Errorf("Verify(%q) = %v, want ErrMalformedHash", bad, err)
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
		pw, email, code string
	}{
		{"correct horse battery staple", "alice@example.com", ""},
		{"ünïcödé pässwörd with spaces", "alice@example.com", ""},
		{strings.Repeat("long ", 12) + "enough and 64+ chars are fine", "a@example.com", ""},
		{"short one", "alice@example.com", "too_short"},
		{strings.Repeat("x", 257), "alice@example.com", "too_long"},
		{"aaaaaaaaaaaaaaaaaaaa", "alice@example.com", "repetitive"},
		{"my alice@example.com password", "alice@example.com", "contains_email"},
		{"horses are alice's friends", "alice@example.com", "contains_email"},
	} {
		err := p.Check(tc.pw, tc.email)
		var r *Rejection
		switch {
		case tc.code == "" && err != nil:
			t.Errorf("%q refused: %v", tc.pw, err)
		case tc.code != "" && (!errors.As(err, &r) || r.Code != tc.code):
			t.Errorf("%q: got %v, want %s", tc.pw, err, tc.code)
		}
	}
	p8, _ := NewPolicy(8)
	var r *Rejection
	if err := p8.Check("Password1", "bob@example.com"); !errors.As(err, &r) || r.Code != "common" {
		t.Fatalf("a common password passed: %v", err)
	}
}
