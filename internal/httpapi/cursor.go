package httpapi

import (
	"context"
	"encoding/base64"
	"net/http"

	"github.com/google/uuid"

	api "github.com/gatehouse/gatehouse/gen/api"
	"github.com/gatehouse/gatehouse/internal/account"
	"github.com/gatehouse/gatehouse/internal/keyed"
)

// maxUUID starts a newest-first listing: every id sorts below it.
var maxUUID = uuid.UUID{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// cursors are opaque: the last id of the page and a MAC, keyed with the
// server secret, that binds it to the listing and its filters. A cursor
// edited or forged by hand, or replayed with other filters, is refused with
// 400 instead of silently paging elsewhere.
type cursors struct{ key keyed.Key }

func (k cursors) encode(last uuid.UUID, scope string) string {
	b := make([]byte, 0, 24)
	b = append(b, last[:]...)
	b = append(b, k.sum(last, scope)...)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (k cursors) sum(id uuid.UUID, scope string) []byte {
	return k.key.Sum([]byte(scope), id[:])[:8]
}

// decode returns where the page starts: after the cursor's id, or at the
// top without one.
func (k cursors) decode(c *string, scope string) (uuid.UUID, error) {
	if c == nil || *c == "" {
		return maxUUID, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(*c)
	if err != nil || len(b) != 24 {
		return uuid.Nil, badCursor()
	}
	id, _ := uuid.FromBytes(b[:16])
	if !keyed.Equal(b[16:], k.sum(id, scope)) {
		return uuid.Nil, badCursor()
	}
	return id, nil
}

func badCursor() *problem {
	p := newProblem(http.StatusBadRequest, api.ProblemCodeBadRequest, "Some parameters are invalid; see errors for what to fix.")
	p.fields = []api.FieldError{{Field: "cursor", Code: "invalid", Message: "is not a cursor of this listing with these filters; start again without it"}}
	return p
}

// listPage serves one page of a list: it reads the cursor (bound to scope,
// the listing and its filters) and the page size (20 by default; the
// contract bounds it to 1..100), fetches the page and answers its items with
// the list's meta, the next cursor included when more items follow.
func listPage[T any](ctx context.Context, k cursors, cursor *string, limit *int, scope string,
	fetch func(account.PageRequest) (account.Page[T], error), id func(T) uuid.UUID,
) ([]T, api.ListMeta, error) {
	before, err := k.decode(cursor, scope)
	if err != nil {
		return nil, api.ListMeta{}, err
	}
	p := account.PageRequest{Before: before, Limit: 20}
	if limit != nil {
		p.Limit = *limit
	}
	page, err := fetch(p)
	if err != nil {
		return nil, api.ListMeta{}, err
	}
	m := api.ListMeta{RequestId: meta(ctx).RequestId, Limit: p.Limit}
	if page.More && len(page.Items) > 0 {
		next := k.encode(id(page.Items[len(page.Items)-1]), scope)
		m.NextCursor = &next
	}
	return page.Items, m, nil
}
