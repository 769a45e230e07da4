package service

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/netip"
	"time"

	"github.com/apikeyd/apikeyd/apikey"
	"github.com/apikeyd/apikeyd/lastused"
	"github.com/apikeyd/apikeyd/seal"
	"github.com/apikeyd/apikeyd/usage"
	"github.com/apikeyd/apikeyd/webhook"
)

// Index answers "which key has this hash?" for verifications and bearer
// authentication. The store-backed index asks the store every time; the
// in-memory one answers from RAM and is told of every committed change.
type Index interface {
	// Lookup returns the record of the key whose plaintext hashes to h.
	// found is false when no key has that hash. The error is EUNAVAILABLE
	// when the answer depends on a store that cannot be reached.
	Lookup(ctx context.Context, h apikey.Hash) (rec apikey.Record, found bool, err error)
	// Apply tells the index about a key whose change has been committed.
	Apply(k *apikey.Key)
	// LookupRoot is Lookup among root keys only: it never returns a
	// customer key's record, nor Lookup a root key's.
	LookupRoot(ctx context.Context, h apikey.Hash) (rec apikey.Record, found bool, err error)
	// ApplyRoot is Apply for a root key.
	ApplyRoot(rk *apikey.RootKey)
}

// StoreIndex is the Index that reads the store on every lookup.
type StoreIndex struct{ Store apikey.Store }

// Lookup implements Index.
func (i StoreIndex) Lookup(ctx context.Context, h apikey.Hash) (apikey.Record, bool, error) {
	k, err := i.Store.KeyByHash(ctx, h)
	switch {
	case apikey.ErrorCode(err) == apikey.ENOTFOUND:
		return apikey.Record{}, false, nil
	case err != nil:
		return apikey.Record{}, false, err
	}
	return k.Record(), true, nil
}

// Apply implements Index; there is nothing to keep in step.
func (StoreIndex) Apply(*apikey.Key) {}

// LookupRoot implements Index.
func (i StoreIndex) LookupRoot(ctx context.Context, h apikey.Hash) (apikey.Record, bool, error) {
	rk, err := i.Store.RootKeyByHash(ctx, h)
	switch {
	case apikey.ErrorCode(err) == apikey.ENOTFOUND:
		return apikey.Record{}, false, nil
	case err != nil:
		return apikey.Record{}, false, err
	}
	return rk.Record(), true, nil
}

// ApplyRoot implements Index; there is nothing to keep in step.
func (StoreIndex) ApplyRoot(*apikey.RootKey) {}

