package httpapi_test

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	openapi_types "github.com/oapi-codegen/runtime/types"

	"github.com/gatehouse/gatehouse/gen/client"
	"github.com/gatehouse/gatehouse/internal/apitest"
)

// scrape reads /metrics from the main port with the headers of h and
// returns the status, the content type and the body.
func scrape(t *testing.T, s *apitest.Server, h map[string]string) (status int, contentType, body string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, s.URL+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header.Set(k, v)
	}
	res, err := s.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(res.Body); err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, res.Header.Get("Content-Type"), b.String()
}

// sample is one line of the exposition: a series and its value.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

var labelPair = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)

func parseExposition(t *testing.T, text string) []sample {
	t.Helper()
	var out []sample
	for line := range strings.SplitSeq(text, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		s := sample{labels: map[string]string{}}
		var rest string
		if i := strings.IndexByte(line, '{'); i >= 0 {
			j := strings.LastIndexByte(line, '}')
			s.name, rest = line[:i], line[j+1:]
			for _, m := range labelPair.FindAllStringSubmatch(line[i+1:j], -1) {
				s.labels[m[1]] = m[2]
			}
		} else {
			s.name, rest, _ = strings.Cut(line, " ")
		}
		v, err := strconv.ParseFloat(strings.Fields(rest)[0], 64)
		if err != nil {
			t.Fatalf("cannot read %q: %v", line, err)
		}
		s.value = v
		out = append(out, s)
	}
	return out
}

// value sums the samples of name whose labels include want; found is false
// when there is none.
func value(samples []sample, name string, want map[string]string) (sum float64, found bool) {
next:
	for _, s := range samples {
		if s.name != name {
			continue
		}
		for k, v := range want {
			if s.labels[k] != v {
				continue next
			}
		}
		sum, found = sum+s.value, true
	}
	return sum, found
}

func promtool(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("PROMTOOL"); p != "" {
		return p
	}
	p, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool not found: `make test` installs it (scripts/devservices.sh promtool-path); or set PROMTOOL")
	}
	return p
}

