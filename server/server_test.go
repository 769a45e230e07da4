package server

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/apikeyd/apikeyd/config"
	"github.com/apikeyd/apikeyd/postgres"
	"github.com/apikeyd/apikeyd/postgres/pgtest"
	"github.com/apikeyd/apikeyd/seal"
	"github.com/apikeyd/apikeyd/sqlite"
)

// load builds a Config as `apikeyd serve` would from the environment env.
func load(t *testing.T, env map[string]string) config.Config {
	t.Helper()
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	config.RegisterFlags(fs)
	cfg, err := config.Load(fs, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestPostgres checks that a database URL selects the PostgreSQL store,
// with the secrets from the config and nothing written to the data
// directory.
func TestPostgres(t *testing.T) {
	dbURL := pgtest.Schema(t)
	mk, err := seal.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(t.TempDir(), "data")
	cfg := load(t, map[string]string{
		"APIKEYD_ADDR":         "127.0.0.1:0",
		"APIKEYD_DATA_DIR":     dataDir,
		"APIKEYD_DATABASE_URL": dbURL,
		"APIKEYD_ADMIN_TOKEN":  "an-admin-token-for-tests",
		"APIKEYD_MASTER_KEY":   mk,
	})
	s, err := New(t.Context(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(t.Context())
	if _, ok := s.store.(*postgres.Store); !ok {
		t.Fatalf("store is a %T, want *postgres.Store", s.store)
	}
	// Ready once the verification index has loaded, which Start begins in
	// the background.
	client := &http.Client{Timeout: 10 * time.Second}
	status := 0
	for deadline := time.Now().Add(30 * time.Second); status != http.StatusOK && time.Now().Before(deadline); {
		resp, err := client.Get("http://" + s.Addr() + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if status = resp.StatusCode; status != http.StatusOK {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if status != http.StatusOK {
		t.Errorf("/readyz: %d", status)
	}
	if _, err := os.Stat(dataDir); !os.IsNotExist(err) {
		t.Errorf("PostgreSQL mode touched the data directory: %v", err)
	}
}

// TestSQLiteOneProcess checks that a server holds its SQLite data
// directory from New to Shutdown: another one on the same directory fails
// to start, naming the directory and PostgreSQL for replicas, and starts
// once the first has shut down. A New that fails lets the directory go.
func TestSQLiteOneProcess(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	cfg := load(t, map[string]string{"APIKEYD_ADDR": "127.0.0.1:0", "APIKEYD_DATA_DIR": dataDir})
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	bad := cfg
	bad.MasterKey = "not base64"
	if _, err := New(t.Context(), bad, log); err == nil {
		t.Fatal("New with a bad master key: no error")
	}
	first, err := New(t.Context(), cfg, log)
	if err != nil {
		t.Fatalf("New after a failed New: %v", err)
	}
	if err := first.Start(t.Context()); err != nil {
		t.Fatal(err)
	}

	_, err = New(t.Context(), cfg, log)
	var le *sqlite.LockedError
	if !errors.As(err, &le) {
		t.Fatalf("second New on %s: %v, want a *sqlite.LockedError", dataDir, err)
	}
	for _, want := range []string{dataDir, "single apikeyd process", "APIKEYD_DATABASE_URL"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}

	if err := first.Shutdown(t.Context()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	second, err := New(t.Context(), cfg, log)
	if err != nil {
		t.Fatalf("New after Shutdown: %v", err)
	}
	if err := second.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := second.Shutdown(t.Context()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}
