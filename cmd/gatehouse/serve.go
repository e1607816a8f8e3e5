package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel"

	"github.com/gatehouse/gatehouse/internal/app"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/httpapi"
	"github.com/gatehouse/gatehouse/internal/logging"
	"github.com/gatehouse/gatehouse/internal/pgstore"
	"github.com/gatehouse/gatehouse/internal/redisstore"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// serve wires the service together and runs it until ctx ends, then drains
// in-flight requests for up to SHUTDOWN_TIMEOUT.
func serve(ctx context.Context, cfg config.Config, logOut io.Writer) error {
	level, _ := config.ParseLogLevel(cfg.LogLevel)
	log := logging.New(logOut, cfg.LogFormat, level)

	if err := cfg.NeedServices(true); err != nil {
		return err
	}
	tracing, err := newTracing(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := tracing.Shutdown(sctx); err != nil {
			log.Warn("trace exporter did not flush", "error", err)
		}
	}()
	pool, rdb, closeAll, err := connect(ctx, cfg, cfg.DBMaxConns, func(c *pgxpool.Config) { c.ConnConfig.Tracer = tracing.PgxTracer(c.ConnConfig.Tracer) })
	if err != nil {
		return err
	}
	defer closeAll()

	a, err := app.New(cfg, log, pool, rdb, app.Options{Version: version, Tracing: tracing})
	if err != nil {
		return err
	}

	// Handlers run under baseCtx, cancelled when draining takes too long, so
	// their database and Redis calls stop and the pools can close.
	baseCtx, cancelBase := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelBase()
	var dr drain
	srv := &http.Server{
		Handler:           dr.wrap(a.Handler),
		ConnState:         dr.connState,
		BaseContext:       func(net.Listener) context.Context { return baseCtx },
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	setMemoryLimit(cfg, log)
	setMaxProcs(cfg, log)
	if cfg.PprofAddr != "" {
		go servePprof(cfg.PprofAddr, log)
	}
	if cfg.MetricsAddr != "" && a.MetricsHandler != nil {
		stop, err := serveMetrics(ctx, cfg, a.MetricsHandler, log)
		if err != nil {
			return err
		}
		defer stop()
	}
	if err := a.Start(ctx); err != nil {
		return fmt.Errorf("start mail workers: %w", err)
	}
	tcp, err := (&net.ListenConfig{}).Listen(ctx, "tcp", cfg.Addr())
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	ln := &closeOnce{Listener: tcp}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("gatehouse serving", "addr", cfg.Addr(), "env", cfg.AppEnv, "version", version, "docs", cfg.PublicURL+"/docs/")

	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down: draining in-flight requests", "timeout", cfg.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	dr.start(ln, min(idleDrain, cfg.ShutdownTimeout/2))
	if err := srv.Shutdown(sctx); err != nil {
		cancelBase()
		_ = srv.Close()
		return fmt.Errorf("shutdown: in-flight requests did not finish within %s: %w", cfg.ShutdownTimeout, err)
	}
	// Mails being sent finish; those not started stay in the outbox for
	// another instance or the next start.
	if err := a.Stop(sctx); err != nil {
		log.Warn("mail workers did not stop cleanly", "error", err)
	}
	log.Info("stopped")
	return nil
}

// idleDrain is how long a stopping instance keeps its open connections
// before closing the idle ones: time for a proxy to send one more request on
// each (answered, then closed) or to find the port closed and go elsewhere.
const idleDrain = time.Second

// drain stops an instance without failing a request a reverse proxy in front
// could not retry. A proxy resends a request elsewhere when the connection
// fails before it was sent (refused), never a POST it has sent: so the
// instance must not close a connection under a request on its way, as
// closing the listener late (connections waiting to be accepted are reset)
// or closing kept-alive idle connections at once (the proxy may be writing
// to one) would. In order: the listener closes, so new connections are
// refused and the proxy marks the instance failed (nginx: max_fails); every
// answer says "Connection: close", so each kept-alive connection carries at
// most one more request; after idleDrain (sooner once no connection is
// open) http.Server.Shutdown closes those still idle and waits for the
// requests in flight.
type drain struct {
	draining atomic.Bool
	open     atomic.Int64
}

func (d *drain) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d.draining.Load() {
			w.Header().Set("Connection", "close") // net/http closes it after the answer
		}
		h.ServeHTTP(w, r)
	})
}

func (d *drain) connState(_ net.Conn, s http.ConnState) {
	switch s {
	case http.StateNew:
		d.open.Add(1)
	case http.StateClosed, http.StateHijacked:
		d.open.Add(-1)
	case http.StateActive, http.StateIdle: // still open
	}
}

func (d *drain) start(ln net.Listener, wait time.Duration) {
	d.draining.Store(true)
	_ = ln.Close()
	for deadline := time.Now().Add(wait); time.Now().Before(deadline) && d.open.Load() > 0; {
		time.Sleep(20 * time.Millisecond)
	}
}

// closeOnce is a listener closed by the drain first, then again by
// http.Server.Shutdown, which must not take the second close for a failure.
type closeOnce struct {
	net.Listener
	once sync.Once
	err  error
}

