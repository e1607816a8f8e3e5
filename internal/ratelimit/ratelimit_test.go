package ratelimit

import (
	"net/netip"
	"testing"
	"time"
)

func TestClientKey_IPv6PerSlash64(t *testing.T) {
	a := ClientKey(netip.MustParseAddr("2001:db8:1:2:aaaa::1"))
	b := ClientKey(netip.MustParseAddr("2001:db8:1:2:bbbb::7"))
	c := ClientKey(netip.MustParseAddr("2001:db8:1:3::1"))
	if a != b || a == c || a != "2001:db8:1:2::/64" {
		t.Fatalf("%s %s %s", a, b, c)
	}
	if k := ClientKey(netip.MustParseAddr("::ffff:203.0.113.9")); k != "203.0.113.9" {
		t.Fatalf("IPv4-mapped: %s", k)
	}
}

func TestParse(t *testing.T) {
	p := Default
	if err := p.Parse("login-ip=5/30s, register-account=2/1h"); err != nil {
		t.Fatal(err)
	}
	if p.LoginIP != (Limit{"login-ip", 5, 30 * time.Second}) || p.RegisterAccount.Rate != 2 {
		t.Fatalf("%+v", p)
	}
	for _, bad := range []string{"login-ip", "nope=1/1m", "login-ip=0/1m", "login-ip=5/soon"} {
		if err := p.Parse(bad); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
	if got := p.LoginIP.PolicyHeader(); got != `"login-ip";q=5;w=30` {
		t.Fatal(got)
	}
	if got := (Decision{Remaining: 0, ResetAfter: 1500 * time.Millisecond}).Header(p.LoginIP); got != `"login-ip";r=0;t=2` {
		t.Fatal(got)
	}
}
