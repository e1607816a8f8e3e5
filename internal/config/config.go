// Package config parses gatehouse's configuration from the environment (and an
// optional .env file) once, into one validated struct.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"runtime"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"

	"github.com/gatehouse/gatehouse/internal/ratelimit"
	"github.com/gatehouse/gatehouse/internal/secretbox"
)

// What DATABASE_URL reaches (DATABASE_POOLER).
const (
	PoolerNone        = "none"
	PoolerTransaction = "transaction"
)

// Environments gatehouse knows. Production refuses unsafe settings.
const (
	EnvDevelopment = "development"
	EnvProduction  = "production"
	EnvTest        = "test"
)

// DevelopmentServerSecret is the SERVER_SECRET of development and tests. It
// is public, so production refuses it.
const DevelopmentServerSecret = "gatehouse development secret: never use it in production"

// Config is every setting of the service. Field tags name the environment
// variable and its default; .env.example lists the same.
type Config struct {
	Port   int    `env:"PORT" envDefault:"5500"`
	AppEnv string `env:"APP_ENV" envDefault:"development"`

	DatabaseURL    string `env:"DATABASE_URL"`
	DBMaxConns     int32  `env:"DB_MAX_CONNS" envDefault:"20"`
	RedisURL       string `env:"REDIS_URL"`
	RedisKeyPrefix string `env:"REDIS_KEY_PREFIX" envDefault:"gatehouse:"`
	// RedisSentinelMaster follows a Sentinel-managed master: REDIS_URL then
	// names a Sentinel. RedisCluster treats REDIS_URL as a Cluster seed node.
	RedisSentinelMaster string `env:"REDIS_SENTINEL_MASTER"`
	RedisCluster        bool   `env:"REDIS_CLUSTER" envDefault:"false"`

	// DatabasePooler says what DATABASE_URL reaches: PostgreSQL itself
	// (PoolerNone) or a pooler in transaction mode (PoolerTransaction:
	// PgBouncer's pool_mode = transaction), where a server connection is
	// shared between transactions, so nothing may outlive one: no named
	// prepared statements, no session settings, locks or LISTEN.
	DatabasePooler string `env:"DATABASE_POOLER" envDefault:"none"`
	// DatabaseDirectURL bypasses the pooler, for what needs a session of its
	// own: the migrations' advisory lock. Unset: DATABASE_URL (DirectURL).
	DatabaseDirectURL string `env:"DATABASE_DIRECT_URL"`

	PublicURL string `env:"PUBLIC_URL" envDefault:"http://localhost:5500"`

	MailDriver   string `env:"MAIL_DRIVER" envDefault:"file"`
	MailDir      string `env:"MAIL_DIR" envDefault:".dev/mail"`
	SMTPHost     string `env:"SMTP_HOST"`
	SMTPPort     int    `env:"SMTP_PORT" envDefault:"587"`
	SMTPUsername string `env:"SMTP_USERNAME"`
	SMTPPassword string `env:"SMTP_PASSWORD"`
	SMTPFrom     string `env:"SMTP_FROM" envDefault:"gatehouse <no-reply@localhost>"`
	SMTPTLS      string `env:"SMTP_TLS" envDefault:"starttls"`

	MailProductName      string        `env:"MAIL_PRODUCT_NAME" envDefault:"gatehouse"`
	MailWorkers          int           `env:"MAIL_WORKERS" envDefault:"4"`
	MailRetryBase        time.Duration `env:"MAIL_RETRY_BASE" envDefault:"1s"`
	MailRescueAfter      time.Duration `env:"MAIL_RESCUE_AFTER" envDefault:"10m"`
	ResetTokenTTL        time.Duration `env:"RESET_TOKEN_TTL" envDefault:"1h"`
	VerifyTokenTTL       time.Duration `env:"VERIFY_TOKEN_TTL" envDefault:"24h"`
	RequireVerifiedEmail bool          `env:"REQUIRE_VERIFIED_EMAIL" envDefault:"false"`
	// AuditRetention is how long audit events are kept (pruned hourly).
	AuditRetention time.Duration `env:"AUDIT_RETENTION" envDefault:"2160h"`

	TrustedProxiesRaw  []string `env:"TRUSTED_PROXIES"`
	CORSAllowedOrigins []string `env:"CORS_ALLOWED_ORIGINS"`
	// TrustedProxies is TRUSTED_PROXIES parsed: CIDRs, bare addresses as /32 or /128.
	TrustedProxies []netip.Prefix `env:"-"`

	LogLevel  string `env:"LOG_LEVEL" envDefault:"info"`
	LogFormat string `env:"LOG_FORMAT"`

	JWTSigningKeyFiles []string      `env:"JWT_SIGNING_KEY_FILES"`
	JWTIssuer          string        `env:"JWT_ISSUER"`
	JWTAudience        string        `env:"JWT_AUDIENCE" envDefault:"gatehouse"`
	AccessTokenTTL     time.Duration `env:"ACCESS_TOKEN_TTL" envDefault:"15m"`
	RefreshIdleTTL     time.Duration `env:"REFRESH_TOKEN_IDLE_TTL" envDefault:"168h"`
	RefreshAbsoluteTTL time.Duration `env:"REFRESH_TOKEN_ABSOLUTE_TTL" envDefault:"720h"`
	RefreshGrace       time.Duration `env:"REFRESH_TOKEN_GRACE" envDefault:"10s"`
	// RevocationPollInterval is how often each instance re-reads recent
	// revocations from PostgreSQL, on top of the instant Redis path.
	RevocationPollInterval time.Duration `env:"REVOCATION_POLL_INTERVAL" envDefault:"2s"`

	// ServerSecret keys the HMACs of rate-limit and lockout keys, cursors,
	// device tokens and refresh-token successors. Every instance needs the
	// same one; unset, a fixed development value is used (refused in production).
	ServerSecret string `env:"SERVER_SECRET"`

	// MFAEncryptionKeys seal TOTP secrets at rest (AES-256-GCM): a
	// comma-separated list of base64 32-byte keys; the first seals, all open
	// (rotation: add the new key first, run `gatehouse mfa rekey`, then drop
	// the old one). Unset outside production: a key derived from
	// SERVER_SECRET, with a warning.
	MFAEncryptionKeys string `env:"MFA_ENCRYPTION_KEYS"`
	// MFARequiredRoles: the permissions of these roles count only in a
	// session authenticated with a second factor.
	MFARequiredRoles []string `env:"MFA_REQUIRED_ROLES"`

	PasswordMinLength int    `env:"PASSWORD_MIN_LENGTH" envDefault:"15"`
	Argon2MemoryKiB   uint32 `env:"ARGON2_MEMORY_KIB" envDefault:"19456"`
	Argon2Time        uint32 `env:"ARGON2_TIME" envDefault:"2"`
	// HashConcurrency bounds the argon2id hashes computed at once (0: one per
	// CPU); HashSlots says how many that makes.
	HashConcurrency int `env:"PASSWORD_HASH_CONCURRENCY" envDefault:"0"`
	// HashLowPriority computes the hashes on threads of a lower OS priority
	// (Linux), so that a login storm slows logins rather than other requests.
	HashLowPriority bool `env:"PASSWORD_HASH_LOW_PRIORITY" envDefault:"true"`

	// RateLimits overrides limits: "login-ip=30/1m,register-account=5/1h".
	RateLimits    ratelimit.Policies `env:"-"`
	RateLimitsRaw string             `env:"RATE_LIMITS"`

	// PprofAddr, when set, serves Go's profiler there (a loopback address).
	PprofAddr string `env:"PPROF_ADDR"`

	// MetricsEnabled counts requests and serves the Prometheus metrics:
	// on a listener of their own at MetricsAddr when it is set, else at
	// /metrics on the main port, behind MetricsToken (without one, to
	// loopback clients only; refused in production).
	MetricsEnabled bool   `env:"METRICS_ENABLED" envDefault:"true"`
	MetricsAddr    string `env:"METRICS_ADDR"`
	MetricsToken   string `env:"METRICS_TOKEN"`

	// Traces are exported over OTLP/HTTP when an endpoint is set; the other
	// standard OTEL_* variables are read by the OpenTelemetry SDK from the
	// process environment.
	OTLPEndpoint       string `env:"OTEL_EXPORTER_OTLP_ENDPOINT"`
	OTLPTracesEndpoint string `env:"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"`
	OTLPProtocol       string `env:"OTEL_EXPORTER_OTLP_PROTOCOL"`
	OTLPTracesProtocol string `env:"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"`
	OTelSDKDisabled    bool   `env:"OTEL_SDK_DISABLED" envDefault:"false"`

	BodyLimitBytes  int64         `env:"BODY_LIMIT_BYTES" envDefault:"1048576"`
	ShutdownTimeout time.Duration `env:"SHUTDOWN_TIMEOUT" envDefault:"20s"`
}

