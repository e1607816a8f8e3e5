package password

import (
	"bufio"
	"bytes"
	_ "embed"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// MinLengthFloor is the shortest minimum a deployment may configure (NIST SP
// 800-63B: 8).
const MinLengthFloor = 8

// MaxLength bounds what is hashed; the contract allows 256 characters.
const MaxLength = 256

// common holds ~18,000 of the most common passwords seen in breaches (the
// zxcvbn-ts list, lower-cased, 8 characters and more; see common.LICENSE).
//
//go:embed common.txt
var common []byte

// Rejection says why a password is refused, in words a person can act on.
type Rejection struct {
	Code    string
	Message string
}

func (r *Rejection) Error() string { return r.Message }

// Policy is NIST SP 800-63B's: a minimum length, no composition rules, no
// common or breached passwords, nothing derived from the account's email.
type Policy struct {
	minLength int
	common    map[string]struct{}
}

// NewPolicy returns the policy with the given minimum length (at least
// MinLengthFloor).
func NewPolicy(minLength int) (*Policy, error) {
	if minLength < MinLengthFloor {
		return nil, fmt.Errorf("minimum password length %d is below the floor of %d", minLength, MinLengthFloor)
	}
	p := &Policy{minLength: minLength, common: make(map[string]struct{}, 20000)}
	sc := bufio.NewScanner(bytes.NewReader(common))
	for sc.Scan() {
		if w := strings.TrimSpace(sc.Text()); w != "" {
			p.common[w] = struct{}{}
		}
	}
	return p, nil
}

// MinLength is the configured minimum.
func (p *Policy) MinLength() int { return p.minLength }

// Check returns a *Rejection when password may not be used by the account
// with the given (normalised) email.
func (p *Policy) Check(password, email string) error {
	pw := norm.NFC.String(password)
	n := utf8.RuneCountInString(pw)
	switch {
	case n < p.minLength:
		return &Rejection{"too_short", fmt.Sprintf("must be at least %d characters long; a few unrelated words make a strong one", p.minLength)}
	case n > MaxLength:
		return &Rejection{"too_long", fmt.Sprintf("must be at most %d characters long", MaxLength)}
	}
	lower := strings.ToLower(pw)
	if _, ok := p.common[lower]; ok {
		return &Rejection{"common", "is one of the most common passwords and would be guessed quickly; choose another"}
	}
	if strings.TrimSpace(lower) == "" || strings.Count(lower, string([]rune(lower)[0])) == utf8.RuneCountInString(lower) {
		return &Rejection{"repetitive", "repeats a single character; choose something less predictable"}
	}
	if email != "" {
		email = strings.ToLower(email)
		local, _, _ := strings.Cut(email, "@")
		if strings.Contains(lower, email) || (utf8.RuneCountInString(local) >= 3 && strings.Contains(lower, local)) {
			return &Rejection{"contains_email", "must not contain your email address or its name part"}
		}
	}
	return nil
}
