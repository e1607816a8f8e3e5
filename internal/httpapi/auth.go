package httpapi

import (
	"context"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"
	openapi_types "github.com/oapi-codegen/runtime/types"

	api "github.com/gatehouse/gatehouse/gen/api"
	"github.com/gatehouse/gatehouse/internal/account"
	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/ratelimit"
	"github.com/gatehouse/gatehouse/internal/requestid"
	"github.com/gatehouse/gatehouse/internal/token"
)

// Accounts is what the HTTP layer asks of the authentication service.
type Accounts interface {
	Register(ctx context.Context, email, password string, name *string, c account.Client) error
	Login(ctx context.Context, r auth.LoginRequest, c account.Client) (auth.Tokens, error)
	Refresh(ctx context.Context, refreshToken string, c account.Client) (auth.Tokens, error)
	Logout(ctx context.Context, p account.Principal, c account.Client) error
	LogoutAll(ctx context.Context, p account.Principal, c account.Client) error
	Audit(ctx context.Context, e account.Event)
	// AccountKey and LoginKey name an account's rate-limit counters.
	AccountKey(email string) string
	LoginKey(email, deviceToken string) string
}

// withClient records where the request comes from (address as trusted by
// the IP extractor, user agent, request id) for sessions and audit events.
func withClient(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		ip, _ := netip.ParseAddr(c.RealIP())
		ua := strings.ToValidUTF8(strings.ReplaceAll(c.Request().UserAgent(), "\x00", ""), "")
		ctx := account.WithClient(c.Request().Context(), account.Client{IP: ip.Unmap(), UserAgent: ua, RequestID: requestid.From(c.Request().Context())})
		// Handlers return response objects, but the rate limiter, which runs
		// inside them, has headers to add to whatever they answer.
		ctx = context.WithValue(ctx, responseHeaderKey{}, c.Response().Header())
		c.SetRequest(c.Request().WithContext(ctx))
		return next(c)
	}
}

func client(ctx context.Context) account.Client { return account.ClientFrom(ctx, account.Client{}) }

// responseHeaderKey holds the headers of the response to the request.
type responseHeaderKey struct{}

// setResponseHeader adds a header to the answer, whatever it turns out to be.
func setResponseHeader(ctx context.Context, name, value string) {
	if h, ok := ctx.Value(responseHeaderKey{}).(http.Header); ok {
		h.Set(name, value)
	}
}

func principal(ctx context.Context) account.Principal {
	p, _ := account.PrincipalFrom(ctx) // the contract middleware put it there
	return p
}

func meta(ctx context.Context) api.Meta { return api.Meta{RequestId: requestid.From(ctx)} }

// limit counts the request against each limit and refuses it with a 429
// problem carrying the standard headers when one is exhausted. When Redis
// cannot count, the request goes through: availability over throttling; the
// bounded hasher and the per-account lockout still hold.
func (s *Server) limit(ctx context.Context, checks ...limitCheck) error {
	// The answer, success or not, tells the client the quota it has left: the
	// RateLimit fields of the tightest limit that counted the request.
	tightest, counted := ratelimit.Decision{}, limitCheck{}
	defer func() {
		if counted.limit.Name != "" {
			setResponseHeader(ctx, "RateLimit-Policy", counted.limit.PolicyHeader())
			setResponseHeader(ctx, "RateLimit", tightest.Header(counted.limit))
		}
	}()
	for _, lc := range checks {
		d, err := s.deps.Limiter.Allow(ctx, lc.limit, lc.key)
		if err != nil {
			s.log.WarnContext(ctx, "rate limit not enforced", "limit", lc.limit.Name, "error", err)
			continue
		}
		if !d.Allowed {
			s.metrics.RateLimitBlocked(lc.limit.Name)
			// One audit event per limit key and window: an anonymous flood must
			// not turn into as many rows.
			if first, err := s.deps.Limiter.First(ctx, "audited:"+lc.limit.Name+":"+lc.key, lc.limit.Period); first || err != nil {
				s.deps.Accounts.Audit(ctx, account.Event{Action: account.ActionRateLimitBlocked, Client: client(ctx), Details: map[string]any{"limit": lc.limit.Name}})
			}
			p := newProblem(http.StatusTooManyRequests, api.ProblemCodeRateLimited,
				"Too many requests; retry after "+strconv.Itoa(d.RetryAfterSeconds())+" seconds.")
			p.headers = map[string]string{
				"Retry-After":      strconv.Itoa(d.RetryAfterSeconds()),
				"RateLimit-Policy": lc.limit.PolicyHeader(),
				"RateLimit":        d.Header(lc.limit),
			}
			return p
		}
		if counted.limit.Name == "" || d.Remaining < tightest.Remaining {
			tightest, counted = d, lc
		}
	}
	return nil
}

type limitCheck struct {
	limit ratelimit.Limit
	key   string
}

func (s *Server) byIP(ctx context.Context, l ratelimit.Limit) limitCheck {
	return limitCheck{l, ratelimit.ClientKey(client(ctx).IP)}
}

func (s *Server) byAccount(l ratelimit.Limit, email string) limitCheck {
	return limitCheck{l, s.deps.Accounts.AccountKey(email)}
}

