//go:build unix

package pgtest

import (
	"os"
	"sync"
	"syscall"
	"testing"
	"time"
)

// exclusive counts the Exclusive locks this process holds. While it holds
// one, nobody else uses the server, so the test holding it needs no shared
// lock for what it creates (and taking one would wait for itself).
var exclusive struct {
	sync.Mutex
	n int
}

// lock takes a flock on lockPath, shared or exclusive, until t ends.
func lock(t testing.TB, excl bool) {
	t.Helper()
	exclusive.Lock()
	held := exclusive.n > 0
	exclusive.Unlock()
	if held && !excl {
		return
	}
	f, err := os.OpenFile(lockPath(), os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		t.Fatalf("pgtest: open lock file: %v", err)
	}
	how := syscall.LOCK_SH
	if excl {
		how = syscall.LOCK_EX
	}
	if err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB); err != nil {
		start := time.Now()
		t.Logf("pgtest: waiting for other PostgreSQL tests (lock %s)", lockPath())
		if err := flock(f, how); err != nil {
			f.Close()
			t.Fatalf("pgtest: lock %s: %v", lockPath(), err)
		}
		t.Logf("pgtest: waited %v", time.Since(start).Round(time.Millisecond))
	}
	if excl {
		exclusive.Lock()
		exclusive.n++
		exclusive.Unlock()
	}
	t.Cleanup(func() {
		if excl {
			exclusive.Lock()
			exclusive.n--
			exclusive.Unlock()
		}
		f.Close() // releases the flock
	})
}

// flock waits for the lock, retrying when a signal interrupts the wait.
func flock(f *os.File, how int) error {
	for {
		err := syscall.Flock(int(f.Fd()), how)
		if err != syscall.EINTR {
			return err
		}
	}
}
