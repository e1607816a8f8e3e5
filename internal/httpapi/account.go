package httpapi

import (
	"context"
	"errors"

	api "github.com/gatehouse/gatehouse/gen/api"
	"github.com/gatehouse/gatehouse/internal/account"
	"github.com/gatehouse/gatehouse/internal/auth"
)

// Credentials is what the HTTP layer asks of the service for password and
// email lifecycle.
type Credentials interface {
	ChangePassword(ctx context.Context, p account.Principal, current, next string, c account.Client) (auth.Tokens, error)
	ForgotPassword(ctx context.Context, email string, c account.Client) error
	ResetPassword(ctx context.Context, token, password string, c account.Client) error
	VerifyEmail(ctx context.Context, token string, c account.Client) error
	ResendVerification(ctx context.Context, email string, c account.Client) error
}

// ChangePassword replaces the caller's password and answers with the token
// pair that continues the caller's session.
func (s *Server) ChangePassword(ctx context.Context, r api.ChangePasswordRequestObject) (api.ChangePasswordResponseObject, error) {
	t, err := s.deps.Credentials.ChangePassword(ctx, principal(ctx), r.Body.CurrentPassword, r.Body.NewPassword, client(ctx))
	var rejected *auth.PasswordRejectedError
	if errors.As(err, &rejected) {
		rejected.Field = "new_password" // the field this request names it by
	}
	if err != nil {
		return nil, selfGone(err)
	}
	return api.ChangePassword200JSONResponse{Body: tokenResponse(ctx, t), Headers: api.ChangePassword200ResponseHeaders{CacheControl: ptr("no-store"), Pragma: ptr("no-cache")}}, nil
}

// ForgotPassword mails a reset link when the account exists; the answer and
// the rate limits are the same either way.
func (s *Server) ForgotPassword(ctx context.Context, r api.ForgotPasswordRequestObject) (api.ForgotPasswordResponseObject, error) {
	email := string(r.Body.Email)
	if err := s.limit(ctx, s.byIP(ctx, s.deps.RateLimits.ForgotIP), s.byAccount(s.deps.RateLimits.ForgotAccount, email)); err != nil {
		return nil, err
	}
	if err := s.deps.Credentials.ForgotPassword(ctx, email, client(ctx)); err != nil {
		return nil, err
	}
	return api.ForgotPassword202JSONResponse{Body: api.AcceptedResponse{
		Data: api.Accepted{Message: "If an account uses this address, a password reset link is on its way."},
		Meta: meta(ctx),
	}}, nil
}

// ResetPassword sets a new password with the token from the mail.
func (s *Server) ResetPassword(ctx context.Context, r api.ResetPasswordRequestObject) (api.ResetPasswordResponseObject, error) {
	if err := s.deps.Credentials.ResetPassword(ctx, r.Body.Token, r.Body.Password, client(ctx)); err != nil {
		return nil, err
	}
	return api.ResetPassword204Response{}, nil
}

// VerifyEmail confirms an address with the token from the mail.
func (s *Server) VerifyEmail(ctx context.Context, r api.VerifyEmailRequestObject) (api.VerifyEmailResponseObject, error) {
	if err := s.deps.Credentials.VerifyEmail(ctx, r.Body.Token, client(ctx)); err != nil {
		return nil, err
	}
	return api.VerifyEmail204Response{}, nil
}

// ResendVerification mails a new verification link to an unverified account.
func (s *Server) ResendVerification(ctx context.Context, r api.ResendVerificationRequestObject) (api.ResendVerificationResponseObject, error) {
	email := string(r.Body.Email)
	if err := s.limit(ctx, s.byIP(ctx, s.deps.RateLimits.ResendIP), s.byAccount(s.deps.RateLimits.ResendAccount, email)); err != nil {
		return nil, err
	}
	if err := s.deps.Credentials.ResendVerification(ctx, email, client(ctx)); err != nil {
		return nil, err
	}
	return api.ResendVerification202JSONResponse{Body: api.AcceptedResponse{
		Data: api.Accepted{Message: "If an unverified account uses this address, a new verification link is on its way."},
		Meta: meta(ctx),
	}}, nil
}
