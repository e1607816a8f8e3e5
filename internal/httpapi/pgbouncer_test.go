package httpapi_test

import (
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/gen/client"
	"github.com/gatehouse/gatehouse/internal/apitest"
)

// TestPgBouncer_AccountsAndMailWorkThroughATransactionPooler: with
// DATABASE_URL through a real PgBouncer in transaction mode (fewer server
// connections than the server's pool) and DATABASE_POOLER=transaction,
// two instances of one deployment register, verify by mail, log in,
// refresh, reset a password and log out everywhere; the mail workers send
// every mail once (River polls: nothing LISTENs, since a LISTEN through the
// pooler would stay on a server connection other clients then use).
// `make test-pgbouncer` runs the whole HTTP suite this way.
func TestPgBouncer_AccountsAndMailWorkThroughATransactionPooler(t *testing.T) {
	t.Parallel()
	mailbox := apitest.StartSMTP(t)
	stmts := apitest.NewStatements()
	a := apitest.NewServer(t, apitest.Options{PgBouncer: true, Mailbox: mailbox, Statements: stmts})
	b := apitest.NewServer(t, apitest.Options{PgBouncer: true, Mailbox: mailbox, Statements: stmts, DatabaseURL: a.DatabaseURL, Redis: a.Redis})

	admin := a.NewAdmin() // registered, verified from the mail, promoted
	u := b.NewUser()
	a.VerifyFromMail(u.Email)
	other := a.Login(u.Email, u.Password)
	if r := refresh(t, b, other.RefreshToken); r.JSON200 == nil {
		t.Fatalf("refresh through the pooler: %d %s", r.StatusCode(), r.Body)
	}

	if res := forgot(t, b, u.Email); res.StatusCode() != 202 {
		t.Fatalf("forgot: %d %s", res.StatusCode(), res.Body)
	}
	tok := mailbox.WaitForSubject(u.Email, "Reset your gatehouse password", 1, 30*time.Second)[0].Token()
	if r := reset(t, a, tok, newPassword); r.StatusCode() != 204 {
		t.Fatalf("reset: %d %s", r.StatusCode(), r.Body)
	}
	mailbox.WaitForSubject(u.Email, "password was reset", 1, 30*time.Second)
	for _, s := range []*apitest.Server{a, b} {
		if me(t, s, u.Tokens.AccessToken) != 401 {
			t.Fatal("an access token from before the reset still works")
		}
	}
	fresh := b.Login(u.Email, newPassword)
	if r, err := b.WithToken(fresh.AccessToken).LogoutAllWithResponse(ctx); err != nil || r.StatusCode() != 204 {
		t.Fatalf("logout-all: %v", err)
	}
	if me(t, a, fresh.AccessToken) != 401 {
		t.Fatal("a token logged out everywhere still works on the other instance")
	}

	// jsonb details written and read through the pooler.
	events, err := admin.Client.ListAuditEventsWithResponse(ctx, &client.ListAuditEventsParams{Action: ptr(client.AuditAction("user.password.reset"))})
	if err != nil || events.JSON200 == nil || len(events.JSON200.Data) != 1 {
		t.Fatalf("audit events of the reset: %v %s", err, events.Body)
	}

	// Each mail once, though both instances work the queue.
	time.Sleep(500 * time.Millisecond)
	for _, subject := range []string{"Confirm your email address", "Reset your gatehouse password", "password was reset"} {
		if n := len(mailbox.WaitForSubject(u.Email, subject, 1, time.Second)); n != 1 {
			t.Errorf("%d mails %q, want 1", n, subject)
		}
	}

	if n := stmts.Background("LISTEN"); n != 0 {
		t.Fatalf("%d LISTEN statements through the pooler", n)
	}
	if stmts.Background("JobGetAvailable") == 0 {
		t.Fatal("no poll for jobs recorded: the record misses the workers' statements")
	}
}
