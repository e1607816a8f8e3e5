package httpapi

import (
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/swaggest/swgui"
	"github.com/swaggest/swgui/v5emb"

	spec "github.com/gatehouse/gatehouse/api"
	apigen "github.com/gatehouse/gatehouse/gen/api"
)

// registerDocs serves the contract as written (/openapi.yaml), the same
// document as JSON (/openapi.json) and Swagger UI (/docs) from assets
// embedded in the binary. The spec's first server is relative ("/"), so
// Swagger UI calls the origin that served it, whatever host, port or proxy
// that is; PUBLIC_URL is listed next for generated clients.
func (s *Server) registerDocs(e apigen.EchoRouter) error {
	// One document in two notations, each encoded once.
	specYAML, specJSON, err := servedSpec(spec.OpenAPIYAML, s.deps.PublicURL)
	if err != nil {
		return err
	}
	e.GET("/openapi.yaml", func(c echo.Context) error {
		return c.Blob(http.StatusOK, "application/yaml", specYAML)
	})
	e.GET("/openapi.json", func(c echo.Context) error {
		return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, specJSON)
	})
	ui := v5emb.NewHandlerWithConfig(swgui.Config{
		Title:       "gatehouse API",
		SwaggerJSON: "/openapi.json",
		BasePath:    "/docs/",
		// showExtensions shows each operation's x-permissions and x-mfa.
		SettingsUI: map[string]string{"tryItOutEnabled": "true", "showExtensions": "true"},
	})
	e.GET("/docs", func(c echo.Context) error { return c.Redirect(http.StatusMovedPermanently, "/docs/") })
	e.GET("/docs/*", echo.WrapHandler(ui))
	return nil
}
