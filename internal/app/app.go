// Package app assembles gatehouse from its configuration: the stores, the
// authentication service and the HTTP handler. `gatehouse serve` and the test
// harness both build the service here, so tests run what production runs.
package app

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/labstack/echo/v4"
	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/httpapi"
	"github.com/gatehouse/gatehouse/internal/jobs"
	"github.com/gatehouse/gatehouse/internal/keyed"
	"github.com/gatehouse/gatehouse/internal/mail"
	"github.com/gatehouse/gatehouse/internal/outbox"
	"github.com/gatehouse/gatehouse/internal/password"
	"github.com/gatehouse/gatehouse/internal/pgstore"
	"github.com/gatehouse/gatehouse/internal/ratelimit"
	"github.com/gatehouse/gatehouse/internal/redisstore"
	"github.com/gatehouse/gatehouse/internal/secretbox"
	"github.com/gatehouse/gatehouse/internal/telemetry"
	"github.com/gatehouse/gatehouse/internal/token"
	"github.com/gatehouse/gatehouse/internal/user"
	"github.com/gatehouse/gatehouse/internal/userimport"
)

// Options adjust what configuration does not cover (tests raise limits).
type Options struct {
	RateLimits *ratelimit.Policies
	// Deps, when set, may replace HTTP dependencies (tests of the mechanism).
	Deps func(*httpapi.Deps)
	// Version names the build in gatehouse_build_info and the traces.
	Version string
	// Tracing, when set, makes spans of requests, Redis commands and hashes.
	// It is built before the pool, whose query tracer comes from it
	// (telemetry.Tracing.PgxTracer); nil: no tracing.
	Tracing *telemetry.Tracing
}

// App is the assembled service.
type App struct {
	Handler  *echo.Echo
	Accounts *auth.Service
	// Metrics is the App's metrics registry, nil with METRICS_ENABLED=false.
	// With METRICS_ADDR set, `gatehouse serve` serves MetricsHandler there;
	// otherwise Handler serves it at /metrics.
	Metrics        *telemetry.Metrics
	MetricsHandler http.Handler
	// Jobs works the queue (mails, maintenance); Start and Stop run it.
	Jobs    *jobs.Client
	working bool
	stop    context.CancelFunc
	done    chan struct{}
}

// Start runs the background work: the poll of recent revocations and, if
// this instance has workers, mail delivery.
func (a *App) Start(ctx context.Context) error {
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	a.stop, a.done = cancel, make(chan struct{})
	go func() {
		defer close(a.done)
		a.Accounts.Run(runCtx)
	}()
	if !a.working {
		return nil
	}
	return a.Jobs.Start(ctx)
}

// Stop ends the background work; mails being sent finish (until ctx ends).
func (a *App) Stop(ctx context.Context) error {
	if a.stop != nil {
		a.stop()
		<-a.done
	}
	if !a.working {
		return nil
	}
	return a.Jobs.Stop(ctx)
}

// New builds the service on an open pool and Redis client.
func New(cfg config.Config, log *slog.Logger, pool *pgxpool.Pool, rdb redis.UniversalClient, o Options) (*App, error) {
	var metrics *telemetry.Metrics
	if cfg.MetricsEnabled {
		metrics = telemetry.NewMetrics(cmp.Or(o.Version, "dev"))
		if err := errors.Join(metrics.RegisterPostgres(pool), metrics.RegisterRedis(rdb),
			metrics.RegisterDependency("postgres", pool.Ping),
			metrics.RegisterDependency("redis", func(ctx context.Context) error { return redisstore.Ping(ctx, rdb) })); err != nil {
			return nil, fmt.Errorf("register pool metrics: %w", err)
		}
	}
	if err := o.Tracing.InstrumentRedis(rdb); err != nil {
		return nil, fmt.Errorf("trace Redis: %w", err)
	}
	obs := telemetry.NewObserver(metrics, o.Tracing)
	accounts, keys, queue, store, err := newAccounts(cfg, log, pool, rdb, true, obs)
	if err != nil {
		return nil, err
	}
	if metrics != nil {
		if err := metrics.RegisterOutbox(store.QueuedMails); err != nil {
			return nil, fmt.Errorf("register outbox metrics: %w", err)
		}
		if err := metrics.RegisterLegacyHashes(store.CountLegacyHashes); err != nil {
			return nil, fmt.Errorf("register legacy hash metric: %w", err)
		}
	}
	limits := cfg.RateLimits
	if o.RateLimits != nil {
		limits = *o.RateLimits
	}
	deps := httpapi.Deps{
		Log:                log,
		Authenticator:      accounts,
		Accounts:           accounts,
		Credentials:        accounts,
		MFA:                accounts,
		Users:              user.NewService(store, accounts),
		Importer:           userimport.NewService(store, accounts, cfg.AppEnv == config.EnvDevelopment),
		Limiter:            redisstore.NewLimiter(rdb, cfg.RedisKeyPrefix),
		RateLimits:         limits,
		SigningKeys:        keys,
		PostgresCheck:      pool.Ping,
		RedisCheck:         func(ctx context.Context) error { return redisstore.Ping(ctx, rdb) },
		Production:         cfg.Production(),
		PublicURL:          cfg.PublicURL,
		BodyLimitBytes:     cfg.BodyLimitBytes,
		TrustedProxies:     cfg.TrustedProxies,
		CORSAllowedOrigins: cfg.CORSAllowedOrigins,
		Secret:             []byte(cfg.ServerSecret),
		TracerProvider:     o.Tracing.Provider(),
	}
	a := &App{Accounts: accounts, Jobs: queue, working: cfg.MailWorkers > 0, Metrics: metrics}
	if metrics != nil {
		deps.Metrics = metrics
		a.MetricsHandler = metrics.Handler()
		if cfg.MetricsAddr == "" {
			deps.MetricsHandler, deps.MetricsToken = a.MetricsHandler, cfg.MetricsToken
		}
	}
	if o.Deps != nil {
		o.Deps(&deps)
	}
	if a.Handler, err = httpapi.New(deps); err != nil {
		return nil, err
	}
	return a, nil
}

