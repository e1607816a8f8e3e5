// Package telemetry holds what an operator watches: the Prometheus metrics of
// one App (on a registry of its own, never the process-wide default) and the
// OpenTelemetry traces. The domain and HTTP packages report through small
// interfaces of their own (auth.Observer, httpapi.Metrics); this package
// implements them, so only it and the assembly import Prometheus and the
// OpenTelemetry SDK.
//
// No label holds an email, a user id or a path: labels take values from
// fixed sets (operation ids of the contract, limit names, outcomes, layers).
package telemetry

import (
	"context"
	"net/http"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

const namespace = "gatehouse"

// Login outcomes, the values of gatehouse_login_attempts_total's outcome label.
const (
	LoginSuccess     = "success"
	LoginInvalid     = "invalid_credentials"
	LoginLocked      = "locked"
	LoginRateLimited = "rate_limited"
	LoginUnverified  = "email_not_verified"
	LoginMFARequired = "mfa_required"
	LoginError       = "error"
)

// Revocation layers, the values of gatehouse_revocation_checks_total's layer label.
const (
	LayerLocal    = "local"
	LayerRedis    = "redis"
	LayerPostgres = "postgres"
)

// Metrics is the registry of one App and the metrics the service reports.
// The zero of a method's argument set is never a label value: every label
// comes from a fixed set.
type Metrics struct {
	reg *prometheus.Registry

	requests         *prometheus.CounterVec
	duration         *prometheus.HistogramVec
	logins           *prometheus.CounterVec
	rateLimited      *prometheus.CounterVec
	refreshReuse     prometheus.Counter
	revocationChecks *prometheus.CounterVec
	unannounced      prometheus.Counter
	hashWait         prometheus.Histogram
	mailFailures     prometheus.Counter
}

// NewMetrics returns the metrics of one App on a fresh registry, with the Go
// runtime and process collectors and gatehouse_build_info.
func NewMetrics(version string) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		reg: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "http", Name: "requests_total",
			Help: "HTTP requests answered, by operation id of the contract (or docs, metrics, unmatched), method and status class.",
		}, []string{"operation", "method", "status_class"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: "http", Name: "request_duration_seconds",
			Help:    "Time from the first middleware to the end of the answer, by operation id, method and status class.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"operation", "method", "status_class"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "login_attempts_total",
			Help: "Password logins by outcome: success, invalid_credentials, locked, rate_limited, email_not_verified, mfa_required, error.",
		}, []string{"outcome"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "rate_limit_blocked_total",
			Help: "Requests refused (429) by a rate limit, by the limit's name.",
		}, []string{"limit"}),
		refreshReuse: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "refresh_token_reuse_detected_total",
			Help: "Refresh tokens presented again after their rotation and grace window: the session was revoked.",
		}),
		revocationChecks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "revocation_checks_total",
			Help: "Revocation checks of access tokens by the layer that answered: local, redis, postgres.",
		}, []string{"layer"}),
		unannounced: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "revocation_announcements_failed_total",
			Help: "Revocations recorded in PostgreSQL whose Redis marker and announcement failed: other instances learn them from PostgreSQL (their poll, or the reload after their feed is lost).",
		}),
		hashWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: "password", Name: "hash_wait_seconds",
			Help:    "Time a password hash or verification waited for a free hashing slot.",
			Buckets: []float64{.0005, .001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}),
		mailFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "outbox", Name: "delivery_failures_total",
			Help: "Mail delivery attempts that failed and will be retried (or are discarded after the last attempt).",
		}),
	}
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace, Name: "build_info",
		Help:        "Always 1; the labels name the running build.",
		ConstLabels: prometheus.Labels{"version": version, "goversion": runtime.Version()},
	})
	build.Set(1)
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		build, m.requests, m.duration, m.logins, m.rateLimited, m.refreshReuse, m.revocationChecks, m.unannounced, m.hashWait, m.mailFailures,
	)
	// Series that alerts divide by exist from the start, at zero.
	for _, o := range []string{LoginSuccess, LoginInvalid, LoginLocked, LoginRateLimited, LoginUnverified, LoginMFARequired, LoginError} {
		m.logins.WithLabelValues(o)
	}
	for _, l := range []string{LayerLocal, LayerRedis, LayerPostgres} {
		m.revocationChecks.WithLabelValues(l)
	}
	return m
}

// Registry is the App's registry, for collectors of the assembly.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus exposition format. A
// collector that fails (the outbox count when PostgreSQL is down) leaves its
// metric out; the rest is still served.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorHandling:       promhttp.ContinueOnError,
		Registry:            m.reg, // promhttp_metric_handler_errors_total
		Timeout:             10 * time.Second,
		MaxRequestsInFlight: 4,
	})
}

// ObserveRequest counts one answered request. operation must come from a
// fixed set (an operation id, "docs", "metrics", "unmatched").
func (m *Metrics) ObserveRequest(operation, method string, status int, d time.Duration) {
	labels := []string{operation, normalMethod(method), statusClass(status)}
	m.requests.WithLabelValues(labels...).Inc()
	m.duration.WithLabelValues(labels...).Observe(d.Seconds())
}

