package httpapi_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	openapi_types "github.com/oapi-codegen/runtime/types"

	"github.com/gatehouse/gatehouse/gen/client"
	"github.com/gatehouse/gatehouse/internal/apitest"
	"github.com/gatehouse/gatehouse/internal/ratelimit"
)

func TestAuthFlow_RegisterLoginRefreshReuseLogout(t *testing.T) {
	t.Parallel()
	s := apitest.NewServer(t, apitest.Options{Env: map[string]string{"REFRESH_TOKEN_GRACE": "0s"}})
	email := apitest.NewEmail("Flow")
	s.Register(email, apitest.Password)

	res := login(t, s, strings.ToUpper(email), apitest.Password) // emails compare case-insensitively
	if res.JSON200 == nil {
		t.Fatalf("login: %d %s", res.StatusCode(), res.Body)
	}
	if res.HTTPResponse.Header.Get("Cache-Control") != "no-store" {
		t.Fatal("token response without Cache-Control: no-store")
	}
	t1 := res.JSON200.Data
	if t1.TokenType != client.Bearer || t1.ExpiresIn != 900 || t1.RefreshExpiresIn != 7*24*3600 || len(t1.RefreshToken) != 43 {
		t.Fatalf("tokens: %+v", t1)
	}
	got, err := s.WithToken(t1.AccessToken).GetMeWithResponse(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got.JSON200 == nil {
		t.Fatalf("me: %v %s", err, got.Body)
	}
	if string(got.JSON200.Data.Email) != strings.ToLower(email) || got.JSON200.Data.Status != client.UserStatusActive ||
		len(got.JSON200.Data.Roles) != 1 || got.JSON200.Data.Roles[0] != "user" || got.JSON200.Data.EmailVerified {
		t.Fatalf("me: %+v", got.JSON200.Data)
	}

	r2 := refresh(t, s, t1.RefreshToken)
	if r2.JSON200 == nil {
		t.Fatalf("refresh: %d %s", r2.StatusCode(), r2.Body)
	}
	t2 := r2.JSON200.Data
	if t2.RefreshToken == t1.RefreshToken || t2.AccessToken == t1.AccessToken {
		t.Fatal("refresh did not rotate")
	}
	if me(t, s, t2.AccessToken) != 200 {
		t.Fatal("rotated access token refused")
	}

	// The used refresh token comes back: it was stolen; the session ends.
	r3 := refresh(t, s, t1.RefreshToken)
	if r3.StatusCode() != 401 || !strings.Contains(string(r3.Body), "invalid_refresh_token") {
		t.Fatalf("reuse: %d %s", r3.StatusCode(), r3.Body)
	}
	if me(t, s, t2.AccessToken) != 401 || me(t, s, t1.AccessToken) != 401 {
		t.Fatal("access tokens of a session revoked for refresh reuse still work")
	}
	if r := refresh(t, s, t2.RefreshToken); r.StatusCode() != 401 {
		t.Fatalf("refresh token of a revoked session: %d", r.StatusCode())
	}

	// A new login, then logout.
	t4 := s.Login(email, apitest.Password)
	other := s.Login(email, apitest.Password) // a second device
	if me(t, s, t4.AccessToken) != 200 {
		t.Fatal("fresh login refused")
	}
	out, err := s.WithToken(t4.AccessToken).LogoutWithResponse(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if out.StatusCode() != 204 {
		t.Fatalf("logout: %v %d", err, out.StatusCode())
	}
	if me(t, s, t4.AccessToken) != 401 {
		t.Fatal("token works after logout")
	}
	if r := refresh(t, s, t4.RefreshToken); r.StatusCode() != 401 {
		t.Fatalf("refresh after logout: %d", r.StatusCode())
	}
	if me(t, s, other.AccessToken) != 200 {
		t.Fatal("logout ended another device's session")
	}
	all, err := s.WithToken(other.AccessToken).LogoutAllWithResponse(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if all.StatusCode() != 204 {
		t.Fatalf("logout-all: %v %d", err, all.StatusCode())
	}
	if me(t, s, other.AccessToken) != 401 {
		t.Fatal("token works after logout-all")
	}

	// Nothing secret reached the logs.
	logs := s.Logs()
	for _, secret := range []string{strings.ToLower(email), apitest.Password, t1.AccessToken, t1.RefreshToken, t2.RefreshToken} {
		if strings.Contains(logs, secret) {
			t.Errorf("logs contain a secret or an address: %.12s...", secret)
		}
	}
}

func TestRefresh_ConcurrentUseOfOneTokenKeepsOneSession(t *testing.T) {
	t.Parallel()
	s := apitest.NewServer(t, apitest.Options{})
	u := s.NewUser()
	var wg sync.WaitGroup
	results := make([]*client.RefreshTokensResponse, 20)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = refresh(t, s, u.Tokens.RefreshToken)
		}()
	}
	wg.Wait()
	for i, r := range results {
		if r.JSON200 == nil {
			t.Fatalf("refresh %d inside the grace window: %d %s", i, r.StatusCode(), r.Body)
		}
		if me(t, s, r.JSON200.Data.AccessToken) != 200 {
			t.Fatalf("access token of refresh %d refused", i)
		}
	}
	pool := apitest.Pool(t, s.DatabaseURL)
	var sessions int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM sessions s JOIN users u ON u.id = s.user_id WHERE u.email = $1 AND s.revoked_at IS NULL`, u.Email).Scan(&sessions); err != nil {
		t.Fatal(err)
	}
	if sessions != 1 {
		t.Fatalf("%d live sessions, want 1", sessions)
	}
}

func TestRegister_ConcurrentCaseVariantsCreateOneAccount(t *testing.T) {
	t.Parallel()
	limits := ratelimit.Default
	limits.RegisterAccount.Rate, limits.RegisterIP.Rate = 1000, 1000
	s := apitest.NewServer(t, apitest.Options{RateLimits: &limits})
	local := fmt.Sprintf("race-%d", time.Now().UnixNano())
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			variant := local + "@example.com"
			switch i % 4 {
			case 1:
				variant = strings.ToUpper(variant)
			case 2:
				variant = " " + strings.ToUpper(local[:1]) + local[1:] + "@Example.COM"
			case 3:
				variant = local + "@EXAMPLE.com"
			}
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, s.URL+"/api/v1/auth/register",
				strings.NewReader(fmt.Sprintf(`{"email":%q,"password":%q}`, strings.TrimSpace(variant), apitest.Password)))
			if err != nil {
				t.Error(err)
				return
			}
			req.Header.Set("Content-Type", "application/json")
			res, err := s.HTTP.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			res.Body.Close()
			if res.StatusCode != 202 {
				t.Errorf("register %q: %d", variant, res.StatusCode)
			}
		}()
	}
	wg.Wait()
	pool := apitest.Pool(t, s.DatabaseURL)
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM users WHERE email = $1`, local+"@example.com").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("%d accounts for one address, want 1", n)
	}
}

