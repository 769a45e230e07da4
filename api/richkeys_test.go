package api

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/apikeyd/apikeyd/apikey"
)

// decodeKey decodes a key object answer, failing unless the status is want.
func decodeKey(t *testing.T, rec interface {
	Result() *http.Response
}, want int) map[string]any {
	t.Helper()
	res := rec.Result()
	defer res.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(res.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != want {
		t.Fatalf("status %d, want %d: %v", res.StatusCode, want, m)
	}
	return m
}

// TestOwnerID checks owner_id through create, get, patch (set, null) and
// the 400 for a bad value, which changes nothing.
func TestOwnerID(t *testing.T) {
	a := newTestAPI(t, slog.New(slog.DiscardHandler))
	created := decodeKey(t, serve(a, "POST", "/v1/api-keys", testAdmin,
		`{"project_id":"p","name":"k","owner_id":"user:42@acme.example"}`), http.StatusCreated)
	if created["owner_id"] != "user:42@acme.example" {
		t.Fatalf("created owner_id = %v", created["owner_id"])
	}
	id := created["id"].(string)
	if got := decodeKey(t, serve(a, "GET", "/v1/api-keys/"+id, testAdmin, ""), http.StatusOK); got["owner_id"] != "user:42@acme.example" {
		t.Fatalf("get owner_id = %v", got["owner_id"])
	}
	for _, body := range []string{`{"owner_id":"has space"}`, `{"owner_id":""}`} {
		decodeKey(t, serve(a, "PATCH", "/v1/api-keys/"+id, testAdmin, body), http.StatusBadRequest)
	}
	if got := decodeKey(t, serve(a, "PATCH", "/v1/api-keys/"+id, testAdmin, `{"owner_id":"team-7"}`), http.StatusOK); got["owner_id"] != "team-7" {
		t.Fatalf("patched owner_id = %v", got["owner_id"])
	}
	got := decodeKey(t, serve(a, "PATCH", "/v1/api-keys/"+id, testAdmin, `{"owner_id":null}`), http.StatusOK)
	if v, ok := got["owner_id"]; !ok || v != nil {
		t.Fatalf("cleared owner_id = %v (present %v)", v, ok)
	}
	decodeKey(t, serve(a, "POST", "/v1/api-keys", testAdmin, `{"project_id":"p","name":"k","owner_id":"a b"}`), http.StatusBadRequest)
}

// TestListByOwner checks the owner_id filter of the key listing, and that
// the filter is kept in the next page's link.
func TestListByOwner(t *testing.T) {
	a := newTestAPI(t, slog.New(slog.DiscardHandler))
	for _, owner := range []string{"alice", "bob", "alice"} {
		decodeKey(t, serve(a, "POST", "/v1/api-keys", testAdmin, `{"project_id":"p","name":"k","owner_id":"`+owner+`"}`), http.StatusCreated)
	}
	rec := serve(a, "GET", "/v1/api-keys?project_id=p&owner_id=alice&limit=1", testAdmin, "")
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	var page []map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &page); err != nil {
		t.Fatal(err)
	}
	if len(page) != 1 || page[0]["owner_id"] != "alice" {
		t.Fatalf("page = %v", page)
	}
	if link := rec.Header().Get("Link"); !strings.Contains(link, "owner_id=alice") {
		t.Fatalf("Link %q lost the owner filter", link)
	}
	if rec := serve(a, "GET", "/v1/api-keys?project_id=p&owner_id=a%20b", testAdmin, ""); rec.Code != http.StatusBadRequest {
		t.Fatalf("bad owner_id: status %d", rec.Code)
	}
}

// fieldsOf returns the field names of a problem's errors.
func fieldsOf(t *testing.T, m map[string]any) []string {
	t.Helper()
	var out []string
	errs, _ := m["errors"].([]any)
	for _, e := range errs {
		out = append(out, e.(map[string]any)["field"].(string))
	}
	return out
}

