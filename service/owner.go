package service

import (
	"bytes"
	"context"
	"encoding/json"
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
		// What the owner was, for the audit event: read before the
		// transaction (the store's tx reads no owner), but under Settle,
		// which serialises this process's changes of the owner.
		before, err := s.ownerState(ctx, project, owner, now)
		if err != nil {
			return err
		}
		if before.owner != nil {
			o.CreatedAt = before.owner.CreatedAt // the store keeps it on replace
		}
		was, is := ownerDiff(before, ownerState{owner: o, credits: in.Credits})
		return s.update(ctx, func(tx *writeTx) error {
			if err := tx.PutOwner(ctx, o); err != nil {
				return err
			}
			if err := tx.PutBalance(ctx, o.Subject(), in.Credits, now); err != nil {
				return err
			}
			return tx.auditOwner(ctx, p.Actor(), apikey.ActionOwnerUpdated, o, now, was, is)
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
		before, err := s.ownerState(ctx, project, owner, now) // as in PutOwner
		if err != nil {
			return err
		}
		return s.update(ctx, func(tx *writeTx) error {
			if err := tx.DeleteOwner(ctx, project, owner); err != nil {
				return err
			}
			if err := tx.PutBalance(ctx, o.Subject(), nil, now); err != nil {
				return err
			}
			if before.owner == nil && before.credits == nil {
				return nil // deleting none changes nothing and writes no event
			}
			was, is := ownerDiff(before, ownerState{})
			return tx.auditOwner(ctx, p.Actor(), apikey.ActionOwnerDeleted, o, now, was, is)
		})
	})
	if err == nil {
		s.owners.put(&apikey.Owner{ProjectID: project, OwnerID: owner}, now)
	}
	return err
}

// ownerState is an owner's allowance and balance as its audit events
// record them; the zero value is no owner.
type ownerState struct {
	owner   *apikey.Owner   // nil: none
	credits *apikey.Credits // nil: none (unlimited)
}

// ownerState reads the owner's allowance and, if it has credits, its
// balance at now (the total, as GET shows it).
func (s *Service) ownerState(ctx context.Context, project, owner string, now time.Time) (ownerState, error) {
	o, err := s.store.Owner(ctx, project, owner)
	if apikey.ErrorCode(err) == apikey.ENOTFOUND {
		return ownerState{}, nil
	}
	if err != nil {
		return ownerState{}, err
	}
	st := ownerState{owner: o}
	if o.HasCredits {
		c, err := s.store.Balance(ctx, o.Subject(), now)
		if err != nil && apikey.ErrorCode(err) != apikey.ENOTFOUND {
			return ownerState{}, err
		}
		st.credits = c
	}
	return st, nil
}

// fields are the values of the owner's audited fields by their API names:
// "ratelimits", "credits" ({"remaining", "refill"}) and "meta", nil when
// unset.
func (st ownerState) fields() map[string]any {
	f := map[string]any{"ratelimits": nil, "credits": nil, "meta": nil}
	if st.owner == nil {
		return f
	}
	if st.owner.RateLimits != nil {
		f["ratelimits"] = st.owner.RateLimits
	}
	if st.owner.Meta != nil {
		f["meta"] = json.RawMessage(st.owner.Meta)
	}
	if c := st.credits; c != nil {
		var refill any
		if r := c.Refill; r != nil {
			rm := map[string]any{"interval": string(r.Interval), "amount": r.Amount, "mode": string(r.Mode)}
			if r.Interval == apikey.RefillMonthly {
				rm["day_of_month"] = max(r.DayOfMonth, 1) // as the API shows it
			}
			refill = rm
		}
		f["credits"] = map[string]any{"remaining": c.Remaining, "refill": refill}
	}
	return f
}

// ownerDiff returns the audited fields that differ between before and
// after, with their values on each side, as apikey.Diff does for keys: for
// an owner created "before" is empty and "after" holds every field set;
// for one deleted, the other way round.
func ownerDiff(before, after ownerState) (was, is map[string]any) {
	was, is = map[string]any{}, map[string]any{}
	b, a := before.fields(), after.fields()
	for name := range a {
		switch {
		case before.owner == nil:
			if a[name] != nil {
				is[name] = a[name]
			}
		case after.owner == nil:
			if b[name] != nil {
				was[name] = b[name]
			}
		case !sameJSON(b[name], a[name]):
			was[name], is[name] = b[name], a[name]
		}
	}
	return was, is
}

// sameJSON reports whether a and b encode to the same JSON, which is how
// an event records them.
func sameJSON(a, b any) bool {
	ja, erra := json.Marshal(a)
	jb, errb := json.Marshal(b)
	return erra == nil && errb == nil && bytes.Equal(ja, jb)
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
