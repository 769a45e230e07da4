package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/apikey"
	"github.com/apikeyd/apikeyd/service"
)

// goInternals matches what a problem must never show: encoding/json's own
// wording and Go's type names.
var goInternals = regexp.MustCompile(`json: |unmarshal|Go (struct|value)|\b(u?int(8|16|32|64)?|float(32|64)|struct|interface|map\[)\b|\[\]`)

// checkProblem fails unless body is a 400 problem whose errors are
// exactly want, and that shows nothing of Go.
func checkProblem(t *testing.T, what string, status int, body []byte, want ...FieldProblem) {
	t.Helper()
	var p Problem
	if err := json.Unmarshal(body, &p); err != nil || status != http.StatusBadRequest || p.Type != "urn:apikeyd:problem:invalid" {
		t.Fatalf("%s: %d %s, want a 400 problem", what, status, body)
	}
	if goInternals.Match(body) {
		t.Fatalf("%s: the problem shows Go internals: %s", what, body)
	}
	got, _ := json.Marshal(p.Errors)
	exp, _ := json.Marshal(want)
	if string(got) != string(exp) {
		t.Fatalf("%s: errors %s, want %s", what, got, exp)
	}
}

// TestWholeNumbers: integer fields take any JSON number whose value is
// whole (5, 5.0, 5e0, 50e-1) as that integer, on every route, and reject
// any other with a problem naming the field.
func TestWholeNumbers(t *testing.T) {
	f := newFixture(t, 100)
	t.Run("OK", func(t *testing.T) {
		for _, n := range []string{"5", "5.0", "5.00", "5e0", "5E+0", "50e-1", "0.5e1"} {
			status, body := f.do(t, http.MethodPost, "/v1/api-keys", f.admin, []byte(`{"project_id":"p1","name":"n","expires_in_days":`+n+`}`))
			var k KeyObject
			if err := json.Unmarshal(body, &k); err != nil || status != http.StatusCreated || k.ExpiresAt == nil || !k.ExpiresAt.Equal(k.CreatedAt.AddDate(0, 0, 5)) {
				t.Fatalf("create, expires_in_days %s: %d %s, want 201 expiring 5 days later", n, status, body)
			}
			status, body = f.do(t, http.MethodPatch, "/v1/api-keys/"+k.ID, f.admin,
				[]byte(`{"rotation_interval_days":`+n+`,"rotation_webhook_url":"https://example.com/h"}`))
			if err := json.Unmarshal(body, &k); err != nil || status != http.StatusOK || k.RotationIntervalDays == nil || *k.RotationIntervalDays != 5 {
				t.Fatalf("patch, rotation_interval_days %s: %d %s, want 200 with 5", n, status, body)
			}
			status, body = f.do(t, http.MethodPost, "/v1/api-keys/"+k.ID+"/rotate", f.admin, []byte(`{"grace_period_minutes":`+n+`}`))
			var r RotateObject
			if err := json.Unmarshal(body, &r); err != nil || status != http.StatusCreated || r.GraceExpiresAt == nil ||
				!r.GraceExpiresAt.Equal(r.CreatedAt.Add(5*time.Minute)) {
				t.Fatalf("rotate, grace_period_minutes %s: %d %s, want 201 with 5 minutes of grace", n, status, body)
			}
		}
	})
	k := f.create(t, service.CreateInput{ProjectID: "p1", Name: "untouched"})
	for _, tc := range []struct {
		name, value, message string
	}{
		{"ErrFraction", "5.5", "expected integer"},
		{"ErrSmallFraction", "5.000001", "expected integer"},
		{"ErrExponentFraction", "55e-1", "expected integer"},
		{"ErrString", `"5"`, "expected integer"},
		{"ErrBool", "true", "expected integer"},
		{"ErrBeyondFloat", "1e400", "expected number <= "},
		{"ErrBelowFloat", "-1e400", "expected number >= "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, r := range []struct {
				method, path, body, field, max string
			}{
				{http.MethodPost, "/v1/api-keys", `{"project_id":"p1","name":"n","expires_in_days":%s}`, "expires_in_days", "36500"},
				{http.MethodPost, "/v1/api-keys", `{"project_id":"p1","name":"n","rotation_interval_days":%s,"rotation_webhook_url":"https://example.com/h"}`, "rotation_interval_days", "36500"},
				{http.MethodPatch, "/v1/api-keys/" + k.Key.ID, `{"rotation_interval_days":%s}`, "rotation_interval_days", "36500"},
				{http.MethodPost, "/v1/api-keys/" + k.Key.ID + "/rotate", `{"grace_period_minutes":%s}`, "grace_period_minutes", "10080"},
			} {
				msg := tc.message
				switch msg {
				case "expected number <= ":
					msg += r.max
				case "expected number >= ":
					msg += map[bool]string{true: "0", false: "1"}[r.field == "grace_period_minutes"]
				}
				status, body := f.do(t, r.method, r.path, f.admin, []byte(strings.Replace(r.body, "%s", tc.value, 1)))
				checkProblem(t, r.method+" "+r.field+" "+tc.value, status, body, FieldProblem{Field: r.field, Message: msg})
			}
		})
	}
	// None of the rejected requests changed the key.
	got, err := f.svc.Get(t.Context(), apikey.AdminPrincipal, k.Key.ID)
	if err != nil || got.RotationIntervalDays != 0 || got.ReplacedByKeyID != "" {
		t.Fatalf("key after rejected requests: %+v, %v", got, err)
	}
}

