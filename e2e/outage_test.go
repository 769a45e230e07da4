package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/postgres/pgtest"
)

// resumeWithin is how soon after PostgreSQL is back every request must
// succeed again.
const resumeWithin = 5 * time.Second

// outageStaleness is the --max-staleness of the outage test's replicas,
// and staleSlack what the test allows on top for timers and scheduling
// on a busy machine.
const (
	outageStaleness = time.Second
	staleSlack      = 500 * time.Millisecond
)

// outcome is one request of the load, and what came of it.
type outcome struct {
	server      int // index of the replica asked
	kind        string
	start, end  time.Time
	status      int
	problem     bool   // a 503 with a well-formed problem+json body
	wrong       string // why the answer is wrong, if it is
	transportOK bool   // the replica answered at all
}

// load drives two replicas with creates, verifications, bearer-key reads
// and readiness checks until stopped, and records every outcome.
type load struct {
	t        *testing.T
	servers  []*server
	known    key // a key that is valid throughout
	reader   key // a key used as a bearer token
	stop     atomic.Bool
	wg       sync.WaitGroup
	mu       sync.Mutex
	outcomes []outcome
	acked    map[string]string // key ID → plaintext, creates answered 201
}

// run starts a worker that sends req to one replica, pausing between
// requests, and judges each answer other than a 503.
func (l *load) run(server int, kind string, pause time.Duration, req func(s *server) (*response, error), judge func(r *response) string) {
	l.wg.Go(func() {
		s := l.servers[server]
		for !l.stop.Load() {
			o := outcome{server: server, kind: kind, start: time.Now()}
			r, err := req(s)
			o.end = time.Now()
			if err == nil {
				o.transportOK, o.status = true, r.Status
				switch r.Status {
				case http.StatusServiceUnavailable:
					o.problem = isProblem(r, http.StatusServiceUnavailable)
					if !o.problem {
						o.wrong = fmt.Sprintf("503 without a problem+json body: %s %s", r.Header.Get("Content-Type"), r.Body)
					}
				default:
					o.wrong = judge(r)
				}
			} else {
				o.wrong = "no answer: " + err.Error()
			}
			l.mu.Lock()
			l.outcomes = append(l.outcomes, o)
			l.mu.Unlock()
			time.Sleep(pause)
		}
	})
}

func isProblem(r *response, status int) bool {
	var p struct {
		Type   string
		Title  string
		Status int
		Detail string
	}
	return r.Header.Get("Content-Type") == "application/problem+json" &&
		json.Unmarshal(r.Body, &p) == nil && p.Status == status && p.Type != "" && p.Detail != ""
}

// start starts the workers on every replica.
func (l *load) start() {
	for i := range l.servers {
		l.run(i, "create", 10*time.Millisecond, func(s *server) (*response, error) {
			return s.try(http.MethodPost, "/v1/api-keys", s.Admin, map[string]any{"project_id": "outage", "name": "load"})
		}, func(r *response) string {
			var obj map[string]any
			if r.Status != http.StatusCreated || json.Unmarshal(r.Body, &obj) != nil {
				return fmt.Sprintf("create: %d %s", r.Status, r.Body)
			}
			id, _ := obj["id"].(string)
			secret, _ := obj["key"].(string)
			secrets.add("API key", secret)
			l.mu.Lock()
			l.acked[id] = secret
			l.mu.Unlock()
			return ""
		})
		l.run(i, "verify", 5*time.Millisecond, func(s *server) (*response, error) {
			return s.try(http.MethodPost, "/v1/api-keys/verify", s.Admin, map[string]any{"key": l.known.Secret})
		}, func(r *response) string {
			var v map[string]any
			if r.Status != http.StatusOK || json.Unmarshal(r.Body, &v) != nil || v["valid"] != true || v["code"] != "VALID" {
				return fmt.Sprintf("verify of a valid key: %d %s", r.Status, r.Body)
			}
			return ""
		})
		l.run(i, "bearer", 5*time.Millisecond, func(s *server) (*response, error) {
			return s.try(http.MethodGet, "/v1/api-keys/"+l.known.ID, l.reader.Secret, nil)
		}, func(r *response) string {
			var v map[string]any
			if r.Status != http.StatusOK || json.Unmarshal(r.Body, &v) != nil || v["id"] != l.known.ID {
				return fmt.Sprintf("read with a valid bearer key: %d %s", r.Status, r.Body)
			}
			return ""
		})
		l.run(i, "ready", 50*time.Millisecond, func(s *server) (*response, error) {
			return s.try(http.MethodGet, "/readyz", "", nil)
		}, func(r *response) string {
			if r.Status != http.StatusOK {
				return fmt.Sprintf("readyz: %d %s", r.Status, r.Body)
			}
			return ""
		})
	}
}

