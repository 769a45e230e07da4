package e2e

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestCreateValidation checks that bad input gets a 400 problem naming the
// JSON fields at fault, and changes nothing.
func TestCreateValidation(t *testing.T) {
	s := startServer(t)
	past := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	for name, tc := range map[string]struct {
		body   string
		fields []string
	}{
		"ErrMalformedJSON":     {`{"project_id": "p", "name": `, nil},
		"ErrNotObject":         {`[1,2]`, nil},
		"ErrMissingProject":    {`{"name": "n"}`, []string{"project_id"}},
		"ErrMissingName":       {`{"project_id": "p"}`, []string{"name"}},
		"ErrUnknownField":      {`{"project_id": "p", "name": "n", "colour": "red"}`, []string{"colour"}},
		"ErrWrongType":         {`{"project_id": "p", "name": 5}`, []string{"name"}},
		"ErrEmptyName":         {`{"project_id": "p", "name": ""}`, []string{"name"}},
		"ErrLongName":          {`{"project_id": "p", "name": "` + strings.Repeat("n", 256) + `"}`, []string{"name"}},
		"ErrProjectChars":      {`{"project_id": "p/1", "name": "n"}`, []string{"project_id"}},
		"ErrScope":             {`{"project_id": "p", "name": "n", "scopes": ["ok", "not ok"]}`, []string{"scopes[1]"}},
		"ErrScopeWildcard":     {`{"project_id": "p", "name": "n", "scopes": ["a*"]}`, []string{"scopes[0]"}},
		"ErrScopesType":        {`{"project_id": "p", "name": "n", "scopes": "read"}`, []string{"scopes"}},
		"ErrExpiresBoth":       {`{"project_id": "p", "name": "n", "expires_in_days": 1, "expires_at": "` + future + `"}`, []string{"expires_at"}},
		"ErrExpiresDaysZero":   {`{"project_id": "p", "name": "n", "expires_in_days": 0}`, []string{"expires_in_days"}},
		"ErrExpiresDaysHuge":   {`{"project_id": "p", "name": "n", "expires_in_days": 36501}`, []string{"expires_in_days"}},
		"ErrExpiresPast":       {`{"project_id": "p", "name": "n", "expires_at": "` + past + `"}`, []string{"expires_at"}},
		"ErrExpiresFormat":     {`{"project_id": "p", "name": "n", "expires_at": "tomorrow"}`, []string{"expires_at"}},
		"ErrIntervalNoURL":     {`{"project_id": "p", "name": "n", "rotation_interval_days": 30}`, []string{"rotation_webhook_url"}},
		"ErrIntervalRange":     {`{"project_id": "p", "name": "n", "rotation_interval_days": 0, "rotation_webhook_url": "https://example.com/h"}`, []string{"rotation_interval_days"}},
		"ErrWebhookHTTP":       {`{"project_id": "p", "name": "n", "rotation_webhook_url": "http://example.com/h"}`, []string{"rotation_webhook_url"}},
		"ErrWebhookLoopback":   {`{"project_id": "p", "name": "n", "rotation_webhook_url": "https://127.0.0.1/h"}`, []string{"rotation_webhook_url"}},
		"ErrWebhookLocalhost":  {`{"project_id": "p", "name": "n", "rotation_webhook_url": "https://localhost/h"}`, []string{"rotation_webhook_url"}},
		"ErrWebhookMetadata":   {`{"project_id": "p", "name": "n", "rotation_webhook_url": "https://169.254.169.254/latest"}`, []string{"rotation_webhook_url"}},
		"ErrWebhookTooLong":    {`{"project_id": "p", "name": "n", "rotation_webhook_url": "https://example.com/` + strings.Repeat("a", 2048) + `"}`, []string{"rotation_webhook_url"}},
		"ErrEnvironmentEmpty":  {`{"project_id": "p", "name": "n", "environment_id": ""}`, []string{"environment_id"}},
		"ErrSeveralAtOnce":     {`{"project_id": "", "name": "", "expires_in_days": -1}`, []string{"project_id", "name", "expires_in_days"}},
		"ErrTooManyScopes":     {`{"project_id": "p", "name": "n", "scopes": [` + manyScopes(65) + `]}`, []string{"scopes"}},
		"ErrNumberAsString":    {`{"project_id": "p", "name": "n", "expires_in_days": "30"}`, []string{"expires_in_days"}},
		"ErrFractionalDays":    {`{"project_id": "p", "name": "n", "expires_in_days": 1.5}`, []string{"expires_in_days"}},
		"ErrNullRequiredField": {`{"project_id": null, "name": "n"}`, []string{"project_id"}},
	} {
		t.Run(name, func(t *testing.T) {
			p := problem(t, s.do(t, http.MethodPost, "/v1/api-keys", s.Admin, tc.body), http.StatusBadRequest)
			got := fieldsOf(p)
			for _, f := range tc.fields {
				if !slices.Contains(got, f) {
					t.Errorf("errors name %v, want %q among them: %v", got, f, p)
				}
			}
		})
	}
	// Nothing was created by any of them.
	for _, project := range []string{"p", "p/1", ""} {
		r := s.do(t, http.MethodGet, "/v1/api-keys?project_id="+url.QueryEscape(project), s.Admin, nil)
		if r.Status == http.StatusOK && len(r.list(t)) != 0 {
			t.Fatalf("project %q has keys after rejected creates: %s", project, r.Body)
		}
	}
	audit := expect(t, s.do(t, http.MethodGet, "/v1/audit-events?project_id=p", s.Admin, nil), http.StatusOK).list(t)
	if len(audit) != 0 {
		t.Fatalf("audit log has %d entries after rejected creates", len(audit))
	}
}

