package httpapi_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/gatehouse/gatehouse/gen/client"
	"github.com/gatehouse/gatehouse/internal/apitest"
	"github.com/gatehouse/gatehouse/internal/secretbox"
)

// authenticatorApp computes TOTP codes from an enrolment's secret, as the
// user's app would. It hands out each 30-second step at most once (the
// server refuses a step it accepted before), moving to the next step, and
// waits for the clock when it has run one step ahead.
type authenticatorApp struct {
	t      *testing.T
	secret string
	last   int64
}

func (a *authenticatorApp) codeAt(step int64) string {
	a.t.Helper()
	c, err := totp.GenerateCodeCustom(a.secret, time.Unix(step*30, 0), totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		a.t.Fatal(err)
	}
	return c
}

func nowStep() int64 { return time.Now().Unix() / 30 }

// code is a code the server accepts once: of the current step, or the next
// one when the current one was used.
func (a *authenticatorApp) code() string {
	a.t.Helper()
	step := max(nowStep(), a.last+1)
	for step > nowStep()+1 {
		time.Sleep(time.Until(time.Unix((step-1)*30, 0)) + 50*time.Millisecond)
	}
	a.last = step
	return a.codeAt(step)
}

// wrong is a code of no step the server accepts now.
func (a *authenticatorApp) wrong() string {
	a.t.Helper()
	ok := map[string]bool{}
	for d := int64(-1); d <= 2; d++ {
		ok[a.codeAt(nowStep()+d)] = true
	}
	for _, c := range []string{"000000", "123456", "999999", "314159"} {
		if !ok[c] {
			return c
		}
	}
	a.t.Fatal("no wrong code")
	return ""
}

// enrol turns MFA on for u through the API and returns its app and
// recovery codes; u's tokens become the multi-factor pair of its session.
func enrol(t *testing.T, s *apitest.Server, u *apitest.User) (*authenticatorApp, []string) {
	t.Helper()
	st := apitest.Must(u.Client.StartTotpEnrolmentWithResponse(t.Context(), client.StartTotpEnrolmentJSONRequestBody{Password: u.Password}))(t)
	if st.JSON201 == nil {
		t.Fatalf("start enrolment: %d %s", st.StatusCode(), st.Body)
	}
	s.Secret("TOTP secret", st.JSON201.Data.Secret)
	app := &authenticatorApp{t: t, secret: st.JSON201.Data.Secret}
	cf := apitest.Must(u.Client.ConfirmTotpEnrolmentWithResponse(t.Context(), client.ConfirmTotpEnrolmentJSONRequestBody{Code: app.code()}))(t)
	if cf.JSON200 == nil {
		t.Fatalf("confirm enrolment: %d %s", cf.StatusCode(), cf.Body)
	}
	for _, c := range cf.JSON200.Data.RecoveryCodes {
		s.Secret("recovery code", c)
	}
	u.Tokens = cf.JSON200.Data.Tokens
	u.Client = s.WithToken(u.Tokens.AccessToken)
	return app, cf.JSON200.Data.RecoveryCodes
}

// challenge logs in with the password and returns the MFA challenge.
func challenge(t *testing.T, s *apitest.Server, u *apitest.User) string {
	t.Helper()
	r := login(t, s, u.Email, u.Password)
	if r.StatusCode() != http.StatusUnauthorized || r.ApplicationproblemJSON401 == nil || r.ApplicationproblemJSON401.Code != client.ProblemCodeMfaRequired || r.ApplicationproblemJSON401.Mfa == nil {
		t.Fatalf("login of an MFA account: %d %s, want 401 mfa_required with a challenge", r.StatusCode(), r.Body)
	}
	s.Secret("MFA challenge", r.ApplicationproblemJSON401.Mfa.Challenge)
	return r.ApplicationproblemJSON401.Mfa.Challenge
}

