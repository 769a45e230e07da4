package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/postgres/pgtest"
)

// binary is the apikeyd executable under test, built once by TestMain.
var binary string

// Backends the suite runs on.
const (
	backendSQLite   = "sqlite"
	backendPostgres = "postgres"
)

// backend is the store of the servers that startServer starts. TestMain
// runs every test once per backend: on SQLite always, then on PostgreSQL
// when APIKEYD_TEST_DATABASE_URL is set (required under CI=true).
var backend string

// backends returns the backends to run the suite on, or an error when CI
// requires PostgreSQL and has no database for it.
func backends() ([]string, error) {
	pgURL, required := pgtest.Lookup()
	switch {
	case pgURL != "":
		return []string{backendSQLite, backendPostgres}, nil
	case required:
		return nil, fmt.Errorf("%s is not set, and CI=true: the end-to-end suite must also run on PostgreSQL (see .ci/run)", pgtest.EnvURL)
	}
	fmt.Fprintf(os.Stderr, "e2e: %s is not set: running on SQLite only\n", pgtest.EnvURL)
	return []string{backendSQLite}, nil
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "apikeyd-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "apikeyd")
	args := []string{"build", "-o", binary}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, "github.com/apikeyd/apikeyd/cmd/apikeyd")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build apikeyd:", err)
		os.Exit(1)
	}
	list, err := backends()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	code := 0
	for _, b := range list {
		backend = b
		fmt.Fprintf(os.Stderr, "e2e: === backend %s\n", b)
		if c := m.Run(); c != 0 {
			fmt.Fprintf(os.Stderr, "e2e: FAIL on backend %s\n", b)
			code = c
		}
	}
	if code == 0 {
		code = secrets.scanAll()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// secretBook remembers every plaintext key and secret the servers hand out,
// and every line the servers print, so that the two can be compared.
type secretBook struct {
	mu      sync.Mutex
	secrets map[string]string // secret → what it is
	outputs []*output
}

var secrets = &secretBook{secrets: map[string]string{}}

func (b *secretBook) add(what, secret string) {
	if secret == "" {
		return
	}
	b.mu.Lock()
	b.secrets[secret] = what
	b.mu.Unlock()
}

func (b *secretBook) track(o *output) {
	b.mu.Lock()
	b.outputs = append(b.outputs, o)
	b.mu.Unlock()
}

// scanAll searches every server's output for every secret; it returns a
// non-zero exit code when one is found.
func (b *secretBook) scanAll() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	var lines int
	for _, o := range b.outputs {
		text := o.String()
		lines += strings.Count(text, "\n")
		if found := leaks(text, b.secrets); len(found) > 0 {
			fmt.Fprintf(os.Stderr, "FAIL: server output contains secrets: %s\n", strings.Join(found, ", "))
			return 1
		}
	}
	fmt.Fprintf(os.Stderr, "secret scan: %d secrets searched in %d lines of server output from %d runs: none found\n",
		len(b.secrets), lines, len(b.outputs))
	return 0
}

// leaks says which of secrets (secret → what it is) appear in text, whole
// or by their distinctive last 24 characters (e.g. truncated or quoted).
func leaks(text string, secrets map[string]string) []string {
	var found []string
	for s, what := range secrets {
		switch {
		case strings.Contains(text, s):
			found = append(found, what)
		case len(s) > 24 && strings.Contains(text, s[len(s)-24:]):
			found = append(found, what+" (in part)")
		}
	}
	return found
}

// output collects what a server process prints.
type output struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Write(p)
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// server is one apikeyd process and the state it keeps between restarts.
type server struct {
	t       *testing.T
	backend string
	dataDir string
	// dbURL is the server's PostgreSQL database, created for it unless
	// it is a replica of another server.
	dbURL     string
	masterKey string
	args      []string
	env       []string
	// logFormat is the server's --log-format: json unless withLogFormat.
	logFormat string

	cmd    *exec.Cmd
	out    *output
	exited chan error
	// done is closed once the process has been waited for, so that the
	// cleanup can tell without reading cmd.ProcessState, which Wait writes.
	done  chan struct{}
	URL   string
	Admin string
}

// option changes how a server is started.
type option func(*server)

// withArgs adds command-line flags.
func withArgs(args ...string) option { return func(s *server) { s.args = append(s.args, args...) } }

// withLogFormat makes the server log in format ("text" or "json").
func withLogFormat(format string) option { return func(s *server) { s.logFormat = format } }

