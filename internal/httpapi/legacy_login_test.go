package httpapi_test

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

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
