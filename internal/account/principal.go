package account

import (
	"context"
	"slices"

	"github.com/google/uuid"
)

// Principal is the authenticated caller of a request.
type Principal struct {
	UserID      uuid.UUID
	SessionID   uuid.UUID
	Permissions []string
	// MFA: the session was authenticated with a second factor (aal2).
	MFA bool
	// MFAEnrolled: the account has multi-factor authentication on.
	MFAEnrolled bool
	// MFAPermissions are permissions the user's roles grant only in a
	// multi-factor session: not in Permissions while MFA is false.
	MFAPermissions []string
}

// WithheldForMFA reports whether every permission of perms that p lacks
// would be held in a multi-factor session (and at least one is lacking).
func (p Principal) WithheldForMFA(perms ...string) bool {
	lacking := false
	for _, want := range perms {
		if slices.Contains(p.Permissions, want) {
			continue
		}
		if !slices.Contains(p.MFAPermissions, want) {
			return false
		}
		lacking = true
	}
	return lacking
}

// Has reports whether the principal holds every permission in perms.
func (p Principal) Has(perms ...string) bool {
	for _, want := range perms {
		if !slices.Contains(p.Permissions, want) {
			return false
		}
	}
	return true
}

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal of an authenticated request.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

type clientKey struct{}

// WithClient returns ctx carrying the client of the request.
func WithClient(ctx context.Context, c Client) context.Context {
	return context.WithValue(ctx, clientKey{}, c)
}

// ClientFrom returns the client of the request, or def.
func ClientFrom(ctx context.Context, def Client) Client {
	if c, ok := ctx.Value(clientKey{}).(Client); ok {
		return c
	}
	return def
}
