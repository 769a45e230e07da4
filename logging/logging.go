// Package logging builds apikeyd's structured logger (log/slog, text or
// JSON) and the buffered writer under it.
//
// apikeyd writes one line per HTTP request. A write(2) per line would cost
// more than a whole verification answered from memory, so the serve command
// logs into a Writer that collects lines in memory and writes them out in
// batches: every FlushInterval, whenever MaxPending bytes are waiting, and at
// shutdown. The price is that a crash (SIGKILL, OOM kill, power loss) loses
// the lines of at most the last FlushInterval; a clean shutdown loses
// nothing. Panics in handlers are reported by net/http through the same
// writer and reach it within FlushInterval; runtime crashes write to stderr
// directly and are never delayed.
package logging

import (
	"io"
	"log/slog"
	"sync"
	"time"
)

// New returns a logger writing to w in format "json" or "text" (anything
// else means text) at level ("debug", "info", "warn", "error"; anything
// else means info).
func New(w io.Writer, format, level string) *slog.Logger {
	var lv slog.Level
	if lv.UnmarshalText([]byte(level)) != nil {
		lv = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(newJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// Defaults of NewWriter.
const (
	// FlushInterval is how long a log line may wait in memory.
	FlushInterval = 100 * time.Millisecond
	// MaxPending is how many bytes may wait before a write is forced.
	MaxPending = 64 << 10
)

// Writer buffers what is written to it and writes it to the underlying
// writer in batches, in order. It is safe for concurrent use. Writes never
// fail: an error of the underlying writer is remembered and returned by
// Flush and Close (a logger has nobody to tell anyway).
type Writer struct {
	out      io.Writer
	max      int
	interval time.Duration

	mu      sync.Mutex // guards buf, err and closed
	buf     []byte
	err     error
	closed  bool
	writeMu sync.Mutex // serialises writes to out, so batches stay in order
	spare   []byte     // the buffer not in use, reused to avoid allocation; guarded by writeMu

	stop chan struct{}
	done chan struct{}
}

// NewWriter returns a Writer on out that flushes every interval (and when
// max bytes are pending). Close it to write what is left and stop its
// goroutine.
func NewWriter(out io.Writer, interval time.Duration, max int) *Writer {
	if interval <= 0 {
		interval = FlushInterval
	}
	if max <= 0 {
		max = MaxPending
	}
	w := &Writer{
		out: out, max: max, interval: interval,
		buf:  make([]byte, 0, max),
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	go w.run()
	return w
}

// Write appends p to the buffer. When the buffer is full it writes it out
// first, so a writer that falls behind slows its callers down instead of
// growing without bound. After Close, Write goes straight through.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		w.writeMu.Lock()
		defer w.writeMu.Unlock()
		return w.out.Write(p)
	}
	w.buf = append(w.buf, p...)
	full := len(w.buf) >= w.max
	w.mu.Unlock()
	if full {
		w.Flush()
	}
	return len(p), nil
}

// Flush writes everything buffered so far and returns the first write
// error seen since the last Flush.
func (w *Writer) Flush() error {
	w.writeMu.Lock()
	defer w.writeMu.Unlock()
	w.mu.Lock()
	batch := w.buf
	w.buf = w.spare[:0]
	if w.buf == nil {
		w.buf = make([]byte, 0, w.max)
	}
	w.mu.Unlock()
	if len(batch) > 0 {
		if _, err := w.out.Write(batch); err != nil {
			w.mu.Lock()
			if w.err == nil {
				w.err = err
			}
			w.mu.Unlock()
		}
	}
	if cap(batch) <= 4*w.max { // do not keep a buffer a burst has blown up
		w.spare = batch[:0]
	} else {
		w.spare = nil
	}
	w.mu.Lock()
	err := w.err
	w.err = nil
	w.mu.Unlock()
	return err
}

func (w *Writer) run() {
	defer close(w.done)
	t := time.NewTicker(w.interval)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
			w.Flush()
		}
	}
}

// Close stops the periodic flush and writes what is left. Later writes go
// straight to the underlying writer. Close may be called more than once.
func (w *Writer) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	w.mu.Unlock()
	close(w.stop)
	<-w.done
	return w.Flush()
}
