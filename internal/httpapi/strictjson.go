package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// checkStrictJSON refuses what encoding/json would quietly accept: invalid
// UTF-8 (and lone surrogate escapes, which it turns into U+FFFD), duplicate
// object keys (the last would silently win), NUL characters (PostgreSQL
// refuses them) and data after the first value. Two different byte strings
// must never decode to the same password.
func checkStrictJSON(body []byte) error {
	if !utf8.Valid(body) {
		return errors.New("it is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := walkJSON(dec, ""); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("there is data after the JSON value")
	}
	return nil
}

func walkJSON(dec *json.Decoder, path string) error {
	tok, err := dec.Token()
	if err != nil {
		return syntaxHint(err)
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			seen := map[string]bool{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return syntaxHint(err)
				}
				key, _ := kt.(string)
				if err := checkString(key, path); err != nil {
					return err
				}
				if seen[key] {
					return fmt.Errorf("the key %q appears twice", join(path, key))
				}
				seen[key] = true
				if err := walkJSON(dec, join(path, key)); err != nil {
					return err
				}
			}
		case '[':
			for i := 0; dec.More(); i++ {
				if err := walkJSON(dec, join(path, fmt.Sprint(i))); err != nil {
					return err
				}
			}
		}
		if _, err := dec.Token(); err != nil { // the closing delimiter
			return syntaxHint(err)
		}
	case string:
		return checkString(t, path)
	}
	return nil
}

func checkString(s, path string) error {
	if strings.ContainsRune(s, utf8.RuneError) {
		return fmt.Errorf("%s holds an invalid Unicode escape or character", where(path))
	}
	if strings.ContainsRune(s, 0) {
		return fmt.Errorf("%s holds a NUL character", where(path))
	}
	return nil
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func where(path string) string {
	if path == "" {
		return "a key"
	}
	return fmt.Sprintf("the value of %q", path)
}

// syntaxHint keeps encoding/json's position-free message, never the input.
func syntaxHint(err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("%s (at byte %d)", se.Error(), se.Offset)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return errors.New("it ends before the JSON value is complete")
	}
	return errors.New("it is not valid JSON")
}
