package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/webhook"
)

// fastRotation makes scheduled rotation quick enough to watch, against a
// receiver on loopback.
func fastRotation(extra ...string) option {
	return withArgs(append([]string{"--insecure-webhooks", "--rotation-check-interval", "200ms",
		"--webhook-backoff", "100ms", "--auto-rotation-grace", "4s"}, extra...)...)
}

// delivery is one request the receiver got.
type delivery struct {
	ID, Timestamp, Signature string
	Body                     []byte
	Data                     struct {
		OldKeyID       string   `json:"old_key_id"`
		NewKeyID       string   `json:"new_key_id"`
		ProjectID      string   `json:"project_id"`
		EnvironmentID  *string  `json:"environment_id"`
		Name           string   `json:"name"`
		Key            string   `json:"key"`
		KeyPrefix      string   `json:"key_prefix"`
		Scopes         []string `json:"scopes"`
		ExpiresAt      *string  `json:"expires_at"`
		GraceExpiresAt string   `json:"grace_expires_at"`
	}
}

// receiver is the customer's webhook endpoint, on loopback. answer decides
// the status of the n-th request (from 1); it may block.
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	got    []delivery
	answer func(n int, r *http.Request) int
}

func newReceiver(t *testing.T, answer func(n int, r *http.Request) int) *receiver {
	t.Helper()
	rc := &receiver{answer: answer}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		d := delivery{ID: r.Header.Get("webhook-id"), Timestamp: r.Header.Get("webhook-timestamp"),
			Signature: r.Header.Get("webhook-signature"), Body: body}
		var p struct {
			Type string          `json:"type"`
			Data json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(body, &p); err != nil || p.Type != "api_key.rotated" || json.Unmarshal(p.Data, &d.Data) != nil {
			t.Errorf("webhook body %s", body)
		}
		secrets.add("API key", d.Data.Key)
		rc.mu.Lock()
		rc.got = append(rc.got, d)
		n := len(rc.got)
		rc.mu.Unlock()
		w.WriteHeader(rc.answer(n, r))
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) deliveries() []delivery {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.got)
}

// waitFor polls until ok holds, failing the test after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkSignature fails unless d is signed with the secret from create.
func checkSignature(t *testing.T, d delivery, secret string) {
	t.Helper()
	ts, err := strconv.ParseInt(d.Timestamp, 10, 64)
	if err != nil || time.Since(time.Unix(ts, 0)).Abs() > time.Minute {
		t.Errorf("webhook-timestamp %q", d.Timestamp)
	}
	if !webhook.Verify(secret, d.ID, ts, d.Body, d.Signature) {
		t.Errorf("webhook-signature %q does not verify with the secret from create", d.Signature)
	}
}

// rotatingKey creates a key that rotates through url and brings its
// rotation forward to now.
func (s *server) rotatingKey(t *testing.T, url string, scopes ...string) (key, string) {
	t.Helper()
	k := s.create(t, s.Admin, map[string]any{
		"project_id": "p1", "name": "billing", "environment_id": "prod", "scopes": scopes,
		"rotation_interval_days": 30, "rotation_webhook_url": url,
	})
	s.dueNow(t, k.ID, time.Now())
	return k, k.Object["rotation_webhook_secret"].(string)
}

func (s *server) dueNow(t *testing.T, id string, at time.Time) {
	t.Helper()
	expect(t, s.do(t, http.MethodPatch, "/v1/api-keys/"+id, s.Admin,
		map[string]any{"next_rotation_at": at.UTC().Format(time.RFC3339Nano)}), http.StatusOK)
}

func (s *server) get(t *testing.T, id string) map[string]any {
	t.Helper()
	return expect(t, s.do(t, http.MethodGet, "/v1/api-keys/"+id, s.Admin, nil), http.StatusOK).object(t)
}

func (s *server) auditActions(t *testing.T, keyID string) []string {
	t.Helper()
	var out []string
	for _, e := range expect(t, s.do(t, http.MethodGet, "/v1/audit-events?project_id=p1&key_id="+keyID, s.Admin, nil), http.StatusOK).list(t) {
		actor, _ := e["actor"].(map[string]any)
		out = append(out, fmt.Sprint(e["action"], "/", actor["type"]))
	}
	return out
}

