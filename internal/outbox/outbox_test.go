package outbox_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/gatehouse/gatehouse/internal/account"
	"github.com/gatehouse/gatehouse/internal/apitest"
	"github.com/gatehouse/gatehouse/internal/mail"
	"github.com/gatehouse/gatehouse/internal/outbox"
	"github.com/gatehouse/gatehouse/internal/pgstore"
	"github.com/gatehouse/gatehouse/internal/token"
	"github.com/gatehouse/gatehouse/internal/user"
)

// sent records the mails handed to delivery; fail makes delivery fail.
type sent struct {
	mu   sync.Mutex
	all  []mail.Message
	fail error
}

func (s *sent) Send(_ context.Context, m mail.Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	s.all = append(s.all, m)
	return nil
}

func (s *sent) mails() []mail.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]mail.Message(nil), s.all...)
}

type fixture struct {
	store  *pgstore.Store
	sender *sent
	worker *outbox.Worker
	failed *atomic.Int64 // failed attempts reported
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	store := pgstore.New(apitest.Pool(t, apitest.DatabaseURL(t)), nil)
	r, err := mail.NewRenderer()
	if err != nil {
		t.Fatal(err)
	}
	s := &sent{}
	failed := &atomic.Int64{}
	w := outbox.NewWorker(store, r, s, outbox.Config{
		Product: "gatehouse", PublicURL: "https://auth.example.com", ResetTTL: time.Hour, VerifyTTL: 24 * time.Hour, AttemptTimeout: 10 * time.Second,
		Failed: func() { failed.Add(1) },
	})
	return fixture{store: store, sender: s, worker: w, failed: failed}
}

