package password

import (
	"bufio"
	"bytes"
	_ "embed"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/trustelem/zxcvbn"
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

// MinScore is the zxcvbn score a password needs (0-4). Score 3 means the
// estimator expects an attacker to need at least 10^8 guesses: far beyond
// what the rate limits and lockout allow online, and days of work per account
// offline against argon2id. Score 4 (10^10) would also refuse many honest
// passphrases of three or four common words at the 15-character minimum.
const MinScore = 3

// estimateRunes bounds the part of a password the estimator reads. Its cost
// grows steeply with length (the l33t matcher tries every combination of
// substitutions: up to ~40 ms at 32 characters of symbols, seconds at 256),
// while the predictable patterns people use (digit runs, keyboard walks,
// repeated words) show within the first 32 characters; longer passwords are
// judged on their first 32, so a repeated pattern is still caught.
const estimateRunes = 32

// Policy is NIST SP 800-63B's: a minimum length, no composition rules, no
// common or breached passwords, nothing derived from the account's email,
// and nothing a guesser tries early (zxcvbn's estimate).
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
// with the given (normalised) email and display name (either may be empty).
func (p *Policy) Check(password, email, name string) error {
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
	if n > estimateRunes {
		pw = string([]rune(pw)[:estimateRunes])
	}
	if r := zxcvbn.PasswordStrength(pw, userInputs(email, name)); r.Score < MinScore {
		return &Rejection{"predictable", predictable(r.Sequence)}
	}
	return nil
}

// userInputs are the words of the account a guesser would try first: the
// email, its name part, the pieces of both and of the display name, alone
// and run together (john.smith@acme.com, "Grace Hopper" gives john, smith,
// johnsmith, acme, grace, hopper and gracehopper).
func userInputs(email, name string) []string {
	var in []string
	add := func(words ...string) {
		for _, w := range words {
			// Shorter pieces would match by chance in any password.
			if utf8.RuneCountInString(w) >= 3 {
				in = append(in, w)
			}
		}
	}
	notAlnum := func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }
	pieces := func(s string) {
		ws := strings.FieldsFunc(strings.ToLower(s), notAlnum)
		add(ws...)
		if len(ws) > 1 {
			add(strings.Join(ws, ""))
		}
	}
	if email != "" {
		local, domain, _ := strings.Cut(strings.ToLower(email), "@")
		add(email, local)
		pieces(local)
		if i := strings.LastIndexByte(domain, '.'); i > 0 {
			pieces(domain[:i]) // not the top-level domain
		}
	}
	pieces(name)
	return in
}
