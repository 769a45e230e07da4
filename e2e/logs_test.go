package e2e

import (
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/apikey"
)

// TestTextLogSecrets runs the traffic that handles secrets — create,
// verify with good and bad keys, failed bearer authentication, manual and
// scheduled rotation with a webhook that fails once, revoke — against a
// server logging in text format (every other test logs JSON), and searches
// all it printed for every secret involved.
func TestTextLogSecrets(t *testing.T) {
	s := startServer(t, withLogFormat("text"), fastRotation())
	mine := map[string]string{} // secret → what it is
	keep := func(what, secret string) {
		t.Helper()
		if secret == "" {
			t.Fatalf("empty %s", what)
		}
		mine[secret] = what
		secrets.add(what, secret)
	}
	keep("admin token", s.Admin)
	keep("master key", s.masterKey)

	verifier := s.create(t, s.Admin, map[string]any{"project_id": "p1", "name": "verifier", "scopes": []string{"api-keys:verify", "api-keys:read"}})
	k := s.create(t, s.Admin, map[string]any{"project_id": "p1", "name": "orders", "scopes": []string{"orders:read"}})
	keep("API key", verifier.Secret)
	keep("API key", k.Secret)
	unissued, err := apikey.GenerateKey("sk")
	if err != nil {
		t.Fatal(err)
	}
	keep("unissued key", unissued.Plaintext)
	keep("mistyped key", typo(k.Secret))
	keep("mistyped admin token", typo(s.Admin))

	if v := s.verify(t, verifier.Secret, map[string]any{"key": k.Secret, "scopes": []string{"orders:read"}}); v["code"] != "VALID" {
		t.Fatalf("valid key: %v", v)
	}
	for _, bad := range []string{typo(k.Secret), unissued.Plaintext} {
		if v := s.verify(t, verifier.Secret, map[string]any{"key": bad}); v["valid"] != false {
			t.Fatalf("invalid key: %v", v)
		}
	}
	for _, bearer := range []string{typo(s.Admin), typo(verifier.Secret), unissued.Plaintext} {
		problem(t, s.do(t, http.MethodGet, "/v1/api-keys?project_id=p1", bearer, nil), http.StatusUnauthorized)
		problem(t, s.do(t, http.MethodPost, "/v1/api-keys/verify", bearer, map[string]any{"key": k.Secret}), http.StatusUnauthorized)
	}

	rot := expect(t, s.do(t, http.MethodPost, "/v1/api-keys/"+k.ID+"/rotate", s.Admin, map[string]any{"grace_period_minutes": 5}), http.StatusCreated).object(t)
	keep("API key", rot["key"].(string))

	rc := newReceiver(t, func(n int, _ *http.Request) int {
		if n == 1 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	scheduled, whsec := s.rotatingKey(t, rc.URL+"/hooks/rotated", "orders:read")
	keep("API key", scheduled.Secret)
	keep("webhook secret", whsec)
	waitFor(t, 30*time.Second, "the second webhook attempt", func() bool { return len(rc.deliveries()) >= 2 })
	d := rc.deliveries()[1]
	checkSignature(t, d, whsec)
	keep("API key", d.Data.Key)
	waitFor(t, 10*time.Second, "the old key to be replaced", func() bool { return s.get(t, scheduled.ID)["replaced_by_key_id"] == d.Data.NewKeyID })

	for _, id := range []string{k.ID, rot["new_key_id"].(string), scheduled.ID, d.Data.NewKeyID} {
		expect(t, s.do(t, http.MethodDelete, "/v1/api-keys/"+id, s.Admin, nil), http.StatusNoContent)
	}
	problem(t, s.do(t, http.MethodGet, "/v1/api-keys?project_id=p1", rot["key"].(string), nil), http.StatusUnauthorized)

	// A clean stop writes out every buffered line.
	if err := s.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("stop: %v\n%s", err, s.out)
	}
	text := s.out.String()
	// The scan is only worth something if the traffic was logged, as text.
	for _, want := range []string{
		"method=POST route=/v1/api-keys status=201",
		"route=/v1/api-keys/verify status=200",
		"route=/v1/api-keys status=401",
		"route=/v1/api-keys/verify status=401",
		"route=/v1/api-keys/{keyID}/rotate status=201",
		"route=/v1/api-keys/{keyID} status=204",
		`msg="rotation webhook attempt failed; will retry"`,
		`msg="key rotated on schedule"`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the log lacks %q", want)
		}
	}
	for line := range strings.Lines(text) {
		if strings.HasPrefix(line, "{") {
			t.Fatalf("a JSON line in a text log: %s", line)
		}
	}
	if t.Failed() {
		t.Fatalf("log:\n%s", text)
	}
	if found := leaks(text, mine); len(found) > 0 {
		t.Fatalf("the text log contains secrets: %s", strings.Join(found, ", "))
	}
	t.Logf("%d secrets searched in %d lines of text log: none found", len(mine), strings.Count(text, "\n"))
}