// TestBodyProblems: a body that is not JSON, or not an object, is a 400
// problem about the body as a whole (field ""), in JSON's terms, on every
// route with a body.
func TestBodyProblems(t *testing.T) {
	f := newFixture(t, 100)
	k := f.create(t, service.CreateInput{ProjectID: "p1", Name: "k"})
	deep := strings.Repeat("[", 20000) + strings.Repeat("]", 20000)
	for _, tc := range []struct {
		name, body, message string
	}{
		{"ErrArray", `[]`, "expected object"},
		{"ErrNull", `null`, "expected object"},
		{"ErrString", `"x"`, "expected object"},
		{"ErrNumber", `5.0`, "expected object"},
		{"ErrTruncated", `{`, "malformed JSON at byte 1: unexpected end of JSON input"},
		{"ErrTruncatedValue", `{"name": `, "malformed JSON at byte 9: unexpected end of JSON input"},
		{"ErrTrailing", `{} x`, "malformed JSON at byte 4: invalid character 'x' after top-level value"},
		{"ErrTwoValues", `{}{}`, "malformed JSON at byte 3: invalid character '{' after top-level value"},
		{"ErrNotJSON", `name=n`, "malformed JSON at byte 2: invalid character 'a' in literal null (expecting 'u')"},
		{"ErrDeep", deep, "malformed JSON at byte 10001: invalid character '[' exceeded max depth"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, r := range []struct{ method, path string }{
				{http.MethodPost, "/v1/api-keys"},
				{http.MethodPatch, "/v1/api-keys/" + k.Key.ID},
				{http.MethodPost, "/v1/api-keys/" + k.Key.ID + "/rotate"},
				{http.MethodPost, "/v1/api-keys/verify"},
			} {
				status, body := f.do(t, r.method, r.path, f.admin, []byte(tc.body))
				checkProblem(t, r.method+" "+r.path, status, body, FieldProblem{Field: "", Message: tc.message})
			}
		})
	}
}

// TestBodyErrorNamesNoGo: the errors decodeJSON returns when a body does
// not decode into its Go type (which huma's validator normally prevents)
// still speak of JSON.
func TestBodyErrorNamesNoGo(t *testing.T) {
	var v struct {
		N  int       `json:"n"`
		W  []bool    `json:"w"`
		At time.Time `json:"at"`
	}
	for _, tc := range []struct{ body, want string }{
		{`{"n":"x"}`, "n: expected integer"},
		{`{"n":1e400}`, "n: expected integer"},
		{`{"w":[1]}`, "w: expected boolean"},
		{`{"w":{}}`, "w: expected array"},
		{`{"at":"tomorrow"}`, msgBodyMismatch},
		{`{"n":`, "malformed JSON at byte 5: unexpected end of JSON input"},
	} {
		err := decodeJSON([]byte(tc.body), &v)
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s: %v, want %q", tc.body, err, tc.want)
		}
	}
	// The last guard, for an encoding/json message that reaches a problem
	// some other way.
	p := newHumaError(http.StatusBadRequest, "validation failed", json.Unmarshal([]byte(`"x"`), new(int)))
	if b, _ := json.Marshal(p); goInternals.Match(b) {
		t.Fatalf("problem shows Go internals: %s", b)
	}
}

// TestDocsErrorExample replays the example of docs/api.md's Errors
// section and checks that the server answers exactly what it shows.
func TestDocsErrorExample(t *testing.T) {
	raw, err := os.ReadFile("../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(raw), "\n## Errors\n")
	if !ok {
		t.Fatal("docs/api.md has no Errors section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	m := regexp.MustCompile("(?s)```sh\n.*? -d '(.*?)'\n```\n\n```json\n(.*?)```").FindStringSubmatch(section)
	if m == nil {
		t.Fatal("the Errors section has no request and answer example")
	}
	f := newFixture(t, 100)
	status, body := f.do(t, http.MethodPost, "/v1/api-keys", f.admin, []byte(m[1]))
	var want bytes.Buffer
	if err := json.Compact(&want, []byte(m[2])); err != nil {
		t.Fatalf("the documented answer is not JSON: %v", err)
	}
	if status != http.StatusBadRequest || string(bytes.TrimSpace(body)) != want.String() {
		t.Fatalf("the server answers %d %s\ndocs/api.md shows %s", status, body, want.String())
	}
}
