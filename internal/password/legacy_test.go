package password

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

type legacyVector struct {
	Format, Tool, Password, Hash string
}

// loadLegacyVectors reads hashes made by other tools (testdata/make_legacy_vectors.py).
func loadLegacyVectors(t testing.TB) []legacyVector {
	t.Helper()
	b, err := os.ReadFile("testdata/legacy_vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var vs []legacyVector
	if err := json.Unmarshal(b, &vs); err != nil {
		t.Fatal(err)
	}
	return vs
}

func TestVerify_LegacyVectors(t *testing.T) {
	h, err := NewHasher(fast, 2)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, v := range loadLegacyVectors(t) {
		t.Run(v.Tool, func(t *testing.T) {
			if f, err := Inspect(v.Hash); err != nil || f != v.Format {
				t.Fatalf("Inspect = %q, %v; want %q", f, err, v.Format)
			}
			ok, rehash, err := h.Verify(ctx, v.Password, v.Hash)
			if err != nil || !ok || !rehash {
				t.Fatalf("right password: ok=%v rehash=%v err=%v; want a match asking for a rehash", ok, rehash, err)
			}
			if ok, _, err := h.Verify(ctx, v.Password+"!", v.Hash); err != nil || ok {
				t.Fatalf("wrong password: ok=%v err=%v", ok, err)
			}
		})
	}
}

// TestInspect_RefusesHostileHashes: costs beyond the bounds, truncated salts
// and hashes, and strings in no format are refused at import, and match no
// password (without being computed) if they reach a row anyway.
func TestInspect_RefusesHostileHashes(t *testing.T) {
	salt16, hex64 := "abcdefghijklmnop", strings.Repeat("ab", 32)
	b64salt, b64key := "c29tZXNhbHRzb21lc2FsdA", strings.Repeat("A", 43)
	bcryptBody := "$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW"
	cases := []struct {
		name, hash string
		cost       bool // a *CostError, else ErrUnsupportedHash
	}{
		{"pbkdf2 huge iterations", "pbkdf2:sha256:100000000$" + salt16 + "$" + hex64, true},
		{"pbkdf2 zero iterations", "pbkdf2:sha256:0$" + salt16 + "$" + hex64, true},
		{"pbkdf2 truncated salt", "pbkdf2:sha256:1000$abc$" + hex64, true},
		{"pbkdf2 truncated hash", "pbkdf2:sha256:1000$" + salt16 + "$abab", true},
		{"pbkdf2 without iterations", "pbkdf2:sha256$" + salt16 + "$" + hex64, false},
		{"pbkdf2 unknown digest", "pbkdf2:md5:1000$" + salt16 + "$" + hex64, false},
		{"pbkdf2 hash not hex", "pbkdf2:sha256:1000$" + salt16 + "$" + strings.Repeat("zz", 32), false},
		{"scrypt n too large", "scrypt:131072:8:1$" + salt16 + "$" + hex64, true},
		{"scrypt n not a power of two", "scrypt:30000:8:1$" + salt16 + "$" + hex64, true},
		{"scrypt memory too large", "scrypt:65536:16:1$" + salt16 + "$" + hex64, true},
		{"scrypt p too large", "scrypt:1024:8:100$" + salt16 + "$" + hex64, true},
		{"scrypt truncated salt", "scrypt:1024:8:1$$" + hex64, true},
		{"bcrypt cost 15", "$2b$15" + bcryptBody, true},
		{"bcrypt cost 31", "$2b$31" + bcryptBody, true},
		{"bcrypt truncated", "$2b$10" + bcryptBody[:40], false},
		{"argon2 memory 1 GiB", "$argon2id$v=19$m=1048576,t=1,p=1$" + b64salt + "$" + b64key, true},
		{"argon2 time 100", "$argon2i$v=19$m=1024,t=100,p=1$" + b64salt + "$" + b64key, true},
		{"argon2 lanes 255", "$argon2id$v=19$m=65536,t=1,p=255$" + b64salt + "$" + b64key, true},
		{"argon2 truncated salt", "$argon2id$v=19$m=1024,t=1,p=1$c2FsdA$" + b64key, true},
		{"argon2 version 16", "$argon2i$v=16$m=1024,t=1,p=1$" + b64salt + "$" + b64key, false},
		{"passlib huge rounds", "$pbkdf2-sha256$99999999$" + b64salt + "$" + b64key, true},
		{"phc key length mismatch", "$pbkdf2-sha256$i=1000,l=64$" + b64salt + "$" + b64key, false},
		{"md5 crypt", "$1$saltsalt$2vnaRpHa6Jxjz5n83ok8Z0", false},
		{"plain text", "hunter2", false},
		{"very long", "$argon2id$" + strings.Repeat("A", 1000), true},
	}
	h, err := NewHasher(fast, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Inspect(c.hash)
			var ce *CostError
			if c.cost && !errors.As(err, &ce) || !c.cost && !errors.Is(err, ErrUnsupportedHash) {
				t.Fatalf("Inspect = %v; want cost error %v", err, c.cost)
			}
			if strings.Contains(err.Error(), hex64) || strings.Contains(err.Error(), b64key) {
				t.Fatalf("the error repeats the hash: %v", err)
			}
			// argon2id rows are bounded by Verify's own, wider limits: this
			// service may have written them at a higher cost than today's.
			if !strings.HasPrefix(c.hash, "$argon2id$") {
				if ok, _, err := h.Verify(context.Background(), "x", c.hash); ok || !errors.Is(err, ErrMalformedHash) {
					t.Fatalf("Verify = %v, %v; want ErrMalformedHash", ok, err)
				}
			}
		})
	}
}

