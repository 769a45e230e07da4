package server

import (
	"bytes"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDatabaseWait: PostgreSQL that does not answer at start is retried
// with backoff for APIKEYD_DATABASE_WAIT, then the start fails saying so.
func TestDatabaseWait(t *testing.T) {
	// A port nothing listens on: taken, then let go.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	cfg := load(t, map[string]string{
		"APIKEYD_ADDR":          "127.0.0.1:0",
		"APIKEYD_DATABASE_URL":  "postgres://postgres@" + dead + "/x?sslmode=disable&connect_timeout=1",
		"APIKEYD_ADMIN_TOKEN":   "an-admin-token-for-tests",
		"APIKEYD_MASTER_KEY":    "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
		"APIKEYD_DATABASE_WAIT": "1s",
	})
	var logs bytes.Buffer
	_, err = New(t.Context(), cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	if err == nil {
		t.Fatal("New with an unreachable PostgreSQL: no error")
	}
	for _, want := range []string{"APIKEYD_DATABASE_WAIT=1s", "attempts"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if n := strings.Count(logs.String(), "PostgreSQL does not answer yet; retrying"); n < 1 {
		t.Errorf("%d retries logged, want at least one:\n%s", n, logs.String())
	}
}

// TestDataDirWithoutDatabase: a data directory that has secrets but lost
// its database is refused, saying how to proceed, and no empty database
// is created beside the secrets.
func TestDataDirWithoutDatabase(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	cfg := load(t, map[string]string{"APIKEYD_ADDR": "127.0.0.1:0", "APIKEYD_DATA_DIR": dataDir})
	log := slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil))
	s, err := New(t.Context(), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"apikeyd.db", "apikeyd.db-wal", "apikeyd.db-shm"} {
		os.Remove(filepath.Join(dataDir, name))
	}
	_, err = New(t.Context(), cfg, log)
	if err == nil {
		t.Fatal("New on a data directory without its database: no error")
	}
	for _, want := range []string{dataDir, "APIKEYD_DATA_DIR", "no database apikeyd.db", "Restore apikeyd.db", "move [admin.token master.key]"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if _, err := os.Stat(filepath.Join(dataDir, "apikeyd.db")); !os.IsNotExist(err) {
		t.Errorf("an empty database was created: %v", err)
	}
}

// TestDataDirPermission: a data directory the server may not use is
// reported with the setting that names it and the user the server runs
// as. (Root may use any directory, so the error is made, not provoked.)
func TestDataDirPermission(t *testing.T) {
	cfg := load(t, map[string]string{"APIKEYD_DATA_DIR": "/srv/apikeyd"})
	err := dataDirError(cfg, fmt.Errorf("lock data directory: %w", &fs.PathError{Op: "open", Path: "/srv/apikeyd/.lock", Err: fs.ErrPermission}))
	for _, want := range []string{"/srv/apikeyd", "APIKEYD_DATA_DIR", fmt.Sprintf("uid %d", os.Geteuid()), "permission denied", "chown"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}
