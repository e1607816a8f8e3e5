package httpapi_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	openapi_types "github.com/oapi-codegen/runtime/types"

	"github.com/gatehouse/gatehouse/gen/client"
	"github.com/gatehouse/gatehouse/internal/apitest"
	"github.com/gatehouse/gatehouse/internal/ratelimit"
)

const newPassword = "a brand new passphrase for tests"

func withSMTP(t *testing.T, extra map[string]string) (*apitest.Server, *apitest.SMTP) {
	t.Helper()
	mailbox := apitest.StartSMTP(t)
	return apitest.NewServer(t, apitest.Options{Env: extra, Mailbox: mailbox}), mailbox
}

func forgot(t *testing.T, s *apitest.Server, email string) *client.ForgotPasswordResponse {
	t.Helper()
	res, err := s.Client.ForgotPasswordWithResponse(ctx, client.ForgotPasswordJSONRequestBody{Email: openapi_types.Email(email)})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func reset(t *testing.T, s *apitest.Server, token, password string) *client.ResetPasswordResponse {
	t.Helper()
	s.Secret("reset token", token)
	res, err := s.Client.ResetPasswordWithResponse(ctx, client.ResetPasswordJSONRequestBody{Token: token, Password: password})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestForgotReset_MailedTokenResetsThePasswordAndEndsEverySession(t *testing.T) {
	t.Parallel()
	s, mailbox := withSMTP(t, nil)
	u := s.NewUser()
	other := s.Login(u.Email, u.Password) // a second device

	if res := forgot(t, s, strings.ToUpper(u.Email)); res.StatusCode() != 202 {
		t.Fatalf("forgot: %d %s", res.StatusCode(), res.Body)
	}
	m := mailbox.WaitForSubject(u.Email, "Reset your gatehouse password", 1, 10*time.Second)[0]
	if !strings.Contains(m.Text, "http://gatehouse.test/reset-password?token=") || !strings.Contains(m.HTML, "http://gatehouse.test/reset-password?token=") {
		t.Fatalf("reset mail: %s\n%s", m.Subject, m.Raw)
	}
	tok := m.Token()
	if tok == "" {
		t.Fatalf("no token in the mail:\n%s", m.Raw)
	}
	// Following the link (GET) consumes nothing: the API answers no GET there.
	res, err := http.Get(s.URL + "/api/v1/auth/password/reset?token=" + tok)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET on the reset operation: %d", res.StatusCode)
	}

	if r := reset(t, s, tok, newPassword); r.StatusCode() != 204 {
		t.Fatalf("reset: %d %s", r.StatusCode(), r.Body)
	}
	if r := login(t, s, u.Email, u.Password); r.StatusCode() != 401 {
		t.Fatalf("old password still works: %d", r.StatusCode())
	}
	if r := login(t, s, u.Email, newPassword); r.JSON200 == nil {
		t.Fatalf("new password refused: %d %s", r.StatusCode(), r.Body)
	}
	for _, tk := range []client.Tokens{u.Tokens, other} {
		if me(t, s, tk.AccessToken) != 401 {
			t.Fatal("an access token from before the reset still works")
		}
		if r := refresh(t, s, tk.RefreshToken); r.StatusCode() != 401 {
			t.Fatal("a refresh token from before the reset still works")
		}
	}
	if r := reset(t, s, tok, "yet another new passphrase"); r.StatusCode() != 400 || !strings.Contains(string(r.Body), "invalid_one_time_token") {
		t.Fatalf("token used twice: %d %s", r.StatusCode(), r.Body)
	}
	mailbox.WaitForSubject(u.Email, "password was reset", 1, 10*time.Second)
}

func TestResetToken_SixteenConcurrentUsesExactlyOneSucceeds(t *testing.T) {
	t.Parallel()
	s, mailbox := withSMTP(t, nil)
	u := s.NewUser()
	forgot(t, s, u.Email)
	tok := mailbox.WaitForSubject(u.Email, "Reset", 1, 10*time.Second)[0].Token()
	var wg sync.WaitGroup
	statuses := make([]int, 16)
	for i := range statuses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i] = reset(t, s, tok, newPassword).StatusCode()
		}()
	}
	wg.Wait()
	ok := 0
	for _, st := range statuses {
		switch st {
		case 204:
			ok++
		case 400:
		default:
			t.Errorf("unexpected status %d", st)
		}
	}
	if ok != 1 {
		t.Fatalf("%d resets succeeded with one token, want exactly 1 (%v)", ok, statuses)
	}
}

