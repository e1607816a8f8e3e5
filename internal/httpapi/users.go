package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	openapi_types "github.com/oapi-codegen/runtime/types"

	api "github.com/gatehouse/gatehouse/gen/api"
	"github.com/gatehouse/gatehouse/internal/account"
	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/user"
)

// Users is what the HTTP layer asks of account management.
type Users interface {
	Me(ctx context.Context, p account.Principal) (account.Profile, auth.MFAStatus, error)
	UpdateMe(ctx context.Context, p account.Principal, name, email, currentPassword *string, c account.Client) (account.Profile, error)
	DeleteMe(ctx context.Context, p account.Principal, password string, c account.Client) error
	MySessions(ctx context.Context, p account.Principal, pr account.PageRequest) (account.Page[user.Session], error)
	RevokeMySession(ctx context.Context, p account.Principal, sid uuid.UUID, c account.Client) error
	List(ctx context.Context, f user.Filter, p account.PageRequest) (account.Page[account.Profile], error)
	Get(ctx context.Context, id uuid.UUID) (account.Profile, error)
	Create(ctx context.Context, p account.Principal, n user.NewAccount, c account.Client) (account.Profile, error)
	Update(ctx context.Context, p account.Principal, id uuid.UUID, ch user.Changes, c account.Client) (account.Profile, error)
	Delete(ctx context.Context, p account.Principal, id uuid.UUID, c account.Client) error
	Restore(ctx context.Context, p account.Principal, id uuid.UUID, c account.Client) (account.Profile, error)
	SetRoles(ctx context.Context, p account.Principal, id uuid.UUID, roles []string, c account.Client) (account.Profile, error)
	RevokeSessions(ctx context.Context, p account.Principal, id uuid.UUID, c account.Client) error
	Roles(ctx context.Context) ([]user.Role, error)
	Audit(ctx context.Context, f user.AuditFilter, p account.PageRequest) (account.Page[user.AuditEvent], error)
}

// selfGone answers a caller whose own account no longer exists (deleted
// between its token's check and this query) like an invalid token.
func selfGone(err error) error {
	if errors.Is(err, account.ErrNotFound) {
		return auth.ErrInvalidToken
	}
	return err
}

func emailPtr(e *openapi_types.Email) *string {
	if e == nil {
		return nil
	}
	s := string(*e)
	return &s
}

// GetMe returns the caller's account.
func (s *Server) GetMe(ctx context.Context, _ api.GetMeRequestObject) (api.GetMeResponseObject, error) {
	u, st, err := s.deps.Users.Me(ctx, principal(ctx))
	if err != nil {
		return nil, selfGone(err)
	}
	out := toUser(u)
	out.Mfa = &api.MFAStatus{Enabled: st.Enabled, RecoveryCodesRemaining: st.RecoveryCodesRemaining}
	return api.GetMe200JSONResponse{Body: api.UserResponse{Data: out, Meta: meta(ctx)}, Headers: api.GetMe200ResponseHeaders{CacheControl: noStore}}, nil
}

// UpdateMe changes the caller's profile.
func (s *Server) UpdateMe(ctx context.Context, r api.UpdateMeRequestObject) (api.UpdateMeResponseObject, error) {
	if r.Body.Email != nil {
		// Each request may mail a confirmation to any address: bounded per
		// account and per address asked for.
		rl := s.deps.RateLimits
		if err := s.limit(ctx, limitCheck{rl.EmailChangeAccount, principal(ctx).UserID.String()},
			s.byAccount(rl.EmailChangeAddress, mailbox(string(*r.Body.Email)))); err != nil {
			return nil, err
		}
	}
	u, err := s.deps.Users.UpdateMe(ctx, principal(ctx), r.Body.Name, emailPtr(r.Body.Email), r.Body.CurrentPassword, client(ctx))
	if err != nil {
		return nil, selfGone(err)
	}
	return api.UpdateMe200JSONResponse{Body: api.UserResponse{Data: toUser(u), Meta: meta(ctx)}, Headers: api.UpdateMe200ResponseHeaders{CacheControl: noStore}}, nil
}

