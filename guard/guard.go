package guard

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apikeyd/apikeyd/apikey"
	"github.com/apikeyd/apikeyd/client"
)

// Defaults of Options.
const (
	DefaultCacheSize = 10000
	DefaultTimeout   = 5 * time.Second
	DefaultRealm     = "api"
)

// maxKeyLen bounds a presented key: longer ones are refused without asking
// apikeyd (its keys are far shorter).
const maxKeyLen = 512

// Options configure a Guard.
type Options struct {
	// Environment, when set, is the environment every key must be bound
	// to; keys of another environment, or of none, are refused.
	Environment string
	// CacheTTL is how long a positive verdict is reused without asking
	// apikeyd again; 0 (the default) asks every time. See the package
	// documentation for what caching trades.
	CacheTTL time.Duration
	// CacheSize bounds the number of cached verdicts (default 10000).
	CacheSize int
	// Timeout bounds each verification (default 5s); past it the request
	// gets 503.
	Timeout time.Duration
	// Realm is the realm of WWW-Authenticate (default "api").
	Realm string
	// Logger receives the reasons for 503 answers; nil means
	// slog.Default().
	Logger *slog.Logger
	// ClientIP returns the address a request comes from. The guard sends it
	// to apikeyd as client_ip, so that a key with an IP allowlist (SPEC §9)
	// is judged by where it is used from. nil means the request's peer
	// address (RemoteAddr). Behind a reverse proxy, give one that reads the
	// address your proxy sets; otherwise every allowlisted key is judged by
	// the proxy's own address.
	ClientIP func(r *http.Request) netip.Addr
}

// Guard verifies the bearer keys of requests with apikeyd.
type Guard struct {
	c       *client.Client
	env     string
	timeout time.Duration
	realm   string
	log     *slog.Logger
	cache   *cache
	now     func() time.Time
	from    func(r *http.Request) netip.Addr
}

// New returns a Guard verifying keys through c. It panics when
// o.Environment is not a valid environment ID, a programming error.
func New(c *client.Client, o Options) *Guard {
	if o.Environment != "" && !apikey.ValidIdentifier(o.Environment) {
		panic(fmt.Sprintf("guard: invalid environment %q", o.Environment))
	}
	g := &Guard{c: c, env: o.Environment, timeout: o.Timeout, realm: o.Realm, log: o.Logger, now: time.Now, from: o.ClientIP}
	if g.from == nil {
		g.from = peerAddr
	}
	if g.timeout <= 0 {
		g.timeout = DefaultTimeout
	}
	if g.realm == "" {
		g.realm = DefaultRealm
	}
	if g.log == nil {
		g.log = slog.Default()
	}
	if o.CacheTTL > 0 {
		size := o.CacheSize
		if size <= 0 {
			size = DefaultCacheSize
		}
		g.cache = newCache(o.CacheTTL, size)
	}
	return g
}

// Identity is who a verified key belongs to.
type Identity struct {
	KeyID         string
	ProjectID     string
	EnvironmentID string // "" for a key bound to no environment
	Name          string
	Scopes        []string
	// ExpiresAt is when the key stops working (its expiry, or the end of
	// its grace period after a rotation); zero when never.
	ExpiresAt time.Time
}

// HasScope reports whether the key holds scope, wildcards included ("*",
// "orders:*"): for handlers that decide finer than their route.
func (id *Identity) HasScope(scope string) bool {
	return apikey.ScopesCover(id.Scopes, []string{scope})
}

type identityKey struct{}

// IdentityFrom returns the identity Require put in a request's context.
func IdentityFrom(ctx context.Context) (*Identity, bool) {
	id, ok := ctx.Value(identityKey{}).(*Identity)
	return id, ok
}

