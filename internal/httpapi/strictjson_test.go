package httpapi_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse/internal/apitest"
	"github.com/gatehouse/gatehouse/internal/httpapi"
)

func TestStrictJSON_AcceptsWhatEncodingJSONReadsTheSame(t *testing.T) {
	t.Parallel()
	for _, body := range []string{
		`{"email":"a@example.com","password":"correct horse battery staple"}`,
		`{"roles":["admin","user"],"name":"Zoë \ud83d\ude00 \u00e9"}`,
		`{"a":{"a":{"a":1}},"b":[{"a":1},{"a":1}]}`, // the same key in different objects
		`{"password":"back\\u0000slash"}`,           // an escaped backslash, then text: no NUL
		`"just a string"`, `42`, `null`, " [] \n",
		`{"a":"\ufffd"}`, // U+FFFD itself is a character like any other
		nested(httpapi.MaxJSONDepth),
		values(httpapi.MaxJSONValues),
		`{"` + strings.Repeat("k", httpapi.MaxJSONKeyBytes-2) + `":1}`,
	} {
		if err := httpapi.CheckStrictJSON([]byte(body)); err != nil {
			t.Errorf("%.60q refused: %v", body, err)
		}
	}
}

func TestStrictJSON_RefusesWhatCouldBeReadTwoWays(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ body, says string }{
		{`{"email":"a@example.com","email":"b@example.com"}`, `the key "email" appears twice`},
		{`{"user":{"name":"a","n\u0061me":"b"}}`, `the key "user.name" appears twice`},
		{`{"password":"\ud800x"}`, "invalid Unicode escape"},
		{`{"password":"\udc00\ud800"}`, "invalid Unicode escape"},
		{"{\"password\":\"\xff\"}", "not valid UTF-8"},
		{`{"roles":["a","b\u0000"]}`, `the value of "roles.1" holds a NUL character`},
		{`{"a\u0000":1}`, "a key holds a NUL character"},
		{`{"a":1}{"a":2}`, "data after the JSON value"},
		{`{"a":1} x`, "data after the JSON value"},
		{`{"a":`, "ends before the JSON value is complete"},
		{``, "ends before the JSON value is complete"},
		{`{"a":1,}`, "at byte"},
		{`{'a':1}`, "at byte"},
		{nested(httpapi.MaxJSONDepth + 1), "deeper than 32 levels"},
		{`{"a":` + nested(httpapi.MaxJSONDepth) + `}`, "deeper than 32 levels"},
		{nested(100_000), "deeper than 32 levels"},
		// Depth is refused as soon as it is seen, before the body ends.
		{strings.Repeat("[", 40), "deeper than 32 levels"},
	} {
		t.Run(fmt.Sprintf("%.40q", tc.body), func(t *testing.T) {
			t.Parallel()
			err := httpapi.CheckStrictJSON([]byte(tc.body))
			if err == nil || !strings.Contains(err.Error(), tc.says) {
				t.Errorf("%.60q: got %v, want an error saying %q", tc.body, err, tc.says)
			}
		})
	}
}

func TestStrictJSON_RefusesWhatNoOperationTakes(t *testing.T) {
	t.Parallel()
	longKey := `"` + strings.Repeat("k", httpapi.MaxJSONKeyBytes-1) + `"`
	for _, tc := range []struct{ body, code string }{
		{values(httpapi.MaxJSONValues + 1), "max_values"},
		{unknownKeys(httpapi.MaxJSONValues), "max_values"},
		// Refused at the limit, without reading on.
		{values(500_000)[:200_000], "max_values"},
		{`{"email":"a@example.com",` + longKey + `:1}`, "max_key_length"},
		{`{"a":{"b":[{` + longKey + `:1}]}}`, "max_key_length"},
	} {
		t.Run(fmt.Sprintf("%.40q", tc.body), func(t *testing.T) {
			t.Parallel()
			if got := httpapi.BeyondLimit(httpapi.CheckStrictJSON([]byte(tc.body))); got != tc.code {
				t.Errorf("%.60q: got %q, want %q", tc.body, got, tc.code)
			}
		})
	}
}

