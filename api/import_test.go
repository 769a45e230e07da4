package api

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/apikeyd/apikeyd/apikey"
	"github.com/apikeyd/apikeyd/service"
)

// TestImport checks SPEC §9's import: by plaintext and by hash, atomic
// batches (a bad item, a duplicate in the batch, an existing hash store
// nothing), verification of foreign formats once imports exist, the store
// lookups that costs and does not cost, and rotation to apikeyd's format.
func TestImport(t *testing.T) {
	f := newFixture(t, 100)
	verifier := f.create(t, service.CreateInput{ProjectID: "p1", Name: "verifier", Scopes: []string{apikey.ScopeVerify}})
	verify := func(key string) string {
		t.Helper()
		status, body := f.do(t, "POST", "/v1/api-keys/verify", verifier.Plaintext, []byte(`{"key":"`+key+`"}`))
		var v map[string]any
		if err := json.Unmarshal(body, &v); err != nil || status != http.StatusOK {
			t.Fatalf("verify: %d %s", status, body)
		}
		return v["code"].(string)
	}
	// A mistyped key of ours: last checksum character changed.
	typo := verifier.Plaintext[:len(verifier.Plaintext)-1] + string("0A"[map[bool]int{true: 1}[verifier.Plaintext[len(verifier.Plaintext)-1] == '0']])
	const legacy, legacyByHash, unknown = "legacy-0123456789-abcdef", "ext_9f8e7d6c5b4a", "legacy-never-imported-42"
	sum := sha256.Sum256([]byte(legacyByHash))
	hash := "sha256:" + hex.EncodeToString(sum[:])

	before := f.store.lookups.Load()
	if code := verify(unknown); code != "MALFORMED" {
		t.Fatalf("foreign key before any import: %s", code)
	}
	if n := f.store.lookups.Load() - before; n != 0 {
		t.Fatalf("a foreign key before any import cost %d store lookups", n)
	}

	item := func(name, kv string) string { return `{"name":"` + name + `",` + kv + `}` }
	batch := func(items ...string) []byte {
		return []byte(`{"project_id":"p1","keys":[` + strings.Join(items, ",") + `]}`)
	}
	for _, tc := range []struct {
		name   string
		body   []byte
		status int
		field  string
	}{
		{"ErrBadHash", batch(item("a", `"key":"`+legacy+`"`), item("b", `"hash":"sha256:XYZ"`)), http.StatusBadRequest, "keys[1].hash"},
		{"ErrKeyAndHash", batch(item("a", `"key":"`+legacy+`","hash":"`+hash+`"`)), http.StatusBadRequest, "keys[0].key"},
		{"ErrNeither", batch(item("a", `"owner_id":"o"`)), http.StatusBadRequest, "keys[0].hash"},
		{"ErrBadMeta", batch(item("a", `"key":"`+legacy+`","meta":{"x":"`+strings.Repeat("y", 4100)+`"}`)), http.StatusBadRequest, "keys[0].meta"},
		{"ErrBadAllowlist", batch(item("a", `"key":"`+legacy+`","ip_allowlist":["10.0.0.1/8"]`)), http.StatusBadRequest, "keys[0].ip_allowlist[0]"},
		{"ErrTwiceInBatch", batch(item("a", `"hash":"`+hash+`"`), item("b", `"key":"`+legacyByHash+`"`)), http.StatusConflict, "keys[1].key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := f.do(t, "POST", "/v1/api-keys/import", f.admin, tc.body)
			if status != tc.status || !strings.Contains(string(body), `"field":"`+tc.field+`"`) {
				t.Fatalf("%d %s, want %d naming %s", status, body, tc.status, tc.field)
			}
		})
	}
	if code := verify(legacy); code != "MALFORMED" {
		t.Fatalf("refused batches stored something: %s", code)
	}

	status, body := f.do(t, "POST", "/v1/api-keys/import", f.admin, batch(
		item("by key", `"key":"`+legacy+`","owner_id":"cust-1","meta":{"plan":"pro"},"scopes":["read"]`),
		item("by hash", `"hash":"`+hash+`","key_prefix":"ext_"`)))
	if status != http.StatusCreated {
		t.Fatalf("import: %d %s", status, body)
	}
	if strings.Contains(string(body), legacy) || strings.Contains(string(body), legacyByHash) {
		t.Fatalf("the import answer holds a plaintext: %s", body)
	}
	var out struct{ Keys []map[string]any }
	if err := json.Unmarshal(body, &out); err != nil || len(out.Keys) != 2 {
		t.Fatalf("import answer %s", body)
	}
	for _, k := range out.Keys {
		if k["source"] != "imported" || k["key"] != nil {
			t.Errorf("imported key %v", k)
		}
	}
	if out.Keys[0]["key_prefix"] != "legacy" || out.Keys[1]["key_prefix"] != "ext_" || out.Keys[0]["owner_id"] != "cust-1" {
		t.Errorf("prefixes/owner %v %v", out.Keys[0], out.Keys[1])
	}
	for _, k := range []string{legacy, legacyByHash} {
		if code := verify(k); code != "VALID" {
			t.Errorf("imported %s: %s", k, code)
		}
	}
	if code := verify(unknown); code != "NOT_FOUND" {
		t.Errorf("unknown foreign key once imports exist: %s", code)
	}
	before = f.store.lookups.Load()
	verify(unknown)
	if code := verify(typo); code != "MALFORMED" {
		t.Errorf("our format with a bad checksum: %s", code)
	}
	if n := f.store.lookups.Load() - before; n != 0 {
		t.Errorf("a remembered unknown key and a mistyped key of ours cost %d store lookups", n)
	}

	status, body = f.do(t, "POST", "/v1/api-keys/import", f.admin, batch(item("again", `"key":"`+legacy+`"`)))
	if status != http.StatusConflict || !strings.Contains(string(body), `"field":"keys[0].key"`) {
		t.Fatalf("existing key: %d %s", status, body)
	}

	status, body = f.do(t, "POST", "/v1/api-keys/"+out.Keys[0]["id"].(string)+"/rotate", f.admin, nil)
	var rot map[string]any
	if err := json.Unmarshal(body, &rot); err != nil || status != http.StatusCreated {
		t.Fatalf("rotate: %d %s", status, body)
	}
	if !apikey.ParseKey(rot["key"].(string)) {
		t.Errorf("the replacement of an imported key: %v", rot)
	}
	status, body = f.do(t, "GET", "/v1/api-keys/"+rot["new_key_id"].(string), f.admin, nil)
	if !strings.Contains(string(body), `"owner_id":"cust-1"`) || !strings.Contains(string(body), `"source":"issued"`) {
		t.Errorf("the replacement keeps the owner and is issued: %d %s", status, body)
	}
	status, body = f.do(t, "GET", "/v1/audit-events?project_id=p1&action=api_key.imported", f.admin, nil)
	if n := strings.Count(string(body), `"action":"api_key.imported"`); status != http.StatusOK || n != 2 {
		t.Errorf("imported events: %d, %d of them: %s", status, n, body)
	}
	if strings.Contains(string(body), legacy) {
		t.Error("an audit event holds a plaintext")
	}
}
