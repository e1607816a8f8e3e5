// Package ratelimit names the limits gatehouse applies per client address and
// per account, and the decision a limiter returns. The counting itself is in
// Redis (redisstore), shared by every instance.
package ratelimit

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Limit allows Rate requests per Period for one key.
type Limit struct {
	Name   string
	Rate   int
	Period time.Duration
}

// Decision is the limiter's answer for one request.
type Decision struct {
	Allowed    bool
	Remaining  int
	RetryAfter time.Duration // when refused: how long until one request is allowed
	ResetAfter time.Duration // how long until the full quota is back
}

// Limiter counts requests against limits.
type Limiter interface {
	Allow(ctx context.Context, l Limit, key string) (Decision, error)
	// First reports whether key was not seen in the last ttl, and marks it
	// seen: at most one audit event per limit key and window.
	First(ctx context.Context, key string, ttl time.Duration) (bool, error)
}

// Policies are the limits of the rate-limited operations.
type Policies struct {
	LoginIP, LoginAccount       Limit
	RegisterIP, RegisterAccount Limit
	RefreshIP                   Limit
	ForgotIP, ForgotAccount     Limit
	ResendIP, ResendAccount     Limit
	// Email changes: per account asking, and per address asked for.
	EmailChangeAccount, EmailChangeAddress Limit
}

// Default are the limits in force unless configured otherwise.
var Default = Policies{
	LoginIP:         Limit{"login-ip", 30, time.Minute},
	LoginAccount:    Limit{"login-account", 10, time.Minute},
	RegisterIP:      Limit{"register-ip", 20, time.Hour},
	RegisterAccount: Limit{"register-account", 5, time.Hour},
	RefreshIP:       Limit{"refresh-ip", 60, time.Minute},
	ForgotIP:        Limit{"forgot-ip", 20, time.Hour},
	ForgotAccount:   Limit{"forgot-account", 5, time.Hour},
	ResendIP:        Limit{"resend-ip", 20, time.Hour},
	ResendAccount:   Limit{"resend-account", 5, time.Hour},

	EmailChangeAccount: Limit{"email-change-account", 5, time.Hour},
	EmailChangeAddress: Limit{"email-change-address", 3, time.Hour},
}

// ClientKey is the limiter key of a client address. An IPv6 host usually
// holds a whole /64, so IPv6 clients are counted per /64, not per address.
func ClientKey(ip netip.Addr) string {
	if ip.Is6() && !ip.Is4In6() {
		p, err := ip.Prefix(64)
		if err == nil {
			return p.String()
		}
	}
	return ip.Unmap().String()
}

// PolicyHeader is the RateLimit-Policy value of l (IETF httpapi draft).
func (l Limit) PolicyHeader() string {
	return fmt.Sprintf("%q;q=%d;w=%d", l.Name, l.Rate, int(l.Period.Seconds()))
}

// Header is the RateLimit value of a decision under l.
func (d Decision) Header(l Limit) string {
	return fmt.Sprintf("%q;r=%d;t=%d", l.Name, d.Remaining, seconds(d.ResetAfter))
}

// RetryAfterSeconds is the Retry-After value, at least 1.
func (d Decision) RetryAfterSeconds() int { return max(seconds(d.RetryAfter), 1) }

func seconds(d time.Duration) int { return int((d + time.Second - 1) / time.Second) }

// Set replaces the limit with l's name; it reports whether the name exists.
func (p *Policies) Set(l Limit) bool {
	for _, f := range p.all() {
		if f.Name == l.Name {
			*f = l
			return true
		}
	}
	return false
}

func (p *Policies) all() []*Limit {
	return []*Limit{
		&p.LoginIP, &p.LoginAccount, &p.RegisterIP, &p.RegisterAccount, &p.RefreshIP,
		&p.ForgotIP, &p.ForgotAccount, &p.ResendIP, &p.ResendAccount, &p.EmailChangeAccount, &p.EmailChangeAddress,
	}
}

// Parse reads overrides such as "login-ip=30/1m,register-account=5/1h".
func (p *Policies) Parse(spec string) error {
	for _, item := range strings.Split(spec, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, rest, ok := strings.Cut(item, "=")
		rate, period, ok2 := strings.Cut(rest, "/")
		n, err := strconv.Atoi(rate)
		d, err2 := time.ParseDuration(period)
		if !ok || !ok2 || err != nil || err2 != nil || n < 1 || d <= 0 {
			return fmt.Errorf("rate limit %q: want name=count/duration, e.g. login-ip=30/1m", item)
		}
		if !p.Set(Limit{Name: strings.TrimSpace(name), Rate: n, Period: d}) {
			return fmt.Errorf("rate limit %q: unknown limit %q", item, name)
		}
	}
	return nil
}