// FuzzStrictJSON: whatever the bytes, the check never panics, never changes
// the body, and accepts only JSON that encoding/json reads as the same
// single value, within the depth and value limits.
func FuzzStrictJSON(f *testing.F) {
	for _, seed := range []string{
		`{"email":"a@example.com","password":"x"}`, `{"a":1,"a":2}`, `"\ud800"`, `"\u0000"`,
		`[1,2,{"x":[true,false,null]}]`, `1 2`, "\xff", nested(33), nested(32), values(1001),
		`{"a":{"b":{"c":"d"}},"e":[1.5e300,-0,"\ud83d\ude00"]}`,
	} {
		f.Add([]byte(seed))
	}
	for _, hb := range apitest.HostileBodies(1 << 12) {
		f.Add(hb.Body)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		orig := bytes.Clone(body)
		err := httpapi.CheckStrictJSON(body)
		if !bytes.Equal(body, orig) {
			t.Fatal("the check changed the body")
		}
		if err != nil {
			if len(err.Error()) > 300 {
				t.Fatalf("error message of %d bytes", len(err.Error()))
			}
			return
		}
		if !utf8.Valid(body) || !json.Valid(body) {
			t.Fatalf("accepted what encoding/json refuses: %q", body)
		}
		depth, n := shape(t, body)
		if depth > httpapi.MaxJSONDepth || n > httpapi.MaxJSONValues {
			t.Fatalf("accepted depth %d and %d values: %q", depth, n, body)
		}
	})
}

// shape measures a body with encoding/json: its nesting depth, and how many
// values it holds.
func shape(t *testing.T, body []byte) (maxDepth, values int) {
	dec := json.NewDecoder(bytes.NewReader(body))
	depth, inObject, key := 0, []bool{false}, false
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return maxDepth, values
		}
		if err != nil {
			t.Fatalf("encoding/json: %v: %q", err, body)
		}
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			depth--
			inObject = inObject[:len(inObject)-1]
			key = inObject[len(inObject)-1]
			continue
		}
		if key {
			key = false // an object key, not a value
			continue
		}
		values++
		if d, ok := tok.(json.Delim); ok {
			depth++
			maxDepth = max(maxDepth, depth)
			inObject = append(inObject, d == '{')
			key = d == '{'
			continue
		}
		key = inObject[len(inObject)-1]
	}
}

// TestRequestBody_ReadToTheLimitWhateverTheFraming: the body reader, which
// grows its buffer no further than the announced length, still reads every
// byte up to the limit, whether the length is announced, unknown (chunked)
// or understated.
func TestRequestBody_ReadToTheLimitWhateverTheFraming(t *testing.T) {
	t.Parallel()
	const limit = 1 << 16
	e := bareHandler(t, limit)
	// A body of exactly n bytes the schema refuses with 422 when read whole.
	body := func(n int) string {
		pad := n - len(`{"email":"a@example.com","x":""}`)
		return `{"email":"a@example.com","x":"` + strings.Repeat("a", pad) + `"}`
	}
	for _, tc := range []struct {
		name      string
		body      string
		announced int64 // -1: unknown
		status    int
	}{
		{"announced, at the limit", body(limit), limit, 422},
		{"announced, small", body(100), 100, 422},
		{"unknown, at the limit", body(limit), -1, 422},
		{"unknown, past the limit", body(limit + 1), -1, 413},
		{"understated, within the limit", body(5000), 10, 422},
		{"understated, past the limit", body(limit + 1), 10, 413},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/api/v1/auth/password/forgot", io.MultiReader(strings.NewReader(tc.body)))
			req.ContentLength = tc.announced
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			e.ServeHTTP(rec, req)
			if rec.Code != tc.status {
				t.Errorf("%s: status %d, want %d: %.200s", tc.name, rec.Code, tc.status, rec.Body)
			}
			if tc.status == 422 && !strings.Contains(rec.Body.String(), `"field":"x"`) {
				t.Errorf("%s: the body was not read whole: %.200s", tc.name, rec.Body)
			}
		})
	}
}
