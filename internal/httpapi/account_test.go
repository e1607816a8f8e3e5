package httpapi_test

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	openapi_types "github.com/oapi-codegen/runtime/types"

	"github.com/gatehouse/gatehouse/gen/client"
	"github.com/gatehouse/gatehouse/internal/apitest"
	"github.com/gatehouse/gatehouse/internal/ratelimit"
)

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
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, s.URL+"/api/v1/auth/password/reset?token="+tok, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
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
	waitMailsSettled(t, s)
	mailbox.Stop()
	if res := forgot(t, s, u.Email); res.StatusCode() != 202 {
		t.Fatalf("forgot with SMTP down: %d %s", res.StatusCode(), res.Body)
	}
	time.Sleep(700 * time.Millisecond) // a few failed attempts
	mailbox.Start()
	m := mailbox.WaitForSubject(u.Email, "Reset", 1, 20*time.Second)[0]
	time.Sleep(500 * time.Millisecond)
	if got := mailbox.WaitFor(u.Email, 2, time.Second); len(got) != 2 {
		var subjects []string
		for _, m := range got {
			subjects = append(subjects, m.Subject)
		}
		t.Fatalf("%d mails %q, want exactly 2 (verification, reset)", len(got), subjects)
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
	s.VerifyFromMail(u.Email) // notices go to verified addresses only
	other := s.Login(u.Email, u.Password)
	change := func(current, next string) *client.ChangePasswordResponse {
		res, err := u.Client.ChangePasswordWithResponse(ctx, client.ChangePasswordJSONRequestBody{CurrentPassword: current, NewPassword: next})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	// 403, not 401: the token is good, and "on 401 refresh and retry" must not fire.
	if r := change("not my password", newPassword); r.StatusCode() != 403 || !strings.Contains(string(r.Body), "invalid_credentials") || r.HTTPResponse.Header.Get("WWW-Authenticate") != "" {
		t.Fatalf("wrong current password: %d %v %s", r.StatusCode(), r.HTTPResponse.Header, r.Body)
	}
	if r := change(u.Password, "tiny"); r.StatusCode() != 422 {
		t.Fatalf("new password too short: %d %s", r.StatusCode(), r.Body)
	}
	// The rejection names the field of this request, not register's "password".
	if r := change(u.Password, "this has "+u.Email+" inside"); r.StatusCode() != 422 || !strings.Contains(string(r.Body), `"code":"contains_email","field":"new_password"`) {
		t.Fatalf("new password with the email: %d %s", r.StatusCode(), r.Body)
	}
	s.Secret("password", newPassword)
	changed := change(u.Password, newPassword)
	if changed.JSON200 == nil || changed.HTTPResponse.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("change: %d %s", changed.StatusCode(), changed.Body)
	}
	s.Secret("access token", changed.JSON200.Data.AccessToken)
	s.Secret("refresh token", changed.JSON200.Data.RefreshToken)
	// The refresh token the caller held is spent at once (no grace period
	// hands out another pair for it), and presenting it ends nothing.
	if r := refresh(t, s, u.Tokens.RefreshToken); r.StatusCode() != 401 {
		t.Fatalf("the refresh token held before the change: %d %s", r.StatusCode(), r.Body)
	}
	if me(t, s, other.AccessToken) != 401 || refresh(t, s, other.RefreshToken).StatusCode() != 401 {
		t.Fatal("another session survived the password change")
	}
	// The caller's session continues with the pair of the answer; the access
	// token it sent is refused like every token issued before the change.
	if me(t, s, u.Tokens.AccessToken) != 401 {
		t.Fatal("the access token sent with the change still works")
	}
	if me(t, s, changed.JSON200.Data.AccessToken) != 200 {
		t.Fatal("the access token of the answer does not work")
	}
	r := refresh(t, s, changed.JSON200.Data.RefreshToken)
	if r.JSON200 == nil || me(t, s, r.JSON200.Data.AccessToken) != 200 {
		t.Fatalf("the caller's session did not continue: %d %s", r.StatusCode(), r.Body)
	}
	if sessions := listSessions(t, s, r.JSON200.Data.AccessToken); sessions != 1 {
		t.Fatalf("%d sessions after the change, want the caller's only", sessions)
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
	got := apitest.Must(s.WithToken(tok.AccessToken).GetMeWithResponse(ctx))(t)
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

// TestForgotAndResend_SameWorkForEveryAddress: what a request does must not
// depend on whether the address has an account (or which state it is in),
// or its duration tells. Every address gets the same SQL statements, in the
// same order, and the same outbox job.
func TestForgotAndResend_SameWorkForEveryAddress(t *testing.T) {
	t.Parallel()
	stmts := apitest.NewStatements()
	s := apitest.NewServer(t, apitest.Options{Statements: stmts})
	pool := apitest.Pool(t, s.DatabaseURL)
	account := func(state, update string) string {
		u := s.NewUser()
		if update != "" {
			if _, err := pool.Exec(ctx, `UPDATE users SET `+update+` WHERE email = $1`, u.Email); err != nil {
				t.Fatal(err)
			}
		}
		return u.Email
	}
	addresses := []struct{ state, email string }{
		{"no account", apitest.NewEmail("nobody")},
		{"unverified", account("unverified", "")},
		{"verified", account("verified", "email_verified_at = now()")},
		{"disabled", account("disabled", "disabled_at = now()")},
		{"deleted", account("deleted", "deleted_at = now()")},
	}
	ops := map[string]func(email string, edit client.RequestEditorFn) (int, error){
		"forgot": func(email string, edit client.RequestEditorFn) (int, error) {
			r, err := s.Client.ForgotPasswordWithResponse(ctx, client.ForgotPasswordJSONRequestBody{Email: openapi_types.Email(email)}, edit)
			if err != nil {
				return 0, err
			}
			return r.StatusCode(), nil
		},
		"resend": func(email string, edit client.RequestEditorFn) (int, error) {
			r, err := s.Client.ResendVerificationWithResponse(ctx, client.ResendVerificationJSONRequestBody{Email: openapi_types.Email(email)}, edit)
			if err != nil {
				return 0, err
			}
			return r.StatusCode(), nil
		},
	}
	for name, op := range ops {
		var want, wantJobs []string
		for i, a := range addresses {
			var lastJob int64
			if err := pool.QueryRow(ctx, `SELECT coalesce(max(id), 0) FROM river_job`).Scan(&lastJob); err != nil {
				t.Fatal(err)
			}
			id := fmt.Sprintf("same-work-%s-%d", name, i)
			status, err := op(a.email, func(_ context.Context, r *http.Request) error {
				r.Header.Set("X-Request-ID", id)
				return nil
			})
			if err != nil || status != http.StatusAccepted {
				t.Fatalf("%s %s: %d %v", name, a.state, status, err)
			}
			// River wakes its workers with a NOTIFY at most every 100 ms,
			// whichever request comes first; that says nothing of the address.
			got := slices.DeleteFunc(stmts.Of(id), func(s string) bool { return strings.HasPrefix(s, "PGNotifyMany") })
			jobs := jobsSince(t, pool, lastJob)
			if len(got) == 0 {
				t.Fatalf("%s %s: no statement recorded", name, a.state)
			}
			if i == 0 {
				t.Logf("%s for %s: %s; jobs: %v", name, a.state, strings.Join(got, "; "), jobs)
				want, wantJobs = got, jobs
				continue
			}
			if !slices.Equal(got, want) {
				t.Errorf("%s: %s runs other statements than %s:\n%s\n  vs\n%s", name, a.state, addresses[0].state,
					strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			if !slices.Equal(jobs, wantJobs) {
				t.Errorf("%s: %s enqueues %v, %s %v", name, a.state, jobs, addresses[0].state, wantJobs)
			}
		}
	}
}

// jobsSince describes the outbox jobs after id: kind, mail and argument
// names (the values differ: address, audit event). Periodic maintenance
// jobs, which River inserts on its own schedule, are left out.
func jobsSince(t *testing.T, pool *pgxpool.Pool, id int64) []string {
	t.Helper()
	rows, err := pool.Query(ctx, `SELECT kind, args FROM river_job WHERE id > $1 AND kind = 'mail' ORDER BY id`, id)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for rows.Next() {
		var kind string
		var args map[string]any
		if err := rows.Scan(&kind, &args); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s %v %v", kind, args["mail"], slices.Sorted(maps.Keys(args))))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestForgotAndResend_OutboxDecidesAndCompletesTheAuditEvent: the request
// records the same event for every address; the worker that takes the job
// finds the account, mails it only when it takes the mail, and completes the
// event with the account and the result.
func TestForgotAndResend_OutboxDecidesAndCompletesTheAuditEvent(t *testing.T) {
	t.Parallel()
	s, mailbox := withSMTP(t, nil)
	admin := s.NewAdmin() // verified
	adminID := userID(t, s, admin.Tokens.AccessToken)
	live := s.NewUser() // unverified
	liveID := userID(t, s, live.Tokens.AccessToken)
	disabled := s.NewUser()
	disabledID := userID(t, s, disabled.Tokens.AccessToken)
	yes := true
	if r, err := admin.Client.UpdateUserWithResponse(ctx, disabledID, client.UpdateUserJSONRequestBody{Disabled: &yes}); err != nil || r.StatusCode() != 200 {
		t.Fatalf("disable: %v", err)
	}
	nobody := apitest.NewEmail("nobody")
	resend := func(email string) {
		r, err := s.Client.ResendVerificationWithResponse(ctx, client.ResendVerificationJSONRequestBody{Email: openapi_types.Email(email)})
		if err != nil {
			t.Fatal(err)
		}
		if r.StatusCode() != 202 {
			t.Fatalf("resend: %v", err)
		}
	}
	for _, e := range []string{nobody, live.Email, disabled.Email} {
		if r := forgot(t, s, e); r.StatusCode() != 202 {
			t.Fatalf("forgot: %d", r.StatusCode())
		}
	}
	for _, e := range []string{nobody, live.Email, disabled.Email, admin.Email} {
		resend(e)
	}

	type outcome struct {
		subject *openapi_types.UUID
		result  string
	}
	want := map[string][]outcome{
		"user.password.reset_requested": {{nil, "no_account"}, {&liveID, "mailed"}, {&disabledID, "disabled"}},
		"user.email.verification_requested": {
			{nil, "no_account"}, {&liveID, "mailed"}, {&disabledID, "disabled"}, {&adminID, "already_verified"},
		},
	}
	for action, w := range want {
		var events []client.AuditEvent
		for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			r, err := admin.Client.ListAuditEventsWithResponse(ctx, &client.ListAuditEventsParams{Action: ptr(client.AuditAction(action))})
			if err != nil {
				t.Fatal(err)
			}
			if r.JSON200 == nil {
				t.Fatalf("audit: %v", err)
			}
			events = r.JSON200.Data
			settled := len(events) == len(w)
			for _, e := range events {
				settled = settled && e.Details.Result != nil
			}
			if settled {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s events not completed: %s", action, r.Body)
			}
		}
		slices.Reverse(events) // oldest first, as requested
		for i, e := range events {
			if (e.SubjectId == nil) != (w[i].subject == nil) || (e.SubjectId != nil && *e.SubjectId != *w[i].subject) ||
				e.Details.Result == nil || string(*e.Details.Result) != w[i].result || e.ActorId != nil || e.RequestId == nil || e.Ip == nil {
				t.Errorf("%s #%d: subject %v, details %v, actor %v; want subject %v, result %s",
					action, i+1, e.SubjectId, e.Details, e.ActorId, w[i].subject, w[i].result)
			}
			if e.Details.Email == nil || !strings.Contains(*e.Details.Email, "***") {
				t.Errorf("%s #%d: email %v is not masked", action, i+1, e.Details.Email)
			}
		}
	}
	mailbox.WaitForSubject(live.Email, "Reset your gatehouse password", 1, 10*time.Second)
	mailbox.WaitForSubject(live.Email, "Confirm your email address", 2, 10*time.Second)
	// Settled without a mail: whatever these have now is all they get.
	time.Sleep(500 * time.Millisecond) // the jobs of the others were taken with the live one's
	for _, e := range []string{disabled.Email, admin.Email} {
		// At most the verification of the registration (the disabled account's
		// may have been cancelled by the disabling): no reset, no second one.
		if r, v := count(mailbox, e, "Reset"), count(mailbox, e, "Confirm"); r != 0 || v > 1 {
			t.Errorf("%d reset and %d verification mails, want none and at most the registration's", r, v)
		}
	}
}
