package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestRichKeys runs every bullet of SPEC §9 against a real server on each
// backend: the new fields through create, get, list (by owner) and PATCH,
// their 400s, disable and enable, revocation reasons, IP allowlists on
// verify and as bearers, and import by hash and by plaintext.
func TestRichKeys(t *testing.T) {
	s := startServer(t)
	verifier := s.create(t, s.Admin, map[string]any{"project_id": "p1", "name": "verifier", "scopes": []string{"api-keys:verify"}})
	get := func(t *testing.T, id string) map[string]any {
		t.Helper()
		return expect(t, s.do(t, http.MethodGet, "/v1/api-keys/"+id, s.Admin, nil), http.StatusOK).object(t)
	}
	code := func(t *testing.T, body map[string]any) string {
		t.Helper()
		return s.verify(t, verifier.Secret, body)["code"].(string)
	}

	t.Run("RoundTripAndFilter", func(t *testing.T) {
		k := s.create(t, s.Admin, map[string]any{"project_id": "p1", "name": "rt", "owner_id": "user:7@acme.example",
			"meta": map[string]any{"plan": "pro", "seats": 3}, "ip_allowlist": []string{"192.0.2.0/24", "2001:db8::/48"}})
		other := s.create(t, s.Admin, map[string]any{"project_id": "p1", "name": "other", "owner_id": "user:8"})
		g := get(t, k.ID)
		if b, _ := json.Marshal(g["meta"]); g["owner_id"] != "user:7@acme.example" || string(b) != `{"plan":"pro","seats":3}` ||
			g["source"] != "issued" || fmt.Sprint(g["ip_allowlist"]) != "[192.0.2.0/24 2001:db8::/48]" {
			t.Fatalf("get: %v", g)
		}
		l := expect(t, s.do(t, http.MethodGet, "/v1/api-keys?project_id=p1&owner_id=user:7@acme.example", s.Admin, nil), http.StatusOK).list(t)
		if len(l) != 1 || l[0]["id"] != k.ID {
			t.Fatalf("list by owner: %v", l)
		}
		p := expect(t, s.do(t, http.MethodPatch, "/v1/api-keys/"+k.ID, s.Admin, map[string]any{"meta": map[string]any{"plan": "free"}, "owner_id": "user:8"}), http.StatusOK).object(t)
		if b, _ := json.Marshal(p["meta"]); string(b) != `{"plan":"free"}` {
			t.Errorf("patched meta %s, want it replaced whole", b)
		}
		l = expect(t, s.do(t, http.MethodGet, "/v1/api-keys?project_id=p1&owner_id=user:8", s.Admin, nil), http.StatusOK).list(t)
		if len(l) != 2 || !slices.ContainsFunc(l, func(m map[string]any) bool { return m["id"] == other.ID }) {
			t.Errorf("list by the new owner: %v", l)
		}
		p = expect(t, s.do(t, http.MethodPatch, "/v1/api-keys/"+k.ID, s.Admin, `{"meta":null,"owner_id":null,"ip_allowlist":null}`), http.StatusOK).object(t)
		if p["meta"] != nil || p["owner_id"] != nil || p["ip_allowlist"] != nil {
			t.Errorf("cleared: %v", p)
		}
		v := s.verify(t, verifier.Secret, map[string]any{"key": other.Secret})
		if v["owner_id"] != "user:8" || v["meta"] != nil {
			t.Errorf("verify shows owner and meta: %v", v)
		}
	})

	t.Run("Invalid", func(t *testing.T) {
		k := s.create(t, s.Admin, map[string]any{"project_id": "p1", "name": "inv", "meta": map[string]any{"a": 1}})
		members := map[string]any{}
		for i := range 65 {
			members[fmt.Sprint("m", i)] = i
		}
		for _, tc := range []struct {
			name, field string
			body        map[string]any
		}{
			{"MetaTooBig", "meta", map[string]any{"meta": map[string]any{"x": strings.Repeat("a", 4096)}}},
			{"MetaTooManyMembers", "meta", map[string]any{"meta": members}},
			{"MetaNotObject", "meta", map[string]any{"meta": []int{1}}},
			{"OwnerChars", "owner_id", map[string]any{"owner_id": "no spaces"}},
			{"AllowlistHostBits", "ip_allowlist[3]", map[string]any{"ip_allowlist": []string{"10.0.0.0/8", "::1", "192.0.2.1", "192.0.2.1/24"}}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				create := map[string]any{"project_id": "p1", "name": "x"}
				for f, v := range tc.body {
					create[f] = v
				}
				for _, r := range []*response{
					s.do(t, http.MethodPost, "/v1/api-keys", s.Admin, create),
					s.do(t, http.MethodPatch, "/v1/api-keys/"+k.ID, s.Admin, tc.body),
				} {
					p := problem(t, r, http.StatusBadRequest)
					if f := fieldsOf(p); !slices.ContainsFunc(f, func(s string) bool { return strings.HasPrefix(s, tc.field) }) {
						t.Errorf("fields %v, want %s", f, tc.field)
					}
				}
			})
		}
		if b, _ := json.Marshal(get(t, k.ID)["meta"]); string(b) != `{"a":1}` {
			t.Errorf("refused patches changed meta: %s", b)
		}
	})

	t.Run("DisableEnable", func(t *testing.T) {
		k := s.create(t, s.Admin, map[string]any{"project_id": "p1", "name": "pause", "scopes": []string{"api-keys:read"}})
		for range 2 {
			d := expect(t, s.do(t, http.MethodPost, "/v1/api-keys/"+k.ID+"/disable", s.Admin, map[string]any{"reason": "chargeback"}), http.StatusOK).object(t)
			if d["status"] != "disabled" || d["disabled_reason"] != "chargeback" {
				t.Fatalf("disable: %v", d)
			}
		}
		if c := code(t, map[string]any{"key": k.Secret}); c != "DISABLED" {
			t.Errorf("verify: %s", c)
		}
		problem(t, s.do(t, http.MethodGet, "/v1/api-keys/"+k.ID, k.Secret, nil), http.StatusUnauthorized)
		problem(t, s.do(t, http.MethodPost, "/v1/api-keys/"+k.ID+"/rotate", s.Admin, nil), http.StatusConflict)
		for range 2 {
			e := expect(t, s.do(t, http.MethodPost, "/v1/api-keys/"+k.ID+"/enable", s.Admin, nil), http.StatusOK).object(t)
			if e["status"] != "active" || e["disabled_at"] != nil {
				t.Fatalf("enable: %v", e)
			}
		}
		if c := code(t, map[string]any{"key": k.Secret}); c != "VALID" {
			t.Errorf("verify after enable: %s", c)
		}
		expect(t, s.do(t, http.MethodGet, "/v1/api-keys/"+k.ID, k.Secret, nil), http.StatusOK)
	})

	t.Run("RevocationReason", func(t *testing.T) {
		k := s.create(t, s.Admin, map[string]any{"project_id": "p1", "name": "rev"})
		problem(t, s.do(t, http.MethodDelete, "/v1/api-keys/"+k.ID+"?reason=stolen", s.Admin, nil), http.StatusBadRequest)
		if g := get(t, k.ID); g["revoked_at"] != nil || g["revocation_reason"] != nil {
			t.Fatalf("a refused revoke changed the key: %v", g)
		}
		expect(t, s.do(t, http.MethodDelete, "/v1/api-keys/"+k.ID+"?reason=key_compromise", s.Admin, nil), http.StatusNoContent)
		expect(t, s.do(t, http.MethodDelete, "/v1/api-keys/"+k.ID+"?reason=superseded", s.Admin, nil), http.StatusNoContent)
		if g := get(t, k.ID); g["revocation_reason"] != "key_compromise" || g["status"] != "revoked" {
			t.Errorf("revoked: %v", g)
		}
		problem(t, s.do(t, http.MethodPost, "/v1/api-keys/"+k.ID+"/disable", s.Admin, nil), http.StatusConflict)
		d := s.create(t, s.Admin, map[string]any{"project_id": "p1", "name": "rev default"})
		expect(t, s.do(t, http.MethodDelete, "/v1/api-keys/"+d.ID, s.Admin, nil), http.StatusNoContent)
		if g := get(t, d.ID); g["revocation_reason"] != "unspecified" {
			t.Errorf("default reason %v", g["revocation_reason"])
		}
	})

	t.Run("Allowlist", func(t *testing.T) {
		fenced := s.create(t, s.Admin, map[string]any{"project_id": "p1", "name": "fenced", "scopes": []string{"api-keys:read"},
			"ip_allowlist": []string{"10.0.0.0/8", "2001:db8::/32"}})
		local := s.create(t, s.Admin, map[string]any{"project_id": "p1", "name": "local", "scopes": []string{"api-keys:read"},
			"ip_allowlist": []string{"127.0.0.1"}})
		for _, tc := range []struct {
			name     string
			clientIP any
			want     string
		}{
			{"Missing", nil, "IP_NOT_ALLOWED"},
			{"Unparsable", "10.0.0.300", "IP_NOT_ALLOWED"},
			{"IPv4Outside", "11.0.0.1", "IP_NOT_ALLOWED"},
			{"IPv4Inside", "10.20.30.40", "VALID"},
			{"IPv6Inside", "2001:db8:1::5", "VALID"},
			{"IPv6Outside", "2001:db9::5", "IP_NOT_ALLOWED"},
			{"MappedIPv4Inside", "::ffff:10.1.1.1", "VALID"},
			{"MappedIPv4Outside", "::ffff:11.1.1.1", "IP_NOT_ALLOWED"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				body := map[string]any{"key": fenced.Secret}
				if tc.clientIP != nil {
					body["client_ip"] = tc.clientIP
				}
				if c := code(t, body); c != tc.want {
					t.Errorf("%s, want %s", c, tc.want)
				}
			})
		}
		// The e2e server is reached from 127.0.0.1.
		problem(t, s.do(t, http.MethodGet, "/v1/api-keys/"+fenced.ID, fenced.Secret, nil), http.StatusUnauthorized)
		expect(t, s.do(t, http.MethodGet, "/v1/api-keys/"+local.ID, local.Secret, nil), http.StatusOK)

		denied := s.create(t, s.Admin, map[string]any{"project_id": "p1", "name": "denied", "ip_allowlist": []string{"10.0.0.0/8"}})
		if c := code(t, map[string]any{"key": denied.Secret, "client_ip": "192.0.2.1"}); c != "IP_NOT_ALLOWED" {
			t.Fatalf("verify: %s", c)
		}
		time.Sleep(600 * time.Millisecond) // three last-use flushes
		if g := get(t, denied.ID); g["last_used_at"] != nil {
			t.Errorf("IP_NOT_ALLOWED touched last_used_at: %v", g["last_used_at"])
		}
	})

	t.Run("Import", func(t *testing.T) {
		byKey, byHash := "legacy_"+randomHex(t, 12), "zz-"+randomHex(t, 10)
		secrets.add("imported key", byKey)
		secrets.add("imported key", byHash)
		sum := sha256.Sum256([]byte(byHash))
		hash := "sha256:" + hex.EncodeToString(sum[:])
		unknownForeign := "legacy_" + randomHex(t, 12)
		if c := code(t, map[string]any{"key": unknownForeign}); c != "MALFORMED" {
			t.Errorf("a foreign key before any import: %s", c)
		}
		items := func(extra ...map[string]any) map[string]any {
			keys := []map[string]any{
				{"name": "by key", "key": byKey, "owner_id": "cust-9", "meta": map[string]any{"tier": "gold"}, "scopes": []string{"orders:read"}},
				{"name": "by hash", "hash": hash, "key_prefix": "zz-", "ip_allowlist": []string{"10.0.0.0/8"}},
			}
			for _, e := range extra {
				keys = append(keys, e)
			}
			return map[string]any{"project_id": "p1", "keys": keys}
		}
		p := problem(t, s.do(t, http.MethodPost, "/v1/api-keys/import", s.Admin, items(map[string]any{"name": "bad", "hash": "sha256:nothex"})), http.StatusBadRequest)
		if f := fieldsOf(p); !slices.Contains(f, "keys[2].hash") {
			t.Errorf("bad item: fields %v", f)
		}
		p = problem(t, s.do(t, http.MethodPost, "/v1/api-keys/import", s.Admin, items(map[string]any{"name": "dup", "key": byHash})), http.StatusConflict)
		if f := fieldsOf(p); !slices.Contains(f, "keys[2].key") {
			t.Errorf("duplicate in batch: fields %v", f)
		}
		if c := code(t, map[string]any{"key": byKey}); c != "MALFORMED" {
			t.Errorf("refused batches stored something: %s", c)
		}
		r := expect(t, s.do(t, http.MethodPost, "/v1/api-keys/import", s.Admin, items()), http.StatusCreated)
		if strings.Contains(string(r.Body), byKey) {
			t.Fatal("the import answer shows a plaintext")
		}
		var out struct{ Keys []map[string]any }
		r.json(t, &out)
		if len(out.Keys) != 2 || out.Keys[0]["source"] != "imported" || out.Keys[0]["key"] != nil {
			t.Fatalf("imported: %s", r.Body)
		}
		if v := s.verify(t, verifier.Secret, map[string]any{"key": byKey, "scopes": []string{"orders:read"}}); v["code"] != "VALID" || v["owner_id"] != "cust-9" {
			t.Errorf("by key: %v", v)
		}
		if c := code(t, map[string]any{"key": byHash, "client_ip": "10.0.0.1"}); c != "VALID" {
			t.Errorf("by hash: %s", c)
		}
		if c := code(t, map[string]any{"key": unknownForeign}); c != "NOT_FOUND" {
			t.Errorf("unknown foreign key once imports exist: %s", c)
		}
		if c := code(t, map[string]any{"key": typo(verifier.Secret)}); c != "MALFORMED" {
			t.Errorf("our format, bad checksum: %s", c)
		}
		p = problem(t, s.do(t, http.MethodPost, "/v1/api-keys/import", s.Admin, map[string]any{"project_id": "p1",
			"keys": []map[string]any{{"name": "new", "key": "fresh-" + randomHex(t, 8)}, {"name": "again", "hash": hash}}}), http.StatusConflict)
		if f := fieldsOf(p); !slices.Contains(f, "keys[1].hash") {
			t.Errorf("existing hash: fields %v", f)
		}
		rot := expect(t, s.do(t, http.MethodPost, "/v1/api-keys/"+out.Keys[0]["id"].(string)+"/rotate", s.Admin, nil), http.StatusCreated).object(t)
		secrets.add("API key", rot["key"].(string))
		if c := code(t, map[string]any{"key": typo(rot["key"].(string))}); c != "MALFORMED" {
			t.Errorf("the replacement is not checksummed: %s", c)
		}
	})
}
