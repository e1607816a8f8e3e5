package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	api "github.com/gatehouse/gatehouse/gen/api"
	"github.com/gatehouse/gatehouse/internal/account"
	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/password"
	"github.com/gatehouse/gatehouse/internal/requestid"
	"github.com/gatehouse/gatehouse/internal/user"
)

// problem is an error that knows the RFC 9457 answer it deserves. Handlers and
// middleware return it (or a domain error that mapError turns into one); the
// error handler writes it. Nothing else writes error bodies.
type problem struct {
	status  int
	code    api.ProblemCode
	detail  string
	fields  []api.FieldError
	headers map[string]string
	mfa     *api.MFAChallenge // the challenge of a login's mfa_required
	cause   error             // logged, never sent
}

func (p *problem) Error() string {
	if p.cause != nil {
		return fmt.Sprintf("%s: %s: %v", p.code, p.detail, p.cause)
	}
	return fmt.Sprintf("%s: %s", p.code, p.detail)
}

func (p *problem) Unwrap() error { return p.cause }

func newProblem(status int, code api.ProblemCode, detail string) *problem {
	return &problem{status: status, code: code, detail: detail}
}

func errUnauthorized(code api.ProblemCode, detail string) *problem {
	p := newProblem(http.StatusUnauthorized, code, detail)
	p.headers = map[string]string{"WWW-Authenticate": `Bearer realm="gatehouse"`}
	if code == api.ProblemCodeInvalidToken {
		p.headers["WWW-Authenticate"] = `Bearer realm="gatehouse", error="invalid_token"`
	}
	return p
}

// mapError turns any error into the problem the client sees. Domain errors are
// mapped here, in one table; anything unknown is an internal error whose text
// stays in the log.
func mapError(err error) *problem {
	var p *problem
	if errors.As(err, &p) {
		return p
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		return fromHTTPError(he)
	}
	if p, ok := mfaProblem(err); ok {
		return p
	}
	var locked *auth.LockedError
	if errors.As(err, &locked) {
		secs := strconv.Itoa(max(int(locked.RetryAfter.Seconds()+0.999), 1))
		return &problem{
			status: http.StatusTooManyRequests, code: api.ProblemCodeAccountLocked,
			detail:  "Too many failed logins for this account; retry after " + secs + " seconds, or reset the password.",
			headers: map[string]string{"Retry-After": secs},
		}
	}
	var badEmail *account.InvalidEmailError
	if errors.As(err, &badEmail) {
		p := newProblem(http.StatusUnprocessableEntity, api.ProblemCodeValidationFailed, "Some fields are invalid; see errors for what to fix.")
		p.fields = []api.FieldError{{Field: "email", Code: api.FieldErrorCode(badEmail.Code), Message: badEmail.Message}}
		return p
	}
	var rejected *auth.PasswordRejectedError
	if errors.As(err, &rejected) {
		p := newProblem(http.StatusUnprocessableEntity, api.ProblemCodePasswordRejected, "The password is not acceptable; see errors for why.")
		field := "password"
		if rejected.Field != "" {
			field = rejected.Field
		}
		p.fields = []api.FieldError{{Field: field, Code: api.FieldErrorCode(rejected.Code), Message: rejected.Message}}
		return p
	}
	switch {
	case errors.Is(err, auth.ErrInvalidCredentials):
		return errUnauthorized(api.ProblemCodeInvalidCredentials, "The email or password is incorrect.")
	case errors.Is(err, auth.ErrWrongPassword):
		// 403, not 401: the access token is good, and a client that refreshes
		// and retries on every 401 must not do so here.
		return newProblem(http.StatusForbidden, api.ProblemCodeInvalidCredentials, "The current password is missing or incorrect.")
	case errors.Is(err, auth.ErrInvalidRefreshToken):
		return errUnauthorized(api.ProblemCodeInvalidRefreshToken, "The refresh token is invalid, expired or revoked; log in again.")
	case errors.Is(err, context.Canceled):
		// The client went away; nobody reads this answer, and it is no fault.
		return &problem{
			status: http.StatusServiceUnavailable, code: api.ProblemCodeServiceUnavailable,
			detail: "The request was cancelled.", cause: errClientGone,
		}
	case errors.Is(err, auth.ErrInvalidOneTimeToken):
		return newProblem(http.StatusBadRequest, api.ProblemCodeInvalidOneTimeToken,
			"The link is invalid, expired, already used or replaced by a newer one; request a new one.")
	case errors.Is(err, auth.ErrEmailNotVerified):
		return newProblem(http.StatusForbidden, api.ProblemCodeEmailNotVerified,
			"Verify your email address first: follow the link we sent, or ask for a new one with /api/v1/auth/email/resend.")
	case errors.Is(err, account.ErrForbidden):
		return newProblem(http.StatusForbidden, api.ProblemCodeForbidden,
			"You cannot manage a user, or grant a role, with permissions you do not hold yourself.")
	case errors.Is(err, account.ErrEmailTaken):
		return newProblem(http.StatusConflict, api.ProblemCodeEmailTaken, "Another account uses this email address.")
	case errors.Is(err, user.ErrConflict):
		return newProblem(http.StatusConflict, api.ProblemCodeConflict, "The account is not in a state that allows this; read it and try again.")
	case errors.Is(err, user.ErrUnknownRole):
		p := newProblem(http.StatusUnprocessableEntity, api.ProblemCodeValidationFailed, "Some fields are invalid; see errors for what to fix.")
		p.fields = []api.FieldError{{Field: "roles", Code: "unknown_role", Message: "names a role that does not exist; GET /api/v1/roles lists them"}}
		return p
	case errors.Is(err, account.ErrNotFound):
		return newProblem(http.StatusNotFound, api.ProblemCodeNotFound, "No such resource.")
	case errors.Is(err, password.ErrBusy):
		return &problem{
			status: http.StatusServiceUnavailable, code: api.ProblemCodeServiceUnavailable,
			detail: "The server is busy checking passwords; retry shortly.", cause: err,
			headers: map[string]string{"Retry-After": "1"},
		}
	case errors.Is(err, auth.ErrInvalidToken):
		return errUnauthorized(api.ProblemCodeInvalidToken, "The access token is invalid, expired or revoked.")
	case errors.Is(err, account.ErrUnavailable):
		return &problem{
			status: http.StatusServiceUnavailable, code: api.ProblemCodeServiceUnavailable,
			detail: "A service this request depends on is unavailable right now; retry shortly.", cause: err,
			headers: map[string]string{"Retry-After": "1"},
		}
	}
	return &problem{
		status: http.StatusInternalServerError, code: api.ProblemCodeInternalError,
		detail: "The server hit an unexpected condition; the request id identifies it in the logs.", cause: err,
	}
}

