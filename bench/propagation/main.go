// Command propagation measures how soon a revocation made on one apikeyd
// replica reaches the others, for docs/benchmarks.md (scripts/bench-propagation
// runs it).
//
// It creates a throwaway database on the PostgreSQL server of -database-url,
// starts -replicas apikeyd processes on it (the -binary given), and runs
// -trials revocations: a key is created on replica A and verified on every
// replica (so that each holds it in memory), then revoked on replica B;
// from the moment B's 204 arrives, every other replica is asked to verify
// the key as fast as it answers, until it says REVOKED. The time from the
// 204 to that answer is one observation. It prints p50, p99 and the maximum
// of the observations, and exits 1 when p99 is above -target.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/apikeyd/apikeyd/internal/latency"
)

func main() {
	dbURL := flag.String("database-url", os.Getenv("APIKEYD_TEST_DATABASE_URL"), "postgres:// URL of a role that may create databases")
	binary := flag.String("binary", "apikeyd", "the apikeyd executable")
	replicas := flag.Int("replicas", 3, "replicas to start")
	trials := flag.Int("trials", 30, "revocations per run")
	runs := flag.Int("runs", 1, "runs, each on fresh replicas and a fresh database")
	target := flag.Duration("target", 50*time.Millisecond, "p99 to meet")
	pause := flag.Duration("poll-pause", 0, "pause between two verifications of one replica while waiting for REVOKED (0: none, poll as fast as it answers)")
	flag.Parse()
	if *dbURL == "" || *replicas < 2 || *trials < 1 {
		log.Fatal("need -database-url (or APIKEYD_TEST_DATABASE_URL), -replicas >= 2 and -trials >= 1")
	}
	var all []time.Duration
	for r := 1; r <= *runs; r++ {
		obs, err := run(*dbURL, *binary, *replicas, *trials, *pause)
		if err != nil {
			log.Fatalf("run %d: %v", r, err)
		}
		fmt.Printf("run %d: %d revocations, %d observations: %s\n", r, *trials, len(obs), summary(obs))
		all = append(all, obs...)
	}
	if *runs > 1 {
		fmt.Printf("all runs: %s\n", summary(all))
	}
	if p99 := latency.Percentile(all, 99); p99 > *target {
		fmt.Printf("target p99 <= %v: MISSED\n", *target)
		os.Exit(1)
	}
	fmt.Printf("target p99 <= %v: ok\n", *target)
}

// run starts the replicas on a fresh database, measures, and cleans up.
func run(base, binary string, n, trials int, pause time.Duration) ([]time.Duration, error) {
	ctx := context.Background()
	dbURL, drop, err := createDatabase(ctx, base)
	if err != nil {
		return nil, err
	}
	defer drop()
	admin := "bench-admin-" + randomHex(16)
	master := base64.StdEncoding.EncodeToString(randomBytes(32))
	var rs []*replica
	defer func() {
		for _, r := range rs {
			r.stop()
		}
	}()
	for i := range n {
		r, err := startReplica(binary, dbURL, admin, master)
		if err != nil {
			return nil, fmt.Errorf("replica %d: %w", i, err)
		}
		rs = append(rs, r)
	}
	var obs []time.Duration
	for range trials {
		o, err := trial(rs, pause)
		if err != nil {
			return nil, err
		}
		obs = append(obs, o...)
	}
	return obs, nil
}