func TestScheduledRotation(t *testing.T) {
	s := startServer(t, fastRotation())
	rc := newReceiver(t, func(int, *http.Request) int { return http.StatusOK })
	old, whsec := s.rotatingKey(t, rc.URL+"/hooks/rotated", "orders:read", "orders:write")
	claimedAfter := time.Now().Add(-time.Second)

	waitFor(t, 30*time.Second, "the rotation webhook", func() bool { return len(rc.deliveries()) > 0 })
	d := rc.deliveries()[0]
	checkSignature(t, d, whsec)
	if !strings.HasPrefix(d.ID, "msg_") || d.Data.OldKeyID != old.ID || d.Data.ProjectID != "p1" || d.Data.Name != "billing" ||
		d.Data.EnvironmentID == nil || *d.Data.EnvironmentID != "prod" || fmt.Sprint(d.Data.Scopes) != "[orders:read orders:write]" ||
		!strings.HasPrefix(d.Data.Key, d.Data.KeyPrefix) || d.Data.ExpiresAt != nil {
		t.Errorf("delivery %s: %s", d.ID, d.Body)
	}
	grace := parseTime(t, d.Data.GraceExpiresAt)
	if grace.Before(claimedAfter.Add(4*time.Second)) || grace.After(time.Now().Add(4*time.Second)) {
		t.Errorf("grace_expires_at %v, want about 4s after the delivery", grace)
	}

	// The old key is marked replaced once the receiver has answered.
	waitFor(t, 10*time.Second, "the old key to be replaced", func() bool { return s.get(t, old.ID)["replaced_by_key_id"] == d.Data.NewKeyID })
	o := s.get(t, old.ID)
	if o["status"] != "rotating" || !parseTime(t, o["grace_expires_at"]).Equal(grace) || o["next_rotation_at"] != nil {
		t.Errorf("old key %v", o)
	}
	n := s.get(t, d.Data.NewKeyID)
	next := parseTime(t, n["next_rotation_at"])
	if n["status"] != "active" || n["rotation_interval_days"] != float64(30) || n["rotation_webhook_url"] != rc.URL+"/hooks/rotated" ||
		next.Before(claimedAfter.Add(30*24*time.Hour)) || next.After(time.Now().Add(30*24*time.Hour)) {
		t.Errorf("replacement %v", n)
	}
	if v := s.verify(t, s.Admin, map[string]any{"key": d.Data.Key, "scopes": []string{"orders:read", "orders:write"}}); v["code"] != "VALID" || v["key_id"] != d.Data.NewKeyID {
		t.Errorf("delivered key: %v", v)
	}
	if v := s.verify(t, s.Admin, map[string]any{"key": old.Secret, "scopes": []string{"orders:read"}}); v["code"] != "VALID" {
		t.Errorf("old key in its grace: %v", v)
	}
	if got := s.auditActions(t, old.ID); len(got) == 0 || got[0] != "api_key.rotated/system" {
		t.Errorf("old key's audit trail %v", got)
	}
	metrics := string(expect(t, s.do(t, http.MethodGet, "/metrics", "", nil), http.StatusOK).Body)
	for _, line := range []string{`apikeyd_webhook_deliveries_total{outcome="delivered"} 1`, `apikeyd_rotations_total{kind="scheduled",outcome="rotated"} 1`} {
		if !strings.Contains(metrics, line) {
			t.Errorf("/metrics lacks %s", line)
		}
	}

	// The grace ends; nothing else is ever sent.
	time.Sleep(time.Until(grace))
	if v := s.verify(t, s.Admin, map[string]any{"key": old.Secret}); v["code"] != "ROTATED" {
		t.Errorf("old key after its grace: %v", v)
	}
	if got := rc.deliveries(); len(got) != 1 {
		t.Errorf("%d requests, want exactly 1", len(got))
	}
	if l := expect(t, s.do(t, http.MethodGet, "/v1/api-keys?project_id=p1", s.Admin, nil), http.StatusOK).list(t); len(l) != 2 {
		t.Errorf("%d keys, want the old one and its replacement", len(l))
	}
}

func TestScheduledRotationRetries(t *testing.T) {
	s := startServer(t, fastRotation())
	rc := newReceiver(t, func(n int, _ *http.Request) int {
		if n <= 2 {
			return http.StatusServiceUnavailable
		}
		return http.StatusNoContent
	})
	old, whsec := s.rotatingKey(t, rc.URL, "a")
	waitFor(t, 30*time.Second, "three attempts", func() bool { return len(rc.deliveries()) >= 3 })
	waitFor(t, 10*time.Second, "the old key to be replaced", func() bool { return s.get(t, old.ID)["replaced_by_key_id"] != nil })
	got := rc.deliveries()
	for i, d := range got {
		checkSignature(t, d, whsec)
		if d.ID != got[0].ID || d.Data.Key != got[0].Data.Key {
			t.Errorf("attempt %d: webhook-id %s, want %s and the same key", i+1, d.ID, got[0].ID)
		}
	}
	if len(got) != 3 || s.get(t, old.ID)["replaced_by_key_id"] != got[0].Data.NewKeyID {
		t.Errorf("%d requests; old key %v", len(got), s.get(t, old.ID))
	}
}

