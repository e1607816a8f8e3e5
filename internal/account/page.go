package account

import "github.com/google/uuid"

// PageRequest asks for one page of a list ordered by id, newest first (ids
// are time-ordered): at most Limit items older than Before (uuid.Max for the
// first page).
type PageRequest struct {
	Before uuid.UUID
	Limit  int
}

// Page is one page of a list, and whether more items follow it.
type Page[T any] struct {
	Items []T
	More  bool
}