// Parse reads the configuration from environ (os.Environ() form) and
// validates it. It never reads the process environment itself, so tests can
// pass their own.
func Parse(environ map[string]string) (Config, error) {
	var c Config
	if err := env.ParseWithOptions(&c, env.Options{Environment: environ}); err != nil {
		return Config{}, fmt.Errorf("parse environment: %w", err)
	}
	if c.JWTIssuer == "" {
		c.JWTIssuer = c.PublicURL
	}
	if c.LogFormat == "" {
		c.LogFormat = "text"
		if c.AppEnv == EnvProduction {
			c.LogFormat = "json"
		}
	}
	if err := c.validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// parsePrefix accepts a CIDR or a bare address (taken as a single host).
func parsePrefix(v string) (netip.Prefix, error) {
	v = strings.TrimSpace(v)
	if !strings.Contains(v, "/") {
		a, err := netip.ParseAddr(v)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is neither an address nor a CIDR", v)
		}
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(v)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not a CIDR", v)
	}
	return p.Masked(), nil
}

func (c *Config) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	c.RateLimits = ratelimit.Default
	if err := c.RateLimits.Parse(c.RateLimitsRaw); err != nil {
		bad("RATE_LIMITS: %v", err)
	}
	c.TrustedProxies = nil
	for _, v := range c.TrustedProxiesRaw {
		p, err := parsePrefix(v)
		if err != nil {
			bad("TRUSTED_PROXIES: %v", err)
			continue
		}
		c.TrustedProxies = append(c.TrustedProxies, p)
	}

	switch c.AppEnv {
	case EnvDevelopment, EnvProduction, EnvTest:
	default:
		bad("APP_ENV must be development, production or test, not %q", c.AppEnv)
	}
	if c.Port < 1 || c.Port > 65535 {
		bad("PORT must be between 1 and 65535, not %d", c.Port)
	}
	if c.DBMaxConns < 1 {
		bad("DB_MAX_CONNS must be at least 1")
	}
	switch c.DatabasePooler {
	case PoolerNone, PoolerTransaction:
	default:
		bad("DATABASE_POOLER must be none or transaction, not %q", c.DatabasePooler)
	}
	if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("PUBLIC_URL must be an absolute http(s) URL, not %q", c.PublicURL)
	}
	switch c.MailDriver {
	case "file":
		if c.MailDir == "" {
			bad("MAIL_DIR must be set when MAIL_DRIVER=file")
		}
	case "smtp":
		if c.SMTPHost == "" {
			bad("SMTP_HOST must be set when MAIL_DRIVER=smtp")
		}
	default:
		bad("MAIL_DRIVER must be file or smtp, not %q", c.MailDriver)
	}
	switch c.SMTPTLS {
	case "none", "starttls", "tls":
	default:
		bad("SMTP_TLS must be none, starttls or tls, not %q", c.SMTPTLS)
	}
	if c.SMTPPort < 1 || c.SMTPPort > 65535 {
		bad("SMTP_PORT must be between 1 and 65535, not %d", c.SMTPPort)
	}
	if _, err := ParseLogLevel(c.LogLevel); err != nil {
		bad("LOG_LEVEL: %v", err)
	}
	switch c.LogFormat {
	case "json", "text":
	default:
		bad("LOG_FORMAT must be json or text, not %q", c.LogFormat)
	}
	if c.ServerSecret == "" {
		c.ServerSecret = DevelopmentServerSecret
	} else if len(c.ServerSecret) < 32 {
		bad("SERVER_SECRET must be at least 32 characters (e.g. `openssl rand -base64 32`)")
	}
	if c.MFAEncryptionKeys != "" {
		if _, err := secretbox.Parse(c.MFAEncryptionKeys); err != nil {
			bad("MFA_ENCRYPTION_KEYS: %v", err)
		}
	}
	if c.PasswordMinLength < 8 {
		bad("PASSWORD_MIN_LENGTH must be at least 8 (NIST SP 800-63B), not %d", c.PasswordMinLength)
	}
	if c.Argon2MemoryKiB < 1024 || c.Argon2Time < 1 {
		bad("ARGON2_MEMORY_KIB must be at least 1024 and ARGON2_TIME at least 1")
	}
	if c.HashConcurrency < 0 {
		bad("PASSWORD_HASH_CONCURRENCY must not be negative")
	}
	if c.AccessTokenTTL < time.Minute || c.AccessTokenTTL > time.Hour {
		bad("ACCESS_TOKEN_TTL must be between 1m and 1h, not %s", c.AccessTokenTTL)
	}
	if c.RefreshIdleTTL <= 0 || c.RefreshAbsoluteTTL < c.RefreshIdleTTL {
		bad("REFRESH_TOKEN_IDLE_TTL must be positive and at most REFRESH_TOKEN_ABSOLUTE_TTL")
	}
	if c.RevocationPollInterval < 100*time.Millisecond || c.RevocationPollInterval > time.Minute {
		bad("REVOCATION_POLL_INTERVAL must be between 100ms and 1m, not %s", c.RevocationPollInterval)
	}
	if c.RefreshGrace < 0 || c.RefreshGrace > time.Minute {
		bad("REFRESH_TOKEN_GRACE must be between 0 and 1m, not %s", c.RefreshGrace)
	}
	if c.MailWorkers < 0 || c.MailRetryBase <= 0 || c.MailRescueAfter < 2*time.Second {
		bad("MAIL_WORKERS must be 0 or more, MAIL_RETRY_BASE positive and MAIL_RESCUE_AFTER at least 2s")
	}
	if c.ResetTokenTTL < time.Minute || c.ResetTokenTTL > 24*time.Hour || c.VerifyTokenTTL < time.Minute || c.VerifyTokenTTL > 7*24*time.Hour {
		bad("RESET_TOKEN_TTL must be within 1m..24h and VERIFY_TOKEN_TTL within 1m..168h")
	}
	if c.PprofAddr != "" {
		host, _, err := net.SplitHostPort(c.PprofAddr)
		if a, perr := netip.ParseAddr(host); err != nil || (host != "localhost" && (perr != nil || !a.IsLoopback())) {
			bad("PPROF_ADDR must be a loopback address such as 127.0.0.1:6060, not %q", c.PprofAddr)
		}
	}
	if c.MetricsAddr != "" {
		if _, port, err := net.SplitHostPort(c.MetricsAddr); err != nil || port == "" {
			bad("METRICS_ADDR must be host:port such as 127.0.0.1:9090 or :9090, not %q", c.MetricsAddr)
		}
	}
	if c.MetricsToken != "" && len(c.MetricsToken) < 16 {
		bad("METRICS_TOKEN must be at least 16 characters (e.g. `openssl rand -base64 24`)")
	}
	for name, p := range map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": c.OTLPProtocol, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": c.OTLPTracesProtocol} {
		if p != "" && p != "http/protobuf" {
			bad("%s=%s is not supported: gatehouse exports traces over OTLP/HTTP (http/protobuf)", name, p)
		}
	}
	if c.AuditRetention < time.Hour {
		bad("AUDIT_RETENTION must be at least 1h, not %s", c.AuditRetention)
	}
	if c.BodyLimitBytes < 1024 {
		bad("BODY_LIMIT_BYTES must be at least 1024")
	}
	if c.ShutdownTimeout <= 0 {
		bad("SHUTDOWN_TIMEOUT must be positive")
	}
	if c.AppEnv == EnvProduction {
		errs = append(errs, c.productionErrors()...)
	}
	if len(errs) > 0 {
		return fmt.Errorf("invalid configuration:\n  %w", joinLines(errs))
	}
	return nil
}

