package userimport

import (
	"bufio"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/password"
)

func TestDecode_RefusesWithTheFieldAndNeverTheValue(t *testing.T) {
	secret := "pbkdf2:sha256:1000$saltsaltsalt$deadbeef" //nolint:gosec // a made-up hash, no credential
	for _, tc := range []struct{ line, want string }{
		{`{"email":"a@example.com","password_hash":1}`, "field password_hash has the wrong type (want string)"},
		{`{"email":"a@example.com","pasword_hash":"` + secret + `"}`, `unknown field "pasword_hash"`},
		{`{"email":"a@example.com","password_hash":"` + secret + `"`, "not valid JSON"},
		{`{"email":"a@example.com","external_id":1.5}`, "external_id must be a string or an integer"},
		{`{"email":"a@example.com","created_at":"yesterday"}`, "created_at is not an RFC 3339 time"},
		{`{"email":"a@example.com"} {"email":"b@example.com"}`, "more than one JSON value on the line"},
		{`"a@example.com"`, "wrong type"},
	} {
		_, err := Decode([]byte(tc.line))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Decode(%s) = %v, want %q", tc.line, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "saltsalt") {
			t.Errorf("the refusal quotes the line: %v", err)
		}
	}
	l, err := Decode([]byte(`{"email":"a@example.com","external_id":17,"roles":["user"]}`))
	if err != nil || l.ExternalID == nil || *l.ExternalID != "17" {
		t.Fatalf("an integer external id: %+v %v", l, err)
	}
}

func TestValidate_NormalisesAndRefusesWithReasons(t *testing.T) {
	r := Rules{Roles: map[string]bool{"user": true, "admin": true}, Now: time.Now()}
	a, err := Validate(Line{Email: "  Ada@Example.COM ", Name: ptr("  Ada  "), Roles: []string{"user", "admin", "user"}}, r)
	if err != nil || a.Email != "ada@example.com" || *a.Name != "Ada" || strings.Join(a.Roles, ",") != "admin,user" || a.Format != "none" {
		t.Fatalf("Validate = %+v, %v", a, err)
	}
	b, _ := Validate(Line{Email: "ada@example.com", Name: ptr("Ada"), Roles: []string{"admin", "user"}}, r)
	if a.LineDigest != b.LineDigest {
		t.Fatal("lines equal once normalised have different digests")
	}
	for _, tc := range []struct {
		l    Line
		want string
	}{
		{Line{Email: "nope"}, "bad email"},
		{Line{Email: "a@localhost"}, "bad email: must use a public domain"},
		{Line{Email: "a@example.com", Roles: []string{"editor"}}, `unknown role "editor"`},
		{Line{Email: "a@example.com", Name: ptr(strings.Repeat("x", 101))}, "name longer than 100"},
		{Line{Email: "a@example.com", PasswordHash: "$2b$15$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW"}, "bcrypt cost above 14"}, //nolint:gosec // a hostile hash, no credential
		{Line{Email: "a@example.com", CreatedAt: ptr(time.Now().Add(48 * time.Hour))}, "created_at is in the future"},
	} {
		if _, err := Validate(tc.l, r); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(%+v) = %v, want %q", tc.l, err, tc.want)
		}
	}
	r.CreateRoles = true
	if _, err := Validate(Line{Email: "a@example.com", Roles: []string{"editor"}}, r); err != nil {
		t.Fatalf("--create-roles: %v", err)
	}
	if _, err := Validate(Line{Email: "a@example.com", Roles: []string{"Bad Role"}}, r); err == nil {
		t.Fatal("a role name with spaces would be created")
	}
}

// TestReadLine_LongLineIsDroppedToItsEnd: a line beyond MaxLineBytes is
// reported as long and the next line is read whole.
func TestReadLine_LongLineIsDroppedToItsEnd(t *testing.T) {
	br := bufio.NewReaderSize(strings.NewReader(strings.Repeat("x", 3*MaxLineBytes)+"\n{}\nlast"), 4096)
	for _, want := range []struct {
		line string
		long bool
	}{{"", true}, {"{}", false}, {"last", false}} {
		line, long, err := readLine(br)
		if err != nil || string(line) != want.line || long != want.long {
			t.Fatalf("readLine = %.20q %v %v, want %q %v", line, long, err, want.line, want.long)
		}
	}
	if _, _, err := readLine(br); err == nil {
		t.Fatal("no EOF after the last line")
	}
}

func ptr[T any](v T) *T { return &v }

// FuzzLine: any line of an import file is either refused with a *Refusal
// that does not quote its password hash, or accepted as a normalised
// account whose hash is in a format the hashing package reads. `go test`
// runs the seeds; fuzz with `go test -fuzz FuzzLine ./internal/userimport/`.
func FuzzLine(f *testing.F) {
	for _, s := range []string{
		`{"email":"ada@example.com"}`,
		`{"email":"Ada@Example.com","name":" Ada ","roles":["user","admin"],"email_verified":true,"external_id":17}`,
		`{"email":"a@example.com","password_hash":"pbkdf2:sha256:1000$saltsaltsalt$deadbeef"}`,
		`{"email":"a@example.com","password_hash":"scrypt:32768:8:1$saltsaltsalt$` + strings.Repeat("ab", 32) + `"}`,
		`{"email":"a@example.com","password_hash":"$2b$05$R/vFrIDNKdH5HEfYqW/iT.qfIKMaJK2UhlKJeKx06xJ.j4bt2lQCS"}`,
		`{"email":"a@example.com","id":"0195b7a0-0000-7000-8000-000000000001","created_at":"2020-01-02T03:04:05Z","disabled":true}`,
		`{"email":"a@example.com","roles":["new-role"]}`,
		`{"email":"a@example.com","password_hash":1}`,
		`{"email":"a@example.com"} {"email":"b@example.com"}`,
		`[]`, `null`, `{`, ``,
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, b []byte, createRoles bool) {
		l, err := Decode(b)
		if err == nil {
			var a Account
			a, err = Validate(l, Rules{Roles: map[string]bool{"user": true, "admin": true}, CreateRoles: createRoles, Now: now})
			if err == nil {
				format, ierr := password.Inspect(a.PasswordHash)
				if ierr != nil || format != a.Format || len(a.Roles) == 0 || a.Email != strings.ToLower(a.Email) {
					t.Fatalf("accepted %q as %+v (Inspect: %q, %v)", b, a, format, ierr)
				}
				return
			}
		}
		var r *Refusal
		if !errors.As(err, &r) {
			t.Fatalf("%q refused with %T %v", b, err, err)
		}
		if h := l.PasswordHash; len(h) >= 8 && strings.Count(string(b), h) == 1 && strings.Contains(err.Error(), h) {
			t.Fatalf("the refusal of %q quotes its password hash: %v", b, err)
		}
	})
}
