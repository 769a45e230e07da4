// Package storetest is the conformance suite of apikey.Store. Every backend
// runs it from its own tests, so that the service sees the same behaviour
// whichever store it is given:
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) apikey.Store {
//			s := openEmptyStore(t)
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
//
// Besides what apikey/store.go states, the suite pins down what the contract
// leaves implicit and the service relies on: InsertKey and UpdateKey set the
// Version of the key they are given; nil or empty Scopes and nil Details come
// back empty but non-nil; audit details are JSON, so numbers come back as
// float64 and times as RFC 3339 strings; UpdateKey leaves the fields that
// never change (ID, project, environment, prefix, hash, created_at) and
// last_used_at alone. Times come back in UTC, at microsecond precision.
package storetest

import (
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/apikey"
)

// Run runs the suite. open is called once per subtest and must return an
// empty store; the caller registers its cleanup.
func Run(t *testing.T, open func(t *testing.T) apikey.Store) {
	tests := []struct {
		name string
		fn   func(*testing.T, apikey.Store)
	}{
		{"InsertKey", testInsertKey},
		{"InsertKeyConflict", testInsertKeyConflict},
		{"NotFound", testNotFound},
		{"UpdateKey", testUpdateKey},
		{"UpdateKeyStale", testUpdateKeyStale},
		{"UpdateRollback", testUpdateRollback},
		{"UpdateConcurrent", testUpdateConcurrent},
		{"KeysOrder", testKeysOrder},
		{"KeysFilter", testKeysFilter},
		{"KeysStatus", testKeysStatus},
		{"ExpiringKeys", testExpiringKeys},
		{"AuditEvents", testAuditEvents},
		{"AuditEventDetails", testAuditEventDetails},
		{"ScanKeys", testScanKeys},
		{"KeyChanges", testKeyChanges},
		{"KeyChangesConcurrent", testKeyChangesConcurrent},
		{"TouchKeys", testTouchKeys},
		{"Ping", testPing},
		{"InsertDelivery", testInsertDelivery},
		{"InsertDeliveryConflict", testInsertDeliveryConflict},
		{"DeliveryNotFound", testDeliveryNotFound},
		{"UpdateDelivery", testUpdateDelivery},
		{"DueKeys", testDueKeys},
		{"DueKeysConcurrent", testDueKeysConcurrent},
		{"DueDeliveries", testDueDeliveries},
		{"DueDeliveriesConcurrent", testDueDeliveriesConcurrent},
		{"NextDeliveryAt", testNextDeliveryAt},
	}
	tests = append(tests, rootKeyTests...)
	tests = append(tests, usageTests...)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, open(t)) })
	}
}

// t0 is the suite's "now": in the future, with microseconds, so that both
// backends must keep the full precision the contract promises.
var t0 = time.Date(2031, 3, 4, 5, 6, 7, 891011000, time.UTC)

// newKey returns a minimal key of the project, created at t0.
func newKey(t *testing.T, projectID string) *apikey.Key {
	t.Helper()
	id, err := apikey.NewID(apikey.IDKindKey)
	if err != nil {
		t.Fatal(err)
	}
	return &apikey.Key{
		ID:        id,
		ProjectID: projectID,
		Name:      "key " + id,
		KeyPrefix: "sk_" + id[len(id)-9:],
		Hash:      apikey.HashKey(id),
		Scopes:    []string{},
		CreatedAt: t0,
		UpdatedAt: t0,
	}
}

