package httpapi_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	openapi_types "github.com/oapi-codegen/runtime/types"

	"github.com/gatehouse/gatehouse/gen/client"
	"github.com/gatehouse/gatehouse/internal/apitest"
	"github.com/gatehouse/gatehouse/internal/ratelimit"
)

// TestLockout_AGuesserOn200AddressesCannotLockOutAKnownDevice: the owner's
// known device logs in while a stranger hammers the account from 200
// addresses; a new client of the owner waits like the stranger; the
// stranger's wrong guesses stay within the budget.
func TestLockout_AGuesserOn200AddressesCannotLockOutAKnownDevice(t *testing.T) {
	t.Parallel()
	s := apitest.NewServer(t, apitest.Options{RateLimits: generous(), Env: map[string]string{"TRUSTED_PROXIES": "127.0.0.1/32,::1/128"}})
	u := s.NewUser()
	device := deviceOf(t, loginFrom(t, s, "198.51.100.7", u.Email, u.Password, ""))

	checked, start := 0, time.Now()
	for i := range 200 {
		r := loginFrom(t, s, fmt.Sprintf("203.0.113.%d", i%250+1), u.Email, fmt.Sprintf("guess number %d of the stranger", i), "")
		switch r.StatusCode() {
		case 401:
			checked++
		case 429:
			if !strings.Contains(string(r.Body), "account_locked") {
				t.Fatalf("guess %d: %s", i, r.Body)
			}
		default:
			t.Fatalf("guess %d: %d %s", i, r.StatusCode(), r.Body)
		}
		if i == 100 { // in the middle of the attack
			if r := loginFrom(t, s, "198.51.100.7", u.Email, u.Password, device); r.JSON200 == nil {
				t.Fatalf("the owner's known device was locked out: %d %s", r.StatusCode(), r.Body)
			}
		}
	}
	// 5 free guesses, then one per delay (1 s, 2 s, 4 s ...): within t
	// seconds at most 5 + log2(t+1) + 1, however many addresses.
	if bound := 5 + int(math.Log2(time.Since(start).Seconds()+1)) + 1; checked < 5 || checked > bound {
		t.Fatalf("%d of the stranger's 200 guesses were checked in %s, want the 5 free ones and at most %d", checked, time.Since(start), bound)
	}
	if r := loginFrom(t, s, "198.51.100.7", u.Email, u.Password, device); r.JSON200 == nil {
		t.Fatalf("the owner's known device after the attack: %d %s", r.StatusCode(), r.Body)
	}
	// A client the owner never used waits like every unknown client: right
	// after a refusal that has seconds to run (on a slow machine the loop
	// above may end just as a delay does).
	for {
		r := loginFrom(t, s, "203.0.113.77", u.Email, "one more guess of the stranger", "")
		if wait, _ := strconv.Atoi(r.HTTPResponse.Header.Get("Retry-After")); r.StatusCode() == 429 && wait >= 2 {
			break
		}
	}
	if r := loginFrom(t, s, "192.0.2.1", u.Email, u.Password, ""); r.StatusCode() != 429 || !strings.Contains(string(r.Body), "account_locked") {
		t.Fatalf("an unknown client during the attack: %d %s", r.StatusCode(), r.Body)
	}
	// A device token is bound to its account.
	other := s.NewUser()
	for i := range 6 {
		loginFrom(t, s, "203.0.113.9", other.Email, fmt.Sprintf("another guess %d", i), "")
	}
	if r := loginFrom(t, s, "198.51.100.7", other.Email, other.Password, device); r.StatusCode() != 429 {
		t.Fatalf("a device token of another account opened the throttle: %d %s", r.StatusCode(), r.Body)
	}
}

