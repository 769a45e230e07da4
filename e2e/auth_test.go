package e2e

import (
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"
)

// TestAuthentication checks that every kind of bad bearer gets the same 401.
func TestAuthentication(t *testing.T) {
	s := startServer(t)
	reader := s.create(t, s.Admin, map[string]any{"project_id": "p1", "name": "reader", "scopes": []string{"api-keys:read"}})
	revoked := s.create(t, s.Admin, map[string]any{"project_id": "p1", "name": "revoked", "scopes": []string{"api-keys:read"}})
	expect(t, s.do(t, http.MethodDelete, "/v1/api-keys/"+revoked.ID, s.Admin, nil), http.StatusNoContent)
	replaced := s.create(t, s.Admin, map[string]any{"project_id": "p1", "name": "replaced", "scopes": []string{"api-keys:read"}})
	rot := expect(t, s.do(t, http.MethodPost, "/v1/api-keys/"+replaced.ID+"/rotate", s.Admin, map[string]any{"grace_period_minutes": 0}), http.StatusCreated).object(t)
	secrets.add("API key", rot["key"].(string))
	expiring := s.create(t, s.Admin, map[string]any{"project_id": "p1", "name": "expiring", "scopes": []string{"api-keys:read"},
		"expires_at": time.Now().Add(1500 * time.Millisecond).UTC().Format(time.RFC3339Nano)})

	// Each valid token reads.
	expect(t, s.do(t, http.MethodGet, "/v1/api-keys?project_id=p1", reader.Secret, nil), http.StatusOK)
	expect(t, s.do(t, http.MethodGet, "/v1/api-keys?project_id=p1", expiring.Secret, nil), http.StatusOK)
	time.Sleep(1600 * time.Millisecond)

	var detail any
	for name, header := range map[string]string{
		"ErrMissing":   "",
		"ErrScheme":    "Basic " + reader.Secret,
		"ErrEmpty":     "Bearer ",
		"ErrMalformed": "Bearer not-a-key",
		"ErrChecksum":  "Bearer " + typo(reader.Secret),
		"ErrUnknown":   "Bearer sk_00000000000000000000000000000000000000000004LPos6",
		"ErrRevoked":   "Bearer " + revoked.Secret,
		"ErrRotated":   "Bearer " + replaced.Secret,
		"ErrExpired":   "Bearer " + expiring.Secret,
		"ErrAdminCase": "Bearer " + s.Admin + "x",
	} {
		t.Run(name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, s.URL+"/v1/api-keys?project_id=p1", nil)
			if header != "" {
				req.Header.Set("Authorization", header)
			}
			resp, err := httpClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			r := &response{Status: resp.StatusCode, Header: resp.Header}
			r.Body = readAll(t, resp)
			p := problem(t, r, http.StatusUnauthorized)
			if resp.Header.Get("WWW-Authenticate") == "" {
				t.Fatal("no WWW-Authenticate header")
			}
			if detail == nil {
				detail = p["detail"]
			} else if p["detail"] != detail {
				t.Fatalf("detail %q differs from %q: failures must look alike", p["detail"], detail)
			}
		})
	}
	// Unauthenticated requests learn nothing about their body.
	problem(t, s.do(t, http.MethodPost, "/v1/api-keys", "", `{"bad json`), http.StatusUnauthorized)
}

