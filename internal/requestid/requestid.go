// Package requestid carries the id of the request being served through a
// context, so that log lines, problems and audit events can name it.
package requestid

import (
	"context"
	"regexp"

	"github.com/gatehouse/gatehouse/internal/account"
)

// Header is the HTTP header that carries the id both ways.
const Header = "X-Request-ID"

type key struct{}

// wellFormed bounds what a client may choose as its request id: it ends up in
// logs and responses, so no spaces, quotes or control characters, and short.
var wellFormed = regexp.MustCompile(`^[A-Za-z0-9._:\-]{1,128}$`)

// FromHeader returns the client's id when it is well formed, or a new one.
func FromHeader(v string) string {
	if wellFormed.MatchString(v) {
		return v
	}
	return New()
}

// New returns a fresh, time-ordered id.
func New() string { return account.NewID().String() }

// With returns ctx carrying id.
func With(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, key{}, id)
}

// From returns the request id carried by ctx, or "".
func From(ctx context.Context) string {
	id, _ := ctx.Value(key{}).(string)
	return id
}
