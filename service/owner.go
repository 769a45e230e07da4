package service

import (
	"context"
	"sync"
	"time"

	"github.com/apikeyd/apikeyd/apikey"
)

// OwnerInput is the body of PUT /v1/projects/{project_id}/owners/{owner_id}.
type OwnerInput struct {
	RateLimits []apikey.RateLimit
	Credits    *apikey.Credits // nil: unlimited
	Meta       []byte          // a JSON object, or nil
}

// OwnerView is an owner's allowance with its balance (nil: unlimited).
type OwnerView struct {
	Owner   *apikey.Owner
	Credits *apikey.Credits
}

// ownerIn checks that p may act on owners of project (write when write).
func ownerIn(p apikey.Principal, project, owner string, write bool) error {
	scope, missing := apikey.ScopeRead, errNoRead
	if write {
		scope, missing = apikey.ScopeWrite, errNoWrite
	}
	if !p.Allows(scope) {
		return missing
	}
	var bad problems
	bad.identifier("project_id", project)
	if !apikey.ValidOwnerID(owner) {
		bad.add("owner_id", "must be 1–255 characters of A-Z, a-z, 0-9, _ . : @ -")
	}
	if err := bad.err(); err != nil {
		return err
	}
	if !p.InProject(project, "") {
		return errProject
	}
	return nil
}

// PutOwner creates or replaces the allowance every key of project with
// owner_id owner also draws on (SPEC §10). Credits redefine the owner's
// balance as a key's PATCH does.
func (s *Service) PutOwner(ctx context.Context, p apikey.Principal, project, owner string, in OwnerInput) (*OwnerView, error) {
	if err := ownerIn(p, project, owner, true); err != nil {
		return nil, err
	}
	var bad problems
	bad = append(bad, apikey.ValidateRateLimits("ratelimits", in.RateLimits)...)
	bad = append(bad, in.Credits.Validate("credits")...)
	var meta []byte
	if in.Meta != nil {
		var err error
		if meta, err = apikey.CompactMeta(in.Meta); err != nil {
			bad.add("meta", apikey.ErrorMessage(err))
		}
	}
	if err := bad.err(); err != nil {
		return nil, err
	}
	now := s.now()
	o := &apikey.Owner{ProjectID: project, OwnerID: owner, RateLimits: in.RateLimits, HasCredits: in.Credits != nil,
		Meta: meta, CreatedAt: now, UpdatedAt: now}
	err := s.engine.Settle(ctx, o.Subject(), func() error {
		return s.update(ctx, func(tx *writeTx) error {
			if err := tx.PutOwner(ctx, o); err != nil {
				return err
			}
			return tx.PutBalance(ctx, o.Subject(), in.Credits, now)
		})
	})
	if err != nil {
		return nil, err
	}
	s.owners.put(o, now)
	return s.ownerView(ctx, o)
}

// GetOwner returns an owner's allowance, or ENOTFOUND.
func (s *Service) GetOwner(ctx context.Context, p apikey.Principal, project, owner string) (*OwnerView, error) {
	if err := ownerIn(p, project, owner, false); err != nil {
		return nil, err
	}
	o, err := s.store.Owner(ctx, project, owner)
	if apikey.ErrorCode(err) == apikey.ENOTFOUND {
		return nil, errNoOwner
	}
	if err != nil {
		return nil, err
	}
	return s.ownerView(ctx, o)
}

// DeleteOwner removes an owner's allowance and balance: its keys are
// limited by their own allowances alone. Deleting none is no error.
func (s *Service) DeleteOwner(ctx context.Context, p apikey.Principal, project, owner string) error {
	if err := ownerIn(p, project, owner, true); err != nil {
		return err
	}
	o := &apikey.Owner{ProjectID: project, OwnerID: owner}
	now := s.now()
	err := s.engine.Settle(ctx, o.Subject(), func() error {
		return s.update(ctx, func(tx *writeTx) error {
			if err := tx.DeleteOwner(ctx, project, owner); err != nil {
				return err
			}
			return tx.PutBalance(ctx, o.Subject(), nil, now)
		})
	})
	if err == nil {
		s.owners.put(&apikey.Owner{ProjectID: project, OwnerID: owner}, now)
	}
	return err
}

var errNoOwner = &apikey.Error{Code: apikey.ENOTFOUND, Message: "owner not found"}

func (s *Service) ownerView(ctx context.Context, o *apikey.Owner) (*OwnerView, error) {
	v := &OwnerView{Owner: o}
	if !o.HasCredits {
		return v, nil
	}
	err := s.engine.Settle(ctx, o.Subject(), func() error {
		c, err := s.store.Balance(ctx, o.Subject(), s.now())
		v.Credits = c
		return err
	})
	return v, err
}

// ownerFresh is how long a replica answers an owner's definition from
// memory: a change through another replica applies within it.
const ownerFresh = time.Second

// owners caches owners' definitions for verify: one store read per owner
// and second at most, whatever the rate of verifies.
type owners struct {
	mu sync.RWMutex
	m  map[ownerKey]ownerEntry
}

type ownerKey struct{ project, owner string }

type ownerEntry struct {
	o       *apikey.Owner // nil limits and no credits: none
	subject string
	at      time.Time
}

func (c *owners) put(o *apikey.Owner, now time.Time) {
	c.mu.Lock()
	if c.m == nil {
		c.m = map[ownerKey]ownerEntry{}
	}
	c.m[ownerKey{o.ProjectID, o.OwnerID}] = ownerEntry{o: o, subject: o.Subject(), at: now}
	c.mu.Unlock()
}

// owner returns the allowance of rec's owner that verify must draw on,
// and false when it has none: from memory while fresh, else from the
// store.
func (s *Service) owner(ctx context.Context, rec *apikey.Record, now time.Time) (ownerEntry, bool, error) {
	if rec.OwnerID == "" {
		return ownerEntry{}, false, nil
	}
	k := ownerKey{rec.ProjectID, rec.OwnerID}
	s.owners.mu.RLock()
	e, ok := s.owners.m[k]
	s.owners.mu.RUnlock()
	if !ok || now.Sub(e.at) >= ownerFresh || now.Before(e.at) {
		o, err := s.store.Owner(ctx, rec.ProjectID, rec.OwnerID)
		switch {
		case apikey.ErrorCode(err) == apikey.ENOTFOUND:
			o = &apikey.Owner{ProjectID: rec.ProjectID, OwnerID: rec.OwnerID}
		case err != nil:
			return ownerEntry{}, false, unavailableUsage(err)
		}
		s.owners.put(o, now)
		s.owners.mu.RLock()
		e = s.owners.m[k]
		s.owners.mu.RUnlock()
	}
	return e, e.o.Metered(), nil
}
