package keycache

import "unsafe"

// offheap hands out memory outside the Go heap, carved from large blocks
// and never freed. Its caller serialises calls.
type offheap struct {
	cur []byte
}

const (
	blockSize = 4 << 20
	// bigAlloc and more bytes get a mapping of their own.
	bigAlloc = blockSize / 4
)

// alloc returns n zeroed bytes aligned to 8.
func (o *offheap) alloc(n int) []byte {
	n = (n + 7) &^ 7
	if n >= bigAlloc {
		return sysAlloc(n)[:n:n]
	}
	if len(o.cur) < n {
		o.cur = sysAlloc(blockSize)
	}
	b := o.cur[:n:n]
	o.cur = o.cur[n:]
	return b
}

// strRef locates a string in an arena: chunk number and offset packed into
// pos, and the length. The zero strRef is the empty string.
type strRef struct {
	pos uint32 // chunk<<chunkBits | offset
	n   uint32
}

const (
	chunkBits = 20
	chunkSize = 1 << chunkBits // bytes in a regular chunk
	maxChunks = 1 << (32 - chunkBits)
)

// arena is an append-only store of strings outside the Go heap. Writers
// serialise add; readers call str without a lock, on refs that reached them
// through a happens-before edge (the shard lock) after the add.
type arena struct {
	chunks [maxChunks][]byte
	n      int // chunks in use; chunks[n-1] is the one being filled
	off    int // bytes used in chunks[n-1]
}

// add copies s into the arena.
func (a *arena) add(mem *offheap, s string) strRef {
	if len(s) == 0 {
		return strRef{}
	}
	if len(s) > chunkSize/4 {
		// Long strings (never seen in practice: names are at most 255
		// characters) get a chunk of their own.
		c := a.grow(mem, len(s))
		copy(a.chunks[c], s)
		a.off = len(a.chunks[c]) // full: the next string starts a chunk
		return strRef{pos: uint32(c) << chunkBits, n: uint32(len(s))}
	}
	if a.n == 0 || a.off+len(s) > len(a.chunks[a.n-1]) {
		a.grow(mem, chunkSize)
		a.off = 0
	}
	c := a.n - 1
	copy(a.chunks[c][a.off:], s)
	r := strRef{pos: uint32(c)<<chunkBits | uint32(a.off), n: uint32(len(s))}
	a.off += len(s)
	return r
}

// grow adds a chunk of size bytes and returns its number.
func (a *arena) grow(mem *offheap, size int) int {
	if a.n == maxChunks {
		panic("keycache: string arena full")
	}
	a.chunks[a.n] = mem.alloc(size)
	a.n++
	return a.n - 1
}

// str returns the string r refers to, without copying it.
func (a *arena) str(r strRef) string {
	if r.n == 0 {
		return ""
	}
	c := a.chunks[r.pos>>chunkBits]
	return unsafe.String(&c[r.pos&(chunkSize-1)], int(r.n))
}