// replicaOf makes the server a replica of another: on PostgreSQL, it
// shares the other's database and secrets.
func replicaOf(other *server) option {
	return func(s *server) {
		if s.backend != backendPostgres {
			s.t.Fatal("replicaOf needs the postgres backend")
		}
		s.dbURL, s.Admin, s.masterKey = other.dbURL, other.Admin, other.masterKey
	}
}

// startServer starts apikeyd on a fresh data directory (on SQLite) or a
// fresh database (on PostgreSQL), as the test-wide backend says, and waits
// until it is ready. It is stopped when the test ends.
func startServer(t *testing.T, opts ...option) *server {
	t.Helper()
	s := &server{t: t, backend: backend, dataDir: filepath.Join(t.TempDir(), "data"), logFormat: "json"}
	// Tests share 127.0.0.1 and some fail authentication on purpose; only
	// the rate-limit test runs with the real default.
	s.args = []string{"--auth-failure-burst", "100000", "--last-used-flush", "200ms"}
	for _, o := range opts {
		o(s)
	}
	if s.backend == backendPostgres {
		// PostgreSQL mode generates no secrets: every replica must be
		// given the same ones.
		if s.dbURL == "" {
			s.dbURL = pgtest.Database(t) // dropped after the server is killed
			s.Admin = "e2e-admin-" + randomHex(t, 16)
			s.masterKey = base64.StdEncoding.EncodeToString(randomBytes(t, 32))
		}
		s.env = append([]string{"APIKEYD_DATABASE_URL=" + s.dbURL, "APIKEYD_ADMIN_TOKEN=" + s.Admin, "APIKEYD_MASTER_KEY=" + s.masterKey}, s.env...)
		secrets.add("admin token", s.Admin)
		secrets.add("master key", s.masterKey)
	}
	t.Logf("starting apikeyd on %s", s.backend)
	s.start()
	t.Cleanup(func() {
		if s.done == nil {
			return
		}
		select {
		case <-s.done:
		default:
			s.stop(syscall.SIGKILL)
		}
	})
	if s.backend == backendSQLite {
		tok, err := os.ReadFile(filepath.Join(s.dataDir, "admin.token"))
		if err != nil {
			t.Fatalf("read admin token: %v", err)
		}
		s.Admin = strings.TrimSpace(string(tok))
		secrets.add("admin token", s.Admin)
		mk, err := os.ReadFile(filepath.Join(s.dataDir, "master.key"))
		if err != nil {
			t.Fatalf("read master key: %v", err)
		}
		s.masterKey = strings.TrimSpace(string(mk))
		secrets.add("master key", s.masterKey)
	}
	return s
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func randomHex(t *testing.T, n int) string { return hex.EncodeToString(randomBytes(t, n)) }

// serverEnv is the environment of a server: the test's, without apikeyd
// settings that the developer's shell may hold (the server must see only
// what the harness gives it), plus extra.
func serverEnv(extra []string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "APIKEYD_") && !strings.HasPrefix(kv, "APIKEYD_TEST_") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

func (s *server) start() {
	s.t.Helper()
	args := append([]string{"serve", "--addr", "127.0.0.1:0", "--data-dir", s.dataDir, "--log-format", s.logFormat, "--log-level", "debug"}, s.args...)
	s.cmd = exec.Command(binary, args...)
	s.cmd.Env = serverEnv(s.env)
	s.out = &output{}
	secrets.track(s.out)
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		s.t.Fatal(err)
	}
	s.cmd.Stderr = s.cmd.Stdout
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("start apikeyd: %v", err)
	}
	s.exited = make(chan error, 1)
	done := make(chan struct{})
	s.done = done
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			s.out.Write([]byte(line + "\n"))
			if a, ok := listeningAddr(line); ok {
				addr <- a
			}
		}
		err := s.cmd.Wait()
		close(done)
		s.exited <- err
	}()
	select {
	case a := <-addr:
		s.URL = "http://" + a
	case err := <-s.exited:
		s.t.Fatalf("apikeyd exited before listening: %v\n%s", err, s.out)
	case <-time.After(60 * time.Second):
		s.t.Fatalf("apikeyd did not listen within 60s\n%s", s.out)
	}
	s.waitReady()
}

