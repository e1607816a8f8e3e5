package httpapi_test

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"go.yaml.in/yaml/v4"

	"github.com/gatehouse/gatehouse/gen/client"
	"github.com/gatehouse/gatehouse/internal/apitest"
	"github.com/gatehouse/gatehouse/internal/httpapi"
)

// The example data the spec documents ("Examples" in its description): the
// account its examples act as, and an administrator.
const (
	exampleEmail    = "ada@example.com"
	examplePassword = "correct horse battery staple"
)

// TestSpec_ExamplesAreValid: every example of the contract, request and
// response, is valid against its schema.
func TestSpec_ExamplesAreValid(t *testing.T) {
	t.Parallel()
	doc, err := httpapi.LoadSpec()
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(t.Context(), openapi3.EnableExamplesValidation()); err != nil {
		t.Fatal(err)
	}
}

// TestSpec_RequestExamplesWork sends the request example of every operation,
// as written, to a server seeded with the example data the spec documents,
// and expects success. Ids in paths are the seeded account's and its
// session's, and the secrets a mail or a login gives (refresh, reset and
// verification tokens) are the real ones: the server makes them. Everything
// else in the example is sent as written.
func TestSpec_RequestExamplesWork(t *testing.T) {
	t.Parallel()
	doc, err := httpapi.LoadSpec()
	if err != nil {
		t.Fatal(err)
	}
	redis := apitest.StartRedis(t)
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			t.Run(op.OperationID, func(t *testing.T) {
				t.Parallel()
				sendExample(t, redis, path, method, op)
			})
		}
	}
}

