package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"

	api "github.com/gatehouse/gatehouse/gen/api"
)

// validationProblem turns kin-openapi's request validation errors into one
// problem: 400 for an unreadable body or bad parameters, 422 for a well-formed
// JSON body that breaks the schema. Every field gets a message a person can
// act on.
func validationProblem(err error) *problem {
	var errs []error
	var me openapi3.MultiError
	if errors.As(err, &me) {
		errs = flatten(me)
	} else {
		errs = []error{err}
	}
	status, code := http.StatusUnprocessableEntity, api.ProblemCodeValidationFailed
	var fields []api.FieldError
	for _, e := range errs {
		var re *openapi3filter.RequestError
		if !errors.As(e, &re) {
			return &problem{status: http.StatusBadRequest, code: api.ProblemCodeBadRequest, detail: "The request does not match the API contract.", cause: e}
		}
		switch {
		case re.Parameter != nil:
			status, code = http.StatusBadRequest, api.ProblemCodeBadRequest
			fields = append(fields, parameterErrors(re)...)
		case re.RequestBody != nil:
			var pe *openapi3filter.ParseError
			if errors.As(re.Err, &pe) {
				return newProblem(http.StatusBadRequest, api.ProblemCodeMalformedJson, "The request body is not valid JSON: "+jsonHint(pe)+".")
			}
			if errors.Is(re.Err, openapi3filter.ErrInvalidRequired) {
				// malformed_json, not bad_request: the spec keeps bad_request
				// for query and path parameters.
				return newProblem(http.StatusBadRequest, api.ProblemCodeMalformedJson, "This operation needs a JSON request body; the body is empty.")
			}
			fields = append(fields, schemaErrors(re.Err, "")...)
		default:
			return &problem{status: http.StatusBadRequest, code: api.ProblemCodeBadRequest, detail: "The request does not match the API contract.", cause: e}
		}
	}
	sort.SliceStable(fields, func(i, j int) bool { return fields[i].Field < fields[j].Field })
	p := newProblem(status, code, "Some fields are invalid; see errors for what to fix.")
	if status == http.StatusBadRequest {
		p.detail = "Some parameters are invalid; see errors for what to fix."
	}
	p.fields = fields
	return p
}

func flatten(me openapi3.MultiError) []error {
	var out []error
	for _, e := range me {
		// Only a list nested directly is split: errors.As would also open a
		// *RequestError or *SchemaError wrapping a list and lose the field it names.
		if inner, ok := e.(openapi3.MultiError); ok { //nolint:errorlint // see above
			out = append(out, flatten(inner)...)
			continue
		}
		out = append(out, e)
	}
	return out
}

func parameterErrors(re *openapi3filter.RequestError) []api.FieldError {
	name := re.Parameter.Name
	if errors.Is(re.Err, openapi3filter.ErrInvalidRequired) {
		return []api.FieldError{{Field: name, Code: "required", Message: "is required"}}
	}
	if fs := schemaErrors(re.Err, name); len(fs) > 0 {
		return fs
	}
	return []api.FieldError{{Field: name, Code: "invalid", Message: "has an invalid value"}}
}

// schemaErrors lists the field errors inside err, naming fields by their
// dotted path below prefix.
func schemaErrors(err error, prefix string) []api.FieldError {
	var me openapi3.MultiError
	if errors.As(err, &me) {
		var out []api.FieldError
		for _, e := range me {
			out = append(out, schemaErrors(e, prefix)...)
		}
		return out
	}
	var se *openapi3.SchemaError
	if !errors.As(err, &se) {
		var pe *openapi3filter.ParseError
		if errors.As(err, &pe) {
			return []api.FieldError{{Field: prefix, Code: "type", Message: "has a value of the wrong type"}}
		}
		return nil
	}
	path := se.JSONPointer()
	// An unknown property is reported on its parent object; name the property.
	if se.SchemaField == "properties" {
		if name, ok := unsupportedProperty(se.Reason); ok {
			path = append(path, name)
		}
	}
	field := strings.Join(path, ".")
	if prefix != "" {
		field = strings.TrimSuffix(prefix+"."+field, ".")
	}
	code, msg := describe(se)
	return []api.FieldError{{Field: field, Code: api.FieldErrorCode(code), Message: msg}}
}

