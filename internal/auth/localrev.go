package auth

import (
	"context"
	"sync"
	"time"

	"github.com/google/uuid"
)

// localRevocations is each instance's own copy of the recent revocations.
// Two sources keep it: the feed of revocations every instance announces
// through Redis (heard within milliseconds), and a poll of PostgreSQL, the
// safety net for whatever the feed loses.
//
// While the copy is current (subscribed to the feed, loaded from PostgreSQL
// after subscribing, and the subscription answered a heartbeat within
// feedStale), it holds every revocation of the last access-token lifetime,
// and a token it does not know revoked is live: the check needs no network
// round trip. Otherwise checks ask Redis, else PostgreSQL, per request.
type localRevocations struct {
	mu       sync.RWMutex
	sessions map[uuid.UUID]time.Time // session → when it was seen revoked
	users    map[uuid.UUID]userRevocation
	since    time.Time // the poll's watermark
	// loaded: subscribed to the feed, then loaded from PostgreSQL, and the
	// subscription not lost since.
	loaded bool
	heard  time.Time // the feed's last heartbeat answer
	// lost: the feed was lost, and the copy is not current again yet. The
	// Redis markers may then miss what the lost announcements carried (a
	// Redis that refuses writes loses both), so checks ask PostgreSQL.
	lost bool
}

// answer is what the copy can say of a token.
type answer int

const (
	unknown      answer = iota // not current: ask the Redis markers, else PostgreSQL
	askPostgres                // not current since the feed was lost: ask PostgreSQL
	liveToken                  // current, and the token is not revoked
	revokedToken               // known revoked, current or not
)

type userRevocation struct {
	version int64
	seen    time.Time
}

// feedStale is how long after its last heartbeat answer the feed is still
// trusted. The feed sends a heartbeat every few hundred milliseconds; a
// connection that died silently costs at most this long before checks go
// back to asking Redis and PostgreSQL.
const feedStale = time.Second

func newLocalRevocations() *localRevocations {
	return &localRevocations{sessions: map[uuid.UUID]time.Time{}, users: map[uuid.UUID]userRevocation{}}
}

// check says what the copy knows of a token.
func (l *localRevocations) check(sid, uid uuid.UUID, version int64, now time.Time) answer {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if _, ok := l.sessions[sid]; ok {
		return revokedToken
	}
	if u, ok := l.users[uid]; ok && version < u.version {
		return revokedToken
	}
	switch {
	case l.current(now):
		return liveToken
	case l.lost:
		return askPostgres
	}
	return unknown
}

func (l *localRevocations) current(now time.Time) bool {
	return l.loaded && now.Sub(l.heard) <= feedStale
}

// add records revocations; the caller holds the lock.
func (l *localRevocations) add(r Revocations, now time.Time) {
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
}

// record adds one revocation.
func (l *localRevocations) record(r Revocation, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if r.SessionID != uuid.Nil {
		l.add(Revocations{Sessions: []uuid.UUID{r.SessionID}}, now)
	}
	if r.UserID != uuid.Nil {
		l.add(Revocations{Users: map[uuid.UUID]int64{r.UserID: r.Version}}, now)
	}
}

// overlap re-reads a margin before the watermark: a revocation whose
// transaction started before the last poll may commit after it.
const pollOverlap = time.Minute

// poll merges the revocations recorded since the last poll, or all those of
// the last access-token lifetime when full, and forgets those older than
// that. It reports the time it started reading.
func (s *Service) poll(ctx context.Context, full bool) (time.Time, error) {
	l := s.local
	now := s.now()
	l.mu.RLock()
	since := l.since
	l.mu.RUnlock()
	if full || since.IsZero() || now.Sub(since) > s.cacheTTL {
		since = now.Add(-s.cacheTTL)
	} else {
		since = since.Add(-pollOverlap)
	}
	r, err := s.store.RevocationsSince(ctx, since)
	if err != nil {
		return now, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.add(r, now)
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
	l.since = now
	return now, nil
}

// Run keeps the local copy of recent revocations current until ctx ends:
// it follows the revocations other instances announce, and polls
// PostgreSQL for those the announcements lose.
func (s *Service) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { s.cache.Follow(ctx, &follower{s: s, ctx: ctx}) })
	defer wg.Wait()
	t := time.NewTicker(s.pollEvery)
	defer t.Stop()
	for {
		if _, err := s.poll(ctx, false); err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "poll revocations", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// FeedCurrent reports whether this instance answers revocation checks from
// its own copy (see localRevocations).
func (s *Service) FeedCurrent() bool {
	s.local.mu.RLock()
	defer s.local.mu.RUnlock()
	return s.local.current(s.now())
}

// follower applies what the feed reports to the local copy. A subscription
// (a first one, or again after a loss) is followed by a full load from
// PostgreSQL: what was announced while unsubscribed was recorded there
// first. Only then is the copy current.
type follower struct {
	s        *Service
	ctx      context.Context //nolint:containedctx // the feed's callbacks run under Run's context
	pending  bool            // subscribed, not yet loaded
	lastLoad time.Time
	// rewrite: this subscription follows a lost one. What broke it may have
	// been a failover whose promoted replica lacks the last markers while
	// it holds the epoch: they are written again after the load.
	rewrite bool
}

func (f *follower) Subscribed() {
	// A subscription renewed without a Lost first (a client that reconnects
	// by itself) may have missed announcements too.
	l := f.s.local
	l.mu.Lock()
	l.lost = l.lost || l.loaded
	l.loaded = false
	f.rewrite = f.rewrite || l.lost
	l.mu.Unlock()
	f.pending = true
	f.load()
}

// Alive retries a load that failed (PostgreSQL unreachable) at most once a
// second, and keeps the copy current.
func (f *follower) Alive() {
	if f.pending && f.s.now().Sub(f.lastLoad) >= time.Second {
		f.load()
	}
	l := f.s.local
	l.mu.Lock()
	l.heard = f.s.now()
	l.mu.Unlock()
}

func (f *follower) load() {
	f.lastLoad = f.s.now()
	started, err := f.s.poll(f.ctx, true)
	if err != nil {
		if f.ctx.Err() == nil {
			f.s.log.WarnContext(f.ctx, "load revocations after subscribing", "error", err)
		}
		return
	}
	f.pending = false
	l := f.s.local
	l.mu.Lock()
	l.loaded, l.heard, l.lost = true, started, false
	l.mu.Unlock()
	// Redis may have come back empty, or from a failover without the last
	// markers: they serve the checks made while a copy is not current, so
	// they are rebuilt now rather than at the first such check.
	rewrite := f.rewrite
	f.rewrite = false
	if st, err := f.s.cache.Check(f.ctx, uuid.Nil, uuid.Nil); rewrite || (err == nil && !st.Warm) {
		go f.s.rebuildCache()
	}
}

func (f *follower) Revoked(r Revocation) { f.s.local.record(r, f.s.now()) }

func (f *follower) Lost() {
	f.pending = false
	l := f.s.local
	l.mu.Lock()
	l.loaded, l.lost = false, true
	l.mu.Unlock()
}
