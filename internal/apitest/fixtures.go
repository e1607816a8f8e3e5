package apitest

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"

	openapi_types "github.com/oapi-codegen/runtime/types"

	"github.com/gatehouse/gatehouse/gen/client"
)

// User is an account a test registered and logged in through the API.
type User struct {
	Email    string
	Password string
	Tokens   client.Tokens
	// Client sends the user's access token.
	Client *client.ClientWithResponses
}

var userSeq atomic.Int64

// NewEmail returns an address no other test uses.
func NewEmail(prefix string) string {
	return fmt.Sprintf("%s-%d@example.com", prefix, userSeq.Add(1))
}

// Password is a password every policy accepts.
const Password = "correct horse battery staple"

// Register registers email through the API and fails the test unless the
// answer is 202.
func (s *Server) Register(email, password string) {
	s.t.Helper()
	s.Secret("raw email", strings.ToLower(email))
	s.Secret("password", password)
	res, err := s.Client.RegisterWithResponse(context.Background(), client.RegisterJSONRequestBody{Email: openapi_types.Email(email), Password: password})
	if err != nil {
		s.t.Fatal(err)
	}
	if res.StatusCode() != http.StatusAccepted {
		s.t.Fatalf("register %s: %d %s", email, res.StatusCode(), res.Body)
	}
}

// Login logs in through the API and fails the test unless it succeeds.
func (s *Server) Login(email, password string) client.Tokens {
	s.t.Helper()
	res, err := s.Client.LoginWithResponse(context.Background(), client.LoginJSONRequestBody{Email: openapi_types.Email(email), Password: password})
	if err != nil {
		s.t.Fatal(err)
	}
	if res.JSON200 == nil {
		s.t.Fatalf("login %s: %d %s", email, res.StatusCode(), res.Body)
	}
	s.Secret("access token", res.JSON200.Data.AccessToken)
	s.Secret("refresh token", res.JSON200.Data.RefreshToken)
	return res.JSON200.Data
}

// NewUser registers and logs in a fresh user, for real.
func (s *Server) NewUser() *User {
	s.t.Helper()
	u := &User{Email: NewEmail("user"), Password: Password}
	s.Register(u.Email, u.Password)
	u.Tokens = s.Login(u.Email, u.Password)
	u.Client = s.WithToken(u.Tokens.AccessToken)
	return u
}

// NewAdmin registers a user through the API, makes it an administrator the
// way `gatehouse create-admin` does, and logs it in.
func (s *Server) NewAdmin() *User {
	s.t.Helper()
	u := &User{Email: NewEmail("admin"), Password: Password}
	s.Register(u.Email, u.Password)
	if _, _, err := s.Accounts.CreateAdmin(context.Background(), u.Email, ""); err != nil {
		s.t.Fatalf("grant admin: %v", err)
	}
	u.Tokens = s.Login(u.Email, u.Password)
	u.Client = s.WithToken(u.Tokens.AccessToken)
	return u
}
