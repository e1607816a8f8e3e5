package token

import "testing"

// FuzzVerify: no input panics, and nothing but a token this issuer signed
// verifies.
func FuzzVerify(f *testing.F) {
	i := newIssuer(&testing.T{})
	good, _ := i.Issue(subject)
	f.Add(good)
	f.Add(good[:len(good)-1] + "A")
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("a.b.c")
	f.Add("")
	f.Fuzz(func(t *testing.T, raw string) {
		if _, err := i.Verify(raw); err == nil && raw != good {
			t.Fatalf("forged token verified: %q", raw)
		}
	})
}