func manyScopes(n int) string {
	var parts []string
	for i := range n {
		parts = append(parts, fmt.Sprintf(`"s%d"`, i))
	}
	return strings.Join(parts, ",")
}

// TestLimits checks body size limits and unknown routes and methods.
func TestLimits(t *testing.T) {
	s := startServer(t)
	big := `{"project_id": "p", "name": "` + strings.Repeat("x", 1<<20) + `"}`
	problem(t, s.do(t, http.MethodPost, "/v1/api-keys", s.Admin, big), http.StatusRequestEntityTooLarge)
	problem(t, s.do(t, http.MethodPost, "/v1/api-keys/verify", s.Admin, `{"key": "`+strings.Repeat("x", 1<<20)+`"}`), http.StatusRequestEntityTooLarge)
	problem(t, s.do(t, http.MethodGet, "/v1/nothing", s.Admin, nil), http.StatusNotFound)
	r := problem(t, s.do(t, http.MethodPut, "/v1/api-keys", s.Admin, `{}`), http.StatusMethodNotAllowed)
	_ = r
	// curl -d without a Content-Type header still works: bodies are JSON.
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/v1/api-keys", strings.NewReader(`{"project_id":"p","name":"curl"}`))
	req.Header.Set("Authorization", "Bearer "+s.Admin)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(t, resp)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("form content type: %d %s", resp.StatusCode, body)
	}
	var obj map[string]any
	(&response{Body: body}).json(t, &obj)
	secrets.add("API key", obj["key"].(string))
}

