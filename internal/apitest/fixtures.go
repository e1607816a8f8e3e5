package apitest

import (
	"context"
	"fmt"
	"net/http"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

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

// NewAdmin registers a user through the API, verifies its address with the
// link from the mail it received, makes it an administrator the way
// `gatehouse create-admin` does, and logs it in.
func (s *Server) NewAdmin() *User {
	s.t.Helper()
	u := &User{Email: NewEmail("admin"), Password: Password}
	s.Register(u.Email, u.Password)
	s.VerifyFromMail(u.Email)
	if _, _, err := s.Accounts.CreateAdmin(context.Background(), u.Email, ""); err != nil {
		s.t.Fatalf("grant admin: %v", err)
	}
	u.Tokens = s.Login(u.Email, u.Password)
	u.Client = s.WithToken(u.Tokens.AccessToken)
	return u
}

// VerifyFromMail waits for the verification mail the file driver wrote for
// email and follows it (POST /auth/email/verify), as the user would.
func (s *Server) VerifyFromMail(email string) {
	s.t.Helper()
	if s.mailbox != nil {
		m := s.mailbox.WaitForSubject(strings.ToLower(email), "Confirm your email address", 1, 15*time.Second)[0]
		s.verify(email, m.Token())
		return
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		files, _ := filepath.Glob(filepath.Join(s.mailDir, "*.eml"))
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil || !strings.Contains(string(b), "<"+strings.ToLower(email)+">") || !strings.Contains(string(b), "verify-email") {
				continue
			}
			msg, err := mail.ReadMessage(strings.NewReader(string(b)))
			if err != nil {
				continue
			}
			text, _ := parts(msg)
			g := tokenInLink.FindStringSubmatch(text)
			if g == nil {
				continue
			}
			s.verify(email, g[1])
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("no verification mail for %s in %s", email, s.mailDir)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *Server) verify(email, token string) {
	s.t.Helper()
	s.Secret("verification token", token)
	res, err := s.Client.VerifyEmailWithResponse(context.Background(), client.VerifyEmailJSONRequestBody{Token: token})
	if err != nil || res.StatusCode() != http.StatusNoContent {
		s.t.Fatalf("verify %s: %v %d", email, err, res.StatusCode())
	}
}

// Must fails the test when a call returns an error (the request could not
// be sent, a file could not be read) and gives its result otherwise:
// `r := apitest.Must(c.GetMeWithResponse(ctx))(t)`. Discarding the error
// instead would leave r nil and panic on its first use, hiding the cause.
func Must[T any](v T, err error) func(testing.TB) T {
	return func(t testing.TB) T {
		t.Helper()
		if err != nil {
			t.Fatalf("%v", err)
		}
		return v
	}
}
