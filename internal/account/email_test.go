package account

import (
	"errors"
	"strings"
	"testing"
)

func TestParseEmail(t *testing.T) {
	for _, tc := range []struct {
		name, raw string
		want      string // the normalised address, or "" when refused
		code      string // the refusal outside development
		local     bool   // accepted in development
	}{
		{"plain", "Alice@Example.COM", "alice@example.com", "", true},
		{"trimmed", "  bob@example.com ", "bob@example.com", "", true},
		{"subdomain", "x@mail.example.co.uk", "x@mail.example.co.uk", "", true},
		{"unicode", "Ünïcode@bücher.example", "ünïcode@bücher.example", "", true},
		{"ipv4 literal", "user@[127.0.0.1]", "", "ip_literal", true},
		{"bare ipv4", "user@10.0.0.1", "", "ip_literal", true},
		{"dotless", "a@b", "", "local_domain", true},
		{"localhost", "dave@localhost", "", "local_domain", true},
		{"localhost any case", "dave@LocalHost", "", "local_domain", true},
		{"under localhost", "dave@app.localhost", "", "local_domain", true},
		{"localhost lookalike", "dave@localhost.example.com", "dave@localhost.example.com", "", true},
		{"no at", "not an address", "", "format", false},
		{"display name", "Alice <alice@example.com>", "", "format", false},
		{"too long once normalised", strings.Repeat("\uFB2C", 100) + "@example.com", "", "max_length", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseEmail(tc.raw, false)
			var ie *InvalidEmailError
			switch {
			case tc.code == "" && (err != nil || got != tc.want):
				t.Errorf("ParseEmail(%q) = %q, %v; want %q", tc.raw, got, err, tc.want)
			case tc.code != "" && (!errors.As(err, &ie) || ie.Code != tc.code || !errors.Is(err, ErrInvalidEmail) || ie.Message == ""):
				t.Errorf("ParseEmail(%q) = %q, %v; want a %s refusal", tc.raw, got, err, tc.code)
			}
			if _, err := ParseEmail(tc.raw, true); (err == nil) != tc.local {
				t.Errorf("development: ParseEmail(%q) refused=%v, want refused=%v", tc.raw, err != nil, !tc.local)
			}
		})
	}
}
