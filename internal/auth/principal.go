// Package auth holds the rules of authentication: login, access tokens,
// refresh-token rotation, logout and revocation, and the errors that tell why
// a caller is refused. The model it works on is package account's.
package auth

import "errors"

// ErrInvalidToken means the access token is missing, malformed, forged,
// expired or revoked. Callers get one answer for all of these.
var ErrInvalidToken = errors.New("invalid access token")