func TestScheduledRotationAbandoned(t *testing.T) {
	s := startServer(t, fastRotation("--webhook-max-attempts", "3"))
	rc := newReceiver(t, func(int, *http.Request) int { return http.StatusInternalServerError })
	old, _ := s.rotatingKey(t, rc.URL, "a")
	before := s.get(t, old.ID)

	waitFor(t, 30*time.Second, "three attempts", func() bool { return len(rc.deliveries()) >= 3 })
	got := rc.deliveries()
	newID := got[0].Data.NewKeyID
	waitFor(t, 10*time.Second, "the replacement to be revoked", func() bool { return s.get(t, newID)["status"] == "revoked" })
	abandonedBy := time.Now()

	o := s.get(t, old.ID)
	next := parseTime(t, o["next_rotation_at"])
	if next.Before(abandonedBy.Add(time.Hour-10*time.Second)) || next.After(abandonedBy.Add(time.Hour)) {
		t.Errorf("old key comes due at %v, want an hour after the last attempt", next)
	}
	for _, f := range []string{"status", "replaced_by_key_id", "grace_expires_at", "revoked_at", "name", "scopes", "rotation_interval_days", "rotation_webhook_url"} {
		if fmt.Sprint(o[f]) != fmt.Sprint(before[f]) {
			t.Errorf("old key's %s: %v, was %v", f, o[f], before[f])
		}
	}
	if v := s.verify(t, s.Admin, map[string]any{"key": old.Secret, "scopes": []string{"a"}}); v["code"] != "VALID" {
		t.Errorf("old key: %v", v)
	}
	if v := s.verify(t, s.Admin, map[string]any{"key": got[0].Data.Key}); v["code"] != "REVOKED" {
		t.Errorf("undelivered replacement: %v", v)
	}
	if a := s.auditActions(t, old.ID); len(a) == 0 || a[0] != "api_key.rotation_failed/system" {
		t.Errorf("old key's audit trail %v", a)
	}
	time.Sleep(time.Second)
	got = rc.deliveries()
	for _, d := range got {
		if d.ID != got[0].ID {
			t.Errorf("webhook-id %s, want %s", d.ID, got[0].ID)
		}
	}
	if len(got) != 3 {
		t.Errorf("%d requests, want 3", len(got))
	}
}