// TestRichFieldsInvalid checks the 400s of meta and ip_allowlist, at
// create and PATCH, and that a refused PATCH changes nothing.
func TestRichFieldsInvalid(t *testing.T) {
	a := newTestAPI(t, slog.New(slog.DiscardHandler))
	var members []string
	for i := range 65 {
		members = append(members, fmt.Sprintf(`"m%d":%d`, i, i))
	}
	big := `{"x":"` + strings.Repeat("a", 4090) + `"}` // 4098 bytes compact
	tests := []struct {
		name, field, body string
	}{
		{"MetaTooBig", "meta", `"meta":` + big},
		{"MetaTooManyMembers", "meta", `"meta":{` + strings.Join(members, ",") + `}`},
		{"MetaArray", "meta", `"meta":[1]`},
		{"MetaString", "meta", `"meta":"x"`},
		{"AllowlistHostBits", "ip_allowlist[1]", `"ip_allowlist":["10.0.0.0/8","10.0.0.1/8"]`},
		{"AllowlistGarbage", "ip_allowlist[0]", `"ip_allowlist":["nope"]`},
		{"AllowlistEmpty", "ip_allowlist", `"ip_allowlist":[]`},
		{"OwnerChars", "owner_id", `"owner_id":"a/b"`},
	}
	id := decodeKey(t, serve(a, "POST", "/v1/api-keys", testAdmin,
		`{"project_id":"p","name":"k","meta":{"a":1},"ip_allowlist":["192.0.2.0/24"]}`), http.StatusCreated)["id"].(string)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, req := range []struct{ method, path, body string }{
				{"POST", "/v1/api-keys", `{"project_id":"p","name":"k",` + tt.body + `}`},
				{"PATCH", "/v1/api-keys/" + id, `{` + tt.body + `}`},
			} {
				m := decodeKey(t, serve(a, req.method, req.path, testAdmin, req.body), http.StatusBadRequest)
				if f := fieldsOf(t, m); !slices.Contains(f, tt.field) && !slices.ContainsFunc(f, func(s string) bool { return strings.HasPrefix(s, tt.field) }) {
					t.Errorf("%s: fields %v, want %s (%v)", req.method, f, tt.field, m)
				}
			}
		})
	}
	got := decodeKey(t, serve(a, "GET", "/v1/api-keys/"+id, testAdmin, ""), http.StatusOK)
	if b, _ := json.Marshal(got["meta"]); string(b) != `{"a":1}` || fmt.Sprint(got["ip_allowlist"]) != "[192.0.2.0/24]" {
		t.Fatalf("key changed by refused patches: %v", got)
	}
}

// TestRichFieldsRoundTrip checks meta and ip_allowlist through create,
// get, patch (replace whole, null clears) and the read-only fields.
func TestRichFieldsRoundTrip(t *testing.T) {
	a := newTestAPI(t, slog.New(slog.DiscardHandler))
	k := decodeKey(t, serve(a, "POST", "/v1/api-keys", testAdmin,
		`{"project_id":"p","name":"k","meta":{ "plan" : "pro", "n": [1, 2] },"ip_allowlist":["10.0.0.0/8","::ffff:192.0.2.1","2001:db8::/32"]}`), http.StatusCreated)
	id := k["id"].(string)
	if b, _ := json.Marshal(k["meta"]); string(b) != `{"n":[1,2],"plan":"pro"}` {
		t.Errorf("meta %s", b)
	}
	if fmt.Sprint(k["ip_allowlist"]) != "[10.0.0.0/8 192.0.2.1 2001:db8::/32]" {
		t.Errorf("ip_allowlist %v", k["ip_allowlist"])
	}
	if k["source"] != "issued" || k["disabled_at"] != nil || k["revocation_reason"] != nil || k["status"] != "active" {
		t.Errorf("read-only fields %v", k)
	}
	p := decodeKey(t, serve(a, "PATCH", "/v1/api-keys/"+id, testAdmin, `{"meta":{"other":true}}`), http.StatusOK)
	if b, _ := json.Marshal(p["meta"]); string(b) != `{"other":true}` {
		t.Errorf("patched meta %s (replaced whole?)", b)
	}
	p = decodeKey(t, serve(a, "PATCH", "/v1/api-keys/"+id, testAdmin, `{"meta":null,"ip_allowlist":null}`), http.StatusOK)
	if p["meta"] != nil || p["ip_allowlist"] != nil {
		t.Errorf("cleared: meta %v ip_allowlist %v", p["meta"], p["ip_allowlist"])
	}
}