// Require returns middleware that lets a request through only with a key
// that apikeyd finds valid with every one of scopes (and the guard's
// environment). The handler finds the key's Identity in the request's
// context. It panics when a scope is not a valid scope, a programming
// error.
func (g *Guard) Require(scopes ...string) func(http.Handler) http.Handler {
	for _, s := range scopes {
		if !apikey.ValidScope(s) {
			panic(fmt.Sprintf("guard: invalid scope %q", s))
		}
	}
	scopes = slices.Clone(scopes)
	// The requirement is part of the cache key: a key verified for one
	// route is not thereby verified for another.
	req := g.env + "\x00" + strings.Join(scopes, "\x00")
	challenge := "Bearer realm=" + quote(g.realm)
	invalid := challenge + `, error="invalid_token"`
	insufficient := challenge + `, error="insufficient_scope", scope=` + quote(strings.Join(scopes, " "))
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			key, present := bearer(r.Header.Get("Authorization"))
			if !present {
				deny(w, http.StatusUnauthorized, challenge, "an API key is required: Authorization: Bearer <key>")
				return
			}
			if len(key) > maxKeyLen || strings.ContainsFunc(key, func(c rune) bool { return c <= ' ' || c >= 0x7f }) {
				deny(w, http.StatusUnauthorized, invalid, "the API key is not valid")
				return
			}
			id, status, v := g.check(r.Context(), key, scopes, req, g.from(r))
			switch status {
			case http.StatusOK:
				next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), identityKey{}, id)))
			case http.StatusTooManyRequests:
				tooMany(w, v, g.now())
			case http.StatusForbidden:
				deny(w, http.StatusForbidden, insufficient, "the API key lacks a required scope")
			case http.StatusServiceUnavailable:
				deny(w, http.StatusServiceUnavailable, "", "API keys cannot be verified right now; retry later")
			default:
				deny(w, http.StatusUnauthorized, invalid, "the API key is not valid")
			}
		})
	}
}

// check decides a key: 200 with its identity, 401, 403, 429 (with the
// verdict) or 503.
func (g *Guard) check(ctx context.Context, key string, scopes []string, req string, from netip.Addr) (*Identity, int, *client.Verdict) {
	var ck cacheKey
	now := g.now()
	if g.cache != nil {
		ck = cacheKey{hash: sha256.Sum256([]byte(key)), req: req, from: from}
		if id, ok := g.cache.get(ck, now); ok {
			return id, http.StatusOK, nil
		}
	}
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	p := client.VerifyParams{Key: key, Scopes: scopes, EnvironmentID: g.env}
	if from.IsValid() {
		p.ClientIP = from.String()
	}
	v, err := g.c.Verify(ctx, p)
	if err != nil {
		if !errors.Is(err, context.Canceled) { // not the caller hanging up
			g.log.ErrorContext(ctx, "guard: cannot verify API keys with apikeyd", "err", err)
		}
		return nil, http.StatusServiceUnavailable, nil
	}
	// The domain's codes, of which the client's are a tested copy.
	switch apikey.VerifyCode(v.Code) {
	case apikey.CodeValid:
	case apikey.CodeInsufficientScope:
		return nil, http.StatusForbidden, nil
	case apikey.CodeRateLimited, apikey.CodeUsageExceeded:
		return nil, http.StatusTooManyRequests, v
	default:
		return nil, http.StatusUnauthorized, nil
	}
	id := &Identity{KeyID: v.KeyID, ProjectID: v.ProjectID, Name: v.Name, Scopes: v.Scopes}
	if v.EnvironmentID != nil {
		id.EnvironmentID = *v.EnvironmentID
	}
	for _, t := range []*time.Time{v.ExpiresAt, v.GraceExpiresAt} {
		if t != nil && (id.ExpiresAt.IsZero() || t.Before(id.ExpiresAt)) {
			id.ExpiresAt = *t
		}
	}
	// A metered key's verdict is never reused: every request must count
	// against its limits and credits.
	if g.cache != nil && v.RateLimits == nil && v.Credits == nil && v.Owner == nil {
		g.cache.put(ck, id, now)
	}
	return id, http.StatusOK, v
}