// NewAccounts builds the authentication service alone (commands): the mails
// it records are sent by the serving instances.
func NewAccounts(cfg config.Config, log *slog.Logger, pool *pgxpool.Pool, rdb redis.UniversalClient) (*auth.Service, error) {
	a, _, _, _, err := newAccounts(cfg, log, pool, rdb, false, telemetry.NewObserver(nil, nil))
	return a, err
}

// NewImporter builds the import service alone (`gatehouse import`): the
// mails it records are sent by the serving instances. It also returns the
// store, which counts the accounts still on legacy hashes.
func NewImporter(cfg config.Config, log *slog.Logger, pool *pgxpool.Pool, rdb redis.UniversalClient) (*userimport.Service, *pgstore.Store, error) {
	a, _, _, store, err := newAccounts(cfg, log, pool, rdb, false, telemetry.NewObserver(nil, nil))
	if err != nil {
		return nil, nil, err
	}
	return userimport.NewService(store, a, cfg.AppEnv == config.EnvDevelopment), store, nil
}

func newAccounts(cfg config.Config, log *slog.Logger, pool *pgxpool.Pool, rdb redis.UniversalClient, work bool, obs *telemetry.Observer) (*auth.Service, []token.JWK, *jobs.Client, *pgstore.Store, error) {
	keys, err := signingKeys(cfg, log)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	const leeway = 30 * time.Second // clock skew tolerated between instances
	issuer, err := token.NewIssuer(token.Config{
		Keys: keys, Issuer: cfg.JWTIssuer, Audience: cfg.JWTAudience, TTL: cfg.AccessTokenTTL, Leeway: leeway,
	})
	if err != nil {
		return nil, nil, nil, nil, err
	}
	var onWait func(time.Duration)
	if obs.Metrics != nil {
		onWait = obs.Metrics.ObserveHashWait
	}
	hasher, err := password.New(password.Params{
		MemoryKiB: cfg.Argon2MemoryKiB, Time: cfg.Argon2Time, Threads: 1, SaltLen: 16, KeyLen: 32,
	}, password.Options{Slots: cfg.HashSlots(), LowPriority: cfg.HashLowPriority, OnWait: onWait})
	if err != nil {
		return nil, nil, nil, nil, err
	}
	if obs.Metrics != nil {
		if err := obs.Metrics.RegisterHashSlots(hasher); err != nil {
			return nil, nil, nil, nil, fmt.Errorf("register hashing metrics: %w", err)
		}
	}
	policy, err := password.NewPolicy(cfg.PasswordMinLength)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	// The store inserts jobs (mails) in its transactions with a client that
	// only inserts; the client that works them needs the store, so it comes
	// after.
	queueCfg := jobs.Config{
		Log: log, Workers: cfg.MailWorkers, RetryBase: cfg.MailRetryBase, RescueAfter: cfg.MailRescueAfter, MaxAttempts: 25,
		AttemptTimeout: min(time.Minute, cfg.MailRescueAfter/2), PollOnly: cfg.BehindTransactionPooler(),
	}
	inserter, err := jobs.NewClient(pool, queueCfg)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	store := pgstore.New(pool, inserter)
	queue, err := newQueue(cfg, log, pool, store, queueCfg, work, obs.Metrics)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	set := auth.DefaultSettings
	set.RefreshIdleTTL, set.RefreshAbsoluteTTL, set.RefreshGrace = cfg.RefreshIdleTTL, cfg.RefreshAbsoluteTTL, cfg.RefreshGrace
	set.RequireVerifiedEmail = cfg.RequireVerifiedEmail
	set.AllowLocalEmailDomains = cfg.AppEnv == config.EnvDevelopment
	for _, r := range cfg.MFARequiredRoles { // "admin, support" names two roles
		if r = strings.TrimSpace(r); r != "" {
			set.MFA.RequiredRoles = append(set.MFA.RequiredRoles, r)
		}
	}
	set.MFA.Issuer = cfg.MailProductName
	mfaKeys, err := mfaKeyring(cfg, log)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	svc := auth.NewService(auth.Deps{
		Store:     store,
		Cache:     redisstore.NewRevocations(rdb, cfg.RedisKeyPrefix),
		Lockout:   redisstore.NewLockout(rdb, cfg.RedisKeyPrefix),
		Hasher:    hasher,
		Policy:    policy,
		Tokens:    issuer,
		Log:       log,
		Settings:  set,
		Leeway:    leeway,
		PollEvery: cfg.RevocationPollInterval,
		Secret:    []byte(cfg.ServerSecret),
		Observer:  obs,
		MFAKeys:   mfaKeys,
	})
	if obs.Metrics != nil {
		if err := obs.Metrics.RegisterFeed(svc.FeedCurrent); err != nil {
			return nil, nil, nil, nil, fmt.Errorf("register revocation feed metric: %w", err)
		}
	}
	return svc, issuer.Keys(), queue, store, nil
}