// TestCreateAndGet checks the fields of a fully specified key.
func TestCreateAndGet(t *testing.T) {
	s := startServer(t)
	k := s.create(t, s.Admin, map[string]any{
		"project_id": "p1", "name": "Full key ✓", "scopes": []string{"read", "write:*", "read"},
		"expires_in_days": 30, "environment_id": "prod",
		"rotation_interval_days": 7, "rotation_webhook_url": "https://hooks.example.com/rotate",
	})
	o := k.Object
	if o["name"] != "Full key ✓" || o["environment_id"] != "prod" || fmt.Sprint(o["scopes"]) != "[read write:*]" ||
		o["rotation_interval_days"] != float64(7) || o["rotation_webhook_url"] != "https://hooks.example.com/rotate" {
		t.Fatalf("created %v", o)
	}
	if ws, _ := o["rotation_webhook_secret"].(string); !regexp.MustCompile(`^whsec_[A-Za-z0-9+/]{43}=$`).MatchString(ws) {
		t.Fatalf("rotation_webhook_secret %q", ws)
	}
	created := parseTime(t, o["created_at"])
	if exp := parseTime(t, o["expires_at"]); exp.Sub(created) != 30*24*time.Hour {
		t.Fatalf("expires_at - created_at = %v", exp.Sub(created))
	}
	if next := parseTime(t, o["next_rotation_at"]); next.Sub(created) != 7*24*time.Hour {
		t.Fatalf("next_rotation_at - created_at = %v", next.Sub(created))
	}
	got := expect(t, s.do(t, http.MethodGet, "/v1/api-keys/"+k.ID, s.Admin, nil), http.StatusOK).object(t)
	hasExactly(t, got, keyFields...)
	for _, f := range keyFields {
		if f != "last_used_at" && fmt.Sprint(got[f]) != fmt.Sprint(o[f]) {
			t.Errorf("GET %s = %v, create said %v", f, got[f], o[f])
		}
	}
	// expires_at given as an instant round-trips.
	at := time.Now().Add(48 * time.Hour).UTC().Truncate(time.Second)
	k2 := s.create(t, s.Admin, map[string]any{"project_id": "p1", "name": "at", "expires_at": at.Format(time.RFC3339)})
	if !parseTime(t, k2.Object["expires_at"]).Equal(at) {
		t.Fatalf("expires_at %v, want %v", k2.Object["expires_at"], at)
	}
}

// linkNext returns the target of a response's rel="next" link, or "".
func linkNext(t *testing.T, r *response) string {
	t.Helper()
	link := r.Header.Get("Link")
	if link == "" {
		return ""
	}
	m := regexp.MustCompile(`^<([^>]+)>; rel="next"$`).FindStringSubmatch(link)
	if m == nil {
		t.Fatalf("Link %q", link)
	}
	return m[1]
}

func parseTime(t *testing.T, v any) time.Time {
	t.Helper()
	s, ok := v.(string)
	if !ok {
		t.Fatalf("time %v is not a string", v)
	}
	tm, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("time %q: %v", s, err)
	}
	if !strings.HasSuffix(s, "Z") {
		t.Fatalf("time %q is not UTC", s)
	}
	return tm
}