// fromHTTPError covers what Echo itself raises: unknown routes, wrong
// methods, oversized bodies, bind failures.
func fromHTTPError(he *echo.HTTPError) *problem {
	switch he.Code {
	case http.StatusNotFound:
		return newProblem(he.Code, api.ProblemCodeNotFound, "No resource lives at this path.")
	case http.StatusMethodNotAllowed:
		return newProblem(he.Code, api.ProblemCodeMethodNotAllowed, "This path does not accept this method; see the Allow header.")
	case http.StatusRequestEntityTooLarge:
		return newProblem(he.Code, api.ProblemCodePayloadTooLarge, "The request body is larger than this server accepts.")
	case http.StatusUnsupportedMediaType:
		return newProblem(he.Code, api.ProblemCodeUnsupportedMediaType, "Send the body as application/json.")
	case http.StatusBadRequest:
		return &problem{status: he.Code, code: api.ProblemCodeBadRequest, detail: "The request could not be understood.", cause: he}
	case http.StatusServiceUnavailable:
		return &problem{status: he.Code, code: api.ProblemCodeServiceUnavailable, detail: "The service is unavailable; retry shortly.", cause: he}
	}
	if he.Code >= 400 && he.Code < 500 {
		return &problem{status: he.Code, code: api.ProblemCodeBadRequest, detail: http.StatusText(he.Code), cause: he}
	}
	return &problem{
		status: http.StatusInternalServerError, code: api.ProblemCodeInternalError,
		detail: "The server hit an unexpected condition; the request id identifies it in the logs.", cause: he,
	}
}