// productionErrors lists the settings that are fine on a laptop and unsafe in
// production.
func (c *Config) productionErrors() []error {
	var errs []error
	if c.DatabaseURL == "" {
		errs = append(errs, errors.New("DATABASE_URL must be set in production (no private database is started there)"))
	}
	if c.RedisURL == "" {
		errs = append(errs, errors.New("REDIS_URL must be set in production: revocations and rate limits are shared through Redis"))
	}
	if len(c.JWTSigningKeyFiles) == 0 {
		errs = append(errs, errors.New("JWT_SIGNING_KEY_FILES must be set in production: ephemeral signing keys would log everyone out on restart and differ between instances"))
	}
	if l, err := ParseLogLevel(c.LogLevel); err == nil && l < slog.LevelInfo {
		errs = append(errs, errors.New("LOG_LEVEL=debug is refused in production"))
	}
	for _, p := range c.TrustedProxies {
		if p.Bits() == 0 {
			errs = append(errs, fmt.Errorf("TRUSTED_PROXIES=%s trusts every peer: anyone could choose their client address", p))
		}
	}
	for _, o := range c.CORSAllowedOrigins {
		if o == "*" {
			errs = append(errs, errors.New("CORS_ALLOWED_ORIGINS=* is refused in production: list the origins of your web clients"))
		}
	}
	if c.MailDriver != "smtp" {
		errs = append(errs, errors.New("MAIL_DRIVER must be smtp in production: the file driver only writes mails to disk"))
	}
	if u, err := url.Parse(c.PublicURL); err == nil && (u.Scheme != "https" || isLocalHost(u.Hostname())) {
		errs = append(errs, fmt.Errorf("PUBLIC_URL must be a public https URL in production, not %q (links in mails are built from it)", c.PublicURL))
	}
	if c.MFAEncryptionKeys == "" {
		errs = append(errs, errors.New("MFA_ENCRYPTION_KEYS must be set in production (`openssl rand -base64 32`): TOTP secrets are encrypted at rest with it"))
	}
	if c.ServerSecret == DevelopmentServerSecret {
		errs = append(errs, errors.New("SERVER_SECRET must be set in production (at least 32 random characters, the same on every instance): with the public development value anyone could forge device tokens and cursors"))
	}
	if c.SMTPTLS == "none" {
		errs = append(errs, errors.New("SMTP_TLS=none is refused in production: credentials and reset links would travel in clear text"))
	}
	if c.Argon2MemoryKiB < 19456 || c.Argon2Time < 2 {
		errs = append(errs, errors.New("ARGON2_MEMORY_KIB below 19456 or ARGON2_TIME below 2 is refused in production (OWASP minimum for argon2id)"))
	}
	if c.MetricsEnabled && c.MetricsAddr == "" && c.MetricsToken == "" {
		errs = append(errs, errors.New("METRICS_ADDR or METRICS_TOKEN must be set in production when METRICS_ENABLED=true: /metrics on the main port needs a bearer token (or serve it on a listener of its own, or set METRICS_ENABLED=false)"))
	}
	return errs
}

