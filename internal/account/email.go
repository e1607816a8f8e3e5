package account

import (
	"net/mail"
	"net/netip"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// InvalidEmailError refuses an address that may not hold an account, saying
// why in words a person can act on. It is an ErrInvalidEmail.
type InvalidEmailError struct {
	Code    string
	Message string
}

func (e *InvalidEmailError) Error() string { return "invalid email: " + e.Message }

// ErrEmailTooLong refuses an address longer than RFC 5321's 254 characters
// once normalised (NFC can lengthen one the request's schema accepted).
var ErrEmailTooLong = &InvalidEmailError{"max_length", "must be at most 254 characters long once normalised"}

// Is makes errors.Is(err, ErrInvalidEmail) hold.
func (e *InvalidEmailError) Is(target error) bool { return target == ErrInvalidEmail }

// ParseEmail returns the normalised form of an address that is to hold an
// account (or be mailed as one), or an *InvalidEmailError. Outside
// development (allowLocal false) the domain must be one the public mail
// system can reach: not an IP literal (user@[127.0.0.1], user@10.0.0.1), not
// a name without a dot (a@b) and not localhost or a name under .localhost.
// Such addresses would only reach machines near the server, so mail to them
// is at best lost and at worst sent into the internal network.
func ParseEmail(raw string, allowLocal bool) (string, error) {
	email := NormalizeEmail(raw)
	if utf8.RuneCountInString(email) > maxEmailLength {
		return "", ErrEmailTooLong
	}
	if a, err := mail.ParseAddress(email); err != nil || a.Address != email || a.Name != "" {
		return "", &InvalidEmailError{"format", "must be an email address such as name@example.com"}
	}
	if allowLocal {
		return email, nil
	}
	domain := email[strings.LastIndexByte(email, '@')+1:]
	if _, err := netip.ParseAddr(domain); err == nil || strings.HasPrefix(domain, "[") {
		return "", &InvalidEmailError{"ip_literal", "must use a domain name such as example.com, not an IP address"}
	}
	if !strings.Contains(domain, ".") || domain == "localhost" || strings.HasSuffix(domain, ".localhost") {
		return "", &InvalidEmailError{"local_domain", "must use a public domain such as example.com, not localhost or a name without a dot"}
	}
	return email, nil
}

// maxEmailLength bounds a normalised address (RFC 5321's 254).
const maxEmailLength = 254

// NormalizeEmail is the one form in which emails are stored and compared.
func NormalizeEmail(email string) string {
	return strings.ToLower(norm.NFC.String(strings.TrimSpace(email)))
}
