package httpapi_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/google/uuid"
	openapi_types "github.com/oapi-codegen/runtime/types"
	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"

	"github.com/gatehouse/gatehouse/gen/client"
	"github.com/gatehouse/gatehouse/internal/apitest"
)

// vectorByTool is a hash made by another tool, and its password.
func vectorByTool(t *testing.T, tool string) (hash, password string) {
	t.Helper()
	for _, v := range legacyVectors(t) {
		if v.Tool == tool {
			return v.Hash, v.Password
		}
	}
	t.Fatalf("no vector %q", tool)
	return "", ""
}

func importUsers(t *testing.T, c *client.ClientWithResponses, body client.ImportUsersJSONRequestBody) *client.ImportUsersResponse {
	t.Helper()
	return apitest.Must(c.ImportUsersWithResponse(ctx, body))(t)
}

func results(r *client.ImportUsersResponse) string {
	var b strings.Builder
	for _, x := range r.JSON200.Data.Results {
		fmt.Fprintf(&b, "%d %s", x.Index, x.Result)
		if x.Reason != nil {
			fmt.Fprintf(&b, " (%s)", *x.Reason)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// TestImportUsers_API: an administrator imports accounts with their hashes;
// each item gets its result (bad ones refused with the reason, the others
// created); the same request again changes nothing; a changed item is
// skipped unless update, which dry_run only reports; imported users keep
// their id and external id (shown to administrators, searchable), log in
// with their old password, and the import is audited with its actor.
func TestImportUsers_API(t *testing.T) {
	t.Parallel()
	s := apitest.NewServer(t, apitest.Options{RateLimits: generous()})
	admin := s.NewAdmin()
	scrypt, pw := vectorByTool(t, "werkzeug 3 default scrypt:32768:8:1 (hashlib)")
	bcrypt, bpw := vectorByTool(t, "python3-bcrypt $2b$")
	s.Secret("password", pw)
	s.Secret("password", bpw)
	s.Secret("hash", scrypt)
	s.Secret("hash", bcrypt)
	id := uuid.MustParse("0190c4c8-1111-7000-8000-0000000000aa")
	ada, grace := apitest.NewEmail("ada"), apitest.NewEmail("grace")
	items := []client.ImportUser{
		{Email: ada, Id: &id, ExternalId: ptr("flask-17"), Name: ptr("Ada"), EmailVerified: ptr(true), PasswordHash: scrypt},
		{Email: grace, PasswordHash: bcrypt, Roles: &[]string{"user"}},
		{Email: strings.ToUpper(ada)},
		{Email: "not an address"},
		{Email: apitest.NewEmail("x"), Roles: &[]string{"editor"}},
		{Email: apitest.NewEmail("x"), PasswordHash: "$2b$31$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW"}, //nolint:gosec // a hostile hash, no credential
		{Email: apitest.NewEmail("x"), PasswordHash: "{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g="},                            //nolint:gosec // an unsupported hash, no credential
		{Email: apitest.NewEmail("x"), ExternalId: ptr("flask-17")},
	}
	r := importUsers(t, admin.Client, client.ImportUsersJSONRequestBody{Users: items})
	if r.JSON200 == nil {
		t.Fatalf("import: %d %s", r.StatusCode(), r.Body)
	}
	want := "0 created\n1 created\n2 refused (duplicate email: line 0 has the same address (after normalisation))\n" +
		"3 refused (bad email: must be an email address such as name@example.com)\n" +
		"4 refused (unknown role \"editor\" (create it, or import with --create-roles / create_roles))\n" +
		"5 refused (password_hash out of bounds: bcrypt cost above 14)\n" +
		"6 refused (password_hash: unsupported password hash format)\n" +
		"7 refused (the id or external_id is an earlier line's)\n"
	if got := results(r); got != want {
		t.Fatalf("results:\n%s\nwant:\n%s", got, want)
	}
	if d := r.JSON200.Data; d.Created != 2 || d.Refused != 6 || *d.Results[0].Id != id {
		t.Fatalf("counts: %+v", d)
	}
	if strings.Contains(string(r.Body), "$2b$") || strings.Contains(string(r.Body), "scrypt:") {
		t.Fatal("the answer repeats a hash")
	}

	again := importUsers(t, admin.Client, client.ImportUsersJSONRequestBody{Users: items[:2]})
	if d := again.JSON200.Data; d.Unchanged != 2 || d.Created != 0 {
		t.Fatalf("again: %s", results(again))
	}
	items[1].Name = ptr("Grace")
	if r := importUsers(t, admin.Client, client.ImportUsersJSONRequestBody{Users: items[:2]}); r.JSON200.Data.Skipped != 1 {
		t.Fatalf("changed without update: %s", results(r))
	}
	if r := importUsers(t, admin.Client, client.ImportUsersJSONRequestBody{Users: items[:2], Update: ptr(true), DryRun: ptr(true)}); r.JSON200.Data.Updated != 1 || !r.JSON200.Data.DryRun {
		t.Fatalf("dry run: %s", results(r))
	}
	list := apitest.Must(admin.Client.ListUsersWithResponse(ctx, &client.ListUsersParams{Email: &grace}))(t)
	if list.JSON200 == nil || len(list.JSON200.Data) != 1 || list.JSON200.Data[0].Name != nil {
		t.Fatalf("the dry run wrote: %s", list.Body)
	}
	if r := importUsers(t, admin.Client, client.ImportUsersJSONRequestBody{Users: items[:2], Update: ptr(true)}); r.JSON200.Data.Updated != 1 {
		t.Fatalf("update: %s", results(r))
	}

	got := apitest.Must(admin.Client.GetUserWithResponse(ctx, id))(t)
	if got.JSON200 == nil || got.JSON200.Data.ExternalId == nil || *got.JSON200.Data.ExternalId != "flask-17" || !got.JSON200.Data.EmailVerified {
		t.Fatalf("imported user: %s", got.Body)
	}
	found := apitest.Must(admin.Client.ListUsersWithResponse(ctx, &client.ListUsersParams{ExternalId: ptr("flask-17")}))(t)
	if found.JSON200 == nil || len(found.JSON200.Data) != 1 || found.JSON200.Data[0].Id != id {
		t.Fatalf("search by external id: %s", found.Body)
	}
	none := apitest.Must(admin.Client.ListUsersWithResponse(ctx, &client.ListUsersParams{ExternalId: ptr("flask-17"), Status: ptr(client.UserStatusDisabled)}))(t)
	if none.JSON200 == nil || len(none.JSON200.Data) != 0 {
		t.Fatalf("search by external id, other status: %s", none.Body)
	}

	tok := s.Login(ada, pw)
	mine := apitest.Must(s.WithToken(tok.AccessToken).GetMeWithResponse(ctx))(t)
	if mine.JSON200 == nil || mine.JSON200.Data.ExternalId != nil {
		t.Fatalf("a user's own profile shows no external id: %s", mine.Body)
	}
	s.Login(grace, bpw)

	adminID := userID(t, s, admin.Tokens.AccessToken)
	ev := apitest.Must(admin.Client.ListAuditEventsWithResponse(ctx, &client.ListAuditEventsParams{Action: ptr(client.AuditAction("user.imported"))}))(t)
	if ev.JSON200 == nil || len(ev.JSON200.Data) != 2 { // the first import and the update
		t.Fatalf("audit: %s", ev.Body)
	}
	first := ev.JSON200.Data[1]
	raw, _ := json.Marshal(first.Details)
	if first.ActorId == nil || *first.ActorId != adminID || first.Details.Created == nil || *first.Details.Created != 2 ||
		first.Details.Source == nil || *first.Details.Source != "api" || strings.Contains(string(raw), "@") {
		t.Fatalf("audit event: %s", raw)
	}
}

// TestImportUsers_PermissionAndLimits: importing needs users:import (a
// user without it gets 403, no token 401); at most 1000 items; an importer
// may not grant, or write over an account holding, permissions it lacks.
func TestImportUsers_PermissionAndLimits(t *testing.T) {
	t.Parallel()
	s := apitest.NewServer(t, apitest.Options{})
	u := s.NewUser()
	one := client.ImportUsersJSONRequestBody{Users: []client.ImportUser{{Email: apitest.NewEmail("x")}}}
	if r := importUsers(t, u.Client, one); r.StatusCode() != 403 {
		t.Fatalf("without users:import: %d %s", r.StatusCode(), r.Body)
	}
	if r := importUsers(t, s.Client, one); r.StatusCode() != 401 {
		t.Fatalf("without a token: %d %s", r.StatusCode(), r.Body)
	}
	admin := s.NewAdmin()
	many := client.ImportUsersJSONRequestBody{}
	for i := range 1001 {
		many.Users = append(many.Users, client.ImportUser{Email: fmt.Sprintf("many-%d@example.com", i)})
	}
	if r := importUsers(t, admin.Client, many); r.StatusCode() != 422 || !strings.Contains(string(r.Body), `"users"`) {
		t.Fatalf("1001 items: %d %.300s", r.StatusCode(), r.Body)
	}
	if r := importUsers(t, admin.Client, client.ImportUsersJSONRequestBody{Users: many.Users[:1000]}); r.JSON200 == nil || r.JSON200.Data.Created != 1000 {
		t.Fatalf("1000 items: %d %.300s", r.StatusCode(), r.Body)
	}

	// An administrator an earlier import made.
	importedAdmin := apitest.NewEmail("imported-admin")
	if r := importUsers(t, admin.Client, client.ImportUsersJSONRequestBody{Users: []client.ImportUser{{Email: importedAdmin, Roles: &[]string{"admin"}}}}); r.JSON200 == nil || r.JSON200.Data.Created != 1 {
		t.Fatalf("an imported admin: %d %s", r.StatusCode(), r.Body)
	}
	// An importer holding users:import alone.
	pool := apitest.Pool(t, s.DatabaseURL)
	if _, err := pool.Exec(ctx, `INSERT INTO roles (name, description) VALUES ('importer', 'imports');
		INSERT INTO role_permissions (role, permission) VALUES ('importer', 'users:import');
		INSERT INTO user_roles (user_id, role) SELECT id, 'importer' FROM users WHERE email = '`+strings.ToLower(u.Email)+`'`); err != nil {
		t.Fatal(err)
	}
	importer := s.WithToken(s.Login(u.Email, u.Password).AccessToken)
	r := importUsers(t, importer, client.ImportUsersJSONRequestBody{Update: ptr(true), Users: []client.ImportUser{
		{Email: apitest.NewEmail("x"), Roles: &[]string{"admin"}},
		{Email: importedAdmin, Name: ptr("Taken over")},
		{Email: apitest.NewEmail("x"), Roles: &[]string{"importer", "user"}},
	}})
	want := "0 refused (role \"admin\" grants permissions you lack)\n1 refused (the account with this address holds permissions you lack)\n2 created\n"
	if r.JSON200 == nil || results(r) != want {
		t.Fatalf("importer: %d %s", r.StatusCode(), r.Body)
	}
}

// TestImportUsers_UpdatesNeverTakeOverAccounts: an import with update
// writes only over accounts an import made, and then only the password
// hash an import gave (before its owner logs in or sets one here); new
// roles end the account's sessions; it never re-enables an account disabled
// here; each change is audited with the account as subject.
func TestImportUsers_UpdatesNeverTakeOverAccounts(t *testing.T) {
	t.Parallel()
	s := apitest.NewServer(t, apitest.Options{RateLimits: generous()})
	admin := s.NewAdmin()
	hashOf := func(pw string) string {
		h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		s.Secret("password", pw)
		s.Secret("hash", string(h))
		return string(h)
	}
	loginStatus := func(email, pw string) int {
		t.Helper()
		return apitest.Must(s.Client.LoginWithResponse(ctx, client.LoginJSONRequestBody{Email: openapi_types.Email(email), Password: pw}))(t).StatusCode()
	}
	update := func(items ...client.ImportUser) string {
		t.Helper()
		r := importUsers(t, admin.Client, client.ImportUsersJSONRequestBody{Update: ptr(true), CreateRoles: ptr(true), Users: items})
		if r.JSON200 == nil {
			t.Fatalf("import: %d %s", r.StatusCode(), r.Body)
		}
		return results(r)
	}
	attacker := hashOf("the attacker's password")

	t.Run("an account made here is never written over", func(t *testing.T) {
		victim := s.NewUser()
		r := importUsers(t, admin.Client, client.ImportUsersJSONRequestBody{Update: ptr(true), Users: []client.ImportUser{
			{Email: victim.Email, PasswordHash: attacker, Name: ptr("Taken over")},
		}})
		if r.JSON200 == nil || r.JSON200.Data.Skipped != 1 || r.JSON200.Data.Results[0].Id != nil {
			t.Fatalf("import over a registered account: %d %s", r.StatusCode(), r.Body)
		}
		if got := loginStatus(victim.Email, "the attacker's password"); got != 401 {
			t.Fatalf("the imported hash logs in: %d", got)
		}
		s.Login(victim.Email, victim.Password)
	})

	t.Run("the hash is replaced until the owner logs in, then never", func(t *testing.T) {
		email := apitest.NewEmail("moved")
		first, second, third := hashOf("first password"), hashOf("second password"), hashOf("third password")
		if got := update(client.ImportUser{Email: email, PasswordHash: first}); got != "0 created\n" {
			t.Fatal(got)
		}
		if got := update(client.ImportUser{Email: email, PasswordHash: second}); got != "0 updated\n" {
			t.Fatal(got)
		}
		if got := loginStatus(email, "first password"); got != 401 {
			t.Fatalf("the replaced hash still logs in: %d", got)
		}
		s.Login(email, "second password") // rehashed to argon2id here
		if got := update(client.ImportUser{Email: email, PasswordHash: third}); got != "0 updated (password_hash not written: the account's owner has logged in or set a password here since it was imported)\n" {
			t.Fatal(got)
		}
		if got := loginStatus(email, "third password"); got != 401 {
			t.Fatalf("an import replaced a password used here: %d", got)
		}
		s.Login(email, "second password")
	})

	t.Run("a login claims the account even when its hash is not rehashed", func(t *testing.T) {
		// argon2id at the test server's own cost (4 MiB, 1 pass, 1 lane,
		// 16-byte salt, 32-byte key): a login keeps it as it is.
		salt := []byte("0123456789abcdef")
		b64 := base64.RawStdEncoding
		own := "$argon2id$v=19$m=4096,t=1,p=1$" + b64.EncodeToString(salt) + "$" +
			b64.EncodeToString(argon2.IDKey([]byte("own password"), salt, 1, 4096, 1, 32))
		s.Secret("hash", own)
		s.Secret("password", "own password")
		email := apitest.NewEmail("claimed")
		if got := update(client.ImportUser{Email: email, PasswordHash: own}); got != "0 created\n" {
			t.Fatal(got)
		}
		s.Login(email, "own password")
		if got := update(client.ImportUser{Email: email, PasswordHash: hashOf("imported later")}); got != "0 updated (password_hash not written: the account's owner has logged in or set a password here since it was imported)\n" {
			t.Fatal(got)
		}
		if got := loginStatus(email, "imported later"); got != 401 {
			t.Fatalf("an import replaced the password of an account its owner used: %d", got)
		}
		s.Login(email, "own password")
	})

	t.Run("the same line again never remakes an account deleted or moved here", func(t *testing.T) {
		gone, moved := apitest.NewEmail("gone"), apitest.NewEmail("moved")
		lines := []client.ImportUser{{Email: gone, PasswordHash: hashOf("gone password")}, {Email: moved, PasswordHash: hashOf("moved password")}}
		if got := update(lines...); got != "0 created\n1 created\n" {
			t.Fatal(got)
		}
		goneID := userID(t, s, s.Login(gone, "gone password").AccessToken)
		movedID := userID(t, s, s.Login(moved, "moved password").AccessToken)
		if r := apitest.Must(admin.Client.DeleteUserWithResponse(ctx, goneID))(t); r.StatusCode() != 204 {
			t.Fatalf("delete: %d %s", r.StatusCode(), r.Body)
		}
		elsewhere := openapi_types.Email(apitest.NewEmail("elsewhere"))
		if r := apitest.Must(admin.Client.UpdateUserWithResponse(ctx, movedID, client.UpdateUserJSONRequestBody{Email: &elsewhere}))(t); r.StatusCode() != 200 {
			t.Fatalf("change the address: %d %s", r.StatusCode(), r.Body)
		}
		if got := update(lines...); got != "0 unchanged\n1 unchanged\n" {
			t.Fatalf("the same lines again:\n%s", got)
		}
		lines[0].Name, lines[1].Name = ptr("Changed"), ptr("Changed")
		if got := update(lines...); got != "0 skipped (the account an import made with this address was deleted here (an administrator can restore it))\n"+
			"1 skipped (the account an import made with this address has another address now, changed here)\n" {
			t.Fatalf("changed lines:\n%s", got)
		}
		if loginStatus(gone, "gone password") != 401 || loginStatus(moved, "moved password") != 401 {
			t.Fatal("an import made a deleted or moved account anew")
		}
	})

	t.Run("new roles end the sessions; disabled here stays disabled", func(t *testing.T) {
		email := apitest.NewEmail("roles")
		if got := update(client.ImportUser{Email: email, PasswordHash: hashOf("roles password")}); got != "0 created\n" {
			t.Fatal(got)
		}
		tok := s.Login(email, "roles password")
		id := userID(t, s, tok.AccessToken)
		if got := update(client.ImportUser{Email: email, PasswordHash: hashOf("roles password"), Roles: &[]string{"auditor", "user"}}); got != "0 updated (password_hash not written: the account's owner has logged in or set a password here since it was imported)\n" {
			t.Fatal(got)
		}
		if r := apitest.Must(s.WithToken(tok.AccessToken).GetMeWithResponse(ctx))(t); r.StatusCode() != 401 {
			t.Fatalf("a token from before the roles changed: %d", r.StatusCode())
		}
		ev := apitest.Must(admin.Client.ListAuditEventsWithResponse(ctx, &client.ListAuditEventsParams{SubjectId: &id, Action: ptr(client.AuditAction("user.roles.changed"))}))(t)
		if ev.JSON200 == nil || len(ev.JSON200.Data) != 1 || ev.JSON200.Data[0].ActorId == nil || *ev.JSON200.Data[0].ActorId != userID(t, s, admin.Tokens.AccessToken) {
			t.Fatalf("roles change audit: %s", ev.Body)
		}

		if r := apitest.Must(admin.Client.UpdateUserWithResponse(ctx, id, client.UpdateUserJSONRequestBody{Disabled: ptr(true)}))(t); r.StatusCode() != 200 {
			t.Fatalf("disable: %d %s", r.StatusCode(), r.Body)
		}
		if got := update(client.ImportUser{Email: email, PasswordHash: hashOf("roles password"), Roles: &[]string{"auditor", "user"}, Name: ptr("Renamed"), Disabled: ptr(false)}); !strings.HasPrefix(got, "0 updated") {
			t.Fatal(got)
		}
		u := apitest.Must(admin.Client.GetUserWithResponse(ctx, id))(t)
		if u.JSON200 == nil || u.JSON200.Data.Name == nil || *u.JSON200.Data.Name != "Renamed" || u.JSON200.Data.Status != client.UserStatusDisabled {
			t.Fatalf("after an import saying enabled: %s", u.Body)
		}
		upd := apitest.Must(admin.Client.ListAuditEventsWithResponse(ctx, &client.ListAuditEventsParams{SubjectId: &id, Action: ptr(client.AuditAction("user.updated"))}))(t)
		if upd.JSON200 == nil || len(upd.JSON200.Data) != 1 {
			t.Fatalf("update audit: %s", upd.Body)
		}
		if raw, _ := json.Marshal(upd.JSON200.Data[0].Details); !strings.Contains(string(raw), `"name"`) || strings.Contains(string(raw), "disabled") {
			t.Fatalf("update audit details: %s", raw)
		}
	})
}