// unsupportedProperty reads the name out of kin-openapi's reason
// `property "x" is unsupported` (written with %q). It runs once for every
// unknown key of a body, so it avoids fmt.Sscanf, which reads rune by rune.
func unsupportedProperty(reason string) (string, bool) {
	q, ok := strings.CutPrefix(reason, "property ")
	if !ok {
		return "", false
	}
	if q, ok = strings.CutSuffix(q, " is unsupported"); !ok {
		return "", false
	}
	name, err := strconv.Unquote(q)
	return name, err == nil
}

// describe says what is wrong with a value in terms of the schema rule it
// broke.
func describe(se *openapi3.SchemaError) (code, message string) {
	s := se.Schema
	switch se.SchemaField {
	case "required":
		return "required", "is required"
	case "additionalProperties":
		return "unknown_field", "is not a field of this request; remove it"
	case "properties": // kin-openapi's report of an unknown property
		if strings.HasSuffix(se.Reason, "is unsupported") {
			return "unknown_field", "is not a field of this request; remove it"
		}
	case "type":
		if s != nil && s.Type != nil && len(s.Type.Slice()) > 0 {
			return "type", "must be " + article(s.Type.Slice()[0])
		}
		return "type", "has the wrong type"
	case "nullable":
		return "type", "must not be null"
	case "format":
		if s != nil {
			switch s.Format {
			case "email":
				return "format", "must be an email address such as name@example.com"
			case "uuid":
				return "format", "must be a UUID such as 0190c5a4-7b1e-7cc2-9a1e-4b8d2f0e6a11"
			case "date-time":
				return "format", "must be an RFC 3339 date-time such as 2026-01-02T15:04:05Z"
			}
			return "format", "must be in " + s.Format + " format"
		}
	case "minLength":
		return "min_length", fmt.Sprintf("must be at least %d characters long", s.MinLength)
	case "maxLength":
		if s.MaxLength != nil {
			return "max_length", fmt.Sprintf("must be at most %d characters long", *s.MaxLength)
		}
	case "minimum":
		if s.Min != nil {
			return "minimum", fmt.Sprintf("must be at least %v", *s.Min)
		}
	case "maximum":
		if s.Max != nil {
			return "maximum", fmt.Sprintf("must be at most %v", *s.Max)
		}
	case "enum":
		vals := make([]string, len(s.Enum))
		for i, v := range s.Enum {
			vals[i] = fmt.Sprint(v)
		}
		msg := "must be one of: " + strings.Join(vals, ", ")
		if len(msg) > maxMessage {
			// A long enum (the audit actions) is named, not listed whole.
			cut := strings.LastIndex(msg[:maxMessage-60], ", ")
			msg = fmt.Sprintf("%s, ... (%d values; the contract lists them all)", msg[:cut], len(vals))
		}
		return "enum", msg
	case "minProperties":
		return "min_properties", fmt.Sprintf("must contain at least %d field(s)", s.MinProps)
	case "minItems":
		return "min_items", fmt.Sprintf("must contain at least %d item(s)", s.MinItems)
	case "maxItems":
		if s.MaxItems != nil {
			return "max_items", fmt.Sprintf("must contain at most %d item(s)", *s.MaxItems)
		}
	case "uniqueItems":
		return "unique_items", "must not contain the same item twice"
	case "pattern":
		if strings.Contains(s.Pattern, `\x00-\x1F`) {
			return "pattern", "must not contain control characters or line breaks"
		}
		return "pattern", "has an invalid format"
	}
	return "invalid", "is invalid: " + se.Reason
}

func article(typ string) string {
	switch typ {
	case "integer", "object", "array":
		return "an " + typ
	}
	return "a " + typ
}

// jsonHint gives the position of a JSON syntax error without echoing the body.
func jsonHint(pe *openapi3filter.ParseError) string {
	var inner interface{ Error() string } = pe.Cause
	if inner == nil {
		return "check its syntax"
	}
	msg := inner.Error()
	// encoding/json messages are safe to show ("invalid character '}' looking
	// for beginning of object key string"); cut anything long.
	if len(msg) > 120 {
		msg = msg[:120]
	}
	return msg
}