// DeleteMe soft-deletes the caller's account.
func (s *Server) DeleteMe(ctx context.Context, r api.DeleteMeRequestObject) (api.DeleteMeResponseObject, error) {
	if err := s.deps.Users.DeleteMe(ctx, principal(ctx), r.Body.Password, client(ctx)); err != nil {
		return nil, selfGone(err)
	}
	return api.DeleteMe204Response{}, nil
}

// ListMySessions lists the caller's live sessions, the current one marked.
func (s *Server) ListMySessions(ctx context.Context, r api.ListMySessionsRequestObject) (api.ListMySessionsResponseObject, error) {
	p := principal(ctx)
	scope := "sessions:" + p.UserID.String()
	rows, m, err := listPage(ctx, s.cursors, r.Params.Cursor, r.Params.Limit, scope, func(pr account.PageRequest) (account.Page[user.Session], error) {
		return s.deps.Users.MySessions(ctx, p, pr)
	}, func(x user.Session) uuid.UUID { return x.ID })
	if err != nil {
		return nil, err
	}
	out := make([]api.Session, 0, len(rows))
	for _, x := range rows {
		ip := ""
		if x.IP.IsValid() {
			ip = x.IP.String()
		}
		out = append(out, api.Session{
			Id: x.ID, UserAgent: x.UserAgent, Ip: ip, CreatedAt: x.CreatedAt, LastUsedAt: x.LastUsedAt,
			IdleExpiresAt: x.IdleExpiresAt, ExpiresAt: x.ExpiresAt, Current: x.ID == p.SessionID,
		})
	}
	return api.ListMySessions200JSONResponse{Body: api.SessionListResponse{Data: out, Meta: m}, Headers: api.ListMySessions200ResponseHeaders{CacheControl: noStore}}, nil
}

// RevokeMySession ends one of the caller's sessions.
func (s *Server) RevokeMySession(ctx context.Context, r api.RevokeMySessionRequestObject) (api.RevokeMySessionResponseObject, error) {
	if err := s.deps.Users.RevokeMySession(ctx, principal(ctx), r.Id, client(ctx)); err != nil {
		return nil, err
	}
	return api.RevokeMySession204Response{}, nil
}

