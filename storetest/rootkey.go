package storetest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/apikey"
)

// rootKeyTests are the suite's tests of apikey.RootKeyStore and RootKeyTx,
// run by Run beside the others.
var rootKeyTests = []struct {
	name string
	fn   func(*testing.T, apikey.Store)
}{
	{"InsertRootKey", testInsertRootKey},
	{"InsertRootKeyConflict", testInsertRootKeyConflict},
	{"RootKeyNotFound", testRootKeyNotFound},
	{"UpdateRootKey", testUpdateRootKey},
	{"UpdateRootKeyStale", testUpdateRootKeyStale},
	{"UpdateRootKeyConcurrent", testUpdateRootKeyConcurrent},
	{"RootKeysOrder", testRootKeysOrder},
	{"RootKeysStatus", testRootKeysStatus},
	{"ScanRootKeys", testScanRootKeys},
	{"RootKeyChanges", testRootKeyChanges},
	{"TouchRootKeys", testTouchRootKeys},
	{"AuditEventsNoProject", testAuditEventsNoProject},
}

// newRootKey returns a minimal root key of every project, created at t0 by
// the admin.
func newRootKey(t *testing.T) *apikey.RootKey {
	t.Helper()
	id, err := apikey.NewID(apikey.IDKindRootKey)
	if err != nil {
		t.Fatal(err)
	}
	return &apikey.RootKey{
		ID:          id,
		Name:        "root " + id,
		KeyPrefix:   "apikeyd_" + id[len(id)-4:],
		Hash:        apikey.HashKey(id),
		Permissions: []string{apikey.ScopeVerify},
		CreatedAt:   t0,
		UpdatedAt:   t0,
		CreatedBy:   apikey.Actor{Type: apikey.ActorAdmin},
	}
}

// fullRootKey returns a root key with every field set.
func fullRootKey(t *testing.T) *apikey.RootKey {
	t.Helper()
	rk := newRootKey(t)
	rk.Permissions = []string{apikey.ScopeWrite, apikey.ScopeRootRead}
	rk.ProjectIDs = []string{"p1", "p2"}
	rk.ExpiresAt = t0.Add(30 * 24 * time.Hour)
	rk.LastUsedAt = t0.Add(time.Minute)
	rk.UpdatedAt = t0.Add(time.Hour)
	rk.RevokedAt = t0.Add(2 * time.Hour)
	rk.ReplacedByKeyID = "root_replacement"
	rk.GraceExpiresAt = t0.Add(3 * time.Hour)
	rk.ReplacesKeyID = "root_predecessor"
	rk.CreatedBy = apikey.Actor{Type: apikey.ActorRootKey, KeyID: "root_creator", Name: "provisioner"}
	return rk
}