// TestLockout_AStolenDeviceTokenGetsTenGuesses: failures from a known device
// count in its own bucket; after ten it is no longer trusted.
func TestLockout_AStolenDeviceTokenGetsTenGuesses(t *testing.T) {
	t.Parallel()
	s := apitest.NewServer(t, apitest.Options{RateLimits: generous()})
	u := s.NewUser()
	device := deviceOf(t, login(t, s, u.Email, u.Password))
	codes := []int{}
	for i := range 16 {
		codes = append(codes, loginFrom(t, s, "127.0.0.1", u.Email, fmt.Sprintf("thief's guess %d", i), device).StatusCode())
	}
	want := "[401 401 401 401 401 401 401 401 401 401 401 401 401 401 401 429]" // 10 on the device, then 5 free ones shared
	if fmt.Sprint(codes) != want {
		t.Fatalf("guesses with a stolen device token: %v, want %s", codes, want)
	}
}

// TestLogin_ParallelRightPasswordsNeverCountAsFailures: thirty logins with
// the right password at once all succeed, and none of them is counted.
func TestLogin_ParallelRightPasswordsNeverCountAsFailures(t *testing.T) {
	t.Parallel()
	s := apitest.NewServer(t, apitest.Options{RateLimits: generous()})
	u := s.NewUser()
	var wg sync.WaitGroup
	codes := make([]int, 30)
	for i := range codes {
		wg.Go(func() { codes[i] = login(t, s, u.Email, u.Password).StatusCode() })
	}
	wg.Wait()
	for i, c := range codes {
		if c != 200 {
			t.Fatalf("parallel login %d with the right password: %d (all: %v)", i, c, codes)
		}
	}
	// The five free failures are all still there.
	for i := range 5 {
		if r := login(t, s, u.Email, fmt.Sprintf("wrong one %d", i)); r.StatusCode() != 401 {
			t.Fatalf("wrong password %d after the parallel logins: %d %s", i, r.StatusCode(), r.Body)
		}
	}
}

// TestPasswordRecheck_StrangersCannotBlockIt: a stranger locking the
// account's password login does not stop its signed-in owner from
// changing the password or deleting the account.
func TestPasswordRecheck_StrangersCannotBlockIt(t *testing.T) {
	t.Parallel()
	s := apitest.NewServer(t, apitest.Options{RateLimits: generous()})
	u := s.NewUser()
	for i := range 8 {
		login(t, s, u.Email, fmt.Sprintf("stranger's guess %d", i))
	}
	if r := login(t, s, u.Email, u.Password); r.StatusCode() != 429 {
		t.Fatalf("the login should be locked for unknown clients: %d", r.StatusCode())
	}
	r, err := u.Client.ChangePasswordWithResponse(ctx, client.ChangePasswordJSONRequestBody{CurrentPassword: u.Password, NewPassword: newPassword})
	if err != nil {
		t.Fatal(err)
	}
	if r.StatusCode() != 200 {
		t.Fatalf("change password during a stranger's attack: %v %d %s", err, r.StatusCode(), r.Body)
	}
}

// TestLockout_OwnerIsToldOncePerEpisodeAndOfNewClients: a "someone is trying"
// mail once per series of failures, and a "new sign-in" mail for each login
// without a device token, none with one.
func TestLockout_OwnerIsToldOncePerEpisodeAndOfNewClients(t *testing.T) {
	t.Parallel()
	mailbox := apitest.StartSMTP(t)
	s := apitest.NewServer(t, apitest.Options{RateLimits: generous(), Mailbox: mailbox})
	u := s.NewUser()          // unverified: no notices yet
	s.VerifyFromMail(u.Email) // notices go to verified addresses only
	login(t, s, u.Email, u.Password)
	device := deviceOf(t, login(t, s, u.Email, u.Password))
	loginFrom(t, s, "127.0.0.1", u.Email, u.Password, device) // known: no mail
	mailbox.WaitForSubject(u.Email, "New sign-in", 2, 10*time.Second)
	for i := range 12 {
		login(t, s, u.Email, fmt.Sprintf("wrong password %d", i))
	}
	mailbox.WaitForSubject(u.Email, "Someone is trying to sign in", 1, 10*time.Second)
	time.Sleep(500 * time.Millisecond) // time for any extra mail to arrive
	if n := count(mailbox, u.Email, "Someone is trying"); n != 1 {
		t.Fatalf("%d guessing alerts for one series, want 1", n)
	}
	if n := count(mailbox, u.Email, "New sign-in"); n != 2 {
		t.Fatalf("%d new sign-in mails, want 2 (the login with a device token sends none)", n)
	}
	m := mailbox.WaitForSubject(u.Email, "New sign-in", 2, time.Second)[0]
	if !strings.Contains(m.Text, "127.0.0.1") || !strings.Contains(m.Text, "Go-http-client") {
		t.Fatalf("the new sign-in mail should say where from:\n%s", m.Text)
	}
}