func TestResetToken_ExpiredSupersededAndExhaustedFail(t *testing.T) {
	t.Parallel()
	s, mailbox := withSMTP(t, nil)
	u := s.NewUser()
	forgot(t, s, u.Email)
	first := mailbox.WaitForSubject(u.Email, "Reset", 1, 10*time.Second)[0].Token()
	forgot(t, s, u.Email)
	second := mailbox.WaitForSubject(u.Email, "Reset", 2, 10*time.Second)[1].Token()
	if r := reset(t, s, first, newPassword); r.StatusCode() != 400 || !strings.Contains(string(r.Body), "replaced by a newer one") {
		t.Fatalf("superseded token: %d %s", r.StatusCode(), r.Body)
	}
	// A refused new password counts against the token; a few and it is spent.
	for range 5 {
		if r := reset(t, s, second, "ten chars!"); r.StatusCode() != 422 || !strings.Contains(string(r.Body), "password_rejected") {
			t.Fatalf("policy: %d %s", r.StatusCode(), r.Body)
		}
	}
	if r := reset(t, s, second, newPassword); r.StatusCode() != 400 {
		t.Fatalf("exhausted token: %d %s", r.StatusCode(), r.Body)
	}
	forgot(t, s, u.Email)
	third := mailbox.WaitForSubject(u.Email, "Reset", 3, 10*time.Second)[2].Token()
	pool := apitest.Pool(t, s.DatabaseURL)
	if _, err := pool.Exec(ctx, `UPDATE one_time_tokens SET expires_at = now() - interval '1 second' WHERE used_at IS NULL`); err != nil {
		t.Fatal(err)
	}
	if r := reset(t, s, third, newPassword); r.StatusCode() != 400 {
		t.Fatalf("expired token: %d %s", r.StatusCode(), r.Body)
	}
	for _, bogus := range []string{"not-a-token", strings.Repeat("A", 43)} {
		if r := reset(t, s, bogus, newPassword); r.StatusCode() != 400 {
			t.Fatalf("bogus token %q: %d", bogus, r.StatusCode())
		}
	}
}

func TestForgot_SMTPDownWhenRequested_DeliveredOnceWhenBack(t *testing.T) {
	t.Parallel()
	s, mailbox := withSMTP(t, nil)
	u := s.NewUser()
	mailbox.WaitFor(u.Email, 1, 10*time.Second) // verification mail of registration
	mailbox.Stop()
	if res := forgot(t, s, u.Email); res.StatusCode() != 202 {
		t.Fatalf("forgot with SMTP down: %d %s", res.StatusCode(), res.Body)
	}
	time.Sleep(700 * time.Millisecond) // a few failed attempts
	mailbox.Start()
	m := mailbox.WaitForSubject(u.Email, "Reset", 1, 20*time.Second)[0]
	time.Sleep(500 * time.Millisecond)
	if n := len(mailbox.WaitFor(u.Email, 3, time.Second)); n != 3 {
		t.Fatalf("%d mails, want exactly 3 (verification, new sign-in, reset)", n)
	}
	if r := reset(t, s, m.Token(), newPassword); r.StatusCode() != 204 {
		t.Fatalf("the token of the delayed mail: %d %s", r.StatusCode(), r.Body)
	}
}

// TestForgot_SameAnswerAndLimitsForKnownAndUnknown compares the two byte for
// byte, request ids aside, through the whole rate-limit window.
func TestForgot_SameAnswerAndLimitsForKnownAndUnknown(t *testing.T) {
	t.Parallel()
	s := apitest.NewServer(t, apitest.Options{})
	known := s.NewUser().Email
	unknown := apitest.NewEmail("nobody")
	answers := func(email string) []string {
		var out []string
		for range ratelimit.Default.ForgotAccount.Rate + 1 {
			r := forgot(t, s, email)
			body := strings.ReplaceAll(string(r.Body), r.HTTPResponse.Header.Get("X-Request-ID"), "")
			out = append(out, r.HTTPResponse.Status+" "+r.HTTPResponse.Header.Get("RateLimit-Policy")+" "+body)
		}
		return out
	}
	a, b := answers(known), answers(unknown)
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("attempt %d differs:\n known %s\nunknown %s", i+1, a[i], b[i])
		}
	}
	if !strings.HasPrefix(a[len(a)-1], "429 ") {
		t.Fatalf("the limit did not apply: %s", a[len(a)-1])
	}
}

