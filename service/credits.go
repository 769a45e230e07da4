package service

import (
	"context"

	"github.com/apikeyd/apikeyd/apikey"
)

// Credits returns k's balance as the usage store has it now (the total,
// what replicas hold included, with due refills counted), or nil for a
// key with unlimited credits.
func (s *Service) Credits(ctx context.Context, k *apikey.Key) (*apikey.Credits, error) {
	if !k.HasCredits {
		return nil, nil
	}
	var c *apikey.Credits
	err := s.engine.Settle(ctx, k.Subject(), func() error {
		var err error
		c, err = s.store.Balance(ctx, k.Subject(), s.now())
		return err
	})
	if apikey.ErrorCode(err) == apikey.ENOTFOUND {
		return nil, nil
	}
	return c, err
}

// AdjustCredits applies op to the balance of the key id (POST
// /v1/api-keys/{id}/credits) and returns the total after it. It works on
// the total that replicas hold slices of, in one transaction with its
// audit event (the totals before and after), so that no update is lost
// against verifies running meanwhile (docs/limits.md). A key with
// unlimited credits is 409; a revoked or replaced key may still change
// its balance, which its lineage shares.
func (s *Service) AdjustCredits(ctx context.Context, p apikey.Principal, id string, op apikey.CreditOp, amount int64) (int64, error) {
	if !p.Allows(apikey.ScopeWrite) {
		return 0, errNoWrite
	}
	if _, _, _, err := apikey.AdjustBalance(0, 0, op, amount); err != nil {
		return 0, err
	}
	// The lineage, and so the subject, of a key never changes: settle the
	// subject's spends first, so that a set counts none of this
	// process's spends twice.
	k0, err := s.visibleKey(ctx, p, id, s.store.Key)
	if err != nil {
		return 0, err
	}
	now := s.now()
	var after int64
	err = s.engine.Settle(ctx, k0.Subject(), func() error {
		return s.update(ctx, func(tx *writeTx) error {
			k, err := s.visibleKey(ctx, p, id, tx.KeyForUpdate)
			if err != nil {
				return err
			}
			if !p.Covers(k.Scopes) {
				return errEscalate
			}
			if !k.HasCredits {
				return apikey.Errorf(apikey.ECONFLICT, "the key has unlimited credits; give it credits with PATCH first")
			}
			before, a, err := tx.AdjustCredits(ctx, k.Subject(), op, amount, now)
			if err != nil {
				return err
			}
			after = a
			tx.changed(k, "credits", before, a)
			return tx.audit(ctx, p.Actor(), apikey.ActionCreditsAdjusted, k, now, map[string]any{"op": string(op), "amount": amount})
		})
	})
	return after, err
}
