package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/labstack/echo/v4"
	"github.com/swaggest/swgui"
	"github.com/swaggest/swgui/v5emb"

	spec "github.com/gatehouse/gatehouse/api"
	apigen "github.com/gatehouse/gatehouse/gen/api"
)

// registerDocs serves the contract as written (/openapi.yaml), as JSON
// (/openapi.json) and Swagger UI (/docs) from assets embedded in the binary.
func (s *Server) registerDocs(e *echo.Echo) error {
	doc, err := apigen.GetSpec()
	if err != nil {
		return fmt.Errorf("load embedded spec: %w", err)
	}
	// Swagger UI's "Try it out" calls the first server: make it this one.
	if u := strings.TrimRight(s.deps.PublicURL, "/"); u != "" && (len(doc.Servers) == 0 || doc.Servers[0].URL != u) {
		doc.Servers = append(openapi3.Servers{{URL: u, Description: "This server (PUBLIC_URL)"}}, doc.Servers...)
	}
	specJSON, err := json.Marshal(doc)
	if err != nil {
		return fmt.Errorf("encode spec as JSON: %w", err)
	}
	e.GET("/openapi.yaml", func(c echo.Context) error {
		return c.Blob(http.StatusOK, "application/yaml", spec.OpenAPIYAML)
	})
	e.GET("/openapi.json", func(c echo.Context) error {
		return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, specJSON)
	})
	ui := v5emb.NewHandlerWithConfig(swgui.Config{
		Title:       "gatehouse API",
		SwaggerJSON: "/openapi.json",
		BasePath:    "/docs/",
		// showExtensions shows each operation's x-permissions.
		SettingsUI: map[string]string{"tryItOutEnabled": "true", "showExtensions": "true"},
	})
	e.GET("/docs", func(c echo.Context) error { return c.Redirect(http.StatusMovedPermanently, "/docs/") })
	e.GET("/docs/*", echo.WrapHandler(ui))
	return nil
}
