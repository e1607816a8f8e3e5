package httpapi

import (
	"context"

	"github.com/google/uuid"
	openapi_types "github.com/oapi-codegen/runtime/types"

	"github.com/gatehouse/gatehouse/gen/api"
	"github.com/gatehouse/gatehouse/internal/userimport"
)

// Importer imports accounts from another system (importUsers).
type Importer interface {
	Items(ctx context.Context, lines []userimport.Line, o userimport.Options) ([]userimport.Outcome, userimport.Counts, error)
}

// ImportUsers imports up to 1000 accounts, each checked and reported on its
// own, as `gatehouse import users` does.
func (s *Server) ImportUsers(ctx context.Context, r api.ImportUsersRequestObject) (api.ImportUsersResponseObject, error) {
	b := r.Body
	p := principal(ctx)
	o := userimport.Options{
		Update: isSet(b.Update), Invite: isSet(b.Invite), CreateRoles: isSet(b.CreateRoles), DryRun: isSet(b.DryRun),
		Actor: &p, Client: client(ctx), Source: "api",
	}
	lines := make([]userimport.Line, 0, len(b.Users))
	for _, u := range b.Users {
		l := userimport.Line{
			ID: u.Id, Email: u.Email, Name: u.Name, EmailVerified: isSet(u.EmailVerified), CreatedAt: u.CreatedAt,
			Disabled: isSet(u.Disabled), Deleted: isSet(u.Deleted), PasswordHash: u.PasswordHash,
		}
		if u.Roles != nil {
			l.Roles = *u.Roles
		}
		if u.ExternalId != nil {
			x := userimport.ExternalID(*u.ExternalId)
			l.ExternalID = &x
		}
		lines = append(lines, l)
	}
	outcomes, c, err := s.deps.Importer.Items(ctx, lines, o)
	if err != nil {
		return nil, err
	}
	rep := api.ImportReport{
		DryRun: o.DryRun, Created: c.Created, Updated: c.Updated, Unchanged: c.Unchanged, Skipped: c.Skipped, Refused: c.Refused,
		Results: make([]api.ImportResult, 0, len(outcomes)),
	}
	for _, oc := range outcomes {
		res := api.ImportResult{Index: oc.Line, Result: api.ImportResultResult(oc.Result)}
		if oc.Reason != "" {
			res.Reason = &oc.Reason
		}
		if oc.Result != userimport.Refused && oc.ID != uuid.Nil {
			id := openapi_types.UUID(oc.ID)
			res.Id = &id
		}
		rep.Results = append(rep.Results, res)
	}
	return api.ImportUsers200JSONResponse{Body: api.ImportReportResponse{Data: rep, Meta: meta(ctx)}, Headers: api.ImportUsers200ResponseHeaders{CacheControl: noStore}}, nil
}

// isSet is an optional flag's value (false when absent).
func isSet(b *bool) bool { return b != nil && *b }
