package telemetry

import (
	"context"

	"go.opentelemetry.io/otel/trace"
)

// Observer reports what the domain tells it (auth.Observer) to the metrics
// and the traces; either may be nil (switched off).
type Observer struct {
	Metrics *Metrics
	Tracing *Tracing
	hashing trace.Tracer
}

// NewObserver returns the observer of metrics m and tracing t.
func NewObserver(m *Metrics, t *Tracing) *Observer {
	return &Observer{Metrics: m, Tracing: t, hashing: t.Tracer("github.com/gatehouse/gatehouse/internal/password")}
}

// RevocationChecked counts a revocation check by the layer that answered.
func (o *Observer) RevocationChecked(layer string) {
	if o.Metrics != nil {
		o.Metrics.RevocationChecked(layer)
	}
}

// RevocationUnannounced counts a revocation Redis would not take.
func (o *Observer) RevocationUnannounced() {
	if o.Metrics != nil {
		o.Metrics.RevocationUnannounced()
	}
}

// RefreshReuseDetected counts a reused refresh token.
func (o *Observer) RefreshReuseDetected() {
	if o.Metrics != nil {
		o.Metrics.RefreshReuseDetected()
	}
}

// StartHashing starts the span "password.<op>" under the request's span.
func (o *Observer) StartHashing(ctx context.Context, op string) (context.Context, func()) {
	if o.hashing == nil {
		return ctx, func() {}
	}
	ctx, span := o.hashing.Start(ctx, "password."+op)
	return ctx, func() { span.End() }
}
