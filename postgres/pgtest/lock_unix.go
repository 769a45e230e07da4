//go:build unix

package pgtest

import (
	"os"
	"sync"
	"syscall"
	"testing"
	"time"
)

// held is this process's flock on lockPath: one shared lock for all its
// tests that use the server, counted, or one exclusive lock.
var held struct {
	sync.Mutex
	f         *os.File
	shared    int  // tests holding the shared lock
	exclusive bool // a test holds the exclusive lock
}

// lock takes the shared or exclusive lock on the server until t ends.
// While this process holds the exclusive lock nobody else uses the server,
// so the test holding it needs no shared lock for what it creates.
func lock(t testing.TB, excl bool) {
	t.Helper()
	held.Lock()
	defer held.Unlock()
	switch {
	case held.exclusive && excl:
		t.Fatal("pgtest: two tests of one process want the server to themselves")
	case held.exclusive:
		return
	case excl && held.shared > 0:
		t.Fatal("pgtest: Exclusive while PostgreSQL tests of this process run; do not make that test parallel")
	case !excl && held.shared > 0:
		held.shared++
	default:
		f, err := acquire(t, excl)
		if err != nil {
			t.Fatalf("pgtest: lock %s: %v", lockPath(), err)
		}
		held.f = f
		if excl {
			held.exclusive = true
		} else {
			held.shared = 1
		}
	}
	t.Cleanup(func() {
		held.Lock()
		defer held.Unlock()
		if excl {
			held.exclusive = false
		} else if held.shared--; held.shared > 0 {
			return
		}
		held.f.Close() // releases the flock
		held.f = nil
	})
}

// acquire opens the lock file and waits for its flock. Waiting for a
// flock holds held's mutex, so no other test of this process races ahead.
func acquire(t testing.TB, excl bool) (*os.File, error) {
	f, err := os.OpenFile(lockPath(), os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		return nil, err
	}
	how := syscall.LOCK_SH
	if excl {
		how = syscall.LOCK_EX
	}
	if err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB); err == nil {
		return f, nil
	}
	start := time.Now()
	t.Logf("pgtest: waiting for the PostgreSQL tests of other processes (%s)", lockPath())
	for {
		err := syscall.Flock(int(f.Fd()), how)
		if err == nil {
			t.Logf("pgtest: waited %v", time.Since(start).Round(time.Millisecond))
			return f, nil
		}
		if err != syscall.EINTR {
			f.Close()
			return nil, err
		}
	}
}
