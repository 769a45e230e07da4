//go:build !unix

package sqlite

// LockDir takes no lock on this platform: flock is Unix's, and apikeyd
// targets Linux. Running one process per data directory is then up to the
// operator. It returns a DirLock whose Unlock does nothing.
func LockDir(dir string) (*DirLock, error) {
	return &DirLock{}, nil
}
