package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/apitest"
)

// importEnv is a migrated database and a Redis for `gatehouse import`,
// and a way to run the command on them.
type importEnv struct {
	dbURL string
	env   []string
	dir   string
}

func newImportEnv(t *testing.T) *importEnv {
	t.Helper()
	dbURL := apitest.DatabaseURL(t)
	rd := apitest.StartRedis(t)
	return &importEnv{dbURL: dbURL, dir: t.TempDir(), env: []string{
		"DATABASE_URL=" + dbURL, "REDIS_URL=" + rd.URL(), "ARGON2_MEMORY_KIB=4096", "ARGON2_TIME=1",
	}}
}

// run runs gatehouse with stdin and returns its stdout and stderr together.
func (e *importEnv) run(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, e.env...)
	cmd.Dir = e.dir
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (e *importEnv) file(t *testing.T, name string, lines ...string) string {
	t.Helper()
	p := filepath.Join(e.dir, name)
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// vector returns a hash of the given format made by another tool, and its
// password (internal/password/testdata).
func vector(t *testing.T, tool string) (hash, password string) {
	t.Helper()
	b, err := os.ReadFile("../../internal/password/testdata/legacy_vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var vs []struct{ Tool, Password, Hash string }
	if err := json.Unmarshal(b, &vs); err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		if v.Tool == tool {
			return v.Hash, v.Password
		}
	}
	t.Fatalf("no vector %q", tool)
	return "", ""
}

func mustContain(t *testing.T, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Fatalf("output lacks %q:\n%s", w, out)
		}
	}
}

// TestImportUsers_ReportsEachRefusedLineAndIsIdempotent: every bad line is
// refused with its number and reason while the others are imported; the
// same file again changes nothing; a changed line is skipped unless
// --update, which --dry-run only reports; --resume starts at a line; no
// hash appears in the output.
func TestImportUsers_ReportsEachRefusedLineAndIsIdempotent(t *testing.T) {
	t.Parallel()
	e := newImportEnv(t)
	scrypt, _ := vector(t, "werkzeug 3 default scrypt:32768:8:1 (hashlib)")
	bcrypt, _ := vector(t, "htpasswd -B $2y$")
	lines := []string{
		`{"id":"0190c4c8-1111-7000-8000-000000000001","external_id":17,"email":"Ada@Example.com","name":"Ada","email_verified":true,"roles":["admin","user"],"created_at":"2019-05-01T10:00:00Z","password_hash":"` + scrypt + `"}`,
		`{"email":"ada@example.com ","password_hash":"` + bcrypt + `"}`,
		`{"email":"grace@example.com","external_id":"u-18","password_hash":"` + bcrypt + `"}`,
		`{"email":"not an address"}`,
		`{"email":"edsger@example.com","roles":["editor"]}`,
		`{"email":"alan@example.com","password_hash":"{SSHA}abcdefgh"}`,
		`{"email":"barbara@example.com","password_hash":"pbkdf2:sha256:99999999$abcdefghijklmnop$` + strings.Repeat("ab", 32) + `"}`,
		`{"email":"ken@example.com","password_hash":"scrypt:32768:8:1$short$` + strings.Repeat("ab", 64) + `"}`,
		`{"email":"dennis@example.com","disabled":true}`,
		``,
		`{"email":"linus@example.com","deleted":true}`,
		`{"email":"bjarne@example.com","nickname":"b"}`,
		`{"email":"guido@example.com","email_verified":"yes"}`,
		`["not","an","object"]`,
	}
	f := e.file(t, "users.jsonl", lines...)
	out, err := e.run(t, "", "import", "users", f)
	if err == nil {
		t.Fatalf("refused lines must fail the command:\n%s", out)
	}
	mustContain(t, out,
		"line 2: refused: duplicate email: line 1 has the same address",
		"line 4: refused: bad email",
		`line 5: refused: unknown role "editor"`,
		"line 6: refused: password_hash: unsupported password hash format",
		"line 7: refused: password_hash out of bounds: pbkdf2 iterations above 1200000",
		"line 8: refused: password_hash out of bounds: scrypt salt shorter than 8 bytes",
		`line 12: refused: unknown field "nickname"`,
		"line 13: refused: field email_verified has the wrong type",
		"line 14: refused: ",
		"13 lines: 4 created, 0 updated, 0 unchanged, 0 skipped, 9 refused",
		"9 lines refused",
	)
	for _, secret := range []string{scrypt, bcrypt, strings.Repeat("ab", 32)} {
		if strings.Contains(out, secret) {
			t.Fatal("the report repeats a password hash")
		}
	}
	pool := apitest.Pool(t, e.dbURL)
	var id, ext, verified, roles string
	if err := pool.QueryRow(t.Context(), `SELECT id::text, external_id, (email_verified_at = created_at)::text, array_to_string(roles, ',')
		FROM user_profiles WHERE email = 'ada@example.com'`).Scan(&id, &ext, &verified, &roles); err != nil {
		t.Fatal(err)
	}
	if id != "0190c4c8-1111-7000-8000-000000000001" || ext != "17" || verified != "true" || roles != "admin,user" {
		t.Fatalf("imported account: id %s, external_id %s, verified at creation %s, roles %s", id, ext, verified, roles)
	}

	out, _ = e.run(t, "", "import", "users", f)
	mustContain(t, out, "13 lines: 0 created, 0 updated, 4 unchanged, 0 skipped, 9 refused")

	lines[2] = `{"email":"grace@example.com","external_id":"u-18","name":"Grace","password_hash":"` + bcrypt + `"}`
	changed := e.file(t, "changed.jsonl", lines[:3]...)
	out, _ = e.run(t, "", "import", "users", changed)
	mustContain(t, out, "line 3: skipped: an account with this address exists and differs (import with --update / update to write the line over it)", "1 skipped")
	out, _ = e.run(t, "", "import", "users", "--update", "--dry-run", changed)
	mustContain(t, out, "dry run, nothing written: 3 lines: 0 created, 1 updated, 1 unchanged")
	var name *string
	if err := pool.QueryRow(t.Context(), `SELECT name FROM users WHERE email = 'grace@example.com'`).Scan(&name); err != nil || name != nil {
		t.Fatalf("--dry-run wrote: %v %v", name, err)
	}
	out, _ = e.run(t, "", "import", "users", "--update", changed)
	mustContain(t, out, "3 lines: 0 created, 1 updated, 1 unchanged, 0 skipped, 1 refused")
	if err := pool.QueryRow(t.Context(), `SELECT name FROM users WHERE email = 'grace@example.com'`).Scan(&name); err != nil || name == nil || *name != "Grace" {
		t.Fatalf("--update did not write: %v %v", name, err)
	}

	out, _ = e.run(t, strings.Join(lines, "\n"), "import", "users", "--resume", "9", "-")
	mustContain(t, out, "5 lines: 0 created, 0 updated, 2 unchanged, 0 skipped, 3 refused")
}

