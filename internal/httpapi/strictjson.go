package httpapi

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
)

// Limits of a request body's structure. No operation of the contract comes
// near them (the deepest body is an object holding an array of strings, the
// largest holds 26 values: TestContract_RequestBodiesFitTheJSONLimits checks
// it); they exist so that what an attacker sends costs time and memory in
// proportion to its size, whatever its shape.
const (
	// maxJSONDepth is how deeply arrays and objects may nest.
	maxJSONDepth = 32
	// maxJSONValues is how many values (every object, array, string, number,
	// true, false and null; not the keys) a body may hold. The schema
	// validator decodes every value into a Go value and reports each unknown
	// key as an error of its own, so a body of half a million values would
	// cost a hundred times its size in memory; it is refused first.
	maxJSONValues = 1000
	// maxJSONValuesExtended is the most an operation may raise it to (its
	// x-max-json-values): a 1 MiB body cannot hold many more values with
	// their commas, and the validator's cost stays a few times the body's.
	maxJSONValuesExtended = 40000
	// maxJSONKeyBytes is how long a key may be, as written (quotes and
	// escapes included). The longest field of the contract has 16
	// characters; the validator quotes every unknown key back in its own
	// error, so 995 keys of 1 KiB cost it 18 times their size.
	maxJSONKeyBytes = 128
)

// beyondLimitError is a body past one of the limits above that is not (yet)
// malformed: no schema of the contract accepts it, so it is answered like a
// body that breaks the schema (422), as soon as the limit is passed.
type beyondLimitError struct {
	field, code, message string // the field error of the problem
}

func (e *beyondLimitError) Error() string {
	if e.field == "" {
		return "the body " + e.message
	}
	return fmt.Sprintf("%q %s", e.field, e.message)
}

// checkStrictJSON refuses what encoding/json would quietly accept: invalid
// UTF-8 (and lone surrogate escapes, which it turns into U+FFFD), duplicate
// object keys (the last would silently win), NUL characters (PostgreSQL
// refuses them) and data after the first value. Two different byte strings
// must never decode to the same password.
//
// It also bounds the structure: nesting deeper than maxJSONDepth is refused
// as soon as it is seen, and so are more than maxJSONValues values and a key
// longer than maxJSONKeyBytes (a *beyondLimitError). It reads the body once,
// token by token, without recursion, and builds a field path only for the
// error it reports, so its cost is linear in the size of the body whatever
// the shape.
func checkStrictJSON(body []byte, maxValues int) error {
	if !utf8.Valid(body) {
		return errors.New("it is not valid UTF-8")
	}
	// Strict by default: invalid UTF-8, lone surrogate escapes and
	// duplicate names are syntax errors. A bytes.Buffer is read in place.
	dec := jsontext.NewDecoder(bytes.NewBuffer(body))
	values := 0
	var unquoted []byte
	for {
		if dec.PeekKind() == '"' {
			// A key or a string value; raw, so reading it allocates nothing.
			raw, err := dec.ReadValue()
			if err != nil {
				return syntaxHint(err)
			}
			if !isName(dec) {
				values++
			} else if len(raw) > maxJSONKeyBytes {
				return &beyondLimitError{
					field: dottedPath(dec.StackPointer().Parent()), code: "max_key_length",
					message: fmt.Sprintf("must not hold a key longer than %d bytes; no operation has such a field", maxJSONKeyBytes),
				}
			}
			// A NUL can only be written as an escape (a raw one is a syntax
			// error), so only strings with escapes need unquoting.
			if bytes.IndexByte(raw, '\\') >= 0 {
				if unquoted, err = jsontext.AppendUnquote(unquoted[:0], raw); err != nil {
					return syntaxHint(err)
				}
				if bytes.IndexByte(unquoted, 0) >= 0 {
					return fmt.Errorf("%s holds a NUL character", where(dec))
				}
			}
		} else {
			tok, err := dec.ReadToken()
			if err != nil {
				return syntaxHint(err)
			}
			switch tok.Kind() {
			case '{', '[':
				if dec.StackDepth() > maxJSONDepth {
					return fmt.Errorf("it nests arrays and objects deeper than %d levels", maxJSONDepth)
				}
				values++
			case '}', ']':
			default:
				values++
			}
		}
		if values > maxValues {
			// Refused at once: reading on to the end would let a body of
			// unknown keys fill the duplicate-key index for nothing.
			return &beyondLimitError{
				code:    "max_values",
				message: fmt.Sprintf("must hold at most %d values in all; the operation takes no more", maxValues),
			}
		}
		if dec.StackDepth() == 0 {
			break // the first value is complete
		}
	}
	if _, err := dec.ReadToken(); !errors.Is(err, io.EOF) {
		return errors.New("there is data after the JSON value")
	}
	return nil
}

// isName reports whether the string just read was an object key: inside an
// object, keys and values alternate, and the key comes first.
func isName(dec *jsontext.Decoder) bool {
	kind, n := dec.StackIndex(dec.StackDepth())
	return kind == '{' && n%2 == 1
}

// maxPathLen bounds a field path quoted back in a problem: keys are the
// client's own text and may be very long.
const maxPathLen = 100

// where names the string just read, by its dotted field path: built here,
// when an error is reported, and never while the body is read.
func where(dec *jsontext.Decoder) string {
	if isName(dec) {
		return "a key"
	}
	return fmt.Sprintf("the value of %q", dottedPath(dec.StackPointer()))
}

// dottedPath writes a JSON pointer the way problems name fields
// (roles.0 for /roles/0), cut to maxPathLen.
func dottedPath(p jsontext.Pointer) string {
	var b strings.Builder
	for tok := range p.Tokens() {
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(tok)
		if b.Len() > maxPathLen {
			return b.String()[:maxPathLen] + "..."
		}
	}
	return b.String()
}

// syntaxHint says what is wrong and where, without echoing the body.
func syntaxHint(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return errors.New("it ends before the JSON value is complete")
	}
	var se *jsontext.SyntacticError
	if !errors.As(err, &se) {
		return errors.New("it is not valid JSON")
	}
	if errors.Is(se.Err, jsontext.ErrDuplicateName) {
		return fmt.Errorf("the key %q appears twice", dottedPath(se.JSONPointer))
	}
	msg := strings.TrimPrefix(se.Err.Error(), "jsontext: ")
	if strings.HasPrefix(msg, "invalid escape sequence") || strings.HasPrefix(msg, "invalid surrogate pair") {
		// A lone surrogate half is the usual case: encoding/json would read
		// it as U+FFFD.
		return fmt.Errorf("it holds an invalid Unicode escape (at byte %d)", se.ByteOffset)
	}
	if len(msg) > 120 {
		msg = msg[:120]
	}
	return fmt.Errorf("%s (at byte %d)", msg, se.ByteOffset)
}
