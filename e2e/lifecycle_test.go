package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestRestart checks that keys, revocations, rotations, the audit log and
// the admin token survive a restart, and that SIGTERM exits 0 after writing
// buffered last uses.
func TestRestart(t *testing.T) {
	s := startServer(t, withArgs("--last-used-flush", "1h")) // only shutdown flushes
	verifier := s.create(t, s.Admin, map[string]any{"project_id": "p1", "name": "verifier", "scopes": []string{"api-keys:verify"}})
	kept := s.create(t, s.Admin, map[string]any{"project_id": "p1", "name": "kept", "scopes": []string{"a"}})
	revoked := s.create(t, s.Admin, map[string]any{"project_id": "p1", "name": "revoked"})
	expect(t, s.do(t, http.MethodDelete, "/v1/api-keys/"+revoked.ID, s.Admin, nil), http.StatusNoContent)
	rotated := s.create(t, s.Admin, map[string]any{"project_id": "p1", "name": "rotated"})
	rot := expect(t, s.do(t, http.MethodPost, "/v1/api-keys/"+rotated.ID+"/rotate", s.Admin, `{"grace_period_minutes": 0}`), http.StatusCreated).object(t)
	secrets.add("API key", rot["key"].(string))
	if v := s.verify(t, verifier.Secret, map[string]any{"key": kept.Secret}); v["code"] != "VALID" {
		t.Fatalf("before restart: %v", v)
	}
	admin := s.Admin

	s.restart(syscall.SIGTERM)

	for key, code := range map[string]string{kept.Secret: "VALID", revoked.Secret: "REVOKED", rotated.Secret: "ROTATED", rot["key"].(string): "VALID"} {
		if v := s.verify(t, admin, map[string]any{"key": key}); v["code"] != code {
			t.Errorf("after restart: %v, want %s", v, code)
		}
	}
	got := expect(t, s.do(t, http.MethodGet, "/v1/api-keys/"+kept.ID, admin, nil), http.StatusOK).object(t)
	if got["last_used_at"] == nil {
		t.Fatalf("last_used_at not written on SIGTERM: %v", got)
	}
	events := expect(t, s.do(t, http.MethodGet, "/v1/audit-events?project_id=p1", admin, nil), http.StatusOK).list(t)
	if len(events) != 6 { // 4 creates, 1 revoke, 1 rotate
		t.Fatalf("%d audit events after restart, want 6", len(events))
	}
}

// TestLastUsed checks that verification and bearer use record last_used_at,
// written in batches.
func TestLastUsed(t *testing.T) {
	s := startServer(t, withArgs("--last-used-flush", "100ms"))
	reader := s.create(t, s.Admin, map[string]any{"project_id": "p1", "name": "reader", "scopes": []string{"api-keys:read", "api-keys:verify"}})
	k := s.create(t, s.Admin, map[string]any{"project_id": "p1", "name": "k"})
	if k.Object["last_used_at"] != nil {
		t.Fatal("new key has last_used_at")
	}
	before := time.Now().Add(-time.Second)
	s.verify(t, reader.Secret, map[string]any{"key": k.Secret})
	time.Sleep(300 * time.Millisecond)
	got := expect(t, s.do(t, http.MethodGet, "/v1/api-keys/"+k.ID, s.Admin, nil), http.StatusOK).object(t)
	if got["last_used_at"] == nil || parseTime(t, got["last_used_at"]).Before(before) {
		t.Fatalf("after verify: last_used_at %v", got["last_used_at"])
	}
	got = expect(t, s.do(t, http.MethodGet, "/v1/api-keys/"+reader.ID, s.Admin, nil), http.StatusOK).object(t)
	if got["last_used_at"] == nil {
		t.Fatal("bearer use did not record last_used_at")
	}
}