// fullKey returns a key with every field set.
func fullKey(t *testing.T, projectID string) *apikey.Key {
	t.Helper()
	k := newKey(t, projectID)
	k.EnvironmentID = "production"
	k.Scopes = []string{"api-keys:read", "billing:*"}
	k.ExpiresAt = t0.Add(30 * 24 * time.Hour)
	k.LastUsedAt = t0.Add(time.Minute)
	k.UpdatedAt = t0.Add(time.Hour)
	k.RevokedAt = t0.Add(2 * time.Hour)
	k.ReplacedByKeyID = "key_replacement"
	k.GraceExpiresAt = t0.Add(3 * time.Hour)
	k.ReplacesKeyID = "key_predecessor"
	k.RotationIntervalDays = 90
	k.NextRotationAt = t0.Add(90 * 24 * time.Hour)
	k.RotationWebhookURL = "https://hooks.example.com/rotated"
	k.WebhookSecretSealed = []byte{0, 1, 2, 0xfe, 0xff}
	k.OwnerID = "team:billing@acme.example"
	k.Meta = []byte(`{"plan":"pro","limits":{"rps":10},"tags":["a","é"]}`)
	k.IPAllowlist = apikey.Allowlist{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32"), netip.MustParsePrefix("192.0.2.7/32")}
	k.DisabledAt = t0.Add(4 * time.Hour)
	k.DisabledReason = "suspicious traffic"
	k.RevocationReason = apikey.RevocationKeyCompromise
	k.Source = apikey.SourceImported
	k.LineageID = "key_lineage"
	k.RateLimits = []apikey.RateLimit{{Name: "per_second", Limit: 10, DurationMS: 1000}, {Name: "daily", Limit: 1e6, DurationMS: 86400000}}
	k.HasCredits = true
	return k
}

// insert stores keys in one transaction.
func insert(t *testing.T, s apikey.Store, keys ...*apikey.Key) {
	t.Helper()
	err := s.Update(t.Context(), func(tx apikey.Tx) error {
		for _, k := range keys {
			if err := tx.InsertKey(t.Context(), k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("insert keys: %v", err)
	}
}

// stored returns k as a store returns it: a copy with non-nil Scopes.
func stored(k *apikey.Key) *apikey.Key {
	c := k.Clone()
	if c.Scopes == nil {
		c.Scopes = []string{}
	}
	c.Source = c.SourceOrIssued()
	return c
}

// mustKey reads a key that must exist.
func mustKey(t *testing.T, s apikey.Store, id string) *apikey.Key {
	t.Helper()
	k, err := s.Key(t.Context(), id)
	if err != nil {
		t.Fatalf("Key(%s): %v", id, err)
	}
	return k
}

// checkEqual fails unless got and want (structs, or pointers to them) hold
// the same values. Times must be equal instants, in UTC, at microsecond
// precision; everything else must be deeply equal, so that a nil slice and
// an empty one differ.
func checkEqual(t *testing.T, got, want any) {
	t.Helper()
	for _, d := range diff(reflect.ValueOf(got), reflect.ValueOf(want), "") {
		t.Error(d)
	}
}

func diff(g, w reflect.Value, path string) []string {
	if g.Kind() == reflect.Pointer {
		if g.IsNil() || w.IsNil() {
			if g.IsNil() != w.IsNil() {
				return []string{fmt.Sprintf("%s: got %v, want %v", path, g, w)}
			}
			return nil
		}
		g, w = g.Elem(), w.Elem()
	}
	if gt, ok := g.Interface().(time.Time); ok {
		wt := w.Interface().(time.Time)
		if !gt.Equal(wt) || gt.Location() != time.UTC || gt.Nanosecond()%1000 != 0 {
			return []string{fmt.Sprintf("%s: got %v, want %v (UTC, µs)", path, gt, wt)}
		}
		return nil
	}
	if g.Kind() == reflect.Struct {
		var out []string
		for i := range g.NumField() {
			out = append(out, diff(g.Field(i), w.Field(i), path+"."+g.Type().Field(i).Name)...)
		}
		return out
	}
	if !reflect.DeepEqual(g.Interface(), w.Interface()) {
		return []string{fmt.Sprintf("%s: got %#v, want %#v", path, g.Interface(), w.Interface())}
	}
	return nil
}

// checkCode fails unless err carries the given apikey error code.
func checkCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := apikey.ErrorCode(err); got != code {
		t.Errorf("error code %q (%v), want %q", got, err, code)
	}
}

// ids returns the IDs of keys, in order.
func ids(keys []*apikey.Key) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k.ID
	}
	return out
}

// checkIDs fails unless got lists exactly the IDs of want, in order.
func checkIDs(t *testing.T, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("got %d IDs:\n%s\nwant %d:\n%s", len(got), strings.Join(got, "\n"), len(want), strings.Join(want, "\n"))
	}
}

// paginate walks a listing page by page, each page starting after the
// cursor of the last item of the one before, and returns every item seen.
// It fails if a page is longer than limit or the walk does not end.
func paginate[T any](t *testing.T, limit int, page func(after *apikey.Cursor) ([]T, error), cursor func(T) apikey.Cursor) []T {
	t.Helper()
	var all []T
	var after *apikey.Cursor
	for range 10000 {
		items, err := page(after)
		if err != nil {
			t.Fatalf("page after %v: %v", after, err)
		}
		if len(items) > limit {
			t.Fatalf("page of %d items, limit %d", len(items), limit)
		}
		all = append(all, items...)
		if len(items) < limit {
			return all
		}
		c := cursor(items[len(items)-1])
		after = &c
	}
	t.Fatal("pagination does not end")
	return nil
}

func testPing(t *testing.T, s apikey.Store) {
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

// errAbort is what the suite's transactions return to be rolled back.
var errAbort = errors.New("abort")