func sendExample(t *testing.T, redis *apitest.Redis, path, method string, op *openapi3.Operation) {
	mailbox := apitest.StartSMTP(t)
	s := apitest.NewServer(t, apitest.Options{Redis: redis, Mailbox: mailbox, Env: map[string]string{"REDIS_KEY_PREFIX": "examples:" + op.OperationID + ":"}})
	s.Register(exampleEmail, examplePassword)
	ada := s.Login(exampleEmail, examplePassword)
	admin := s.NewAdmin()
	adaID := userID(t, s, ada.AccessToken)

	token := ""
	switch {
	case op.Security != nil && len(*op.Security) == 0:
	case op.Extensions["x-permissions"] != nil:
		token = admin.Tokens.AccessToken
	default:
		token = ada.AccessToken
	}
	// The MFA operations need an account with MFA (or an enrolment) and
	// codes of the moment: the example's code is replaced by one computed
	// from the secret, as the user's app would show it.
	var app *authenticatorApp
	switch strings.ToLower(op.OperationID) {
	case "verifymfalogin", "stepupmfa", "disablemfa", "regeneraterecoverycodes", "resetusermfa":
		u := &apitest.User{Email: exampleEmail, Password: examplePassword, Tokens: ada, Client: s.WithToken(ada.AccessToken)}
		app, _ = enrol(t, s, u)
		if token == ada.AccessToken {
			token = u.Tokens.AccessToken
		}
	case "confirmtotpenrolment":
		st := apitest.Must(s.WithToken(ada.AccessToken).StartTotpEnrolmentWithResponse(ctx, client.StartTotpEnrolmentJSONRequestBody{Password: examplePassword}))(t)
		if st.JSON201 == nil {
			t.Fatalf("start enrolment: %d %s", st.StatusCode(), st.Body)
		}
		s.Secret("TOTP secret", st.JSON201.Data.Secret)
		app = &authenticatorApp{t: t, secret: st.JSON201.Data.Secret}
	}
	if strings.EqualFold(op.OperationID, "restoreUser") {
		if r, err := admin.Client.DeleteUserWithResponse(ctx, adaID); err != nil || r.StatusCode() != http.StatusNoContent {
			t.Fatalf("delete the user to restore: %v %d", err, r.StatusCode())
		}
	}

	target := path
	query := url.Values{}
	for _, pref := range op.Parameters {
		p := pref.Value
		switch p.In {
		case openapi3.ParameterInPath:
			id := adaID.String()
			if p.Name == "id" && strings.Contains(path, "/sessions/") && !strings.HasSuffix(path, "/revoke") {
				id = currentSession(t, s, ada.AccessToken)
			}
			target = strings.ReplaceAll(target, "{"+p.Name+"}", id)
		case openapi3.ParameterInQuery:
			if p.Example != nil {
				query.Set(p.Name, toString(p.Example))
			}
		}
	}
	if len(query) > 0 {
		target += "?" + query.Encode()
	}

	var body []byte
	if op.RequestBody != nil {
		mt := op.RequestBody.Value.Content.Get("application/json")
		if mt == nil || mt.Example == nil {
			t.Fatalf("%s has a request body without an example", op.OperationID)
		}
		example, ok := mt.Example.(map[string]any)
		if !ok {
			t.Fatalf("%s: the request example is not an object", op.OperationID)
		}
		example = maps.Clone(example)
		switch strings.ToLower(op.OperationID) {
		case "refreshtokens":
			example["refresh_token"] = ada.RefreshToken
		case "verifyemail":
			example["token"] = mailbox.WaitForSubject(exampleEmail, "Confirm your email address", 1, 10*time.Second)[0].Token()
		case "resetpassword":
			if r, err := s.Client.ForgotPasswordWithResponse(ctx, client.ForgotPasswordJSONRequestBody{Email: exampleEmail}); err != nil || r.StatusCode() != http.StatusAccepted {
				t.Fatalf("forgot: %v", err)
			}
			example["token"] = mailbox.WaitForSubject(exampleEmail, "Reset your", 1, 10*time.Second)[0].Token()
		}
		if app != nil {
			if _, ok := example["code"]; ok {
				example["code"] = app.code()
			}
			if _, ok := example["challenge"]; ok {
				example["challenge"] = challenge(t, s, &apitest.User{Email: exampleEmail, Password: examplePassword})
			}
		}
		var err error
		if body, err = json.Marshal(example); err != nil {
			t.Fatal(err)
		}
	}
	req, err := http.NewRequestWithContext(t.Context(), method, s.URL+target, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := s.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var got bytes.Buffer
	_, _ = got.ReadFrom(res.Body)
	if res.StatusCode < 200 || res.StatusCode > 299 {
		t.Fatalf("%s (%s %s) with the example %s: %d %s", op.OperationID, method, target, body, res.StatusCode, got.Bytes())
	}
}

// TestSpec_AuditActionsAreTheOnesTheCodeRecords: the AuditAction enum lists
// exactly the actions the code records, and so does the README.
func TestSpec_AuditActionsAreTheOnesTheCodeRecords(t *testing.T) {
	t.Parallel()
	doc, err := httpapi.LoadSpec()
	if err != nil {
		t.Fatal(err)
	}
	var enum []string
	for _, v := range doc.Components.Schemas["AuditAction"].Value.Enum {
		enum = append(enum, v.(string))
	}
	action := regexp.MustCompile(`["` + "`" + `]((?:user|session|rate_limit)\.[a-z_]+(?:\.[a-z_]+)*)["` + "`" + `]`)
	found := func(texts ...[]byte) []string {
		var out []string
		for _, b := range texts {
			for _, m := range action.FindAllSubmatch(b, -1) {
				out = append(out, string(m[1]))
			}
		}
		slices.Sort(out)
		return slices.Compact(out)
	}
	var sources [][]byte
	err = filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		b, err := os.ReadFile(path)
		sources = append(sources, b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(enum)
	if code := found(sources...); !slices.Equal(code, enum) {
		t.Errorf("the code records %v,\nthe AuditAction enum lists %v", code, enum)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if listed := found(readme); !slices.Equal(listed, enum) {
		t.Errorf("the README lists %v,\nthe AuditAction enum lists %v", listed, enum)
	}
}

// TestSpec_EveryResponseIsDeclaredFully: every response of every operation
// declares the X-Request-ID the server always sends, and every operation has
// a default problem response, so generated clients type unexpected statuses.
func TestSpec_EveryResponseIsDeclaredFully(t *testing.T) {
	t.Parallel()
	doc, err := httpapi.LoadSpec()
	if err != nil {
		t.Fatal(err)
	}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			if op.Responses.Default() == nil || op.Responses.Default().Value.Content.Get("application/problem+json") == nil {
				t.Errorf("%s %s has no default problem response", method, path)
			}
			for status, res := range op.Responses.Map() {
				if res.Value.Headers["X-Request-ID"] == nil {
					t.Errorf("%s %s: response %s does not declare X-Request-ID", method, path, status)
				}
			}
		}
	}
}

// TestSpec_ProblemExamplesHaveTheServersTitles: a problem example shows the
// title the server sends with its code, so a client that displays titles sees
// in the docs what it will get.
func TestSpec_ProblemExamplesHaveTheServersTitles(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(filepath.Join("..", "..", "api", "openapi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	seen := 0
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			code, okCode := v["code"].(string)
			title, okTitle := v["title"].(string)
			if okCode && okTitle && strings.HasPrefix(toString(v["type"]), "urn:gatehouse:problem:") {
				seen++
				if want := httpapi.ProblemTitle(code); title != want {
					t.Errorf("example problem %q has title %q; the server sends %q", code, title, want)
				}
			}
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(doc)
	if seen < 20 {
		t.Fatalf("found %d problem examples; the walk is broken", seen)
	}
}
