package httpapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/labstack/echo/v4"

	api "github.com/gatehouse/gatehouse/gen/api"
	"github.com/gatehouse/gatehouse/internal/account"
	"github.com/gatehouse/gatehouse/internal/auth"
)

// bearerScheme is the one security scheme of the contract.
const bearerScheme = "bearerAuth"

// Authenticator checks an access token and returns who presented it. It
// returns auth.ErrInvalidToken for any token it refuses and account.ErrUnavailable
// when it cannot decide (the request then fails closed).
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (account.Principal, error)
}

// operation is what the contract says about one method and path, prepared
// once at start-up.
type operation struct {
	route *routers.Route
	// public is true when the operation declares `security: []`.
	public bool
	// permissions lists what a protected operation's `x-permissions`
	// extension says the caller must hold, every one of them.
	permissions []string
	// mfa is what the operation's `x-mfa` extension says of the session:
	// mfaAlways, mfaIfEnrolled, or "" (no requirement).
	mfa string
	// jsonBody is true when the operation takes a JSON request body.
	jsonBody bool
	// maxValues bounds the values of its body (maxJSONValues, or the
	// operation's x-max-json-values: importUsers takes a thousand accounts).
	maxValues int
}

// contract enforces api/openapi.yaml on every request: first the security
// requirement each operation declares (401, 403, 503), then the request
// schema (400, 413, 415, 422). It is the first of the two tiers of
// authorization (ARCHITECTURE.md): whether the caller may call the operation
// at all, from its x-permissions; handlers never check permissions. The
// second, on whom an administrator may act, belongs to the rules of package
// user and runs inside the transaction that changes the target.
type contract struct {
	ops       map[string]*operation // "METHOD /echo/:path"
	auth      Authenticator
	schemas   []openapi3.SchemaValidationOption
	bodyLimit int64
}

func newContract(doc *openapi3.T, authn Authenticator, bodyLimit int64) (*contract, error) {
	c := &contract{ops: map[string]*operation{}, auth: authn, schemas: doc.GetSchemaValidationOptions(), bodyLimit: bodyLimit}
	known, err := knownPermissions(doc)
	if err != nil {
		return nil, err
	}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			o, err := prepareOperation(doc, path, item, method, op, known)
			if err != nil {
				return nil, err
			}
			c.ops[method+" "+echoPath(path)] = o
		}
	}
	return c, nil
}

func prepareOperation(doc *openapi3.T, path string, item *openapi3.PathItem, method string, op *openapi3.Operation, known map[string]bool) (*operation, error) {
	o := &operation{route: &routers.Route{Spec: doc, Path: path, PathItem: item, Method: method, Operation: op}}
	security := op.Security
	if security == nil {
		security = &doc.Security
	}
	// Every operation must state its security explicitly: an operation that
	// forgot to would otherwise be public by accident.
	if op.Security == nil {
		return nil, fmt.Errorf("operation %s %s (%s) declares no security: write `security: []` for a public operation", method, path, op.OperationID)
	}
	if len(*security) == 0 {
		o.public = true
	}
	for _, req := range *security {
		if len(req) == 0 {
			o.public = true // an empty requirement means "anonymous is fine"
			continue
		}
		for scheme, scopes := range req {
			if scheme != bearerScheme {
				return nil, fmt.Errorf("operation %s %s: unsupported security scheme %q", method, path, scheme)
			}
			// OpenAPI 3.0 allows scopes only for OAuth2 and OpenID Connect:
			// permissions go in x-permissions.
			if len(scopes) > 0 {
				return nil, fmt.Errorf("operation %s %s: %s lists scopes %v: write them as x-permissions", method, path, scheme, scopes)
			}
		}
	}
	perms, err := operationPermissions(op, known)
	if err != nil {
		return nil, fmt.Errorf("operation %s %s (%s): %w", method, path, op.OperationID, err)
	}
	if len(perms) > 0 && o.public {
		return nil, fmt.Errorf("operation %s %s (%s) is public but declares x-permissions %v", method, path, op.OperationID, perms)
	}
	o.permissions = perms
	if o.mfa, err = operationMFA(op); err != nil {
		return nil, fmt.Errorf("operation %s %s (%s): %w", method, path, op.OperationID, err)
	}
	if o.mfa != "" && o.public {
		return nil, fmt.Errorf("operation %s %s (%s) is public but declares %s", method, path, op.OperationID, mfaExtension)
	}
	if rb := op.RequestBody; rb != nil && rb.Value != nil {
		o.jsonBody = rb.Value.Content.Get("application/json") != nil
	}
	o.maxValues = maxJSONValues
	if v, ok := op.Extensions[maxValuesExtension]; ok {
		n, ok := v.(float64)
		if !ok || n < maxJSONValues || n > maxJSONValuesExtended || n != float64(int(n)) {
			return nil, fmt.Errorf("operation %s %s (%s): %s must be an integer from %d to %d", method, path, op.OperationID, maxValuesExtension, maxJSONValues, maxJSONValuesExtended)
		}
		o.maxValues = int(n)
	}
	return o, nil
}

