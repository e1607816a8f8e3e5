package apitest

import (
	"fmt"
	"io"
	"net"
	"net/mail"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// Mail is a message the test SMTP server received.
type Mail struct {
	From, To string
	Subject  string
	Text     string // the text/plain part, decoded
	HTML     string // the text/html part, decoded
	Raw      string
}

// Token returns the one-time token in the mail's link (?token=...).
func (m Mail) Token() string {
	if g := tokenInLink.FindStringSubmatch(m.Text); g != nil {
		return g[1]
	}
	return ""
}

var tokenInLink = regexp.MustCompile(`\?token=([A-Za-z0-9_-]{43})`)

// SMTP is a real SMTP server in the test process (go-smtp) on a loopback
// port; it can be stopped and started again on the same port to simulate an
// outage.
type SMTP struct {
	t    testing.TB
	Port int
	mu   sync.Mutex
	srv  *smtp.Server
	got  []Mail
	// Stall, when set, holds every RCPT command until it is closed (a
	// delivery in flight, before the message is handed over).
	Stall   chan struct{}
	stalled int
	// Reject, when set, refuses every recipient with a permanent 550 that
	// quotes the address (as real servers do).
	Reject bool
}

// StartSMTP starts the server; it stops when the test ends.
func StartSMTP(t testing.TB) *SMTP {
	t.Helper()
	l, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &SMTP{t: t, Port: l.Addr().(*net.TCPAddr).Port}
	s.serve(l)
	t.Cleanup(s.Stop)
	return s
}

func (s *SMTP) serve(l net.Listener) {
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &session{s: s}, nil }))
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	s.mu.Lock()
	s.srv = srv
	s.mu.Unlock()
	go func() { _ = srv.Serve(l) }()
}

// Stop closes the server: connections are refused until Start.
func (s *SMTP) Stop() {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// Start serves again on the same port.
func (s *SMTP) Start() {
	s.t.Helper()
	var l net.Listener
	var err error
	for range 50 { // the port may take a moment to free
		if l, err = (&net.ListenConfig{}).Listen(s.t.Context(), "tcp", fmt.Sprintf("127.0.0.1:%d", s.Port)); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		s.t.Fatal(err)
	}
	s.serve(l)
}

// Env is the configuration that sends gatehouse's mail here.
func (s *SMTP) Env() map[string]string {
	return map[string]string{
		"MAIL_DRIVER": "smtp", "SMTP_HOST": "127.0.0.1", "SMTP_PORT": fmt.Sprint(s.Port), "SMTP_TLS": "none",
		"SMTP_FROM": "gatehouse <no-reply@gatehouse.test>",
	}
}

// Mails returns what arrived so far.
func (s *SMTP) Mails() []Mail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Mail(nil), s.got...)
}

// WaitFor waits until n mails to `to` arrived and returns them.
func (s *SMTP) WaitFor(to string, n int, within time.Duration) []Mail {
	s.t.Helper()
	return s.WaitForSubject(to, "", n, within)
}

// WaitForSubject waits until n mails to `to` whose subject contains subject
// arrived and returns them, in arrival order.
func (s *SMTP) WaitForSubject(to, subject string, n int, within time.Duration) []Mail {
	s.t.Helper()
	deadline := time.Now().Add(within)
	for {
		var out []Mail
		for _, m := range s.Mails() {
			if m.To == to && strings.Contains(m.Subject, subject) {
				out = append(out, m)
			}
		}
		if len(out) >= n {
			return out
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("waited %s for %d mail(s) to %s about %q, got %d", within, n, to, subject, len(out))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type session struct {
	s        *SMTP
	from, to string
}

func (x *session) Reset()                                      {}
func (x *session) Logout() error                               { return nil }
func (x *session) Mail(from string, _ *smtp.MailOptions) error { x.from = from; return nil }
func (x *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	x.s.mu.Lock()
	if x.s.Reject {
		x.s.mu.Unlock()
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "<" + to + ">: Recipient address rejected"}
	}
	stall := x.s.Stall
	if stall != nil {
		x.s.stalled++
	}
	x.s.mu.Unlock()
	if stall != nil {
		<-stall
	}
	x.to = to
	return nil
}

// SetReject makes the server refuse every recipient (or accept again).
func (s *SMTP) SetReject(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Reject = on
}

// Stalled is how many deliveries reached RCPT while Stall was set.
func (s *SMTP) Stalled() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stalled
}

// SetStall makes deliveries hang at RCPT until Release.
func (s *SMTP) SetStall() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Stall = make(chan struct{})
}

// Release lets stalled and later deliveries through.
func (s *SMTP) Release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Stall != nil {
		close(s.Stall)
		s.Stall = nil
	}
}

func (x *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m := Mail{From: x.from, To: x.to, Raw: string(b)}
	if msg, err := mail.ReadMessage(strings.NewReader(string(b))); err == nil {
		dec := new(mimeDecoder)
		m.Subject = dec.header(msg.Header.Get("Subject"))
		m.Text, m.HTML = parts(msg)
	}
	x.s.mu.Lock()
	x.s.got = append(x.s.got, m)
	x.s.mu.Unlock()
	return nil
}
