package server

import (
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestBindBeforeSecrets: a first start whose address is taken fails in
// New, naming the address, and leaves no secret in the data directory.
func TestBindBeforeSecrets(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	dataDir := filepath.Join(t.TempDir(), "data")
	cfg := load(t, map[string]string{"APIKEYD_ADDR": taken.Addr().String(), "APIKEYD_DATA_DIR": dataDir})
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := New(t.Context(), cfg, log)
	if err == nil {
		err = s.Start(t.Context())
		s.Shutdown(t.Context())
	}
	if err == nil || !strings.Contains(err.Error(), taken.Addr().String()) {
		t.Fatalf("start on a taken address: %v, want an error naming %s", err, taken.Addr())
	}
	for _, name := range []string{"admin.token", "master.key"} {
		if _, err := os.Stat(filepath.Join(dataDir, name)); !os.IsNotExist(err) {
			t.Errorf("%s exists after a start that could not listen (%v)", name, err)
		}
	}
	// A New that is never started lets its address go at Shutdown.
	cfg.Addr = "127.0.0.1:0"
	s, err = New(t.Context(), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	addr := s.Addr()
	if err := s.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("address of a server shut down before Start still taken: %v", err)
	}
	ln.Close()
}

// fullDiskChild is set in the environment of the copy of the test binary
// TestSecretWriteAllOrNothing runs, naming the secret file to write.
const fullDiskChild = "APIKEYD_TEST_FULL_DISK_SECRET"

// TestSecretWriteAllOrNothing: a secret whose write fails (here: the file
// size limit, as a full disk would) leaves neither the file nor a
// temporary one, so the next start generates it instead of failing on an
// empty file. The write runs in a child process, because the limit holds
// for the whole process (the test framework's own log among it).
func TestSecretWriteAllOrNothing(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	gen := func() (string, error) { return "admin_secret", nil }
	if path := os.Getenv(fullDiskChild); path != "" {
		signal.Ignore(syscall.SIGXFSZ) // so that the write fails with EFBIG instead
		var lim syscall.Rlimit
		if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
			t.Fatal(err)
		}
		lim.Cur = 0
		if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
			t.Fatal(err)
		}
		if _, err := fileSecret(path, "admin token", log, gen); err == nil {
			os.Exit(3) // the write should have failed
		}
		os.Exit(0)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "admin.token")
	cmd := exec.Command(os.Args[0], "-test.run=^TestSecretWriteAllOrNothing$")
	cmd.Env = append(os.Environ(), fullDiskChild+"="+path)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the write under a file size limit of 0: %v\n%s", err, out)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Fatalf("a failed write left %v", entries)
	}
	v, err := fileSecret(path, "admin token", log, gen)
	if err != nil || v != "admin_secret" {
		t.Fatalf("the next start: %q, %v", v, err)
	}
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("secret file: %v, %v; want mode 0600", info, err)
	}
	if b, _ := os.ReadFile(path); string(b) != "admin_secret\n" {
		t.Fatalf("secret file holds %q", b)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("data directory holds %v, want the secret only", entries)
	}
}

// TestBrokenSecretFiles: an empty secret file (left by an older version's
// interrupted first start) or a truncated master key is reported with its
// path and what to do, and nothing is generated over it.
func TestBrokenSecretFiles(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, tc := range []struct {
		name, file, content string
		want                []string
	}{
		{"ErrEmptyToken", "admin.token", "", []string{"admin.token", "is empty", "interrupted", "delete the file"}},
		{"ErrBlankMasterKey", "master.key", "\n", []string{"master.key", "is empty", "interrupted", "restore it from a backup"}},
		{"ErrTruncatedMasterKey", "master.key", "c2VjcmV0\n", []string{"master.key", "restore it from a backup"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dataDir := t.TempDir()
			if tc.file == "master.key" {
				if err := os.WriteFile(filepath.Join(dataDir, "admin.token"), []byte("admin_x\n"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			path := filepath.Join(dataDir, tc.file)
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg := load(t, map[string]string{"APIKEYD_DATA_DIR": dataDir})
			_, err := loadSecrets(cfg, log)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if b, _ := os.ReadFile(path); string(b) != tc.content {
				t.Errorf("%s was rewritten: %q", tc.file, b)
			}
		})
	}
}