// insertRoot stores root keys in one transaction.
func insertRoot(t *testing.T, s apikey.Store, keys ...*apikey.RootKey) {
	t.Helper()
	err := s.Update(t.Context(), func(tx apikey.Tx) error {
		for _, rk := range keys {
			if err := tx.InsertRootKey(t.Context(), rk); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("insert root keys: %v", err)
	}
}

// mustRootKey reads a root key that must exist.
func mustRootKey(t *testing.T, s apikey.Store, id string) *apikey.RootKey {
	t.Helper()
	rk, err := s.RootKey(t.Context(), id)
	if err != nil {
		t.Fatalf("RootKey(%s): %v", id, err)
	}
	return rk
}

// storedRoot returns rk as a store returns it: non-nil Permissions,
// ProjectIDs as they were (nil stays nil).
func storedRoot(rk *apikey.RootKey) *apikey.RootKey {
	c := rk.Clone()
	if c.Permissions == nil {
		c.Permissions = []string{}
	}
	return c
}

func rootIDs(keys []*apikey.RootKey) []string {
	out := make([]string, len(keys))
	for i, rk := range keys {
		out[i] = rk.ID
	}
	return out
}

func testInsertRootKey(t *testing.T, s apikey.Store) {
	full, every, none := fullRootKey(t), newRootKey(t), newRootKey(t)
	none.ProjectIDs = []string{}
	every.Permissions = nil
	insertRoot(t, s, full, every, none)
	for _, rk := range []*apikey.RootKey{full, every, none} {
		if rk.Version != 1 {
			t.Errorf("%s: Version %d after insert, want 1", rk.ID, rk.Version)
		}
		got := mustRootKey(t, s, rk.ID)
		checkEqual(t, got, storedRoot(rk))
		byHash, err := s.RootKeyByHash(t.Context(), rk.Hash)
		if err != nil {
			t.Fatalf("RootKeyByHash: %v", err)
		}
		checkEqual(t, byHash, got)
	}
	// nil (every project) and empty (none) stay apart.
	if got := mustRootKey(t, s, every.ID); got.ProjectIDs != nil {
		t.Errorf("every project came back as %#v", got.ProjectIDs)
	}
	if got := mustRootKey(t, s, none.ID); got.ProjectIDs == nil {
		t.Error("no project came back as every project")
	}
	// Root keys are not keys, nor keys root keys.
	k := newKey(t, "p1")
	insert(t, s, k)
	if _, err := s.Key(t.Context(), full.ID); apikey.ErrorCode(err) != apikey.ENOTFOUND {
		t.Errorf("Key(root key ID) = %v, want ENOTFOUND", err)
	}
	if _, err := s.KeyByHash(t.Context(), full.Hash); apikey.ErrorCode(err) != apikey.ENOTFOUND {
		t.Errorf("KeyByHash(root key hash) = %v, want ENOTFOUND", err)
	}
	if _, err := s.RootKeyByHash(t.Context(), k.Hash); apikey.ErrorCode(err) != apikey.ENOTFOUND {
		t.Errorf("RootKeyByHash(key hash) = %v, want ENOTFOUND", err)
	}
}

func testInsertRootKeyConflict(t *testing.T, s apikey.Store) {
	a := newRootKey(t)
	insertRoot(t, s, a)
	sameID, sameHash := newRootKey(t), newRootKey(t)
	sameID.ID = a.ID
	sameHash.Hash = a.Hash
	for name, rk := range map[string]*apikey.RootKey{"ID": sameID, "Hash": sameHash} {
		err := s.Update(t.Context(), func(tx apikey.Tx) error { return tx.InsertRootKey(t.Context(), rk) })
		if apikey.ErrorCode(err) != apikey.ECONFLICT {
			t.Errorf("insert with the same %s: %v, want ECONFLICT", name, err)
		}
	}
	got, err := s.RootKeys(t.Context(), apikey.RootKeyFilter{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	checkIDs(t, rootIDs(got), []string{a.ID})
}

func testRootKeyNotFound(t *testing.T, s apikey.Store) {
	missing := newRootKey(t)
	_, err := s.RootKey(t.Context(), missing.ID)
	checkCode(t, err, apikey.ENOTFOUND)
	_, err = s.RootKeyByHash(t.Context(), missing.Hash)
	checkCode(t, err, apikey.ENOTFOUND)
	err = s.Update(t.Context(), func(tx apikey.Tx) error {
		_, err := tx.RootKeyForUpdate(t.Context(), missing.ID)
		return err
	})
	checkCode(t, err, apikey.ENOTFOUND)
	err = s.Update(t.Context(), func(tx apikey.Tx) error { return tx.UpdateRootKey(t.Context(), missing) })
	checkCode(t, err, apikey.ENOTFOUND)
}

func testUpdateRootKey(t *testing.T, s apikey.Store) {
	rk := newRootKey(t)
	rk.LastUsedAt = t0.Add(time.Second)
	insertRoot(t, s, rk)
	want := fullRootKey(t)
	err := s.Update(t.Context(), func(tx apikey.Tx) error {
		cur, err := tx.RootKeyForUpdate(t.Context(), rk.ID)
		if err != nil {
			return err
		}
		// Every mutable field changes; the others are given other values
		// that must not be written.
		cur.Name, cur.Permissions, cur.ProjectIDs = want.Name, want.Permissions, want.ProjectIDs
		cur.ExpiresAt, cur.RevokedAt, cur.UpdatedAt = want.ExpiresAt, want.RevokedAt, want.UpdatedAt
		cur.ReplacedByKeyID, cur.GraceExpiresAt, cur.ReplacesKeyID = want.ReplacedByKeyID, want.GraceExpiresAt, want.ReplacesKeyID
		cur.KeyPrefix, cur.Hash, cur.CreatedAt, cur.CreatedBy, cur.LastUsedAt = want.KeyPrefix, want.Hash, want.CreatedAt.Add(time.Hour), want.CreatedBy, t0
		if err := tx.UpdateRootKey(t.Context(), cur); err != nil {
			return err
		}
		if cur.Version != 2 {
			t.Errorf("Version %d after update, want 2", cur.Version)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	exp := storedRoot(want)
	exp.ID, exp.KeyPrefix, exp.Hash, exp.CreatedAt, exp.CreatedBy, exp.LastUsedAt = rk.ID, rk.KeyPrefix, rk.Hash, rk.CreatedAt, rk.CreatedBy, rk.LastUsedAt
	exp.Version = 2
	checkEqual(t, mustRootKey(t, s, rk.ID), exp)

	// Back to every project: NULL again.
	cur := mustRootKey(t, s, rk.ID)
	cur.ProjectIDs = nil
	if err := s.Update(t.Context(), func(tx apikey.Tx) error { return tx.UpdateRootKey(t.Context(), cur) }); err != nil {
		t.Fatal(err)
	}
	if got := mustRootKey(t, s, rk.ID); got.ProjectIDs != nil || got.Version != 3 {
		t.Errorf("after widening: projects %#v version %d", got.ProjectIDs, got.Version)
	}
}

func testUpdateRootKeyStale(t *testing.T, s apikey.Store) {
	rk := newRootKey(t)
	insertRoot(t, s, rk)
	stale := rk.Clone()
	cur := rk.Clone()
	cur.Name = "first"
	if err := s.Update(t.Context(), func(tx apikey.Tx) error { return tx.UpdateRootKey(t.Context(), cur) }); err != nil {
		t.Fatal(err)
	}
	stale.Name = "second"
	err := s.Update(t.Context(), func(tx apikey.Tx) error { return tx.UpdateRootKey(t.Context(), stale) })
	checkCode(t, err, apikey.ECONFLICT)
	if got := mustRootKey(t, s, rk.ID); got.Name != "first" || got.Version != 2 {
		t.Errorf("stored %q version %d, want %q 2", got.Name, got.Version, "first")
	}
}

// testUpdateRootKeyConcurrent: of concurrent rotations of one root key,
// each reading it with RootKeyForUpdate, exactly one replaces it; the
// others find it replaced.
func testUpdateRootKeyConcurrent(t *testing.T, s apikey.Store) {
	rk := newRootKey(t)
	insertRoot(t, s, rk)
	const n = 16
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			errs[i] = s.Update(t.Context(), func(tx apikey.Tx) error {
				cur, err := tx.RootKeyForUpdate(t.Context(), rk.ID)
				if err != nil {
					return err
				}
				if cur.ReplacedByKeyID != "" {
					return apikey.Errorf(apikey.ECONFLICT, "already replaced")
				}
				cur.ReplacedByKeyID = fmt.Sprintf("root_winner%d", i)
				cur.GraceExpiresAt = t0.Add(time.Hour)
				return tx.UpdateRootKey(t.Context(), cur)
			})
		})
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("both %d and %d replaced the root key", winner, i)
		case err == nil:
			winner = i
		default:
			checkCode(t, err, apikey.ECONFLICT)
		}
	}
	if winner < 0 {
		t.Fatal("no update succeeded")
	}
	got := mustRootKey(t, s, rk.ID)
	if want := fmt.Sprintf("root_winner%d", winner); got.ReplacedByKeyID != want || got.Version != 2 {
		t.Errorf("stored replaced_by %q version %d, want %q 2", got.ReplacedByKeyID, got.Version, want)
	}
}

func testRootKeysOrder(t *testing.T, s apikey.Store) {
	var keys []*apikey.RootKey
	for i := range 7 {
		rk := newRootKey(t)
		rk.CreatedAt = t0.Add(time.Duration(i%3) * time.Second) // ties broken by ID
		keys = append(keys, rk)
	}
	insertRoot(t, s, keys...)
	slices.SortFunc(keys, func(a, b *apikey.RootKey) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
	got := paginate(t, 3, func(after *apikey.Cursor) ([]*apikey.RootKey, error) {
		return s.RootKeys(t.Context(), apikey.RootKeyFilter{After: after, Limit: 3})
	}, func(rk *apikey.RootKey) apikey.Cursor { return apikey.Cursor{Time: rk.CreatedAt, ID: rk.ID} })
	checkIDs(t, rootIDs(got), rootIDs(keys))
}

func testRootKeysStatus(t *testing.T, s apikey.Store) {
	now := t0.Add(time.Hour)
	active, expired, revoked, rotating, rotated := newRootKey(t), newRootKey(t), newRootKey(t), newRootKey(t), newRootKey(t)
	expired.ExpiresAt = now
	revoked.RevokedAt = t0
	rotating.ReplacedByKeyID, rotating.GraceExpiresAt = "root_next", now.Add(time.Second)
	rotated.ReplacedByKeyID, rotated.GraceExpiresAt = "root_next2", now
	insertRoot(t, s, active, expired, revoked, rotating, rotated)
	for st, want := range map[apikey.Status]*apikey.RootKey{
		apikey.StatusActive: active, apikey.StatusExpired: expired, apikey.StatusRevoked: revoked,
		apikey.StatusRotating: rotating, apikey.StatusRotated: rotated,
	} {
		got, err := s.RootKeys(t.Context(), apikey.RootKeyFilter{Status: st, Now: now, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		checkIDs(t, rootIDs(got), []string{want.ID})
		if want.Status(now) != st {
			t.Errorf("%s: domain status %s, want %s", want.ID, want.Status(now), st)
		}
	}
}

func testScanRootKeys(t *testing.T, s apikey.Store) {
	var want []string
	var keys []*apikey.RootKey
	for range 5 {
		rk := newRootKey(t)
		keys = append(keys, rk)
		want = append(want, rk.ID)
	}
	insertRoot(t, s, keys...)
	insert(t, s, newKey(t, "p1")) // not a root key
	var got []string
	if err := s.ScanRootKeys(t.Context(), func(rk *apikey.RootKey) error {
		checkEqual(t, rk, mustRootKey(t, s, rk.ID))
		got = append(got, rk.ID)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	slices.Sort(want)
	checkIDs(t, got, want)

	calls := 0
	err := s.ScanRootKeys(t.Context(), func(*apikey.RootKey) error {
		calls++
		return errAbort
	})
	if !errors.Is(err, errAbort) || calls != 1 {
		t.Errorf("ScanRootKeys = %v after %d calls, want the error of fn after 1", err, calls)
	}
}

// rootChanges asks s for the root keys changed since the position and
// returns them by ID and the next position.
func rootChanges(t *testing.T, s apikey.Store, since string) (map[string]*apikey.RootKey, string) {
	t.Helper()
	got := map[string]*apikey.RootKey{}
	next, err := s.RootKeyChanges(t.Context(), since, func(rk *apikey.RootKey) error {
		got[rk.ID] = rk
		return nil
	})
	if err != nil {
		t.Fatalf("RootKeyChanges(%q): %v", since, err)
	}
	if next == "" {
		t.Fatalf("RootKeyChanges(%q) returned an empty position", since)
	}
	return got, next
}

func checkRootChanged(t *testing.T, s apikey.Store, changed map[string]*apikey.RootKey, want ...*apikey.RootKey) {
	t.Helper()
	var gotIDs, wantIDs []string
	for id := range changed {
		gotIDs = append(gotIDs, id)
	}
	for _, rk := range want {
		wantIDs = append(wantIDs, rk.ID)
	}
	slices.Sort(gotIDs)
	slices.Sort(wantIDs)
	checkIDs(t, gotIDs, wantIDs)
	for _, rk := range want {
		if got, ok := changed[rk.ID]; ok {
			checkEqual(t, got, mustRootKey(t, s, rk.ID))
		}
	}
}

func testRootKeyChanges(t *testing.T, s apikey.Store) {
	old := fullRootKey(t)
	insertRoot(t, s, old)
	p0, err := s.RootKeyChanges(t.Context(), "", func(rk *apikey.RootKey) error {
		t.Errorf("RootKeyChanges from the empty position reported %s", rk.ID)
		return nil
	})
	if err != nil || p0 == "" {
		t.Fatalf("RootKeyChanges(\"\") = %q, %v", p0, err)
	}
	got, p1 := rootChanges(t, s, p0)
	checkRootChanged(t, s, got)

	// Keys and root keys change; each feed reports its own.
	a, b := newRootKey(t), newRootKey(t)
	k := newKey(t, "p1")
	insertRoot(t, s, a)
	insert(t, s, k)
	insertRoot(t, s, b)
	got, p2 := rootChanges(t, s, p1)
	checkRootChanged(t, s, got, a, b)
	keys, _ := changes(t, s, p1)
	checkChanged(t, s, keys, k)

	// Positions are shared: one from KeyChanges serves RootKeyChanges, and
	// the other way round, missing nothing committed after it.
	_, kp := changes(t, s, p2)
	cur := mustRootKey(t, s, a.ID)
	cur.RevokedAt, cur.UpdatedAt = t0.Add(time.Minute), t0.Add(time.Minute)
	if err := s.Update(t.Context(), func(tx apikey.Tx) error { return tx.UpdateRootKey(t.Context(), cur) }); err != nil {
		t.Fatal(err)
	}
	k2 := newKey(t, "p1")
	insert(t, s, k2)
	if err := s.TouchRootKeys(t.Context(), []apikey.KeyUse{{KeyID: b.ID, At: t0.Add(time.Hour)}}); err != nil {
		t.Fatal(err)
	}
	got, rp := rootChanges(t, s, kp)
	checkRootChanged(t, s, got, a) // a last use is no change
	if rk := got[a.ID]; rk != nil && (rk.Version != 2 || rk.RevokedAt.IsZero()) {
		t.Errorf("reported version %d revoked %v, want 2 and revoked", rk.Version, rk.RevokedAt)
	}
	keys, _ = changes(t, s, p2)
	checkChanged(t, s, keys, k2)
	// A change may be reported again from a later position (k2 from the
	// position of RootKeyChanges, on SQLite); nothing else may be.
	keys, _ = changes(t, s, rp)
	for id := range keys {
		if id != k2.ID {
			t.Errorf("KeyChanges from the newest position reported %s", id)
		}
	}
	got, _ = rootChanges(t, s, rp)
	checkRootChanged(t, s, got)

	t.Run("ErrStops", func(t *testing.T) {
		calls := 0
		_, err := s.RootKeyChanges(t.Context(), p1, func(*apikey.RootKey) error {
			calls++
			return errAbort
		})
		if !errors.Is(err, errAbort) || calls != 1 {
			t.Errorf("RootKeyChanges = %v after %d calls, want the error of fn after 1", err, calls)
		}
	})
	t.Run("ErrInvalidPosition", func(t *testing.T) {
		for _, since := range []string{"not a position", "-1", "3:1:2"} {
			_, err := s.RootKeyChanges(t.Context(), since, func(*apikey.RootKey) error { return nil })
			if apikey.ErrorCode(err) != apikey.EINVALID {
				t.Errorf("RootKeyChanges(%q) = %v, want EINVALID", since, err)
			}
		}
	})
}

func testTouchRootKeys(t *testing.T, s apikey.Store) {
	a, b := newRootKey(t), newRootKey(t)
	b.LastUsedAt = t0.Add(time.Hour)
	insertRoot(t, s, a, b)
	k := newKey(t, "p1")
	insert(t, s, k)
	uses := []apikey.KeyUse{
		{KeyID: a.ID, At: t0.Add(2 * time.Minute)},
		{KeyID: a.ID, At: t0.Add(time.Minute)}, // older: ignored
		{KeyID: b.ID, At: t0.Add(time.Minute)}, // before the stored one: ignored
		{KeyID: "root_unknown", At: t0},
		{KeyID: k.ID, At: t0.Add(time.Hour)}, // a key, not a root key
	}
	if err := s.TouchRootKeys(t.Context(), uses); err != nil {
		t.Fatal(err)
	}
	if err := s.TouchRootKeys(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	ga, gb := mustRootKey(t, s, a.ID), mustRootKey(t, s, b.ID)
	if !ga.LastUsedAt.Equal(t0.Add(2*time.Minute)) || ga.Version != 1 {
		t.Errorf("a: last used %v version %d", ga.LastUsedAt, ga.Version)
	}
	if !gb.LastUsedAt.Equal(t0.Add(time.Hour)) {
		t.Errorf("b: last used %v moved back", gb.LastUsedAt)
	}
	if got := mustKey(t, s, k.ID); !got.LastUsedAt.IsZero() {
		t.Errorf("TouchRootKeys touched key %s", k.ID)
	}
}

func testAuditEventsNoProject(t *testing.T, s apikey.Store) {
	rk := newRootKey(t)
	k := newKey(t, "p1")
	root1 := &apikey.AuditEvent{
		KeyID:     rk.ID,
		Action:    apikey.ActionRootKeyCreated,
		Actor:     apikey.Actor{Type: apikey.ActorRootKey, KeyID: "root_creator", Name: "provisioner"},
		Details:   map[string]any{"name": rk.Name},
		CreatedAt: t0,
	}
	root2 := &apikey.AuditEvent{KeyID: rk.ID, Action: apikey.ActionRootKeyRevoked, Actor: apikey.Actor{Type: apikey.ActorAdmin}, CreatedAt: t0.Add(time.Second)}
	keyEvent := newEvent(t, k, apikey.ActionCreated, t0.Add(2*time.Second))
	keyEvent.Actor = apikey.Actor{Type: apikey.ActorRootKey, KeyID: rk.ID, Name: rk.Name}
	for _, e := range []*apikey.AuditEvent{root1, root2} {
		id, err := apikey.NewID(apikey.IDKindEvent)
		if err != nil {
			t.Fatal(err)
		}
		e.ID = id
	}
	insertEvents(t, s, root1, root2, keyEvent)

	got := listEvents(t, s, apikey.AuditFilter{NoProject: true, Limit: 1})
	checkIDs(t, eventIDs(got), []string{root2.ID, root1.ID})
	if len(got) == 2 {
		want := *root1
		want.Details = map[string]any{"name": rk.Name}
		checkEqual(t, got[1], &want)
		if got[0].ProjectID != "" || got[0].Details == nil {
			t.Errorf("event of no project: project %q details %#v", got[0].ProjectID, got[0].Details)
		}
	}
	filtered := listEvents(t, s, apikey.AuditFilter{NoProject: true, Action: apikey.ActionRootKeyRevoked, KeyID: rk.ID, Limit: 10})
	checkIDs(t, eventIDs(filtered), []string{root2.ID})

	// A project's log holds its own events only, with the actor's name.
	project := listEvents(t, s, apikey.AuditFilter{ProjectID: "p1", Limit: 10})
	checkIDs(t, eventIDs(project), []string{keyEvent.ID})
	if len(project) == 1 && project[0].Actor != keyEvent.Actor {
		t.Errorf("actor %+v, want %+v", project[0].Actor, keyEvent.Actor)
	}
}
