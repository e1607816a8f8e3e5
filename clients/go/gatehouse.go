// Package gatehouse is what a Go program that calls gatehouse needs beside
// the generated client (github.com/gatehouse/gatehouse/gen/client): the
// contract's base URL, the bearer header, and one way to read the problem of
// any error response. The request and response types stay in gen/client.
//
//	c, err := gatehouse.New("", gatehouse.WithBearer(accessToken))
//	res, err := c.GetMeWithResponse(ctx)
//	if p, ok := gatehouse.ProblemOf(res); ok && p.Code == client.ProblemCodeInvalidToken { ... refresh ... }
package gatehouse

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v4"

	"github.com/gatehouse/gatehouse/api"
	"github.com/gatehouse/gatehouse/gen/client"
)

// Problem is an RFC 9457 problem document of the API; branch on Code.
type Problem = client.Problem

// ServerURL returns the first server the contract lists, when it is an
// absolute URL a program can call; a relative one (such as "/", which means
// "wherever the document was served from") gives false.
func ServerURL() (string, bool) {
	var doc struct {
		Servers []struct {
			URL string `yaml:"url"`
		} `yaml:"servers"`
	}
	if err := yaml.Unmarshal(api.OpenAPIYAML, &doc); err != nil || len(doc.Servers) == 0 {
		return "", false
	}
	u, err := url.Parse(doc.Servers[0].URL)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return "", false
	}
	return strings.TrimRight(u.String(), "/"), true
}

// New returns the generated client for the gatehouse at baseURL (for
// example https://auth.example.com). An empty baseURL means the contract's
// first server (see ServerURL), when it is absolute.
func New(baseURL string, opts ...client.ClientOption) (*client.ClientWithResponses, error) {
	if baseURL == "" {
		u, ok := ServerURL()
		if !ok {
			return nil, errors.New("the contract names no absolute server: pass the gatehouse's base URL")
		}
		baseURL = u
	}
	c, err := client.NewClientWithResponses(baseURL, opts...)
	if err != nil {
		return nil, fmt.Errorf("gatehouse client for %s: %w", baseURL, err)
	}
	return c, nil
}

// Bearer authenticates one request with an access token:
// c.GetMeWithResponse(ctx, gatehouse.Bearer(token)).
func Bearer(accessToken string) client.RequestEditorFn {
	return func(_ context.Context, r *http.Request) error {
		r.Header.Set("Authorization", "Bearer "+accessToken)
		return nil
	}
}

// WithBearer authenticates every request of the client with one access token.
func WithBearer(accessToken string) client.ClientOption {
	return client.WithRequestEditorFn(Bearer(accessToken))
}

// WithTokenSource authenticates every request with the access token token
// returns at the time (a program that refreshes its tokens hands over the
// current one); an error stops the request.
func WithTokenSource(token func(context.Context) (string, error)) client.ClientOption {
	return client.WithRequestEditorFn(func(ctx context.Context, r *http.Request) error {
		t, err := token(ctx)
		if err != nil {
			return fmt.Errorf("access token: %w", err)
		}
		r.Header.Set("Authorization", "Bearer "+t)
		return nil
	})
}

// ProblemOf reads the problem document of any response the generated client
// returns (*client.GetMeResponse, *client.CreateUserResponse, ...), whatever
// its status: the generated types keep each status in a field of its own
// (ApplicationproblemJSON401, ...), this reads the one body they all have.
// It reports false for a success, or a body that is not a problem.
func ProblemOf(res any) (*Problem, bool) {
	httpRes, body := parts(res) //nolint:bodyclose // the generated client read and closed this body
	if httpRes == nil || httpRes.StatusCode < 400 {
		return nil, false
	}
	if !strings.HasPrefix(httpRes.Header.Get("Content-Type"), "application/problem+json") {
		return nil, false
	}
	var p Problem
	if err := json.Unmarshal(body, &p); err != nil || p.Code == "" {
		return nil, false
	}
	return &p, true
}

// ProblemError is a problem as a Go error, for code that returns errors.
type ProblemError struct{ Problem Problem }

func (e *ProblemError) Error() string {
	return fmt.Sprintf("gatehouse: %d %s: %s", e.Problem.Status, e.Problem.Code, e.Problem.Title)
}

// Check turns a failed call into an error: the transport's error, a
// *ProblemError for a problem document, or a plain error for any other
// status of 400 and above. A success gives nil.
func Check(res any, err error) error {
	if err != nil {
		return err
	}
	if p, ok := ProblemOf(res); ok {
		return &ProblemError{Problem: *p}
	}
	//nolint:bodyclose // the generated client read and closed this body
	if httpRes, _ := parts(res); httpRes != nil && httpRes.StatusCode >= 400 {
		return fmt.Errorf("gatehouse: %s without a problem document", httpRes.Status)
	}
	return nil
}

// parts reads the two fields every generated response struct has: Body and
// HTTPResponse.
func parts(res any) (*http.Response, []byte) {
	v := reflect.ValueOf(res)
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return nil, nil
		}
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return nil, nil
	}
	var h *http.Response
	var b []byte
	if f := v.FieldByName("HTTPResponse"); f.IsValid() && f.CanInterface() {
		h, _ = f.Interface().(*http.Response)
	}
	if f := v.FieldByName("Body"); f.IsValid() && f.CanInterface() {
		b, _ = f.Interface().([]byte)
	}
	return h, b
}