func isLocalHost(h string) bool {
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	a, err := netip.ParseAddr(h)
	return err == nil && a.IsLoopback()
}

// ParseLogLevel maps LOG_LEVEL to a slog level.
func ParseLogLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("must be debug, info, warn or error, not %q", s)
}

func joinLines(errs []error) error {
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return errors.New(strings.Join(msgs, "\n  "))
}

// Addr is the listen address.
func (c *Config) Addr() string { return fmt.Sprintf(":%d", c.Port) }

// TracingEnabled reports whether traces are exported (an OTLP endpoint is
// set and the SDK is not disabled).
func (c *Config) TracingEnabled() bool {
	return !c.OTelSDKDisabled && (c.OTLPEndpoint != "" || c.OTLPTracesEndpoint != "")
}

// BehindTransactionPooler reports whether DATABASE_URL goes through a pooler
// in transaction mode.
func (c *Config) BehindTransactionPooler() bool { return c.DatabasePooler == PoolerTransaction }

// DirectURL is the connection that bypasses any pooler: DATABASE_DIRECT_URL,
// else DATABASE_URL.
func (c *Config) DirectURL() string {
	if c.DatabaseDirectURL != "" {
		return c.DatabaseDirectURL
	}
	return c.DatabaseURL
}

// Production reports whether unsafe shortcuts are forbidden.
func (c *Config) Production() bool { return c.AppEnv == EnvProduction }

// HashSlots is the number of argon2id hashes computed at once:
// PASSWORD_HASH_CONCURRENCY, or one per CPU.
func (c *Config) HashSlots() int {
	if c.HashConcurrency > 0 {
		return c.HashConcurrency
	}
	return runtime.NumCPU()
}

// NeedServices says which of the service URLs a command needs (PostgreSQL,
// and Redis when redis) are not set.
func (c Config) NeedServices(redis bool) error {
	var missing []string
	if c.DatabaseURL == "" {
		missing = append(missing, "DATABASE_URL")
	}
	if redis && c.RedisURL == "" {
		missing = append(missing, "REDIS_URL")
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("%s not set: `make run` starts a private PostgreSQL and Redis and sets them, or point them at your own",
		strings.Join(missing, " and "))
}
