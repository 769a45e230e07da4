package keycache

import "syscall"

// sysAlloc returns n bytes of zeroed memory outside the Go heap. It is never
// freed. Large regions ask for transparent huge pages: lookups wander over
// the whole index, and fewer TLB misses make them markedly faster.
func sysAlloc(n int) []byte {
	b, err := syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		panic("keycache: out of memory: " + err.Error())
	}
	if n >= 2<<20 {
		_ = syscall.Madvise(b, syscall.MADV_HUGEPAGE) // only a hint
	}
	return b
}
