package telemetry

import (
	"context"
	"errors"
	"fmt"

	"github.com/exaring/otelpgx"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/multitracer"
	"github.com/redis/go-redis/extra/redisotel/v9"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Tracing is the OpenTelemetry tracer provider of one process. A nil
// *Tracing is tracing switched off: every method then does nothing, and no
// instrumentation is installed at all.
type Tracing struct {
	provider *sdktrace.TracerProvider
	// children starts spans only under a recording parent: background work
	// (the revocation poll, the job queue) makes no root traces.
	children trace.TracerProvider
}

// NewTracing exports spans through exp, or, when exp is nil, over OTLP/HTTP
// as the standard OTEL_EXPORTER_OTLP_* variables of the process environment
// say. Spans are exported by a batch span processor (OTEL_BSP_* variables):
// an exporter that is slow or unreachable drops spans, it never blocks a
// request. The sampler follows OTEL_TRACES_SAMPLER (default: parent-based,
// always on); the resource is service.name "gatehouse" and service.version,
// under OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES.
func NewTracing(ctx context.Context, version string, exp sdktrace.SpanExporter) (*Tracing, error) {
	if exp == nil {
		var err error
		if exp, err = otlptracehttp.New(ctx); err != nil {
			return nil, fmt.Errorf("OTLP trace exporter: %w", err)
		}
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(
		attribute.String("service.name", "gatehouse"), attribute.String("service.version", version)))
	if err == nil {
		res, err = resource.Merge(res, resource.Environment())
	}
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("trace resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return &Tracing{provider: tp, children: childSpans{tp}}, nil
}

// Provider is the tracer provider, nil when tracing is off.
func (t *Tracing) Provider() trace.TracerProvider {
	if t == nil {
		return nil
	}
	return t.provider
}

// PgxTracer returns the pgx tracer that makes a child span of each query of
// a traced request (background queries make no traces),
// composed with extra (a tracer of tests) when that is not nil. The SQL text
// is recorded (sqlc's statements, with placeholders), never the arguments.
func (t *Tracing) PgxTracer(extra pgx.QueryTracer) pgx.QueryTracer {
	if t == nil {
		return extra
	}
	otr := otelpgx.NewTracer(otelpgx.WithTracerProvider(t.children), otelpgx.WithMeterProvider(metricnoop.NewMeterProvider()),
		otelpgx.WithDisableConnectionDetailsInAttributes(),
		// A span per pool acquire doubled the spans of a request; the pool's
		// metrics show its waits.
		otelpgx.WithDisableAcquireTracer())
	if extra == nil {
		return otr
	}
	return multitracer.New(otr, extra)
}

// InstrumentRedis makes a child span of each Redis command (the command's
// name only: its arguments hold keys and markers).
func (t *Tracing) InstrumentRedis(rdb redis.UniversalClient) error {
	if t == nil {
		return nil
	}
	return redisotel.InstrumentTracing(rdb, redisotel.WithTracerProvider(t.children),
		redisotel.WithDBStatement(false), redisotel.WithCallerEnabled(false), redisotel.WithDialFilter(true))
}

// Tracer returns a tracer whose spans are only made under a recording parent.
func (t *Tracing) Tracer(name string) trace.Tracer {
	if t == nil {
		return nil
	}
	return t.children.Tracer(name)
}

// ForceFlush exports the spans that ended so far (tests).
func (t *Tracing) ForceFlush(ctx context.Context) error {
	if t == nil {
		return nil
	}
	return t.provider.ForceFlush(ctx)
}

// Shutdown exports what remains (until ctx ends) and stops.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	return t.provider.Shutdown(ctx)
}

// childSpans is a tracer provider whose tracers start a span only under a
// recording parent; without one they hand the context back unchanged.
type childSpans struct{ trace.TracerProvider }

func (p childSpans) Tracer(name string, opts ...trace.TracerOption) trace.Tracer {
	return childTracer{p.TracerProvider.Tracer(name, opts...)}
}

type childTracer struct{ trace.Tracer }

func (t childTracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	if parent := trace.SpanFromContext(ctx); !parent.IsRecording() {
		return ctx, parent
	}
	return t.Tracer.Start(ctx, name, opts...)
}
