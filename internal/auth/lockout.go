package auth

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/gatehouse/gatehouse/internal/password"
)

// LockoutPolicy bounds wrong password guesses in one bucket: after
// FreeFailures consecutive failures each further check waits
// 2^(n-FreeFailures) s (at most MaxDelay) after the last failure; after
// BlockAfter failures checks wait CoolDown after the last one. AlertAfter
// failures tell the owner, once per episode.
type LockoutPolicy struct {
	FreeFailures int
	MaxDelay     time.Duration
	BlockAfter   int
	CoolDown     time.Duration
	AlertAfter   int
}

// Bucket is one failure counter. Account is the keyed hash of an email (or
// of a user id, for re-checks of a signed-in user); Device is empty for the
// bucket that every unknown client of the account shares, else the id of a
// known device.
type Bucket struct {
	Account string
	Device  string
}

// CheckResult is how a password check that Begin let through ended.
type CheckResult string

// Results of a password check.
const (
	CheckFailed    CheckResult = "f" // counted as a failure
	CheckSucceeded CheckResult = "s" // clears the bucket; never a failure
	CheckAbandoned CheckResult = "x" // an error: neither
)

// Outcome is what End recorded.
type Outcome struct {
	Failures int
	// Alert is true for the one failure of an episode that reached AlertAfter.
	Alert bool
}

// Lockout counts failed password checks per bucket, shared by all instances.
// Begin decides and, when the check may go ahead, registers it as in flight
// under id; checks in flight take the free failures left, so parallel
// guesses are bounded like sequential ones, while a right password is never
// counted: End releases it. busy means every free failure is taken by checks
// in flight: retry shortly.
type Lockout interface {
	Begin(ctx context.Context, b Bucket, id string, now time.Time, p LockoutPolicy) (wait time.Duration, busy bool, err error)
	End(ctx context.Context, b Bucket, id string, r CheckResult, now time.Time, p LockoutPolicy) (Outcome, error)
	Reset(ctx context.Context, b Bucket) error
	// First reports whether key was not seen in the last ttl, and marks it
	// seen (one audit event per lockout episode, not one per refusal).
	First(ctx context.Context, key string, ttl time.Duration) (bool, error)
}

// LockedError refuses a password check of a bucket under lockout.
type LockedError struct{ RetryAfter time.Duration }

func (e *LockedError) Error() string { return fmt.Sprintf("account locked for %s", e.RetryAfter) }

// busyWait is how long a check waits for the checks in flight of its bucket
// before it is refused (they take milliseconds each).
const busyWait = 5 * time.Second

// check is a password check in flight in a bucket.
type check struct {
	bucket Bucket
	id     string
	policy LockoutPolicy
}

// begin lets a password check of bucket b start, waiting while every free
// failure is held by checks in flight. A nil check means the counters could
// not be reached: the check goes ahead unthrottled (logged), since locking
// everyone out would be worse; the bound on concurrent hashes remains.
func (s *Service) begin(ctx context.Context, b Bucket, p LockoutPolicy) (*check, error) {
	if s.lockout == nil {
		return nil, nil
	}
	c := &check{bucket: b, id: uuid.NewString(), policy: p}
	deadline := s.now().Add(busyWait)
	pause := 10 * time.Millisecond
	for {
		wait, busy, err := s.lockout.Begin(ctx, b, c.id, s.now(), p)
		if err != nil {
			s.log.WarnContext(ctx, "login lockout not enforced", "error", err)
			return nil, nil
		}
		if !busy {
			if wait > 0 {
				return nil, &LockedError{RetryAfter: wait}
			}
			return c, nil
		}
		if s.now().After(deadline) {
			// Not a lockout: the account's checks are queued up (a login
			// storm). Answered like the hasher's own overload, 503.
			return nil, password.ErrBusy
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(pause):
		}
		pause = min(2*pause, 200*time.Millisecond)
	}
}

// end records how a check ended; it reports whether the owner should now
// be told that someone is guessing.
func (s *Service) end(ctx context.Context, c *check, r CheckResult) bool {
	if c == nil {
		return false
	}
	o, err := s.lockout.End(context.WithoutCancel(ctx), c.bucket, c.id, r, s.now(), c.policy)
	if err != nil {
		s.log.WarnContext(ctx, "login failure not counted", "error", err)
		return false
	}
	return o.Alert
}

// noAlert is a policy's AlertAfter that never alerts.
const noAlert = 1 << 30