// trial creates a key on the first replica, revokes it on the second and
// returns how long each other replica took to answer REVOKED.
func trial(rs []*replica, pause time.Duration) ([]time.Duration, error) {
	a, b := rs[0], rs[1]
	var created struct {
		ID  string `json:"id"`
		Key string `json:"key"`
	}
	if err := a.call(http.MethodPost, "/v1/api-keys", map[string]any{"project_id": "bench", "name": "revoke me"}, http.StatusCreated, &created); err != nil {
		return nil, err
	}
	body := map[string]any{"key": created.Key}
	for _, r := range rs {
		if code, err := r.verify(body); err != nil || code != "VALID" {
			return nil, fmt.Errorf("before the revocation: %s %v", code, err)
		}
	}
	if err := b.call(http.MethodDelete, "/v1/api-keys/"+created.ID, nil, http.StatusNoContent, nil); err != nil {
		return nil, err
	}
	revoked := time.Now()
	observers := append([]*replica{a}, rs[2:]...)
	out := make([]time.Duration, len(observers))
	errs := make([]error, len(observers))
	var wg sync.WaitGroup
	for i, r := range observers {
		wg.Go(func() {
			for time.Since(revoked) < 10*time.Second {
				code, err := r.verify(body)
				if err != nil {
					errs[i] = err
					return
				}
				if code == "REVOKED" {
					out[i] = time.Since(revoked)
					return
				}
				if pause > 0 {
					time.Sleep(pause)
				}
			}
			errs[i] = errors.New("still not REVOKED after 10s")
		})
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// replica is one apikeyd process.
type replica struct {
	cmd    *exec.Cmd
	url    string
	admin  string
	client *http.Client
	exited chan struct{}
}

func startReplica(binary, dbURL, admin, master string) (*replica, error) {
	cmd := exec.Command(binary, "serve", "--addr", "127.0.0.1:0", "--log-format", "json", "--last-used-flush", "1s")
	// Only the settings given here: none from the caller's shell.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "APIKEYD_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "APIKEYD_DATABASE_URL="+dbURL, "APIKEYD_ADMIN_TOKEN="+admin, "APIKEYD_MASTER_KEY="+master)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	r := &replica{cmd: cmd, admin: admin, exited: make(chan struct{}),
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 8}}}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var l struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == "listening" {
				addr <- l.Addr
			}
		}
		cmd.Wait()
		close(r.exited)
	}()
	select {
	case a := <-addr:
		r.url = "http://" + a
	case <-r.exited:
		return nil, errors.New("exited before listening")
	case <-time.After(30 * time.Second):
		r.stop()
		return nil, errors.New("not listening after 30s")
	}
	for start := time.Now(); time.Since(start) < 30*time.Second; time.Sleep(20 * time.Millisecond) {
		if resp, err := r.client.Get(r.url + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return r, nil
			}
		}
	}
	r.stop()
	return nil, errors.New("not ready after 30s")
}

func (r *replica) stop() {
	r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.exited:
	case <-time.After(30 * time.Second):
		r.cmd.Process.Kill()
	}
}

// call sends a JSON request with the admin token and decodes the answer
// into out, failing unless the status is want.
func (r *replica) call(method, path string, body any, want int, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, r.url+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+r.admin)
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// verify returns the verdict code on a presented key.
func (r *replica) verify(body map[string]any) (string, error) {
	var v struct{ Code string }
	err := r.call(http.MethodPost, "/v1/api-keys/verify", body, http.StatusOK, &v)
	return v.Code, err
}

// createDatabase creates a database on the server of base and returns its
// URL and a function that drops it.
func createDatabase(ctx context.Context, base string) (string, func(), error) {
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		return "", nil, fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(ctx)
	name := "apikeyd_bench_" + randomHex(6)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", nil, err
	}
	u, err := url.Parse(base)
	if err != nil {
		return "", nil, err
	}
	u.Path = "/" + name
	drop := func() {
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			log.Printf("drop %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			log.Printf("drop %s: %v", name, err)
		}
	}
	return u.String(), drop, nil
}

func summary(ds []time.Duration) string {
	r := func(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/1e6) }
	return fmt.Sprintf("p50 %s, p99 %s, max %s", r(latency.Percentile(ds, 50)), r(latency.Percentile(ds, 99)), r(slices.Max(ds)))
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func randomHex(n int) string { return hex.EncodeToString(randomBytes(n)) }
