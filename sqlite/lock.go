package sqlite

import (
	"fmt"
	"os"
)

// LockFile is the name of the lock file that LockDir holds in a data
// directory. It stays there between runs: removing it while a process
// holds it would let the next one lock a new file beside the held one.
const LockFile = "apikeyd.lock"

// DirLock is one process's exclusive hold on a data directory. Each
// apikeyd process keeps its own in-memory key index and, on SQLite, learns
// only of the changes it makes itself, so a second process on the same
// file would go on verifying keys the first revoked. The lock makes the
// second one refuse to start instead.
type DirLock struct {
	f *os.File // nil where no lock is taken
}

// Unlock releases the lock. The kernel releases it too when the process
// ends, however it ends. Unlock on a nil DirLock does nothing, so that
// callers on PostgreSQL, which take none, need not tell the cases apart.
func (l *DirLock) Unlock() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

// LockedError is LockDir's error when another process holds the data
// directory.
type LockedError struct {
	// Dir is the data directory.
	Dir string
	// PID is the process that holds it, as it wrote into the lock file;
	// 0 when unknown.
	PID int
}

func (e *LockedError) Error() string {
	by := "another apikeyd process"
	if e.PID > 0 {
		by = fmt.Sprintf("another apikeyd process (pid %d)", e.PID)
	}
	return fmt.Sprintf("data directory %s is in use by %s: SQLite serves a single apikeyd process; "+
		"to run replicas, use PostgreSQL (APIKEYD_DATABASE_URL)", e.Dir, by)
}