func TestVerify_NoPassword(t *testing.T) {
	h, err := NewHasher(fast, 1)
	if err != nil {
		t.Fatal(err)
	}
	if f, err := Inspect(""); f != FormatNone || err != nil {
		t.Fatalf("Inspect(\"\") = %q, %v", f, err)
	}
	if ok, _, err := h.Verify(context.Background(), "", ""); ok || !errors.Is(err, ErrNoPassword) {
		t.Fatalf("Verify of no password = %v, %v; want ErrNoPassword", ok, err)
	}
}

// FuzzLegacyHash: whatever string an import or an altered row holds, parsing
// neither panics nor accepts a hash beyond the memory bound, refuses it with
// ErrUnsupportedHash or a *CostError only, agrees with Inspect, and a hash it
// accepts is verified (against a wrong password: no match, no error, no
// panic) within the hashing slots. `go test` runs the seeds; fuzz with
// `go test -fuzz FuzzLegacyHash ./internal/password/`.
func FuzzLegacyHash(f *testing.F) {
	for _, v := range loadLegacyVectors(f) {
		f.Add(v.Hash)
	}
	for _, s := range []string{
		"", "$", "$$$$", "pbkdf2:", "scrypt:", "$argon2id$", "$2b$", "$pbkdf2-sha1$",
		"scrypt:1:1:1$saltsalt$abab", "scrypt:2:0:1$saltsalt$" + strings.Repeat("ab", 32),
		"$argon2i$v=19$m=8,t=1,p=16$c29tZXNhbHRzb21lc2FsdA$" + strings.Repeat("A", 43),
		"$argon2id$v=19$m=-1,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$" + strings.Repeat("A", 43),
		"$pbkdf2-sha256$i=1,l=0$c29tZXNhbHRzb21lc2FsdA$",
		"pbkdf2:sha1:1$saltsalt$" + strings.Repeat("ab", 20),
	} {
		f.Add(s)
	}
	h, err := NewHasher(fast, 1)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := parse(s)
		format, inspectErr := Inspect(s)
		if err != nil {
			var ce *CostError
			if !errors.Is(err, ErrUnsupportedHash) && !errors.As(err, &ce) {
				t.Fatalf("parse(%q) refused with %T %v", s, err, err)
			}
			if s != "" && (inspectErr == nil || inspectErr.Error() != err.Error()) {
				t.Fatalf("Inspect(%q) = %q, %v; parse refused with %v", s, format, inspectErr, err)
			}
			return
		}
		if l.format == "" || l.format != format || inspectErr != nil {
			t.Fatalf("parse(%q) = format %q; Inspect = %q, %v", s, l.format, format, inspectErr)
		}
		if l.memKiB > MaxLegacyMemoryKiB {
			t.Fatalf("parse(%q) accepted %d KiB, above the bound", s, l.memKiB)
		}
		if ok, _, err := h.Verify(context.Background(), "not the password \x00", s); ok || err != nil {
			t.Fatalf("Verify(%q) of a wrong password = %v, %v", s, ok, err)
		}
	})
}

// TestSlowest_KeepsThisHourAndTheLast: the failure floor is the longest
// legacy verification of this hour or the one before, and forgets older ones.
func TestSlowest_KeepsThisHourAndTheLast(t *testing.T) {
	var s slowest
	h0 := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	if got := s.get(h0); got != 0 {
		t.Fatalf("empty: %v", got)
	}
	s.add(300*time.Millisecond, h0.Add(10*time.Minute))
	s.add(100*time.Millisecond, h0.Add(20*time.Minute))
	if got := s.get(h0.Add(30 * time.Minute)); got != 300*time.Millisecond {
		t.Fatalf("same hour: %v", got)
	}
	s.add(50*time.Millisecond, h0.Add(70*time.Minute))
	if got := s.get(h0.Add(80 * time.Minute)); got != 300*time.Millisecond {
		t.Fatalf("the next hour keeps the last one's: %v", got)
	}
	if got := s.get(h0.Add(130 * time.Minute)); got != 50*time.Millisecond {
		t.Fatalf("two hours on: %v", got)
	}
	if got := s.get(h0.Add(5 * time.Hour)); got != 0 {
		t.Fatalf("hours later: %v", got)
	}
}

// TestHasher_FailureFloorFollowsLegacyVerifications: verifying argon2id
// leaves the floor at zero; an imported hash raises it.
func TestHasher_FailureFloorFollowsLegacyVerifications(t *testing.T) {
	h, err := NewHasher(fast, 1)
	if err != nil {
		t.Fatal(err)
	}
	own, err := h.Hash(context.Background(), "pw")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.Verify(context.Background(), "x", own); err != nil || h.FailureFloor() != 0 {
		t.Fatalf("after argon2id: floor %v, %v", h.FailureFloor(), err)
	}
	v := loadLegacyVectors(t)[0]
	if _, _, err := h.Verify(context.Background(), "x", v.Hash); err != nil || h.FailureFloor() <= 0 {
		t.Fatalf("after %s: floor %v, %v", v.Tool, h.FailureFloor(), err)
	}
}