// TestListPagination walks a project's keys through the Link header.
func TestListPagination(t *testing.T) {
	s := startServer(t)
	var ids []string
	for i := range 25 {
		env := "a"
		if i%3 == 0 {
			env = "b"
		}
		ids = append(ids, s.create(t, s.Admin, map[string]any{"project_id": "pg", "name": fmt.Sprint("k", i), "environment_id": env}).ID)
	}
	s.create(t, s.Admin, map[string]any{"project_id": "other", "name": "not mine"})
	slices.Reverse(ids) // newest first

	var seen []string
	next := "/v1/api-keys?project_id=pg&limit=10"
	pages := 0
	for next != "" {
		r := expect(t, s.do(t, http.MethodGet, next, s.Admin, nil), http.StatusOK)
		for _, k := range r.list(t) {
			seen = append(seen, k["id"].(string))
		}
		pages++
		next = linkNext(t, r)
	}
	if pages != 3 || !slices.Equal(seen, ids) {
		t.Fatalf("%d pages, ids %v, want %v", pages, seen, ids)
	}

	onlyB := expect(t, s.do(t, http.MethodGet, "/v1/api-keys?project_id=pg&environment_id=b", s.Admin, nil), http.StatusOK).list(t)
	if len(onlyB) != 9 {
		t.Fatalf("environment b: %d keys, want 9", len(onlyB))
	}
	expect(t, s.do(t, http.MethodDelete, "/v1/api-keys/"+ids[0], s.Admin, nil), http.StatusNoContent)
	revoked := expect(t, s.do(t, http.MethodGet, "/v1/api-keys?project_id=pg&status=revoked", s.Admin, nil), http.StatusOK).list(t)
	if len(revoked) != 1 || revoked[0]["id"] != ids[0] || revoked[0]["status"] != "revoked" {
		t.Fatalf("revoked filter: %v", revoked)
	}
	active := expect(t, s.do(t, http.MethodGet, "/v1/api-keys?project_id=pg&status=active&limit=1000", s.Admin, nil), http.StatusOK).list(t)
	if len(active) != 24 {
		t.Fatalf("active filter: %d keys", len(active))
	}
	for name, q := range map[string]string{
		"ErrNoProject": "", "ErrLimitZero": "project_id=pg&limit=0", "ErrLimitHuge": "project_id=pg&limit=1001",
		"ErrLimitText": "project_id=pg&limit=ten", "ErrStatus": "project_id=pg&status=sleeping", "ErrCursor": "project_id=pg&cursor=zzz",
	} {
		t.Run(name, func(t *testing.T) {
			problem(t, s.do(t, http.MethodGet, "/v1/api-keys?"+q, s.Admin, nil), http.StatusBadRequest)
		})
	}
}

// TestPatch checks each patchable field, null semantics and 409s.
func TestPatch(t *testing.T) {
	s := startServer(t)
	k := s.create(t, s.Admin, map[string]any{"project_id": "p1", "name": "before", "scopes": []string{"a"}, "expires_in_days": 10})
	future := time.Now().Add(72 * time.Hour).UTC().Truncate(time.Second)
	o := expect(t, s.do(t, http.MethodPatch, "/v1/api-keys/"+k.ID, s.Admin, map[string]any{
		"name": "after", "scopes": []string{"b", "c"}, "expires_at": future.Format(time.RFC3339),
	}), http.StatusOK).object(t)
	if o["name"] != "after" || fmt.Sprint(o["scopes"]) != "[b c]" || !parseTime(t, o["expires_at"]).Equal(future) {
		t.Fatalf("patched %v", o)
	}
	o = expect(t, s.do(t, http.MethodPatch, "/v1/api-keys/"+k.ID, s.Admin, `{"expires_at": null}`), http.StatusOK).object(t)
	if o["expires_at"] != nil || o["name"] != "after" {
		t.Fatalf("expires_at null: %v", o)
	}
	// Turning on scheduled rotation returns the new webhook secret once.
	o = expect(t, s.do(t, http.MethodPatch, "/v1/api-keys/"+k.ID, s.Admin, map[string]any{
		"rotation_interval_days": 30, "rotation_webhook_url": "https://hooks.example.com/x",
	}), http.StatusOK).object(t)
	ws, _ := o["rotation_webhook_secret"].(string)
	if !strings.HasPrefix(ws, "whsec_") || o["next_rotation_at"] == nil || o["rotation_interval_days"] != float64(30) {
		t.Fatalf("rotation on: %v", o)
	}
	secrets.add("webhook secret", ws)
	soon := time.Now().UTC().Truncate(time.Second)
	o = expect(t, s.do(t, http.MethodPatch, "/v1/api-keys/"+k.ID, s.Admin, map[string]any{"next_rotation_at": soon.Format(time.RFC3339)}), http.StatusOK).object(t)
	if !parseTime(t, o["next_rotation_at"]).Equal(soon) || o["rotation_webhook_secret"] != nil {
		t.Fatalf("next_rotation_at: %v", o)
	}
	problem(t, s.do(t, http.MethodPatch, "/v1/api-keys/"+k.ID, s.Admin, `{"rotation_webhook_url": null}`), http.StatusBadRequest)
	o = expect(t, s.do(t, http.MethodPatch, "/v1/api-keys/"+k.ID, s.Admin, `{"rotation_interval_days": null}`), http.StatusOK).object(t)
	if o["rotation_interval_days"] != nil || o["next_rotation_at"] != nil {
		t.Fatalf("rotation off: %v", o)
	}
	for name, body := range map[string]string{
		"ErrUnknown":       `{"nickname": "x"}`,
		"ErrNameNull":      `{"name": null}`,
		"ErrScopes":        `{"scopes": ["bad scope"]}`,
		"ErrPast":          `{"expires_at": "2001-01-01T00:00:00Z"}`,
		"ErrNextNoSched":   `{"next_rotation_at": "2030-01-01T00:00:00Z"}`,
		"ErrIntervalRange": `{"rotation_interval_days": 0}`,
		"ErrID":            `{"id": "key_x"}`,
	} {
		t.Run(name, func(t *testing.T) {
			problem(t, s.do(t, http.MethodPatch, "/v1/api-keys/"+k.ID, s.Admin, body), http.StatusBadRequest)
		})
	}
	problem(t, s.do(t, http.MethodPatch, "/v1/api-keys/key_00000000000000000000000000", s.Admin, `{"name": "x"}`), http.StatusNotFound)
	got := expect(t, s.do(t, http.MethodGet, "/v1/api-keys/"+k.ID, s.Admin, nil), http.StatusOK).object(t)
	if got["name"] != "after" || fmt.Sprint(got["scopes"]) != "[b c]" {
		t.Fatalf("rejected patches changed the key: %v", got)
	}

	rot := expect(t, s.do(t, http.MethodPost, "/v1/api-keys/"+k.ID+"/rotate", s.Admin, `{}`), http.StatusCreated).object(t)
	secrets.add("API key", rot["key"].(string))
	problem(t, s.do(t, http.MethodPatch, "/v1/api-keys/"+k.ID, s.Admin, `{"name": "x"}`), http.StatusConflict)
	newID := rot["new_key_id"].(string)
	expect(t, s.do(t, http.MethodDelete, "/v1/api-keys/"+newID, s.Admin, nil), http.StatusNoContent)
	problem(t, s.do(t, http.MethodPatch, "/v1/api-keys/"+newID, s.Admin, `{"name": "x"}`), http.StatusConflict)
}

