package sqlite_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/apikeyd/apikeyd/apikey"
	"github.com/apikeyd/apikeyd/sqlite"
)

// insert writes key i in its own transaction.
func insert(t *testing.T, s *sqlite.Store, i int) error {
	t.Helper()
	k := testKey(i)
	return s.Update(t.Context(), func(tx apikey.Tx) error { return tx.InsertKey(t.Context(), k) })
}

// TestUnwritableFile (SPEC §12): a database whose files were deleted,
// replaced, truncated or overwritten while the store runs is not ready and
// refuses every write with EUNAVAILABLE (503), rather than acknowledging
// writes that the next start will not find.
func TestUnwritableFile(t *testing.T) {
	for _, tc := range []struct {
		name  string
		spoil func(t *testing.T, path string)
	}{
		{"ErrDeleted", func(t *testing.T, path string) {
			for _, p := range []string{path, path + "-wal", path + "-shm"} {
				if err := os.Remove(p); err != nil {
					t.Fatal(err)
				}
			}
		}},
		{"ErrDatabaseDeleted", func(t *testing.T, path string) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		}},
		{"ErrWALDeleted", func(t *testing.T, path string) {
			if err := os.Remove(path + "-wal"); err != nil {
				t.Fatal(err)
			}
		}},
		{"ErrReplaced", func(t *testing.T, path string) {
			other := filepath.Join(filepath.Dir(path), "other.db")
			s, err := sqlite.Open(t.Context(), other)
			if err != nil {
				t.Fatal(err)
			}
			s.Close()
			if err := os.Rename(other, path); err != nil {
				t.Fatal(err)
			}
		}},
		{"ErrTruncated", func(t *testing.T, path string) {
			if err := os.Truncate(path, 0); err != nil {
				t.Fatal(err)
			}
		}},
		{"ErrOverwritten", func(t *testing.T, path string) {
			f, err := os.OpenFile(path, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.Write(bytes.Repeat([]byte("garbage!"), 1024)); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "apikeyd.db")
			s, err := sqlite.Open(t.Context(), path)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if err := insert(t, s, 1); err != nil {
				t.Fatal(err)
			}
			if err := s.Ping(t.Context()); err != nil {
				t.Fatalf("Ping of a healthy store: %v", err)
			}
			tc.spoil(t, path)
			if code := apikey.ErrorCode(s.Ping(t.Context())); code != apikey.EUNAVAILABLE {
				t.Errorf("Ping: code %q, want %s", code, apikey.EUNAVAILABLE)
			}
			if err := insert(t, s, 2); apikey.ErrorCode(err) != apikey.EUNAVAILABLE {
				t.Errorf("write: %v, want %s", err, apikey.EUNAVAILABLE)
			}
		})
	}
}

// TestDriverErrorsUnavailable: a database that is not one (corrupt)
// answers EUNAVAILABLE on reads too, never an internal error.
func TestDriverErrorsUnavailable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "apikeyd.db")
	s, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		if err := insert(t, s, i); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	// Keep the header and the schema page, ruin every page after them.
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := 4096; i < len(b); i++ {
		b[i] = 0xa5
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err = sqlite.Open(t.Context(), path)
	if err != nil {
		if code := apikey.ErrorCode(err); code != apikey.EUNAVAILABLE {
			t.Fatalf("Open of a corrupt database: %v, want %s", err, apikey.EUNAVAILABLE)
		}
		return
	}
	defer s.Close()
	_, err = s.KeyByHash(t.Context(), testKey(7).Hash)
	if code := apikey.ErrorCode(err); code != apikey.EUNAVAILABLE {
		t.Errorf("read of a corrupt database: %v, want %s", err, apikey.EUNAVAILABLE)
	}
	if code := apikey.ErrorCode(s.Ping(t.Context())); code != apikey.EUNAVAILABLE {
		t.Errorf("Ping of a corrupt database: code %q, want %s", code, apikey.EUNAVAILABLE)
	}
}

// readOnlyChild is set in the environment of the process TestReadOnlyFile
// starts as an unprivileged user, naming the database to check.
const readOnlyChild = "APIKEYD_TEST_READONLY_DB"

// TestReadOnlyFile: a database file the process may not write (mode 0444)
// opens, but is not ready and refuses writes with EUNAVAILABLE. Root
// writes any file whatever its mode, so as root the check runs in a copy
// of this test binary started as the user nobody (65534); as any other
// user it runs here.
func TestReadOnlyFile(t *testing.T) {
	if path := os.Getenv(readOnlyChild); path != "" {
		checkReadOnly(t, path)
		return
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "apikeyd.db")
	s, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	if err := insert(t, s, 1); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := os.Chmod(path, 0o444); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() != 0 {
		checkReadOnly(t, path)
		return
	}
	const nobody = 65534
	// The directory stays writable for nobody (SQLite creates the -wal and
	// -shm files there); the database file is nobody's, read-only.
	for _, p := range []string{dir, path} {
		if err := os.Chown(p, nobody, nobody); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Dir(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "sqlite.test")
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^TestReadOnlyFile$", "-test.v")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), readOnlyChild+"="+path, "HOME="+dir, "TMPDIR="+dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Skipf("cannot start a process as nobody: %v", err)
		}
		t.Fatalf("as nobody: %v\n%s", err, out)
	}
	if !bytes.Contains(out, []byte("--- PASS: TestReadOnlyFile")) {
		t.Fatalf("as nobody, the test did not run:\n%s", out)
	}
}

func checkReadOnly(t *testing.T, path string) {
	if f, err := os.OpenFile(path, os.O_WRONLY, 0); err == nil {
		f.Close()
		t.Fatalf("%s is writable by uid %d: the test proves nothing", path, os.Geteuid())
	}
	s, err := sqlite.Open(t.Context(), path)
	if err != nil {
		// Refusing to open is as good as refusing to write.
		if code := apikey.ErrorCode(err); code != apikey.EUNAVAILABLE {
			t.Fatalf("Open of a read-only database: %v, want %s", err, apikey.EUNAVAILABLE)
		}
		return
	}
	defer s.Close()
	if _, err := s.KeyByHash(t.Context(), testKey(1).Hash); err != nil {
		t.Errorf("read of a read-only database: %v", err)
	}
	if code := apikey.ErrorCode(s.Ping(t.Context())); code != apikey.EUNAVAILABLE {
		t.Errorf("Ping of a read-only database: code %q, want %s", code, apikey.EUNAVAILABLE)
	}
	err = insert(t, s, 2)
	if code := apikey.ErrorCode(err); code != apikey.EUNAVAILABLE {
		t.Errorf("write to a read-only database: %v, want %s", err, apikey.EUNAVAILABLE)
	}
	fmt.Println("read-only database checked as uid", os.Geteuid())
}
