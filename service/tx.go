package service

import (
	"context"
	"time"

	"github.com/apikeyd/apikeyd/apikey"
)

// writeTx is the apikey.Tx every mutation of the service runs in (see
// update). It keeps two invariants by construction, so that no call site
// can forget them:
//
//   - every key it inserts or updates is recorded, and update tells the
//     index about each once the transaction has committed;
//   - every key it reads for update is remembered as it was read, so that
//     the audit event of a change (audit) records the values before it.
//
// Root keys are kept in the same two ways, beside keys.
type writeTx struct {
	apikey.Tx
	written     []*apikey.Key              // copies, in the order they were written
	read        map[string]*apikey.Key     // copies as first read, by ID
	writtenRoot []*apikey.RootKey          // root keys, as written
	readRoot    map[string]*apikey.RootKey // root keys as first read, by ID
	// extra are values kept outside the key (its credits) that changed,
	// by key ID and name: before and after, recorded by audit as the
	// key's own fields are.
	extra map[string]map[string][2]any
	// refresh are the usage subjects whose balance the transaction
	// changed: update tells the engine after commit.
	refresh []string
}

// changed notes a value of k kept outside the key (such as its balance)
// that went from was to is, for the audit event of k's change.
func (t *writeTx) changed(k *apikey.Key, name string, was, is any) {
	if t.extra == nil {
		t.extra = map[string]map[string][2]any{}
	}
	if t.extra[k.ID] == nil {
		t.extra[k.ID] = map[string][2]any{}
	}
	t.extra[k.ID][name] = [2]any{was, is}
}

func newWriteTx(tx apikey.Tx) *writeTx {
	return &writeTx{Tx: tx, read: map[string]*apikey.Key{}, readRoot: map[string]*apikey.RootKey{}}
}

// RootKeyForUpdate implements apikey.Tx and remembers the root key as read.
func (t *writeTx) RootKeyForUpdate(ctx context.Context, id string) (*apikey.RootKey, error) {
	rk, err := t.Tx.RootKeyForUpdate(ctx, id)
	if err == nil {
		if _, ok := t.readRoot[rk.ID]; !ok {
			t.readRoot[rk.ID] = rk.Clone()
		}
	}
	return rk, err
}

// InsertRootKey implements apikey.Tx and records the new root key for the
// index.
func (t *writeTx) InsertRootKey(ctx context.Context, rk *apikey.RootKey) error {
	if err := t.Tx.InsertRootKey(ctx, rk); err != nil {
		return err
	}
	t.writtenRoot = append(t.writtenRoot, rk.Clone())
	return nil
}

// UpdateRootKey implements apikey.Tx and records the root key as written
// for the index.
func (t *writeTx) UpdateRootKey(ctx context.Context, rk *apikey.RootKey) error {
	if err := t.Tx.UpdateRootKey(ctx, rk); err != nil {
		return err
	}
	t.writtenRoot = append(t.writtenRoot, rk.Clone())
	return nil
}

// remember keeps the first state read of k.
func (t *writeTx) remember(k *apikey.Key) {
	if _, ok := t.read[k.ID]; !ok {
		t.read[k.ID] = k.Clone()
	}
}

// KeyForUpdate implements apikey.Tx and remembers the key as read.
func (t *writeTx) KeyForUpdate(ctx context.Context, id string) (*apikey.Key, error) {
	k, err := t.Tx.KeyForUpdate(ctx, id)
	if err == nil {
		t.remember(k)
	}
	return k, err
}

// DueKeysForUpdate implements apikey.Tx and remembers the keys as read.
func (t *writeTx) DueKeysForUpdate(ctx context.Context, now time.Time, limit int) ([]*apikey.Key, error) {
	keys, err := t.Tx.DueKeysForUpdate(ctx, now, limit)
	for _, k := range keys {
		t.remember(k)
	}
	return keys, err
}