func verify(t *testing.T, s *apitest.Server, ch, code, recovery string) *client.VerifyMfaLoginResponse {
	t.Helper()
	body := client.VerifyMfaLoginJSONRequestBody{Challenge: ch}
	if code != "" {
		body.Code = &code
	}
	if recovery != "" {
		body.RecoveryCode = &recovery
	}
	return apitest.Must(s.Client.VerifyMfaLoginWithResponse(t.Context(), body))(t)
}

// claims decodes an access token's payload (the server checked its signature).
func claims(t *testing.T, access string) map[string]any {
	t.Helper()
	parts := strings.Split(access, ".")
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func wantLevel(t *testing.T, access string, amr []string, acr string) {
	t.Helper()
	c := claims(t, access)
	var got []string
	for _, v := range c["amr"].([]any) {
		got = append(got, v.(string))
	}
	if !slices.Equal(got, amr) || c["acr"] != acr {
		t.Fatalf("amr %v acr %v, want %v %s", got, c["acr"], amr, acr)
	}
}

func wantProblem(t *testing.T, status int, body []byte, wantStatus int, code string) {
	t.Helper()
	if status != wantStatus || decodeProblem(t, body).Code != code {
		t.Fatalf("got %d %s, want %d %s", status, body, wantStatus, code)
	}
}

// verifiedUser registers, verifies (so that notices are mailed) and logs in.
func verifiedUser(t *testing.T, s *apitest.Server) *apitest.User {
	t.Helper()
	u := &apitest.User{Email: apitest.NewEmail("mfa"), Password: apitest.Password}
	s.Register(u.Email, u.Password)
	s.VerifyFromMail(u.Email)
	u.Tokens = s.Login(u.Email, u.Password)
	u.Client = s.WithToken(u.Tokens.AccessToken)
	return u
}

func TestMFA_EnrolThenLoginNeedsTheSecondFactor(t *testing.T) {
	t.Parallel()
	s, mailbox := withSMTP(t, nil)
	u := verifiedUser(t, s)
	other := s.Login(u.Email, u.Password) // another device
	wantLevel(t, u.Tokens.AccessToken, []string{"pwd"}, "aal1")

	st := apitest.Must(u.Client.StartTotpEnrolmentWithResponse(ctx, client.StartTotpEnrolmentJSONRequestBody{Password: "not the password"}))(t)
	wantProblem(t, st.StatusCode(), st.Body, 403, "invalid_credentials")
	st = apitest.Must(u.Client.StartTotpEnrolmentWithResponse(ctx, client.StartTotpEnrolmentJSONRequestBody{Password: u.Password}))(t)
	if st.JSON201 == nil || !strings.HasPrefix(st.JSON201.Data.OtpauthUri, "otpauth://totp/") || !strings.Contains(st.JSON201.Data.OtpauthUri, "secret="+st.JSON201.Data.Secret) {
		t.Fatalf("enrolment: %d %s", st.StatusCode(), st.Body)
	}
	s.Secret("TOTP secret", st.JSON201.Data.Secret)
	app := &authenticatorApp{t: t, secret: st.JSON201.Data.Secret}
	// Until confirmed, nothing changes.
	if r := login(t, s, u.Email, u.Password); r.JSON200 == nil {
		t.Fatalf("login during an unconfirmed enrolment: %d %s", r.StatusCode(), r.Body)
	}
	cf := apitest.Must(u.Client.ConfirmTotpEnrolmentWithResponse(ctx, client.ConfirmTotpEnrolmentJSONRequestBody{Code: app.wrong()}))(t)
	wantProblem(t, cf.StatusCode(), cf.Body, 403, "invalid_mfa_code")
	cf = apitest.Must(u.Client.ConfirmTotpEnrolmentWithResponse(ctx, client.ConfirmTotpEnrolmentJSONRequestBody{Code: app.code()}))(t)
	if cf.JSON200 == nil {
		t.Fatalf("confirm: %d %s", cf.StatusCode(), cf.Body)
	}
	codes := cf.JSON200.Data.RecoveryCodes
	if len(codes) != 10 || len(slices.Compact(slices.Sorted(slices.Values(codes)))) != 10 {
		t.Fatalf("recovery codes: %v", codes)
	}
	wantLevel(t, cf.JSON200.Data.Tokens.AccessToken, []string{"pwd", "otp"}, "aal2")
	// Enabling ended the other session and the caller's old token; the new pair goes on.
	if me(t, s, other.AccessToken) != 401 || me(t, s, u.Tokens.AccessToken) != 401 {
		t.Fatal("sessions and tokens from before MFA still work")
	}
	if r := refresh(t, s, other.RefreshToken); r.StatusCode() != 401 {
		t.Fatalf("the other session refreshed: %d", r.StatusCode())
	}
	u.Client = s.WithToken(cf.JSON200.Data.Tokens.AccessToken)
	m := apitest.Must(u.Client.GetMeWithResponse(ctx))(t)
	if m.JSON200 == nil || m.JSON200.Data.Mfa == nil || !m.JSON200.Data.Mfa.Enabled || m.JSON200.Data.Mfa.RecoveryCodesRemaining != 10 {
		t.Fatalf("me: %s", m.Body)
	}
	mailbox.WaitForSubject(u.Email, "Two-step verification is on", 1, 10*time.Second)

	// The password alone gives no tokens, only a challenge.
	ch := challenge(t, s, u)
	r := verify(t, s, ch, app.code(), "")
	if r.JSON200 == nil {
		t.Fatalf("verify: %d %s", r.StatusCode(), r.Body)
	}
	wantLevel(t, r.JSON200.Data.AccessToken, []string{"pwd", "otp"}, "aal2")
	if r.JSON200.Data.DeviceToken == nil {
		t.Fatal("no device token after the second step")
	}
	// A refresh keeps how the session was authenticated.
	rr := refresh(t, s, r.JSON200.Data.RefreshToken)
	if rr.JSON200 == nil {
		t.Fatalf("refresh: %d %s", rr.StatusCode(), rr.Body)
	}
	wantLevel(t, rr.JSON200.Data.AccessToken, []string{"pwd", "otp"}, "aal2")
	if c := claims(t, rr.JSON200.Data.AccessToken); c["mfa"] != true {
		t.Fatalf("claims: %v", c)
	}
}

func TestMFA_ACodeIsNeverAcceptedTwiceNorBeyondOneStepOfDrift(t *testing.T) {
	t.Parallel()
	s := apitest.NewServer(t, apitest.Options{})
	u := s.NewUser()
	app, _ := enrol(t, s, u)
	used := app.codeAt(app.last) // accepted by the confirmation

	ch := challenge(t, s, u)
	r := verify(t, s, ch, used, "")
	wantProblem(t, r.StatusCode(), r.Body, 401, "invalid_mfa_code")
	for _, d := range []int64{-2, 2, 3} {
		if c := app.codeAt(nowStep() + d); c != app.codeAt(nowStep()) && c != app.codeAt(nowStep()+1) && c != app.codeAt(nowStep()-1) {
			r = verify(t, s, ch, c, "")
			wantProblem(t, r.StatusCode(), r.Body, 401, "invalid_mfa_code")
		}
	}
	code := app.code()
	if r = verify(t, s, ch, code, ""); r.JSON200 == nil {
		t.Fatalf("verify: %d %s", r.StatusCode(), r.Body)
	}
	// The same code with a new challenge: a replay.
	ch2 := challenge(t, s, u)
	r = verify(t, s, ch2, code, "")
	wantProblem(t, r.StatusCode(), r.Body, 401, "invalid_mfa_code")
	// The same code, at once, on two challenges: one wins.
	chs := []string{challenge(t, s, u), challenge(t, s, u)}
	next := app.code()
	var wg sync.WaitGroup
	ok := make([]bool, 2)
	for i := range chs {
		wg.Go(func() { ok[i] = verify(t, s, chs[i], next, "").JSON200 != nil })
	}
	wg.Wait()
	if ok[0] == ok[1] {
		t.Fatalf("parallel uses of one code: %v, want exactly one success", ok)
	}
}

func TestMFA_ChallengeIsSingleUseDiesAfterWrongCodesAndExpires(t *testing.T) {
	t.Parallel()
	s := apitest.NewServer(t, apitest.Options{})
	u, v := s.NewUser(), s.NewUser()
	app, _ := enrol(t, s, u)
	appV, _ := enrol(t, s, v)

	// Five wrong codes kill the challenge: the right one then fails too.
	ch := challenge(t, s, u)
	for range 5 {
		r := verify(t, s, ch, app.wrong(), "")
		wantProblem(t, r.StatusCode(), r.Body, 401, "invalid_mfa_code")
	}
	r := verify(t, s, ch, app.code(), "")
	wantProblem(t, r.StatusCode(), r.Body, 401, "invalid_mfa_challenge")

	// Used once, never again.
	ch = challenge(t, s, u)
	if r = verify(t, s, ch, app.code(), ""); r.JSON200 == nil {
		t.Fatalf("verify: %d %s", r.StatusCode(), r.Body)
	}
	r = verify(t, s, ch, app.code(), "")
	wantProblem(t, r.StatusCode(), r.Body, 401, "invalid_mfa_challenge")

	// A challenge of u with v's code: v's code is no code of u's.
	ch = challenge(t, s, u)
	r = verify(t, s, ch, appV.code(), "")
	wantProblem(t, r.StatusCode(), r.Body, 401, "invalid_mfa_code")

	// Expired.
	pool := apitest.Pool(t, s.DatabaseURL)
	if _, err := pool.Exec(ctx, `UPDATE mfa_challenges SET expires_at = now() - interval '1 second' WHERE used_at IS NULL`); err != nil {
		t.Fatal(err)
	}
	r = verify(t, s, ch, app.code(), "")
	wantProblem(t, r.StatusCode(), r.Body, 401, "invalid_mfa_challenge")
	// Nonsense.
	r = verify(t, s, "not-a-challenge", app.code(), "")
	wantProblem(t, r.StatusCode(), r.Body, 401, "invalid_mfa_challenge")
}

func TestMFA_RecoveryCodeWorksOnceEvenInParallel(t *testing.T) {
	t.Parallel()
	s, mailbox := withSMTP(t, nil)
	u := verifiedUser(t, s)
	_, codes := enrol(t, s, u)

	// Wrong codes count in the lockout (five go free), so a handful.
	const n = 4
	chs := make([]string, n)
	for i := range chs {
		chs[i] = challenge(t, s, u)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for i := range chs {
		wg.Go(func() {
			if verify(t, s, chs[i], "", codes[0]).JSON200 != nil {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d parallel uses of one recovery code succeeded, want 1", wins)
	}
	r := verify(t, s, challenge(t, s, u), "", codes[0])
	wantProblem(t, r.StatusCode(), r.Body, 401, "invalid_mfa_code")
	r = verify(t, s, challenge(t, s, u), "", strings.ToUpper(codes[1]))
	if r.JSON200 == nil {
		t.Fatalf("second code: %d %s", r.StatusCode(), r.Body)
	}
	m := apitest.Must(s.WithToken(r.JSON200.Data.AccessToken).GetMeWithResponse(ctx))(t)
	if m.JSON200 == nil || m.JSON200.Data.Mfa.RecoveryCodesRemaining != 8 {
		t.Fatalf("me: %s", m.Body)
	}
	mailbox.WaitForSubject(u.Email, "A recovery code was used", 2, 10*time.Second)
}

func TestMFA_DisablingNeedsThePasswordAndACode(t *testing.T) {
	t.Parallel()
	s, mailbox := withSMTP(t, nil)
	u := verifiedUser(t, s)
	app, _ := enrol(t, s, u)
	ch := challenge(t, s, u)
	other := verify(t, s, ch, app.code(), "").JSON200.Data

	res, b := send(t, s, http.MethodPost, "/api/v1/users/me/mfa/disable", u.Tokens.AccessToken, "application/json", `{"password": "`+u.Password+`"}`)
	wantProblem(t, res.StatusCode, b, 422, "validation_failed")
	code := app.code()
	d := apitest.Must(u.Client.DisableMfaWithResponse(ctx, client.DisableMfaJSONRequestBody{Password: "wrong password", Code: &code}))(t)
	wantProblem(t, d.StatusCode(), d.Body, 403, "invalid_credentials")
	wrong := app.wrong()
	d = apitest.Must(u.Client.DisableMfaWithResponse(ctx, client.DisableMfaJSONRequestBody{Password: u.Password, Code: &wrong}))(t)
	wantProblem(t, d.StatusCode(), d.Body, 403, "invalid_mfa_code")
	code = app.code()
	d = apitest.Must(u.Client.DisableMfaWithResponse(ctx, client.DisableMfaJSONRequestBody{Password: u.Password, Code: &code}))(t)
	if d.JSON200 == nil {
		t.Fatalf("disable: %d %s", d.StatusCode(), d.Body)
	}
	if me(t, s, other.AccessToken) != 401 || me(t, s, d.JSON200.Data.AccessToken) != 200 {
		t.Fatal("disabling did not end the other session, or ended the caller's")
	}
	if r := login(t, s, u.Email, u.Password); r.JSON200 == nil {
		t.Fatalf("login after disabling: %d %s", r.StatusCode(), r.Body)
	}
	mailbox.WaitForSubject(u.Email, "Two-step verification is off", 1, 10*time.Second)
}

func TestMFA_SignedInOperationsNeedAMultiFactorSession(t *testing.T) {
	t.Parallel()
	s := apitest.NewServer(t, apitest.Options{})
	u := s.NewUser() // no MFA: an aal1 session
	code := "123456"
	d := apitest.Must(u.Client.DisableMfaWithResponse(ctx, client.DisableMfaJSONRequestBody{Password: u.Password, Code: &code}))(t)
	wantProblem(t, d.StatusCode(), d.Body, 403, "mfa_required")
	g := apitest.Must(u.Client.RegenerateRecoveryCodesWithResponse(ctx, client.RegenerateRecoveryCodesJSONRequestBody{Password: u.Password, Code: code}))(t)
	wantProblem(t, g.StatusCode(), g.Body, 403, "mfa_required")
	st := apitest.Must(u.Client.StepUpMfaWithResponse(ctx, client.StepUpMfaJSONRequestBody{Code: &code}))(t)
	wantProblem(t, st.StatusCode(), st.Body, 409, "conflict")

	app, codes := enrol(t, s, u)
	c := app.code()
	g = apitest.Must(u.Client.RegenerateRecoveryCodesWithResponse(ctx, client.RegenerateRecoveryCodesJSONRequestBody{Password: u.Password, Code: c}))(t)
	if g.JSON200 == nil || slices.Contains(g.JSON200.Data.RecoveryCodes, codes[0]) {
		t.Fatalf("regenerate: %d %s", g.StatusCode(), g.Body)
	}
	for _, rc := range g.JSON200.Data.RecoveryCodes {
		s.Secret("recovery code", rc)
	}
	if r := verify(t, s, challenge(t, s, u), "", codes[0]); r.StatusCode() != 401 {
		t.Fatalf("an old recovery code still works: %d", r.StatusCode())
	}
	// Step-up with a recovery code of the new set; its replay fails.
	rc := g.JSON200.Data.RecoveryCodes[0]
	st = apitest.Must(u.Client.StepUpMfaWithResponse(ctx, client.StepUpMfaJSONRequestBody{RecoveryCode: &rc}))(t)
	if st.JSON200 == nil {
		t.Fatalf("step-up: %d %s", st.StatusCode(), st.Body)
	}
	wantLevel(t, st.JSON200.Data.AccessToken, []string{"pwd", "otp"}, "aal2")
	st = apitest.Must(s.WithToken(st.JSON200.Data.AccessToken).StepUpMfaWithResponse(ctx, client.StepUpMfaJSONRequestBody{RecoveryCode: &rc}))(t)
	wantProblem(t, st.StatusCode(), st.Body, 403, "invalid_mfa_code")
}

func TestMFA_MandatoryForAdminsWhenConfigured(t *testing.T) {
	t.Parallel()
	// Spaces after the commas, as people write lists: still the admin role.
	s := apitest.NewServer(t, apitest.Options{Env: map[string]string{"MFA_REQUIRED_ROLES": "support, admin"}})
	a := s.NewAdmin()
	r := login(t, s, a.Email, a.Password)
	if r.JSON200 == nil || r.JSON200.Data.MfaEnrolmentRequired == nil || !*r.JSON200.Data.MfaEnrolmentRequired {
		t.Fatalf("admin login without MFA: %d %s, want tokens and mfa_enrolment_required", r.StatusCode(), r.Body)
	}
	l := apitest.Must(a.Client.ListUsersWithResponse(ctx, nil))(t)
	wantProblem(t, l.StatusCode(), l.Body, 403, "mfa_required")
	// A plain user is not concerned.
	if r := login(t, s, s.NewUser().Email, apitest.Password); r.JSON200 == nil || r.JSON200.Data.MfaEnrolmentRequired != nil {
		t.Fatalf("user login: %s", r.Body)
	}

	app, _ := enrol(t, s, a)
	l = apitest.Must(a.Client.ListUsersWithResponse(ctx, nil))(t)
	if l.JSON200 == nil {
		t.Fatalf("admin with MFA: %d %s", l.StatusCode(), l.Body)
	}

	// MFA disabled: the session that was multi-factor keeps going, but no
	// longer with the admin's permissions, nor after a refresh.
	code := app.code()
	d := apitest.Must(a.Client.DisableMfaWithResponse(ctx, client.DisableMfaJSONRequestBody{Password: a.Password, Code: &code}))(t)
	if d.JSON200 == nil {
		t.Fatalf("disable: %d %s", d.StatusCode(), d.Body)
	}
	l = apitest.Must(s.WithToken(d.JSON200.Data.AccessToken).ListUsersWithResponse(ctx, nil))(t)
	wantProblem(t, l.StatusCode(), l.Body, 403, "mfa_required")
	rf := apitest.Must(s.Client.RefreshTokensWithResponse(ctx, client.RefreshTokensJSONRequestBody{RefreshToken: d.JSON200.Data.RefreshToken}))(t)
	if rf.JSON200 == nil {
		t.Fatalf("refresh: %d %s", rf.StatusCode(), rf.Body)
	}
	l = apitest.Must(s.WithToken(rf.JSON200.Data.AccessToken).ListUsersWithResponse(ctx, nil))(t)
	wantProblem(t, l.StatusCode(), l.Body, 403, "mfa_required")
}

func TestMFA_AdminRemovesAUsersMFA(t *testing.T) {
	t.Parallel()
	s, mailbox := withSMTP(t, nil)
	admin := s.NewAdmin()
	u := verifiedUser(t, s)
	enrol(t, s, u)
	id := userID(t, s, u.Tokens.AccessToken)

	if r := apitest.Must(u.Client.ResetUserMfaWithResponse(ctx, id))(t); r.StatusCode() != 403 {
		t.Fatalf("a user reset MFA: %d", r.StatusCode())
	}
	if r := apitest.Must(admin.Client.ResetUserMfaWithResponse(ctx, id))(t); r.StatusCode() != 204 {
		t.Fatalf("reset: %d %s", r.StatusCode(), r.Body)
	}
	if me(t, s, u.Tokens.AccessToken) != 401 {
		t.Fatal("the user's session survived the reset")
	}
	if r := login(t, s, u.Email, u.Password); r.JSON200 == nil {
		t.Fatalf("login after the reset: %d %s", r.StatusCode(), r.Body)
	}
	r := apitest.Must(admin.Client.ResetUserMfaWithResponse(ctx, id))(t)
	wantProblem(t, r.StatusCode(), r.Body, 409, "conflict")
	mailbox.WaitForSubject(u.Email, "An administrator turned off two-step verification", 1, 10*time.Second)
	if acts := apitest.AuditActions(t, apitest.Pool(t, s.DatabaseURL), id); !slices.Contains(acts, "user.mfa.reset") {
		t.Fatalf("audit: %v", acts)
	}
}

func TestMFA_BadInput(t *testing.T) {
	t.Parallel()
	s := apitest.NewServer(t, apitest.Options{})
	u := s.NewUser()
	tok := u.Tokens.AccessToken
	for _, c := range []struct {
		path, token, body string
		status            int
		code              string
	}{
		{"/api/v1/auth/mfa/verify", "", `{"challenge":`, 400, "malformed_json"},
		{"/api/v1/auth/mfa/verify", "", `{"code": "123456"}`, 422, "validation_failed"},
		{"/api/v1/auth/mfa/verify", "", `{"challenge": "x", "code": 123456}`, 422, "validation_failed"},
		{"/api/v1/auth/mfa/verify", "", `{"challenge": "x", "code": "12345a"}`, 422, "validation_failed"},
		{"/api/v1/auth/mfa/verify", "", `{"challenge": "x", "code": "123456", "extra": 1}`, 422, "validation_failed"},
		{"/api/v1/auth/mfa/verify", "", `{"challenge": "x"}`, 422, "validation_failed"},
		{"/api/v1/auth/mfa/verify", "", `{"challenge": "x", "code": "123456", "recovery_code": "aaaa-bbbb-cccc-dddd"}`, 422, "validation_failed"},
		{"/api/v1/users/me/mfa/totp", tok, `{}`, 422, "validation_failed"},
		{"/api/v1/users/me/mfa/totp", tok, `{"password": 1}`, 422, "validation_failed"},
		{"/api/v1/users/me/mfa/totp", "forged", `{"password": "x"}`, 401, "invalid_token"},
		{"/api/v1/users/me/mfa/totp/confirm", tok, `{"code": "1"}`, 422, "validation_failed"},
		{"/api/v1/users/me/mfa/totp/confirm", tok, `{"code": "123456"}`, 409, "conflict"},
		{"/api/v1/users/me/mfa/totp/confirm", tok, `[`, 400, "malformed_json"},
		{"/api/v1/users/me/mfa/step-up", tok, `{}`, 422, "validation_failed"},
		{"/api/v1/users/me/mfa/step-up", tok, `{"code": "123456", "bogus": true}`, 422, "validation_failed"},
	} {
		res, b := send(t, s, http.MethodPost, c.path, c.token, "application/json", c.body)
		if res.StatusCode != c.status || decodeProblem(t, b).Code != c.code {
			t.Errorf("POST %s %s: got %d %s, want %d %s", c.path, c.body, res.StatusCode, b, c.status, c.code)
		}
	}
}

func TestMFA_SecretsAreSealedAtRestAndKeysRotate(t *testing.T) {
	t.Parallel()
	dbURL, rd := apitest.DatabaseURL(t), apitest.StartRedis(t)
	keyA, keyB := make([]byte, secretbox.KeySize), make([]byte, secretbox.KeySize)
	for _, k := range [][]byte{keyA, keyB} {
		if _, err := rand.Read(k); err != nil {
			t.Fatal(err)
		}
	}
	b64 := base64.StdEncoding.EncodeToString
	server := func(keys string) *apitest.Server {
		return apitest.NewServer(t, apitest.Options{DatabaseURL: dbURL, Redis: rd, Env: map[string]string{"MFA_ENCRYPTION_KEYS": keys}})
	}
	s1 := server(b64(keyA))
	u := s1.NewUser()
	app, codes := enrol(t, s1, u)
	ch := challenge(t, s1, u)

	// What PostgreSQL holds is no use without the key.
	pool := apitest.Pool(t, dbURL)
	var id uuid.UUID
	var sealed []byte
	var kid string
	if err := pool.QueryRow(ctx, `SELECT id, secret, key_id FROM mfa_factors`).Scan(&id, &sealed, &kid); err != nil {
		t.Fatal(err)
	}
	raw, _ := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(app.secret)
	if strings.Contains(string(sealed), app.secret) || bytes.Contains(sealed, raw) || kid != secretbox.KeyID(keyA) {
		t.Fatalf("the secret is stored readable (key id %s)", kid)
	}
	other, _ := secretbox.New(keyB)
	if _, err := other.Open(sealed, kid, id[:]); err == nil {
		t.Fatal("another key opened the secret")
	}
	// Nor do audit rows hold the secret, a code or the challenge.
	var details string
	if err := pool.QueryRow(ctx, `SELECT coalesce(string_agg(details::text, ' '), '') FROM audit_events`).Scan(&details); err != nil {
		t.Fatal(err)
	}
	for _, secret := range append([]string{app.secret, ch, app.codeAt(app.last)}, codes...) {
		if strings.Contains(details, secret) {
			t.Fatalf("an audit row holds a secret: %s", details)
		}
	}

	// Rotation: B first, A still listed: old secrets open, rekey moves them to B.
	s2 := server(b64(keyB) + "," + b64(keyA))
	if r := verify(t, s2, challenge(t, s2, u), app.code(), ""); r.JSON200 == nil {
		t.Fatalf("verify after adding a key: %d %s", r.StatusCode(), r.Body)
	}
	if n, err := s2.Accounts.RekeyMFASecrets(ctx); err != nil || n != 1 {
		t.Fatalf("rekey: %d %v", n, err)
	}
	if err := pool.QueryRow(ctx, `SELECT key_id FROM mfa_factors`).Scan(&kid); err != nil || kid != secretbox.KeyID(keyB) {
		t.Fatalf("key id after rekey: %s %v", kid, err)
	}
	// A dropped: the secret still opens.
	s3 := server(b64(keyB))
	if r := verify(t, s3, challenge(t, s3, u), app.code(), ""); r.JSON200 == nil {
		t.Fatalf("verify after dropping the old key: %d %s", r.StatusCode(), r.Body)
	}
}

func TestMFA_WrongCodesAreThrottledAcrossChallengesAndAPasswordDoesNotClearThem(t *testing.T) {
	t.Parallel()
	s := apitest.NewServer(t, apitest.Options{})
	u := s.NewUser()
	app, _ := enrol(t, s, u)
	ch := challenge(t, s, u)
	for range 3 {
		r := verify(t, s, ch, app.wrong(), "")
		wantProblem(t, r.StatusCode(), r.Body, 401, "invalid_mfa_code")
	}
	// A new challenge needs the right password, which must not reset the
	// count of wrong codes: five go free in all, then the lockout answers.
	ch = challenge(t, s, u)
	for range 2 {
		r := verify(t, s, ch, app.wrong(), "")
		wantProblem(t, r.StatusCode(), r.Body, 401, "invalid_mfa_code")
	}
	r := verify(t, s, ch, app.wrong(), "")
	if r.StatusCode() != http.StatusTooManyRequests || r.ApplicationproblemJSON429 == nil || r.ApplicationproblemJSON429.Code != client.ProblemCodeAccountLocked {
		t.Fatalf("sixth wrong code: %d %s, want 429 account_locked", r.StatusCode(), r.Body)
	}
}
