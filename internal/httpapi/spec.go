package httpapi

import (
	"errors"
	"fmt"
	"net/mail"

	"github.com/getkin/kin-openapi/openapi3"

	api "github.com/gatehouse/gatehouse/gen/api"
)

// LoadSpec returns the embedded contract ready for validation: matched on
// path alone (whatever host serves it), with the uuid and email formats
// checked. The test suite validates responses against the same document.
func LoadSpec() (*openapi3.T, error) {
	doc, err := api.GetSpec()
	if err != nil {
		return nil, fmt.Errorf("load embedded spec: %w", err)
	}
	doc.Servers = nil
	// RFC 9562 accepts every version, UUIDv7 ids included.
	doc.SetStringFormatValidator("uuid", openapi3.NewRegexpFormatValidator(openapi3.FormatOfStringForUUIDOfRFC9562))
	doc.SetStringFormatValidator("email", openapi3.NewCallbackValidator(validEmail))
	return doc, nil
}

var errEmail = errors.New("not an email address")

// validEmail accepts a bare addr-spec (no display name, no comments).
func validEmail(s string) error {
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" {
		return errEmail
	}
	return nil
}