// TestEnumeration_LoginAndRegisterAnswerAlike compares answers byte for byte,
// request ids aside.
func TestEnumeration_LoginAndRegisterAnswerAlike(t *testing.T) {
	t.Parallel()
	s := apitest.NewServer(t, apitest.Options{})
	known, disabled, deleted := s.NewUser(), s.NewUser(), s.NewUser()
	pool := apitest.Pool(t, s.DatabaseURL)
	if _, err := pool.Exec(ctx, `UPDATE users SET disabled_at = now() WHERE email = $1`, disabled.Email); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `UPDATE users SET deleted_at = now() WHERE email = $1`, deleted.Email); err != nil {
		t.Fatal(err)
	}
	normalise := func(res *http.Response, body []byte) string {
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatal(err)
		}
		delete(m, "request_id")
		if meta, ok := m["meta"].(map[string]any); ok {
			delete(meta, "request_id")
		}
		b, _ := json.Marshal(m)
		return fmt.Sprintf("%d %s %s %s", res.StatusCode, res.Header.Get("Content-Type"), res.Header.Get("WWW-Authenticate"), b)
	}
	attempt := func(email, password string) string {
		r := login(t, s, email, password)
		return normalise(r.HTTPResponse, r.Body)
	}
	want := attempt("nobody-"+known.Email, apitest.Password)
	if !strings.HasPrefix(want, "401 ") || !strings.Contains(want, "invalid_credentials") {
		t.Fatalf("unknown email: %s", want)
	}
	for name, got := range map[string]string{
		"wrong password":              attempt(known.Email, apitest.Password+"!"),
		"disabled, right password":    attempt(disabled.Email, apitest.Password),
		"deleted, right password":     attempt(deleted.Email, apitest.Password),
		"unknown, different password": attempt("ghost-"+known.Email, "another long passphrase here"),
	} {
		if got != want {
			t.Errorf("%s answers differently:\n got %s\nwant %s", name, got, want)
		}
	}
	register := func(email string) string {
		res, err := s.Client.RegisterWithResponse(ctx, client.RegisterJSONRequestBody{Email: openapi_types.Email(email), Password: apitest.Password})
		if err != nil {
			t.Fatal(err)
		}
		return normalise(res.HTTPResponse, res.Body)
	}
	if a, b := register(known.Email), register(apitest.NewEmail("fresh")); a != b || !strings.HasPrefix(a, "202 ") {
		t.Fatalf("register answers differ for a known address:\n%s\n%s", a, b)
	}
}