// TestMetrics_ScrapedAfterRealTraffic drives real traffic through a server
// (logins that succeed and fail, reads, a forbidden call, an unknown path
// holding an email and an id, a reused refresh token) and reads /metrics: the
// exposition passes `promtool check metrics`, holds the figures of that
// traffic, and no label value is an email, a user id or a path.
func TestMetrics_ScrapedAfterRealTraffic(t *testing.T) {
	t.Parallel()
	s := apitest.NewServer(t, apitest.Options{Env: map[string]string{"REFRESH_TOKEN_GRACE": "0s"}})
	u := s.NewUser()
	if res := login(t, s, u.Email, "not the password at all"); res.StatusCode() != http.StatusUnauthorized {
		t.Fatalf("wrong password: %d", res.StatusCode())
	}
	if code := me(t, s, u.Tokens.AccessToken); code != http.StatusOK {
		t.Fatalf("me: %d", code)
	}
	id := userID(t, s, u.Tokens.AccessToken)
	if res := apitest.Must(u.Client.GetUserWithResponse(ctx, id))(t); res.StatusCode() != http.StatusForbidden {
		t.Fatalf("get user without permission: %d", res.StatusCode())
	}
	if res, _ := send(t, s, "GET", "/nowhere/"+u.Email+"/"+id.String(), "", "", ""); res.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown path: %d", res.StatusCode)
	}
	if res := refresh(t, s, u.Tokens.RefreshToken); res.JSON200 == nil {
		t.Fatalf("refresh: %d %s", res.StatusCode(), res.Body)
	}
	if res := refresh(t, s, u.Tokens.RefreshToken); res.StatusCode() != http.StatusUnauthorized {
		t.Fatalf("reused refresh token: %d", res.StatusCode())
	}

	status, ct, text := scrape(t, s, nil)
	if status != http.StatusOK || !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("GET /metrics: %d %s\n%.500s", status, ct, text)
	}
	samples := parseExposition(t, text)

	t.Run("promtool check metrics", func(t *testing.T) {
		cmd := exec.CommandContext(t.Context(), promtool(t), "check", "metrics") //nolint:gosec // G204: the tool the test runner names
		cmd.Stdin = strings.NewReader(text)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("promtool check metrics: %v\n%s", err, out)
		}
	})

	t.Run("figures of the traffic", func(t *testing.T) {
		for _, c := range []struct {
			name   string
			labels map[string]string
			min    float64
		}{
			{"gatehouse_http_requests_total", map[string]string{"operation": "login", "method": "POST", "status_class": "2xx"}, 1},
			{"gatehouse_http_requests_total", map[string]string{"operation": "login", "method": "POST", "status_class": "4xx"}, 1},
			{"gatehouse_http_requests_total", map[string]string{"operation": "getMe", "method": "GET", "status_class": "2xx"}, 1},
			{"gatehouse_http_requests_total", map[string]string{"operation": "getUser", "status_class": "4xx"}, 1},
			{"gatehouse_http_requests_total", map[string]string{"operation": "unmatched", "status_class": "4xx"}, 1},
			{"gatehouse_http_request_duration_seconds_count", map[string]string{"operation": "getMe"}, 1},
			{"gatehouse_login_attempts_total", map[string]string{"outcome": "success"}, 1},
			{"gatehouse_login_attempts_total", map[string]string{"outcome": "invalid_credentials"}, 1},
			{"gatehouse_login_attempts_total", map[string]string{"outcome": "locked"}, 0},
			{"gatehouse_refresh_token_reuse_detected_total", nil, 1},
			{"gatehouse_revocation_checks_total", nil, 2}, // getMe and getUser, whichever layer answered
			{"gatehouse_postgres_pool_connections", nil, 1},
			{"gatehouse_postgres_pool_acquires_total", nil, 1},
			{"gatehouse_redis_pool_connections", nil, 1},
			{"gatehouse_redis_pool_hits_total", nil, 0},
			{"gatehouse_outbox_queued_mails", nil, 0},
			{"gatehouse_outbox_delivery_failures_total", nil, 0},
			{"gatehouse_password_hash_wait_seconds_count", nil, 0},
			{"gatehouse_build_info", map[string]string{"version": "dev"}, 1},
			{"gatehouse_dependency_up", map[string]string{"dependency": "postgres"}, 1},
			{"gatehouse_dependency_up", map[string]string{"dependency": "redis"}, 1},
			{"go_goroutines", nil, 1},
			{"process_resident_memory_bytes", nil, 1},
		} {
			got, found := value(samples, c.name, c.labels)
			if !found || got < c.min {
				t.Errorf("%s%v = %v (found: %v), want at least %v\n%s", c.name, c.labels, got, found, c.min, text)
			}
		}
	})

	t.Run("no label holds an email, an id or a path", func(t *testing.T) {
		uuidRe := regexp.MustCompile(`[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}`)
		for _, sm := range samples {
			for k, v := range sm.labels {
				if strings.Contains(v, "@") || strings.Contains(v, "/") || uuidRe.MatchString(v) ||
					strings.Contains(strings.ToLower(v), "nowhere") || strings.Contains(v, id.String()) {
					t.Errorf("%s has label %s=%q", sm.name, k, v)
				}
			}
		}
	})
}

// TestMetrics_MainPortNeedsTheToken: with METRICS_TOKEN, /metrics on the
// main port answers only `Authorization: Bearer <METRICS_TOKEN>`.
func TestMetrics_MainPortNeedsTheToken(t *testing.T) {
	t.Parallel()
	const token = "a metrics token for the tests" //nolint:gosec // G101: a test value
	s := apitest.NewServer(t, apitest.Options{Env: map[string]string{"METRICS_TOKEN": token}})
	for _, c := range []struct {
		name, auth string
		want       int
	}{
		{"no token", "", http.StatusUnauthorized},
		{"another token", "Bearer a metrics token for the test", http.StatusUnauthorized},
		{"basic", "Basic " + token, http.StatusUnauthorized},
		{"the token", "Bearer " + token, http.StatusOK},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := map[string]string{}
			if c.auth != "" {
				h["Authorization"] = c.auth
			}
			status, _, text := scrape(t, s, h)
			if status != c.want {
				t.Fatalf("status %d, want %d: %.300s", status, c.want, text)
			}
			if c.want == http.StatusOK && !strings.Contains(text, "gatehouse_build_info") {
				t.Fatalf("no metrics: %.300s", text)
			}
		})
	}
}

