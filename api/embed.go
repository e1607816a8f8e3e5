// Package api embeds the OpenAPI contract, api/openapi.yaml, so the binary
// serves exactly the document it validates against.
package api

import _ "embed"

// OpenAPIYAML is the contract as written.
//
//go:embed openapi.yaml
var OpenAPIYAML []byte
