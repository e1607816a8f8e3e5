package mail

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// Sender delivers a rendered message.
type Sender interface {
	Send(ctx context.Context, m Message) error
}

func build(from string, m Message) (*gomail.Msg, error) {
	msg := gomail.NewMsg()
	if err := msg.From(from); err != nil {
		return nil, fmt.Errorf("from address: %w", err)
	}
	if err := msg.To(m.To); err != nil {
		return nil, fmt.Errorf("recipient address: %w", err)
	}
	msg.Subject(m.Subject)
	msg.SetDate()
	if m.ID != "" {
		msg.SetMessageIDWithValue(m.ID)
	} else {
		msg.SetMessageID()
	}
	msg.SetGenHeader(gomail.Header("Auto-Submitted"), "auto-generated")
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	return msg, nil
}

// FileSender writes each mail as an .eml file: the development driver. Open
// the files with any mail client, or read them as text.
type FileSender struct {
	Dir  string
	From string
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// Send writes the message atomically; a retried job overwrites its own file.
func (f FileSender) Send(_ context.Context, m Message) error {
	msg, err := build(f.From, m)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(f.Dir, 0o750); err != nil {
		return fmt.Errorf("mail dir: %w", err)
	}
	name := unsafeName.ReplaceAllString(m.ID, "_")
	if name == "" {
		name = time.Now().UTC().Format("20060102T150405.000000000")
	}
	path := filepath.Join(f.Dir, name+".eml")
	tmp := path + ".tmp"
	if err := msg.WriteToFile(tmp); err != nil {
		return fmt.Errorf("write mail: %w", err)
	}
	return os.Rename(tmp, path)
}

// SMTPConfig configures the SMTP driver.
type SMTPConfig struct {
	Host     string
	Port     int
	Username string
	Password string
	From     string
	TLS      string // none, starttls or tls
	Timeout  time.Duration
}

// SMTPSender delivers through an SMTP server.
type SMTPSender struct{ c SMTPConfig }

// NewSMTPSender checks the configuration.
func NewSMTPSender(c SMTPConfig) (*SMTPSender, error) {
	if c.Host == "" {
		return nil, fmt.Errorf("SMTP_HOST is empty")
	}
	if c.Timeout == 0 {
		c.Timeout = 15 * time.Second
	}
	return &SMTPSender{c: c}, nil
}

// Send opens a connection, sends one message and closes it.
func (s *SMTPSender) Send(ctx context.Context, m Message) error {
	msg, err := build(s.c.From, m)
	if err != nil {
		return err
	}
	opts := []gomail.Option{gomail.WithPort(s.c.Port), gomail.WithTimeout(s.c.Timeout)}
	switch s.c.TLS {
	case "none":
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	case "starttls":
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	case "tls":
		opts = append(opts, gomail.WithSSL())
	default:
		return fmt.Errorf("unknown SMTP_TLS %q", s.c.TLS)
	}
	if s.c.Username != "" {
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover), gomail.WithUsername(s.c.Username), gomail.WithPassword(s.c.Password))
	}
	client, err := gomail.NewClient(s.c.Host, opts...)
	if err != nil {
		return fmt.Errorf("smtp client: %w", err)
	}
	if err := client.DialWithContext(ctx); err != nil {
		return fmt.Errorf("smtp connect: %w", err)
	}
	if err := client.Send(msg); err != nil {
		_ = client.Close()
		return fmt.Errorf("smtp send: %w", err)
	}
	// The server accepted the message (250 after DATA): it is delivered. A
	// failing QUIT must not make the job retry and send it a second time.
	_ = client.Close()
	return nil
}
