package redisstore_test

import (
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/redisstore"
)

// lockoutKey is the failure hash of b; its checks in flight are at
// lockoutKey(b)+":p".
func lockoutKey(b auth.Bucket) string {
	if b.Device == "" {
		return prefix + "lo:{" + b.Account + "}:a"
	}
	return prefix + "lo:{" + b.Account + "}:d:" + b.Device
}

// lockoutRig runs checks of one bucket under one policy.
type lockoutRig struct {
	t  *testing.T
	c  redis.UniversalClient
	l  *redisstore.Lockout
	b  auth.Bucket
	p  auth.LockoutPolicy
	id int
}

func newLockoutRig(t *testing.T, c redis.UniversalClient, b auth.Bucket, p auth.LockoutPolicy) *lockoutRig {
	return &lockoutRig{t: t, c: c, l: redisstore.NewLockout(c, prefix), b: b, p: p}
}

// begin starts a check and returns its id and the store's answer.
func (r *lockoutRig) begin() (string, time.Duration, bool) {
	r.t.Helper()
	r.id++
	id := strconv.Itoa(r.id)
	wait, busy, err := r.l.Begin(r.t.Context(), r.b, id, time.Now(), r.p)
	if err != nil {
		r.t.Fatalf("Begin: %v", err)
	}
	return id, wait, busy
}

// mustBegin starts a check that must be let through at once.
func (r *lockoutRig) mustBegin() string {
	r.t.Helper()
	id, wait, busy := r.begin()
	if wait != 0 || busy {
		r.t.Fatalf("Begin: wait %v busy %v, want go ahead", wait, busy)
	}
	return id
}

func (r *lockoutRig) end(id string, res auth.CheckResult) auth.Outcome {
	r.t.Helper()
	o, err := r.l.End(r.t.Context(), r.b, id, res, time.Now(), r.p)
	if err != nil {
		r.t.Fatalf("End: %v", err)
	}
	return o
}

// fail counts one failed check.
func (r *lockoutRig) fail() auth.Outcome {
	r.t.Helper()
	return r.end(r.mustBegin(), auth.CheckFailed)
}

// rewind moves the last failure d into the past, as if d had elapsed (the
// scripts read Redis's clock, which a test cannot move).
func (r *lockoutRig) rewind(d time.Duration) {
	r.t.Helper()
	ctx := r.t.Context()
	last, err := r.c.HGet(ctx, lockoutKey(r.b), "last").Int64()
	if err != nil {
		r.t.Fatalf("read last failure: %v", err)
	}
	if err := r.c.HSet(ctx, lockoutKey(r.b), "last", last-d.Milliseconds()).Err(); err != nil {
		r.t.Fatal(err)
	}
}

// wait returns how long a check must wait now (failing on busy).
func (r *lockoutRig) wait() time.Duration {
	r.t.Helper()
	_, wait, busy := r.begin()
	if busy {
		r.t.Fatal("Begin: busy, want a decision")
	}
	return wait
}

func TestLockout_DelaysDoubleUpToTheMaximumThenBlockForTheCoolDown(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, c redis.UniversalClient) {
		p := auth.LockoutPolicy{FreeFailures: 2, MaxDelay: 3 * time.Second, BlockAfter: 5, CoolDown: 48 * time.Hour, AlertAfter: 100}
		r := newLockoutRig(t, c, auth.Bucket{Account: "acct"}, p)
		for range p.FreeFailures {
			r.fail()
		}
		// Each failure past the free ones doubles the wait after the last
		// failure (1 s, 2 s, then MaxDelay); a check before it is refused.
		steps := []struct {
			failures int
			lo, hi   time.Duration
		}{
			{2, 0, time.Second},
			{3, time.Second, 2 * time.Second},
			{4, 2 * time.Second, 3 * time.Second}, // 4 s capped at MaxDelay
		}
		for _, s := range steps {
			within(t, fmt.Sprintf("wait after %d failures", s.failures), r.wait(), s.lo, s.hi)
			// Below the block, a day without failures forgets them.
			within(t, fmt.Sprintf("PTTL after %d failures", s.failures), pttl(t, c, lockoutKey(r.b)), 23*time.Hour, 24*time.Hour)
			r.rewind(s.hi)
			if o := r.fail(); o.Failures != s.failures+1 {
				t.Fatalf("failure counted as %d, want %d", o.Failures, s.failures+1)
			}
		}
		// BlockAfter failures: every check waits the cool-down, and the bucket
		// lives as long.
		within(t, "wait when blocked", r.wait(), 47*time.Hour, 48*time.Hour)
		within(t, "PTTL when blocked", pttl(t, c, lockoutKey(r.b)), 47*time.Hour, 48*time.Hour)
		r.rewind(47 * time.Hour)
		within(t, "wait near the end of the cool-down", r.wait(), 0, time.Hour)
		r.rewind(time.Hour)
		// The cool-down over, the bucket starts afresh.
		if o := r.fail(); o.Failures != 1 {
			t.Fatalf("first failure after the cool-down counted as %d, want 1", o.Failures)
		}
	})
}

