package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	openapi_types "github.com/oapi-codegen/runtime/types"

	ghclient "github.com/gatehouse/gatehouse/clients/go"
	"github.com/gatehouse/gatehouse/gen/client"
	"github.com/gatehouse/gatehouse/internal/apitest"
	"github.com/gatehouse/gatehouse/internal/token"
)

// instance is one gatehouse process of a test deployment.
type instance struct {
	url  string
	cmd  *exec.Cmd
	logs *apitest.LockedLog
	c    *client.ClientWithResponses
	env  map[string]string // the deployment's shared settings
}

// startCluster runs n gatehouse binaries on one PostgreSQL database, one
// Redis and one signing key, each on its own port.
func startCluster(t *testing.T, n int, extraEnv ...string) []*instance {
	t.Helper()
	dbURL := apitest.DatabaseURL(t)
	rd := apitest.StartRedis(t)
	k, err := token.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	pemBytes := apitest.Must(token.MarshalKeyPEM(k))(t)
	keyFile := filepath.Join(t.TempDir(), "signing.pem")
	if err := os.WriteFile(keyFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	shared := apitest.TestEnv(dbURL, rd.URL())
	shared["JWT_SIGNING_KEY_FILES"] = keyFile
	var out []*instance
	for range n {
		out = append(out, startInstance(t, shared, extraEnv))
	}
	return out
}

// startClusterOn starts one more instance of like's deployment.
func startClusterOn(t *testing.T, like *instance, extraEnv ...string) *instance {
	t.Helper()
	return startInstance(t, like.env, extraEnv)
}

func startInstance(t *testing.T, shared map[string]string, extraEnv []string) *instance {
	t.Helper()
	{
		port := freePort(t)
		for _, kv := range extraEnv { // a test that must know the address first
			if p, ok := strings.CutPrefix(kv, "PORT="); ok {
				port, _ = strconv.Atoi(p)
			}
		}
		in := &instance{url: fmt.Sprintf("http://127.0.0.1:%d", port), logs: &apitest.LockedLog{}, env: shared}
		env := map[string]string{}
		for k, v := range shared {
			env[k] = v
		}
		env["PORT"] = fmt.Sprint(port)
		env["LOG_LEVEL"] = "info"
		env["MAIL_DIR"] = t.TempDir()
		cmd := exec.Command(binary, "serve")
		cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
		for k, v := range env {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		cmd.Env = append(cmd.Env, extraEnv...)
		cmd.Dir = t.TempDir()
		cmd.Stdout, cmd.Stderr = in.logs, in.logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		in.cmd = cmd
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		})
		deadline := time.Now().Add(15 * time.Second)
		for {
			res, err := get(t, in.url+"/health/ready")
			if err == nil {
				res.Body.Close()
				if res.StatusCode == 200 {
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("instance on %s not ready:\n%s", in.url, in.logs.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
		c, err := client.NewClientWithResponses(in.url)
		if err != nil {
			t.Fatal(err)
		}
		in.c = c
		return in
	}
}

func TestCluster_LogoutOnOneInstanceIsRefusedByAll(t *testing.T) {
	t.Parallel()
	nodes := startCluster(t, 3)
	ctx := context.Background()
	email := apitest.NewEmail("cluster")
	reg, err := nodes[0].c.RegisterWithResponse(ctx, client.RegisterJSONRequestBody{Email: openapi_types.Email(email), Password: apitest.Password})
	if err != nil {
		t.Fatal(err)
	}
	if reg.StatusCode() != 202 {
		t.Fatalf("register: %v %d", err, reg.StatusCode())
	}
	login, err := nodes[1].c.LoginWithResponse(ctx, client.LoginJSONRequestBody{Email: openapi_types.Email(email), Password: apitest.Password})
	if err != nil {
		t.Fatal(err)
	}
	if login.JSON200 == nil {
		t.Fatalf("login: %v %s", err, login.Body)
	}
	tok := login.JSON200.Data.AccessToken
	for i, n := range nodes {
		if r, err := n.c.GetMeWithResponse(ctx, ghclient.Bearer(tok)); err != nil || r.StatusCode() != 200 {
			t.Fatalf("instance %d refuses a token another issued: %v %d\n%s", i, err, r.StatusCode(), n.logs.String())
		}
	}
	if r, err := nodes[2].c.LogoutWithResponse(ctx, ghclient.Bearer(tok)); err != nil || r.StatusCode() != 204 {
		t.Fatalf("logout: %v %d", err, r.StatusCode())
	}
	// The revoking instance refuses at once; the others once the revocation
	// feed reaches them (milliseconds; `make bench` measures the p99).
	if r, err := nodes[2].c.GetMeWithResponse(ctx, ghclient.Bearer(tok)); err != nil || r.StatusCode() != 401 {
		t.Fatalf("the revoking instance still accepts the token: %v %d", err, r.StatusCode())
	}
	for i, n := range nodes[:2] {
		d := refusedWithin(t, func() int {
			return apitest.Must(n.c.GetMeWithResponse(ctx, ghclient.Bearer(tok)))(t).StatusCode()
		}, 2*time.Second)
		t.Logf("instance %d refused the token %v after the logout", i, d)
	}
	// Refresh rotation is shared too: a token rotated on one instance is
	// reuse on another.
	l2 := apitest.Must(nodes[0].c.LoginWithResponse(ctx, client.LoginJSONRequestBody{Email: openapi_types.Email(email), Password: apitest.Password}))(t)
	if l2.JSON200 == nil {
		t.Fatalf("second login: %s", l2.Body)
	}
	r1 := apitest.Must(nodes[1].c.RefreshTokensWithResponse(ctx, client.RefreshTokensJSONRequestBody{RefreshToken: l2.JSON200.Data.RefreshToken}))(t)
	if r1.JSON200 == nil {
		t.Fatalf("refresh on instance 1: %s", r1.Body)
	}
	for i, n := range nodes {
		if r := apitest.Must(n.c.GetMeWithResponse(ctx, ghclient.Bearer(r1.JSON200.Data.AccessToken)))(t); r.StatusCode() != 200 {
			t.Fatalf("instance %d refuses a refreshed token: %d", i, r.StatusCode())
		}
	}
}

func TestCluster_LoginRateLimitIsCountedAcrossInstances(t *testing.T) {
	t.Parallel()
	nodes := startCluster(t, 3, "RATE_LIMITS=login-ip=5/1m")
	ctx := context.Background()
	statuses := []int{}
	for i := range 6 {
		r, err := nodes[i%3].c.LoginWithResponse(ctx, client.LoginJSONRequestBody{
			Email: openapi_types.Email(apitest.NewEmail("spray")), Password: "a guess that will not work",
		})
		if err != nil {
			t.Fatal(err)
		}
		statuses = append(statuses, r.StatusCode())
	}
	// Each instance saw two attempts; together they exceeded the limit of 5.
	if fmt.Sprint(statuses) != "[401 401 401 401 401 429]" {
		t.Fatalf("statuses %v: the limit is not shared", statuses)
	}
}

func TestCreateAdmin_MakesTheFirstAdministrator(t *testing.T) {
	t.Parallel()
	dbURL := apitest.DatabaseURL(t)
	rd := apitest.StartRedis(t)
	env := []string{"DATABASE_URL=" + dbURL, "REDIS_URL=" + rd.URL(), "ARGON2_MEMORY_KIB=4096", "ARGON2_TIME=1"}
	run := func(stdin string, args ...string) (string, error) {
		cmd := exec.Command(binary, args...)
		cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
		cmd.Dir = t.TempDir()
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := run("short\n", "create-admin", "--email", "root@example.com"); err == nil || !strings.Contains(out, "at least 15 characters") {
		t.Fatalf("weak password accepted: %v %s", err, out)
	}
	if out, err := run("", "create-admin"); err == nil || !strings.Contains(out, "usage") {
		t.Fatalf("missing email: %v %s", err, out)
	}
	out, err := run(apitest.Password+"\n", "create-admin", "--email", "Root@Example.com")
	if err != nil || !strings.Contains(out, "created administrator root@example.com") {
		t.Fatalf("create-admin: %v %s", err, out)
	}
	if strings.Contains(out, apitest.Password) {
		t.Fatal("create-admin printed the password")
	}
	s := apitest.NewServer(t, apitest.Options{DatabaseURL: dbURL, Redis: rd})
	tok := s.Login("root@example.com", apitest.Password)
	me, err := s.WithToken(tok.AccessToken).GetMeWithResponse(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if me.JSON200 == nil || !me.JSON200.Data.EmailVerified || strings.Join(me.JSON200.Data.Roles, ",") != "admin,user" {
		t.Fatalf("admin account: %v %s", err, me.Body)
	}
	// An existing account is promoted only once its owner verified the
	// address: anyone may register someone else's address first.
	s.Register("second@example.com", apitest.Password)
	out, err = run("ignored\n", "create-admin", "--email", "second@example.com")
	if err == nil || !strings.Contains(out, "not verified") || strings.Contains(out, "second@example.com") {
		t.Fatalf("promote an unverified account: %v %s", err, out)
	}
	s.VerifyFromMail("second@example.com")
	out, err = run("ignored\n", "create-admin", "--email", "second@example.com")
	if err != nil || !strings.Contains(out, "granted the admin role") {
		t.Fatalf("promote: %v %s", err, out)
	}
}

func smtpEnv(m *apitest.SMTP) []string {
	var out []string
	for k, v := range m.Env() {
		out = append(out, k+"="+v)
	}
	return out
}

func TestCluster_TwoInstancesDeliverEachMailOnce(t *testing.T) {
	t.Parallel()
	mailbox := apitest.StartSMTP(t)
	nodes := startCluster(t, 2, smtpEnv(mailbox)...)
	ctx := context.Background()
	var emails []string
	for i := range 8 {
		email := apitest.NewEmail("outbox")
		emails = append(emails, email)
		n := nodes[i%2]
		if r, err := n.c.RegisterWithResponse(ctx, client.RegisterJSONRequestBody{Email: openapi_types.Email(email), Password: apitest.Password}); err != nil || r.StatusCode() != 202 {
			t.Fatalf("register: %v", err)
		}
		if r, err := nodes[(i+1)%2].c.ForgotPasswordWithResponse(ctx, client.ForgotPasswordJSONRequestBody{Email: openapi_types.Email(email)}); err != nil || r.StatusCode() != 202 {
			t.Fatalf("forgot: %v", err)
		}
	}
	for _, e := range emails {
		mailbox.WaitFor(e, 2, 20*time.Second)
	}
	time.Sleep(time.Second) // time for a duplicate to show up
	if n := len(mailbox.Mails()); n != 2*len(emails) {
		t.Fatalf("%d mails delivered for %d, some twice", n, 2*len(emails))
	}
}

func TestCluster_MailOfAKilledWorkerIsSentByAnother(t *testing.T) {
	t.Parallel()
	mailbox := apitest.StartSMTP(t)
	mailbox.SetStall()
	env := append(smtpEnv(mailbox), "MAIL_RESCUE_AFTER=3s")
	nodes := startCluster(t, 1, env...)
	ctx := context.Background()
	email := apitest.NewEmail("crash")
	if r, err := nodes[0].c.RegisterWithResponse(ctx, client.RegisterJSONRequestBody{Email: openapi_types.Email(email), Password: apitest.Password}); err != nil || r.StatusCode() != 202 {
		t.Fatalf("register: %v", err)
	}
	waitUntil(t, 10*time.Second, func() bool { return mailbox.Stalled() > 0 }) // the mail is being sent
	if err := nodes[0].cmd.Process.Kill(); err != nil {                        // crash mid-send
		t.Fatal(err)
	}
	_ = nodes[0].cmd.Wait()
	mailbox.Release()
	// Another instance on the same database takes the orphaned job over.
	next := startClusterOn(t, nodes[0], env...)
	_ = next
	m := mailbox.WaitFor(email, 1, 60*time.Second)
	time.Sleep(time.Second)
	if got := mailbox.WaitFor(email, 1, time.Second); len(got) != 1 || !strings.Contains(m[0].Subject, "Confirm your email address") {
		t.Fatalf("%d mails after the crash, want exactly 1", len(got))
	}
}

// TestCluster_AdminDemotedDisabledOrDeletedIsRefusedEverywhere: a change made
// on one instance refuses the admin's existing token on the next request to
// any instance.
func TestCluster_AdminDemotedDisabledOrDeletedIsRefusedEverywhere(t *testing.T) {
	t.Parallel()
	nodes := startCluster(t, 2)
	ctx := context.Background()
	pool := apitest.Pool(t, nodes[0].env["DATABASE_URL"])
	newAdmin := func() (string, openapi_types.UUID) {
		email := apitest.NewEmail("clusteradmin")
		if r, err := nodes[0].c.RegisterWithResponse(ctx, client.RegisterJSONRequestBody{Email: openapi_types.Email(email), Password: apitest.Password}); err != nil || r.StatusCode() != 202 {
			t.Fatalf("register: %v", err)
		}
		var id openapi_types.UUID
		if err := pool.QueryRow(ctx, `WITH u AS (UPDATE users SET email_verified_at = now() WHERE email = $1 RETURNING id)
			INSERT INTO user_roles (user_id, role) SELECT id, 'admin' FROM u RETURNING user_id`, email).Scan(&id); err != nil {
			t.Fatal(err)
		}
		l, err := nodes[1].c.LoginWithResponse(ctx, client.LoginJSONRequestBody{Email: openapi_types.Email(email), Password: apitest.Password})
		if err != nil {
			t.Fatal(err)
		}
		if l.JSON200 == nil {
			t.Fatalf("login: %v", err)
		}
		return l.JSON200.Data.AccessToken, id
	}
	boss, _ := newAdmin() // returns the token and the id; the id is not needed here
	yes := true
	for name, act := range map[string]func(id openapi_types.UUID) int{
		"demoted": func(id openapi_types.UUID) int {
			r := apitest.Must(nodes[0].c.SetUserRolesWithResponse(ctx, id, client.SetUserRolesJSONRequestBody{Roles: []string{"user"}}, ghclient.Bearer(boss)))(t)
			return r.StatusCode()
		},
		"disabled": func(id openapi_types.UUID) int {
			r := apitest.Must(nodes[0].c.UpdateUserWithResponse(ctx, id, client.UpdateUserJSONRequestBody{Disabled: &yes}, ghclient.Bearer(boss)))(t)
			return r.StatusCode()
		},
		"deleted": func(id openapi_types.UUID) int {
			r := apitest.Must(nodes[0].c.DeleteUserWithResponse(ctx, id, ghclient.Bearer(boss)))(t)
			return r.StatusCode()
		},
	} {
		tok, id := newAdmin()
		for i, n := range nodes {
			if r := apitest.Must(n.c.ListUsersWithResponse(ctx, nil, ghclient.Bearer(tok)))(t); r.StatusCode() != 200 {
				t.Fatalf("%s: instance %d refuses the admin before: %d", name, i, r.StatusCode())
			}
		}
		if st := act(id); st != 200 && st != 204 {
			t.Fatalf("%s: %d", name, st)
		}
		// The acting instance refuses at once, the other once the
		// revocation feed reaches it.
		if r := apitest.Must(nodes[0].c.ListUsersWithResponse(ctx, nil, ghclient.Bearer(tok)))(t); r.StatusCode() != 401 {
			t.Fatalf("%s admin: the acting instance answered %d, want 401", name, r.StatusCode())
		}
		d := refusedWithin(t, func() int {
			return apitest.Must(nodes[1].c.ListUsersWithResponse(ctx, nil, ghclient.Bearer(tok)))(t).StatusCode()
		}, 2*time.Second)
		t.Logf("%s admin: refused by the other instance %v after", name, d)
	}
}

// refusedWithin calls ask again and again until it answers 401, and fails
// the test when it still answers 200 after limit: instances other than the
// acting one hear of a revocation through the feed, a few milliseconds
// later. Any other status fails at once.
func refusedWithin(t *testing.T, ask func() int, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		switch st := ask(); {
		case st == 401:
			return time.Since(start)
		case st != 200:
			t.Fatalf("after the revocation: %d", st)
		case time.Since(start) > limit:
			t.Fatalf("a revoked token is still accepted %v after the revocation", limit)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
