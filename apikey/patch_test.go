package apikey_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/apikey"
)

// TestOptionalJSON checks the three states a PATCH field decodes to.
func TestOptionalJSON(t *testing.T) {
	tests := []struct {
		name, body string
		want       apikey.Optional[string]
	}{
		{"OKAbsent", `{}`, apikey.Optional[string]{}},
		{"OKNull", `{"v": null}`, apikey.Null[string]()},
		{"OKValue", `{"v": "x"}`, apikey.Some("x")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b struct {
				V apikey.Optional[string] `json:"v"`
			}
			if err := json.Unmarshal([]byte(tt.body), &b); err != nil {
				t.Fatal(err)
			}
			if b.V != tt.want {
				t.Fatalf("got %+v, want %+v", b.V, tt.want)
			}
		})
	}
}

// TestKeyPatch checks what a patch does to a key and what Diff then
// reports as before and after.
func TestKeyPatch(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	base := &apikey.Key{ID: "key_1", Name: "n", Scopes: []string{"a"}, ExpiresAt: now.Add(time.Hour),
		CreatedAt: now.Add(-100 * apikey.Day), RotationWebhookURL: "https://h.example/x"}
	tests := []struct {
		name          string
		patch         apikey.KeyPatch
		errs          int
		before, after map[string]any
	}{
		{"OKNothing", apikey.KeyPatch{}, 0, map[string]any{}, map[string]any{}},
		{"OKSameName", apikey.KeyPatch{Name: apikey.Some("n")}, 0, map[string]any{}, map[string]any{}},
		{"OKClearExpiry", apikey.KeyPatch{ExpiresAt: apikey.Null[time.Time]()}, 0,
			map[string]any{"expires_at": now.Add(time.Hour)}, map[string]any{"expires_at": nil}},
		{"OKSchedule", apikey.KeyPatch{RotationIntervalDays: apikey.Some(30)}, 0,
			map[string]any{"rotation_interval_days": nil, "next_rotation_at": nil},
			map[string]any{"rotation_interval_days": 30, "next_rotation_at": now}}, // older than 30 days: due now
		{"OKSetOwner", apikey.KeyPatch{OwnerID: apikey.Some("team@acme.example")}, 0,
			map[string]any{"owner_id": nil}, map[string]any{"owner_id": "team@acme.example"}},
		{"OKClearOwner", apikey.KeyPatch{OwnerID: apikey.Null[string]()}, 0, map[string]any{}, map[string]any{}},
		{"ErrBadOwner", apikey.KeyPatch{OwnerID: apikey.Some("no spaces")}, 1, nil, nil},
		{"ErrEmptyOwner", apikey.KeyPatch{OwnerID: apikey.Some("")}, 1, nil, nil},
		{"ErrNullName", apikey.KeyPatch{Name: apikey.Null[string]()}, 1, nil, nil},
		{"ErrPastExpiry", apikey.KeyPatch{ExpiresAt: apikey.Some(now)}, 1, nil, nil},
		{"ErrNextWithoutInterval", apikey.KeyPatch{NextRotationAt: apikey.Some(now)}, 1, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.patch
			k := base.Clone()
			errs := append(p.Check(now), p.Apply(k, now)...)
			if len(errs) != tt.errs {
				t.Fatalf("errors %v, want %d", errs, tt.errs)
			}
			if tt.errs > 0 {
				return
			}
			was, is := apikey.Diff(base, k)
			for side, m := range map[string][2]map[string]any{"before": {was, tt.before}, "after": {is, tt.after}} {
				got, want := m[0], m[1]
				if len(got) != len(want) {
					t.Fatalf("%s = %v, want %v", side, got, want)
				}
				for f, w := range want {
					g := got[f]
					if gt, ok := g.(time.Time); ok {
						if wt, ok := w.(time.Time); !ok || !gt.Equal(wt) {
							t.Errorf("%s[%s] = %v, want %v", side, f, g, w)
						}
					} else if g != w {
						t.Errorf("%s[%s] = %v, want %v", side, f, g, w)
					}
				}
			}
		})
	}
}