// TestRevoke checks idempotence and that revoking ends a grace period.
func TestRevoke(t *testing.T) {
	s := startServer(t)
	verifier := s.create(t, s.Admin, map[string]any{"project_id": "p1", "name": "verifier", "scopes": []string{"api-keys:verify"}})
	k := s.create(t, s.Admin, map[string]any{"project_id": "p1", "name": "k"})
	rot := expect(t, s.do(t, http.MethodPost, "/v1/api-keys/"+k.ID+"/rotate", s.Admin, map[string]any{"grace_period_minutes": 120}), http.StatusCreated).object(t)
	secrets.add("API key", rot["key"].(string))
	if v := s.verify(t, verifier.Secret, map[string]any{"key": k.Secret}); v["code"] != "VALID" || v["grace_expires_at"] == nil {
		t.Fatalf("old key in grace: %v", v)
	}
	if st := expect(t, s.do(t, http.MethodGet, "/v1/api-keys/"+k.ID, s.Admin, nil), http.StatusOK).object(t)["status"]; st != "rotating" {
		t.Fatalf("status %v, want rotating", st)
	}
	for range 2 {
		r := expect(t, s.do(t, http.MethodDelete, "/v1/api-keys/"+k.ID, s.Admin, nil), http.StatusNoContent)
		if len(r.Body) != 0 {
			t.Fatalf("body %q", r.Body)
		}
	}
	if v := s.verify(t, verifier.Secret, map[string]any{"key": k.Secret}); v["code"] != "REVOKED" || v["valid"] != false {
		t.Fatalf("revoked old key: %v", v)
	}
	got := expect(t, s.do(t, http.MethodGet, "/v1/api-keys/"+k.ID, s.Admin, nil), http.StatusOK).object(t)
	if got["status"] != "revoked" || got["revoked_at"] == nil || parseTime(t, got["grace_expires_at"]).After(parseTime(t, got["revoked_at"])) {
		t.Fatalf("after revoke: %v", got)
	}
	if v := s.verify(t, verifier.Secret, map[string]any{"key": rot["key"]}); v["code"] != "VALID" {
		t.Fatalf("replacement after revoking the old key: %v", v)
	}
	events := expect(t, s.do(t, http.MethodGet, "/v1/audit-events?project_id=p1&key_id="+k.ID+"&action=api_key.revoked", s.Admin, nil), http.StatusOK).list(t)
	if len(events) != 1 {
		t.Fatalf("%d revoke events after two revokes, want 1", len(events))
	}
	problem(t, s.do(t, http.MethodDelete, "/v1/api-keys/key_00000000000000000000000000", s.Admin, nil), http.StatusNotFound)
}

