package storetest

import (
	"cmp"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/apikey"
)

// newEvent returns an audit event about k.
func newEvent(t *testing.T, k *apikey.Key, action string, at time.Time) *apikey.AuditEvent {
	t.Helper()
	id, err := apikey.NewID(apikey.IDKindEvent)
	if err != nil {
		t.Fatal(err)
	}
	return &apikey.AuditEvent{
		ID:            id,
		ProjectID:     k.ProjectID,
		EnvironmentID: k.EnvironmentID,
		KeyID:         k.ID,
		Action:        action,
		Actor:         apikey.Actor{Type: apikey.ActorAdmin},
		Details:       map[string]any{"name": k.Name},
		CreatedAt:     at,
	}
}

// insertEvents appends events to the audit log in one transaction.
func insertEvents(t *testing.T, s apikey.Store, events ...*apikey.AuditEvent) {
	t.Helper()
	err := s.Update(t.Context(), func(tx apikey.Tx) error {
		for _, e := range events {
			if err := tx.InsertAuditEvent(t.Context(), e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("insert audit events: %v", err)
	}
}

// listEvents returns every event f selects, walking pages of f.Limit.
func listEvents(t *testing.T, s apikey.Store, f apikey.AuditFilter) []*apikey.AuditEvent {
	t.Helper()
	return paginate(t, f.Limit, func(after *apikey.Cursor) ([]*apikey.AuditEvent, error) {
		f.After = after
		return s.AuditEvents(t.Context(), f)
	}, func(e *apikey.AuditEvent) apikey.Cursor { return apikey.Cursor{Time: e.CreatedAt, ID: e.ID} })
}

func eventIDs(events []*apikey.AuditEvent) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = e.ID
	}
	return out
}

// newestEventsFirst returns the IDs of events in the order of
// Store.AuditEvents.
func newestEventsFirst(events []*apikey.AuditEvent) []string {
	events = slices.Clone(events)
	slices.SortFunc(events, func(a, b *apikey.AuditEvent) int {
		return cmp.Or(b.CreatedAt.Compare(a.CreatedAt), cmp.Compare(b.ID, a.ID))
	})
	return eventIDs(events)
}

func testAuditEvents(t *testing.T, s apikey.Store) {
	prod, noEnv, other := newKey(t, "p1"), newKey(t, "p1"), newKey(t, "p2")
	prod.EnvironmentID, other.EnvironmentID = "prod", "prod"
	actions := []string{apikey.ActionCreated, apikey.ActionUpdated, apikey.ActionRotated, apikey.ActionRevoked}
	actors := []apikey.Actor{{Type: apikey.ActorAdmin}, {Type: apikey.ActorAPIKey, KeyID: other.ID}, apikey.SystemActor}
	var events []*apikey.AuditEvent
	for i := range 24 {
		k := []*apikey.Key{prod, noEnv, other}[i%3]
		at := t0.Add(time.Duration(i/6) * time.Minute) // six events per instant: ties broken by ID
		if i%7 == 0 {
			at = at.Add(time.Microsecond)
		}
		e := newEvent(t, k, actions[i%4], at)
		e.Actor = actors[i%3]
		events = append(events, e)
	}
	insertEvents(t, s, events...)

	where := func(keep func(e *apikey.AuditEvent) bool) []*apikey.AuditEvent {
		return slices.DeleteFunc(slices.Clone(events), func(e *apikey.AuditEvent) bool { return !keep(e) })
	}
	inP1 := func(e *apikey.AuditEvent) bool { return e.ProjectID == "p1" }
	tests := []struct {
		name string
		f    apikey.AuditFilter
		want []*apikey.AuditEvent
	}{
		{"OKProject", apikey.AuditFilter{ProjectID: "p1"}, where(inP1)},
		{"OKOtherProject", apikey.AuditFilter{ProjectID: "p2"}, where(func(e *apikey.AuditEvent) bool { return e.ProjectID == "p2" })},
		{"OKEnvironment", apikey.AuditFilter{ProjectID: "p1", EnvironmentID: "prod"}, where(func(e *apikey.AuditEvent) bool { return e.KeyID == prod.ID })},
		{"OKKey", apikey.AuditFilter{ProjectID: "p1", KeyID: noEnv.ID}, where(func(e *apikey.AuditEvent) bool { return e.KeyID == noEnv.ID })},
		{"OKKeyOfOtherProject", apikey.AuditFilter{ProjectID: "p1", KeyID: other.ID}, nil},
		{"OKAction", apikey.AuditFilter{ProjectID: "p1", Action: apikey.ActionRevoked}, where(func(e *apikey.AuditEvent) bool {
			return inP1(e) && e.Action == apikey.ActionRevoked
		})},
		{"OKKeyAndAction", apikey.AuditFilter{ProjectID: "p1", KeyID: prod.ID, Action: apikey.ActionCreated}, where(func(e *apikey.AuditEvent) bool {
			return e.KeyID == prod.ID && e.Action == apikey.ActionCreated
		})},
		{"OKUnknownProject", apikey.AuditFilter{ProjectID: "p3"}, nil},
	}
	for _, tt := range tests {
		for _, limit := range append(pageLimits, 100) {
			t.Run(fmt.Sprintf("%s/Limit%d", tt.name, limit), func(t *testing.T) {
				f := tt.f
				f.Limit = limit
				got := listEvents(t, s, f)
				checkIDs(t, eventIDs(got), newestEventsFirst(tt.want))
				for _, e := range got {
					i := slices.IndexFunc(events, func(w *apikey.AuditEvent) bool { return w.ID == e.ID })
					if i >= 0 {
						checkEqual(t, e, events[i])
					}
				}
			})
		}
	}
}

// testAuditEventDetails checks what becomes of details, which stores keep as
// JSON: numbers come back as float64, times as RFC 3339 strings, slices as
// []any, nested maps as map[string]any, and nil or empty details as an
// empty map.
func testAuditEventDetails(t *testing.T, s apikey.Store) {
	berlin := time.FixedZone("CET", 3600)
	tests := []struct {
		name    string
		details map[string]any
		want    map[string]any
	}{
		{"OKNil", nil, map[string]any{}},
		{"OKEmpty", map[string]any{}, map[string]any{}},
		{"OKScalars", map[string]any{"s": "ünïcode \"quoted\"", "b": true, "n": nil, "i": 42, "f": 1.5, "big": int64(1) << 53},
			map[string]any{"s": "ünïcode \"quoted\"", "b": true, "n": nil, "i": 42.0, "f": 1.5, "big": float64(int64(1) << 53)}},
		{"OKTime", map[string]any{"expires_at": t0.In(berlin)}, map[string]any{"expires_at": "2031-03-04T06:06:07.891011+01:00"}},
		{"OKNested", map[string]any{
			"scopes":  []string{"a:*", "b"},
			"changes": map[string]any{"name": map[string]any{"from": "old", "to": "new"}, "ids": []any{1, "x"}},
			"empty":   []string{},
		}, map[string]any{
			"scopes":  []any{"a:*", "b"},
			"changes": map[string]any{"name": map[string]any{"from": "old", "to": "new"}, "ids": []any{1.0, "x"}},
			"empty":   []any{},
		}},
	}
	k := newKey(t, "p1")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEvent(t, k, apikey.ActionUpdated, t0)
			e.KeyID = "key_" + tt.name
			e.Details = tt.details
			insertEvents(t, s, e)
			got, err := s.AuditEvents(t.Context(), apikey.AuditFilter{ProjectID: "p1", KeyID: e.KeyID, Limit: 10})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 {
				t.Fatalf("got %d events, want 1", len(got))
			}
			want := *e
			want.Details = tt.want
			checkEqual(t, got[0], &want)
		})
	}
}
