// Package app assembles gatehouse from its configuration: the stores, the
// authentication service and the HTTP handler. `gatehouse serve` and the test
// harness both build the service here, so tests run what production runs.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/labstack/echo/v4"
	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/httpapi"
	"github.com/gatehouse/gatehouse/internal/password"
	"github.com/gatehouse/gatehouse/internal/pgstore"
	"github.com/gatehouse/gatehouse/internal/ratelimit"
	"github.com/gatehouse/gatehouse/internal/redisstore"
	"github.com/gatehouse/gatehouse/internal/token"
)

// Options adjust what configuration does not cover (tests raise limits).
type Options struct {
	RateLimits *ratelimit.Policies
	// Deps, when set, may replace HTTP dependencies (tests of the mechanism).
	Deps func(*httpapi.Deps)
}

// App is the assembled service.
type App struct {
	Handler  *echo.Echo
	Accounts *auth.Service
}

// New builds the service on an open pool and Redis client.
func New(cfg config.Config, log *slog.Logger, pool *pgxpool.Pool, rdb redis.UniversalClient, o Options) (*App, error) {
	accounts, keys, err := NewAccounts(cfg, log, pool, rdb)
	if err != nil {
		return nil, err
	}
	limits := cfg.RateLimits
	if o.RateLimits != nil {
		limits = *o.RateLimits
	}
	deps := httpapi.Deps{
		Log:                log,
		Authenticator:      accounts,
		Accounts:           accounts,
		Limiter:            redisstore.NewLimiter(rdb, cfg.RedisKeyPrefix),
		RateLimits:         limits,
		SigningKeys:        keys,
		PostgresCheck:      pool.Ping,
		RedisCheck:         func(ctx context.Context) error { return redisstore.Ping(ctx, rdb) },
		Production:         cfg.Production(),
		BodyLimitBytes:     cfg.BodyLimitBytes,
		TrustedProxies:     cfg.TrustedProxies,
		CORSAllowedOrigins: cfg.CORSAllowedOrigins,
	}
	if o.Deps != nil {
		o.Deps(&deps)
	}
	e, err := httpapi.New(deps)
	if err != nil {
		return nil, err
	}
	return &App{Handler: e, Accounts: accounts}, nil
}

// NewAccounts builds the authentication service and returns it with the
// public signing keys.
func NewAccounts(cfg config.Config, log *slog.Logger, pool *pgxpool.Pool, rdb redis.UniversalClient) (*auth.Service, []token.JWK, error) {
	keys, err := signingKeys(cfg, log)
	if err != nil {
		return nil, nil, err
	}
	const leeway = 30 * time.Second // clock skew tolerated between instances
	issuer, err := token.NewIssuer(token.Config{
		Keys: keys, Issuer: cfg.JWTIssuer, Audience: cfg.JWTAudience, TTL: cfg.AccessTokenTTL, Leeway: leeway,
	})
	if err != nil {
		return nil, nil, err
	}
	slots := cfg.HashConcurrency
	if slots == 0 {
		slots = runtime.NumCPU()
	}
	hasher, err := password.NewHasher(password.Params{
		MemoryKiB: cfg.Argon2MemoryKiB, Time: cfg.Argon2Time, Threads: 1, SaltLen: 16, KeyLen: 32,
	}, slots)
	if err != nil {
		return nil, nil, err
	}
	policy, err := password.NewPolicy(cfg.PasswordMinLength)
	if err != nil {
		return nil, nil, err
	}
	set := auth.DefaultSettings
	set.RefreshIdleTTL, set.RefreshAbsoluteTTL, set.RefreshGrace = cfg.RefreshIdleTTL, cfg.RefreshAbsoluteTTL, cfg.RefreshGrace
	svc := auth.NewService(auth.Deps{
		Store:    pgstore.New(pool),
		Cache:    redisstore.NewRevocations(rdb, cfg.RedisKeyPrefix),
		Lockout:  redisstore.NewLockout(rdb, cfg.RedisKeyPrefix),
		Hasher:   hasher,
		Policy:   policy,
		Tokens:   issuer,
		Log:      log,
		Settings: set,
		Leeway:   leeway,
	})
	return svc, issuer.Keys(), nil
}

func signingKeys(cfg config.Config, log *slog.Logger) ([]token.Key, error) {
	var keys []token.Key
	for _, f := range cfg.JWTSigningKeyFiles {
		k, err := token.LoadKeyFile(f)
		if err != nil {
			return nil, fmt.Errorf("JWT_SIGNING_KEY_FILES %s: %w", f, err)
		}
		keys = append(keys, k)
	}
	if len(keys) > 0 {
		return keys, nil
	}
	if cfg.Production() {
		return nil, errors.New("JWT_SIGNING_KEY_FILES must be set in production")
	}
	k, err := token.GenerateKey()
	if err != nil {
		return nil, err
	}
	log.Warn("no JWT_SIGNING_KEY_FILES: signing with an ephemeral key; tokens die with this process and other instances refuse them",
		"kid", k.ID)
	return []token.Key{k}, nil
}