// tooMany answers a RATE_LIMITED or USAGE_EXCEEDED verdict: 429
// problem+json; for RATE_LIMITED with Retry-After (when the first
// exhausted limit frees a request) and the RateLimit-Policy and RateLimit
// fields of draft-ietf-httpapi-ratelimit-headers (every limit of the key,
// and of its owner as "owner:<name>": quota q and window w in seconds;
// remaining r and seconds t until it grows).
func tooMany(w http.ResponseWriter, v *client.Verdict, now time.Time) {
	if v.Code == client.CodeUsageExceeded {
		deny(w, http.StatusTooManyRequests, "", "the API key has no credits left for this request")
		return
	}
	var policy, state []string
	retry := int64(0)
	add := func(prefix string, ls []client.VerifyLimit) {
		for _, l := range ls {
			name := quote(prefix + l.Name)
			policy = append(policy, fmt.Sprintf("%s;q=%d;w=%d", name, l.Limit, (l.DurationMS+999)/1000))
			t := int64(0)
			if l.ResetAt != nil {
				t = max(0, int64(math.Ceil(l.ResetAt.Sub(now).Seconds())))
			}
			state = append(state, fmt.Sprintf("%s;r=%d;t=%d", name, l.Remaining, t))
			if l.Remaining == 0 && (retry == 0 || t < retry) {
				retry = max(t, 1)
			}
		}
	}
	add("", v.RateLimits)
	if v.Owner != nil {
		add("owner:", v.Owner.RateLimits)
	}
	h := w.Header()
	if len(policy) > 0 {
		h.Set("RateLimit-Policy", strings.Join(policy, ", "))
		h.Set("RateLimit", strings.Join(state, ", "))
	}
	h.Set("Retry-After", strconv.FormatInt(max(retry, 1), 10))
	deny(w, http.StatusTooManyRequests, "", "the API key's rate limit is reached; retry later")
}

// peerAddr is the address of the request's peer, the invalid Addr when
// RemoteAddr cannot be read; IPv4-mapped addresses become IPv4.
func peerAddr(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

// bearer returns the token of an "Authorization: Bearer <token>" header
// and whether there was one.
func bearer(h string) (string, bool) {
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// quote returns s as an RFC 9110 quoted-string.
func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// problem is the RFC 9457 body of a refusal.
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
}

var problemTypes = map[int]string{
	http.StatusUnauthorized:       "urn:apikeyd:problem:unauthenticated",
	http.StatusForbidden:          "urn:apikeyd:problem:forbidden",
	http.StatusServiceUnavailable: "urn:apikeyd:problem:unavailable",
	http.StatusTooManyRequests:    "urn:apikeyd:problem:rate-limited",
}

func deny(w http.ResponseWriter, status int, challenge, detail string) {
	h := w.Header()
	if challenge != "" {
		h.Set("WWW-Authenticate", challenge)
	}
	if status == http.StatusServiceUnavailable {
		h.Set("Retry-After", "1")
	}
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(problem{Type: problemTypes[status], Title: http.StatusText(status), Status: status, Detail: detail})
}

// cacheKey identifies a positive verdict: the SHA-256 of the key (never the
// key) and the route's requirement.
type cacheKey struct {
	hash [sha256.Size]byte
	req  string
	// from is part of the key because a verdict holds for the address it
	// was given for: an allowlisted key may be refused from elsewhere.
	from netip.Addr
}

type cacheEntry struct {
	id    *Identity
	until time.Time
}

// cache holds positive verdicts for a while; it is bounded in size.
type cache struct {
	ttl time.Duration
	max int

	mu sync.Mutex
	m  map[cacheKey]cacheEntry
}

func newCache(ttl time.Duration, max int) *cache {
	return &cache{ttl: ttl, max: max, m: make(map[cacheKey]cacheEntry)}
}

func (c *cache) get(k cacheKey, now time.Time) (*Identity, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k]
	if !ok {
		return nil, false
	}
	if !now.Before(e.until) {
		delete(c.m, k)
		return nil, false
	}
	return e.id, true
}

// put caches a verdict until the TTL ends, or the key stops working if
// that is sooner. When the cache is full, expired entries go first, then
// an arbitrary tenth of the rest.
func (c *cache) put(k cacheKey, id *Identity, now time.Time) {
	until := now.Add(c.ttl)
	if !id.ExpiresAt.IsZero() && id.ExpiresAt.Before(until) {
		until = id.ExpiresAt
	}
	if !now.Before(until) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[k]; !ok && len(c.m) >= c.max {
		for ek, e := range c.m {
			if !now.Before(e.until) {
				delete(c.m, ek)
			}
		}
		for ek := range c.m {
			if len(c.m) < c.max-c.max/10 {
				break
			}
			delete(c.m, ek)
		}
	}
	c.m[k] = cacheEntry{id: id, until: until}
}

// len returns the number of cached verdicts.
func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