// echoPath turns /users/{id} into Echo's /users/:id.
func echoPath(p string) string {
	segs := strings.Split(p, "/")
	for i, seg := range segs {
		if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") {
			segs[i] = ":" + seg[1:len(seg)-1]
		}
	}
	return strings.Join(segs, "/")
}

func (k *contract) middleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		method := c.Request().Method
		if method == http.MethodHead {
			method = http.MethodGet // HEAD is the GET it mirrors: same security, same validation
		}
		op, ok := k.ops[method+" "+c.Path()]
		if !ok {
			return next(c) // not an operation of the contract: docs, 404, 405
		}
		if !op.public {
			p, err := k.authenticate(c.Request(), op)
			if err != nil {
				return err
			}
			c.SetRequest(c.Request().WithContext(account.WithPrincipal(c.Request().Context(), p)))
		}
		if err := k.validateRequest(c, op); err != nil {
			return err
		}
		return next(c)
	}
}

func (k *contract) authenticate(r *http.Request, op *operation) (account.Principal, error) {
	token, ok := bearerToken(r.Header.Get(echo.HeaderAuthorization))
	if !ok {
		return account.Principal{}, errUnauthorized(api.ProblemCodeUnauthorized, "This operation needs an access token: send `Authorization: Bearer <token>`.")
	}
	p, err := k.auth.Authenticate(r.Context(), token)
	if err != nil {
		if errors.Is(err, auth.ErrInvalidToken) || errors.Is(err, account.ErrUnavailable) {
			return account.Principal{}, err
		}
		// Anything else means the check could not be made: fail closed.
		return account.Principal{}, fmt.Errorf("%w: %w", account.ErrUnavailable, err)
	}
	if !p.Has(op.permissions...) {
		if p.WithheldForMFA(op.permissions...) {
			// The permission comes from a role that needs MFA (MFA_REQUIRED_ROLES).
			return account.Principal{}, newProblem(http.StatusForbidden, api.ProblemCodeMfaRequired,
				"Your role needs multi-factor authentication for this operation: turn it on (/api/v1/users/me/mfa/totp) or step this session up (/api/v1/users/me/mfa/step-up).")
		}
		return account.Principal{}, newProblem(http.StatusForbidden, api.ProblemCodeForbidden,
			"Your account lacks the permission this operation needs: "+strings.Join(op.permissions, ", ")+".")
	}
	if !p.MFA && (op.mfa == mfaAlways || op.mfa == mfaIfEnrolled && p.MFAEnrolled) {
		return account.Principal{}, newProblem(http.StatusForbidden, api.ProblemCodeMfaRequired,
			"This operation needs a session authenticated with a second factor: turn multi-factor authentication on, or step this session up (/api/v1/users/me/mfa/step-up).")
	}
	return p, nil
}

// mfaExtension names the operation extension that says whether an
// operation needs a multi-factor session.
const mfaExtension = "x-mfa"

// Values of x-mfa.
const (
	mfaAlways     = "always"      // the session must be a multi-factor one
	mfaIfEnrolled = "if-enrolled" // it must be when the caller's account has MFA
)

// operationMFA reads an operation's x-mfa, refusing values it does not know:
// a typo must not silently drop a requirement.
func operationMFA(op *openapi3.Operation) (string, error) {
	raw, ok := op.Extensions[mfaExtension]
	if !ok {
		return "", nil
	}
	v, _ := raw.(string)
	if v != mfaAlways && v != mfaIfEnrolled {
		return "", fmt.Errorf("%s must be %q or %q, not %v", mfaExtension, mfaAlways, mfaIfEnrolled, raw)
	}
	return v, nil
}

