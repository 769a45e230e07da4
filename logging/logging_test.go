package logging

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for the flusher goroutine.
type syncBuffer struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	writes int
	err    error
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.writes++
	if b.err != nil {
		return 0, b.err
	}
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestWriter(t *testing.T) {
	t.Run("OK/FlushedOnClose", func(t *testing.T) {
		out := &syncBuffer{}
		w := NewWriter(out, time.Hour, 1<<20)
		fmt.Fprintln(w, "one")
		fmt.Fprintln(w, "two")
		if out.String() != "" {
			t.Fatalf("written before a flush: %q", out.String())
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if out.String() != "one\ntwo\n" || out.writes != 1 {
			t.Fatalf("got %q in %d writes, want both lines in one", out.String(), out.writes)
		}
		fmt.Fprintln(w, "after close")
		if !strings.HasSuffix(out.String(), "after close\n") {
			t.Fatalf("write after Close was not passed through: %q", out.String())
		}
		if err := w.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
	})
	t.Run("OK/FlushedOnInterval", func(t *testing.T) {
		out := &syncBuffer{}
		w := NewWriter(out, 10*time.Millisecond, 1<<20)
		defer w.Close()
		fmt.Fprintln(w, "line")
		deadline := time.Now().Add(10 * time.Second)
		for out.String() == "" && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if out.String() != "line\n" {
			t.Fatalf("got %q", out.String())
		}
	})
	t.Run("OK/FlushedWhenFull", func(t *testing.T) {
		out := &syncBuffer{}
		w := NewWriter(out, time.Hour, 16)
		defer w.Close()
		w.Write([]byte("0123456789"))
		if out.String() != "" {
			t.Fatal("flushed before full")
		}
		w.Write([]byte("0123456789"))
		if out.String() != "01234567890123456789" {
			t.Fatalf("got %q", out.String())
		}
	})
	t.Run("OK/OrderUnderConcurrency", func(t *testing.T) {
		out := &syncBuffer{}
		w := NewWriter(out, time.Millisecond, 256)
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() {
				for i := range 500 {
					fmt.Fprintf(w, "g%d %04d\n", g, i)
				}
			})
		}
		wg.Wait()
		w.Close()
		next := map[string]int{}
		lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
		if len(lines) != 8*500 {
			t.Fatalf("%d lines, want %d", len(lines), 8*500)
		}
		for _, l := range lines {
			var g string
			var i int
			if _, err := fmt.Sscanf(l, "%s %d", &g, &i); err != nil {
				t.Fatalf("torn line %q", l)
			}
			if i != next[g] {
				t.Fatalf("%s: line %d after %d", g, i, next[g]-1)
			}
			next[g]++
		}
	})
	t.Run("ErrWrite", func(t *testing.T) {
		out := &syncBuffer{err: errors.New("disk full")}
		w := NewWriter(out, time.Hour, 1<<20)
		if _, err := w.Write([]byte("x\n")); err != nil {
			t.Fatalf("Write: %v (must not fail)", err)
		}
		if err := w.Close(); err == nil || err.Error() != "disk full" {
			t.Fatalf("Close: %v, want disk full", err)
		}
	})
}

func TestNew(t *testing.T) {
	for _, tc := range []struct{ format, level, want string }{
		{"json", "info", `"msg":"hello"`},
		{"text", "info", "msg=hello"},
		{"text", "warn", ""},
		{"json", "bogus", `"level":"INFO"`},
	} {
		var buf bytes.Buffer
		New(&buf, tc.format, tc.level).Info("hello")
		if !strings.Contains(buf.String(), tc.want) || (tc.want == "" && buf.Len() != 0) {
			t.Errorf("%s/%s: %q, want %q", tc.format, tc.level, buf.String(), tc.want)
		}
	}
}
