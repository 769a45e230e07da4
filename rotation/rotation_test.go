package rotation_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/apikey"
	"github.com/apikeyd/apikeyd/rotation"
	"github.com/apikeyd/apikeyd/seal"
	"github.com/apikeyd/apikeyd/service"
	"github.com/apikeyd/apikeyd/sqlite"
	"github.com/apikeyd/apikeyd/webhook"
)

// clock is a settable clock for the service.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// hit is one request the receiver got.
type hit struct {
	ID, Timestamp, Signature string
	Body                     []byte
	Payload                  payload
}

type payload struct {
	Type      string    `json:"type"`
	Timestamp time.Time `json:"timestamp"`
	Data      struct {
		OldKeyID       string     `json:"old_key_id"`
		NewKeyID       string     `json:"new_key_id"`
		ProjectID      string     `json:"project_id"`
		EnvironmentID  *string    `json:"environment_id"`
		Name           string     `json:"name"`
		Key            string     `json:"key"`
		KeyPrefix      string     `json:"key_prefix"`
		Scopes         []string   `json:"scopes"`
		ExpiresAt      *time.Time `json:"expires_at"`
		GraceExpiresAt time.Time  `json:"grace_expires_at"`
	} `json:"data"`
}

// receiver is a real webhook endpoint on loopback that records what it gets
// and answers with status(n) for the n-th request (from 1).
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	hits   []hit
	status func(n int) int
}

func newReceiver(t *testing.T, status func(n int) int) *receiver {
	t.Helper()
	r := &receiver{status: status}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		h := hit{ID: req.Header.Get("webhook-id"), Timestamp: req.Header.Get("webhook-timestamp"),
			Signature: req.Header.Get("webhook-signature"), Body: body}
		if err := json.Unmarshal(body, &h.Payload); err != nil {
			t.Errorf("payload %s: %v", body, err)
		}
		r.mu.Lock()
		r.hits = append(r.hits, h)
		n := len(r.hits)
		r.mu.Unlock()
		w.WriteHeader(r.status(n))
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) got() []hit {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.hits)
}

func always(status int) func(int) int { return func(int) int { return status } }

// env is a service on a real SQLite file with a scheduler, run by hand.
type env struct {
	t      *testing.T
	clock  *clock
	store  *sqlite.Store
	svc    *service.Service
	sched  *rotation.Scheduler
	policy service.RotationPolicy
}

var masterKey = []byte("0123456789abcdef0123456789abcdef")

