package auth

import (
	"context"
	"sync"
	"time"

	"github.com/google/uuid"
)

// localRevocations is each instance's own copy of the recent revocations,
// polled from PostgreSQL. Redis propagates a revocation to every instance at
// once; this copy makes sure that whatever Redis loses or misses (a restart
// from an old snapshot, a failover, eviction, a write that did not reach it)
// is refused again within one poll interval.
type localRevocations struct {
	mu       sync.RWMutex
	sessions map[uuid.UUID]time.Time // session → when it was seen revoked
	users    map[uuid.UUID]userRevocation
	synced   time.Time // last successful poll
	since    time.Time // the poll's watermark
}

type userRevocation struct {
	version int64
	seen    time.Time
}

func newLocalRevocations() *localRevocations {
	return &localRevocations{sessions: map[uuid.UUID]time.Time{}, users: map[uuid.UUID]userRevocation{}}
}

// revoked reports whether the copy knows the token revoked, and whether the
// copy is fresh enough to be consulted at all.
func (l *localRevocations) revoked(sid, uid uuid.UUID, version int64, now time.Time, maxAge time.Duration) (revoked, fresh bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if now.Sub(l.synced) > maxAge {
		return false, false
	}
	if _, ok := l.sessions[sid]; ok {
		return true, true
	}
	if u, ok := l.users[uid]; ok && version < u.version {
		return true, true
	}
	return false, true
}

// overlap re-reads a margin before the watermark: a revocation whose
// transaction started before the last poll may commit after it.
const pollOverlap = time.Minute

// poll merges the revocations recorded since the last poll and forgets those
// older than keep.
func (s *Service) poll(ctx context.Context) error {
	l := s.local
	now := s.now()
	l.mu.RLock()
	since := l.since
	l.mu.RUnlock()
	if since.IsZero() || now.Sub(since) > s.cacheTTL {
		since = now.Add(-s.cacheTTL)
	} else {
		since = since.Add(-pollOverlap)
	}
	r, err := s.store.RevocationsSince(ctx, since)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, id := range r.Sessions {
		if _, ok := l.sessions[id]; !ok {
			l.sessions[id] = now
		}
	}
	for id, v := range r.Users {
		if cur, ok := l.users[id]; !ok || v > cur.version {
			l.users[id] = userRevocation{version: v, seen: now}
		}
	}
	for id, seen := range l.sessions {
		if now.Sub(seen) > s.cacheTTL {
			delete(l.sessions, id)
		}
	}
	for id, u := range l.users {
		if now.Sub(u.seen) > s.cacheTTL {
			delete(l.users, id)
		}
	}
	l.synced, l.since = now, now
	return nil
}

// Run keeps the local copy of recent revocations current until ctx ends.
func (s *Service) Run(ctx context.Context) {
	t := time.NewTicker(s.pollEvery)
	defer t.Stop()
	for {
		if err := s.poll(ctx); err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "poll revocations", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