// between returns the outcomes of requests sent in [from, to).
func (l *load) between(from, to time.Time) []outcome {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []outcome
	for _, o := range l.outcomes {
		if !o.start.Before(from) && o.start.Before(to) {
			out = append(out, o)
		}
	}
	return out
}

// waitOK waits until every replica has answered a create with 201 since
// from, and returns how long after from the last of them did.
func (l *load) waitOK(from time.Time, limit time.Duration) time.Duration {
	l.t.Helper()
	deadline := time.Now().Add(limit + 10*time.Second)
	for time.Now().Before(deadline) {
		var worst time.Duration
		ok := 0
		for i := range l.servers {
			for _, o := range l.between(from, time.Now()) {
				if o.server == i && o.kind == "create" && o.status == http.StatusCreated {
					worst = max(worst, o.end.Sub(from))
					ok++
					break
				}
			}
		}
		if ok == len(l.servers) {
			return worst
		}
		time.Sleep(20 * time.Millisecond)
	}
	l.t.Fatalf("the replicas did not resume within %v of PostgreSQL's return", limit+10*time.Second)
	return 0
}

// TestPostgresOutage stops PostgreSQL under load on two replicas, twice:
// a restart (pg_ctlcluster restart), then a stop of a few seconds and a
// start. No replica may crash; while the database is away every request
// that needs it gets a 503 problem+json, never a wrong answer; within
// resumeWithin of its return everything works again; and every key whose
// creation was acknowledged is there afterwards. Verifications, answered
// from memory, may say VALID for the staleness bound after the replicas
// lost the database (they cannot know of a revocation, but none could be
// made either), and get 503 after it.
//
// It stops the shared server, so it waits until no other PostgreSQL test
// runs (in any process of the go test run) and keeps them waiting.
func TestPostgresOutage(t *testing.T) {
	if backend != backendPostgres {
		t.Skip("PostgreSQL only: runs in the postgres pass")
	}
	cluster := pgtest.LocalCluster(t)
	staleness := withArgs("--max-staleness", outageStaleness.String())
	a := startServer(t, staleness)
	b := startServer(t, staleness, replicaOf(a))
	l := &load{t: t, servers: []*server{a, b}, acked: map[string]string{}}
	l.known = a.create(t, a.Admin, map[string]any{"project_id": "outage", "name": "known"})
	l.reader = b.create(t, b.Admin, map[string]any{"project_id": "outage", "name": "reader", "scopes": []string{"api-keys:read"}})
	l.start()
	defer func() {
		l.stop.Store(true)
		l.wg.Wait()
	}()
	time.Sleep(time.Second)

	// A restart: as quick as an outage gets.
	before := time.Now()
	cluster.Restart(t)
	back := time.Now()
	resumed := l.waitOK(back, resumeWithin)
	t.Logf("restart: PostgreSQL was away for %v, the replicas resumed %v after its return", back.Sub(before).Round(time.Millisecond), resumed.Round(time.Millisecond))

	// A stop long enough to see what the replicas answer meanwhile.
	time.Sleep(time.Until(back.Add(resumeWithin + time.Second)))
	stopping := time.Now()
	cluster.Stop(t)
	down := time.Now()
	time.Sleep(3 * time.Second)
	up := time.Now()
	cluster.Start(t)
	back2 := time.Now()
	resumed2 := l.waitOK(back2, resumeWithin)
	t.Logf("stop/start: PostgreSQL was down for %v, the replicas resumed %v after its return", back2.Sub(down).Round(time.Millisecond), resumed2.Round(time.Millisecond))
	time.Sleep(time.Until(back2.Add(resumeWithin + time.Second)))
	l.stop.Store(true)
	l.wg.Wait()
	end := time.Now()

	// No wrong answer, ever; no replica stopped answering.
	all := l.between(time.Time{}, end)
	wrong := 0
	for _, o := range all {
		if o.wrong != "" {
			if wrong++; wrong <= 10 {
				t.Errorf("replica %d, %s at +%v: %s", o.server, o.kind, o.start.Sub(before).Round(time.Millisecond), o.wrong)
			}
		}
	}
	if wrong > 10 {
		t.Errorf("... %d wrong answers in all", wrong)
	}
	for i, s := range l.servers {
		select {
		case err := <-s.exited:
			t.Errorf("replica %d exited: %v\n%s", i, err, s.out)
		default:
		}
	}

	// While the database was down, every request that needs it got a 503.
	// Verifications are answered from the in-memory index (whether each
	// answer was right is checked above), but only until the staleness
	// bound has passed since the replica last confirmed its index in step:
	// at the latest when its connection died, before the stop returned.
	counts := map[string]int{}
	var lastValid time.Time
	for _, o := range l.between(down, up) {
		counts[fmt.Sprintf("%s %d", o.kind, o.status)]++
		if o.kind == "verify" && o.status == http.StatusOK {
			lastValid = o.start
			if o.start.After(down.Add(outageStaleness + staleSlack)) {
				t.Errorf("replica %d, verify sent %v after PostgreSQL stopped: 200, beyond the staleness bound of %v", o.server, o.start.Sub(down).Round(time.Millisecond), outageStaleness)
			}
			continue
		}
		if o.status != http.StatusServiceUnavailable {
			t.Errorf("replica %d, %s sent %v after PostgreSQL stopped: %d", o.server, o.kind, o.start.Sub(down).Round(time.Millisecond), o.status)
		}
	}
	t.Logf("answers while PostgreSQL was down: %v; the last verify answered from memory was sent %v after the stop returned (the stop took %v)",
		counts, lastValid.Sub(down).Round(time.Millisecond), down.Sub(stopping).Round(time.Millisecond))
	for _, kind := range []string{"create", "verify", "bearer", "ready"} {
		if counts[kind+" 503"] == 0 {
			t.Errorf("no %s request got a 503 while PostgreSQL was down", kind)
		}
	}

	// From resumeWithin after each return on, everything succeeded.
	for _, w := range [][2]time.Time{{back.Add(resumeWithin), stopping}, {back2.Add(resumeWithin), end}} {
		for _, o := range l.between(w[0], w[1]) {
			if o.status == http.StatusServiceUnavailable {
				t.Errorf("replica %d, %s sent %v after PostgreSQL's return: still 503", o.server, o.kind, o.start.Sub(w[0].Add(-resumeWithin)).Round(time.Millisecond))
			}
		}
	}

	// Every acknowledged key is listed and verifies, on both replicas.
	if len(l.acked) < 20 {
		t.Fatalf("only %d creates acknowledged", len(l.acked))
	}
	listed := map[string]bool{}
	next := "/v1/api-keys?project_id=outage&limit=1000"
	for next != "" {
		r := expect(t, b.do(t, http.MethodGet, next, b.Admin, nil), http.StatusOK)
		for _, k := range r.list(t) {
			listed[k["id"].(string)] = true
		}
		next = linkNext(t, r)
	}
	ids := make([]string, 0, len(l.acked))
	for id := range l.acked {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for n, id := range ids {
		if !listed[id] {
			t.Errorf("acknowledged key %s is not listed", id)
		}
		s := l.servers[n%2]
		if v := s.verify(t, s.Admin, map[string]any{"key": l.acked[id]}); v["code"] != "VALID" {
			t.Errorf("acknowledged key %s: %v", id, v)
		}
	}
	t.Logf("%d requests, %d creates acknowledged, all listed and valid", len(all), len(l.acked))
}