func TestLockout_DeviceBucketIsKeptForTheDevicesCoolDownOnceBlocked(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, c redis.UniversalClient) {
		p := auth.DefaultSettings.DeviceLockout
		r := newLockoutRig(t, c, auth.Bucket{Account: "acct", Device: "dev"}, p)
		for n := 1; n < p.BlockAfter; n++ {
			r.fail()
			within(t, fmt.Sprintf("PTTL after %d failures", n), pttl(t, c, lockoutKey(r.b)), 23*time.Hour, 24*time.Hour)
		}
		r.fail()
		// A device that reached its block stays untrusted as long as its token
		// is honoured, not for a day.
		within(t, "PTTL when blocked", pttl(t, c, lockoutKey(r.b)), p.CoolDown-time.Hour, p.CoolDown)
		within(t, "wait when blocked", r.wait(), p.CoolDown-time.Hour, p.CoolDown)
	})
}

func TestLockout_ChecksInFlightTakeTheFreeFailures(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, c redis.UniversalClient) {
		p := auth.LockoutPolicy{FreeFailures: 2, MaxDelay: time.Minute, BlockAfter: 100, CoolDown: time.Hour, AlertAfter: 100}
		r := newLockoutRig(t, c, auth.Bucket{Account: "acct"}, p)
		a, b := r.mustBegin(), r.mustBegin()
		if _, wait, busy := r.begin(); !busy || wait != 0 {
			t.Fatalf("third check with two in flight and two free failures: wait %v busy %v, want busy", wait, busy)
		}
		// An abandoned check (an error) is no failure and frees its slot.
		if o := r.end(a, auth.CheckAbandoned); o.Failures != 0 {
			t.Fatalf("abandoned check counted: %+v", o)
		}
		c3 := r.mustBegin()
		r.end(b, auth.CheckFailed)
		if o := r.end(c3, auth.CheckFailed); o.Failures != 2 {
			t.Fatalf("failures %d, want 2", o.Failures)
		}
		// Past the delay, one check at a time: the next may be a failure too.
		r.rewind(time.Minute)
		d := r.mustBegin()
		if _, _, busy := r.begin(); !busy {
			t.Fatal("a second check past the free failures went ahead while one is in flight")
		}
		// A right password clears the bucket.
		if o := r.end(d, auth.CheckSucceeded); o.Failures != 0 {
			t.Fatalf("after success: %+v", o)
		}
		if ks := keys(t, c); len(ks) != 0 {
			t.Fatalf("a cleared bucket left keys: %v", ks)
		}
		// A check in flight whose instance crashed is forgotten after 30 s.
		stale := time.Now().Add(-31 * time.Second).UnixMilli()
		for _, id := range []string{"crashed-1", "crashed-2"} {
			if err := c.ZAdd(t.Context(), lockoutKey(r.b)+":p", redis.Z{Score: float64(stale), Member: id}).Err(); err != nil {
				t.Fatal(err)
			}
		}
		r.mustBegin()
	})
}

func TestLockout_AlertsOncePerEpisode(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, c redis.UniversalClient) {
		p := auth.LockoutPolicy{FreeFailures: 100, MaxDelay: time.Minute, BlockAfter: 100, CoolDown: time.Hour, AlertAfter: 3}
		r := newLockoutRig(t, c, auth.Bucket{Account: "acct"}, p)
		for episode := range 2 {
			var alerts []int
			for n := 1; n <= 5; n++ {
				if r.fail().Alert {
					alerts = append(alerts, n)
				}
			}
			if !slices.Equal(alerts, []int{3}) {
				t.Fatalf("episode %d: alerts at failures %v, want [3]", episode, alerts)
			}
			r.end(r.mustBegin(), auth.CheckSucceeded) // the owner signs in: a new episode
		}
	})
}

func TestLockout_BucketsAreIndependentAndReset(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, c redis.UniversalClient) {
		p := auth.LockoutPolicy{FreeFailures: 1, MaxDelay: time.Minute, BlockAfter: 100, CoolDown: time.Hour, AlertAfter: 100}
		locked := newLockoutRig(t, c, auth.Bucket{Account: "a"}, p)
		locked.fail()
		if locked.wait() == 0 {
			t.Fatal("the bucket is not locked")
		}
		for _, b := range []auth.Bucket{{Account: "a", Device: "d"}, {Account: "b"}, {Account: "b", Device: "d"}} {
			t.Run(b.Account+"/"+b.Device, func(t *testing.T) {
				newLockoutRig(t, c, b, p).mustBegin()
			})
		}
		if err := locked.l.Reset(t.Context(), locked.b); err != nil {
			t.Fatal(err)
		}
		locked.mustBegin()
	})
}

func TestLockout_BothKeysOfABucketShareTheAccountsClusterSlot(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, c redis.UniversalClient) {
		p := auth.LockoutPolicy{FreeFailures: 5, MaxDelay: time.Minute, BlockAfter: 100, CoolDown: time.Hour, AlertAfter: 100}
		const acct = "0123abcd"
		for _, dev := range []string{"", "dev-1"} {
			r := newLockoutRig(t, c, auth.Bucket{Account: acct, Device: dev}, p)
			r.fail()
			r.mustBegin() // left in flight: its sorted set stays
		}
		ks := keys(t, c)
		slices.Sort(ks)
		want := []string{prefix + "lo:{" + acct + "}:a", prefix + "lo:{" + acct + "}:a:p", prefix + "lo:{" + acct + "}:d:dev-1", prefix + "lo:{" + acct + "}:d:dev-1:p"}
		if !slices.Equal(ks, want) {
			t.Fatalf("keys %v, want %v", ks, want)
		}
		// A script may only touch keys of one slot in Redis Cluster; the slot
		// is that of the hash tag.
		for _, k := range ks {
			if tag := hashTag(k); tag != acct {
				t.Errorf("key %s hashes on %q, want the account %q", k, tag, acct)
			}
		}
	})
}