// TestRotate checks the rotate object, inherited settings and 409s.
func TestRotate(t *testing.T) {
	s := startServer(t)
	verifier := s.create(t, s.Admin, map[string]any{"project_id": "p1", "name": "verifier", "scopes": []string{"api-keys:verify"}})
	k := s.create(t, s.Admin, map[string]any{"project_id": "p1", "name": "rot", "scopes": []string{"x:*"}, "environment_id": "prod",
		"expires_in_days": 10, "rotation_interval_days": 5, "rotation_webhook_url": "https://hooks.example.com/r"})
	before := time.Now()
	rot := expect(t, s.do(t, http.MethodPost, "/v1/api-keys/"+k.ID+"/rotate", s.Admin, map[string]any{"grace_period_minutes": 30}), http.StatusCreated).object(t)
	secrets.add("API key", rot["key"].(string))
	if rot["old_key_id"] != k.ID || rot["name"] != "rot" || fmt.Sprint(rot["scopes"]) != "[x:*]" || rot["key"] == k.Secret {
		t.Fatalf("rotate = %v", rot)
	}
	grace := parseTime(t, rot["grace_expires_at"]).Sub(before)
	if grace < 29*time.Minute || grace > 31*time.Minute {
		t.Fatalf("grace %v, want 30m", grace)
	}
	if life := parseTime(t, rot["expires_at"]).Sub(parseTime(t, rot["created_at"])); life != 10*24*time.Hour {
		t.Fatalf("replacement lifetime %v, want 240h", life)
	}
	nk := expect(t, s.do(t, http.MethodGet, "/v1/api-keys/"+rot["new_key_id"].(string), s.Admin, nil), http.StatusOK).object(t)
	if nk["environment_id"] != "prod" || nk["rotation_interval_days"] != float64(5) || nk["rotation_webhook_url"] != "https://hooks.example.com/r" {
		t.Fatalf("replacement %v", nk)
	}
	old := expect(t, s.do(t, http.MethodGet, "/v1/api-keys/"+k.ID, s.Admin, nil), http.StatusOK).object(t)
	if old["replaced_by_key_id"] != rot["new_key_id"] || old["status"] != "rotating" || old["next_rotation_at"] != nil {
		t.Fatalf("old key %v", old)
	}
	if v := s.verify(t, verifier.Secret, map[string]any{"key": rot["key"], "environment_id": "prod", "scopes": []string{"x:y"}}); v["code"] != "VALID" {
		t.Fatalf("new key: %v", v)
	}
	problem(t, s.do(t, http.MethodPost, "/v1/api-keys/"+k.ID+"/rotate", s.Admin, `{}`), http.StatusConflict)

	// Grace 0: the old key stops at once.
	k0 := s.create(t, s.Admin, map[string]any{"project_id": "p1", "name": "zero"})
	rot0 := expect(t, s.do(t, http.MethodPost, "/v1/api-keys/"+k0.ID+"/rotate", s.Admin, `{"grace_period_minutes": 0}`), http.StatusCreated).object(t)
	secrets.add("API key", rot0["key"].(string))
	if v := s.verify(t, verifier.Secret, map[string]any{"key": k0.Secret}); v["code"] != "ROTATED" {
		t.Fatalf("old key after grace 0: %v", v)
	}
	// No body at all means the default grace of 60 minutes.
	k60 := s.create(t, s.Admin, map[string]any{"project_id": "p1", "name": "sixty"})
	rot60 := expect(t, s.do(t, http.MethodPost, "/v1/api-keys/"+k60.ID+"/rotate", s.Admin, nil), http.StatusCreated).object(t)
	secrets.add("API key", rot60["key"].(string))
	if g := parseTime(t, rot60["grace_expires_at"]).Sub(parseTime(t, rot60["created_at"])); g != time.Hour {
		t.Fatalf("default grace %v", g)
	}
	// Revoked: 409. Out-of-range grace: 400.
	kr := s.create(t, s.Admin, map[string]any{"project_id": "p1", "name": "revoked"})
	problem(t, s.do(t, http.MethodPost, "/v1/api-keys/"+kr.ID+"/rotate", s.Admin, `{"grace_period_minutes": 10081}`), http.StatusBadRequest)
	problem(t, s.do(t, http.MethodPost, "/v1/api-keys/"+kr.ID+"/rotate", s.Admin, `{"grace_period_minutes": -1}`), http.StatusBadRequest)
	problem(t, s.do(t, http.MethodPost, "/v1/api-keys/"+kr.ID+"/rotate", s.Admin, `{"grace": 5}`), http.StatusBadRequest)
	expect(t, s.do(t, http.MethodDelete, "/v1/api-keys/"+kr.ID, s.Admin, nil), http.StatusNoContent)
	problem(t, s.do(t, http.MethodPost, "/v1/api-keys/"+kr.ID+"/rotate", s.Admin, `{}`), http.StatusConflict)
	problem(t, s.do(t, http.MethodPost, "/v1/api-keys/key_00000000000000000000000000/rotate", s.Admin, `{}`), http.StatusNotFound)
}

