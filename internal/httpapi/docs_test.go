package httpapi_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"go.yaml.in/yaml/v4"

	spec "github.com/gatehouse/gatehouse/api"
	"github.com/gatehouse/gatehouse/internal/apitest"
	"github.com/gatehouse/gatehouse/internal/httpapi"
)

// member is one key of a mapping; objects are compared as ordered lists of
// members, so two documents with the same content in another order differ.
type member struct {
	Key   string
	Value any
}

// orderedYAML reads a YAML node as a tree of []member, []any and scalars.
func orderedYAML(t *testing.T, n *yaml.Node) any {
	t.Helper()
	switch n.Kind {
	case yaml.DocumentNode:
		return orderedYAML(t, n.Content[0])
	case yaml.AliasNode:
		return orderedYAML(t, n.Alias)
	case yaml.MappingNode:
		var m []member
		for i := 0; i < len(n.Content); i += 2 {
			m = append(m, member{n.Content[i].Value, orderedYAML(t, n.Content[i+1])})
		}
		return m
	case yaml.SequenceNode:
		s := []any{}
		for _, c := range n.Content {
			s = append(s, orderedYAML(t, c))
		}
		return s
	default: // a scalar, read below
	}
	if tag := n.ShortTag(); tag == "!!str" || tag == "!!timestamp" {
		return n.Value
	}
	var v any
	if err := n.Decode(&v); err != nil {
		t.Fatal(err)
	}
	switch x := v.(type) { // numbers as JSON has them
	case int:
		return float64(x)
	case int64:
		return float64(x)
	case uint64:
		return float64(x)
	}
	return v
}

// orderedJSON reads a JSON value the same way, from the token stream.
func orderedJSON(t *testing.T, d *json.Decoder) any {
	t.Helper()
	tok, err := d.Token()
	if err != nil {
		t.Fatal(err)
	}
	switch tok {
	case json.Delim('{'):
		m := []member{}
		for d.More() {
			k, err := d.Token()
			if err != nil {
				t.Fatal(err)
			}
			m = append(m, member{k.(string), orderedJSON(t, d)})
		}
		_, _ = d.Token()
		if len(m) == 0 {
			return []member(nil)
		}
		return m
	case json.Delim('['):
		s := []any{}
		for d.More() {
			s = append(s, orderedJSON(t, d))
		}
		_, _ = d.Token()
		return s
	}
	return tok
}

// operationOrder lists "path method operationId" in document order.
func operationOrder(tree any) []string {
	var out []string
	for _, top := range tree.([]member) {
		if top.Key != "paths" {
			continue
		}
		for _, p := range top.Value.([]member) {
			for _, op := range p.Value.([]member) {
				if fields, ok := op.Value.([]member); ok {
					for _, f := range fields {
						if f.Key == "operationId" {
							out = append(out, p.Key+" "+op.Key+" "+f.Value.(string))
						}
					}
				}
			}
		}
	}
	return out
}

