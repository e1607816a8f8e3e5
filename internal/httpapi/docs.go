package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"

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
		SettingsUI:  map[string]string{"tryItOutEnabled": "true"},
	})
	e.GET("/docs", func(c echo.Context) error { return c.Redirect(http.StatusMovedPermanently, "/docs/") })
	e.GET("/docs/*", echo.WrapHandler(ui))
	return nil
}