func openStore(t *testing.T, path string) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func newService(t *testing.T, st apikey.Store, now func() time.Time) *service.Service {
	t.Helper()
	box, err := seal.New(masterKey)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := service.New(service.Options{
		Store: st, Box: box, AdminToken: "admin-token-for-tests", KeyPrefix: "sk",
		Webhooks: webhook.Policy{Insecure: true}, Now: now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

func newEnv(t *testing.T, policy service.RotationPolicy) *env {
	t.Helper()
	e := &env{t: t, clock: &clock{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}, policy: policy}
	e.store = openStore(t, filepath.Join(t.TempDir(), "apikeyd.db"))
	e.svc = newService(t, e.store, e.clock.Now)
	e.sched = rotation.New(rotation.Options{Service: e.svc, Sender: webhook.NewClient(webhook.Policy{Insecure: true}), Policy: policy})
	return e
}

var defaultPolicy = service.RotationPolicy{Grace: 24 * time.Hour, Backoff: 5 * time.Second, MaxAttempts: 10, Lease: 20 * time.Second}

// create issues a key that rotates every 30 days through url, and makes
// its rotation due now.
func (e *env) create(url string, scopes ...string) *service.Created {
	e.t.Helper()
	days, env := 30, "prod"
	c, err := e.svc.Create(e.t.Context(), apikey.AdminPrincipal, service.CreateInput{
		ProjectID: "p1", Name: "billing", Scopes: scopes, EnvironmentID: &env,
		RotationIntervalDays: &days, RotationWebhookURL: &url,
	})
	if err != nil {
		e.t.Fatalf("create: %v", err)
	}
	now := e.clock.Now()
	if _, err := e.svc.Patch(e.t.Context(), apikey.AdminPrincipal, c.Key.ID, service.PatchInput{NextRotationAt: apikey.Some(now)}); err != nil {
		e.t.Fatalf("patch next_rotation_at: %v", err)
	}
	return c
}

func (e *env) key(id string) *apikey.Key {
	e.t.Helper()
	k, err := e.store.Key(e.t.Context(), id)
	if err != nil {
		e.t.Fatalf("key %s: %v", id, err)
	}
	return k
}

func (e *env) delivery(id string) *apikey.Delivery {
	e.t.Helper()
	d, err := e.store.Delivery(e.t.Context(), id)
	if err != nil {
		e.t.Fatalf("delivery %s: %v", id, err)
	}
	return d
}

func (e *env) verify(plaintext string, scopes ...string) apikey.VerifyCode {
	e.t.Helper()
	v, err := e.svc.Verify(e.t.Context(), apikey.AdminPrincipal, service.VerifyInput{Key: plaintext, Scopes: scopes})
	if err != nil {
		e.t.Fatal(err)
	}
	return v.Code
}

func (e *env) keyCount() int {
	e.t.Helper()
	n := 0
	if err := e.store.ScanKeys(e.t.Context(), func(*apikey.Key) error { n++; return nil }); err != nil {
		e.t.Fatal(err)
	}
	return n
}

func (e *env) actions(keyID string) []string {
	e.t.Helper()
	evs, err := e.store.AuditEvents(e.t.Context(), apikey.AuditFilter{ProjectID: "p1", KeyID: keyID, Limit: 100})
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, ev := range evs {
		out = append(out, ev.Action+"/"+ev.Actor.Type)
	}
	slices.Reverse(out)
	return out
}

// checkSigned fails unless h is signed with secret.
func checkSigned(t *testing.T, h hit, secret string) {
	t.Helper()
	ts, err := strconv.ParseInt(h.Timestamp, 10, 64)
	if err != nil {
		t.Fatalf("webhook-timestamp %q", h.Timestamp)
	}
	if !webhook.Verify(secret, h.ID, ts, h.Body, h.Signature) {
		t.Errorf("signature %q does not verify with the secret from create", h.Signature)
	}
}

func TestDelivered(t *testing.T) {
	e := newEnv(t, defaultPolicy)
	r := newReceiver(t, always(http.StatusOK))
	c := e.create(r.URL+"/hooks/rotated", "orders:read", "orders:write")
	e.clock.Add(time.Second)
	rotatedAt := e.clock.Now()
	e.sched.RunOnce(t.Context())

	hits := r.got()
	if len(hits) != 1 {
		t.Fatalf("%d requests, want 1", len(hits))
	}
	h := hits[0]
	checkSigned(t, h, c.WebhookSecret)
	if !apikey.ValidID(apikey.IDKindDelivery, h.ID) || h.Timestamp != strconv.FormatInt(rotatedAt.Unix(), 10) {
		t.Errorf("webhook-id %q, webhook-timestamp %q", h.ID, h.Timestamp)
	}
	p := h.Payload
	if p.Type != "api_key.rotated" || !p.Timestamp.Equal(rotatedAt) || p.Data.OldKeyID != c.Key.ID || p.Data.ProjectID != "p1" ||
		p.Data.EnvironmentID == nil || *p.Data.EnvironmentID != "prod" || p.Data.Name != "billing" ||
		fmt.Sprint(p.Data.Scopes) != "[orders:read orders:write]" || p.Data.ExpiresAt != nil ||
		!p.Data.GraceExpiresAt.Equal(rotatedAt.Add(24*time.Hour)) || p.Data.KeyPrefix != p.Data.Key[:12] {
		t.Errorf("payload %s", h.Body)
	}

	if code := e.verify(p.Data.Key, "orders:read", "orders:write"); code != apikey.CodeValid {
		t.Errorf("delivered key: %s", code)
	}
	if code := e.verify(c.Plaintext, "orders:read"); code != apikey.CodeValid {
		t.Errorf("old key in grace: %s", code)
	}
	old := e.key(c.Key.ID)
	if old.ReplacedByKeyID != p.Data.NewKeyID || !old.GraceExpiresAt.Equal(p.Data.GraceExpiresAt) || !old.NextRotationAt.IsZero() {
		t.Errorf("old key %+v", old)
	}
	nk := e.key(p.Data.NewKeyID)
	if nk.Hash != apikey.HashKey(p.Data.Key) || nk.ReplacesKeyID != c.Key.ID || nk.RotationIntervalDays != 30 ||
		!nk.NextRotationAt.Equal(rotatedAt.Add(30*24*time.Hour)) || nk.RotationWebhookURL != c.Key.RotationWebhookURL {
		t.Errorf("replacement %+v", nk)
	}
	d := e.delivery(h.ID)
	if d.State != apikey.DeliveryDelivered || d.PayloadSealed != nil || d.Attempts != 1 {
		t.Errorf("delivery %+v", d)
	}
	if got := e.actions(c.Key.ID); !slices.Equal(got, []string{"api_key.created/admin", "api_key.updated/admin", "api_key.rotated/system"}) {
		t.Errorf("old key's audit trail %v", got)
	}
	if got := e.actions(nk.ID); !slices.Equal(got, []string{"api_key.created/system"}) {
		t.Errorf("replacement's audit trail %v", got)
	}

	// Nothing more happens, and the old key ends with its grace.
	e.clock.Add(time.Hour)
	e.sched.RunOnce(t.Context())
	if n := len(r.got()); n != 1 || e.keyCount() != 2 {
		t.Errorf("%d requests and %d keys after another run, want 1 and 2", n, e.keyCount())
	}
	e.clock.Add(24 * time.Hour)
	if code := e.verify(c.Plaintext); code != apikey.CodeRotated {
		t.Errorf("old key after its grace: %s", code)
	}
}

func TestRetriedWithSameID(t *testing.T) {
	policy := defaultPolicy
	policy.Backoff = time.Minute
	e := newEnv(t, policy)
	r := newReceiver(t, func(n int) int {
		if n <= 2 {
			return http.StatusServiceUnavailable
		}
		return http.StatusAccepted
	})
	c := e.create(r.URL)

	e.sched.RunOnce(t.Context())
	hits := r.got()
	if len(hits) != 1 {
		t.Fatalf("%d requests after the first run", len(hits))
	}
	d := e.delivery(hits[0].ID)
	if d.State != apikey.DeliveryPending || d.Attempts != 1 || !d.NextAttemptAt.Equal(e.clock.Now().Add(time.Minute)) ||
		d.LastError != "answered 503" || d.PayloadSealed == nil {
		t.Fatalf("after one failure: %+v", d)
	}
	// Not yet due: nothing is sent.
	e.clock.Add(59 * time.Second)
	e.sched.RunOnce(t.Context())
	if len(r.got()) != 1 {
		t.Fatal("retried before the backoff")
	}
	e.clock.Add(time.Second)
	e.sched.RunOnce(t.Context())
	if d := e.delivery(hits[0].ID); !d.NextAttemptAt.Equal(e.clock.Now().Add(2 * time.Minute)) {
		t.Fatalf("second delay: next attempt %v, now %v", d.NextAttemptAt, e.clock.Now())
	}
	e.clock.Add(2 * time.Minute)
	e.sched.RunOnce(t.Context())

	hits = r.got()
	if len(hits) != 3 {
		t.Fatalf("%d requests, want 3", len(hits))
	}
	for i, h := range hits {
		checkSigned(t, h, c.WebhookSecret)
		if h.ID != hits[0].ID || h.Payload.Data.Key != hits[0].Payload.Data.Key {
			t.Errorf("request %d: webhook-id %s, want %s, and the same key", i, h.ID, hits[0].ID)
		}
	}
	if hits[2].Timestamp == hits[0].Timestamp {
		t.Error("every attempt should carry its own webhook-timestamp")
	}
	old := e.key(c.Key.ID)
	if old.ReplacedByKeyID != hits[2].Payload.Data.NewKeyID || e.keyCount() != 2 {
		t.Errorf("old key %+v, %d keys", old, e.keyCount())
	}
}

func TestBackoffCapped(t *testing.T) {
	policy := defaultPolicy
	policy.Backoff, policy.MaxAttempts = 10*time.Minute, 20
	e := newEnv(t, policy)
	r := newReceiver(t, always(http.StatusInternalServerError))
	e.create(r.URL)
	var delays []time.Duration
	for range 6 {
		e.sched.RunOnce(t.Context())
		hits := r.got()
		d := e.delivery(hits[len(hits)-1].ID)
		delay := d.NextAttemptAt.Sub(e.clock.Now())
		delays = append(delays, delay)
		e.clock.Add(delay)
	}
	want := []time.Duration{10 * time.Minute, 20 * time.Minute, 40 * time.Minute, time.Hour, time.Hour, time.Hour}
	if !slices.Equal(delays, want) {
		t.Errorf("delays %v, want %v", delays, want)
	}
}

func TestAbandoned(t *testing.T) {
	policy := defaultPolicy
	policy.MaxAttempts = 3
	e := newEnv(t, policy)
	r := newReceiver(t, always(http.StatusInternalServerError))
	c := e.create(r.URL, "a")
	before := e.key(c.Key.ID)
	for range 3 {
		e.sched.RunOnce(t.Context())
		e.clock.Add(time.Hour)
	}
	hits := r.got()
	if len(hits) != 3 {
		t.Fatalf("%d requests, want 3", len(hits))
	}
	for _, h := range hits {
		if h.ID != hits[0].ID {
			t.Errorf("webhook-id %s, want %s", h.ID, hits[0].ID)
		}
	}
	abandonedAt := e.clock.Now().Add(-time.Hour)
	nk := e.key(hits[0].Payload.Data.NewKeyID)
	if nk.RevokedAt.IsZero() || e.verify(hits[0].Payload.Data.Key) != apikey.CodeRevoked {
		t.Errorf("replacement not revoked: %+v", nk)
	}
	old := e.key(c.Key.ID)
	if !old.NextRotationAt.Equal(abandonedAt.Add(time.Hour)) {
		t.Errorf("old key next_rotation_at %v, want an hour after %v", old.NextRotationAt, abandonedAt)
	}
	// Untouched otherwise.
	want := before.Clone()
	want.NextRotationAt, want.UpdatedAt, want.Version = old.NextRotationAt, old.UpdatedAt, old.Version
	if fmt.Sprintf("%+v", old) != fmt.Sprintf("%+v", want) {
		t.Errorf("old key changed:\n got %+v\nwant %+v", old, want)
	}
	if e.verify(c.Plaintext, "a") != apikey.CodeValid {
		t.Error("old key no longer valid")
	}
	d := e.delivery(hits[0].ID)
	if d.State != apikey.DeliveryAbandoned || d.PayloadSealed != nil || d.LastError != "answered 500" {
		t.Errorf("delivery %+v", d)
	}
	if got := e.actions(c.Key.ID); got[len(got)-1] != "api_key.rotation_failed/system" {
		t.Errorf("old key's audit trail %v", got)
	}
	if got := e.actions(nk.ID); !slices.Equal(got, []string{"api_key.created/system", "api_key.revoked/system"}) {
		t.Errorf("replacement's audit trail %v", got)
	}

	// An hour later the rotation comes due again: a new delivery, a new key.
	e.sched.RunOnce(t.Context())
	hits = r.got()
	if len(hits) != 4 || hits[3].ID == hits[0].ID || hits[3].Payload.Data.Key == hits[0].Payload.Data.Key {
		t.Errorf("%d requests; the retry an hour later should be a new delivery", len(hits))
	}
}

// TestResumedAfterCrash leases an attempt and drops it, as a worker killed
// mid-attempt would: once the lease runs out, the next run sends the same
// delivery with the same webhook-id and the same key.
func TestResumedAfterCrash(t *testing.T) {
	e := newEnv(t, defaultPolicy)
	r := newReceiver(t, always(http.StatusOK))
	c := e.create(r.URL)
	if n, err := e.svc.ClaimDueRotations(t.Context(), 10); err != nil || n != 1 {
		t.Fatalf("claim: %d, %v", n, err)
	}
	attempts, _, err := e.svc.LeaseDeliveries(t.Context(), e.policy, 10)
	if err != nil || len(attempts) != 1 {
		t.Fatalf("lease: %v, %v", attempts, err)
	}
	lost := attempts[0]

	e.sched.RunOnce(t.Context()) // the lease holds: nothing is sent
	if len(r.got()) != 0 {
		t.Fatal("a leased delivery was attempted by another worker")
	}
	e.clock.Add(e.policy.Lease)
	e.sched.RunOnce(t.Context())
	hits := r.got()
	if len(hits) != 1 || hits[0].ID != lost.DeliveryID || hits[0].Payload.Data.NewKeyID != lost.ReplacementKeyID {
		t.Fatalf("requests %+v, want one for %s", hits, lost.DeliveryID)
	}
	checkSigned(t, hits[0], c.WebhookSecret)
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("attempt", "attempt", lost)
	printed := fmt.Sprintf("%v %+v %#v %s", lost, lost, lost, logged.String())
	for _, secret := range []string{c.WebhookSecret, hits[0].Payload.Data.Key} {
		if strings.Contains(printed, secret) {
			t.Errorf("an attempt prints a secret: %s", printed)
		}
	}
	if e.keyCount() != 2 || e.delivery(lost.DeliveryID).Attempts != 2 {
		t.Errorf("%d keys, %d attempts", e.keyCount(), e.delivery(lost.DeliveryID).Attempts)
	}
	// The lost worker comes back with a failure: it no longer holds the
	// delivery, so nothing changes.
	f, err := e.svc.FinishAttempt(t.Context(), e.policy, lost, fmt.Errorf("timed out"))
	if err != nil || f.Outcome != service.OutcomeStale {
		t.Errorf("late outcome: %+v, %v", f, err)
	}
	if e.key(c.Key.ID).ReplacedByKeyID != lost.ReplacementKeyID {
		t.Error("old key not replaced")
	}
}

// TestLateSuccessWins: a worker whose lease ran out but whose receiver
// answered 2xx still finishes the delivery — the receiver has the key.
func TestLateSuccessWins(t *testing.T) {
	e := newEnv(t, defaultPolicy)
	c := e.create("http://127.0.0.1:9/unused")
	e.svc.ClaimDueRotations(t.Context(), 10)
	first, _, _ := e.svc.LeaseDeliveries(t.Context(), e.policy, 10)
	e.clock.Add(e.policy.Lease)
	second, _, _ := e.svc.LeaseDeliveries(t.Context(), e.policy, 10)
	if len(first) != 1 || len(second) != 1 || second[0].Number != 2 {
		t.Fatalf("leases %v %v", first, second)
	}
	f, err := e.svc.FinishAttempt(t.Context(), e.policy, first[0], nil)
	if err != nil || f.Outcome != service.OutcomeDelivered {
		t.Fatalf("late success: %+v %v", f, err)
	}
	f, err = e.svc.FinishAttempt(t.Context(), e.policy, second[0], fmt.Errorf("answered 500"))
	if err != nil || f.Outcome != service.OutcomeStale {
		t.Fatalf("failure after success: %+v %v", f, err)
	}
	if old := e.key(c.Key.ID); old.ReplacedByKeyID != first[0].ReplacementKeyID {
		t.Errorf("old key %+v", old)
	}
}

// TestChangedWhilePending covers what happens to a pending rotation when
// its key changes before the delivery succeeds.
func TestChangedWhilePending(t *testing.T) {
	// pending claims the rotation and fails the first attempt, so that the
	// delivery waits for a retry.
	pending := func(t *testing.T, e *env, url string) (*service.Created, *apikey.Delivery) {
		t.Helper()
		c := e.create(url, "a")
		e.sched.RunOnce(t.Context())
		var d *apikey.Delivery
		e.store.ScanKeys(t.Context(), func(k *apikey.Key) error {
			if k.ReplacesKeyID == c.Key.ID {
				d = &apikey.Delivery{ReplacementKeyID: k.ID}
			}
			return nil
		})
		if d == nil {
			t.Fatal("no replacement issued")
		}
		e.clock.Add(time.Hour)
		return c, d
	}
	down := always(http.StatusBadGateway)

	t.Run("OKNewURL", func(t *testing.T) {
		e := newEnv(t, defaultPolicy)
		old, fixed := newReceiver(t, down), newReceiver(t, always(http.StatusOK))
		c, _ := pending(t, e, old.URL)
		url := fixed.URL + "/v2"
		if _, err := e.svc.Patch(t.Context(), apikey.AdminPrincipal, c.Key.ID, service.PatchInput{
			RotationWebhookURL: apikey.Some(url),
		}); err != nil {
			t.Fatal(err)
		}
		e.sched.RunOnce(t.Context())
		if len(old.got()) != 1 || len(fixed.got()) != 1 || fixed.got()[0].ID != old.got()[0].ID {
			t.Fatalf("old URL got %d, new URL %d", len(old.got()), len(fixed.got()))
		}
		nk := e.key(fixed.got()[0].Payload.Data.NewKeyID)
		if nk.RotationWebhookURL != url || e.key(c.Key.ID).ReplacedByKeyID != nk.ID {
			t.Errorf("replacement's URL %q", nk.RotationWebhookURL)
		}
	})
	t.Run("OKNewScopes", func(t *testing.T) {
		e := newEnv(t, defaultPolicy)
		r := newReceiver(t, func(n int) int { return map[bool]int{true: 500, false: 200}[n == 1] })
		c, d := pending(t, e, r.URL)
		scopes := []string{"a", "b"}
		name := "renamed"
		if _, err := e.svc.Patch(t.Context(), apikey.AdminPrincipal, c.Key.ID, service.PatchInput{Scopes: apikey.Some(scopes), Name: apikey.Some(name)}); err != nil {
			t.Fatal(err)
		}
		e.sched.RunOnce(t.Context())
		hits := r.got()
		if len(hits) != 2 || fmt.Sprint(hits[1].Payload.Data.Scopes) != "[a b]" || hits[1].Payload.Data.Name != "renamed" {
			t.Fatalf("requests %+v", hits)
		}
		if nk := e.key(d.ReplacementKeyID); fmt.Sprint(nk.Scopes) != "[a b]" || nk.Name != "renamed" {
			t.Errorf("replacement %+v", nk)
		}
		if e.verify(hits[1].Payload.Data.Key, "b") != apikey.CodeValid {
			t.Error("delivered key lacks the new scope")
		}
	})
	for name, change := range map[string]func(e *env, id string) error{
		"ErrRevoked": func(e *env, id string) error { return e.svc.Revoke(t.Context(), apikey.AdminPrincipal, id, "") },
		"ErrRotatedByHand": func(e *env, id string) error {
			_, err := e.svc.Rotate(t.Context(), apikey.AdminPrincipal, id, 0)
			return err
		},
		"ErrTurnedOff": func(e *env, id string) error {
			_, err := e.svc.Patch(t.Context(), apikey.AdminPrincipal, id, service.PatchInput{RotationIntervalDays: apikey.Null[int]()})
			return err
		},
		"ErrReplacementRevoked": func(e *env, id string) error {
			var nk string
			e.store.ScanKeys(t.Context(), func(k *apikey.Key) error {
				if k.ReplacesKeyID == id && k.RevokedAt.IsZero() {
					nk = k.ID
				}
				return nil
			})
			return e.svc.Revoke(t.Context(), apikey.AdminPrincipal, nk, "")
		},
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, defaultPolicy)
			r := newReceiver(t, down)
			c, d := pending(t, e, r.URL)
			if err := change(e, c.Key.ID); err != nil {
				t.Fatal(err)
			}
			oldBefore := e.key(c.Key.ID)
			e.sched.RunOnce(t.Context())
			if n := len(r.got()); n != 1 {
				t.Errorf("%d requests, want only the first", n)
			}
			nk := e.key(d.ReplacementKeyID)
			if nk.RevokedAt.IsZero() {
				t.Error("undelivered replacement not revoked")
			}
			old := e.key(c.Key.ID)
			wantNext := time.Time{}
			if name == "ErrReplacementRevoked" {
				wantNext = e.clock.Now().Add(time.Hour)
			}
			if !old.NextRotationAt.Equal(wantNext) || old.RevokedAt != oldBefore.RevokedAt || old.ReplacedByKeyID != oldBefore.ReplacedByKeyID {
				t.Errorf("old key %+v", old)
			}
			if got := e.actions(c.Key.ID); got[len(got)-1] != "api_key.rotation_failed/system" {
				t.Errorf("audit trail %v", got)
			}
		})
	}
}