func (f fixture) account(t *testing.T, verified bool) account.Profile {
	t.Helper()
	u, err := f.store.CreateUser(t.Context(), account.NewUser{
		ID: account.NewID(), Email: apitest.NewEmail("outbox"), PasswordHash: "x", Verified: verified, Roles: []string{account.RoleUser},
	})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func (f fixture) work(t *testing.T, a outbox.Args) error {
	t.Helper()
	return f.worker.Work(t.Context(), &river.Job[outbox.Args]{JobRow: &rivertype.JobRow{ID: 42}, Args: a})
}

// tokenOf reads the token of a mail's link.
func tokenOf(t *testing.T, m mail.Message) string {
	t.Helper()
	i := strings.Index(m.Text, "?token=")
	if i < 0 {
		t.Fatalf("no link in %q", m.Text)
	}
	raw := strings.Fields(m.Text[i+len("?token="):])[0]
	tok, err := url.QueryUnescape(raw)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestWorker_RequestedMailsGoOnlyToAccountsThatTakeThem: a mail asked for by
// address is sent only when a live account takes it; the answer to the
// request was the same either way.
func TestWorker_RequestedMailsGoOnlyToAccountsThatTakeThem(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	live, verified, disabled := f.account(t, false), f.account(t, true), f.account(t, false)
	if _, _, err := f.store.Manage(t.Context(), disabled.ID, func(tg user.Target) (user.Edit, error) {
		e := user.Edit{User: tg.User, EndSessions: "disabled"}
		e.User.DisabledAt = new(time.Now())
		return e, nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		kind mail.Kind
		to   string
		sent bool
	}{
		{"a reset to a live account", mail.PasswordReset, live.Email, true},
		{"a reset to no account", mail.PasswordReset, apitest.NewEmail("nobody"), false},
		{"a reset to a disabled account", mail.PasswordReset, disabled.Email, false},
		{"a verification to an unverified account", mail.VerifyEmail, live.Email, true},
		{"a verification to a verified account", mail.VerifyEmail, verified.Email, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(f.sender.mails())
			if err := f.work(t, outbox.Args{Mail: tc.kind, To: tc.to, Requested: true}); err != nil {
				t.Fatal(err)
			}
			got := f.sender.mails()[before:]
			if (len(got) == 1) != tc.sent || len(got) > 1 {
				t.Fatalf("%d mails sent, want sent=%v", len(got), tc.sent)
			}
		})
	}
}

// TestWorker_ALinkCarriesAUsableTokenStoredAsItsHash: the token is made when
// the mail is sent (the job holds no secret) and only its hash is stored.
func TestWorker_ALinkCarriesAUsableTokenStoredAsItsHash(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	u := f.account(t, false)
	if err := f.work(t, outbox.Args{Mail: mail.PasswordReset, UserID: u.ID, To: u.Email}); err != nil {
		t.Fatal(err)
	}
	m := f.sender.mails()[0]
	if !strings.Contains(m.Text, "https://auth.example.com/reset-password?token=") || m.ID != "42.password_reset@gatehouse" {
		t.Fatalf("mail %s: %q", m.ID, m.Text)
	}
	tok := tokenOf(t, m)
	got, err := f.store.PeekOneTimeToken(t.Context(), token.HashOpaque(tok), account.PurposeReset)
	if err != nil || got.UserID != u.ID {
		t.Fatalf("the mailed token: %+v %v", got, err)
	}
	// A retry makes a new token, which replaces the first.
	if err := f.work(t, outbox.Args{Mail: mail.PasswordReset, UserID: u.ID, To: u.Email}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.PeekOneTimeToken(t.Context(), token.HashOpaque(tok), account.PurposeReset); err == nil {
		t.Fatal("the token of an earlier attempt still works")
	}
}

// TestWorker_AMootMailIsCancelled: a mail asked for before the account's
// tokens were revoked (a password change after an email change request) is
// cancelled, not retried.
func TestWorker_AMootMailIsCancelled(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	u := f.account(t, true)
	old := u.TokenVersion
	if _, err := f.store.RevokeUser(t.Context(), u.ID, "password_changed"); err != nil {
		t.Fatal(err)
	}
	err := f.work(t, outbox.Args{Mail: mail.EmailChange, UserID: u.ID, To: apitest.NewEmail("new"), TokenVersion: &old})
	var cancel *river.JobCancelError
	if !errors.As(err, &cancel) || !errors.Is(err, outbox.ErrNotMailable) || len(f.sender.mails()) != 0 {
		t.Fatalf("a moot mail: %v, %d sent", err, len(f.sender.mails()))
	}
}

// TestWorker_AFailedDeliveryNamesNoAddress: the error River logs and keeps
// masks the recipient.
func TestWorker_AFailedDeliveryNamesNoAddress(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	u := f.account(t, true)
	f.sender.fail = errors.New("550 mailbox " + u.Email + " unavailable")
	err := f.work(t, outbox.Args{Mail: mail.PasswordChanged, UserID: u.ID, To: u.Email})
	if err == nil || strings.Contains(err.Error(), u.Email) || !strings.Contains(err.Error(), "550 mailbox") {
		t.Fatalf("delivery error: %v", err)
	}
}

// TestWorker_ReportsFailedAttempts: each failed delivery attempt is reported
// (a metric counts them); a sent mail and a mail cancelled as moot are not.
func TestWorker_ReportsFailedAttempts(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	u := f.account(t, true)
	if err := f.work(t, outbox.Args{Mail: mail.PasswordChanged, UserID: u.ID, To: u.Email}); err != nil {
		t.Fatal(err)
	}
	old := u.TokenVersion
	if _, err := f.store.RevokeUser(t.Context(), u.ID, "password_changed"); err != nil {
		t.Fatal(err)
	}
	if err := f.work(t, outbox.Args{Mail: mail.EmailChange, UserID: u.ID, To: apitest.NewEmail("new"), TokenVersion: &old}); err == nil {
		t.Fatal("a moot mail was sent")
	}
	if n := f.failed.Load(); n != 0 {
		t.Fatalf("%d failures reported for a sent and a cancelled mail", n)
	}
	f.sender.fail = errors.New("421 try again later")
	for range 2 {
		if err := f.work(t, outbox.Args{Mail: mail.PasswordChanged, UserID: u.ID, To: u.Email}); err == nil {
			t.Fatal("a failed delivery succeeded")
		}
	}
	if n := f.failed.Load(); n != 2 {
		t.Fatalf("%d failures reported, want 2", n)
	}
}
