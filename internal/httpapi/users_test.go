package httpapi_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	openapi_types "github.com/oapi-codegen/runtime/types"

	"github.com/gatehouse/gatehouse/gen/client"
	"github.com/gatehouse/gatehouse/internal/apitest"
)

func TestSelfService_ProfileEmailChangeSessionsAndDeletion(t *testing.T) {
	t.Parallel()
	s, mailbox := withSMTP(t, nil)
	u := s.NewUser()
	other := s.NewUser()
	second := s.Login(u.Email, u.Password) // a second device

	name := "Alice Example"
	res, err := u.Client.UpdateMeWithResponse(ctx, client.UpdateMeJSONRequestBody{Name: &name})
	if err != nil {
		t.Fatal(err)
	}
	if res.JSON200 == nil || res.JSON200.Data.Name == nil || *res.JSON200.Data.Name != name {
		t.Fatalf("update name: %v %s", err, res.Body)
	}
	// Email change: needs the password, and is confirmed by the new address first.
	newEmail := apitest.NewEmail("moved")
	s.Secret("raw email", newEmail)
	ne := openapi_types.Email(newEmail)
	if r := apitest.Must(u.Client.UpdateMeWithResponse(ctx, client.UpdateMeJSONRequestBody{Email: &ne}))(t); r.StatusCode() != 403 {
		t.Fatalf("email change without the password: %d %s", r.StatusCode(), r.Body)
	}
	if r := apitest.Must(u.Client.UpdateMeWithResponse(ctx, client.UpdateMeJSONRequestBody{Email: &ne, CurrentPassword: ptr("not the password")}))(t); r.StatusCode() != 403 {
		t.Fatalf("email change with a wrong password: %d %s", r.StatusCode(), r.Body)
	}
	// A taken address is not revealed here; its confirmation says 409.
	taken := openapi_types.Email(other.Email)
	if r := apitest.Must(u.Client.UpdateMeWithResponse(ctx, client.UpdateMeJSONRequestBody{Email: &taken, CurrentPassword: &u.Password}))(t); r.StatusCode() != 200 {
		t.Fatalf("change to a taken address: %d %s", r.StatusCode(), r.Body)
	}
	takenMail := mailbox.WaitForSubject(other.Email, "Confirm your new email address", 1, 10*time.Second)[0]
	s.Secret("email change token", takenMail.Token())
	if v := apitest.Must(s.Client.VerifyEmailWithResponse(ctx, client.VerifyEmailJSONRequestBody{Token: takenMail.Token()}))(t); v.StatusCode() != 409 {
		t.Fatalf("confirming a taken address: %d %s", v.StatusCode(), v.Body)
	}
	r, err := u.Client.UpdateMeWithResponse(ctx, client.UpdateMeJSONRequestBody{Email: &ne, CurrentPassword: &u.Password})
	if err != nil {
		t.Fatal(err)
	}
	if r.JSON200 == nil || string(r.JSON200.Data.Email) != u.Email {
		t.Fatalf("email change must wait for confirmation: %v %s", err, r.Body)
	}
	// A reset link sent to the old address before the change must die with it.
	forgot(t, s, u.Email)
	oldReset := mailbox.WaitForSubject(u.Email, "Reset", 1, 10*time.Second)[0].Token()
	m := mailbox.WaitForSubject(newEmail, "Confirm your new email address", 1, 10*time.Second)[0]
	s.Secret("email change token", m.Token())
	if v := apitest.Must(s.Client.VerifyEmailWithResponse(ctx, client.VerifyEmailJSONRequestBody{Token: m.Token()}))(t); v.StatusCode() != 204 {
		t.Fatalf("confirm new email: %d %s", v.StatusCode(), v.Body)
	}
	// The change ends every other session; the one that asked lives on
	// through its refresh token (its access tokens died with the version).
	if me(t, s, second.AccessToken) != 401 || refresh(t, s, second.RefreshToken).StatusCode() != 401 {
		t.Fatal("another session survived the email change")
	}
	if me(t, s, u.Tokens.AccessToken) != 401 {
		t.Fatal("an access token from before the email change still works")
	}
	fresh := refresh(t, s, u.Tokens.RefreshToken)
	if fresh.JSON200 == nil {
		t.Fatalf("the session that asked for the change must live on: %d %s", fresh.StatusCode(), fresh.Body)
	}
	u.Tokens, u.Client = fresh.JSON200.Data, s.WithToken(fresh.JSON200.Data.AccessToken)
	if got := apitest.Must(u.Client.GetMeWithResponse(ctx))(t); got.JSON200 == nil || string(got.JSON200.Data.Email) != newEmail || !got.JSON200.Data.EmailVerified {
		t.Fatalf("email after confirmation: %s", got.Body)
	}
	if r := reset(t, s, oldReset, newPassword); r.StatusCode() != 400 {
		t.Fatalf("a reset link of the old address still works: %d", r.StatusCode())
	}
	second = s.Login(newEmail, u.Password) // a second device again

	// Sessions: both listed, the current one marked; the other can be ended.
	list, err := u.Client.ListMySessionsWithResponse(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if list.JSON200 == nil || len(list.JSON200.Data) != 2 {
		t.Fatalf("sessions: %v %s", err, list.Body)
	}
	var current, otherSession openapi_types.UUID
	for _, x := range list.JSON200.Data {
		if x.Current {
			current = x.Id
		} else {
			otherSession = x.Id
		}
		if x.Ip == "" || x.CreatedAt.IsZero() {
			t.Errorf("session lacks details: %+v", x)
		}
	}
	if current == uuid.Nil || otherSession == uuid.Nil {
		t.Fatalf("current session not marked: %s", list.Body)
	}
	// Another user's session is "not found", never revoked (IDOR).
	if d := apitest.Must(other.Client.RevokeMySessionWithResponse(ctx, otherSession))(t); d.StatusCode() != 404 {
		t.Fatalf("revoking someone else's session: %d", d.StatusCode())
	}
	if me(t, s, second.AccessToken) != 200 {
		t.Fatal("someone else revoked this session")
	}
	if d := apitest.Must(u.Client.RevokeMySessionWithResponse(ctx, otherSession))(t); d.StatusCode() != 204 {
		t.Fatalf("revoke own session: %d %s", d.StatusCode(), d.Body)
	}
	if me(t, s, second.AccessToken) != 401 || me(t, s, u.Tokens.AccessToken) != 200 {
		t.Fatal("revoking one session must end that one only")
	}

	// Deletion needs the password, ends everything, frees the address.
	if d := apitest.Must(u.Client.DeleteMeWithResponse(ctx, client.DeleteMeJSONRequestBody{Password: "not my password at all"}))(t); d.StatusCode() != 403 || d.HTTPResponse.Header.Get("WWW-Authenticate") != "" {
		t.Fatalf("delete with a wrong password: %d", d.StatusCode())
	}
	if d := apitest.Must(u.Client.DeleteMeWithResponse(ctx, client.DeleteMeJSONRequestBody{Password: u.Password}))(t); d.StatusCode() != 204 {
		t.Fatalf("delete: %d %s", d.StatusCode(), d.Body)
	}
	if me(t, s, u.Tokens.AccessToken) != 401 || login(t, s, newEmail, u.Password).StatusCode() != 401 {
		t.Fatal("a deleted account still works")
	}
	s.Register(newEmail, "a new owner's passphrase")
	if login(t, s, newEmail, "a new owner's passphrase").JSON200 == nil {
		t.Fatal("the address of a deleted account cannot be registered again")
	}
}

func TestUpdateMe_RefusesMassAssignment(t *testing.T) {
	t.Parallel()
	s := apitest.NewServer(t, apitest.Options{})
	u := s.NewUser()
	for _, body := range []string{`{"roles":["admin"]}`, `{"email_verified":true}`, `{"deleted_at":null}`, `{"name":"x","status":"active"}`, `{"disabled":false}`} {
		res, b := send(t, s, "PATCH", "/api/v1/users/me", u.Tokens.AccessToken, "application/json", body)
		if res.StatusCode != 422 || decodeProblem(t, b).Errors[0].Code != "unknown_field" {
			t.Errorf("%s: %d %s", body, res.StatusCode, b)
		}
	}
	got := apitest.Must(u.Client.GetMeWithResponse(ctx))(t)
	if got.JSON200 == nil || len(got.JSON200.Data.Roles) != 1 || got.JSON200.Data.EmailVerified {
		t.Fatalf("the account changed: %s", got.Body)
	}
}

func TestAdmin_UserLifecycle(t *testing.T) {
	t.Parallel()
	s := apitest.NewServer(t, apitest.Options{})
	admin := s.NewAdmin()
	a := admin.Client
	email := apitest.NewEmail("managed")
	s.Secret("raw email", email)
	created, err := a.CreateUserWithResponse(ctx, client.CreateUserJSONRequestBody{Email: openapi_types.Email(email), Password: apitest.Password, Roles: &[]string{"user"}, EmailVerified: ptr(true)})
	if err != nil {
		t.Fatal(err)
	}
	if created.JSON201 == nil {
		t.Fatalf("create: %v %s", err, created.Body)
	}
	id := created.JSON201.Data.Id
	if loc := created.HTTPResponse.Header.Get("Location"); loc != "/api/v1/users/"+id.String() {
		t.Fatalf("Location %q", loc)
	}
	if r := apitest.Must(a.CreateUserWithResponse(ctx, client.CreateUserJSONRequestBody{Email: openapi_types.Email(strings.ToUpper(email)), Password: apitest.Password}))(t); r.StatusCode() != 409 {
		t.Fatalf("taken email: %d %s", r.StatusCode(), r.Body)
	}
	if r := apitest.Must(a.CreateUserWithResponse(ctx, client.CreateUserJSONRequestBody{Email: openapi_types.Email(apitest.NewEmail("x")), Password: apitest.Password, Roles: &[]string{"emperor"}}))(t); r.StatusCode() != 422 {
		t.Fatalf("unknown role: %d %s", r.StatusCode(), r.Body)
	}
	userTok := s.Login(email, apitest.Password)

	disabled := true
	if r := apitest.Must(a.UpdateUserWithResponse(ctx, id, client.UpdateUserJSONRequestBody{Disabled: &disabled}))(t); r.JSON200 == nil || r.JSON200.Data.Status != client.UserStatusDisabled {
		t.Fatalf("disable: %s", r.Body)
	}
	if me(t, s, userTok.AccessToken) != 401 || refresh(t, s, userTok.RefreshToken).StatusCode() != 401 || login(t, s, email, apitest.Password).StatusCode() != 401 {
		t.Fatal("a disabled user still gets in")
	}
	disabled = false
	if r := apitest.Must(a.UpdateUserWithResponse(ctx, id, client.UpdateUserJSONRequestBody{Disabled: &disabled}))(t); r.JSON200 == nil || r.JSON200.Data.Status != client.UserStatusActive {
		t.Fatalf("enable: %s", r.Body)
	}
	userTok = s.Login(email, apitest.Password)

	// Roles: the user's old token is refused; a new one carries the permissions.
	if r := apitest.Must(a.SetUserRolesWithResponse(ctx, id, client.SetUserRolesJSONRequestBody{Roles: []string{"admin", "user"}}))(t); r.JSON200 == nil || len(r.JSON200.Data.Roles) != 2 {
		t.Fatalf("set roles: %s", r.Body)
	}
	if me(t, s, userTok.AccessToken) != 401 {
		t.Fatal("a token from before a role change still works")
	}
	promoted := s.Login(email, apitest.Password)
	if r := apitest.Must(s.WithToken(promoted.AccessToken).ListRolesWithResponse(ctx))(t); r.JSON200 == nil || len(r.JSON200.Data) < 2 {
		t.Fatalf("new permissions not in force: %s", r.Body)
	}

	if r := apitest.Must(a.RevokeUserSessionsWithResponse(ctx, id))(t); r.StatusCode() != 204 || me(t, s, promoted.AccessToken) != 401 {
		t.Fatalf("revoke sessions: %d", r.StatusCode())
	}
	if r := apitest.Must(a.DeleteUserWithResponse(ctx, id))(t); r.StatusCode() != 204 {
		t.Fatalf("delete: %d", r.StatusCode())
	}
	if r := apitest.Must(a.GetUserWithResponse(ctx, id))(t); r.JSON200 == nil || r.JSON200.Data.Status != client.UserStatusDeleted || r.JSON200.Data.DeletedAt == nil {
		t.Fatalf("get deleted: %s", r.Body)
	}
	if r := apitest.Must(a.DeleteUserWithResponse(ctx, id))(t); r.StatusCode() != 404 {
		t.Fatalf("delete twice: %d", r.StatusCode())
	}
	// Someone registers the freed address; restoring the old account would clash.
	s.Register(email, "the new owner's passphrase")
	if r := apitest.Must(a.RestoreUserWithResponse(ctx, id))(t); r.StatusCode() != 409 || !strings.Contains(string(r.Body), "email_taken") {
		t.Fatalf("restore onto a taken address: %d %s", r.StatusCode(), r.Body)
	}
	pool := apitest.Pool(t, s.DatabaseURL)
	if _, err := pool.Exec(ctx, `UPDATE users SET deleted_at = now() WHERE email = $1 AND id <> $2`, email, id); err != nil {
		t.Fatal(err)
	}
	if r := apitest.Must(a.RestoreUserWithResponse(ctx, id))(t); r.JSON200 == nil || r.JSON200.Data.Status != client.UserStatusActive {
		t.Fatalf("restore: %s", r.Body)
	}
	if r := apitest.Must(a.RestoreUserWithResponse(ctx, id))(t); r.StatusCode() != 409 {
		t.Fatalf("restore a live user: %d", r.StatusCode())
	}
	if r := apitest.Must(a.GetUserWithResponse(ctx, uuid.New()))(t); r.StatusCode() != 404 {
		t.Fatalf("unknown user: %d", r.StatusCode())
	}
}

// TestAdmin_NoOneManagesAUserMorePowerfulThanThemselves: a helpdesk role
// with users:read and users:write can manage ordinary users, but neither
// create an administrator nor touch one.
func TestAdmin_NoOneManagesAUserMorePowerfulThanThemselves(t *testing.T) {
	t.Parallel()
	s := apitest.NewServer(t, apitest.Options{})
	admin := s.NewAdmin()
	adminID := userID(t, s, admin.Tokens.AccessToken)
	pool := apitest.Pool(t, s.DatabaseURL)
	helper := s.NewUser()
	if _, err := pool.Exec(ctx, `INSERT INTO roles (name, description) VALUES ('helpdesk', 'Support staff');
		INSERT INTO role_permissions (role, permission) VALUES ('helpdesk', 'users:read'), ('helpdesk', 'users:write');`); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO user_roles (user_id, role) SELECT id, 'helpdesk' FROM users WHERE email = $1`, helper.Email); err != nil {
		t.Fatal(err)
	}
	h := s.WithToken(s.Login(helper.Email, helper.Password).AccessToken)
	if r := apitest.Must(h.CreateUserWithResponse(ctx, client.CreateUserJSONRequestBody{Email: openapi_types.Email(apitest.NewEmail("x")), Password: apitest.Password, Roles: &[]string{"admin"}}))(t); r.StatusCode() != 403 {
		t.Fatalf("users:write created an admin: %d %s", r.StatusCode(), r.Body)
	}
	if r := apitest.Must(h.CreateUserWithResponse(ctx, client.CreateUserJSONRequestBody{Email: openapi_types.Email(apitest.NewEmail("x")), Password: apitest.Password}))(t); r.StatusCode() != 201 {
		t.Fatalf("users:write creating an ordinary user: %d %s", r.StatusCode(), r.Body)
	}
	evil := openapi_types.Email(apitest.NewEmail("evil"))
	yes := true
	if r := apitest.Must(h.UpdateUserWithResponse(ctx, adminID, client.UpdateUserJSONRequestBody{Email: &evil, EmailVerified: &yes}))(t); r.StatusCode() != 403 {
		t.Fatalf("users:write changed an admin's email: %d %s", r.StatusCode(), r.Body)
	}
	if r := apitest.Must(h.UpdateUserWithResponse(ctx, adminID, client.UpdateUserJSONRequestBody{Disabled: &yes}))(t); r.StatusCode() != 403 {
		t.Fatalf("users:write disabled an admin: %d %s", r.StatusCode(), r.Body)
	}
	if me(t, s, admin.Tokens.AccessToken) != 200 {
		t.Fatal("the admin was affected")
	}
	// An administrator's change of a user's address ends its sessions.
	u := s.NewUser()
	uid := userID(t, s, u.Tokens.AccessToken)
	moved := openapi_types.Email(apitest.NewEmail("moved"))
	if r := apitest.Must(admin.Client.UpdateUserWithResponse(ctx, uid, client.UpdateUserJSONRequestBody{Email: &moved}))(t); r.JSON200 == nil {
		t.Fatalf("admin email change: %s", r.Body)
	}
	if me(t, s, u.Tokens.AccessToken) != 401 {
		t.Fatal("sessions survived an administrator's change of the address")
	}
}

func TestAdmin_CannotBeImpersonatedByAnotherUser(t *testing.T) {
	t.Parallel()
	s := apitest.NewServer(t, apitest.Options{})
	a, b := s.NewUser(), s.NewUser()
	bid := userID(t, s, b.Tokens.AccessToken)
	for _, call := range []struct{ method, path, body string }{
		{"GET", "/api/v1/users/" + bid.String(), ""},
		{"PATCH", "/api/v1/users/" + bid.String(), `{"name":"pwned"}`},
		{"DELETE", "/api/v1/users/" + bid.String(), ""},
		{"PUT", "/api/v1/users/" + bid.String() + "/roles", `{"roles":["admin"]}`},
		{"POST", "/api/v1/users/" + bid.String() + "/sessions/revoke", ""},
		{"POST", "/api/v1/users/" + bid.String() + "/restore", ""},
	} {
		ct := ""
		if call.body != "" {
			ct = "application/json"
		}
		res, body := send(t, s, call.method, call.path, a.Tokens.AccessToken, ct, call.body)
		if res.StatusCode != 403 {
			t.Errorf("%s %s by another user: %d %s", call.method, call.path, res.StatusCode, body)
		}
	}
	if me(t, s, b.Tokens.AccessToken) != 200 {
		t.Fatal("user B was affected")
	}
}

func TestListUsers_EveryUserExactlyOnceWhileOthersComeAndGo(t *testing.T) {
	t.Parallel()
	s := apitest.NewServer(t, apitest.Options{})
	admin := s.NewAdmin()
	pool := apitest.Pool(t, s.DatabaseURL)
	const stable = 10000
	hash := "$argon2id$v=19$m=4096,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U"
	insert := func(n int, prefix string) []uuid.UUID {
		ids := make([]uuid.UUID, n)
		rows := make([][]any, n)
		for i := range rows {
			ids[i], _ = uuid.NewV7()
			rows[i] = []any{ids[i], fmt.Sprintf("%s-%d-%s@example.com", prefix, i, ids[i].String()[:8]), hash}
		}
		if _, err := pool.CopyFrom(ctx, pgx.Identifier{"users"}, []string{"id", "email", "password_hash"}, pgx.CopyFromRows(rows)); err != nil {
			t.Fatal(err)
		}
		return ids
	}
	want := map[uuid.UUID]bool{}
	for _, id := range insert(stable, "stable") {
		want[id] = true
	}
	churn := insert(2000, "churn")

	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // users are created and deleted while the admin pages
		defer wg.Done()
		for i := 0; !stop.Load(); i++ {
			insert(20, fmt.Sprintf("new%d", i))
			if i < len(churn)/20 {
				if _, err := pool.Exec(ctx, `UPDATE users SET deleted_at = now() WHERE id = ANY($1)`, churn[i*20:(i+1)*20]); err != nil {
					t.Error(err)
					return
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	seen := map[uuid.UUID]int{}
	var cursor *string
	pages := 0
	for {
		limit := 100
		res, err := admin.Client.ListUsersWithResponse(ctx, &client.ListUsersParams{Cursor: cursor, Limit: &limit})
		if err != nil {
			t.Fatal(err)
		}
		if res.JSON200 == nil {
			t.Fatalf("page %d: %v %s", pages, err, res.Body)
		}
		pages++
		for _, u := range res.JSON200.Data {
			seen[u.Id]++
		}
		if res.JSON200.Meta.NextCursor == nil {
			// Left out, not null: it has the type of the cursor parameter.
			if strings.Contains(string(res.Body), "next_cursor") {
				t.Fatalf("the last page names next_cursor: %s", res.Body)
			}
			break
		}
		cursor = res.JSON200.Meta.NextCursor
	}
	stop.Store(true)
	wg.Wait()
	for id := range want {
		if seen[id] != 1 {
			t.Fatalf("user %s seen %d times", id, seen[id])
		}
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("user %s seen %d times", id, n)
		}
	}
	if pages < stable/100 {
		t.Fatalf("only %d pages", pages)
	}

	// Cursors are opaque: a tampered one, or one replayed with other filters, is refused.
	limit := 5
	first := apitest.Must(admin.Client.ListUsersWithResponse(ctx, &client.ListUsersParams{Limit: &limit}))(t)
	next := *first.JSON200.Meta.NextCursor
	tampered := next[:len(next)-2] + "AA"
	if tampered == next {
		tampered = next[:len(next)-2] + "BB"
	}
	for name, p := range map[string]*client.ListUsersParams{
		"tampered":      {Cursor: &tampered, Limit: &limit},
		"garbage":       {Cursor: ptr("not a cursor"), Limit: &limit},
		"other filters": {Cursor: &next, Limit: &limit, Email: ptr("stable")},
	} {
		r := apitest.Must(admin.Client.ListUsersWithResponse(ctx, p))(t)
		if r.StatusCode() != 400 || !strings.Contains(string(r.Body), `"cursor"`) {
			t.Errorf("%s cursor: %d %s", name, r.StatusCode(), r.Body)
		}
	}
}

func TestListUsers_Filters(t *testing.T) {
	t.Parallel()
	s := apitest.NewServer(t, apitest.Options{})
	admin := s.NewAdmin()
	a := admin.Client
	prefix := fmt.Sprintf("filt%d", time.Now().UnixNano())
	mk := func(n string) openapi_types.UUID {
		r, err := a.CreateUserWithResponse(ctx, client.CreateUserJSONRequestBody{Email: openapi_types.Email(prefix + n + "@example.com"), Password: apitest.Password})
		if err != nil {
			t.Fatal(err)
		}
		if r.JSON201 == nil {
			t.Fatalf("create: %v %s", err, r.Body)
		}
		return r.JSON201.Data.Id
	}
	active, disabledID, deletedID := mk("a"), mk("b"), mk("c")
	yes := true
	a.UpdateUserWithResponse(ctx, disabledID, client.UpdateUserJSONRequestBody{Disabled: &yes})
	a.DeleteUserWithResponse(ctx, deletedID)
	list := func(p client.ListUsersParams) []openapi_types.UUID {
		p.Email = ptr(strings.ToUpper(prefix))
		r, err := a.ListUsersWithResponse(ctx, &p)
		if err != nil {
			t.Fatal(err)
		}
		if r.JSON200 == nil {
			t.Fatalf("list: %v %s", err, r.Body)
		}
		var ids []openapi_types.UUID
		for _, u := range r.JSON200.Data {
			ids = append(ids, u.Id)
		}
		return ids
	}
	st := func(x client.UserStatus) *client.UserStatus { return &x }
	for name, tc := range map[string]struct {
		p    client.ListUsersParams
		want []openapi_types.UUID
	}{
		"default: not deleted, newest first": {client.ListUsersParams{}, []openapi_types.UUID{disabledID, active}},
		"active":                             {client.ListUsersParams{Status: st(client.UserStatusActive)}, []openapi_types.UUID{active}},
		"disabled":                           {client.ListUsersParams{Status: st(client.UserStatusDisabled)}, []openapi_types.UUID{disabledID}},
		"deleted":                            {client.ListUsersParams{Status: st(client.UserStatusDeleted)}, []openapi_types.UUID{deletedID}},
		"role":                               {client.ListUsersParams{Role: ptr("admin")}, nil},
		"created in the future":              {client.ListUsersParams{CreatedAfter: ptr(time.Now().Add(time.Hour))}, nil},
		"created before now":                 {client.ListUsersParams{CreatedBefore: ptr(time.Now().Add(time.Minute))}, []openapi_types.UUID{disabledID, active}},
	} {
		t.Run(name, func(t *testing.T) {
			if got := list(tc.p); fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("%s: got %v, want %v", name, got, tc.want)
			}
		})
	}
	// A LIKE wildcard in the prefix is a literal character.
	r := apitest.Must(a.ListUsersWithResponse(ctx, &client.ListUsersParams{Email: ptr("%")}))(t)
	if r.JSON200 == nil || len(r.JSON200.Data) != 0 {
		t.Fatalf("%% matched: %s", r.Body)
	}
}

func TestAudit_RecordsSecurityEventsWithActorsAndNoSecrets(t *testing.T) {
	t.Parallel()
	s := apitest.NewServer(t, apitest.Options{})
	admin := s.NewAdmin()
	adminID := userID(t, s, admin.Tokens.AccessToken)
	u := s.NewUser()
	uid := userID(t, s, u.Tokens.AccessToken)
	login(t, s, u.Email, "a wrong password for the log")
	tok := s.Login(u.Email, u.Password)
	s.WithToken(tok.AccessToken).LogoutWithResponse(ctx)
	admin.Client.SetUserRolesWithResponse(ctx, uid, client.SetUserRolesJSONRequestBody{Roles: []string{"user"}})
	yes := true
	admin.Client.UpdateUserWithResponse(ctx, uid, client.UpdateUserJSONRequestBody{Disabled: &yes})
	admin.Client.DeleteUserWithResponse(ctx, uid)
	admin.Client.RestoreUserWithResponse(ctx, uid)

	res, err := admin.Client.ListAuditEventsWithResponse(ctx, &client.ListAuditEventsParams{SubjectId: &uid, Limit: ptr(100)})
	if err != nil {
		t.Fatal(err)
	}
	if res.JSON200 == nil {
		t.Fatalf("audit: %v %s", err, res.Body)
	}
	actors := map[string]*openapi_types.UUID{}
	for _, e := range res.JSON200.Data {
		if e.SubjectId == nil || *e.SubjectId != uid {
			t.Errorf("filter by subject returned %+v", e)
		}
		actors[string(e.Action)] = e.ActorId
		if e.RequestId == nil || e.Ip == nil {
			t.Errorf("%s lacks request id or IP", e.Action)
		}
	}
	for action, actor := range map[string]*openapi_types.UUID{
		"user.registered": &uid, "user.login.failed": nil, "user.login.succeeded": &uid, "session.logout": &uid,
		"user.roles.changed": &adminID, "user.disabled": &adminID, "user.deleted": &adminID, "user.restored": &adminID,
	} {
		got, ok := actors[action]
		if !ok {
			t.Errorf("no %s event: %s", action, res.Body)
			continue
		}
		if (actor == nil) != (got == nil) || (actor != nil && *actor != *got) {
			t.Errorf("%s: actor %v, want %v", action, got, actor)
		}
	}
	raw, _ := json.Marshal(res.JSON200)
	for _, secret := range []string{u.Email, u.Password, "a wrong password for the log", tok.AccessToken, tok.RefreshToken} {
		if strings.Contains(string(raw), secret) {
			t.Errorf("the audit log holds a secret or a raw address: %.10s...", secret)
		}
	}
	// Filters by actor and action, and pagination.
	byAdmin := apitest.Must(admin.Client.ListAuditEventsWithResponse(ctx, &client.ListAuditEventsParams{ActorId: &adminID, Action: ptr(client.AuditAction("user.disabled"))}))(t)
	if byAdmin.JSON200 == nil || len(byAdmin.JSON200.Data) != 1 {
		t.Fatalf("by actor and action: %s", byAdmin.Body)
	}
	page1 := apitest.Must(admin.Client.ListAuditEventsWithResponse(ctx, &client.ListAuditEventsParams{Limit: ptr(2)}))(t)
	if page1.JSON200 == nil || page1.JSON200.Meta.NextCursor == nil {
		t.Fatalf("page 1: %s", page1.Body)
	}
	page2 := apitest.Must(admin.Client.ListAuditEventsWithResponse(ctx, &client.ListAuditEventsParams{Limit: ptr(2), Cursor: page1.JSON200.Meta.NextCursor}))(t)
	if page2.JSON200 == nil || len(page2.JSON200.Data) != 2 || page2.JSON200.Data[0].Id == page1.JSON200.Data[1].Id {
		t.Fatalf("page 2: %s", page2.Body)
	}
}

func TestAudit_RateLimitBlockIsRecorded(t *testing.T) {
	t.Parallel()
	s := apitest.NewServer(t, apitest.Options{Env: map[string]string{"RATE_LIMITS": "login-ip=2/1m"}})
	admin := s.NewAdmin()
	for range 3 {
		login(t, s, apitest.NewEmail("spray"), "whatever it may be")
	}
	r := apitest.Must(admin.Client.ListAuditEventsWithResponse(ctx, &client.ListAuditEventsParams{Action: ptr(client.AuditAction("rate_limit.blocked"))}))(t)
	if r.JSON200 == nil || len(r.JSON200.Data) == 0 || r.JSON200.Data[0].Details.Limit == nil || *r.JSON200.Data[0].Details.Limit != "login-ip" {
		t.Fatalf("no rate-limit event: %s", r.Body)
	}
}

// TestPasswordChecks_AreThrottledLikeLogin: a stolen access token cannot be
// used to guess the password through the change or delete operations.
func TestPasswordChecks_AreThrottledLikeLogin(t *testing.T) {
	t.Parallel()
	s := apitest.NewServer(t, apitest.Options{})
	u := s.NewUser()
	codes := []int{}
	for i := range 7 {
		r := apitest.Must(u.Client.ChangePasswordWithResponse(ctx, client.ChangePasswordJSONRequestBody{CurrentPassword: fmt.Sprintf("guess number %d", i), NewPassword: newPassword}))(t)
		codes = append(codes, r.StatusCode())
	}
	if fmt.Sprint(codes[:5]) != "[403 403 403 403 403]" || codes[5] != 429 {
		t.Fatalf("change-password guesses: %v", codes)
	}
	if r := apitest.Must(u.Client.DeleteMeWithResponse(ctx, client.DeleteMeJSONRequestBody{Password: u.Password}))(t); r.StatusCode() != 429 {
		t.Fatalf("delete during lockout: %d", r.StatusCode())
	}
}

func TestResetToken_DiesWhenTheAccountIsDisabled(t *testing.T) {
	t.Parallel()
	s, mailbox := withSMTP(t, nil)
	admin := s.NewAdmin()
	u := s.NewUser()
	forgot(t, s, u.Email)
	tok := mailbox.WaitForSubject(u.Email, "Reset", 1, 10*time.Second)[0].Token()
	yes := true
	admin.Client.UpdateUserWithResponse(ctx, userID(t, s, u.Tokens.AccessToken), client.UpdateUserJSONRequestBody{Disabled: &yes})
	if r := reset(t, s, tok, newPassword); r.StatusCode() != 400 {
		t.Fatalf("reset on a disabled account: %d", r.StatusCode())
	}
}
