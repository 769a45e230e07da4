// Package pgtest gives tests their own PostgreSQL schema or database on the
// server named by APIKEYD_TEST_DATABASE_URL, and coordinates the tests that
// share that server across the test processes of one `go test ./...`.
//
// Without APIKEYD_TEST_DATABASE_URL the tests that need PostgreSQL skip,
// except under CI (CI=true), where a missing database fails them: CI must
// never pass by skipping.
//
// Every schema or database a test gets holds a shared lock on the server
// until the test ends; a test that stops the server (Exclusive) waits for
// every other holder, in this process or another, and keeps them out while
// it runs.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvURL names the environment variable holding the URL of the test
// database: a postgres:// URL of a role that may create schemas in that
// database and create databases.
const EnvURL = "APIKEYD_TEST_DATABASE_URL"

// Lookup returns the test database URL, and whether its absence must fail
// the tests (under CI) rather than skip them.
func Lookup() (dbURL string, required bool) {
	ci, _ := strconv.ParseBool(os.Getenv("CI"))
	return os.Getenv(EnvURL), ci
}

// URL returns the test database URL. Without one, it skips the test, or
// fails it under CI.
func URL(t testing.TB) string {
	t.Helper()
	u, required := Lookup()
	switch {
	case u != "":
		if !strings.HasPrefix(u, "postgres://") && !strings.HasPrefix(u, "postgresql://") {
			t.Fatalf("%s must be a postgres:// URL", EnvURL)
		}
		return u
	case required:
		t.Fatalf("%s is not set, and CI=true: PostgreSQL tests must run in CI (see .ci/run)", EnvURL)
	default:
		skipNotice.Do(func() {
			fmt.Fprintf(os.Stderr, "pgtest: PostgreSQL tests of this package skipped: %s is not set "+
				"(set it to a postgres:// URL to run them; CI=true makes its absence a failure)\n", EnvURL)
		})
		t.Skipf("PostgreSQL tests skipped: %s is not set", EnvURL)
	}
	return ""
}

// skipNotice says once per test process that the PostgreSQL tests were
// skipped and why, where each skip alone is visible only with -v.
var skipNotice sync.Once

// Schema creates an empty schema in the test database and returns a URL
// whose connections create and find tables there (search_path). The schema
// and all in it are dropped when the test ends.
func Schema(t testing.TB) string {
	t.Helper()
	base := URL(t)
	Shared(t)
	name := uniqueName("apikeyd_test_")
	admin(t, base, "CREATE SCHEMA "+name)
	t.Cleanup(func() { dropAfter(t, base, "DROP SCHEMA IF EXISTS "+name+" CASCADE") })
	return withParam(t, base, "search_path", name)
}

// Database creates an empty database on the test server and returns its
// URL. It is dropped when the test ends, after the cleanups registered
// later (such as stopping the servers that use it) have run.
func Database(t testing.TB) string {
	t.Helper()
	base := URL(t)
	Shared(t)
	name := uniqueName("apikeyd_test_")
	admin(t, base, "CREATE DATABASE "+name)
	t.Cleanup(func() { dropAfter(t, base, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)") })
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("%s: %v", EnvURL, err)
	}
	u.Path = "/" + name
	return u.String()
}

// Exec runs statements on the test database itself, e.g. to inspect what a
// test left behind.
func Exec(t testing.TB, dbURL, sql string) {
	t.Helper()
	admin(t, dbURL, sql)
}

func uniqueName(prefix string) string {
	b := make([]byte, 6)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// withParam returns u with a query parameter set; pgx sends unknown
// parameters to the server as session settings.
func withParam(t testing.TB, u, key, value string) string {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil {
		t.Fatalf("%s: %v", EnvURL, err)
	}
	q := p.Query()
	q.Set(key, value)
	p.RawQuery = q.Encode()
	return p.String()
}

// admin runs sql on its own short-lived connection to dbURL, failing t
// if it fails.
func admin(t testing.TB, dbURL, sql string) {
	t.Helper()
	if err := run(dbURL, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// run runs sql on its own short-lived connection to dbURL.
func run(dbURL, sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

// dropAfter drops what a test created. The server may be restarting (after
// an outage test), so it tries for a while; a failure is reported, not
// fatal, since the test itself is over.
func dropAfter(t testing.TB, base, sql string) {
	var err error
	for range 20 {
		if err = run(base, sql); err == nil {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Errorf("cleanup %q: %v", sql, err)
}

// Exclusive waits until no other test uses the server (in any process) and
// keeps them waiting until t ends: for tests that stop or restart it. Such
// a test must not run in parallel with PostgreSQL tests of its own
// process; the schemas and databases it creates itself do not wait.
func Exclusive(t testing.TB) {
	t.Helper()
	URL(t)
	lock(t, true)
}

// Shared marks t as using the server until it ends, so that an Exclusive
// test does not stop the server under it. Schema and Database call it.
func Shared(t testing.TB) {
	t.Helper()
	lock(t, false)
}

// lockPath is the file whose flock the tests of all processes share.
func lockPath() string { return fmt.Sprintf("%s/apikeyd-pgtest.lock", os.TempDir()) }
