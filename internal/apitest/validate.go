package apitest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/gatehouse/gatehouse/internal/httpapi"
)

// validatingTransport checks every response against the contract: an
// operation's response must be one the spec declares for it (status,
// content type, headers, body schema); any other error response must be a
// Problem. A mismatch fails the test.
type validatingTransport struct {
	t      testing.TB
	next   http.RoundTripper
	doc    *openapi3.T
	router routers.Router
}

func newValidatingTransport(t testing.TB, next http.RoundTripper) *validatingTransport {
	t.Helper()
	doc, err := httpapi.LoadSpec()
	if err != nil {
		t.Fatal(err)
	}
	r, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return &validatingTransport{t: t, next: next, doc: doc, router: r}
}

func (v *validatingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := v.next.RoundTrip(req)
	if err != nil {
		return res, err
	}
	body, err := io.ReadAll(res.Body)
	_ = res.Body.Close()
	if err != nil {
		return nil, err
	}
	res.Body = io.NopCloser(bytes.NewReader(body))
	if verr := v.check(req, res, body); verr != nil {
		v.t.Errorf("response to %s %s breaks the contract: %v\nstatus %d, body: %s", req.Method, req.URL.Path, verr, res.StatusCode, truncate(body))
	}
	return res, nil
}

func (v *validatingTransport) check(req *http.Request, res *http.Response, body []byte) error {
	if res.Header.Get("X-Request-ID") == "" {
		return fmt.Errorf("no X-Request-ID header")
	}
	route, params, err := v.router.FindRoute(req)
	if err != nil {
		// Not an operation of the contract (docs, unknown path, wrong method):
		// an error there must still be a problem.
		if res.StatusCode >= 400 {
			return v.checkProblem(res, body)
		}
		return nil
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 res.StatusCode,
		Header:                 res.Header,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options: &openapi3filter.Options{
			IncludeResponseStatus:   true,
			MultiError:              true,
			SchemaValidationOptions: v.doc.GetSchemaValidationOptions(),
		},
	}
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		return err
	}
	if strings.HasPrefix(res.Header.Get("Content-Type"), "application/problem+json") {
		return v.checkProblem(res, body)
	}
	return nil
}

// checkProblem validates an error body against the Problem schema and checks
// that it names the request id of its header.
func (v *validatingTransport) checkProblem(res *http.Response, body []byte) error {
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		return fmt.Errorf("error response has Content-Type %q, want application/problem+json", ct)
	}
	var val any
	if err := json.Unmarshal(body, &val); err != nil {
		return fmt.Errorf("problem is not JSON: %w", err)
	}
	schema := v.doc.Components.Schemas["Problem"].Value
	if err := schema.VisitJSON(val, v.doc.GetSchemaValidationOptions()...); err != nil {
		return fmt.Errorf("problem does not match the Problem schema: %w", err)
	}
	m, _ := val.(map[string]any)
	if m["request_id"] != res.Header.Get("X-Request-ID") {
		return fmt.Errorf("problem request_id %v differs from the X-Request-ID header %q", m["request_id"], res.Header.Get("X-Request-ID"))
	}
	if int(m["status"].(float64)) != res.StatusCode {
		return fmt.Errorf("problem status %v differs from the HTTP status %d", m["status"], res.StatusCode)
	}
	return nil
}

func truncate(b []byte) string {
	if len(b) > 2000 {
		return string(b[:2000]) + "..."
	}
	return string(b)
}