// InsertKey implements apikey.Tx and records the new key for the index.
func (t *writeTx) InsertKey(ctx context.Context, k *apikey.Key) error {
	if err := t.Tx.InsertKey(ctx, k); err != nil {
		return err
	}
	t.written = append(t.written, k.Clone())
	return nil
}

// UpdateKey implements apikey.Tx and records the key as written for the
// index.
func (t *writeTx) UpdateKey(ctx context.Context, k *apikey.Key) error {
	if err := t.Tx.UpdateKey(ctx, k); err != nil {
		return err
	}
	t.written = append(t.written, k.Clone())
	return nil
}

// update runs fn in a write transaction and, once it has committed, tells
// the index about every key and root key fn wrote through tx. fn may run
// more than once (the store retries); only the last run's writes are
// applied.
func (s *Service) update(ctx context.Context, fn func(tx *writeTx) error) error {
	var wt *writeTx
	err := s.store.Update(ctx, func(tx apikey.Tx) error {
		wt = newWriteTx(tx)
		return fn(wt)
	})
	if err != nil {
		return err
	}
	for _, subject := range wt.refresh {
		s.engine.Refresh(subject)
	}
	for _, k := range wt.written {
		s.index.Apply(k)
	}
	for _, rk := range wt.writtenRoot {
		s.index.ApplyRoot(rk)
	}
	return nil
}

// audit writes, in the transaction, the event of action on k by actor at
// now. Every mutation's event goes through here. Its details are the given
// ones (nil for none) plus "before" and "after": the values of the fields
// that the change made differ (apikey.Diff), against the key as this
// transaction first read it; for a key it inserted, "before" is empty and
// "after" holds every field that is set.
func (t *writeTx) audit(ctx context.Context, actor apikey.Actor, action string, k *apikey.Key, now time.Time, details map[string]any) error {
	was, is := apikey.Diff(t.read[k.ID], k)
	for name, v := range t.extra[k.ID] {
		was[name], is[name] = v[0], v[1]
	}
	return t.event(ctx, apikey.AuditEvent{ProjectID: k.ProjectID, EnvironmentID: k.EnvironmentID, KeyID: k.ID,
		Action: action, Actor: actor, CreatedAt: now}, details, was, is)
}

// auditRoot is audit for a root key: the event belongs to no project, its
// KeyID is the root key's, and "before" and "after" are the root key's
// changed fields (apikey.DiffRoot) against the state this transaction
// first read.
func (t *writeTx) auditRoot(ctx context.Context, actor apikey.Actor, action string, rk *apikey.RootKey, now time.Time, details map[string]any) error {
	was, is := apikey.DiffRoot(t.readRoot[rk.ID], rk)
	return t.event(ctx, apikey.AuditEvent{KeyID: rk.ID, Action: action, Actor: actor, CreatedAt: now}, details, was, is)
}

// auditOwner is audit for an owner's allowance: the event belongs to the
// owner's project, with no environment and no key, its details name the
// owner ("owner_id"), and "before" and "after" are what the caller found
// changed (ownerDiff): the owner has no row this transaction reads for
// update.
func (t *writeTx) auditOwner(ctx context.Context, actor apikey.Actor, action string, o *apikey.Owner, now time.Time, was, is map[string]any) error {
	return t.event(ctx, apikey.AuditEvent{ProjectID: o.ProjectID, Action: action, Actor: actor, CreatedAt: now},
		map[string]any{"owner_id": o.OwnerID}, was, is)
}

// event inserts e, in the transaction, under a new ID, its details the
// given ones (nil for none) plus "before" and "after". audit, auditRoot
// and auditOwner all write through here.
func (t *writeTx) event(ctx context.Context, e apikey.AuditEvent, details, was, is map[string]any) error {
	id, err := apikey.NewID(apikey.IDKindEvent)
	if err != nil {
		return apikey.Internal(err)
	}
	if details == nil {
		details = map[string]any{}
	}
	details["before"], details["after"] = was, is
	e.ID, e.Details = id, details
	return t.InsertAuditEvent(ctx, &e)
}