// TestLockout_KeysShareAHashTagAndAreKeyed: the keys one script touches
// share a Redis Cluster hash tag, and no key holds a bare SHA-256 of the
// email (which anyone reading Redis could test addresses against).
func TestLockout_KeysShareAHashTagAndAreKeyed(t *testing.T) {
	t.Parallel()
	s := apitest.NewServer(t, apitest.Options{})
	email := apitest.NewEmail("keys")
	for i := range 3 {
		login(t, s, email, fmt.Sprintf("wrong password %d", i))
	}
	keys, err := s.Redis.Client().Keys(ctx, "gatehouse:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(email))
	bare := hex.EncodeToString(sum[:16])
	var lockout []string
	for _, k := range keys {
		if strings.Contains(k, bare) {
			t.Fatalf("Redis key %q holds a bare hash of the email", k)
		}
		if strings.HasPrefix(k, "gatehouse:lo:") {
			lockout = append(lockout, k)
		}
	}
	if len(lockout) == 0 {
		t.Fatalf("no lockout keys among %v", keys)
	}
	for _, k := range lockout {
		if !strings.HasPrefix(k, "gatehouse:lo:{") || !strings.Contains(k, "}:") {
			t.Fatalf("lockout key %q has no hash tag", k)
		}
	}
}

// TestRateLimit_ABlockedFloodWritesOneAuditEvent: a flood of refused
// requests writes one audit event per limit key and window, and a lockout
// one per episode.
func TestRateLimit_ABlockedFloodWritesOneAuditEvent(t *testing.T) {
	t.Parallel()
	limits := ratelimit.Default
	limits.LoginIP.Rate = 2
	s := apitest.NewServer(t, apitest.Options{RateLimits: &limits})
	for i := range 20 {
		login(t, s, apitest.NewEmail("flood"), fmt.Sprintf("flood %d", i))
	}
	lim := ratelimit.Default
	lim.LoginIP.Rate, lim.LoginAccount.Rate = 1000, 1000
	s2 := apitest.NewServer(t, apitest.Options{RateLimits: &lim})
	email := apitest.NewEmail("locked")
	for i := range 20 {
		login(t, s2, email, fmt.Sprintf("guess %d", i))
	}
	for _, c := range []struct {
		s      *apitest.Server
		action string
	}{{s, "rate_limit.blocked"}, {s2, "user.login.locked"}} {
		var n int
		if err := apitest.Pool(t, c.s.DatabaseURL).QueryRow(ctx, `SELECT count(*) FROM audit_events WHERE action = $1`, c.action).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Errorf("%d %s audit events for one flood, want 1", n, c.action)
		}
	}
}

// TestRefresh_ReplayWithinGraceGetsTheSamePair: two tabs refreshing with
// the same token both succeed with the same pair; the session stays one
// chain.
func TestRefresh_ReplayWithinGraceGetsTheSamePair(t *testing.T) {
	t.Parallel()
	s := apitest.NewServer(t, apitest.Options{})
	u := s.NewUser()
	var wg sync.WaitGroup
	res := make([]*client.RefreshTokensResponse, 6)
	for i := range res {
		wg.Go(func() { res[i] = refresh(t, s, u.Tokens.RefreshToken) })
	}
	wg.Wait()
	for i, r := range res {
		if r.JSON200 == nil {
			t.Fatalf("refresh %d: %d %s", i, r.StatusCode(), r.Body)
		}
		if r.JSON200.Data != res[0].JSON200.Data {
			t.Fatalf("refresh %d got another pair:\n%+v\n%+v", i, r.JSON200.Data, res[0].JSON200.Data)
		}
	}
	var live int
	if err := apitest.Pool(t, s.DatabaseURL).QueryRow(ctx, `SELECT count(*) FROM refresh_tokens rt JOIN sessions s ON s.id = rt.session_id
		JOIN users u ON u.id = s.user_id WHERE u.email = $1 AND rt.used_at IS NULL`, u.Email).Scan(&live); err != nil {
		t.Fatal(err)
	}
	if live != 1 {
		t.Fatalf("%d live refresh tokens after six replays, want one chain", live)
	}
	// The chain goes on: the successor works once.
	next := res[0].JSON200.Data
	if r := refresh(t, s, next.RefreshToken); r.JSON200 == nil {
		t.Fatalf("the successor: %d %s", r.StatusCode(), r.Body)
	}
	if me(t, s, next.AccessToken) != 200 {
		t.Fatal("the successor's access token is refused")
	}
}

