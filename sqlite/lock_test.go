//go:build unix

package sqlite_test

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/apikeyd/apikeyd/sqlite"
)

// lock locks dir or fails the test.
func lock(t *testing.T, dir string) *sqlite.DirLock {
	t.Helper()
	l, err := sqlite.LockDir(dir)
	if err != nil {
		t.Fatalf("LockDir: %v", err)
	}
	return l
}

func TestLockDir(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		dir := t.TempDir()
		l := lock(t, dir)
		defer l.Unlock()
		path := filepath.Join(dir, sqlite.LockFile)
		info, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if perm := info.Mode().Perm(); perm != 0o600 {
			t.Errorf("lock file mode %o, want 600", perm)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(string(b)); got != strconv.Itoa(os.Getpid()) {
			t.Errorf("lock file holds %q, want this process's pid %d", got, os.Getpid())
		}
	})
	// flock locks belong to an open file, so a second LockDir in the same
	// process is refused as another process's would be.
	t.Run("ErrHeld", func(t *testing.T) {
		dir := t.TempDir()
		l := lock(t, dir)
		defer l.Unlock()
		_, err := sqlite.LockDir(dir)
		var le *sqlite.LockedError
		if !errors.As(err, &le) {
			t.Fatalf("second LockDir: %v, want a *LockedError", err)
		}
		if le.Dir != dir || le.PID != os.Getpid() {
			t.Errorf("LockedError{Dir: %q, PID: %d}, want %q and %d", le.Dir, le.PID, dir, os.Getpid())
		}
		for _, want := range []string{dir, "pid " + strconv.Itoa(os.Getpid()), "single apikeyd process", "PostgreSQL", "APIKEYD_DATABASE_URL"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("message %q does not say %q", err, want)
			}
		}
	})
	t.Run("OKAfterUnlock", func(t *testing.T) {
		dir := t.TempDir()
		if err := lock(t, dir).Unlock(); err != nil {
			t.Fatalf("Unlock: %v", err)
		}
		lock(t, dir).Unlock()
	})
	t.Run("OKNilUnlock", func(t *testing.T) {
		var l *sqlite.DirLock
		if err := l.Unlock(); err != nil {
			t.Errorf("Unlock on nil: %v", err)
		}
	})
	t.Run("ErrNoDir", func(t *testing.T) {
		_, err := sqlite.LockDir(filepath.Join(t.TempDir(), "absent"))
		var le *sqlite.LockedError
		if err == nil || errors.As(err, &le) {
			t.Errorf("LockDir on a missing directory: %v, want an error other than LockedError", err)
		}
	})
}
