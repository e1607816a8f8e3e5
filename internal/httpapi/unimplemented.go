package httpapi

import (
	"context"

	api "github.com/gatehouse/gatehouse/gen/api"
)

// Operations of the v1 contract that are not built yet answer 501 with the
// not_implemented problem; each later capability replaces its stubs here.

// ListAuditEvents is not implemented yet.
func (s *Server) ListAuditEvents(context.Context, api.ListAuditEventsRequestObject) (api.ListAuditEventsResponseObject, error) {
	return nil, errNotImplemented
}

// ListRoles is not implemented yet.
func (s *Server) ListRoles(context.Context, api.ListRolesRequestObject) (api.ListRolesResponseObject, error) {
	return nil, errNotImplemented
}

// ListUsers is not implemented yet.
func (s *Server) ListUsers(context.Context, api.ListUsersRequestObject) (api.ListUsersResponseObject, error) {
	return nil, errNotImplemented
}

// CreateUser is not implemented yet.
func (s *Server) CreateUser(context.Context, api.CreateUserRequestObject) (api.CreateUserResponseObject, error) {
	return nil, errNotImplemented
}

// DeleteMe is not implemented yet.
func (s *Server) DeleteMe(context.Context, api.DeleteMeRequestObject) (api.DeleteMeResponseObject, error) {
	return nil, errNotImplemented
}

// UpdateMe is not implemented yet.
func (s *Server) UpdateMe(context.Context, api.UpdateMeRequestObject) (api.UpdateMeResponseObject, error) {
	return nil, errNotImplemented
}

// ListMySessions is not implemented yet.
func (s *Server) ListMySessions(context.Context, api.ListMySessionsRequestObject) (api.ListMySessionsResponseObject, error) {
	return nil, errNotImplemented
}

// RevokeMySession is not implemented yet.
func (s *Server) RevokeMySession(context.Context, api.RevokeMySessionRequestObject) (api.RevokeMySessionResponseObject, error) {
	return nil, errNotImplemented
}

// DeleteUser is not implemented yet.
func (s *Server) DeleteUser(context.Context, api.DeleteUserRequestObject) (api.DeleteUserResponseObject, error) {
	return nil, errNotImplemented
}

// GetUser is not implemented yet.
func (s *Server) GetUser(context.Context, api.GetUserRequestObject) (api.GetUserResponseObject, error) {
	return nil, errNotImplemented
}

// UpdateUser is not implemented yet.
func (s *Server) UpdateUser(context.Context, api.UpdateUserRequestObject) (api.UpdateUserResponseObject, error) {
	return nil, errNotImplemented
}

// RestoreUser is not implemented yet.
func (s *Server) RestoreUser(context.Context, api.RestoreUserRequestObject) (api.RestoreUserResponseObject, error) {
	return nil, errNotImplemented
}

// SetUserRoles is not implemented yet.
func (s *Server) SetUserRoles(context.Context, api.SetUserRolesRequestObject) (api.SetUserRolesResponseObject, error) {
	return nil, errNotImplemented
}

// RevokeUserSessions is not implemented yet.
func (s *Server) RevokeUserSessions(context.Context, api.RevokeUserSessionsRequestObject) (api.RevokeUserSessionsResponseObject, error) {
	return nil, errNotImplemented
}