func timeScope(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func strScope(s *string) string {
	if s == nil {
		return "\x00"
	}
	return *s
}

// ListUsers lists users, newest first.
func (s *Server) ListUsers(ctx context.Context, r api.ListUsersRequestObject) (api.ListUsersResponseObject, error) {
	q := r.Params
	f := user.Filter{Role: q.Role, CreatedAfter: q.CreatedAfter, CreatedBefore: q.CreatedBefore, ExternalID: q.ExternalId}
	if q.Email != nil {
		f.EmailPrefix = account.NormalizeEmail(*q.Email)
	}
	var status *string
	if q.Status != nil {
		st := user.Status(*q.Status)
		f.Status = &st
		status = (*string)(q.Status)
	}
	scope := fmt.Sprintf("users\x00%s\x00%s\x00%s\x00%s\x00%s\x00%s", f.EmailPrefix, strScope(f.Role), strScope(status), timeScope(f.CreatedAfter), timeScope(f.CreatedBefore), strScope(f.ExternalID))
	rows, m, err := listPage(ctx, s.cursors, q.Cursor, q.Limit, scope, func(p account.PageRequest) (account.Page[account.Profile], error) {
		return s.deps.Users.List(ctx, f, p)
	}, func(u account.Profile) uuid.UUID { return u.ID })
	if err != nil {
		return nil, err
	}
	out := make([]api.User, 0, len(rows))
	for _, u := range rows {
		out = append(out, toAdminUser(u))
	}
	return api.ListUsers200JSONResponse{Body: api.UserListResponse{Data: out, Meta: m}, Headers: api.ListUsers200ResponseHeaders{CacheControl: noStore}}, nil
}

// CreateUser creates an account.
func (s *Server) CreateUser(ctx context.Context, r api.CreateUserRequestObject) (api.CreateUserResponseObject, error) {
	n := user.NewAccount{Email: string(r.Body.Email), Password: r.Body.Password, Name: r.Body.Name}
	if r.Body.Roles != nil {
		n.Roles = *r.Body.Roles
	}
	if r.Body.EmailVerified != nil {
		n.Verified = *r.Body.EmailVerified
	}
	u, err := s.deps.Users.Create(ctx, principal(ctx), n, client(ctx))
	if err != nil {
		return nil, err
	}
	loc := "/api/v1/users/" + u.ID.String()
	return api.CreateUser201JSONResponse{Body: api.UserResponse{Data: toAdminUser(u), Meta: meta(ctx)}, Headers: api.CreateUser201ResponseHeaders{Location: &loc, CacheControl: noStore}}, nil
}

// GetUser reads any user, deleted ones included.
func (s *Server) GetUser(ctx context.Context, r api.GetUserRequestObject) (api.GetUserResponseObject, error) {
	u, err := s.deps.Users.Get(ctx, r.Id)
	if err != nil {
		return nil, err
	}
	return api.GetUser200JSONResponse{Body: api.UserResponse{Data: toAdminUser(u), Meta: meta(ctx)}, Headers: api.GetUser200ResponseHeaders{CacheControl: noStore}}, nil
}

// UpdateUser applies an administrator's changes.
func (s *Server) UpdateUser(ctx context.Context, r api.UpdateUserRequestObject) (api.UpdateUserResponseObject, error) {
	ch := user.Changes{Name: r.Body.Name, Email: emailPtr(r.Body.Email), EmailVerified: r.Body.EmailVerified, Disabled: r.Body.Disabled}
	u, err := s.deps.Users.Update(ctx, principal(ctx), r.Id, ch, client(ctx))
	if err != nil {
		return nil, err
	}
	return api.UpdateUser200JSONResponse{Body: api.UserResponse{Data: toAdminUser(u), Meta: meta(ctx)}, Headers: api.UpdateUser200ResponseHeaders{CacheControl: noStore}}, nil
}

// DeleteUser soft-deletes a user.
func (s *Server) DeleteUser(ctx context.Context, r api.DeleteUserRequestObject) (api.DeleteUserResponseObject, error) {
	if err := s.deps.Users.Delete(ctx, principal(ctx), r.Id, client(ctx)); err != nil {
		return nil, err
	}
	return api.DeleteUser204Response{}, nil
}

// RestoreUser undoes a soft delete.
func (s *Server) RestoreUser(ctx context.Context, r api.RestoreUserRequestObject) (api.RestoreUserResponseObject, error) {
	u, err := s.deps.Users.Restore(ctx, principal(ctx), r.Id, client(ctx))
	if err != nil {
		return nil, err
	}
	return api.RestoreUser200JSONResponse{Body: api.UserResponse{Data: toAdminUser(u), Meta: meta(ctx)}, Headers: api.RestoreUser200ResponseHeaders{CacheControl: noStore}}, nil
}

// SetUserRoles replaces a user's roles.
func (s *Server) SetUserRoles(ctx context.Context, r api.SetUserRolesRequestObject) (api.SetUserRolesResponseObject, error) {
	u, err := s.deps.Users.SetRoles(ctx, principal(ctx), r.Id, r.Body.Roles, client(ctx))
	if err != nil {
		return nil, err
	}
	return api.SetUserRoles200JSONResponse{Body: api.UserResponse{Data: toAdminUser(u), Meta: meta(ctx)}, Headers: api.SetUserRoles200ResponseHeaders{CacheControl: noStore}}, nil
}

// RevokeUserSessions ends every session of a user.
func (s *Server) RevokeUserSessions(ctx context.Context, r api.RevokeUserSessionsRequestObject) (api.RevokeUserSessionsResponseObject, error) {
	if err := s.deps.Users.RevokeSessions(ctx, principal(ctx), r.Id, client(ctx)); err != nil {
		return nil, err
	}
	return api.RevokeUserSessions204Response{}, nil
}

// ListRoles lists the roles and their permissions.
func (s *Server) ListRoles(ctx context.Context, _ api.ListRolesRequestObject) (api.ListRolesResponseObject, error) {
	roles, err := s.deps.Users.Roles(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]api.Role, 0, len(roles))
	for _, r := range roles {
		perms := make([]api.Permission, 0, len(r.Permissions))
		for _, p := range r.Permissions {
			perms = append(perms, api.Permission(p))
		}
		out = append(out, api.Role{Name: r.Name, Description: r.Description, Permissions: perms})
	}
	return api.ListRoles200JSONResponse{Body: api.RoleListResponse{Data: out, Meta: meta(ctx)}, Headers: api.ListRoles200ResponseHeaders{CacheControl: noStore}}, nil
}