func TestChangePassword(t *testing.T) {
	t.Parallel()
	s, mailbox := withSMTP(t, nil)
	u := s.NewUser()
	other := s.Login(u.Email, u.Password)
	change := func(current, next string) *client.ChangePasswordResponse {
		res, err := u.Client.ChangePasswordWithResponse(ctx, client.ChangePasswordJSONRequestBody{CurrentPassword: current, NewPassword: next})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	if r := change("not my password", newPassword); r.StatusCode() != 401 || !strings.Contains(string(r.Body), "invalid_credentials") {
		t.Fatalf("wrong current password: %d %s", r.StatusCode(), r.Body)
	}
	if r := change(u.Password, "tiny"); r.StatusCode() != 422 {
		t.Fatalf("new password too short: %d %s", r.StatusCode(), r.Body)
	}
	if r := change(u.Password, "this has "+u.Email+" inside"); r.StatusCode() != 422 || !strings.Contains(string(r.Body), "contains_email") {
		t.Fatalf("new password with the email: %d %s", r.StatusCode(), r.Body)
	}
	s.Secret("password", newPassword)
	if r := change(u.Password, newPassword); r.StatusCode() != 204 {
		t.Fatalf("change: %d %s", r.StatusCode(), r.Body)
	}
	if me(t, s, other.AccessToken) != 401 || refresh(t, s, other.RefreshToken).StatusCode() != 401 {
		t.Fatal("another session survived the password change")
	}
	// The caller's session continues: its refresh token gives a working pair.
	r := refresh(t, s, u.Tokens.RefreshToken)
	if r.JSON200 == nil || me(t, s, r.JSON200.Data.AccessToken) != 200 {
		t.Fatalf("the caller's session did not continue: %d %s", r.StatusCode(), r.Body)
	}
	if login(t, s, u.Email, u.Password).StatusCode() != 401 || login(t, s, u.Email, newPassword).JSON200 == nil {
		t.Fatal("the new password is not the one that works")
	}
	mailbox.WaitForSubject(u.Email, "password was changed", 1, 10*time.Second)
}

func TestEmailVerification(t *testing.T) {
	t.Parallel()
	s, mailbox := withSMTP(t, map[string]string{"REQUIRE_VERIFIED_EMAIL": "true"})
	email := apitest.NewEmail("verify")
	s.Register(email, apitest.Password)
	first := mailbox.WaitFor(email, 1, 10*time.Second)[0]
	if !strings.Contains(first.Subject, "Confirm your email address") || !strings.Contains(first.Text, "http://gatehouse.test/verify-email?token=") {
		t.Fatalf("verification mail: %s", first.Subject)
	}
	// Verification required: a right password gets the distinct problem, a wrong one the usual.
	if r := login(t, s, email, apitest.Password); r.StatusCode() != 403 || !strings.Contains(string(r.Body), "email_not_verified") {
		t.Fatalf("unverified login: %d %s", r.StatusCode(), r.Body)
	}
	if r := login(t, s, email, "a wrong password here"); r.StatusCode() != 401 {
		t.Fatalf("wrong password on an unverified account: %d", r.StatusCode())
	}
	resend := func(e string) int {
		res, err := s.Client.ResendVerificationWithResponse(ctx, client.ResendVerificationJSONRequestBody{Email: openapi_types.Email(e)})
		if err != nil {
			t.Fatal(err)
		}
		return res.StatusCode()
	}
	if resend(email) != 202 || resend(apitest.NewEmail("nobody")) != 202 {
		t.Fatal("resend must answer 202 for every address")
	}
	second := mailbox.WaitFor(email, 2, 10*time.Second)[1]
	verify := func(tok string) *client.VerifyEmailResponse {
		s.Secret("verification token", tok)
		res, err := s.Client.VerifyEmailWithResponse(ctx, client.VerifyEmailJSONRequestBody{Token: tok})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	if r := verify(first.Token()); r.StatusCode() != 400 {
		t.Fatalf("superseded verification token: %d %s", r.StatusCode(), r.Body)
	}
	if r := verify(second.Token()); r.StatusCode() != 204 {
		t.Fatalf("verify: %d %s", r.StatusCode(), r.Body)
	}
	if r := verify(second.Token()); r.StatusCode() != 400 {
		t.Fatalf("verification token used twice: %d", r.StatusCode())
	}
	tok := s.Login(email, apitest.Password)
	got, _ := s.WithToken(tok.AccessToken).GetMeWithResponse(ctx)
	if got.JSON200 == nil || !got.JSON200.Data.EmailVerified || got.JSON200.Data.EmailVerifiedAt == nil {
		t.Fatalf("me after verification: %s", got.Body)
	}
	// Verified accounts get no more verification mails.
	if resend(email) != 202 {
		t.Fatal("resend")
	}
	time.Sleep(300 * time.Millisecond)
	if n := len(mailbox.WaitFor(email, 3, time.Second)); n != 3 {
		t.Fatalf("%d mails after resend to a verified address, want 3 (two verifications, a new sign-in)", n)
	}
}

func TestRegister_TakenAddressMailsItsOwner(t *testing.T) {
	t.Parallel()
	s, mailbox := withSMTP(t, nil)
	u := s.NewUser()
	s.Register(strings.ToUpper(u.Email), "someone else's passphrase")
	m := mailbox.WaitForSubject(u.Email, "Someone tried to register with your address", 1, 10*time.Second)[0]
	if strings.Contains(m.Raw, "someone else's passphrase") {
		t.Fatalf("owner mail: %s", m.Subject)
	}
	if r := login(t, s, u.Email, u.Password); r.JSON200 == nil {
		t.Fatal("the owner's password changed")
	}
}

// TestMail_RefusedRecipientNeverLogged: an SMTP refusal quotes the address;
// the retries River logs must not.
func TestMail_RefusedRecipientNeverLogged(t *testing.T) {
	t.Parallel()
	mailbox := apitest.StartSMTP(t)
	mailbox.SetReject(true)
	s := apitest.NewServer(t, apitest.Options{Mailbox: mailbox})
	email := apitest.NewEmail("refused")
	s.Register(email, apitest.Password) // the verification mail is refused, and retried
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(s.Logs(), "Recipient address rejected") {
		if time.Now().After(deadline) {
			t.Fatalf("no delivery attempt logged:\n%s", s.Logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The log scan at the end of the test fails if the address appears.
}