// TestScopes checks 403 for a valid bearer without the scope an operation
// needs, and that api-keys:write also reads.
func TestScopes(t *testing.T) {
	s := startServer(t)
	target := s.create(t, s.Admin, map[string]any{"project_id": "p1", "name": "target"})
	tokens := map[string]string{}
	for _, sc := range []string{"api-keys:read", "api-keys:write", "api-keys:verify", "api-keys:*", "other"} {
		tokens[sc] = s.create(t, s.Admin, map[string]any{"project_id": "p1", "name": sc, "scopes": []string{sc}}).Secret
	}
	calls := []struct {
		name, method, path string
		body               any
		ok                 int
	}{
		{"list", http.MethodGet, "/v1/api-keys?project_id=p1", nil, http.StatusOK},
		{"get", http.MethodGet, "/v1/api-keys/" + target.ID, nil, http.StatusOK},
		{"expiring", http.MethodGet, "/v1/api-keys/expiring?project_id=p1", nil, http.StatusOK},
		{"audit", http.MethodGet, "/v1/audit-events?project_id=p1", nil, http.StatusOK},
		{"create", http.MethodPost, "/v1/api-keys", map[string]any{"project_id": "p1", "name": "x"}, http.StatusCreated},
		{"patch", http.MethodPatch, "/v1/api-keys/" + target.ID, map[string]any{"name": "renamed"}, http.StatusOK},
		{"verify", http.MethodPost, "/v1/api-keys/verify", map[string]any{"key": target.Secret}, http.StatusOK},
	}
	allowed := map[string][]string{
		"api-keys:read":   {"list", "get", "expiring", "audit"},
		"api-keys:write":  {"list", "get", "expiring", "audit", "create", "patch"},
		"api-keys:verify": {"verify"},
		"api-keys:*":      {"list", "get", "expiring", "audit", "create", "patch", "verify"},
		"other":           {},
	}
	for sc, token := range tokens {
		for _, c := range calls {
			want := http.StatusForbidden
			for _, a := range allowed[sc] {
				if a == c.name {
					want = c.ok
				}
			}
			t.Run(sc+"/"+c.name, func(t *testing.T) {
				r := s.do(t, c.method, c.path, token, c.body)
				if r.Status != want {
					t.Fatalf("status %d, want %d: %s", r.Status, want, r.Body)
				}
				if want == http.StatusCreated {
					secrets.add("API key", r.object(t)["key"].(string))
				}
				if want == http.StatusForbidden {
					problem(t, r, http.StatusForbidden)
				}
			})
		}
	}
	// A verify-only key cannot revoke or rotate either.
	problem(t, s.do(t, http.MethodDelete, "/v1/api-keys/"+target.ID, tokens["api-keys:verify"], nil), http.StatusForbidden)
	problem(t, s.do(t, http.MethodPost, "/v1/api-keys/"+target.ID+"/rotate", tokens["api-keys:read"], `{}`), http.StatusForbidden)
}

// TestCrossProject checks that a project's key cannot see or touch another
// project's keys, and that IDs of those keys answer 404, never 403.
func TestCrossProject(t *testing.T) {
	s := startServer(t)
	mine := s.create(t, s.Admin, map[string]any{"project_id": "p1", "name": "mine", "scopes": []string{"*"}})
	theirs := s.create(t, s.Admin, map[string]any{"project_id": "p2", "name": "theirs", "scopes": []string{"read"}})
	for name, c := range map[string]struct {
		method, path string
		body         any
	}{
		"get":    {http.MethodGet, "/v1/api-keys/" + theirs.ID, nil},
		"patch":  {http.MethodPatch, "/v1/api-keys/" + theirs.ID, map[string]any{"name": "x"}},
		"revoke": {http.MethodDelete, "/v1/api-keys/" + theirs.ID, nil},
		"rotate": {http.MethodPost, "/v1/api-keys/" + theirs.ID + "/rotate", `{}`},
	} {
		t.Run("404/"+name, func(t *testing.T) {
			problem(t, s.do(t, c.method, c.path, mine.Secret, c.body), http.StatusNotFound)
		})
	}
	unknown := problem(t, s.do(t, http.MethodGet, "/v1/api-keys/key_00000000000000000000000000", mine.Secret, nil), http.StatusNotFound)
	other := problem(t, s.do(t, http.MethodGet, "/v1/api-keys/"+theirs.ID, mine.Secret, nil), http.StatusNotFound)
	if unknown["detail"] != other["detail"] {
		t.Fatalf("another project's key (%v) is distinguishable from an unknown one (%v)", other["detail"], unknown["detail"])
	}
	problem(t, s.do(t, http.MethodGet, "/v1/api-keys/garbage", mine.Secret, nil), http.StatusNotFound)
	problem(t, s.do(t, http.MethodGet, "/v1/api-keys?project_id=p2", mine.Secret, nil), http.StatusForbidden)
	problem(t, s.do(t, http.MethodGet, "/v1/api-keys/expiring?project_id=p2", mine.Secret, nil), http.StatusForbidden)
	problem(t, s.do(t, http.MethodGet, "/v1/audit-events?project_id=p2", mine.Secret, nil), http.StatusForbidden)
	problem(t, s.do(t, http.MethodPost, "/v1/api-keys", mine.Secret, map[string]any{"project_id": "p2", "name": "x"}), http.StatusForbidden)
	// Verifying another project's key: NOT_FOUND, without details.
	v := s.verify(t, mine.Secret, map[string]any{"key": theirs.Secret})
	if v["valid"] != false || v["code"] != "NOT_FOUND" || v["key_id"] != nil {
		t.Fatalf("verify other project's key = %v", v)
	}
	// The other key is untouched.
	got := expect(t, s.do(t, http.MethodGet, "/v1/api-keys/"+theirs.ID, s.Admin, nil), http.StatusOK).object(t)
	if got["name"] != "theirs" || got["status"] != "active" {
		t.Fatalf("other project's key changed: %v", got)
	}
}