// TestDisableEnableRevokeReason checks disable and enable (idempotent,
// status, verify, bearer, rotate) and revocation reasons.
func TestDisableEnableRevokeReason(t *testing.T) {
	a := newTestAPI(t, slog.New(slog.DiscardHandler))
	created := decodeKey(t, serve(a, "POST", "/v1/api-keys", testAdmin,
		`{"project_id":"p","name":"k","scopes":["api-keys:read","api-keys:verify"]}`), http.StatusCreated)
	id, plain := created["id"].(string), created["key"].(string)
	verify := func() string {
		t.Helper()
		return decodeKey(t, serve(a, "POST", "/v1/api-keys/verify", testAdmin, `{"key":"`+plain+`"}`), http.StatusOK)["code"].(string)
	}
	for range 2 { // idempotent
		k := decodeKey(t, serve(a, "POST", "/v1/api-keys/"+id+"/disable", testAdmin, `{"reason":"fraud review"}`), http.StatusOK)
		if k["status"] != "disabled" || k["disabled_reason"] != "fraud review" || k["disabled_at"] == nil {
			t.Fatalf("disabled key %v", k)
		}
	}
	if code := verify(); code != "DISABLED" {
		t.Errorf("verify of a disabled key: %s", code)
	}
	if rec := serve(a, "GET", "/v1/api-keys/"+id, plain, ""); rec.Code != http.StatusUnauthorized {
		t.Errorf("disabled key as bearer: %d", rec.Code)
	}
	decodeKey(t, serve(a, "POST", "/v1/api-keys/"+id+"/rotate", testAdmin, ""), http.StatusConflict)
	decodeKey(t, serve(a, "POST", "/v1/api-keys/"+id+"/disable", testAdmin, `{"reason":"`+strings.Repeat("r", 256)+`"}`), http.StatusBadRequest)
	for range 2 {
		k := decodeKey(t, serve(a, "POST", "/v1/api-keys/"+id+"/enable", testAdmin, ""), http.StatusOK)
		if k["status"] != "active" || k["disabled_at"] != nil || k["disabled_reason"] != nil {
			t.Fatalf("enabled key %v", k)
		}
	}
	if code := verify(); code != "VALID" {
		t.Errorf("verify of an enabled key: %s", code)
	}
	if rec := serve(a, "DELETE", "/v1/api-keys/"+id+"?reason=lost", testAdmin, ""); rec.Code != http.StatusBadRequest {
		t.Errorf("bad reason: %d", rec.Code)
	}
	if code := verify(); code != "VALID" {
		t.Errorf("a refused revoke changed the key: %s", code)
	}
	for _, reason := range []string{"key_compromise", "superseded"} {
		if rec := serve(a, "DELETE", "/v1/api-keys/"+id+"?reason="+reason, testAdmin, ""); rec.Code != http.StatusNoContent {
			t.Fatalf("revoke: %d %s", rec.Code, rec.Body)
		}
	}
	k := decodeKey(t, serve(a, "GET", "/v1/api-keys/"+id, testAdmin, ""), http.StatusOK)
	if k["revocation_reason"] != "key_compromise" {
		t.Errorf("revocation_reason %v, want the first", k["revocation_reason"])
	}
	decodeKey(t, serve(a, "POST", "/v1/api-keys/"+id+"/disable", testAdmin, ""), http.StatusConflict)
	decodeKey(t, serve(a, "POST", "/v1/api-keys/"+id+"/enable", testAdmin, ""), http.StatusConflict)
}

