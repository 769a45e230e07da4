package logging

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"strconv"
	"sync"
	"time"
)

// jsonHandler writes exactly what slog's JSONHandler writes, and does the
// common case itself: apikeyd logs a line per request, and slog's generic
// encoder (reflection-free as it is) costs more than the rest of a
// verification answered from memory. A record whose time is set and whose
// message, keys and values are plain (strings of printable ASCII that need
// no escaping, integers, durations, booleans) is appended by hand into a
// pooled buffer and written in one Write; anything else (groups, errors,
// arbitrary values, text that JSON escapes, a logger derived with With or
// WithGroup) is handed to slog's own JSONHandler on the same writer. Both
// write one whole line per Write, so lines never interleave.
type jsonHandler struct {
	w    io.Writer
	slow *slog.JSONHandler
}

func newJSONHandler(w io.Writer, opts *slog.HandlerOptions) *jsonHandler {
	return &jsonHandler{w: w, slow: slog.NewJSONHandler(w, opts)}
}

func (h *jsonHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.slow.Enabled(ctx, l)
}

func (h *jsonHandler) WithAttrs(as []slog.Attr) slog.Handler { return h.slow.WithAttrs(as) }
func (h *jsonHandler) WithGroup(name string) slog.Handler    { return h.slow.WithGroup(name) }

func (h *jsonHandler) Handle(ctx context.Context, r slog.Record) error {
	bp := lineBufs.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= maxPooledLine {
			lineBufs.Put(bp)
		}
	}()
	b, ok := appendPlainRecord((*bp)[:0], &r)
	*bp = b
	if !ok {
		return h.slow.Handle(ctx, r)
	}
	_, err := h.w.Write(b)
	return err
}

// maxPooledLine bounds the line buffers kept for reuse.
const maxPooledLine = 16 << 10

var lineBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// appendPlainRecord appends r as slog's JSONHandler (with no ReplaceAttr
// and no source) writes it, and reports true, when every part of it is
// plain; otherwise it reports false and what it appended is garbage.
func appendPlainRecord(b []byte, r *slog.Record) ([]byte, bool) {
	if y := r.Time.Year(); r.Time.IsZero() || y < 0 || y >= 10000 || !plain(r.Message) {
		return b, false
	}
	b = append(b, `{"time":"`...)
	b = r.Time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","level":"`...)
	b = append(b, r.Level.String()...)
	b = append(b, `","msg":"`...)
	b = append(b, r.Message...)
	b = append(b, '"')
	ok := true
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "" || !plain(a.Key) {
			ok = false
			return false
		}
		b = append(b, `,"`...)
		b = append(b, a.Key...)
		b = append(b, `":`...)
		switch v := a.Value; v.Kind() {
		case slog.KindString:
			s := v.String()
			if !plain(s) {
				ok = false
				return false
			}
			b = append(b, '"')
			b = append(b, s...)
			b = append(b, '"')
		case slog.KindInt64:
			b = strconv.AppendInt(b, v.Int64(), 10)
		case slog.KindUint64:
			b = strconv.AppendUint(b, v.Uint64(), 10)
		case slog.KindDuration:
			b = strconv.AppendInt(b, int64(v.Duration()), 10)
		case slog.KindBool:
			b = strconv.AppendBool(b, v.Bool())
		default:
			ok = false
			return false
		}
		return true
	})
	return append(b, "}\n"...), ok
}

// plain reports whether s is printable ASCII that JSON (and slog) write as
// it is, with none of the characters encoding/json would escape for HTML
// either.
func plain(s string) bool {
	for i := 0; i < len(s); i++ {
		if !plainByte[s[i]] {
			return false
		}
	}
	return true
}

var plainByte = func() (t [256]bool) {
	for c := 0x20; c <= 0x7e; c++ {
		switch c {
		case '"', '\\', '<', '>', '&':
		default:
			t[c] = true
		}
	}
	return t
}()