// TestCrossEnvironment checks that a key bound to an environment acts only
// inside it.
func TestCrossEnvironment(t *testing.T) {
	s := startServer(t)
	prod := s.create(t, s.Admin, map[string]any{"project_id": "p1", "name": "prod admin", "environment_id": "prod", "scopes": []string{"*"}})
	dev := s.create(t, s.Admin, map[string]any{"project_id": "p1", "name": "dev key", "environment_id": "dev", "scopes": []string{"read"}})
	global := s.create(t, s.Admin, map[string]any{"project_id": "p1", "name": "project-wide", "scopes": []string{"read"}})

	problem(t, s.do(t, http.MethodGet, "/v1/api-keys/"+dev.ID, prod.Secret, nil), http.StatusNotFound)
	problem(t, s.do(t, http.MethodGet, "/v1/api-keys/"+global.ID, prod.Secret, nil), http.StatusNotFound)
	problem(t, s.do(t, http.MethodDelete, "/v1/api-keys/"+dev.ID, prod.Secret, nil), http.StatusNotFound)
	problem(t, s.do(t, http.MethodGet, "/v1/api-keys?project_id=p1&environment_id=dev", prod.Secret, nil), http.StatusForbidden)
	problem(t, s.do(t, http.MethodPost, "/v1/api-keys", prod.Secret, map[string]any{"project_id": "p1", "name": "x", "environment_id": "dev"}), http.StatusForbidden)

	// Listing without a filter shows only its environment.
	for _, k := range expect(t, s.do(t, http.MethodGet, "/v1/api-keys?project_id=p1", prod.Secret, nil), http.StatusOK).list(t) {
		if k["environment_id"] != "prod" {
			t.Fatalf("prod key lists %v", k)
		}
	}
	// A key it creates without naming an environment lands in its own.
	made := s.create(t, prod.Secret, map[string]any{"project_id": "p1", "name": "made by prod"})
	if made.Object["environment_id"] != "prod" {
		t.Fatalf("created in environment %v", made.Object["environment_id"])
	}
	// Verification of another environment's key: NOT_FOUND.
	if v := s.verify(t, prod.Secret, map[string]any{"key": dev.Secret}); v["code"] != "NOT_FOUND" {
		t.Fatalf("verify dev key from prod = %v", v)
	}
	// The admin asking for a prod key in dev: ENVIRONMENT_MISMATCH.
	if v := s.verify(t, s.Admin, map[string]any{"key": made.Secret, "environment_id": "dev"}); v["code"] != "ENVIRONMENT_MISMATCH" || v["valid"] != false {
		t.Fatalf("verify prod key for dev = %v", v)
	}
}