// permissionsExtension names the operation extension that lists the
// permissions an operation needs.
const permissionsExtension = "x-permissions"

// maxValuesExtension raises the number of JSON values an operation's body
// may hold above maxJSONValues (up to maxJSONValuesExtended).
const maxValuesExtension = "x-max-json-values"

// knownPermissions reads the names the contract allows in x-permissions: the
// enum of its Permission schema, which the migrations seed one for one (a
// test of the store compares the two).
func knownPermissions(doc *openapi3.T) (map[string]bool, error) {
	ref := doc.Components.Schemas["Permission"]
	if ref == nil || ref.Value == nil || len(ref.Value.Enum) == 0 {
		return nil, errors.New("the contract has no Permission enum to check x-permissions against")
	}
	known := map[string]bool{}
	for _, v := range ref.Value.Enum {
		name, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("permission %v is not a string", v)
		}
		known[name] = true
	}
	return known, nil
}

// operationPermissions reads an operation's x-permissions and refuses names
// the contract does not know: a typo would otherwise lock everyone out of
// the operation, or worse, go unnoticed.
func operationPermissions(op *openapi3.Operation, known map[string]bool) ([]string, error) {
	raw, ok := op.Extensions[permissionsExtension]
	if !ok {
		return nil, nil
	}
	list, ok := raw.([]any)
	if !ok {
		return nil, fmt.Errorf("%s must be a list of permission names, got %T", permissionsExtension, raw)
	}
	var perms []string
	for _, v := range list {
		name, ok := v.(string)
		if !ok || !known[name] {
			return nil, fmt.Errorf("%s names unknown permission %v", permissionsExtension, v)
		}
		if !slices.Contains(perms, name) {
			perms = append(perms, name)
		}
	}
	if len(perms) == 0 {
		return nil, fmt.Errorf("%s is empty: leave it out for an operation any signed-in user may call", permissionsExtension)
	}
	return perms, nil
}

