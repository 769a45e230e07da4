package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// startReplicas starts n apikeyd processes on one fresh PostgreSQL
// database, each with the options given.
func startReplicas(t *testing.T, n int, opts ...option) []*server {
	t.Helper()
	if backend != backendPostgres {
		t.Skip("replicas share a PostgreSQL database: runs in the postgres pass")
	}
	first := startServer(t, opts...)
	rs := []*server{first}
	for range n - 1 {
		rs = append(rs, startServer(t, append(opts, replicaOf(first))...))
	}
	return rs
}

// TestReplicasShareKeys checks that replicas serve one key base: a key
// created on one replica verifies on the others, and works there as a
// bearer.
func TestReplicasShareKeys(t *testing.T) {
	rs := startReplicas(t, 3)
	a, b, c := rs[0], rs[1], rs[2]
	k := a.create(t, a.Admin, map[string]any{"project_id": "p1", "name": "shared", "environment_id": "prod",
		"scopes": []string{"api-keys:read", "orders:write"}})
	for i, s := range []*server{b, c} {
		v := s.verify(t, s.Admin, map[string]any{"key": k.Secret, "scopes": []string{"orders:write"}, "environment_id": "prod"})
		if v["valid"] != true || v["code"] != "VALID" || v["key_id"] != k.ID || v["project_id"] != "p1" || v["name"] != "shared" {
			t.Errorf("replica %c: verify %v", 'B'+i, v)
		}
		got := expect(t, s.do(t, http.MethodGet, "/v1/api-keys/"+k.ID, k.Secret, nil), http.StatusOK).object(t)
		if got["id"] != k.ID || got["status"] != "active" {
			t.Errorf("replica %c: the key reading itself: %v", 'B'+i, got)
		}
	}
	// And the other way: what B creates, A and C know.
	k2 := b.create(t, b.Admin, map[string]any{"project_id": "p1", "name": "from b"})
	for i, s := range []*server{a, c} {
		if v := s.verify(t, s.Admin, map[string]any{"key": k2.Secret}); v["code"] != "VALID" || v["key_id"] != k2.ID {
			t.Errorf("replica %c: verify the key created on B: %v", "AC"[i], v)
		}
	}
}

