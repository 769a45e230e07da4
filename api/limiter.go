package api

import (
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apikeyd/apikeyd/observe"
)

// failureLimiter slows down clients that fail authentication again and
// again. Each client address has a bucket of burst attempts that refills one
// per refill interval; only failures take from it. While an address's bucket
// is empty, every authenticated request from it gets 429 without its token
// being looked at — the right token included, so guessing cannot go on at
// full speed. A failure that finds the bucket empty (failures racing each
// other) is answered 429 too, and so is a success that finds it empty once
// decided: whatever a guess is, its answer says nothing while the address
// is blocked, so no more than burst failures a client can learn from ever
// run at once, however many requests it sends concurrently. Successes take
// nothing: many concurrent requests with a good token from one address (a
// platform's backend calling verify) are never limited. Addresses are
// tracked separately: one's failures never change another's count. IPv6
// clients are grouped by /64, the smallest block one client usually holds.
type failureLimiter struct {
	burst  float64
	refill time.Duration
	now    func() time.Time

	// tracked is the number of buckets, so that while no client has failed
	// lately a request costs no lock, no clock read and no map lookup.
	tracked atomic.Int64

	mu        sync.Mutex
	buckets   map[netip.Addr]bucket
	lastSweep time.Time
}

type bucket struct {
	tokens float64
	at     time.Time
}

// maxTracked bounds the limiter's memory; beyond it, refilled entries are
// dropped first, then an arbitrary one.
const maxTracked = 100_000

func newFailureLimiter(burst int, refill time.Duration, now func() time.Time) *failureLimiter {
	return &failureLimiter{burst: float64(burst), refill: refill, now: now, buckets: make(map[netip.Addr]bucket)}
}

// active reports whether any address has failed recently; while it is
// false, blocked would report false for every address.
func (l *failureLimiter) active() bool { return l.tracked.Load() > 0 }

// refilled returns addr's bucket as it is at now.
func (l *failureLimiter) refilled(addr netip.Addr, now time.Time) (bucket, bool) {
	b, ok := l.buckets[addr]
	if !ok {
		return bucket{tokens: l.burst, at: now}, false
	}
	b.tokens = min(b.tokens+float64(now.Sub(b.at))/float64(l.refill), l.burst)
	b.at = now
	return b, true
}

// blocked reports whether addr has no attempt left, and how long to wait
// if so. It takes nothing.
func (l *failureLimiter) blocked(addr netip.Addr) (time.Duration, bool) {
	if !l.active() {
		return 0, false
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweep(now)
	b, ok := l.refilled(addr, now)
	switch {
	case !ok:
		return 0, false
	case b.tokens >= l.burst:
		l.forget(addr)
		return 0, false
	case b.tokens < 1:
		return time.Duration((1 - b.tokens) * float64(l.refill)), true
	}
	return 0, false
}

// fail takes one attempt from addr's bucket for a failed authentication.
// When none was left it takes nothing and reports how long to wait.
func (l *failureLimiter) fail(addr netip.Addr) (time.Duration, bool) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.refilled(addr, now)
	if b.tokens < 1 {
		l.buckets[addr] = b
		return time.Duration((1 - b.tokens) * float64(l.refill)), false
	}
	b.tokens--
	if !ok {
		if len(l.buckets) >= maxTracked {
			l.evict(now)
		}
		l.tracked.Add(1)
	}
	l.buckets[addr] = b
	return 0, true
}

func (l *failureLimiter) forget(addr netip.Addr) {
	delete(l.buckets, addr)
	l.tracked.Add(-1)
}

// sweep drops the buckets that have refilled, at most once per time a
// bucket takes to refill from empty, so that the limiter goes back to its
// lock-free path once failures stop.
func (l *failureLimiter) sweep(now time.Time) {
	if now.Sub(l.lastSweep) < time.Duration(l.burst*float64(l.refill)) {
		return
	}
	l.lastSweep = now
	for addr := range l.buckets {
		if b, _ := l.refilled(addr, now); b.tokens >= l.burst {
			l.forget(addr)
		}
	}
}

// evict drops one entry, preferring one that has refilled.
func (l *failureLimiter) evict(now time.Time) {
	var victim netip.Addr
	for addr := range l.buckets {
		victim = addr
		if b, _ := l.refilled(addr, now); b.tokens >= l.burst {
			break
		}
	}
	l.forget(victim)
}

// clientAddr decides which bucket of the failure limiter a request counts
// against: its client's address (see observe.ClientIP), IPv6 grouped by /64.
func clientAddr(r *http.Request, trusted []netip.Prefix) netip.Addr {
	addr := observe.ClientIP(r, trusted)
	if addr.Is6() {
		p, _ := addr.Prefix(64)
		return p.Addr()
	}
	return addr
}

// AuthFailures is the API's failure limiter as other handlers of the same
// server use it — the dashboard's sign-in — so that a client's failed
// authentications count in one place whichever door they knock on.
type AuthFailures struct{ a *API }

// AuthFailures returns the API's failure limiter for other handlers.
func (a *API) AuthFailures() AuthFailures { return AuthFailures{a} }

// Blocked reports whether r's client has no attempt left, and how long it
// must wait if so.
func (f AuthFailures) Blocked(r *http.Request) (time.Duration, bool) {
	if !f.a.limiter.active() {
		return 0, false
	}
	return f.a.limiter.blocked(clientAddr(r, f.a.trusted))
}

// Fail counts a failed authentication of r's client. ok is false when the
// client had no attempt left; wait then says how long it must wait.
func (f AuthFailures) Fail(r *http.Request) (wait time.Duration, ok bool) {
	return f.a.limiter.fail(clientAddr(r, f.a.trusted))
}
