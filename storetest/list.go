package storetest

import (
	"cmp"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/apikey"
)

// pageLimits are the page sizes every listing is walked with.
var pageLimits = []int{1, 2, 3, 7}

// newestFirst returns the IDs of keys in the order of Store.Keys.
func newestFirst(keys []*apikey.Key) []string {
	keys = slices.Clone(keys)
	slices.SortFunc(keys, func(a, b *apikey.Key) int {
		return cmp.Or(b.CreatedAt.Compare(a.CreatedAt), cmp.Compare(b.ID, a.ID))
	})
	return ids(keys)
}

// soonestFirst returns the IDs of keys in the order of Store.ExpiringKeys.
func soonestFirst(keys []*apikey.Key) []string {
	keys = slices.Clone(keys)
	slices.SortFunc(keys, func(a, b *apikey.Key) int {
		return cmp.Or(a.ExpiresAt.Compare(b.ExpiresAt), cmp.Compare(a.ID, b.ID))
	})
	return ids(keys)
}

// listKeys returns every key f selects, walking pages of f.Limit.
func listKeys(t *testing.T, s apikey.Store, f apikey.KeyFilter) []string {
	t.Helper()
	keys := paginate(t, f.Limit, func(after *apikey.Cursor) ([]*apikey.Key, error) {
		f.After = after
		return s.Keys(t.Context(), f)
	}, func(k *apikey.Key) apikey.Cursor { return apikey.Cursor{Time: k.CreatedAt, ID: k.ID} })
	return ids(keys)
}

// listExpiring returns every key f selects, walking pages of f.Limit.
func listExpiring(t *testing.T, s apikey.Store, f apikey.ExpiringFilter) []string {
	t.Helper()
	keys := paginate(t, f.Limit, func(after *apikey.Cursor) ([]*apikey.Key, error) {
		f.After = after
		return s.ExpiringKeys(t.Context(), f)
	}, func(k *apikey.Key) apikey.Cursor { return apikey.Cursor{Time: k.ExpiresAt, ID: k.ID} })
	return ids(keys)
}

// pick returns the keys at the given indexes.
func pick(keys []*apikey.Key, indexes ...int) []*apikey.Key {
	out := make([]*apikey.Key, len(indexes))
	for i, j := range indexes {
		out[i] = keys[j]
	}
	return out
}

// shuffled returns keys in random order, so that no store can pass by
// returning rows in insertion order.
func shuffled(keys []*apikey.Key) []*apikey.Key {
	keys = slices.Clone(keys)
	rand.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
	return keys
}

