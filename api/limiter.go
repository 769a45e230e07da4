package api

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// failureLimiter slows down clients that fail authentication again and
// again. Each client address has a bucket of burst attempts that refills one
// per refill interval. Every authentication takes one from the bucket before
// the token is looked at, and a success gives it back, so only failures
// drain it — however many requests run at once. While the bucket is empty
// every authenticated request from that address gets 429, the right token
// included, so guessing cannot go on at full speed. Addresses are tracked
// separately: a success from one never changes another's count. IPv6
// clients are grouped by /64, the smallest block one client usually holds.
type failureLimiter struct {
	burst  float64
	refill time.Duration
	now    func() time.Time

	mu      sync.Mutex
	buckets map[netip.Addr]bucket
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

// refilled returns addr's bucket as it is at now.
func (l *failureLimiter) refilled(addr netip.Addr, now time.Time) bucket {
	b, ok := l.buckets[addr]
	if !ok {
		return bucket{tokens: l.burst, at: now}
	}
	b.tokens = min(b.tokens+float64(now.Sub(b.at))/float64(l.refill), l.burst)
	b.at = now
	return b
}

// acquire takes one attempt from addr's bucket. When none is left it
// reports how long to wait instead.
func (l *failureLimiter) acquire(addr netip.Addr) (time.Duration, bool) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.refilled(addr, now)
	if b.tokens < 1 {
		l.buckets[addr] = b
		return time.Duration((1 - b.tokens) * float64(l.refill)), false
	}
	b.tokens--
	if _, ok := l.buckets[addr]; !ok && len(l.buckets) >= maxTracked {
		l.evict(now)
	}
	l.buckets[addr] = b
	return 0, true
}

// release gives back the attempt of a successful authentication.
func (l *failureLimiter) release(addr netip.Addr) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.refilled(addr, now)
	b.tokens++
	if b.tokens >= l.burst {
		delete(l.buckets, addr)
		return
	}
	l.buckets[addr] = b
}

// evict drops one entry, preferring one that has refilled.
func (l *failureLimiter) evict(now time.Time) {
	var victim netip.Addr
	for addr := range l.buckets {
		victim = addr
		if l.refilled(addr, now).tokens >= l.burst {
			break
		}
	}
	delete(l.buckets, victim)
}

// clientAddr decides which bucket of the failure limiter a request counts
// against: its client's address (see clientIP), IPv6 grouped by /64.
func clientAddr(r *http.Request, trusted []netip.Prefix) netip.Addr {
	addr := clientIP(r, trusted)
	if addr.Is6() {
		p, _ := addr.Prefix(64)
		return p.Addr()
	}
	return addr
}

// clientIP decides the address a request comes from: the peer, or, when
// the peer is a trusted proxy, the last address in X-Forwarded-For that is
// not itself a trusted proxy. It is the invalid Addr when the peer address
// cannot be parsed.
func clientIP(r *http.Request, trusted []netip.Prefix) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	addr = addr.Unmap()
	if isTrusted(addr, trusted) {
		hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
		for i := len(hops) - 1; i >= 0; i-- {
			hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
			if err != nil {
				break
			}
			addr = hop.Unmap()
			if !isTrusted(addr, trusted) {
				break
			}
		}
	}
	return addr
}

func isTrusted(addr netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}