// Register creates an account; the answer is the same for a taken email.
func (s *Server) Register(ctx context.Context, r api.RegisterRequestObject) (api.RegisterResponseObject, error) {
	email := string(r.Body.Email)
	if err := s.limit(ctx, s.byIP(ctx, s.deps.RateLimits.RegisterIP), s.byAccount(s.deps.RateLimits.RegisterAccount, email)); err != nil {
		return nil, err
	}
	if err := s.deps.Accounts.Register(ctx, email, r.Body.Password, r.Body.Name, client(ctx)); err != nil {
		return nil, err
	}
	return api.Register202JSONResponse{Body: api.AcceptedResponse{
		Data: api.Accepted{Message: "If the address can be registered, the account is created and a verification email is on its way."},
		Meta: meta(ctx),
	}}, nil
}

// Login checks the password and returns a token pair.
func (s *Server) Login(ctx context.Context, r api.LoginRequestObject) (api.LoginResponseObject, error) {
	email, device := string(r.Body.Email), deref(r.Body.DeviceToken)
	// Known devices are counted apart from everyone else: a stranger
	// hammering the account cannot use up its owner's quota.
	if err := s.limit(ctx, s.byIP(ctx, s.deps.RateLimits.LoginIP),
		limitCheck{s.deps.RateLimits.LoginAccount, s.deps.Accounts.LoginKey(email, device)}); err != nil {
		s.metrics.LoginOutcome(loginOutcome(err))
		return nil, err
	}
	t, err := s.deps.Accounts.Login(ctx, auth.LoginRequest{Email: email, Password: r.Body.Password, DeviceToken: device}, client(ctx))
	s.metrics.LoginOutcome(loginOutcome(err))
	if err != nil {
		return nil, err
	}
	return api.Login200JSONResponse{Body: tokenResponse(ctx, t), Headers: api.Login200ResponseHeaders{CacheControl: ptr("no-store"), Pragma: ptr("no-cache")}}, nil
}

// RefreshTokens rotates a refresh token.
func (s *Server) RefreshTokens(ctx context.Context, r api.RefreshTokensRequestObject) (api.RefreshTokensResponseObject, error) {
	if err := s.limit(ctx, s.byIP(ctx, s.deps.RateLimits.RefreshIP)); err != nil {
		return nil, err
	}
	t, err := s.deps.Accounts.Refresh(ctx, r.Body.RefreshToken, client(ctx))
	if err != nil {
		return nil, err
	}
	return api.RefreshTokens200JSONResponse{Body: tokenResponse(ctx, t), Headers: api.RefreshTokens200ResponseHeaders{CacheControl: ptr("no-store"), Pragma: ptr("no-cache")}}, nil
}

// Logout revokes the caller's session.
func (s *Server) Logout(ctx context.Context, _ api.LogoutRequestObject) (api.LogoutResponseObject, error) {
	if err := s.deps.Accounts.Logout(ctx, principal(ctx), client(ctx)); err != nil {
		return nil, err
	}
	return api.Logout204Response{}, nil
}

// LogoutAll revokes every session of the caller.
func (s *Server) LogoutAll(ctx context.Context, _ api.LogoutAllRequestObject) (api.LogoutAllResponseObject, error) {
	if err := s.deps.Accounts.LogoutAll(ctx, principal(ctx), client(ctx)); err != nil {
		return nil, selfGone(err)
	}
	return api.LogoutAll204Response{}, nil
}

// GetJwks publishes the keys that verify access tokens.
func (s *Server) GetJwks(context.Context, api.GetJwksRequestObject) (api.GetJwksResponseObject, error) {
	keys := make([]api.JWK, 0, len(s.deps.SigningKeys))
	for _, k := range s.deps.SigningKeys {
		keys = append(keys, toJWK(k))
	}
	return api.GetJwks200JSONResponse{Body: api.JWKS{Keys: keys}}, nil
}

func toJWK(k token.JWK) api.JWK {
	return api.JWK{Kty: api.JWKKty(k.Kty), Crv: api.JWKCrv(k.Crv), X: k.X, Kid: k.Kid, Use: api.JWKUse(k.Use), Alg: api.JWKAlg(k.Alg)}
}

func tokenResponse(ctx context.Context, t auth.Tokens) api.TokenResponse {
	var enrol *bool
	if t.MFAEnrolmentRequired {
		enrol = ptr(true)
	}
	return api.TokenResponse{
		Data: api.Tokens{
			AccessToken: t.Access, RefreshToken: t.Refresh, TokenType: api.Bearer,
			ExpiresIn: int(t.AccessExpiresIn.Seconds()), RefreshExpiresIn: int(t.RefreshExpiresIn.Seconds()),
			DeviceToken: nonEmpty(t.Device), MfaEnrolmentRequired: enrol,
		},
		Meta: meta(ctx),
	}
}

func toUser(u account.Profile) api.User {
	status := api.UserStatusActive
	switch {
	case u.DeletedAt != nil:
		status = api.UserStatusDeleted
	case u.DisabledAt != nil:
		status = api.UserStatusDisabled
	}
	roles := u.Roles
	if roles == nil {
		roles = []string{}
	}
	return api.User{
		Id: openapi_types.UUID(u.ID), Email: openapi_types.Email(u.Email), Name: u.Name,
		EmailVerified: u.EmailVerifiedAt != nil, EmailVerifiedAt: u.EmailVerifiedAt, Status: status, Roles: roles,
		CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt, DisabledAt: u.DisabledAt, DeletedAt: u.DeletedAt,
	}
}

// toAdminUser is a user as administrators see it: with the id it had in
// the system it was imported from.
func toAdminUser(u account.Profile) api.User {
	out := toUser(u)
	out.ExternalId = u.ExternalID
	return out
}

func ptr[T any](v T) *T { return &v }

// noStore is the Cache-Control of every response that holds account data.
const noStore = "no-store"

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
