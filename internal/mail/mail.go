// Package mail renders gatehouse's emails from embedded text and HTML
// templates and delivers them through a driver: SMTP in production, files in
// development.
package mail

import (
	"bytes"
	"embed"
	"fmt"
	htmltemplate "html/template"
	"strings"
	texttemplate "text/template"
)

// Kind names a mail.
type Kind string

// The mails gatehouse sends.
const (
	VerifyEmail       Kind = "verify_email"
	PasswordReset     Kind = "password_reset"
	PasswordChanged   Kind = "password_changed"
	PasswordResetDone Kind = "password_reset_done"
	EmailInUse        Kind = "email_in_use"
	EmailChange       Kind = "email_change"
	NewSignIn         Kind = "new_sign_in"
	LoginAttempts     Kind = "login_attempts"
	// EmailChangeNotice and EmailChanged go to the old address of an email
	// change: when it is asked for, and when it is done.
	EmailChangeNotice Kind = "email_change_notice"
	EmailChanged      Kind = "email_changed"
	// Notices of multi-factor authentication.
	MFAEnabled                  Kind = "mfa_enabled"
	MFADisabled                 Kind = "mfa_disabled"
	MFAReset                    Kind = "mfa_reset"
	MFARecoveryCodeUsed         Kind = "mfa_recovery_code_used"
	MFARecoveryCodesRegenerated Kind = "mfa_recovery_codes_regenerated"
	// SetPassword invites an imported account without a password to choose
	// one (a password-reset link that lives as long as a verification link).
	SetPassword Kind = "set_password"
)

// Kinds lists every mail.
var Kinds = []Kind{
	VerifyEmail, PasswordReset, PasswordChanged, PasswordResetDone, EmailInUse, EmailChange,
	NewSignIn, LoginAttempts, EmailChangeNotice, EmailChanged,
	MFAEnabled, MFADisabled, MFAReset, MFARecoveryCodeUsed, MFARecoveryCodesRegenerated, SetPassword,
}

//go:embed templates
var templates embed.FS

// Data fills a template.
type Data struct {
	Product  string
	To       string
	Link     string // the action link (verify, reset), when the mail has one
	Expires  string // how long Link works, in words
	ResetURL string // where to start a password reset
	Subject  string
	// NewEmail is the address an email change asked for (notices to the old one).
	NewEmail string
	// IP, UserAgent and When describe a reported sign-in.
	IP, UserAgent, When string
}

// Message is a rendered mail.
type Message struct {
	ID      string // stable per job, so a retried delivery is recognisably the same mail
	To      string
	Subject string
	Text    string
	HTML    string
}

type tmpl struct {
	text *texttemplate.Template
	html *htmltemplate.Template
}

// Renderer renders every Kind.
type Renderer struct{ t map[Kind]tmpl }

// NewRenderer parses the embedded templates.
func NewRenderer() (*Renderer, error) {
	r := &Renderer{t: map[Kind]tmpl{}}
	for _, k := range Kinds {
		txt, err := texttemplate.New(string(k)).Option("missingkey=error").ParseFS(templates, "templates/"+string(k)+".txt")
		if err != nil {
			return nil, fmt.Errorf("parse %s text template: %w", k, err)
		}
		html, err := htmltemplate.New("layout").Option("missingkey=error").ParseFS(templates, "templates/layout.html", "templates/"+string(k)+".html")
		if err != nil {
			return nil, fmt.Errorf("parse %s HTML template: %w", k, err)
		}
		r.t[k] = tmpl{text: txt.Lookup(string(k) + ".txt"), html: html}
	}
	return r, nil
}

// Render produces the message of kind k for d.
func (r *Renderer) Render(k Kind, d Data) (Message, error) {
	t, ok := r.t[k]
	if !ok {
		return Message{}, fmt.Errorf("unknown mail kind %q", k)
	}
	var txt bytes.Buffer
	if err := t.text.Execute(&txt, d); err != nil {
		return Message{}, fmt.Errorf("render %s: %w", k, err)
	}
	subjectLine, body, ok := strings.Cut(txt.String(), "\n")
	subject, hasSubject := strings.CutPrefix(subjectLine, "Subject: ")
	if !ok || !hasSubject {
		return Message{}, fmt.Errorf("template %s must start with a Subject: line", k)
	}
	d.Subject = subject
	var html bytes.Buffer
	if err := t.html.ExecuteTemplate(&html, "layout", d); err != nil {
		return Message{}, fmt.Errorf("render %s HTML: %w", k, err)
	}
	return Message{To: d.To, Subject: subject, Text: strings.TrimLeft(body, "\n"), HTML: html.String()}, nil
}
