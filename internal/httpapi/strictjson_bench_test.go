package httpapi_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"

	"github.com/gatehouse/gatehouse/internal/apitest"
	"github.com/gatehouse/gatehouse/internal/httpapi"
)

// The benchmarks below send each hostile body shape at the default 1 MiB body
// limit. alloc/body is the bytes allocated per request divided by the size
// of the body: the goal is a small constant whatever the shape (make bench
// prints the same from a real server, next to its budget).

// BenchmarkStrictJSON is the strict check alone.
func BenchmarkStrictJSON(b *testing.B) {
	for _, hb := range apitest.HostileBodies(1 << 20) {
		b.Run(hb.Name, func(b *testing.B) {
			measure(b, hb.Body, func() { _ = httpapi.CheckStrictJSON(hb.Body) })
		})
	}
}

// BenchmarkStrictJSON_HostileBodies is POST /api/v1/auth/login without a
// token, through the whole HTTP layer: contract, strict check, schema
// validation and the problem written back.
func BenchmarkStrictJSON_HostileBodies(b *testing.B) {
	const limit = 1 << 20
	e := bareHandler(b, limit)
	for _, hb := range apitest.HostileBodies(limit) {
		b.Run(hb.Name, func(b *testing.B) {
			measure(b, hb.Body, func() {
				req := httptest.NewRequestWithContext(b.Context(), http.MethodPost, "/api/v1/auth/login", bytes.NewReader(hb.Body))
				req.Header.Set("Content-Type", "application/json")
				rec := httptest.NewRecorder()
				e.ServeHTTP(rec, req)
				if rec.Code != http.StatusBadRequest && rec.Code != http.StatusUnprocessableEntity {
					b.Fatalf("status %d, want 400 or 422", rec.Code)
				}
			})
		})
	}
}

func measure(b *testing.B, body []byte, f func()) {
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	n := 0
	for b.Loop() {
		f()
		n++
	}
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(n)/float64(len(body)), "alloc/body")
}