func (c *closeOnce) Close() error {
	c.once.Do(func() { c.err = c.Listener.Close() })
	return c.err
}

// serveMetrics serves /metrics on METRICS_ADDR, a listener of its own that
// a firewall or network policy can open to Prometheus alone; with
// METRICS_TOKEN set, the token is asked there too. stop closes it.
func serveMetrics(ctx context.Context, cfg config.Config, h http.Handler, log *slog.Logger) (stop func(), err error) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		if cfg.MetricsToken != "" {
			if !httpapi.BearerMatches(r.Header.Get("Authorization"), cfg.MetricsToken) {
				w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse metrics"`)
				http.Error(w, "send Authorization: Bearer <METRICS_TOKEN>", http.StatusUnauthorized)
				return
			}
		}
		h.ServeHTTP(w, r)
	})
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", cfg.MetricsAddr)
	if err != nil {
		return nil, fmt.Errorf("listen on METRICS_ADDR: %w", err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: 60 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("metrics listener stopped", "error", err)
		}
	}()
	log.Info("metrics serving", "addr", ln.Addr().String())
	return func() { _ = srv.Close() }, nil
}

// newTracing starts the trace exporter when an OTLP endpoint is set (nil:
// tracing off). The SDK's own errors (an unreachable collector) go to the
// log, at most one line a minute.
func newTracing(ctx context.Context, cfg config.Config, log *slog.Logger) (*telemetry.Tracing, error) {
	if !cfg.TracingEnabled() {
		return nil, nil
	}
	otel.SetErrorHandler(&otelErrors{log: log})
	t, err := telemetry.NewTracing(ctx, version, nil)
	if err != nil {
		return nil, err
	}
	log.Info("tracing to OTLP", "endpoint", cmp.Or(cfg.OTLPTracesEndpoint, cfg.OTLPEndpoint))
	return t, nil
}

// otelErrors logs the OpenTelemetry SDK's errors, sparingly: a collector
// that is down fails every export.
type otelErrors struct {
	log  *slog.Logger
	mu   sync.Mutex
	last time.Time
}

func (h *otelErrors) Handle(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if time.Since(h.last) < time.Minute {
		return
	}
	h.last = time.Now()
	h.log.Warn("tracing", "error", err)
}

// servePprof serves Go's profiler on a loopback address, for operators
// chasing a performance problem.
func servePprof(addr string, log *slog.Logger) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	log.Info("profiler serving", "addr", addr)
	if err := srv.ListenAndServe(); err != nil {
		log.Warn("profiler stopped", "error", err)
	}
}

// setMemoryLimit gives the garbage collector a soft memory limit, unless the
// operator set GOMEMLIMIT: each hashing slot keeps ARGON2_MEMORY_KIB of
// argon2id work memory for good, and with the default GC pacing (the heap
// may double its live size) that live memory lets garbage grow by as much
// again before a collection. The default leaves room for every slot's memory
// and a quarter more, plus 48 MiB for everything else (about 96 MiB with 2
// CPUs); `make bench` measured a peak RSS of about 120 MiB with it and
// 150-153 MiB without.
func setMemoryLimit(cfg config.Config, log *slog.Logger) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	limit := int64(48<<20) + 5*int64(cfg.HashSlots())*int64(cfg.Argon2MemoryKiB)<<10/4
	debug.SetMemoryLimit(limit)
	log.Debug("soft memory limit set", "bytes", limit)
}

// setMaxProcs lets Go run goroutines on as many threads at once as there
// are CPUs plus hashing slots, unless the operator set GOMAXPROCS: a slot
// hashing on its low-priority thread holds one of them for the whole hash,
// and with one per CPU a login storm would leave other requests none, however
// readily the kernel gives their threads the CPU. (Setting it stops the
// runtime from following a change of the container's CPU limit.)
func setMaxProcs(cfg config.Config, log *slog.Logger) {
	if os.Getenv("GOMAXPROCS") != "" || !cfg.HashLowPriority {
		return
	}
	n := runtime.GOMAXPROCS(0) + cfg.HashSlots()
	runtime.GOMAXPROCS(n)
	log.Debug("GOMAXPROCS raised by the hashing slots", "procs", n)
}

// via says what DATABASE_URL reaches.
func via(cfg config.Config) pgstore.Via {
	if cfg.BehindTransactionPooler() {
		return pgstore.TransactionPooler
	}
	return pgstore.Direct
}

// connect opens the PostgreSQL pool (at most conns connections) and the Redis
// client of the configuration; closeAll closes both.
func connect(ctx context.Context, cfg config.Config, conns int32, adjust ...func(*pgxpool.Config)) (*pgxpool.Pool, redis.UniversalClient, func(), error) {
	pool, err := pgstore.Connect(ctx, cfg.DatabaseURL, conns, via(cfg), adjust...)
	if err != nil {
		return nil, nil, nil, err
	}
	rdb, err := redisstore.Connect(redisstore.Options{URL: cfg.RedisURL, SentinelMaster: cfg.RedisSentinelMaster, Cluster: cfg.RedisCluster})
	if err != nil {
		pool.Close()
		return nil, nil, nil, err
	}
	return pool, rdb, func() { _ = rdb.Close(); pool.Close() }, nil
}