// listeningAddr returns the address of the server's "listening" line, in
// JSON or in text format.
func listeningAddr(line string) (string, bool) {
	var rec struct{ Msg, Addr string }
	if json.Unmarshal([]byte(line), &rec) == nil {
		return rec.Addr, rec.Msg == "listening"
	}
	if m := listeningText.FindStringSubmatch(line); m != nil {
		return m[1], true
	}
	return "", false
}

var listeningText = regexp.MustCompile(`\bmsg=listening addr=(\S+)`)

func (s *server) waitReady() {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(s.URL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.t.Fatalf("apikeyd not ready within 30s\n%s", s.out)
}

// stop sends sig and waits for the process to exit; it returns the exit
// error (nil for exit code 0).
func (s *server) stop(sig syscall.Signal) error {
	s.t.Helper()
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.t.Fatalf("signal: %v", err)
	}
	select {
	case err := <-s.exited:
		return err
	case <-time.After(60 * time.Second):
		s.cmd.Process.Kill()
		s.t.Fatalf("apikeyd did not exit within 60s of %v", sig)
		return nil
	}
}

// restart stops the server with sig and starts it again on the same data.
func (s *server) restart(sig syscall.Signal) {
	s.t.Helper()
	err := s.stop(sig)
	if sig == syscall.SIGTERM && err != nil {
		s.t.Fatalf("apikeyd did not exit cleanly on SIGTERM: %v\n%s", err, s.out)
	}
	s.start()
}

// response is what a request got back.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r *response) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
}

// object decodes a JSON object body.
func (r *response) object(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	r.json(t, &m)
	return m
}

// list decodes a JSON array of objects.
func (r *response) list(t *testing.T) []map[string]any {
	t.Helper()
	var l []map[string]any
	r.json(t, &l)
	return l
}

var httpClient = &http.Client{Timeout: 30 * time.Second}

// do sends a request with an optional bearer token and body: a string or
// []byte is sent as is, anything else as JSON.
func (s *server) do(t *testing.T, method, path, token string, body any) *response {
	t.Helper()
	r, err := s.try(method, path, token, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

func (s *server) try(method, path, token string, body any) (*response, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, s.URL+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return &response{Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

// expect fails the test unless the response has the given status.
func expect(t *testing.T, r *response, status int) *response {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d: %s", r.Status, status, r.Body)
	}
	return r
}

// key is an issued key as a test holds it.
type key struct {
	ID     string
	Secret string
	Object map[string]any
}

// create issues a key through the API and records its secrets.
func (s *server) create(t *testing.T, token string, body map[string]any) key {
	t.Helper()
	r := expect(t, s.do(t, http.MethodPost, "/v1/api-keys", token, body), http.StatusCreated)
	obj := r.object(t)
	k := key{ID: obj["id"].(string), Secret: obj["key"].(string), Object: obj}
	secrets.add("API key", k.Secret)
	if ws, ok := obj["rotation_webhook_secret"].(string); ok {
		secrets.add("webhook secret", ws)
	}
	return k
}

// verify asks the server about a presented key.
func (s *server) verify(t *testing.T, token string, body map[string]any) map[string]any {
	t.Helper()
	return expect(t, s.do(t, http.MethodPost, "/v1/api-keys/verify", token, body), http.StatusOK).object(t)
}

// problem checks that a response is an RFC 9457 problem with the status.
func problem(t *testing.T, r *response, status int) map[string]any {
	t.Helper()
	expect(t, r, status)
	if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type %q, want application/problem+json: %s", ct, r.Body)
	}
	p := r.object(t)
	for _, f := range []string{"type", "title", "status", "detail"} {
		if _, ok := p[f]; !ok {
			t.Fatalf("problem lacks %q: %s", f, r.Body)
		}
	}
	if int(p["status"].(float64)) != status {
		t.Fatalf("problem status %v, want %d", p["status"], status)
	}
	return p
}

// fieldsOf returns the field names of a problem's errors.
func fieldsOf(p map[string]any) []string {
	var out []string
	errs, _ := p["errors"].([]any)
	for _, e := range errs {
		if m, ok := e.(map[string]any); ok {
			f, _ := m["field"].(string)
			out = append(out, f)
		}
	}
	return out
}

func readAll(t *testing.T, resp *http.Response) []byte {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// typo returns key with its last character changed, so that its checksum
// fails. (Replacing it with a fixed character would leave the key intact
// whenever it already ended with that character, one time in 62.)
func typo(key string) string {
	last := byte('x')
	if key[len(key)-1] == last {
		last = 'y'
	}
	return key[:len(key)-1] + string(last)
}