// TestCursor_ForgedWithoutTheSecretIsRefused: a cursor built with a bare
// hash (anyone can compute one) is refused.
func TestCursor_ForgedWithoutTheSecretIsRefused(t *testing.T) {
	t.Parallel()
	s := apitest.NewServer(t, apitest.Options{})
	u := s.NewUser()
	me, err := u.Client.GetMeWithResponse(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if me.JSON200 == nil {
		t.Fatal(err)
	}
	id := uuid.UUID(me.JSON200.Data.Id)
	// Yesterday's scheme: SHA-256 of a constant, the scope and the id.
	h := sha256.New()
	h.Write([]byte("gatehouse cursor v1\x00sessions:" + id.String() + "\x00"))
	h.Write(id[:])
	forged := base64.RawURLEncoding.EncodeToString(append(id[:], h.Sum(nil)[:8]...))
	r, err := u.Client.ListMySessionsWithResponse(ctx, &client.ListMySessionsParams{Cursor: &forged})
	if err != nil {
		t.Fatal(err)
	}
	if r.StatusCode() != 400 {
		t.Fatalf("a forged cursor: %d %s", r.StatusCode(), r.Body)
	}
}

// TestCacheControl_AccountDataIsNeverStored: every response with account
// data says no-store.
func TestCacheControl_AccountDataIsNeverStored(t *testing.T) {
	t.Parallel()
	s := apitest.NewServer(t, apitest.Options{})
	admin := s.NewAdmin()
	for name, do := range map[string]func() (*http.Response, error){
		"GET /users/me": func() (*http.Response, error) {
			r, err := admin.Client.GetMeWithResponse(ctx)
			return r.HTTPResponse, err
		},
		"GET /users/me/sessions": func() (*http.Response, error) {
			r, err := admin.Client.ListMySessionsWithResponse(ctx, nil)
			return r.HTTPResponse, err
		},
		"GET /users": func() (*http.Response, error) {
			r, err := admin.Client.ListUsersWithResponse(ctx, nil)
			return r.HTTPResponse, err
		},
		"GET /roles": func() (*http.Response, error) {
			r, err := admin.Client.ListRolesWithResponse(ctx)
			return r.HTTPResponse, err
		},
		"GET /audit-events": func() (*http.Response, error) {
			r, err := admin.Client.ListAuditEventsWithResponse(ctx, nil)
			return r.HTTPResponse, err
		},
	} {
		res, err := do()
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode != 200 || res.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: %d, Cache-Control %q", name, res.StatusCode, res.Header.Get("Cache-Control"))
		}
	}
}