// TestImportUsers_ImportedPasswordsLogInAndCreateRolesAndInvite: an
// account imported with a Werkzeug hash logs in with its old password and
// gets an argon2id hash; --create-roles creates a missing role; --invite
// mails a set-password link to an account without a password; import
// status counts the legacy hashes left.
func TestImportUsers_ImportedPasswordsLogInAndCreateRolesAndInvite(t *testing.T) {
	t.Parallel()
	e := newImportEnv(t)
	scrypt, pw := vector(t, "werkzeug 3 default scrypt:32768:8:1 (hashlib)")
	pbkdf2, _ := vector(t, "werkzeug sha512 (hashlib)")
	f := e.file(t, "users.jsonl",
		`{"email":"ada@example.com","email_verified":true,"roles":["editor"],"password_hash":"`+scrypt+`"}`,
		`{"email":"grace@example.com","password_hash":"`+pbkdf2+`"}`,
		`{"email":"linus@example.com","email_verified":true}`,
	)
	out, err := e.run(t, "", "import", "users", "--create-roles", "--invite", f)
	if err != nil {
		t.Fatalf("import: %v\n%s", err, out)
	}
	mustContain(t, out, "3 lines: 3 created")
	out, err = e.run(t, "", "import", "status")
	if err != nil {
		t.Fatalf("status: %v\n%s", err, out)
	}
	mustContain(t, out, "werkzeug-pbkdf2  1", "werkzeug-scrypt  1", "none             1", "2 live accounts on imported password hashes")

	pool := apitest.Pool(t, e.dbURL)
	var invites int
	if err := pool.QueryRow(t.Context(), `SELECT count(*) FROM river_job WHERE args->>'mail' = 'set_password' AND args->>'to' = 'linus@example.com'`).Scan(&invites); err != nil || invites != 1 {
		t.Fatalf("set-password mails queued: %d %v", invites, err)
	}

	s := apitest.NewServer(t, apitest.Options{DatabaseURL: e.dbURL})
	s.Secret("password", pw)
	s.Login("ada@example.com", pw)
	var hash string
	if err := pool.QueryRow(t.Context(), `SELECT password_hash FROM users WHERE email = 'ada@example.com'`).Scan(&hash); err != nil || !strings.HasPrefix(hash, "$argon2id$") {
		t.Fatalf("not rehashed: %.12s %v", hash, err)
	}
	out, _ = e.run(t, "", "import", "status")
	mustContain(t, out, "1 live accounts on imported password hashes")
	// The import of the same file again does not bring the old hash back.
	out, _ = e.run(t, "", "import", "users", "--update", "--create-roles", f)
	mustContain(t, out, "3 lines: 0 created, 0 updated, 3 unchanged")
	s.Login("ada@example.com", pw)
}