// ListAuditEvents lists security events, newest first.
func (s *Server) ListAuditEvents(ctx context.Context, r api.ListAuditEventsRequestObject) (api.ListAuditEventsResponseObject, error) {
	q := r.Params
	f := user.AuditFilter{ActorID: (*uuid.UUID)(q.ActorId), SubjectID: (*uuid.UUID)(q.SubjectId), Action: (*account.Action)(q.Action), Since: q.Since, Until: q.Until}
	idScope := func(id *uuid.UUID) string {
		if id == nil {
			return ""
		}
		return id.String()
	}
	scope := fmt.Sprintf("audit\x00%s\x00%s\x00%s\x00%s\x00%s", idScope(f.ActorID), idScope(f.SubjectID), strScope((*string)(f.Action)), timeScope(f.Since), timeScope(f.Until))
	rows, m, err := listPage(ctx, s.cursors, q.Cursor, q.Limit, scope, func(p account.PageRequest) (account.Page[user.AuditEvent], error) {
		return s.deps.Users.Audit(ctx, f, p)
	}, func(e user.AuditEvent) uuid.UUID { return e.ID })
	if err != nil {
		return nil, err
	}
	out := make([]api.AuditEvent, 0, len(rows))
	for _, e := range rows {
		a := api.AuditEvent{
			Id: e.ID, Action: api.AuditAction(e.Action), ActorId: e.ActorID, SubjectId: e.SubjectID, UserAgent: e.UserAgent,
			RequestId: e.RequestID, Details: s.auditDetails(ctx, e), CreatedAt: e.CreatedAt,
		}
		if e.IP != nil {
			ip := e.IP.String()
			a.Ip = &ip
		}
		out = append(out, a)
	}
	return api.ListAuditEvents200JSONResponse{Body: api.AuditEventListResponse{Data: out, Meta: m}, Headers: api.ListAuditEvents200ResponseHeaders{CacheControl: noStore}}, nil
}

// mailbox is the address without a "+tag" in its local part: most providers
// deliver user+1@ and user+2@ to one mailbox, which must share one limit.
func mailbox(email string) string {
	local, domain, ok := strings.Cut(email, "@")
	if !ok {
		return email
	}
	local, _, _ = strings.Cut(local, "+")
	return local + "@" + domain
}

// auditDetails types an event's details as the contract lists them. A key
// the contract does not list is left out of the answer and logged, so that
// the contract is brought up to date.
func (s *Server) auditDetails(ctx context.Context, e user.AuditEvent) api.AuditDetails {
	var d api.AuditDetails
	if len(e.Details) == 0 {
		return d
	}
	b, err := json.Marshal(e.Details)
	if err == nil {
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err = dec.Decode(&d); err == nil {
			return d
		}
	}
	s.log.WarnContext(ctx, "audit details the contract does not describe", "action", e.Action, "error", err)
	d = api.AuditDetails{}
	_ = json.Unmarshal(b, &d) // what does fit
	return d
}
