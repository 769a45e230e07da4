package keycache

import (
	"strings"
	"testing"
)

func TestArena(t *testing.T) {
	var mem offheap
	var a arena
	want := map[strRef]string{}
	add := func(s string) {
		r := a.add(&mem, s)
		want[r] = s
	}
	add("")
	for i := range 5000 {
		add(strings.Repeat("x", i%300) + "!")
	}
	add(strings.Repeat("long", chunkSize/8)) // a chunk of its own
	add("after the long one")
	add(strings.Repeat("y", chunkSize)) // a full chunk's worth
	add("last")
	for r, s := range want {
		if got := a.str(r); got != s {
			t.Fatalf("str(%v) = %.20q… (%d bytes), want %.20q… (%d bytes)", r, got, len(got), s, len(s))
		}
	}
}
