package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/gen/client"
)

func TestReadiness_ReportsRedisDownAndRecovers(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	ctx := context.Background()

	ready, err := s.Client.GetReadinessWithResponse(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ready.JSON200 == nil || !ready.JSON200.Healthy ||
		ready.JSON200.Checks.Postgres.Status != client.CheckStatusUp || ready.JSON200.Checks.Redis.Status != client.CheckStatusUp {
		t.Fatalf("want both up: %d %s", ready.StatusCode(), ready.Body)
	}

	s.Redis.Stop()
	ready, err = s.Client.GetReadinessWithResponse(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ready.JSON503 == nil || ready.JSON503.Healthy || ready.JSON503.Checks.Redis.Status != client.CheckStatusDown ||
		ready.JSON503.Checks.Postgres.Status != client.CheckStatusUp {
		t.Fatalf("Redis stopped: want 503 naming redis down, got %d %s", ready.StatusCode(), ready.Body)
	}
	health, err := s.Client.GetHealthWithResponse(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if health.JSON503 == nil || health.JSON503.Checks.Redis.Status != client.CheckStatusDown {
		t.Fatalf("/health with Redis stopped: %d %s", health.StatusCode(), health.Body)
	}
	live, err := s.Client.GetLivenessWithResponse(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if live.JSON200 == nil {
		t.Fatalf("liveness must not depend on Redis: %v %s", err, live.Body)
	}

	s.Redis.Start()
	ready, err = s.Client.GetReadinessWithResponse(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ready.JSON200 == nil || !ready.JSON200.Healthy {
		t.Fatalf("Redis back: want 200, got %d %s", ready.StatusCode(), ready.Body)
	}
}

func TestDocs_ServeTheContractAndSwaggerUI(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	res, b := send(t, s, "GET", "/openapi.yaml", "", "", "")
	if res.StatusCode != 200 || !strings.HasPrefix(string(b), "openapi: 3.0.3") {
		t.Fatalf("/openapi.yaml: %d %.80s", res.StatusCode, b)
	}
	res, b = send(t, s, "GET", "/openapi.json", "", "", "")
	var doc struct {
		OpenAPI string         `json:"openapi"`
		Paths   map[string]any `json:"paths"`
		Servers []struct {
			URL string `json:"url"`
		} `json:"servers"`
	}
	if res.StatusCode != 200 || json.Unmarshal(b, &doc) != nil || doc.OpenAPI != "3.0.3" || doc.Paths["/api/v1/auth/login"] == nil {
		t.Fatalf("/openapi.json: %d %.200s", res.StatusCode, b)
	}
	// Swagger UI tries calls against the first server: the origin that
	// served the page. PUBLIC_URL comes next, then the file's others.
	if len(doc.Servers) < 3 || doc.Servers[0].URL != "/" || doc.Servers[1].URL != "http://gatehouse.test" || doc.Servers[2].URL != "http://localhost:5500" {
		t.Fatalf("servers of the served spec: %+v", doc.Servers)
	}
	res, b = send(t, s, "GET", "/docs/", "", "", "")
	if res.StatusCode != 200 || !strings.Contains(string(b), "swagger-ui") || !strings.Contains(string(b), "/openapi.json") {
		t.Fatalf("/docs/: %d %.300s", res.StatusCode, b)
	}
	// Each operation's x-permissions shows in the UI.
	if !strings.Contains(string(b), `"showExtensions": true`) && !strings.Contains(string(b), `showExtensions: true`) {
		t.Fatalf("/docs/ does not show extensions: %.2000s", b)
	}
	// Assets come from the binary, not a CDN.
	if strings.Contains(string(b), "cdn") || strings.Contains(string(b), "unpkg") {
		t.Fatalf("/docs/ loads assets from a CDN: %.500s", b)
	}
	res, _ = send(t, s, "GET", "/docs/swagger-ui-bundle.js", "", "", "")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("embedded Swagger UI asset: %d", res.StatusCode)
	}
}