// TestMetrics_MainPortWithoutTokenServesLoopbackOnly: without METRICS_TOKEN
// the metrics go to loopback clients only, also behind a reverse proxy on the
// same host (the address the trusted proxy forwards is what counts).
func TestMetrics_MainPortWithoutTokenServesLoopbackOnly(t *testing.T) {
	t.Parallel()
	s := apitest.NewServer(t, apitest.Options{Env: map[string]string{"TRUSTED_PROXIES": "127.0.0.1"}})
	if status, _, text := scrape(t, s, nil); status != http.StatusOK {
		t.Fatalf("loopback client: %d %.300s", status, text)
	}
	if status, _, text := scrape(t, s, map[string]string{"X-Forwarded-For": "203.0.113.9"}); status != http.StatusForbidden {
		t.Fatalf("remote client through a local proxy: %d %.300s", status, text)
	}
}

// TestMetrics_Disabled: METRICS_ENABLED=false serves no /metrics.
func TestMetrics_Disabled(t *testing.T) {
	t.Parallel()
	s := apitest.NewServer(t, apitest.Options{Env: map[string]string{"METRICS_ENABLED": "false"}})
	if status, _, _ := scrape(t, s, nil); status != http.StatusNotFound {
		t.Fatalf("GET /metrics with METRICS_ENABLED=false: %d", status)
	}
}

// TestMetrics_RateLimitBlocksAreCounted: a login refused by a limit counts
// as a block of that limit and as a rate-limited login.
func TestMetrics_RateLimitBlocksAreCounted(t *testing.T) {
	t.Parallel()
	limits := *generous()
	limits.LoginIP.Rate = 1
	s := apitest.NewServer(t, apitest.Options{RateLimits: &limits})
	email := apitest.NewEmail("limited")
	s.Secret("raw email", email)
	for range 2 {
		_ = apitest.Must(s.Client.LoginWithResponse(context.Background(), client.LoginJSONRequestBody{Email: openapi_types.Email(email), Password: "whatever it is, it is wrong"}))(t)
	}
	_, _, text := scrape(t, s, nil)
	samples := parseExposition(t, text)
	if got, _ := value(samples, "gatehouse_rate_limit_blocked_total", map[string]string{"limit": "login-ip"}); got != 1 {
		t.Errorf("login-ip blocks = %v, want 1", got)
	}
	if got, _ := value(samples, "gatehouse_login_attempts_total", map[string]string{"outcome": "rate_limited"}); got != 1 {
		t.Errorf("rate-limited logins = %v, want 1", got)
	}
}

// TestMetrics_RevocationFeedAndLostAnnouncements: an operator sees whether
// the instance answers revocation checks from its own copy, and how many
// revocations Redis would not take (other instances learn those from
// PostgreSQL only).
func TestMetrics_RevocationFeedAndLostAnnouncements(t *testing.T) {
	t.Parallel()
	s := apitest.NewServer(t, apitest.Options{})
	u := s.NewUser()
	feed := func() float64 {
		t.Helper()
		_, _, text := scrape(t, s, nil)
		v, found := value(parseExposition(t, text), "gatehouse_revocation_feed_current", nil)
		if !found {
			t.Fatalf("no gatehouse_revocation_feed_current:\n%s", text)
		}
		return v
	}
	for deadline := time.Now().Add(10 * time.Second); feed() != 1; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("gatehouse_revocation_feed_current never 1")
		}
	}
	s.Redis.Stop()
	for deadline := time.Now().Add(10 * time.Second); feed() != 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("gatehouse_revocation_feed_current still 1 with Redis down")
		}
	}
	if res := apitest.Must(u.Client.LogoutWithResponse(ctx))(t); res.StatusCode() != http.StatusNoContent {
		t.Fatalf("logout with Redis down: %d %s", res.StatusCode(), res.Body)
	}
	_, _, text := scrape(t, s, nil)
	if v, found := value(parseExposition(t, text), "gatehouse_revocation_announcements_failed_total", nil); !found || v != 1 {
		t.Fatalf("gatehouse_revocation_announcements_failed_total = %v (found %v), want 1", v, found)
	}
}