// Options configure a Service.
type Options struct {
	Store apikey.Store
	// Index answers lookups by hash; nil means StoreIndex.
	Index Index
	// Usage buffers last-use times; nil means a buffer on Store that nobody
	// flushes, which only tests want.
	Usage *lastused.Buffer
	// Box seals webhook secrets with the master key.
	Box *seal.Box
	// AdminToken is the token that acts for every project.
	AdminToken string
	// KeyPrefix starts every issued key.
	KeyPrefix string
	// Webhooks decides which rotation webhook URLs are allowed.
	Webhooks webhook.Policy
	// Engine admits verifies against rate limits and credits; nil means
	// an engine on Store alone (not shared), which nobody flushes.
	Engine *usage.Engine
	// Counter counts verdicts for the usage endpoints; nil means one that
	// nobody flushes.
	Counter *usage.Counter
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Service implements apikeyd's operations.
type Service struct {
	store     apikey.Store
	index     Index
	usage     *lastused.Buffer
	box       *seal.Box
	adminHash apikey.Hash
	prefix    string
	webhooks  webhook.Policy
	engine    *usage.Engine
	counter   *usage.Counter
	owners    owners
	clock     func() time.Time
}

// New returns a Service. It fails if an option is missing or invalid.
func New(o Options) (*Service, error) {
	if o.Store == nil || o.Box == nil {
		return nil, errors.New("service: store and box are required")
	}
	if len(o.AdminToken) == 0 {
		return nil, errors.New("service: admin token is required")
	}
	if !apikey.ValidKeyPrefix(o.KeyPrefix) {
		return nil, errors.New("service: invalid key prefix")
	}
	s := &Service{
		store:     o.Store,
		index:     o.Index,
		usage:     o.Usage,
		box:       o.Box,
		adminHash: sha256.Sum256([]byte(o.AdminToken)),
		prefix:    o.KeyPrefix,
		webhooks:  o.Webhooks,
		engine:    o.Engine,
		counter:   o.Counter,
		clock:     o.Now,
	}
	if s.index == nil {
		s.index = StoreIndex{Store: o.Store}
	}
	if s.usage == nil {
		s.usage = lastused.New(o.Store)
	}
	if s.clock == nil {
		s.clock = time.Now
	}
	if s.engine == nil {
		id, err := apikey.NewID(apikey.IDKindKey)
		if err != nil {
			return nil, err
		}
		s.engine = usage.New(usage.Config{Reserver: o.Store, ReplicaID: "replica_" + id, Now: s.clock})
	}
	if s.counter == nil {
		s.counter = usage.NewCounter(s.clock)
	}
	return s, nil
}

// now returns the current time as stores keep it: UTC, microseconds.
func (s *Service) now() time.Time { return s.clock().UTC().Truncate(time.Microsecond) }

// Authenticate resolves a bearer token to the principal it acts for. Every
// failure — empty, malformed, unknown, expired, revoked or past its grace —
// is apikey.ErrUnauthenticated, so that the answer reveals nothing. Using a
// key as a bearer records its last use. A root key (apikeyd_…) is looked up
// among root keys only, any other key among customers' keys only. A key
// with an IP allowlist is refused, since the client's address is not
// known: see AuthenticateAt.
func (s *Service) Authenticate(ctx context.Context, token string) (apikey.Principal, error) {
	return s.AuthenticateAt(ctx, token, time.Time{}, netip.Addr{})
}

// AuthenticateAt is Authenticate at a time the caller has already read from
// the clock (the start of the request, say), saving a reading — the zero
// time means the service's clock — for a request from the client address
// from (the zero Addr when unknown), which a key's allowlist must allow. A
// disabled key, or one used from outside its allowlist, is refused like an
// unknown one; the latter records no use.
func (s *Service) AuthenticateAt(ctx context.Context, token string, at time.Time, from netip.Addr) (apikey.Principal, error) {
	if token == "" {
		return apikey.Principal{}, apikey.ErrUnauthenticated
	}
	h := apikey.HashKey(token)
	if subtle.ConstantTimeCompare(h[:], s.adminHash[:]) == 1 {
		return apikey.AdminPrincipal, nil
	}
	lookup := s.index.Lookup
	switch {
	case apikey.ParseRootKey(token):
		lookup = s.index.LookupRoot // a root key is looked up among root keys only
	case !apikey.ParseKey(token):
		return apikey.Principal{}, apikey.ErrUnauthenticated
	}
	rec, found, err := lookup(ctx, h)
	if err != nil {
		return apikey.Principal{}, err
	}
	if !found {
		return apikey.Principal{}, apikey.ErrUnauthenticated
	}
	now := at
	if now.IsZero() {
		now = s.clock()
	}
	if rec.Allowlist.Allows(from) {
		s.usage.Record(rec.ID, now)
	}
	if !rec.Usable(now, from) {
		return apikey.Principal{}, apikey.ErrUnauthenticated
	}
	return rec.Principal(), nil
}

// IsAdminToken reports whether s is the admin token, so that the API can
// refuse to echo or log it where a client put it by mistake (such as an
// X-Request-Id header).
func (s *Service) IsAdminToken(token string) bool {
	h := apikey.HashKey(token)
	return subtle.ConstantTimeCompare(h[:], s.adminHash[:]) == 1
}

// Ready reports whether the store answers.
func (s *Service) Ready(ctx context.Context) error { return s.store.Ping(ctx) }

func forbidden(msg string) error { return apikey.Errorf(apikey.EFORBIDDEN, "%s", msg) }

var (
	errNoRead   = forbidden("the api-keys:read scope is required")
	errNoWrite  = forbidden("the api-keys:write scope is required")
	errNoVerify = forbidden("the api-keys:verify scope is required")
	errProject  = forbidden("this token cannot act in that project or environment")
	errEscalate = forbidden("a key can only manage keys whose scopes it holds itself")
)

// keyNotFound is the answer for a key that does not exist or that the caller
// may not see; the two are indistinguishable on purpose.
var keyNotFound = &apikey.Error{Code: apikey.ENOTFOUND, Message: "api key not found"}

// visibleKey loads a key for a caller, hiding keys outside its reach.
func (s *Service) visibleKey(ctx context.Context, p apikey.Principal, id string, load func(context.Context, string) (*apikey.Key, error)) (*apikey.Key, error) {
	if !apikey.ValidID(apikey.IDKindKey, id) {
		return nil, keyNotFound
	}
	k, err := load(ctx, id)
	if apikey.ErrorCode(err) == apikey.ENOTFOUND {
		return nil, keyNotFound
	}
	if err != nil {
		return nil, err
	}
	if !p.Sees(k) {
		return nil, keyNotFound
	}
	return k, nil
}
