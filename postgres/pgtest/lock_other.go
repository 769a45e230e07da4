//go:build !unix

package pgtest

import "testing"

// lock does nothing where flock is missing: PostgreSQL tests that stop the
// server must then not run beside others.
func lock(t testing.TB, excl bool) {}
