package password

import (
	"unicode/utf8"

	"github.com/trustelem/zxcvbn/match"
)

// predictable says why zxcvbn found a password easy to guess, in words a
// person can act on. The estimator reports the patterns it matched but no
// advice (its Go port leaves out upstream's feedback), so this follows
// upstream zxcvbn's feedback: it names the longest pattern found. The
// password itself is never quoted back.
func predictable(seq []*match.Match) string {
	const advice = "; add a few more unrelated words"
	var longest *match.Match
	for _, m := range seq {
		if m.Pattern == "bruteforce" {
			continue
		}
		if longest == nil || utf8.RuneCountInString(m.Token) > utf8.RuneCountInString(longest.Token) {
			longest = m
		}
	}
	if longest == nil {
		return "is easy to guess" + advice
	}
	var why string
	switch longest.Pattern {
	case "sequence":
		why = "sequences like abc or 6543 are easy to guess"
	case "spatial":
		why = "keyboard patterns like qwerty or 1qaz2wsx are easy to guess"
		if longest.Turns == 1 {
			why = "straight rows of keys like qwerty are easy to guess"
		}
	case "repeat":
		why = `repeats like "abcabcabc" are barely harder to guess than "abc"`
		if utf8.RuneCountInString(longest.BaseToken) == 1 {
			why = `repeats like "aaa" are easy to guess`
		}
	case "date", "regex":
		why = "dates and years are easy to guess"
	case "dictionary":
		switch {
		case longest.DictionaryName == "user_inputs":
			why = "words from your email address or name are easy to guess"
		case longest.Reversed:
			why = "reversed words are barely harder to guess"
		case longest.DictionaryName == "passwords":
			why = "common passwords and runs like 123456 or qwerty are tried first, even combined or slightly changed"
		case longest.DictionaryName == "surnames" || longest.DictionaryName == "male_names" || longest.DictionaryName == "female_names":
			why = "names and surnames are easy to guess"
		default:
			why = "a few common words are easy to guess"
		}
	default:
		return "is easy to guess" + advice
	}
	return "is too predictable: " + why + advice
}