// problemTitles are the problems' titles, one per code: RFC 9457's title
// summarises the problem type (here the code) and does not change between
// occurrences. The spec's examples use the same titles (a test compares them).
var problemTitles = map[api.ProblemCode]string{
	api.ProblemCodeBadRequest:           "Bad request",
	api.ProblemCodeMalformedJson:        "Malformed JSON",
	api.ProblemCodeValidationFailed:     "Validation failed",
	api.ProblemCodeUnauthorized:         "Unauthorized",
	api.ProblemCodeInvalidToken:         "Invalid token",
	api.ProblemCodeForbidden:            "Forbidden",
	api.ProblemCodeNotFound:             "Not found",
	api.ProblemCodeMethodNotAllowed:     "Method not allowed",
	api.ProblemCodeConflict:             "Conflict",
	api.ProblemCodeEmailTaken:           "Email address taken",
	api.ProblemCodePayloadTooLarge:      "Payload too large",
	api.ProblemCodeUnsupportedMediaType: "Unsupported media type",
	api.ProblemCodeRateLimited:          "Too many requests",
	api.ProblemCodeInvalidCredentials:   "Invalid credentials",
	api.ProblemCodeAccountLocked:        "Account locked",
	api.ProblemCodeEmailNotVerified:     "Email not verified",
	api.ProblemCodeInvalidRefreshToken:  "Invalid refresh token",
	api.ProblemCodeInvalidOneTimeToken:  "Invalid or expired token",
	api.ProblemCodePasswordRejected:     "Password rejected",
	api.ProblemCodeServiceUnavailable:   "Service unavailable",
	api.ProblemCodeInternalError:        "Internal server error",
	api.ProblemCodeMfaRequired:          "Multi-factor authentication required",
	api.ProblemCodeInvalidMfaChallenge:  "Invalid MFA challenge",
	api.ProblemCodeInvalidMfaCode:       "Invalid MFA code",
}

func problemTitle(code api.ProblemCode, status int) string {
	if t, ok := problemTitles[code]; ok {
		return t
	}
	return http.StatusText(status)
}

// maxMessage is the contract's maxLength of a field error's message.
const maxMessage = 500

// maxFieldErrors is the contract's maxItems of a problem's errors: a body
// with thousands of unknown fields gets a bounded answer.
const maxFieldErrors = 100

// maxInstance is the contract's maxLength of a problem's instance.
const maxInstance = 2048

// errClientGone marks a request whose client disconnected.
var errClientGone = errors.New("client disconnected")

// causeKey is where the error handler leaves the internal cause of a 5xx for
// the access log, so the error is logged once, with its request.
const causeKey = "gatehouse.cause"

// handleError is Echo's HTTPErrorHandler: the one place error bodies are
// written.
func (s *Server) handleError(err error, c echo.Context) {
	p := mapError(err)
	if p.status >= 500 || c.Response().Committed {
		c.Set(causeKey, err)
	}
	if c.Response().Committed {
		return
	}
	body := api.Problem{
		Type:      "urn:gatehouse:problem:" + string(p.code),
		Title:     problemTitle(p.code, p.status),
		Status:    p.status,
		Code:      p.code,
		RequestId: requestid.From(c.Request().Context()),
	}
	if p.detail != "" {
		body.Detail = &p.detail
	}
	instance := c.Request().URL.Path
	if len(instance) > maxInstance { // the contract bounds it; paths are not
		instance = strings.ToValidUTF8(instance[:maxInstance], "")
	}
	body.Instance = &instance
	body.Mfa = p.mfa
	if len(p.fields) > 0 {
		fields := p.fields[:min(len(p.fields), maxFieldErrors)] // the contract's maxItems
		for i := range fields {
			if m := fields[i].Message; len(m) > maxMessage { // messages are written to fit; never break the contract
				fields[i].Message = strings.ToValidUTF8(m[:maxMessage], "")
			}
		}
		body.Errors = &fields
	}
	h := c.Response().Header()
	for k, v := range p.headers {
		h.Set(k, v)
	}
	h.Set(echo.HeaderContentType, "application/problem+json")
	h.Set("Cache-Control", "no-store")
	c.Response().WriteHeader(p.status)
	if c.Request().Method == http.MethodHead {
		return
	}
	if werr := json.NewEncoder(c.Response()).Encode(body); werr != nil {
		s.log.DebugContext(c.Request().Context(), "write problem", "error", werr)
	}
}