// TestKillDuringCreates kills the server with SIGKILL while keys are being
// created: every key it acknowledged must be listed and verify afterwards.
func TestKillDuringCreates(t *testing.T) {
	s := startServer(t)
	admin := s.Admin
	var mu sync.Mutex
	acked := map[string]string{} // id → secret
	var stop atomic.Bool
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				r, err := s.try(http.MethodPost, "/v1/api-keys", admin, map[string]any{"project_id": "crash", "name": fmt.Sprintf("w%d-%d", w, i)})
				if err != nil || r.Status != http.StatusCreated {
					continue // cut off by the kill: not acknowledged
				}
				var obj map[string]any
				r.json(t, &obj)
				secrets.add("API key", obj["key"].(string))
				mu.Lock()
				acked[obj["id"].(string)] = obj["key"].(string)
				mu.Unlock()
			}
		}()
	}
	// Kill once creates are flowing: at least 10 acknowledged and 700 ms
	// of load (however slow a busy machine makes them), so that the kill
	// lands among writes in flight.
	loaded := time.Now().Add(700 * time.Millisecond)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 10 && time.Now().After(loaded) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d creates acknowledged in 30 s", n)
		}
	}
	s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.exited
	stop.Store(true)
	wg.Wait()
	s.start()

	listed := map[string]bool{}
	next := "/v1/api-keys?project_id=crash&limit=1000"
	for next != "" {
		r := expect(t, s.do(t, http.MethodGet, next, admin, nil), http.StatusOK)
		for _, k := range r.list(t) {
			listed[k["id"].(string)] = true
		}
		next = linkNext(t, r)
	}
	for id, secret := range acked {
		if !listed[id] {
			t.Errorf("acknowledged key %s is not listed after kill -9", id)
		}
		if v := s.verify(t, admin, map[string]any{"key": secret}); v["code"] != "VALID" {
			t.Errorf("acknowledged key %s: %v", id, v)
		}
	}
	t.Logf("%d creates acknowledged before SIGKILL, %d keys listed after restart", len(acked), len(listed))
}

// TestSQLiteOneProcess starts a second apikeyd on a running server's
// SQLite data directory: it must exit non-zero at once, saying why, while
// the first keeps serving (a revocation there is seen at once, as it would
// not be by a second process with its own index). After the first is
// stopped, by SIGTERM and then by SIGKILL, a new process starts on the
// directory, and holds it in turn.
func TestSQLiteOneProcess(t *testing.T) {
	if backend != backendSQLite {
		t.Skip("SQLite only: runs in the sqlite pass")
	}
	s := startServer(t)
	k := s.create(t, s.Admin, map[string]any{"project_id": "p1", "name": "k"})
	s.refusesSecond(t)
	if v := s.verify(t, s.Admin, map[string]any{"key": k.Secret}); v["code"] != "VALID" {
		t.Fatalf("the first server, after the second was refused: %v", v)
	}
	expect(t, s.do(t, http.MethodDelete, "/v1/api-keys/"+k.ID, s.Admin, nil), http.StatusNoContent)
	if v := s.verify(t, s.Admin, map[string]any{"key": k.Secret}); v["code"] != "REVOKED" {
		t.Fatalf("after revoking: %v", v)
	}

	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		s.restart(sig) // fails the test unless the new process starts
		if v := s.verify(t, s.Admin, map[string]any{"key": k.Secret}); v["code"] != "REVOKED" {
			t.Errorf("after %v and a restart: %v", sig, v)
		}
		s.refusesSecond(t)
	}
}

// refusesSecond runs a second `apikeyd serve` on the server's data
// directory and checks that it exits non-zero with a message naming the
// directory, the process holding it and PostgreSQL for replicas.
func (s *server) refusesSecond(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "serve", "--addr", "127.0.0.1:0", "--data-dir", s.dataDir, "--log-format", "json")
	cmd.Env = serverEnv(nil)
	out := &output{}
	secrets.track(out)
	cmd.Stdout, cmd.Stderr = out, out
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() <= 0 {
		t.Fatalf("a second apikeyd on %s: %v, want a non-zero exit\n%s", s.dataDir, err, out)
	}
	pid := fmt.Sprintf("pid %d", s.cmd.Process.Pid)
	for _, want := range []string{s.dataDir, pid, "SQLite serves a single apikeyd process", "PostgreSQL (APIKEYD_DATABASE_URL)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the second apikeyd's output does not say %q:\n%s", want, out)
		}
	}
	if strings.Contains(out.String(), `"msg":"listening"`) {
		t.Errorf("the second apikeyd listened before exiting:\n%s", out)
	}
	expect(t, s.do(t, http.MethodGet, "/readyz", "", nil), http.StatusOK)
}
