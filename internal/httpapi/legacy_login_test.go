package httpapi_test

import (
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/apitest"
)

// legacyVectors are hashes made by other tools (internal/password/testdata,
// see make_legacy_vectors.py there).
func legacyVectors(t *testing.T) []struct{ Format, Tool, Password, Hash string } {
	t.Helper()
	b, err := os.ReadFile("../password/testdata/legacy_vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var vs []struct{ Format, Tool, Password, Hash string }
	if err := json.Unmarshal(b, &vs); err != nil {
		t.Fatal(err)
	}
	return vs
}

// TestLogin_ImportedHashesVerifyThenBecomeArgon2id: an account whose hash
// came from another system (Werkzeug, bcrypt, passlib, argon2i ...) logs
// in with its password, refuses a wrong one, and its hash is argon2id
// after the first successful login.
func TestLogin_ImportedHashesVerifyThenBecomeArgon2id(t *testing.T) {
	t.Parallel()
	s := apitest.NewServer(t, apitest.Options{RateLimits: generous()})
	pool := apitest.Pool(t, s.DatabaseURL)
	for _, v := range legacyVectors(t) {
		t.Run(v.Tool, func(t *testing.T) {
			email := apitest.NewEmail("legacy")
			s.Register(email, apitest.Password)
			if _, err := pool.Exec(ctx, `UPDATE users SET password_hash = $2, email_verified_at = now() WHERE email = $1`, email, v.Hash); err != nil {
				t.Fatal(err)
			}
			s.Secret("password", v.Password)
			if r := login(t, s, email, v.Password+"x"); r.StatusCode() != 401 {
				t.Fatalf("wrong password: %d %s", r.StatusCode(), r.Body)
			}
			s.Login(email, v.Password)
			var hash string
			if err := pool.QueryRow(ctx, `SELECT password_hash FROM users WHERE email = $1`, email).Scan(&hash); err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(hash, "$argon2id$v=19$m=4096,t=") {
				t.Fatalf("not rehashed to argon2id: %.20s", hash)
			}
			s.Login(email, v.Password) // the new hash verifies
		})
	}
}

// TestLogin_FailuresTakeAsLongAsTheSlowestImportedHash: once a slow
// imported hash (Werkzeug's PBKDF2, 600,000 iterations) refused a wrong
// password, an unknown address and a wrong password on an argon2id account
// take at least as long (the floor /metrics shows), so a failure's time does
// not tell an imported account from others. Lower bounds only: padding
// guarantees them whatever the machine's speed.
func TestLogin_FailuresTakeAsLongAsTheSlowestImportedHash(t *testing.T) {
	t.Parallel()
	s := apitest.NewServer(t, apitest.Options{RateLimits: generous()})
	floor := func() time.Duration {
		t.Helper()
		_, _, body := scrape(t, s, nil)
		for line := range strings.Lines(body) {
			if v, ok := strings.CutPrefix(line, "gatehouse_login_failure_floor_seconds "); ok {
				f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
				if err != nil {
					t.Fatal(err)
				}
				return time.Duration(f * float64(time.Second))
			}
		}
		t.Fatalf("no gatehouse_login_failure_floor_seconds in:\n%.500s", body)
		return 0
	}
	if f := floor(); f != 0 {
		t.Fatalf("floor %v before any imported hash was verified", f)
	}
	var slow struct{ Format, Tool, Password, Hash string }
	for _, v := range legacyVectors(t) {
		if v.Tool == "werkzeug 2.3 default (hashlib)" {
			slow = v
		}
	}
	imported := apitest.NewEmail("imported")
	s.Register(imported, apitest.Password)
	if _, err := apitest.Pool(t, s.DatabaseURL).Exec(ctx, `UPDATE users SET password_hash = $2, email_verified_at = now() WHERE email = $1`, imported, slow.Hash); err != nil {
		t.Fatal(err)
	}
	if r := login(t, s, imported, "not "+slow.Password); r.StatusCode() != 401 {
		t.Fatalf("wrong password on the imported hash: %d", r.StatusCode())
	}
	f := floor()
	if f <= 0 {
		t.Fatalf("floor %v after a slow imported hash was verified", f)
	}
	native := s.NewUser()
	for name, try := range map[string]func() int{
		"unknown address": func() int { return login(t, s, apitest.NewEmail("nobody"), apitest.Password).StatusCode() },
		"wrong password":  func() int { return login(t, s, native.Email, "not "+native.Password).StatusCode() },
	} {
		start := time.Now()
		if code := try(); code != 401 {
			t.Fatalf("%s: %d", name, code)
		}
		if d := time.Since(start); d < f {
			t.Fatalf("%s took %v, under the floor %v of the imported hash", name, d, f)
		}
		t.Logf("%s: %v (floor %v)", name, time.Since(start), f)
	}
}
