package httpapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"

	"github.com/google/uuid"

	api "github.com/gatehouse/gatehouse/gen/api"
)

// maxUUID starts a newest-first listing: every id sorts below it.
var maxUUID = uuid.UUID{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// Cursors are opaque: the last id of the page and a checksum that binds it to
// the listing and its filters. A cursor edited by hand, or replayed with
// other filters, is refused with 400 instead of silently paging elsewhere.
func encodeCursor(last uuid.UUID, scope string) string {
	b := make([]byte, 0, 24)
	b = append(b, last[:]...)
	b = append(b, cursorSum(last, scope)...)
	return base64.RawURLEncoding.EncodeToString(b)
}

func cursorSum(id uuid.UUID, scope string) []byte {
	h := sha256.New()
	h.Write([]byte("gatehouse cursor v1\x00" + scope + "\x00"))
	h.Write(id[:])
	return h.Sum(nil)[:8]
}

// decodeCursor returns where the page starts: after the cursor's id, or at
// the top without one.
func decodeCursor(c *string, scope string) (uuid.UUID, error) {
	if c == nil || *c == "" {
		return maxUUID, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(*c)
	if err != nil || len(b) != 24 {
		return uuid.Nil, badCursor()
	}
	id, _ := uuid.FromBytes(b[:16])
	if subtle.ConstantTimeCompare(b[16:], cursorSum(id, scope)) != 1 {
		return uuid.Nil, badCursor()
	}
	return id, nil
}

func badCursor() *problem {
	p := newProblem(http.StatusBadRequest, api.ProblemCodeBadRequest, "Some parameters are invalid; see errors for what to fix.")
	p.fields = []api.FieldError{{Field: "cursor", Code: "invalid", Message: "is not a cursor of this listing with these filters; start again without it"}}
	return p
}

// pageLimit is the requested page size (the contract bounds it to 1..100).
func pageLimit(l *int) int {
	if l == nil {
		return 20
	}
	return *l
}

// page trims a limit+1 fetch to limit and returns the next cursor, if any.
func page[T any](rows []T, limit int, id func(T) uuid.UUID, scope string) ([]T, *string) {
	if len(rows) <= limit {
		return rows, nil
	}
	rows = rows[:limit]
	next := encodeCursor(id(rows[limit-1]), scope)
	return rows, &next
}