// TestAllowlistVerifyAndBearer checks IP_NOT_ALLOWED for verify (client_ip
// absent, unparsable, outside; IPv4, IPv6 and mapped IPv4 inside), that it
// leaves last_used_at alone, and the bearer check against the request's
// address (serve sends from 192.0.2.7).
func TestAllowlistVerifyAndBearer(t *testing.T) {
	a := newTestAPI(t, slog.New(slog.DiscardHandler))
	created := decodeKey(t, serve(a, "POST", "/v1/api-keys", testAdmin,
		`{"project_id":"p","name":"k","scopes":["api-keys:read"],"owner_id":"o1","meta":{"tier":"gold"},"ip_allowlist":["10.0.0.0/8","2001:db8::/32"]}`), http.StatusCreated)
	id, plain := created["id"].(string), created["key"].(string)
	for _, tc := range []struct{ name, clientIP, want string }{
		{"Absent", "", "IP_NOT_ALLOWED"},
		{"Unparsable", `,"client_ip":"not-an-ip"`, "IP_NOT_ALLOWED"},
		{"IPv4Outside", `,"client_ip":"192.0.2.1"`, "IP_NOT_ALLOWED"},
		{"IPv6Outside", `,"client_ip":"2001:db9::1"`, "IP_NOT_ALLOWED"},
		{"IPv4Inside", `,"client_ip":"10.2.3.4"`, "VALID"},
		{"IPv6Inside", `,"client_ip":"2001:db8::77"`, "VALID"},
		{"MappedInside", `,"client_ip":"::ffff:10.0.0.9"`, "VALID"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := decodeKey(t, serve(a, "POST", "/v1/api-keys/verify", testAdmin, `{"key":"`+plain+`"`+tc.clientIP+`}`), http.StatusOK)
			if v["code"] != tc.want || v["owner_id"] != "o1" || fmt.Sprint(v["meta"]) != "map[tier:gold]" {
				t.Fatalf("verdict %v, want %s with owner and meta", v, tc.want)
			}
		})
	}
	if rec := serve(a, "GET", "/v1/api-keys/"+id, plain, ""); rec.Code != http.StatusUnauthorized {
		t.Errorf("bearer from outside the allowlist: %d", rec.Code)
	}
	if rec := serve(a, "GET", "/v1/api-keys/"+id, plain, "", "X-Forwarded-For", "10.1.1.1"); rec.Code != http.StatusUnauthorized {
		t.Errorf("bearer with an untrusted X-Forwarded-For: %d", rec.Code)
	}
}

// TestDeniedVerifyLeavesLastUsed checks that IP_NOT_ALLOWED does not touch
// last_used_at, while an allowed verify of the same key does.
func TestDeniedVerifyLeavesLastUsed(t *testing.T) {
	a := newTestAPI(t, slog.New(slog.DiscardHandler))
	created := decodeKey(t, serve(a, "POST", "/v1/api-keys", testAdmin,
		`{"project_id":"p","name":"k","ip_allowlist":["10.0.0.0/8"]}`), http.StatusCreated)
	id, plain := created["id"].(string), created["key"].(string)
	lastUsed := func() any {
		t.Helper()
		return decodeKey(t, serve(a, "GET", "/v1/api-keys/"+id, testAdmin, ""), http.StatusOK)["last_used_at"]
	}
	v := decodeKey(t, serve(a, "POST", "/v1/api-keys/verify", testAdmin, `{"key":"`+plain+`","client_ip":"192.0.2.1"}`), http.StatusOK)
	if v["code"] != "IP_NOT_ALLOWED" {
		t.Fatalf("verdict %v", v)
	}
	if got := lastUsed(); got != nil {
		t.Fatalf("IP_NOT_ALLOWED recorded last use %v", got)
	}
	decodeKey(t, serve(a, "POST", "/v1/api-keys/verify", testAdmin, `{"key":"`+plain+`","client_ip":"10.0.0.1"}`), http.StatusOK)
	if got := lastUsed(); got == nil {
		t.Fatal("an allowed verify recorded no last use")
	}
}

// TestEnumsMatchDomain checks that the OpenAPI enums written as tags list
// exactly the domain's values: revocation reasons, statuses and sources.
func TestEnumsMatchDomain(t *testing.T) {
	a := New(Options{})
	schemas := a.OpenAPI().Components.Schemas.Map()
	props := schemas["KeyObject"].Properties
	var reasons, statuses []string
	for _, r := range apikey.RevocationReasons {
		reasons = append(reasons, string(r))
	}
	for _, st := range []apikey.Status{apikey.StatusActive, apikey.StatusRotating, apikey.StatusRotated, apikey.StatusExpired, apikey.StatusRevoked, apikey.StatusDisabled} {
		if _, ok := apikey.ParseStatus(string(st)); !ok {
			t.Fatalf("ParseStatus(%s)", st)
		}
		statuses = append(statuses, string(st))
	}
	for _, tc := range []struct {
		field string
		want  []string
	}{
		{"revocation_reason", reasons},
		{"status", statuses},
		{"source", []string{string(apikey.SourceIssued), string(apikey.SourceImported)}},
	} {
		var got []string
		for _, v := range props[tc.field].Enum {
			if s, ok := v.(string); ok {
				got = append(got, s)
			}
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s enum %v, want %v", tc.field, got, tc.want)
		}
	}
}