// TestScheduledRotationSIGKILL kills the server while the receiver holds
// the first attempt open: after a restart the same delivery (same
// webhook-id, same key) is sent again once the dead worker's lease runs
// out, and no second replacement is issued.
func TestScheduledRotationSIGKILL(t *testing.T) {
	s := startServer(t, fastRotation())
	arrived := make(chan struct{})
	rc := newReceiver(t, func(n int, r *http.Request) int {
		if n == 1 {
			close(arrived)
			select { // held open until the server dies
			case <-r.Context().Done():
			case <-time.After(2 * time.Minute):
			}
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	old, whsec := s.rotatingKey(t, rc.URL, "a")
	select {
	case <-arrived:
	case <-time.After(30 * time.Second):
		t.Fatal("no delivery attempt")
	}
	s.restart(syscall.SIGKILL)

	waitFor(t, 60*time.Second, "the delivery to resume", func() bool { return len(rc.deliveries()) >= 2 })
	waitFor(t, 10*time.Second, "the old key to be replaced", func() bool { return s.get(t, old.ID)["replaced_by_key_id"] != nil })
	got := rc.deliveries()
	if len(got) != 2 || got[1].ID != got[0].ID || got[1].Data.Key != got[0].Data.Key || got[1].Data.NewKeyID != got[0].Data.NewKeyID {
		t.Fatalf("after the restart: %d requests, webhook-ids %s %s", len(got), got[0].ID, got[1].ID)
	}
	checkSignature(t, got[1], whsec)
	if id := s.get(t, old.ID)["replaced_by_key_id"]; id != got[0].Data.NewKeyID {
		t.Errorf("old key replaced by %v, want %s", id, got[0].Data.NewKeyID)
	}
	if l := expect(t, s.do(t, http.MethodGet, "/v1/api-keys?project_id=p1", s.Admin, nil), http.StatusOK).list(t); len(l) != 2 {
		t.Errorf("%d keys, want the old one and one replacement", len(l))
	}
	if v := s.verify(t, s.Admin, map[string]any{"key": got[1].Data.Key}); v["code"] != "VALID" {
		t.Errorf("delivered key: %v", v)
	}
}

// TestScheduledRotationTwoProcesses runs two apikeyd processes on one
// PostgreSQL database with 50 keys coming due at once: 50 deliveries, 50
// replacements, no key rotated twice. Two processes cannot share a SQLite
// data directory (TestSQLiteOneProcess), so it runs in the postgres pass.
func TestScheduledRotationTwoProcesses(t *testing.T) {
	const n = 50
	rs := startReplicas(t, 2, fastRotation("--rotation-check-interval", "100ms"))
	a, b := rs[0], rs[1]
	rc := newReceiver(t, func(int, *http.Request) int { return http.StatusOK })
	whsec := map[string]string{}
	var ids []string
	for i := range n {
		s := []*server{a, b}[i%2]
		k := s.create(t, s.Admin, map[string]any{"project_id": "p1", "name": fmt.Sprint("k", i),
			"rotation_interval_days": 7, "rotation_webhook_url": rc.URL})
		whsec[k.ID] = k.Object["rotation_webhook_secret"].(string)
		ids = append(ids, k.ID)
	}
	due := time.Now().Add(2 * time.Second)
	for i, id := range ids {
		[]*server{a, b}[i%2].dueNow(t, id, due)
	}

	waitFor(t, 60*time.Second, "50 deliveries", func() bool { return len(rc.deliveries()) >= n })
	time.Sleep(time.Second) // room for a duplicate to show up
	seen, olds := map[string]bool{}, map[string]bool{}
	for _, d := range rc.deliveries() {
		if seen[d.ID] || olds[d.Data.OldKeyID] {
			t.Errorf("key %s delivered twice (webhook-id %s)", d.Data.OldKeyID, d.ID)
		}
		seen[d.ID], olds[d.Data.OldKeyID] = true, true
		checkSignature(t, d, whsec[d.Data.OldKeyID])
	}
	if len(seen) != n || len(olds) != n {
		t.Errorf("%d deliveries for %d keys, want %d", len(seen), len(olds), n)
	}
	waitFor(t, 10*time.Second, "every old key to be replaced", func() bool {
		keys := expect(t, a.do(t, http.MethodGet, "/v1/api-keys?project_id=p1&limit=1000", a.Admin, nil), http.StatusOK).list(t)
		replaced := 0
		for _, k := range keys {
			if k["replaced_by_key_id"] != nil {
				replaced++
			}
		}
		if len(keys) != 2*n {
			t.Fatalf("%d keys, want %d: a key was rotated twice or not at all", len(keys), 2*n)
		}
		return replaced == n
	})
}

// TestWebhookTargetsRefused checks the SSRF table against the real binary
// outside insecure mode: create and patch answer 400 naming
// rotation_webhook_url. (A public-looking name that resolves to loopback is
// covered in the service's tests, which can give the check a resolver.)
func TestWebhookTargetsRefused(t *testing.T) {
	s := startServer(t)
	plain := s.create(t, s.Admin, map[string]any{"project_id": "p1", "name": "plain"})
	for name, url := range map[string]string{
		"ErrLoopback":     "https://127.0.0.1/h",
		"ErrPrivate":      "https://10.0.0.1/h",
		"ErrLoopbackV6":   "https://[::1]/h",
		"ErrMetadata":     "https://169.254.169.254/latest/meta-data",
		"ErrLocalhost":    "https://localhost/h",
		"ErrLocalhostDot": "https://localhost./h",
		"ErrSubLocalhost": "https://hooks.localhost/h",
		"ErrHTTP":         "http://hooks.example.com/h",
		"ErrHTTPLoopback": "http://127.0.0.1:8080/h",
	} {
		t.Run(name, func(t *testing.T) {
			p := problem(t, s.do(t, http.MethodPost, "/v1/api-keys", s.Admin, map[string]any{
				"project_id": "p1", "name": "n", "rotation_interval_days": 30, "rotation_webhook_url": url,
			}), http.StatusBadRequest)
			if f := fieldsOf(p); !slices.Contains(f, "rotation_webhook_url") {
				t.Errorf("create: fields %v", f)
			}
			p = problem(t, s.do(t, http.MethodPatch, "/v1/api-keys/"+plain.ID, s.Admin, map[string]any{
				"rotation_interval_days": 30, "rotation_webhook_url": url,
			}), http.StatusBadRequest)
			if f := fieldsOf(p); !slices.Contains(f, "rotation_webhook_url") {
				t.Errorf("patch: fields %v", f)
			}
		})
	}
	if k := s.get(t, plain.ID); k["rotation_webhook_url"] != nil {
		t.Errorf("a refused patch changed the key: %v", k)
	}
}