// LoginOutcome counts one login by outcome (the Login* constants).
func (m *Metrics) LoginOutcome(outcome string) { m.logins.WithLabelValues(outcome).Inc() }

// RateLimitBlocked counts a request refused by the named limit.
func (m *Metrics) RateLimitBlocked(limit string) { m.rateLimited.WithLabelValues(limit).Inc() }

// RevocationUnannounced counts a revocation Redis would not take.
func (m *Metrics) RevocationUnannounced() { m.unannounced.Inc() }

// RegisterFeed exposes gatehouse_revocation_feed_current: 1 while current
// says the instance answers revocation checks from its own copy.
func (m *Metrics) RegisterFeed(current func() bool) error {
	return m.reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: namespace, Name: "revocation_feed_current",
		Help: "1 while this instance answers revocation checks from its own copy (subscribed to the announcements, loaded, heartbeat heard); 0 while it asks Redis or PostgreSQL per request.",
	}, func() float64 {
		if current() {
			return 1
		}
		return 0
	}))
}

// RefreshReuseDetected counts a refresh token reused after its rotation.
func (m *Metrics) RefreshReuseDetected() { m.refreshReuse.Inc() }

// RevocationChecked counts a revocation check answered by layer (the Layer*
// constants).
func (m *Metrics) RevocationChecked(layer string) { m.revocationChecks.WithLabelValues(layer).Inc() }

// ObserveHashWait records how long a hash waited for a hashing slot.
func (m *Metrics) ObserveHashWait(d time.Duration) { m.hashWait.Observe(d.Seconds()) }

// MailDeliveryFailed counts a failed delivery attempt of the outbox.
func (m *Metrics) MailDeliveryFailed() { m.mailFailures.Inc() }

// HashSlots is what the password hasher tells of its bounded slots, and
// the time a failed login is padded to.
type HashSlots interface {
	Slots() int
	Busy() int
	FailureFloor() time.Duration
}

// RegisterHashSlots exposes gatehouse_password_hash_slots,
// gatehouse_password_hash_slots_busy and
// gatehouse_login_failure_floor_seconds, read from s at each scrape.
func (m *Metrics) RegisterHashSlots(s HashSlots) error {
	return m.reg.Register(funcCollector{
		{
			prometheus.NewDesc(namespace+"_password_hash_slots", "Hashing slots: the most password hashes computed at once.", nil, nil),
			prometheus.GaugeValue, func() float64 { return float64(s.Slots()) },
		},
		{
			prometheus.NewDesc(namespace+"_password_hash_slots_busy", "Hashing slots computing a hash now.", nil, nil),
			prometheus.GaugeValue, func() float64 { return float64(s.Busy()) },
		},
		{
			prometheus.NewDesc(namespace+"_login_failure_floor_seconds",
				"The least time a failed login takes: the slowest imported password hash verified in this hour or the last (0: none).", nil, nil),
			prometheus.GaugeValue, func() float64 { return s.FailureFloor().Seconds() },
		},
	})
}

// RegisterOutbox exposes gatehouse_outbox_queued_mails, counted by queued at
// each scrape (within 2 s; the count is bounded by the query).
func (m *Metrics) RegisterOutbox(queued func(ctx context.Context) (int64, error)) error {
	return m.reg.Register(&countCollector{count: queued, desc: prometheus.NewDesc(namespace+"_outbox_queued_mails",
		"Mails waiting in the outbox (available, scheduled or waiting for a retry); counted up to 100000.", nil, nil)})
}

// RegisterLegacyHashes exposes gatehouse_legacy_password_hashes, counted by
// legacy at each scrape (within 2 s): the live accounts whose password hash
// is still in the format another system wrote (imported, not yet replaced
// by argon2id at a login).
func (m *Metrics) RegisterLegacyHashes(legacy func(ctx context.Context) (int64, error)) error {
	return m.reg.Register(&countCollector{count: legacy, desc: prometheus.NewDesc(namespace+"_legacy_password_hashes",
		"Live accounts whose password hash is an imported one not yet replaced by argon2id at a login; counted up to 10000000.", nil, nil)})
}

// countCollector is a gauge counted in PostgreSQL at each scrape.
type countCollector struct {
	count func(ctx context.Context) (int64, error)
	desc  *prometheus.Desc
}

func (c *countCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *countCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	n, err := c.count(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n))
}

// funcCollector reads each metric from a function at scrape time.
type funcCollector []funcMetric

type funcMetric struct {
	desc  *prometheus.Desc
	typ   prometheus.ValueType
	value func() float64
}

func (c funcCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, f := range c {
		ch <- f.desc
	}
}

func (c funcCollector) Collect(ch chan<- prometheus.Metric) {
	for _, f := range c {
		ch <- prometheus.MustNewConstMetric(f.desc, f.typ, f.value())
	}
}

// normalMethod keeps the label's values to the methods the API serves: a
// client choosing its method must not choose new series.
func normalMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return m
	}
	return "other"
}

// statusClasses are the classes' labels, made once rather than per request.
var statusClasses = [...]string{"1xx", "2xx", "3xx", "4xx", "5xx"}

func statusClass(status int) string {
	if status < 100 || status > 599 {
		return "other"
	}
	return statusClasses[status/100-1]
}