func testKeysOrder(t *testing.T, s apikey.Store) {
	var keys []*apikey.Key
	for i := range 25 {
		k := newKey(t, "p1")
		switch {
		case i < 12: // twelve created at the same instant: ties broken by ID
		case i < 14: // a microsecond apart from them
			k.CreatedAt = t0.Add(time.Duration(i-12)*2*time.Microsecond - time.Microsecond)
		default:
			k.CreatedAt = t0.Add(time.Duration(i%5-2) * time.Hour)
		}
		keys = append(keys, k)
	}
	other := newKey(t, "p2")
	insert(t, s, append(shuffled(keys), other)...)
	want := newestFirst(keys)

	t.Run("OKOnePage", func(t *testing.T) {
		got, err := s.Keys(t.Context(), apikey.KeyFilter{ProjectID: "p1", Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		checkIDs(t, ids(got), want)
		for _, k := range got {
			if k.ID == keys[0].ID {
				checkEqual(t, k, stored(keys[0]))
			}
		}
	})
	t.Run("OKLimit", func(t *testing.T) {
		got, err := s.Keys(t.Context(), apikey.KeyFilter{ProjectID: "p1", Limit: 5})
		if err != nil {
			t.Fatal(err)
		}
		checkIDs(t, ids(got), want[:5])
	})
	for _, limit := range pageLimits {
		t.Run(fmt.Sprintf("OKPagesOf%d", limit), func(t *testing.T) {
			checkIDs(t, listKeys(t, s, apikey.KeyFilter{ProjectID: "p1", Limit: limit}), want)
		})
	}
}

func testKeysFilter(t *testing.T, s apikey.Store) {
	byEnv := map[string][]*apikey.Key{}
	var all []*apikey.Key
	for i, scope := range []string{"p1/", "p1/prod", "p1/staging", "p2/prod", "p2/"} {
		for j := range 3 {
			project, env, _ := strings.Cut(scope, "/")
			k := newKey(t, project)
			k.EnvironmentID = env
			if j == 1 {
				k.OwnerID = "owner@" + project
			}
			k.CreatedAt = t0.Add(time.Duration(i*3+j) * time.Second)
			byEnv[scope] = append(byEnv[scope], k)
			all = append(all, k)
		}
	}
	insert(t, s, shuffled(all)...)

	tests := []struct {
		name string
		f    apikey.KeyFilter
		want []*apikey.Key
	}{
		{"OKProject", apikey.KeyFilter{ProjectID: "p1"}, slices.Concat(byEnv["p1/"], byEnv["p1/prod"], byEnv["p1/staging"])},
		{"OKOtherProject", apikey.KeyFilter{ProjectID: "p2"}, slices.Concat(byEnv["p2/"], byEnv["p2/prod"])},
		{"OKEnvironment", apikey.KeyFilter{ProjectID: "p1", EnvironmentID: "prod"}, byEnv["p1/prod"]},
		{"OKOtherEnvironment", apikey.KeyFilter{ProjectID: "p2", EnvironmentID: "prod"}, byEnv["p2/prod"]},
		{"OKUnknownEnvironment", apikey.KeyFilter{ProjectID: "p1", EnvironmentID: "dev"}, nil},
		{"OKUnknownProject", apikey.KeyFilter{ProjectID: "p3"}, nil},
		{"OKProjectIsExact", apikey.KeyFilter{ProjectID: "p"}, nil},
		{"OKOwner", apikey.KeyFilter{ProjectID: "p1", OwnerID: "owner@p1"}, []*apikey.Key{byEnv["p1/"][1], byEnv["p1/prod"][1], byEnv["p1/staging"][1]}},
		{"OKOwnerAndEnvironment", apikey.KeyFilter{ProjectID: "p2", EnvironmentID: "prod", OwnerID: "owner@p2"}, byEnv["p2/prod"][1:2]},
		{"OKOwnerOfOtherProject", apikey.KeyFilter{ProjectID: "p1", OwnerID: "owner@p2"}, nil},
	}
	for _, tt := range tests {
		for _, limit := range []int{2, 100} {
			t.Run(fmt.Sprintf("%s/Limit%d", tt.name, limit), func(t *testing.T) {
				f := tt.f
				f.Limit = limit
				checkIDs(t, listKeys(t, s, f), newestFirst(tt.want))
			})
		}
	}
}

// statusKeys returns keys of project p1 in every state, and their states at
// now as the table says, together with the edge cases where a time equals
// now. It fails if apikey.Key.Status disagrees with the table.
func statusKeys(t *testing.T, now time.Time) map[*apikey.Key]apikey.Status {
	t.Helper()
	tests := []struct {
		name   string
		key    func(*apikey.Key)
		status apikey.Status
	}{
		{"active", func(k *apikey.Key) {}, apikey.StatusActive},
		{"active expiring later", func(k *apikey.Key) { k.ExpiresAt = now.Add(time.Microsecond) }, apikey.StatusActive},
		{"active, its predecessor rotated", func(k *apikey.Key) { k.ReplacesKeyID = "key_old" }, apikey.StatusActive},
		{"expired at now", func(k *apikey.Key) { k.ExpiresAt = now }, apikey.StatusExpired},
		{"expired earlier", func(k *apikey.Key) { k.ExpiresAt = now.Add(-time.Hour) }, apikey.StatusExpired},
		{"revoked", func(k *apikey.Key) { k.RevokedAt = now.Add(-time.Hour) }, apikey.StatusRevoked},
		{"revoked later", func(k *apikey.Key) { k.RevokedAt = now.Add(time.Hour) }, apikey.StatusRevoked},
		{"revoked and expired", func(k *apikey.Key) {
			k.RevokedAt, k.ExpiresAt = now.Add(-2*time.Hour), now.Add(-time.Hour)
		}, apikey.StatusRevoked},
		{"revoked in grace", func(k *apikey.Key) {
			k.RevokedAt, k.ReplacedByKeyID, k.GraceExpiresAt = now.Add(-time.Hour), "key_new", now.Add(time.Hour)
		}, apikey.StatusRevoked},
		{"rotating", func(k *apikey.Key) {
			k.ReplacedByKeyID, k.GraceExpiresAt = "key_new", now.Add(time.Microsecond)
		}, apikey.StatusRotating},
		{"rotating, expiring later", func(k *apikey.Key) {
			k.ReplacedByKeyID, k.GraceExpiresAt, k.ExpiresAt = "key_new", now.Add(time.Hour), now.Add(time.Hour)
		}, apikey.StatusRotating},
		{"rotated at now", func(k *apikey.Key) { k.ReplacedByKeyID, k.GraceExpiresAt = "key_new", now }, apikey.StatusRotated},
		{"rotated earlier", func(k *apikey.Key) {
			k.ReplacedByKeyID, k.GraceExpiresAt = "key_new", now.Add(-time.Hour)
		}, apikey.StatusRotated},
		{"rotated without grace", func(k *apikey.Key) { k.ReplacedByKeyID = "key_new" }, apikey.StatusRotated},
		{"disabled", func(k *apikey.Key) { k.DisabledAt = now.Add(-time.Hour) }, apikey.StatusDisabled},
		{"disabled while rotating", func(k *apikey.Key) {
			k.DisabledAt, k.ReplacedByKeyID, k.GraceExpiresAt = now.Add(-time.Hour), "key_new", now.Add(time.Hour)
		}, apikey.StatusDisabled},
		{"disabled and rotated", func(k *apikey.Key) {
			k.DisabledAt, k.ReplacedByKeyID, k.GraceExpiresAt = now.Add(-time.Hour), "key_new", now
		}, apikey.StatusRotated},
		{"disabled and expired", func(k *apikey.Key) { k.DisabledAt, k.ExpiresAt = now.Add(-time.Hour), now }, apikey.StatusExpired},
		{"disabled and revoked", func(k *apikey.Key) { k.DisabledAt, k.RevokedAt = now.Add(-time.Hour), now.Add(-time.Hour) }, apikey.StatusRevoked},
		{"replaced and expired", func(k *apikey.Key) {
			k.ReplacedByKeyID, k.GraceExpiresAt, k.ExpiresAt = "key_new", now.Add(time.Hour), now.Add(-time.Hour)
		}, apikey.StatusExpired},
		{"rotated and expired", func(k *apikey.Key) {
			k.ReplacedByKeyID, k.GraceExpiresAt, k.ExpiresAt = "key_new", now.Add(-time.Hour), now
		}, apikey.StatusExpired},
	}
	keys := make(map[*apikey.Key]apikey.Status, len(tests))
	for i, tt := range tests {
		k := newKey(t, "p1")
		k.Name = tt.name
		k.CreatedAt = now.Add(-time.Duration(i%4) * time.Minute)
		tt.key(k)
		if got := k.Status(now); got != tt.status {
			t.Fatalf("fixture %q: apikey.Key.Status = %s, want %s", tt.name, got, tt.status)
		}
		keys[k] = tt.status
	}
	return keys
}

func testKeysStatus(t *testing.T, s apikey.Store) {
	now := t0.Add(100 * time.Hour)
	keys := statusKeys(t, now)
	all := slices.Collect(maps.Keys(keys))
	other := newKey(t, "p2")
	insert(t, s, append(all, other)...)

	for _, status := range []apikey.Status{"", apikey.StatusActive, apikey.StatusRotating, apikey.StatusRotated, apikey.StatusExpired, apikey.StatusRevoked, apikey.StatusDisabled} {
		var want []*apikey.Key
		for k, st := range keys {
			if status == "" || st == status {
				want = append(want, k)
			}
		}
		for _, limit := range []int{1, 100} {
			t.Run(fmt.Sprintf("OK%s/Limit%d", cmp.Or(string(status), "all"), limit), func(t *testing.T) {
				got := listKeys(t, s, apikey.KeyFilter{ProjectID: "p1", Status: status, Now: now, Limit: limit})
				checkIDs(t, got, newestFirst(want))
			})
		}
	}
}

func testExpiringKeys(t *testing.T, s apikey.Store) {
	now, before := t0, t0.Add(30*24*time.Hour)
	var in, out []*apikey.Key // of p1/prod, inside or outside the window
	add := func(inside bool, change func(k *apikey.Key)) {
		k := newKey(t, "p1")
		k.EnvironmentID = "prod"
		change(k)
		if inside {
			in = append(in, k)
		} else {
			out = append(out, k)
		}
	}
	expires := func(d time.Duration) func(*apikey.Key) {
		return func(k *apikey.Key) { k.ExpiresAt = now.Add(d) }
	}
	add(true, expires(time.Hour)) // in[0]
	for range 3 {
		add(true, expires(2*time.Hour)) // in[1:4], ties broken by ID
	}
	add(true, expires(2*time.Hour+time.Microsecond))        // in[4]
	add(true, func(k *apikey.Key) { k.ExpiresAt = before }) // in[5]
	add(true, expires(time.Microsecond))                    // in[6]
	add(true, func(k *apikey.Key) {                         // in[7], rotating
		k.ExpiresAt, k.ReplacedByKeyID, k.GraceExpiresAt = now.Add(3*time.Hour), "key_new", now.Add(time.Hour)
	})
	add(true, func(k *apikey.Key) { k.ExpiresAt, k.ReplacesKeyID = now.Add(4*time.Hour), "key_old" }) // in[8]
	add(false, func(k *apikey.Key) { k.ExpiresAt = before.Add(time.Microsecond) })
	add(false, func(k *apikey.Key) {})
	add(false, expires(0))
	add(false, expires(-time.Hour))
	add(false, func(k *apikey.Key) { k.ExpiresAt, k.RevokedAt = now.Add(time.Hour), now.Add(-time.Hour) })
	add(false, func(k *apikey.Key) { k.ExpiresAt, k.RevokedAt = now.Add(time.Hour), now.Add(time.Hour) })
	add(false, func(k *apikey.Key) {
		k.ExpiresAt, k.ReplacedByKeyID, k.GraceExpiresAt = now.Add(time.Hour), "key_new", now
	})
	add(false, func(k *apikey.Key) { k.ExpiresAt, k.ReplacedByKeyID = now.Add(time.Hour), "key_new" })

	var otherEnv []*apikey.Key
	for _, env := range []string{"", "staging"} {
		k := newKey(t, "p1")
		k.EnvironmentID = env
		k.ExpiresAt = now.Add(5 * time.Hour)
		otherEnv = append(otherEnv, k)
	}
	otherProject := newKey(t, "p2")
	otherProject.ExpiresAt = now.Add(time.Hour)
	insert(t, s, shuffled(slices.Concat(in, out, otherEnv, []*apikey.Key{otherProject}))...)

	tests := []struct {
		name string
		f    apikey.ExpiringFilter
		want []*apikey.Key
	}{
		{"OKEnvironment", apikey.ExpiringFilter{ProjectID: "p1", EnvironmentID: "prod", Now: now, Before: before}, in},
		{"OKProject", apikey.ExpiringFilter{ProjectID: "p1", Now: now, Before: before}, slices.Concat(in, otherEnv)},
		{"OKOtherProject", apikey.ExpiringFilter{ProjectID: "p2", Now: now, Before: before}, []*apikey.Key{otherProject}},
		{"OKNarrowWindow", apikey.ExpiringFilter{ProjectID: "p1", EnvironmentID: "prod", Now: now, Before: now.Add(2 * time.Hour)},
			pick(in, 0, 1, 2, 3, 6)},
		// Two hours on, the key expiring at 2h is expired and the rotating one rotated.
		{"OKLater", apikey.ExpiringFilter{ProjectID: "p1", EnvironmentID: "prod", Now: now.Add(2 * time.Hour), Before: before},
			pick(in, 4, 5, 8)},
		{"OKUnknownProject", apikey.ExpiringFilter{ProjectID: "p3", Now: now, Before: before}, nil},
	}
	for _, tt := range tests {
		for _, limit := range append(pageLimits, 100) {
			t.Run(fmt.Sprintf("%s/Limit%d", tt.name, limit), func(t *testing.T) {
				f := tt.f
				f.Limit = limit
				checkIDs(t, listExpiring(t, s, f), soonestFirst(tt.want))
			})
		}
	}
}
