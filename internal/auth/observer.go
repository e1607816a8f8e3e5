package auth

import (
	"context"
	"time"

	"github.com/gatehouse/gatehouse/internal/password"
)

// Observer is told what the service does that an operator watches: metrics
// and trace spans (internal/telemetry implements it). The domain imports no
// metrics or tracing library; without an Observer nothing is reported.
type Observer interface {
	// RevocationChecked counts a revocation check of an access token by the
	// layer that answered it: "local", "redis" or "postgres".
	RevocationChecked(layer string)
	// RevocationUnannounced counts a revocation recorded in PostgreSQL whose
	// Redis marker and announcement failed.
	RevocationUnannounced()
	// RefreshReuseDetected counts a refresh token presented again after its
	// rotation and grace window (its session is then revoked).
	RefreshReuseDetected()
	// StartHashing starts the span of a password hash or verification (op:
	// "hash", "verify", "verify_dummy"); end closes it.
	StartHashing(ctx context.Context, op string) (_ context.Context, end func())
}

// Revocation layers, as Observer.RevocationChecked names them.
const (
	LayerLocal    = "local"
	LayerRedis    = "redis"
	LayerPostgres = "postgres"
)

type noObserver struct{}

func (noObserver) RevocationChecked(string) {}
func (noObserver) RefreshReuseDetected()    {}
func (noObserver) RevocationUnannounced()   {}
func (noObserver) StartHashing(ctx context.Context, _ string) (context.Context, func()) {
	return ctx, func() {}
}

// hasher is what the service asks of the password hasher.
type hasher interface {
	Bounded(ctx context.Context, fn func()) error
	Hash(ctx context.Context, pw string) (string, error)
	Verify(ctx context.Context, pw, encoded string) (ok, rehash bool, err error)
	VerifyDummy(ctx context.Context, pw string) error
	FailureFloor() time.Duration
}

// observedHasher wraps each hash and verification in a span of the Observer.
type observedHasher struct {
	*password.Hasher
	obs Observer
}

func (h observedHasher) Hash(ctx context.Context, pw string) (string, error) {
	ctx, end := h.obs.StartHashing(ctx, "hash")
	defer end()
	return h.Hasher.Hash(ctx, pw)
}

func (h observedHasher) Verify(ctx context.Context, pw, encoded string) (bool, bool, error) {
	ctx, end := h.obs.StartHashing(ctx, "verify")
	defer end()
	return h.Hasher.Verify(ctx, pw, encoded)
}

func (h observedHasher) VerifyDummy(ctx context.Context, pw string) error {
	ctx, end := h.obs.StartHashing(ctx, "verify_dummy")
	defer end()
	return h.Hasher.VerifyDummy(ctx, pw)
}
