package service

import (
	"context"
	"crypto/subtle"
	"net/netip"
	"slices"
	"strings"

	"github.com/apikeyd/apikeyd/apikey"
)

// CredentialKind names the kind of credential a person signed in with.
type CredentialKind string

// Credential kinds: the admin token, and root keys (SPEC §8), resolved by
// looking their hash up on every request, so that revoking one ends its
// sessions.
const (
	CredentialAdmin   CredentialKind = "admin"
	CredentialRootKey CredentialKind = "root_key"
)

// Credential is what a long-lived session keeps of the credential it acts
// with: its kind and the SHA-256 of its plaintext, never the plaintext, so
// that a session store holds nothing a bearer could use. Resolve turns it
// back into a principal on every request.
type Credential struct {
	Kind CredentialKind
	Hash apikey.Hash
}

// SignIn authenticates a person's token for the dashboard. The dashboard is
// for the platform's operators, so only the admin token and root keys may
// sign in; an API key of a customer is refused like any wrong token. Every
// failure is apikey.ErrUnauthenticated. Signing in with a root key records
// its use.
func (s *Service) SignIn(ctx context.Context, token string) (Credential, apikey.Principal, error) {
	c := Credential{Kind: CredentialAdmin, Hash: apikey.HashKey(token)}
	if apikey.ParseRootKey(token) {
		c.Kind = CredentialRootKey
	}
	p, err := s.Resolve(ctx, c)
	if err != nil {
		return Credential{}, apikey.Principal{}, err
	}
	return c, p, nil
}

// Resolve returns the principal a credential acts for now, or
// apikey.ErrUnauthenticated once it no longer acts for anyone.
func (s *Service) Resolve(ctx context.Context, c Credential) (apikey.Principal, error) {
	switch c.Kind {
	case CredentialAdmin:
		if subtle.ConstantTimeCompare(c.Hash[:], s.adminHash[:]) == 1 {
			return apikey.AdminPrincipal, nil
		}
	case CredentialRootKey:
		rec, found, err := s.index.LookupRoot(ctx, c.Hash)
		if err != nil {
			return apikey.Principal{}, err
		}
		now := s.clock()
		if found && rec.Usable(now, netip.Addr{}) { // root keys have no allowlist
			s.usage.Record(rec.ID, now)
			return rec.Principal(), nil
		}
	}
	return apikey.Principal{}, apikey.ErrUnauthenticated
}

// ProjectSummary is one project as the dashboard lists it. Projects are not
// objects of their own: a project exists while it has keys.
type ProjectSummary struct {
	ID string
	// Keys counts every key of the project, Usable those that work now
	// (active, or rotating within their grace period).
	Keys, Usable int
}

// Projects lists the projects the caller may read, by ID, with their key
// counts. It reads every key it counts (one paged scan): the dashboard's
// front page, not a hot path.
func (s *Service) Projects(ctx context.Context, p apikey.Principal) ([]ProjectSummary, error) {
	if !p.Allows(apikey.ScopeRead) {
		return nil, errNoRead
	}
	now := s.now()
	byID := map[string]*ProjectSummary{}
	err := s.store.ScanKeys(ctx, func(k *apikey.Key) error {
		if !p.Sees(k) {
			return nil
		}
		ps := byID[k.ProjectID]
		if ps == nil {
			ps = &ProjectSummary{ID: strings.Clone(k.ProjectID)}
			byID[ps.ID] = ps
		}
		ps.Keys++
		if st := k.Status(now); st == apikey.StatusActive || st == apikey.StatusRotating {
			ps.Usable++
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]ProjectSummary, 0, len(byID))
	for _, ps := range byID {
		out = append(out, *ps)
	}
	slices.SortFunc(out, func(a, b ProjectSummary) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}