// TestTwoSchedulers runs two schedulers at once, each with its own store
// on one SQLite file, against 50 due keys: every key is rotated exactly
// once. Exactly-once rests on the store's claims, so it holds for
// separate connections as it does for replicas on PostgreSQL (e2e
// TestScheduledRotationTwoProcesses); apikeyd itself refuses a second
// process on one SQLite data directory (sqlite.LockDir).
func TestTwoSchedulers(t *testing.T) {
	const n = 50
	path := filepath.Join(t.TempDir(), "apikeyd.db")
	r := newReceiver(t, always(http.StatusOK))
	var svcs []*service.Service
	for range 2 {
		svcs = append(svcs, newService(t, openStore(t, path), nil))
	}
	// Several schedulers of each service too, as replicas with more than
	// one worker would be.
	secrets := map[string]string{}
	now := time.Now()
	for i := range n {
		days, url := 7, r.URL
		c, err := svcs[i%2].Create(t.Context(), apikey.AdminPrincipal, service.CreateInput{
			ProjectID: "p1", Name: fmt.Sprint("k", i), RotationIntervalDays: &days, RotationWebhookURL: &url,
		})
		if err != nil {
			t.Fatal(err)
		}
		due := now.Add(500 * time.Millisecond)
		if _, err := svcs[i%2].Patch(t.Context(), apikey.AdminPrincipal, c.Key.ID, service.PatchInput{NextRotationAt: apikey.Some(due)}); err != nil {
			t.Fatal(err)
		}
		secrets[c.Key.ID] = c.WebhookSecret
	}
	ctx, cancel := context.WithCancel(t.Context())
	var scheds []*rotation.Scheduler
	t.Cleanup(func() { // before the stores close
		cancel()
		for _, s := range scheds {
			s.Wait()
		}
	})
	for i := range 4 {
		s := rotation.New(rotation.Options{
			Service: svcs[i%2], Sender: webhook.NewClient(webhook.Policy{Insecure: true}),
			Policy: defaultPolicy, Interval: 50 * time.Millisecond, Batch: 7, Workers: 3,
		})
		s.Start(ctx)
		scheds = append(scheds, s)
	}
	deadline := time.Now().Add(60 * time.Second)
	for len(r.got()) < n && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // room for a duplicate to show up

	hits := r.got()
	ids, olds := map[string]bool{}, map[string]bool{}
	for _, h := range hits {
		if ids[h.ID] || olds[h.Payload.Data.OldKeyID] {
			t.Errorf("delivery %s for key %s twice", h.ID, h.Payload.Data.OldKeyID)
		}
		ids[h.ID], olds[h.Payload.Data.OldKeyID] = true, true
		checkSigned(t, h, secrets[h.Payload.Data.OldKeyID])
	}
	if len(hits) != n || len(olds) != n {
		t.Errorf("%d deliveries for %d keys, want %d", len(hits), len(olds), n)
	}
	st := openStore(t, path)
	keys, replacements := 0, 0
	st.ScanKeys(t.Context(), func(k *apikey.Key) error {
		keys++
		if k.ReplacesKeyID != "" {
			replacements++
		}
		return nil
	})
	if keys != 2*n || replacements != n {
		t.Errorf("%d keys, %d replacements; want %d and %d", keys, replacements, 2*n, n)
	}
}