// TestConcurrentRotations races 16 rotations of one key: exactly one wins.
func TestConcurrentRotations(t *testing.T) {
	s := startServer(t)
	k := s.create(t, s.Admin, map[string]any{"project_id": "p1", "name": "contested"})
	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[int]int{}
	var winner map[string]any
	start := make(chan struct{})
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			r, err := s.try(http.MethodPost, "/v1/api-keys/"+k.ID+"/rotate", s.Admin, `{}`)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			statuses[r.Status]++
			if r.Status == http.StatusCreated {
				winner = r.object(t)
				secrets.add("API key", winner["key"].(string))
			} else if r.Header.Get("Content-Type") != "application/problem+json" {
				t.Errorf("loser answered %d %s", r.Status, r.Body)
			}
		}()
	}
	close(start)
	wg.Wait()
	if statuses[http.StatusCreated] != 1 || statuses[http.StatusConflict] != 15 {
		t.Fatalf("statuses %v, want one 201 and fifteen 409", statuses)
	}
	keys := expect(t, s.do(t, http.MethodGet, "/v1/api-keys?project_id=p1", s.Admin, nil), http.StatusOK).list(t)
	if len(keys) != 2 {
		t.Fatalf("%d keys after the race, want the original and one replacement", len(keys))
	}
	rotations := expect(t, s.do(t, http.MethodGet, "/v1/audit-events?project_id=p1&action=api_key.rotated", s.Admin, nil), http.StatusOK).list(t)
	if len(rotations) != 1 || rotations[0]["details"].(map[string]any)["new_key_id"] != winner["new_key_id"] {
		t.Fatalf("rotation events %v", rotations)
	}
}