// Request is the one line apikeyd logs per HTTP request. A handler made by
// New writes it without going through a slog.Record; any other handler
// gets the same line as a record of these attributes (Record).
type Request struct {
	Time     time.Time
	Level    slog.Level
	ID       string
	Method   string
	Route    string
	Status   int
	Duration time.Duration
	Bytes    int64
	Client   netip.Addr // omitted when invalid
	Project  string     // omitted when empty
	Actor    string     // omitted when empty
	KeyID    string     // omitted when empty
}

// RequestMessage is the message of every request line.
const RequestMessage = "request"

// Record returns the line as a slog record.
func (q *Request) Record() slog.Record {
	r := slog.NewRecord(q.Time, q.Level, RequestMessage, 0)
	var attrs [10]slog.Attr
	as := append(attrs[:0],
		slog.String("request_id", q.ID),
		slog.String("method", q.Method),
		slog.String("route", q.Route),
		slog.Int("status", q.Status),
		slog.Duration("duration", q.Duration),
		slog.Int64("bytes", q.Bytes),
	)
	if q.Client.IsValid() {
		as = append(as, slog.String("client", q.Client.String()))
	}
	for _, a := range [...]struct{ k, v string }{{"project", q.Project}, {"actor", q.Actor}, {"key_id", q.KeyID}} {
		if a.v != "" {
			as = append(as, slog.String(a.k, a.v))
		}
	}
	r.AddAttrs(as...)
	return r
}

// LogRequest writes a request line through h: directly when h is one of
// this package's handlers, as a slog record otherwise.
func LogRequest(ctx context.Context, h slog.Handler, q *Request) {
	if !h.Enabled(ctx, q.Level) {
		return
	}
	if jh, ok := h.(*jsonHandler); ok {
		jh.logRequest(ctx, q)
		return
	}
	_ = h.Handle(ctx, q.Record())
}

// logRequest appends q as Handle would append q.Record(), falling back to
// Handle when some part of it is not plain.
func (h *jsonHandler) logRequest(ctx context.Context, q *Request) {
	bp := lineBufs.Get().(*[]byte)
	defer lineBufs.Put(bp) // a request line is never large
	b, ok := appendRequest((*bp)[:0], q)
	*bp = b
	if !ok {
		_ = h.slow.Handle(ctx, q.Record())
		return
	}
	_, _ = h.w.Write(b)
}

func appendRequest(b []byte, q *Request) ([]byte, bool) {
	if y := q.Time.Year(); q.Time.IsZero() || y < 0 || y >= 10000 ||
		!plain(q.ID) || !plain(q.Method) || !plain(q.Route) || !plain(q.Project) || !plain(q.Actor) || !plain(q.KeyID) ||
		q.Client.Zone() != "" { // a zone, which may come from X-Forwarded-For, may need escaping

		return b, false
	}
	b = append(b, `{"time":"`...)
	b = q.Time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","level":"`...)
	b = append(b, q.Level.String()...)
	b = append(b, `","msg":"`+RequestMessage+`","request_id":"`...)
	b = append(b, q.ID...)
	b = append(b, `","method":"`...)
	b = append(b, q.Method...)
	b = append(b, `","route":"`...)
	b = append(b, q.Route...)
	b = append(b, `","status":`...)
	b = strconv.AppendInt(b, int64(q.Status), 10)
	b = append(b, `,"duration":`...)
	b = strconv.AppendInt(b, int64(q.Duration), 10)
	b = append(b, `,"bytes":`...)
	b = strconv.AppendInt(b, q.Bytes, 10)
	if q.Client.IsValid() {
		b = append(b, `,"client":"`...)
		b = q.Client.AppendTo(b)
		b = append(b, '"')
	}
	for _, a := range [...]struct{ k, v string }{{`,"project":"`, q.Project}, {`,"actor":"`, q.Actor}, {`,"key_id":"`, q.KeyID}} {
		if a.v != "" {
			b = append(b, a.k...)
			b = append(b, a.v...)
			b = append(b, '"')
		}
	}
	return append(b, "}\n"...), true
}
