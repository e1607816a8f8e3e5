package httpapi

import (
	"context"
	"errors"
	"net/http"

	"github.com/google/uuid"

	api "github.com/gatehouse/gatehouse/gen/api"
	"github.com/gatehouse/gatehouse/internal/account"
	"github.com/gatehouse/gatehouse/internal/auth"
)

// MFA is what the HTTP layer asks of the service for multi-factor
// authentication.
type MFA interface {
	VerifyMFALogin(ctx context.Context, challenge, code, recovery string, c account.Client) (auth.Tokens, error)
	EnrolTOTP(ctx context.Context, p account.Principal, password string, c account.Client) (auth.Enrolment, error)
	ConfirmTOTP(ctx context.Context, p account.Principal, code string, c account.Client) (auth.Tokens, []string, error)
	StepUp(ctx context.Context, p account.Principal, code, recovery string, c account.Client) (auth.Tokens, error)
	DisableMFA(ctx context.Context, p account.Principal, password, code, recovery string, c account.Client) (auth.Tokens, error)
	RegenerateRecoveryCodes(ctx context.Context, p account.Principal, password, code string, c account.Client) ([]string, error)
	ResetMFA(ctx context.Context, actor account.Principal, id uuid.UUID, c account.Client) error
}

// oneProof refuses a body with neither or both of code and recovery_code:
// the schema cannot say "exactly one" in a way every generator reads.
func oneProof(code *api.MFACode, recovery *api.RecoveryCode) (string, string, error) {
	if (code == nil) == (recovery == nil) {
		p := newProblem(http.StatusUnprocessableEntity, api.ProblemCodeValidationFailed, "Some fields are invalid; see errors for what to fix.")
		p.fields = []api.FieldError{{Field: "code", Code: api.Required, Message: "send exactly one of code (from the authenticator app) and recovery_code"}}
		return "", "", p
	}
	return deref(code), deref(recovery), nil
}

// VerifyMfaLogin completes a login with a second factor.
func (s *Server) VerifyMfaLogin(ctx context.Context, r api.VerifyMfaLoginRequestObject) (api.VerifyMfaLoginResponseObject, error) {
	code, recovery, err := oneProof(r.Body.Code, r.Body.RecoveryCode)
	if err != nil {
		return nil, err
	}
	// Counted per client with the login's own limit: guessing codes costs a
	// client what guessing passwords does.
	if err := s.limit(ctx, s.byIP(ctx, s.deps.RateLimits.LoginIP)); err != nil {
		return nil, err
	}
	t, err := s.deps.MFA.VerifyMFALogin(ctx, r.Body.Challenge, code, recovery, client(ctx))
	if errors.Is(err, auth.ErrInvalidMFACode) {
		// No session yet: a 401, like the login's own failures.
		return nil, errUnauthorized(api.ProblemCodeInvalidMfaCode, "The code is incorrect or was already used; enter the current code of your authenticator app.")
	}
	if err != nil {
		return nil, err
	}
	return api.VerifyMfaLogin200JSONResponse{Body: tokenResponse(ctx, t), Headers: api.VerifyMfaLogin200ResponseHeaders{CacheControl: ptr("no-store"), Pragma: ptr("no-cache")}}, nil
}

// StartTotpEnrolment starts a TOTP enrolment.
func (s *Server) StartTotpEnrolment(ctx context.Context, r api.StartTotpEnrolmentRequestObject) (api.StartTotpEnrolmentResponseObject, error) {
	e, err := s.deps.MFA.EnrolTOTP(ctx, principal(ctx), r.Body.Password, client(ctx))
	if err != nil {
		return nil, selfGone(err)
	}
	return api.StartTotpEnrolment201JSONResponse{
		Body:    api.TOTPEnrolmentResponse{Data: api.TOTPEnrolment{Secret: e.Secret, OtpauthUri: e.URI, ExpiresAt: e.ExpiresAt.UTC()}, Meta: meta(ctx)},
		Headers: api.StartTotpEnrolment201ResponseHeaders{CacheControl: noStore},
	}, nil
}

// ConfirmTotpEnrolment turns MFA on.
func (s *Server) ConfirmTotpEnrolment(ctx context.Context, r api.ConfirmTotpEnrolmentRequestObject) (api.ConfirmTotpEnrolmentResponseObject, error) {
	t, codes, err := s.deps.MFA.ConfirmTOTP(ctx, principal(ctx), r.Body.Code, client(ctx))
	if err != nil {
		return nil, selfGone(err)
	}
	return api.ConfirmTotpEnrolment200JSONResponse{
		Body:    api.MFAEnabledResponse{Data: api.MFAEnabled{RecoveryCodes: codes, Tokens: tokenResponse(ctx, t).Data}, Meta: meta(ctx)},
		Headers: api.ConfirmTotpEnrolment200ResponseHeaders{CacheControl: noStore},
	}, nil
}