// TestReplicasRotateOnce brings 50 scheduled rotations due at one instant
// on three replicas whose schedulers all look for them every 100ms: the
// receiver gets exactly 50 deliveries, one per key, each key has one
// replacement, and every replacement verifies on every replica. How the
// claims and deliveries fell over the replicas is logged, not asserted:
// it depends on timing.
func TestReplicasRotateOnce(t *testing.T) {
	const n = 50
	rs := startReplicas(t, 3, fastRotation("--rotation-check-interval", "100ms", "--auto-rotation-grace", "1h"))
	// A receiver that takes a little while, as real ones do, so that one
	// replica's workers cannot drain the outbox before the others look.
	rc := newReceiver(t, func(int, *http.Request) int {
		time.Sleep(20 * time.Millisecond)
		return http.StatusOK
	})
	whsec := map[string]string{}
	var ids []string
	for i := range n {
		s := rs[i%len(rs)]
		k := s.create(t, s.Admin, map[string]any{"project_id": "p1", "name": fmt.Sprint("k", i), "scopes": []string{"orders:read"},
			"rotation_interval_days": 7, "rotation_webhook_url": rc.URL})
		whsec[k.ID] = k.Object["rotation_webhook_secret"].(string)
		ids = append(ids, k.ID)
	}
	due := time.Now().Add(2 * time.Second) // after the last PATCH below: all at once
	for i, id := range ids {
		rs[i%len(rs)].dueNow(t, id, due)
	}

	waitFor(t, 60*time.Second, "50 deliveries", func() bool { return len(rc.deliveries()) >= n })
	waitFor(t, 10*time.Second, "every old key to be replaced", func() bool {
		replaced := 0
		for _, k := range listAll(t, rs[2], "p1") {
			if k["replaced_by_key_id"] != nil {
				replaced++
			}
		}
		return replaced == n
	})
	time.Sleep(time.Second) // ten checks on each replica: room for a duplicate

	// Exactly one delivery per key, each with its own webhook-id.
	got := rc.deliveries()
	if len(got) != n {
		t.Errorf("%d webhook requests, want %d", len(got), n)
	}
	byOld, webhookIDs, newIDs := map[string]delivery{}, map[string]bool{}, map[string]bool{}
	for _, d := range got {
		if _, ok := whsec[d.Data.OldKeyID]; !ok {
			t.Errorf("delivery %s rotates %s, which is not one of the keys made due", d.ID, d.Data.OldKeyID)
			continue
		}
		if webhookIDs[d.ID] || newIDs[d.Data.NewKeyID] {
			t.Errorf("webhook-id %s or replacement %s sent twice", d.ID, d.Data.NewKeyID)
		}
		if prev, ok := byOld[d.Data.OldKeyID]; ok {
			t.Errorf("key %s delivered twice: webhook-ids %s and %s", d.Data.OldKeyID, prev.ID, d.ID)
		}
		byOld[d.Data.OldKeyID], webhookIDs[d.ID], newIDs[d.Data.NewKeyID] = d, true, true
		checkSignature(t, d, whsec[d.Data.OldKeyID])
	}
	if len(byOld) != n || len(webhookIDs) != n {
		t.Errorf("deliveries for %d keys with %d webhook-ids, want %d of each", len(byOld), len(webhookIDs), n)
	}

	// Exactly one replacement per key: the one delivered.
	keys := listAll(t, rs[0], "p1")
	if len(keys) != 2*n {
		t.Errorf("%d keys, want %d: the %d made due and one replacement each", len(keys), 2*n, n)
	}
	for _, k := range keys {
		id := k["id"].(string)
		if d, ok := byOld[id]; ok && (k["replaced_by_key_id"] != d.Data.NewKeyID || k["status"] != "rotating") {
			t.Errorf("old key %s: status %v, replaced by %v, want rotating and %s", id, k["status"], k["replaced_by_key_id"], d.Data.NewKeyID)
		}
		if _, old := whsec[id]; !old && !newIDs[id] {
			t.Errorf("key %s is neither a key made due nor a delivered replacement", id)
		}
	}

	// Every delivered replacement verifies on every replica.
	for _, d := range got {
		for i, s := range rs {
			v := s.verify(t, s.Admin, map[string]any{"key": d.Data.Key, "scopes": []string{"orders:read"}})
			if v["code"] != "VALID" || v["key_id"] != d.Data.NewKeyID {
				t.Errorf("replica %c: replacement %s: %v", 'A'+i, d.Data.NewKeyID, v)
			}
		}
	}

	// The replicas' own accounts agree: each rotation is reported by one
	// replica only, and the rotated counters add up to n.
	claims, rotations := make([]int, len(rs)), make([]int, len(rs))
	rotatedBy := map[string][]int{}
	total := 0
	for i, s := range rs {
		for _, l := range logLines(s) {
			switch l.Msg {
			case "claimed due rotations":
				claims[i] += l.Keys
			case "key rotated on schedule":
				rotations[i]++
				rotatedBy[l.KeyID] = append(rotatedBy[l.KeyID], i)
			}
		}
		total += metricValue(t, s, `apikeyd_rotations_total{kind="scheduled",outcome="rotated"}`)
	}
	for _, id := range ids {
		if len(rotatedBy[id]) != 1 {
			t.Errorf("key %s reported rotated by replicas %v, want exactly one", id, rotatedBy[id])
		}
	}
	if total != n || sum(claims) != n {
		t.Errorf("the replicas claimed %d and rotated %d keys in all, want %d", sum(claims), total, n)
	}
	t.Logf("claims per replica (A, B, C): %v; deliveries per replica: %v", claims, rotations)
}

// listAll lists every key of a project, following the pages.
func listAll(t *testing.T, s *server, project string) []map[string]any {
	t.Helper()
	var out []map[string]any
	next := "/v1/api-keys?project_id=" + project + "&limit=1000"
	for next != "" {
		r := expect(t, s.do(t, http.MethodGet, next, s.Admin, nil), http.StatusOK)
		out = append(out, r.list(t)...)
		next = linkNext(t, r)
	}
	return out
}

// logLine is what the tests read of a server's JSON log lines.
type logLine struct {
	Msg   string `json:"msg"`
	Keys  int    `json:"keys"`
	KeyID string `json:"key_id"`
}

// logLines parses what a server has logged so far.
func logLines(s *server) []logLine {
	var out []logLine
	for _, line := range strings.Split(s.out.String(), "\n") {
		var l logLine
		if json.Unmarshal([]byte(line), &l) == nil {
			out = append(out, l)
		}
	}
	return out
}

// metricValue returns the value of an integer sample of /metrics, 0 when
// the series is absent.
func metricValue(t *testing.T, s *server, series string) int {
	t.Helper()
	body := string(expect(t, s.do(t, http.MethodGet, "/metrics", "", nil), http.StatusOK).Body)
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			var n int
			if _, err := fmt.Sscan(v, &n); err != nil {
				t.Fatalf("metric %s: %q", series, line)
			}
			return n
		}
	}
	return 0
}

func sum(xs []int) int {
	total := 0
	for _, x := range xs {
		total += x
	}
	return total
}