// bearerToken extracts the token of an "Authorization: Bearer x" header.
func bearerToken(h string) (string, bool) {
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// validateRequest checks parameters and body against the operation's schema
// and turns kin-openapi's findings into problems.
func (k *contract) validateRequest(c echo.Context, op *operation) error {
	req := c.Request()
	if op.jsonBody && hasBody(req) {
		mt, params, err := mime.ParseMediaType(req.Header.Get(echo.HeaderContentType))
		if cs, ok := params["charset"]; err != nil || mt != echo.MIMEApplicationJSON || (ok && !strings.EqualFold(cs, "utf-8")) {
			return newProblem(http.StatusUnsupportedMediaType, api.ProblemCodeUnsupportedMediaType,
				"Send the body as UTF-8 JSON (Content-Type: application/json).")
		}
		// Normalised, so every later reader agrees on what it got.
		req.Header.Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
		// Read the body here, under the body limit, so an oversized body is a
		// 413 and not a parse error; then hand it on. Only operations that take
		// a body are limited (and declare 413); others never read theirs.
		if req.ContentLength > k.bodyLimit {
			return fromHTTPError(echo.ErrStatusRequestEntityTooLarge)
		}
		body, err := readBody(req, k.bodyLimit)
		if err == nil && int64(len(body)) > k.bodyLimit {
			return fromHTTPError(echo.ErrStatusRequestEntityTooLarge)
		}
		if err != nil {
			if errors.Is(err, echo.ErrStatusRequestEntityTooLarge) {
				return fromHTTPError(echo.ErrStatusRequestEntityTooLarge)
			}
			return &problem{status: http.StatusBadRequest, code: api.ProblemCodeBadRequest, detail: "The request body could not be read.", cause: err}
		}
		if len(body) > 0 {
			var beyond *beyondLimitError
			if err := checkStrictJSON(body, op.maxValues); errors.As(err, &beyond) {
				// Refused before the schema validator, which would decode
				// every value and report every unknown key.
				p := newProblem(http.StatusUnprocessableEntity, api.ProblemCodeValidationFailed, "The request body is beyond what any operation accepts; see errors.")
				p.fields = []api.FieldError{{Field: beyond.field, Code: api.FieldErrorCode(beyond.code), Message: beyond.message}}
				return p
			} else if err != nil {
				return newProblem(http.StatusBadRequest, api.ProblemCodeMalformedJson, "The request body is not acceptable JSON: "+err.Error()+".")
			}
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	if err := checkParameters(c, op); err != nil {
		return err
	}
	params := map[string]string{}
	for i, name := range c.ParamNames() {
		v := c.ParamValues()[i]
		if u, err := url.PathUnescape(v); err == nil {
			v = u
		}
		params[name] = v
	}
	err := openapi3filter.ValidateRequest(req.Context(), &openapi3filter.RequestValidationInput{
		Request:    req,
		PathParams: params,
		Route:      op.route,
		Options: &openapi3filter.Options{
			MultiError:              true,
			AuthenticationFunc:      openapi3filter.NoopAuthenticationFunc, // enforced above, before the schema
			SchemaValidationOptions: k.schemas,
			// The strict handler binds the value validated here instead of
			// decoding the body a second time (case-insensitively).
			KeepValidatedValue: true,
		},
	})
	if err == nil {
		return nil
	}
	return validationProblem(err)
}

// checkParameters refuses a query string that cannot be read, and values of
// the operation's declared query and path parameters that are not valid UTF-8
// or hold control characters: no parameter of the contract takes them.
// Undeclared parameters are otherwise ignored.
func checkParameters(c echo.Context, op *operation) error {
	// net/url drops what it cannot decode (a bad %-escape, a semicolon) and,
	// past 10,000 parameters, everything: Echo and the validator would then
	// serve the request as if no parameter had been sent. The query string is
	// at most the server's header limit (64 KiB), so reading it once more
	// costs little.
	if _, err := url.ParseQuery(c.Request().URL.RawQuery); err != nil {
		return newProblem(http.StatusBadRequest, api.ProblemCodeBadRequest,
			"The query string cannot be read: it holds an invalid %-escape or a semicolon, or more than 10,000 parameters.")
	}
	var fields []api.FieldError
	bad := func(v string) bool {
		return !utf8.ValidString(v) || strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f })
	}
	for _, pref := range op.route.Operation.Parameters {
		if pref.Value == nil || pref.Value.In != openapi3.ParameterInQuery {
			continue
		}
		name := pref.Value.Name
		for _, v := range c.QueryParams()[name] {
			if bad(v) {
				fields = append(fields, api.FieldError{Field: name, Code: "invalid_characters", Message: "must be valid UTF-8 text without control characters"})
				break
			}
		}
	}
	for i, name := range c.ParamNames() {
		if v, err := url.PathUnescape(c.ParamValues()[i]); err != nil || bad(v) {
			fields = append(fields, api.FieldError{Field: name, Code: "invalid_characters", Message: "must be valid UTF-8 text without control characters"})
		}
	}
	if len(fields) == 0 {
		return nil
	}
	p := newProblem(http.StatusBadRequest, api.ProblemCodeBadRequest, "Some parameters are invalid; see errors for what to fix.")
	p.fields = fields
	return p
}

// readBody reads up to limit+1 bytes of the body. The buffer doubles as data
// arrives, as io.ReadAll's does, so memory follows the bytes actually sent
// (a client that announces 1 MiB and sends nothing holds 512 bytes); but it
// never grows past the announced length plus the one byte that shows the
// end, where io.ReadAll would double once more: a 1 MiB body costs about
// 2 MiB of allocations instead of 4.
func readBody(r *http.Request, limit int64) ([]byte, error) {
	want := limit + 1
	if r.ContentLength >= 0 {
		want = min(want, r.ContentLength+1)
	}
	buf := make([]byte, 0, min(want, bytes.MinRead))
	for {
		if len(buf) == cap(buf) {
			if int64(len(buf)) > limit {
				return buf, nil // the caller answers 413
			}
			if int64(len(buf)) >= want {
				want = limit + 1 // longer than announced: read on to the limit
			}
			buf = slices.Grow(buf, int(min(int64(len(buf)), want-int64(len(buf)))))
		}
		n, err := r.Body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

func hasBody(r *http.Request) bool {
	return r.ContentLength > 0 || (r.ContentLength < 0 && r.Body != nil && r.Body != http.NoBody)
}