// StepUpMfa makes the caller's session a multi-factor one.
func (s *Server) StepUpMfa(ctx context.Context, r api.StepUpMfaRequestObject) (api.StepUpMfaResponseObject, error) {
	code, recovery, err := oneProof(r.Body.Code, r.Body.RecoveryCode)
	if err != nil {
		return nil, err
	}
	t, err := s.deps.MFA.StepUp(ctx, principal(ctx), code, recovery, client(ctx))
	if err != nil {
		return nil, selfGone(err)
	}
	return api.StepUpMfa200JSONResponse{Body: tokenResponse(ctx, t), Headers: api.StepUpMfa200ResponseHeaders{CacheControl: ptr("no-store"), Pragma: ptr("no-cache")}}, nil
}

// DisableMfa turns MFA off.
func (s *Server) DisableMfa(ctx context.Context, r api.DisableMfaRequestObject) (api.DisableMfaResponseObject, error) {
	code, recovery, err := oneProof(r.Body.Code, r.Body.RecoveryCode)
	if err != nil {
		return nil, err
	}
	t, err := s.deps.MFA.DisableMFA(ctx, principal(ctx), r.Body.Password, code, recovery, client(ctx))
	if err != nil {
		return nil, selfGone(err)
	}
	return api.DisableMfa200JSONResponse{Body: tokenResponse(ctx, t), Headers: api.DisableMfa200ResponseHeaders{CacheControl: ptr("no-store"), Pragma: ptr("no-cache")}}, nil
}

// RegenerateRecoveryCodes replaces the caller's recovery codes.
func (s *Server) RegenerateRecoveryCodes(ctx context.Context, r api.RegenerateRecoveryCodesRequestObject) (api.RegenerateRecoveryCodesResponseObject, error) {
	codes, err := s.deps.MFA.RegenerateRecoveryCodes(ctx, principal(ctx), r.Body.Password, r.Body.Code, client(ctx))
	if err != nil {
		return nil, selfGone(err)
	}
	return api.RegenerateRecoveryCodes200JSONResponse{
		Body:    api.RecoveryCodesResponse{Data: api.RecoveryCodesResult{RecoveryCodes: codes}, Meta: meta(ctx)},
		Headers: api.RegenerateRecoveryCodes200ResponseHeaders{CacheControl: noStore},
	}, nil
}

// ResetUserMfa removes a user's MFA (an administrator's act).
func (s *Server) ResetUserMfa(ctx context.Context, r api.ResetUserMfaRequestObject) (api.ResetUserMfaResponseObject, error) {
	if err := s.deps.MFA.ResetMFA(ctx, principal(ctx), uuid.UUID(r.Id), client(ctx)); err != nil {
		return nil, err
	}
	return api.ResetUserMfa204Response{}, nil
}

// mfaProblem maps the errors of multi-factor authentication; ok is false
// for any other error.
func mfaProblem(err error) (*problem, bool) {
	var required *auth.MFARequiredError
	if errors.As(err, &required) {
		p := errUnauthorized(api.ProblemCodeMfaRequired,
			"Enter the code of your authenticator app (or a recovery code) and send it with the challenge to /api/v1/auth/mfa/verify.")
		p.mfa = &api.MFAChallenge{
			Challenge: required.Challenge, ExpiresIn: int(required.ExpiresIn.Seconds()),
			Methods: []api.MFAChallengeMethods{api.MFAChallengeMethodsTotp, api.MFAChallengeMethodsRecoveryCode},
		}
		return p, true
	}
	switch {
	case errors.Is(err, auth.ErrInvalidMFAChallenge):
		return errUnauthorized(api.ProblemCodeInvalidMfaChallenge, "The login challenge is invalid, expired or used up; log in again."), true
	case errors.Is(err, auth.ErrMFANotEnabled):
		return newProblem(http.StatusConflict, api.ProblemCodeConflict, "Multi-factor authentication is not on for this account (or the enrolment expired: start it again)."), true
	case errors.Is(err, auth.ErrMFAEnabled):
		return newProblem(http.StatusConflict, api.ProblemCodeConflict, "Multi-factor authentication is already on; turn it off first to enrol another device."), true
	case errors.Is(err, auth.ErrInvalidMFACode):
		// Signed-in operations: the access token is good (403, not 401);
		// VerifyMfaLogin answers 401 itself.
		return newProblem(http.StatusForbidden, api.ProblemCodeInvalidMfaCode, "The code is incorrect or was already used; enter the current code of your authenticator app."), true
	}
	return nil, false
}