// TestEmailChange_IsThrottledAndToldToTheOldAddress: requests are limited
// per account and per address asked for; the old address hears of the
// request and of the change, with a link that undoes it; completing the
// change ends the other sessions, undoing it ends every session.
func TestEmailChange_IsThrottledAndToldToTheOldAddress(t *testing.T) {
	t.Parallel()
	s, mailbox := withSMTP(t, nil)
	u := s.NewUser()
	s.VerifyFromMail(u.Email) // notices go to verified addresses only
	other := s.Login(u.Email, u.Password)
	change := func(c *client.ClientWithResponses, to string) *client.UpdateMeResponse {
		t.Helper()
		s.Secret("raw email", to)
		e := openapi_types.Email(to)
		r, err := c.UpdateMeWithResponse(ctx, client.UpdateMeJSONRequestBody{Email: &e, CurrentPassword: &u.Password})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	// Per address asked for: 3 an hour, whoever asks.
	target := apitest.NewEmail("target")
	for i := range 3 {
		if r := change(u.Client, target); r.StatusCode() != 200 {
			t.Fatalf("change %d: %d %s", i, r.StatusCode(), r.Body)
		}
	}
	r := change(u.Client, target)
	h := r.HTTPResponse.Header
	if r.StatusCode() != 429 || !strings.Contains(string(r.Body), "rate_limited") || h.Get("Retry-After") == "" ||
		h.Get("RateLimit-Policy") != `"email-change-address";q=3;w=3600` {
		t.Fatalf("fourth change to one address: %d %v %s", r.StatusCode(), h, r.Body)
	}
	// Per account: 5 requests an hour (the refused one above counted too).
	for i := range 1 {
		if r := change(u.Client, apitest.NewEmail("elsewhere")); r.StatusCode() != 200 {
			t.Fatalf("change %d: %d %s", i, r.StatusCode(), r.Body)
		}
	}
	if r := change(u.Client, apitest.NewEmail("elsewhere")); r.StatusCode() != 429 || r.HTTPResponse.Header.Get("RateLimit-Policy") != `"email-change-account";q=5;w=3600` {
		t.Fatalf("sixth change of one account: %d %s", r.StatusCode(), r.Body)
	}
	// Confirmations went out three times to the target, never more.
	mailbox.WaitForSubject(target, "Confirm your new email address", 3, 10*time.Second)
	notice := mailbox.WaitForSubject(u.Email, "change of your gatehouse email address was requested", 4, 10*time.Second)[0]
	if !strings.Contains(notice.Text, target) || !strings.Contains(notice.Text, "http://gatehouse.test/forgot-password") {
		t.Fatalf("the notice to the old address:\n%s", notice.Text)
	}

	// Completing a change: the old address is told, with an undo link.
	u = s.NewUser()
	s.VerifyFromMail(u.Email)
	other = s.Login(u.Email, u.Password)
	moved := apitest.NewEmail("moved")
	if r := change(u.Client, moved); r.StatusCode() != 200 {
		t.Fatalf("change: %d %s", r.StatusCode(), r.Body)
	}
	confirm := mailbox.WaitForSubject(moved, "Confirm your new email address", 1, 10*time.Second)[0]
	s.Secret("email change token", confirm.Token())
	if v := apitest.Must(s.Client.VerifyEmailWithResponse(ctx, client.VerifyEmailJSONRequestBody{Token: confirm.Token()}))(t); v.StatusCode() != 204 {
		t.Fatalf("confirm: %d %s", v.StatusCode(), v.Body)
	}
	if refresh(t, s, other.RefreshToken).StatusCode() != 401 || me(t, s, other.AccessToken) != 401 {
		t.Fatal("the other session survived the change")
	}
	mine := refresh(t, s, u.Tokens.RefreshToken)
	if mine.JSON200 == nil {
		t.Fatalf("the session that asked for the change: %d %s", mine.StatusCode(), mine.Body)
	}
	done := mailbox.WaitForSubject(u.Email, "email address was changed", 1, 10*time.Second)[0]
	if !strings.Contains(done.Text, "http://gatehouse.test/undo-email-change?token=") || done.Token() == "" {
		t.Fatalf("the change notice to the old address:\n%s", done.Text)
	}
	// Whoever asked keeps a session and knows the password: changing it, or
	// registering the freed address, must not defeat the undo.
	attacker := s.WithToken(mine.JSON200.Data.AccessToken)
	changed, err := attacker.ChangePasswordWithResponse(ctx, client.ChangePasswordJSONRequestBody{CurrentPassword: u.Password, NewPassword: newPassword})
	if err != nil {
		t.Fatal(err)
	}
	if changed.JSON200 == nil {
		t.Fatalf("change password after the email change: %v %s", err, changed.Body)
	}
	mine = refresh(t, s, changed.JSON200.Data.RefreshToken)
	if mine.JSON200 == nil {
		t.Fatalf("refresh after the password change: %s", mine.Body)
	}
	res, err := s.Client.RegisterWithResponse(ctx, client.RegisterJSONRequestBody{Email: openapi_types.Email(u.Email), Password: "another passphrase for the freed address"})
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode() != 202 {
		t.Fatalf("register the old address: %v %d", err, res.StatusCode())
	}
	if login(t, s, u.Email, "another passphrase for the freed address").StatusCode() != 401 {
		t.Fatal("the old address was taken by a new account during the undo window")
	}
	// Undoing it from the old address: the address is back, every session
	// ends, and a reset link follows (the password may have been changed).
	s.Secret("undo token", done.Token())
	if v := apitest.Must(s.Client.VerifyEmailWithResponse(ctx, client.VerifyEmailJSONRequestBody{Token: done.Token()}))(t); v.StatusCode() != 204 {
		t.Fatalf("undo: %d %s", v.StatusCode(), v.Body)
	}
	if me(t, s, mine.JSON200.Data.AccessToken) != 401 || refresh(t, s, mine.JSON200.Data.RefreshToken).StatusCode() != 401 {
		t.Fatal("a session survived the undo")
	}
	resetMail := mailbox.WaitForSubject(u.Email, "Reset your gatehouse password", 1, 10*time.Second)[0]
	if r := reset(t, s, resetMail.Token(), "the owner's passphrase once more"); r.StatusCode() != 204 {
		t.Fatalf("reset after the undo: %d %s", r.StatusCode(), r.Body)
	}
	back := s.Login(u.Email, "the owner's passphrase once more")
	got := apitest.Must(s.WithToken(back.AccessToken).GetMeWithResponse(ctx))(t)
	if got.JSON200 == nil || string(got.JSON200.Data.Email) != u.Email || !got.JSON200.Data.EmailVerified {
		t.Fatalf("after the undo: %s", got.Body)
	}
	if v := apitest.Must(s.Client.VerifyEmailWithResponse(ctx, client.VerifyEmailJSONRequestBody{Token: done.Token()}))(t); v.StatusCode() != 400 {
		t.Fatalf("the undo link works twice: %d", v.StatusCode())
	}
}

// TestEmailChange_APasswordChangeCancelsAChangeNotYetMailed: a change asked
// for while mail is down, then a password change (as the notice to the old
// address advises): the confirmation never goes out.
func TestEmailChange_APasswordChangeCancelsAChangeNotYetMailed(t *testing.T) {
	t.Parallel()
	s, mailbox := withSMTP(t, nil)
	u := s.NewUser()
	s.VerifyFromMail(u.Email) // notices go to verified addresses only
	waitMailsSettled(t, s)
	mailbox.Stop()
	moved := apitest.NewEmail("hijack")
	s.Secret("raw email", moved)
	e := openapi_types.Email(moved)
	if r, err := u.Client.UpdateMeWithResponse(ctx, client.UpdateMeJSONRequestBody{Email: &e, CurrentPassword: &u.Password}); err != nil || r.StatusCode() != 200 {
		t.Fatalf("change: %v %d", err, r.StatusCode())
	}
	time.Sleep(500 * time.Millisecond) // a few failed deliveries
	if r, err := u.Client.ChangePasswordWithResponse(ctx, client.ChangePasswordJSONRequestBody{CurrentPassword: u.Password, NewPassword: newPassword}); err != nil || r.StatusCode() != 200 {
		t.Fatalf("change password: %v %d", err, r.StatusCode())
	}
	// An attempt that checked the account just before the change may be
	// dialling the (stopped) server now: let it fail before the server is back.
	time.Sleep(time.Second)
	mailbox.Start()
	mailbox.WaitForSubject(u.Email, "Your gatehouse password was changed", 1, 20*time.Second)
	time.Sleep(time.Second)
	if n := count(mailbox, moved, "Confirm your new email address"); n != 0 {
		t.Fatalf("the confirmation of a change asked for before the password change went out (%d)", n)
	}
}

// TestDeviceToken_ForgottenWithTheAccountAndItsPassword: a token collected
// by an earlier holder of the address, or from before a password change,
// is an unknown client's.
func TestDeviceToken_ForgottenWithTheAccountAndItsPassword(t *testing.T) {
	t.Parallel()
	s := apitest.NewServer(t, apitest.Options{RateLimits: generous()})
	guesses := func(email, device string) []int {
		var codes []int
		for i := range 6 {
			codes = append(codes, loginFrom(t, s, "127.0.0.1", email, fmt.Sprintf("guess %d", i), device).StatusCode())
		}
		return codes
	}
	const unknown = "[401 401 401 401 401 429]"

	// Farmed: register the address first, collect a token, delete the account.
	email := apitest.NewEmail("farmed")
	s.Register(email, apitest.Password)
	farmed := deviceOf(t, login(t, s, email, apitest.Password))
	early := s.WithToken(s.Login(email, apitest.Password).AccessToken)
	if r, err := early.DeleteMeWithResponse(ctx, client.DeleteMeJSONRequestBody{Password: apitest.Password}); err != nil || r.StatusCode() != 204 {
		t.Fatalf("delete: %v %d", err, r.StatusCode())
	}
	s.Register(email, "the real owner's passphrase")
	if got := fmt.Sprint(guesses(email, farmed)); got != unknown {
		t.Fatalf("guesses with a farmed device token: %s, want %s", got, unknown)
	}

	// From before a password change.
	u := s.NewUser()
	old := deviceOf(t, login(t, s, u.Email, u.Password))
	if r, err := u.Client.ChangePasswordWithResponse(ctx, client.ChangePasswordJSONRequestBody{CurrentPassword: u.Password, NewPassword: newPassword}); err != nil || r.StatusCode() != 200 {
		t.Fatalf("change password: %v %d", err, r.StatusCode())
	}
	if got := fmt.Sprint(guesses(u.Email, old)); got != unknown {
		t.Fatalf("guesses with a device token from before the password change: %s, want %s", got, unknown)
	}
}

// TestNotices_NeverToAnUnverifiedAddress: someone who registers another
// person's address cannot use the account to mail it at will.
func TestNotices_NeverToAnUnverifiedAddress(t *testing.T) {
	t.Parallel()
	s, mailbox := withSMTP(t, nil)
	u := s.NewUser() // registered with someone else's address, never verified
	for range 3 {
		login(t, s, u.Email, u.Password)
	}
	if r, err := u.Client.ChangePasswordWithResponse(ctx, client.ChangePasswordJSONRequestBody{CurrentPassword: u.Password, NewPassword: newPassword}); err != nil || r.StatusCode() != 200 {
		t.Fatalf("change password: %v", err)
	}
	for i := range 6 {
		login(t, s, u.Email, fmt.Sprintf("wrong %d", i))
	}
	mailbox.WaitForSubject(u.Email, "Confirm your email address", 1, 10*time.Second)
	time.Sleep(time.Second)
	if got := mailbox.WaitFor(u.Email, 1, time.Second); len(got) != 1 {
		t.Fatalf("%d mails to an unverified address, want only its verification", len(got))
	}
}

// TestLockout_DeviceBucketsBelowTheBlockLiveADay: a device's failures are
// forgotten a day after the last one unless it got blocked, so failed
// logins from ever new devices cannot fill Redis for 180 days.
func TestLockout_DeviceBucketsBelowTheBlockLiveADay(t *testing.T) {
	t.Parallel()
	s := apitest.NewServer(t, apitest.Options{RateLimits: generous()})
	u := s.NewUser()
	device := deviceOf(t, login(t, s, u.Email, u.Password))
	loginFrom(t, s, "127.0.0.1", u.Email, "one wrong password", device)
	keys, err := s.Redis.Client().Keys(ctx, "gatehouse:lo:*:d:*").Result()
	if err != nil || len(keys) == 0 {
		t.Fatalf("no device bucket: %v %v", keys, err)
	}
	for _, k := range keys {
		if ttl := s.Redis.Client().PTTL(ctx, k).Val(); ttl <= 0 || ttl > 24*time.Hour {
			t.Errorf("device bucket %s lives %s, want at most a day", k, ttl)
		}
	}
}