// newQueue builds the client that works the job queue: with work, this
// instance sends mails and prunes the audit log.
func newQueue(cfg config.Config, log *slog.Logger, pool *pgxpool.Pool, store *pgstore.Store, c jobs.Config, work bool, metrics *telemetry.Metrics) (*jobs.Client, error) {
	if work && cfg.MailWorkers > 0 {
		r, err := mail.NewRenderer()
		if err != nil {
			return nil, err
		}
		var sender mail.Sender = mail.FileSender{Dir: cfg.MailDir, From: cfg.SMTPFrom}
		if cfg.MailDriver == "smtp" {
			if sender, err = mail.NewSMTPSender(mail.SMTPConfig{
				Host: cfg.SMTPHost, Port: cfg.SMTPPort, Username: cfg.SMTPUsername, Password: cfg.SMTPPassword,
				From: cfg.SMTPFrom, TLS: cfg.SMTPTLS, Timeout: min(15*time.Second, cfg.MailRescueAfter/4),
			}); err != nil {
				return nil, err
			}
		}
		oc := outbox.Config{
			Product: cfg.MailProductName, PublicURL: strings.TrimRight(cfg.PublicURL, "/"),
			ResetTTL: cfg.ResetTokenTTL, VerifyTTL: cfg.VerifyTokenTTL, AttemptTimeout: c.AttemptTimeout,
		}
		if metrics != nil {
			oc.Failed = metrics.MailDeliveryFailed
		}
		c.Mail = outbox.NewWorker(store, r, sender, oc)
		c.Prune = &jobs.PruneAuditWorker{Store: store, Retention: cfg.AuditRetention, Log: log}
	}
	return jobs.NewClient(pool, c)
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

// mfaKeyring builds the keys that seal TOTP secrets: MFA_ENCRYPTION_KEYS, or
// outside production a key derived from SERVER_SECRET (with a warning: it
// rotates with the secret, and the development secret is public).
func mfaKeyring(cfg config.Config, log *slog.Logger) (*secretbox.Keyring, error) {
	if cfg.MFAEncryptionKeys != "" {
		raw, err := secretbox.Parse(cfg.MFAEncryptionKeys)
		if err != nil {
			return nil, fmt.Errorf("MFA_ENCRYPTION_KEYS: %w", err)
		}
		return secretbox.New(raw...)
	}
	if cfg.Production() {
		return nil, errors.New("MFA_ENCRYPTION_KEYS must be set in production")
	}
	k := keyed.Derive([]byte(cfg.ServerSecret), "mfa secret encryption")
	log.Warn("no MFA_ENCRYPTION_KEYS: TOTP secrets are sealed with a key derived from SERVER_SECRET; set MFA_ENCRYPTION_KEYS outside development")
	return secretbox.New(k)
}