func TestRegister_PasswordPolicy(t *testing.T) {
	t.Parallel()
	s := apitest.NewServer(t, apitest.Options{})
	email := apitest.NewEmail("policy")
	for pw, code := range map[string]string{
		"too short pw":                    "too_short",
		"my " + email + " is my password": "contains_email",
		"zzzzzzzzzzzzzzzzzzzz":            "repetitive",
		"123456789012345":                 "predictable",
		"qwertyuiopasdfghjkl":             "predictable",
	} { // five: the register-account limit
		res, err := s.Client.RegisterWithResponse(ctx, client.RegisterJSONRequestBody{Email: openapi_types.Email(email), Password: pw})
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode() != 422 || !strings.Contains(string(res.Body), `"password_rejected"`) || !strings.Contains(string(res.Body), `"`+code+`"`) {
			t.Errorf("%q: %d %s", pw, res.StatusCode(), res.Body)
		}
		if code == "predictable" && !strings.Contains(string(res.Body), "add a few more unrelated words") {
			t.Errorf("%q: the message does not say what to do: %s", pw, res.Body)
		}
	}
}

func TestTokenAttacks_RefusedWith401(t *testing.T) {
	t.Parallel()
	s := apitest.NewServer(t, apitest.Options{})
	u := s.NewUser()
	jwks, err := s.Client.GetJwksWithResponse(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if jwks.JSON200 == nil || len(jwks.JSON200.Keys) != 1 {
		t.Fatalf("jwks: %v %s", err, jwks.Body)
	}
	key := jwks.JSON200.Keys[0]
	pub, _ := base64.RawURLEncoding.DecodeString(key.X)

	// The real token verifies with the published key.
	parts := strings.Split(u.Tokens.AccessToken, ".")
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	if !ed25519.Verify(pub, []byte(parts[0]+"."+parts[1]), sig) {
		t.Fatal("access token does not verify with the published JWKS key")
	}
	var claims map[string]any
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"iss", "aud", "exp", "iat", "jti", "sub", "sid", "ver", "perms"} {
		if _, ok := claims[c]; !ok {
			t.Errorf("access token lacks %q: %v", c, claims)
		}
	}

	_, attacker, _ := ed25519.GenerateKey(nil)
	forge := func(method jwt.SigningMethod, secret any, mutate func(jwt.MapClaims, map[string]any)) string {
		c := jwt.MapClaims{}
		for k, v := range claims {
			c[k] = v
		}
		tok := jwt.NewWithClaims(method, c)
		tok.Header["kid"], tok.Header["typ"] = key.Kid, "at+jwt"
		if mutate != nil {
			mutate(c, tok.Header)
		}
		out, err := tok.SignedString(secret)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(payload), `"perms":[]`, `"perms":["users:read"]`, 1))) + "." + parts[2]
	for name, tok := range map[string]string{
		"alg none":                  base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"at+jwt","kid":"`+key.Kid+`"}`)) + "." + parts[1] + ".",
		"HS256 with the public key": forge(jwt.SigningMethodHS256, pub, nil),
		"foreign key in jwk": forge(jwt.SigningMethodEdDSA, attacker, func(_ jwt.MapClaims, h map[string]any) {
			h["jwk"] = map[string]string{"kty": "OKP", "crv": "Ed25519", "x": base64.RawURLEncoding.EncodeToString(attacker.Public().(ed25519.PublicKey))}
		}),
		"jku":              forge(jwt.SigningMethodEdDSA, attacker, func(_ jwt.MapClaims, h map[string]any) { h["jku"] = "http://127.0.0.1:1/jwks.json" }),
		"unknown kid":      forge(jwt.SigningMethodEdDSA, attacker, func(_ jwt.MapClaims, h map[string]any) { h["kid"] = "attacker" }),
		"malicious kid":    forge(jwt.SigningMethodEdDSA, attacker, func(_ jwt.MapClaims, h map[string]any) { h["kid"] = "../../../../dev/null'; DROP TABLE users;--" }),
		"wrong type":       forge(jwt.SigningMethodEdDSA, attacker, func(_ jwt.MapClaims, h map[string]any) { h["typ"] = "JWT" }),
		"tampered payload": tampered,
		"expired": forge(jwt.SigningMethodEdDSA, attacker, func(c jwt.MapClaims, _ map[string]any) {
			c["exp"] = time.Now().Add(-time.Hour).Unix()
		}),
	} {
		res, b := send(t, s, "GET", "/api/v1/users/me", tok, "", "")
		if res.StatusCode != 401 || decodeProblem(t, b).Code != "invalid_token" {
			t.Errorf("%s: %d %s", name, res.StatusCode, b)
		}
	}
}

func TestRevocation_SurvivesRedisFlushAndRestart(t *testing.T) {
	t.Parallel()
	s := apitest.NewServer(t, apitest.Options{})
	a, b, c := s.NewUser(), s.NewUser(), s.NewUser()
	cSecond := s.Login(c.Email, c.Password)
	if _, err := a.Client.LogoutWithResponse(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Client.LogoutAllWithResponse(ctx); err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		t.Helper()
		for i := range 3 { // the first answer may come from PostgreSQL, the next from the rebuilt cache
			if me(t, s, a.Tokens.AccessToken) != 401 || me(t, s, c.Tokens.AccessToken) != 401 || me(t, s, cSecond.AccessToken) != 401 {
				t.Fatalf("%s (check %d): a revoked token is accepted", when, i)
			}
			if me(t, s, b.Tokens.AccessToken) != 200 {
				t.Fatalf("%s (check %d): a live token is refused", when, i)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	check("before")
	if err := s.Redis.Client().FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	check("after FLUSHALL")
	s.Redis.Stop()
	s.Redis.Start()
	check("after a restart with no data")
}

func TestRevocation_RedisDownUsesPostgres_BothDownFailsClosed(t *testing.T) {
	t.Parallel()
	s := apitest.NewServer(t, apitest.Options{})
	live, gone := s.NewUser(), s.NewUser()
	if _, err := gone.Client.LogoutWithResponse(ctx); err != nil {
		t.Fatal(err)
	}
	s.Redis.Stop()
	if me(t, s, live.Tokens.AccessToken) != 200 {
		t.Fatal("Redis down: a live token must still work, checked against PostgreSQL")
	}
	if me(t, s, gone.Tokens.AccessToken) != 401 {
		t.Fatal("Redis down: a revoked token was accepted")
	}

	// PostgreSQL unreachable as well: nothing can be checked, so nothing passes.
	admin := apitest.Pool(t, strings.Replace(s.DatabaseURL, "/"+dbName(s.DatabaseURL)+"?", "/postgres?", 1))
	db := dbName(s.DatabaseURL)
	if _, err := admin.Exec(ctx, fmt.Sprintf(`ALTER DATABASE %q ALLOW_CONNECTIONS false`, db)); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, db); err != nil {
		t.Fatal(err)
	}
	res, body := send(t, s, "GET", "/api/v1/users/me", live.Tokens.AccessToken, "", "")
	if res.StatusCode != 503 || decodeProblem(t, body).Code != "service_unavailable" {
		t.Fatalf("Redis and PostgreSQL down: got %d %s, want 503", res.StatusCode, body)
	}
	if r := login(t, s, live.Email, live.Password); r.StatusCode() != 503 {
		t.Fatalf("login with PostgreSQL down: %d %s, want 503", r.StatusCode(), r.Body)
	}
	if r := forgot(t, s, live.Email); r.StatusCode() != 503 {
		t.Fatalf("forgot with PostgreSQL down: %d %s, want 503", r.StatusCode(), r.Body)
	}
	if r := reset(t, s, strings.Repeat("A", 43), newPassword); r.StatusCode() != 503 {
		t.Fatalf("reset with PostgreSQL down: %d %s, want 503", r.StatusCode(), r.Body)
	}
	if _, err := admin.Exec(ctx, fmt.Sprintf(`ALTER DATABASE %q ALLOW_CONNECTIONS true`, db)); err != nil {
		t.Fatal(err)
	}
	s.Redis.Start()
	if apitest.ThroughPgBouncer() {
		// PgBouncer tries PostgreSQL again only server_login_retry (1 s in
		// the tests) after its last refused login, answering errors meanwhile.
		for deadline := time.Now().Add(5 * time.Second); me(t, s, live.Tokens.AccessToken) != 200 && time.Now().Before(deadline); {
			time.Sleep(100 * time.Millisecond)
		}
	}
	if me(t, s, live.Tokens.AccessToken) != 200 || me(t, s, gone.Tokens.AccessToken) != 401 {
		t.Fatal("no recovery once both are back")
	}
}

func TestRateLimits_LoginPerAccountAndPerIP(t *testing.T) {
	t.Parallel()
	perAccount := ratelimit.Default
	perAccount.LoginAccount.Rate = 3 // below the lockout's free failures
	s := apitest.NewServer(t, apitest.Options{RateLimits: &perAccount})
	email := apitest.NewEmail("limited")
	var last *client.LoginResponse
	for range 4 {
		// Unknown account: the limiter does not care whether it exists.
		last = login(t, s, email, apitest.Password)
		if last.StatusCode() == 429 {
			break
		}
	}
	if last.StatusCode() != 429 {
		t.Fatalf("no 429 after 4 logins: %d %s", last.StatusCode(), last.Body)
	}
	if !strings.Contains(string(last.Body), `"rate_limited"`) {
		t.Fatalf("429 is not rate_limited: %s", last.Body)
	}
	h := last.HTTPResponse.Header
	if h.Get("Retry-After") == "" || h.Get("RateLimit-Policy") != `"login-account";q=3;w=60` || !strings.HasPrefix(h.Get("RateLimit"), `"login-account";r=0;t=`) {
		t.Fatalf("429 headers: %v", h)
	}

	// X-Forwarded-For counts only from a trusted proxy.
	limits := ratelimit.Default
	limits.LoginIP.Rate = 3
	for _, tc := range []struct {
		trusted string
		want429 bool
	}{{"", true}, {"127.0.0.1/32", false}} {
		t.Run("TRUSTED_PROXIES="+tc.trusted, func(t *testing.T) {
			s := apitest.NewServer(t, apitest.Options{RateLimits: &limits, Env: map[string]string{"TRUSTED_PROXIES": tc.trusted}})
			got429 := false
			for i := range 5 {
				req, _ := http.NewRequestWithContext(t.Context(), "POST", s.URL+"/api/v1/auth/login", strings.NewReader(fmt.Sprintf(`{"email":"ip%d@example.com","password":"whatever it is"}`, i)))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-Forwarded-For", fmt.Sprintf("203.0.113.%d", i+1))
				res, err := s.HTTP.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				res.Body.Close()
				got429 = got429 || res.StatusCode == 429
			}
			if got429 != tc.want429 {
				t.Errorf("TRUSTED_PROXIES=%q: 429 seen = %v, want %v", tc.trusted, got429, tc.want429)
			}
		})
	}
}

func TestLockout_DelaysThenBlocksAccountPasswordLogin(t *testing.T) {
	t.Parallel()
	s := apitest.NewServer(t, apitest.Options{})
	u := s.NewUser()
	for i := range 5 {
		if r := login(t, s, u.Email, "wrong password number "+fmt.Sprint(i)); r.StatusCode() != 401 {
			t.Fatalf("failure %d: %d %s", i, r.StatusCode(), r.Body)
		}
	}
	r := login(t, s, u.Email, u.Password)
	if r.StatusCode() != 429 || !strings.Contains(string(r.Body), "account_locked") || r.HTTPResponse.Header.Get("Retry-After") == "" {
		t.Fatalf("after 5 failures the next attempt must wait: %d %s", r.StatusCode(), r.Body)
	}
	// An unknown address behaves the same: lockout reveals nothing.
	ghost := apitest.NewEmail("ghost")
	for range 5 {
		login(t, s, ghost, "wrong password again")
	}
	if r := login(t, s, ghost, "wrong password again"); r.StatusCode() != 429 || !strings.Contains(string(r.Body), "account_locked") {
		t.Fatalf("unknown address after 5 failures: %d %s", r.StatusCode(), r.Body)
	}
	time.Sleep(1100 * time.Millisecond) // the first delay is one second
	if r := login(t, s, u.Email, u.Password); r.JSON200 == nil {
		t.Fatalf("after the delay the right password must work: %d %s", r.StatusCode(), r.Body)
	}
	// A success clears the count; a hundred failures block even the right password.
	rdb := s.Redis.Client()
	keys, err := rdb.Keys(ctx, "gatehouse:lo:*").Result()
	if err != nil || len(keys) != 1 { // only the ghost's counter is left
		t.Fatalf("lockout keys: %v %v", keys, err)
	}
	for range 100 {
		login(t, s, u.Email+"x", "nope nope nope") // other account, does not matter
	}
	if err := rdb.HSet(ctx, keys[0], "n", 100).Err(); err != nil {
		t.Fatal(err)
	}
	if r := login(t, s, ghost, "anything at all"); r.StatusCode() != 429 {
		t.Fatalf("blocked account: %d %s", r.StatusCode(), r.Body)
	}
}

func TestRefresh_IdleAndAbsoluteExpiry(t *testing.T) {
	t.Parallel()
	s := apitest.NewServer(t, apitest.Options{})
	pool := apitest.Pool(t, s.DatabaseURL)
	for _, column := range []string{"idle_expires_at", "expires_at"} {
		u := s.NewUser()
		if _, err := pool.Exec(ctx, `UPDATE sessions SET `+column+` = now() - interval '1 second'
			WHERE user_id = (SELECT id FROM users WHERE email = $1)`, u.Email); err != nil {
			t.Fatal(err)
		}
		if r := refresh(t, s, u.Tokens.RefreshToken); r.StatusCode() != 401 {
			t.Errorf("%s passed: refresh answered %d", column, r.StatusCode())
		}
	}
	// Each refresh pushes the idle expiry forward, never past the absolute one.
	u := s.NewUser()
	if _, err := pool.Exec(ctx, `UPDATE sessions SET idle_expires_at = now() + interval '1 minute', expires_at = now() + interval '1 hour'
		WHERE user_id = (SELECT id FROM users WHERE email = $1)`, u.Email); err != nil {
		t.Fatal(err)
	}
	if r := refresh(t, s, u.Tokens.RefreshToken); r.JSON200 == nil {
		t.Fatalf("refresh: %s", r.Body)
	}
	var idleEqualsAbsolute bool
	if err := pool.QueryRow(ctx, `SELECT idle_expires_at = expires_at FROM sessions WHERE user_id = (SELECT id FROM users WHERE email = $1)`, u.Email).Scan(&idleEqualsAbsolute); err != nil {
		t.Fatal(err)
	}
	if !idleEqualsAbsolute {
		t.Fatal("idle expiry must be capped at the absolute expiry")
	}
}

// TestRevocation_RedisRestoredFromAnOldSnapshot: Redis comes back with data
// from before a logout (a snapshot, a failover to a lagging replica): the
// markers are gone but the cache looks warm. Each instance's own poll of
// PostgreSQL still refuses the token.
func TestRevocation_RedisRestoredFromAnOldSnapshot(t *testing.T) {
	t.Parallel()
	s := apitest.NewServer(t, apitest.Options{Env: map[string]string{"REVOCATION_POLL_INTERVAL": "200ms"}})
	a, b := s.NewUser(), s.NewUser()
	if me(t, s, a.Tokens.AccessToken) != 200 {
		t.Fatal("warm-up")
	}
	rdb := s.Redis.Client()
	for deadline := time.Now().Add(5 * time.Second); rdb.Exists(ctx, "gatehouse:{rv}:epoch").Val() != 1; {
		if time.Now().After(deadline) {
			t.Fatal("the revocation cache never warmed up")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := rdb.Save(ctx).Err(); err != nil { // the snapshot, taken before the logout
		t.Fatal(err)
	}
	if _, err := a.Client.LogoutWithResponse(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(600 * time.Millisecond) // one poll interval and then some
	s.Redis.Stop()
	s.Redis.Start() // loads the old snapshot: epoch present, marker absent
	if n, err := rdb.Exists(ctx, "gatehouse:{rv}:epoch").Result(); err != nil || n != 1 {
		t.Fatalf("the snapshot should hold the epoch: %d %v", n, err)
	}
	if me(t, s, a.Tokens.AccessToken) != 401 {
		t.Fatal("a token logged out before Redis was restored from an old snapshot is accepted")
	}
	if me(t, s, b.Tokens.AccessToken) != 200 {
		t.Fatal("a live token is refused")
	}
}

func TestRefresh_ConcurrentWithoutGraceExactlyOneWins(t *testing.T) {
	t.Parallel()
	s := apitest.NewServer(t, apitest.Options{Env: map[string]string{"REFRESH_TOKEN_GRACE": "0s"}})
	u := s.NewUser()
	var wg sync.WaitGroup
	codes := make([]int, 20)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i] = refresh(t, s, u.Tokens.RefreshToken).StatusCode()
		}()
	}
	wg.Wait()
	ok := 0
	for _, c := range codes {
		if c == 200 {
			ok++
		} else if c != 401 {
			t.Errorf("status %d", c)
		}
	}
	if ok != 1 {
		t.Fatalf("%d refreshes of one token succeeded without a grace window, want 1: %v", ok, codes)
	}
}

// TestRefresh_SessionBehindTheUsersTokenVersionIsDead: a session opened by
// a login that raced a logout-all (or a reset) carries the old version; its
// refresh token must not revive it.
func TestRefresh_SessionBehindTheUsersTokenVersionIsDead(t *testing.T) {
	t.Parallel()
	s := apitest.NewServer(t, apitest.Options{})
	u := s.NewUser()
	pool := apitest.Pool(t, s.DatabaseURL)
	if _, err := pool.Exec(ctx, `UPDATE users SET token_version = token_version + 1, tokens_revoked_at = now() WHERE email = $1`, u.Email); err != nil {
		t.Fatal(err)
	}
	if r := refresh(t, s, u.Tokens.RefreshToken); r.StatusCode() != 401 {
		t.Fatalf("refresh of a session behind the user's token version: %d %s", r.StatusCode(), r.Body)
	}
}

func TestLockout_ParallelGuessesAreAllCounted(t *testing.T) {
	t.Parallel()
	s := apitest.NewServer(t, apitest.Options{})
	u := s.NewUser()
	var wg sync.WaitGroup
	codes := make([]int, 10)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i] = login(t, s, u.Email, fmt.Sprintf("parallel guess number %d", i)).StatusCode()
		}()
	}
	wg.Wait()
	checked := 0
	for _, c := range codes {
		if c == 401 {
			checked++
		}
	}
	if checked != 5 {
		t.Fatalf("%d of 10 parallel guesses were checked, want the 5 free ones: %v", checked, codes)
	}
}

func TestRegister_EmailTooLongOnceNormalised(t *testing.T) {
	t.Parallel()
	s := apitest.NewServer(t, apitest.Options{})
	// U+FB2C is one character that NFC turns into three.
	email := strings.Repeat("\uFB2C", 100) + "@example.com"
	res, err := s.Client.RegisterWithResponse(ctx, client.RegisterJSONRequestBody{Email: openapi_types.Email(email), Password: apitest.Password})
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode() != 422 || !strings.Contains(string(res.Body), `"email"`) {
		t.Fatalf("got %d %s", res.StatusCode(), res.Body)
	}
}

// TestLogin_RehashesWhenTheParametersChange: a hash made with weaker
// argon2id parameters is replaced at the next successful login.
func TestLogin_RehashesWhenTheParametersChange(t *testing.T) {
	t.Parallel()
	dbURL := apitest.DatabaseURL(t)
	weak := apitest.NewServer(t, apitest.Options{DatabaseURL: dbURL, Env: map[string]string{"ARGON2_TIME": "1"}})
	email := apitest.NewEmail("rehash")
	weak.Register(email, apitest.Password)
	strong := apitest.NewServer(t, apitest.Options{DatabaseURL: dbURL, Env: map[string]string{"ARGON2_TIME": "2"}})
	strong.Secret("raw email", email)
	strong.Login(email, apitest.Password)
	var hash string
	if err := apitest.Pool(t, dbURL).QueryRow(ctx, `SELECT password_hash FROM users WHERE email = $1`, email).Scan(&hash); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(hash, "m=4096,t=2,p=1") {
		t.Fatalf("the hash was not upgraded: %.40s", hash)
	}
	strong.Login(email, apitest.Password) // and it still verifies
}

// TestRedisDown_LoginStillWorks: rate limits and lockout live in Redis; when
// it is down they let requests through (logged) rather than lock everyone out.
func TestRedisDown_LoginStillWorks(t *testing.T) {
	t.Parallel()
	s := apitest.NewServer(t, apitest.Options{})
	u := s.NewUser()
	s.Redis.Stop()
	if r := login(t, s, u.Email, u.Password); r.JSON200 == nil {
		t.Fatalf("login with Redis down: %d %s", r.StatusCode(), r.Body)
	}
	if !strings.Contains(s.Logs(), "rate limit not enforced") || !strings.Contains(s.Logs(), "login lockout not enforced") {
		t.Fatal("the unenforced limits must be logged")
	}
}

// TestRateLimitedOperations_TellTheQuotaLeft: a rate-limited operation
// answers with the RateLimit fields of its tightest limit, success or not;
// other operations send none.
func TestRateLimitedOperations_TellTheQuotaLeft(t *testing.T) {
	t.Parallel()
	s := apitest.NewServer(t, apitest.Options{})
	u := s.NewUser()
	body := `{"email":"` + u.Email + `","password":"` + u.Password + `"}`
	res, b := send(t, s, "POST", "/api/v1/auth/login", "", "application/json", body)
	if res.StatusCode != 200 {
		t.Fatalf("login: %d %s", res.StatusCode, b)
	}
	// login-account (10 a minute) is tighter than login-ip (30), and this
	// client already logged in once.
	if p, r := res.Header.Get("RateLimit-Policy"), res.Header.Get("RateLimit"); !strings.HasPrefix(p, `"login-account";q=10;w=60`) || !strings.HasPrefix(r, `"login-account";r=8;t=`) {
		t.Fatalf("login: RateLimit-Policy %q, RateLimit %q", p, r)
	}
	res, b = send(t, s, "POST", "/api/v1/auth/login", "", "application/json", `{"email":"`+u.Email+`","password":"not the password at all"}`)
	if res.StatusCode != 401 || res.Header.Get("RateLimit") == "" {
		t.Fatalf("failed login: %d %v %s", res.StatusCode, res.Header, b)
	}
	res, _ = send(t, s, "GET", "/api/v1/users/me", u.Tokens.AccessToken, "", "")
	if res.StatusCode != 200 || res.Header.Get("RateLimit") != "" || res.Header.Get("RateLimit-Policy") != "" {
		t.Fatalf("an operation without limits: %d %v", res.StatusCode, res.Header)
	}
}