func TestDocs_JSONIsTheYAMLConvertedInOrder(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	yml, js := get(t, s, "/openapi.yaml"), get(t, s, "/openapi.json")

	var node yaml.Node
	if err := yaml.Unmarshal(yml, &node); err != nil {
		t.Fatal(err)
	}
	fromYAML := orderedYAML(t, &node)
	d := json.NewDecoder(bytes.NewReader(js))
	fromJSON := orderedJSON(t, d)
	if _, err := d.Token(); !errors.Is(err, io.EOF) {
		t.Fatalf("/openapi.json holds more than one value: %v", err)
	}

	// The same operations, in the spec's order, under the spec's ids.
	want, got := operationOrder(fromYAML), operationOrder(fromJSON)
	if len(want) < 10 || !slices.Equal(got, want) {
		t.Fatalf("operations of /openapi.json:\n%s\nwant those of /openapi.yaml:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !strings.HasSuffix(want[0], " register") {
		t.Fatalf("first operation %q, want the spec's first, register", want[0])
	}
	// And everything else, key order included.
	if !reflect.DeepEqual(fromJSON, fromYAML) {
		for i, m := range fromYAML.([]member) {
			if i >= len(fromJSON.([]member)) || !reflect.DeepEqual(fromJSON.([]member)[i], m) {
				t.Fatalf("/openapi.json differs from /openapi.yaml at top-level member %d (%s)", i, m.Key)
			}
		}
		t.Fatal("/openapi.json differs from /openapi.yaml")
	}

	// An OpenAPI reader finds one document in both.
	load := func(b []byte) string {
		doc, err := openapi3.NewLoader().LoadFromData(b)
		if err != nil {
			t.Fatal(err)
		}
		out, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		return string(out)
	}
	if load(yml) != load(js) {
		t.Fatal("kin-openapi reads different documents from /openapi.yaml and /openapi.json")
	}
	// The YAML is the file as written, with PUBLIC_URL added to its servers.
	if !bytes.HasPrefix(yml, spec.OpenAPIYAML[:bytes.Index(spec.OpenAPIYAML, []byte("\nservers:"))]) {
		t.Fatal("/openapi.yaml is not the file as written")
	}
}

// TestDocs_ServersWorkFromAnyOrigin: Swagger UI calls the first server, so
// it must be the origin that served the page (a relative URL), and the page's
// policy must let it connect there. PUBLIC_URL follows, for generated clients.
func TestDocs_ServersWorkFromAnyOrigin(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	var doc struct {
		Servers []struct {
			URL string `json:"url"`
		} `json:"servers"`
	}
	for _, path := range []string{"/openapi.json", "/openapi.yaml"} {
		b := get(t, s, path)
		if err := yaml.Unmarshal(b, &doc); err != nil { // JSON is YAML
			t.Fatal(err)
		}
		var urls []string
		for _, sv := range doc.Servers {
			urls = append(urls, sv.URL)
		}
		if len(urls) < 2 || urls[0] != "/" || urls[1] != "http://gatehouse.test" || strings.Count(strings.Join(urls, " "), "http://gatehouse.test") != 1 {
			t.Fatalf("servers of %s: %v; want / first, then PUBLIC_URL once", path, urls)
		}
	}

	res, _ := send(t, s, "GET", "/docs/", "", "", "")
	csp := map[string][]string{}
	for _, d := range strings.Split(res.Header.Get("Content-Security-Policy"), ";") {
		if f := strings.Fields(d); len(f) > 0 {
			csp[f[0]] = f[1:]
		}
	}
	connect, ok := csp["connect-src"]
	if !ok {
		connect = csp["default-src"]
	}
	if !slices.Contains(connect, "'self'") {
		t.Fatalf("the CSP of /docs/ does not let Swagger UI call its own origin: %q", res.Header.Get("Content-Security-Policy"))
	}
}

// TestHead_AnswersLikeGet walks the contract: HEAD on every GET operation
// answers what GET answers (status, type, caching, authorization), without a
// body; so do the docs and health routes outside the contract.
func TestHead_AnswersLikeGet(t *testing.T) {
	t.Parallel()
	s := apitest.NewServer(t, apitest.Options{})
	admin := s.NewAdmin()
	doc, err := httpapi.LoadSpec()
	if err != nil {
		t.Fatal(err)
	}
	type call struct{ path, token string }
	var calls []call
	for path, item := range doc.Paths.Map() {
		if item.Get == nil {
			continue
		}
		path = strings.ReplaceAll(path, "{id}", "0196f3c4-7a8b-7c9d-8e0f-1a2b3c4d5e6f")
		if strings.Contains(path, "{") {
			t.Fatalf("fill in the path parameters of %s", path)
		}
		calls = append(calls, call{path, admin.Tokens.AccessToken}, call{path, ""})
	}
	for _, path := range []string{"/openapi.json", "/openapi.yaml", "/docs/", "/docs/swagger-ui-bundle.js", "/api/v1/nowhere"} {
		calls = append(calls, call{path, ""})
	}
	sort.Slice(calls, func(i, j int) bool { return calls[i].path+calls[i].token < calls[j].path+calls[j].token })

	do := func(c *http.Client, method string, cl call) (*http.Response, []byte) {
		req, err := http.NewRequestWithContext(t.Context(), method, s.URL+cl.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if cl.token != "" {
			req.Header.Set("Authorization", "Bearer "+cl.token)
		}
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		return res, b
	}
	// The validating client checks GET against the spec; HEAD, which the
	// spec does not declare, is compared with GET.
	plain := &http.Client{}
	seen := map[int]bool{}
	for _, cl := range calls {
		name := fmt.Sprintf("%s (token %t)", cl.path, cl.token != "")
		g, _ := do(s.HTTP, http.MethodGet, cl)
		h, body := do(plain, http.MethodHead, cl)
		seen[g.StatusCode] = true
		if h.StatusCode != g.StatusCode {
			t.Errorf("HEAD %s: %d, GET: %d", name, h.StatusCode, g.StatusCode)
			continue
		}
		if len(body) != 0 {
			t.Errorf("HEAD %s sent a body: %.100s", name, body)
		}
		for _, k := range []string{"Content-Type", "Cache-Control", "Content-Security-Policy", "WWW-Authenticate", "RateLimit-Policy"} {
			if h.Header.Get(k) != g.Header.Get(k) {
				t.Errorf("HEAD %s: %s %q, GET: %q", name, k, h.Header.Get(k), g.Header.Get(k))
			}
		}
		if h.Header.Get("X-Request-ID") == "" {
			t.Errorf("HEAD %s: no X-Request-ID", name)
		}
	}
	if !seen[200] || !seen[401] || !seen[404] {
		t.Fatalf("statuses seen %v: the walk should meet 200, 401 and 404", seen)
	}

	// A path that takes no GET refuses HEAD too, and says GET and HEAD
	// are allowed where they are.
	h, _ := do(plain, http.MethodHead, call{"/api/v1/auth/login", ""})
	if h.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("HEAD on a POST-only path: %d", h.StatusCode)
	}
	res, _ := send(t, s, "POST", "/health/live", "", "", "")
	if allow := res.Header.Get("Allow"); res.StatusCode != http.StatusMethodNotAllowed || !strings.Contains(allow, "GET") || !strings.Contains(allow, "HEAD") {
		t.Fatalf("POST /health/live: %d, Allow %q; want 405 allowing GET and HEAD", res.StatusCode, allow)
	}
}