// TestEscalation checks that a key can only grant, keep or rotate scopes it
// holds itself.
func TestEscalation(t *testing.T) {
	s := startServer(t)
	writer := s.create(t, s.Admin, map[string]any{"project_id": "p1", "name": "writer", "scopes": []string{"api-keys:write", "billing:read", "docs:*"}})
	strong := s.create(t, s.Admin, map[string]any{"project_id": "p1", "name": "strong", "scopes": []string{"billing:write"}})
	weak := s.create(t, writer.Secret, map[string]any{"project_id": "p1", "name": "weak", "scopes": []string{"billing:read", "docs:edit"}})

	for name, scopes := range map[string][]string{
		"notHeld":       {"billing:write"},
		"star":          {"*"},
		"wildcardWider": {"billing:*"},
		"selfWiden":     {"api-keys:*"},
		"mixed":         {"billing:read", "admin"},
	} {
		t.Run("create/"+name, func(t *testing.T) {
			problem(t, s.do(t, http.MethodPost, "/v1/api-keys", writer.Secret, map[string]any{"project_id": "p1", "name": "x", "scopes": scopes}), http.StatusForbidden)
		})
	}
	s.create(t, writer.Secret, map[string]any{"project_id": "p1", "name": "narrower", "scopes": []string{"docs:edit:own", "docs:*"}})

	problem(t, s.do(t, http.MethodPatch, "/v1/api-keys/"+weak.ID, writer.Secret, map[string]any{"scopes": []string{"billing:write"}}), http.StatusForbidden)
	problem(t, s.do(t, http.MethodPatch, "/v1/api-keys/"+strong.ID, writer.Secret, map[string]any{"name": "mine now"}), http.StatusForbidden)
	problem(t, s.do(t, http.MethodPost, "/v1/api-keys/"+strong.ID+"/rotate", writer.Secret, `{}`), http.StatusForbidden)
	// The refused changes changed nothing.
	got := expect(t, s.do(t, http.MethodGet, "/v1/api-keys/"+strong.ID, s.Admin, nil), http.StatusOK).object(t)
	if got["name"] != "strong" || got["replaced_by_key_id"] != nil {
		t.Fatalf("strong key changed: %v", got)
	}
	got = expect(t, s.do(t, http.MethodPatch, "/v1/api-keys/"+weak.ID, writer.Secret, map[string]any{"scopes": []string{"docs:read"}}), http.StatusOK).object(t)
	if fmt.Sprint(got["scopes"]) != "[docs:read]" {
		t.Fatalf("scopes = %v", got["scopes"])
	}
	rot := expect(t, s.do(t, http.MethodPost, "/v1/api-keys/"+weak.ID+"/rotate", writer.Secret, `{}`), http.StatusCreated).object(t)
	secrets.add("API key", rot["key"].(string))
}

// TestAuthFailureLimit checks that repeated failures from one address get
// 429 with Retry-After, and that the limit does not stop a later client once
// it has refilled.
func TestAuthFailureLimit(t *testing.T) {
	s := startServer(t, withArgs("--auth-failure-burst", "5", "--auth-failure-refill", "1s"))
	for i := range 5 {
		problem(t, s.do(t, http.MethodGet, "/v1/api-keys?project_id=p", "wrong-token-"+strconv.Itoa(i), nil), http.StatusUnauthorized)
	}
	r := s.do(t, http.MethodGet, "/v1/api-keys?project_id=p", "wrong-token", nil)
	problem(t, r, http.StatusTooManyRequests)
	ra, err := strconv.Atoi(r.Header.Get("Retry-After"))
	if err != nil || ra < 1 || ra > 2 {
		t.Fatalf("Retry-After %q", r.Header.Get("Retry-After"))
	}
	// While blocked, even the right token waits: guessing cannot continue.
	problem(t, s.do(t, http.MethodGet, "/v1/api-keys?project_id=p", s.Admin, nil), http.StatusTooManyRequests)
	// Unauthenticated routes are not affected.
	expect(t, s.do(t, http.MethodGet, "/healthz", "", nil), http.StatusOK)
	time.Sleep(time.Duration(ra)*time.Second + 100*time.Millisecond)
	expect(t, s.do(t, http.MethodGet, "/v1/api-keys?project_id=p", s.Admin, nil), http.StatusOK)
	// One refill allows one more failure, then the address is blocked again.
	problem(t, s.do(t, http.MethodGet, "/v1/api-keys?project_id=p", "wrong", nil), http.StatusUnauthorized)
	problem(t, s.do(t, http.MethodGet, "/v1/api-keys?project_id=p", "wrong", nil), http.StatusTooManyRequests)

	// Many concurrent failures never let more than the burst through.
	s2 := startServer(t, withArgs("--auth-failure-burst", "5", "--auth-failure-refill", "1h"))
	var mu sync.Mutex
	counts := map[int]int{}
	var wg sync.WaitGroup
	for range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := s2.try(http.MethodGet, "/v1/api-keys?project_id=p", "wrong", nil)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			counts[r.Status]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if counts[http.StatusUnauthorized] != 5 || counts[http.StatusTooManyRequests] != 35 {
		t.Fatalf("statuses %v, want 5×401 and 35×429", counts)
	}
}
