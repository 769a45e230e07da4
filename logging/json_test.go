package logging

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"math"
	"net/netip"
	"testing"
	"time"
)

// TestJSONHandlerMatchesSlog checks that the JSON handler writes, byte for
// byte, what slog's own JSONHandler writes, on the hand-written path and on
// every way off it.
func TestJSONHandlerMatchesSlog(t *testing.T) {
	at := time.Date(2026, 11, 22, 9, 59, 20, 502271975, time.UTC)
	cases := []struct {
		name  string
		fast  bool // whether the record must take the hand-written path
		time  time.Time
		level slog.Level
		msg   string
		attrs []slog.Attr
	}{
		{"RequestLine", true, at, slog.LevelInfo, "request", []slog.Attr{
			slog.String("request_id", "296c7ad64eb71e7c911b956db946c05d"), slog.String("method", "POST"),
			slog.String("route", "/v1/api-keys/verify"), slog.Int("status", 200), slog.Duration("duration", 260329*time.Nanosecond),
			slog.Int64("bytes", 107), slog.String("client", "127.0.0.1"), slog.String("project", "acme"), slog.String("actor", "key_01"),
		}},
		{"NoAttrs", true, at, slog.LevelWarn, "not ready", nil},
		{"AllPlainKinds", true, at.In(time.FixedZone("X", 5*3600+1800)), slog.LevelError + 2, "m", []slog.Attr{
			slog.Uint64("u", math.MaxUint64), slog.Int64("i", math.MinInt64), slog.Bool("b", false), slog.Duration("d", -time.Second), slog.String("empty", ""),
		}},
		{"WholeSecond", true, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), slog.LevelDebug, "", nil},
		{"EscapedMessage", false, at, slog.LevelInfo, "a \"quoted\" <b>", nil},
		{"NonASCIIValue", false, at, slog.LevelInfo, "m", []slog.Attr{slog.String("s", "é\u2028")}},
		{"ControlInValue", false, at, slog.LevelInfo, "m", []slog.Attr{slog.String("s", "a\nb\x01")}},
		{"EscapedKey", false, at, slog.LevelInfo, "m", []slog.Attr{slog.Int("a&b", 1)}},
		{"Error", false, at, slog.LevelError, "failed", []slog.Attr{slog.Any("err", errors.New("boom"))}},
		{"Group", false, at, slog.LevelInfo, "m", []slog.Attr{slog.Group("g", slog.Int("a", 1)), slog.String("s", "x")}},
		{"Float", false, at, slog.LevelInfo, "m", []slog.Attr{slog.Float64("f", 1e21)}},
		{"Time", false, at, slog.LevelInfo, "m", []slog.Attr{slog.Time("t", at)}},
		{"EmptyAttr", false, at, slog.LevelInfo, "m", []slog.Attr{{}, slog.Int("a", 1)}},
		{"ZeroTime", false, time.Time{}, slog.LevelInfo, "m", nil},
		{"YearOutOfRange", false, time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), slog.LevelInfo, "m", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := slog.NewRecord(tc.time, tc.level, tc.msg, 0)
			r.AddAttrs(tc.attrs...)
			var want, got bytes.Buffer
			opts := &slog.HandlerOptions{Level: slog.LevelDebug}
			if err := slog.NewJSONHandler(&want, opts).Handle(context.Background(), r); err != nil {
				t.Fatal(err)
			}
			if err := newJSONHandler(&got, opts).Handle(context.Background(), r); err != nil {
				t.Fatal(err)
			}
			if got.String() != want.String() {
				t.Errorf("got  %s\nwant %s", got.String(), want.String())
			}
			if _, fast := appendPlainRecord(nil, &r); fast != tc.fast {
				t.Errorf("hand-written path taken: %v, want %v", fast, tc.fast)
			}
		})
	}
}

// TestLogRequestMatchesSlog checks that a request line written directly
// is, byte for byte, the line slog's JSONHandler writes of its record.
func TestLogRequestMatchesSlog(t *testing.T) {
	at := time.Date(2026, 11, 22, 9, 59, 20, 502271975, time.UTC)
	full := Request{
		Time: at, Level: slog.LevelInfo, ID: "296c7ad64eb71e7c911b956db946c05d", Method: "POST",
		Route: "/v1/api-keys/{keyID}", Status: 200, Duration: 260329, Bytes: 107,
		Client: netip.MustParseAddr("127.0.0.1"), Project: "acme", Actor: "key_01", KeyID: "key_02",
	}
	cases := []struct {
		name string
		fast bool
		edit func(q *Request)
	}{
		{"Full", true, func(*Request) {}},
		{"Minimal", true, func(q *Request) { q.Client, q.Project, q.Actor, q.KeyID = netip.Addr{}, "", "", "" }},
		{"ServerError", true, func(q *Request) { q.Level, q.Status = slog.LevelError, 503 }},
		{"IPv6", true, func(q *Request) { q.Client = netip.MustParseAddr("2001:db8::7") }},
		{"Zone", false, func(q *Request) { q.Client = netip.MustParseAddr(`fe80::1%a"b`) }},
		{"EscapedProject", false, func(q *Request) { q.Project = "a<b" }},
		{"ZeroTime", false, func(q *Request) { q.Time = time.Time{} }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q := full
			tc.edit(&q)
			var want, got bytes.Buffer
			LogRequest(context.Background(), slog.NewJSONHandler(&want, nil), &q)
			LogRequest(context.Background(), newJSONHandler(&got, nil), &q)
			if got.String() != want.String() {
				t.Errorf("got  %s\nwant %s", got.String(), want.String())
			}
			if _, fast := appendRequest(nil, &q); fast != tc.fast {
				t.Errorf("direct path taken: %v, want %v", fast, tc.fast)
			}
		})
	}
	t.Run("BelowLevel", func(t *testing.T) {
		var out bytes.Buffer
		LogRequest(context.Background(), newJSONHandler(&out, &slog.HandlerOptions{Level: slog.LevelWarn}), &full)
		if out.Len() != 0 {
			t.Errorf("an INFO request line was written at level WARN: %s", out.String())
		}
	})
}

func TestJSONHandlerDerived(t *testing.T) {
	var want, got bytes.Buffer
	at := time.Date(2026, 11, 22, 9, 59, 20, 5, time.UTC)
	for _, w := range []struct {
		h   slog.Handler
		buf *bytes.Buffer
	}{{slog.NewJSONHandler(&want, nil), &want}, {newJSONHandler(&got, nil), &got}} {
		l := slog.New(w.h).With("component", "x").WithGroup("g")
		r := slog.NewRecord(at, slog.LevelInfo, "m", 0)
		r.AddAttrs(slog.Int("a", 1))
		if err := l.Handler().Handle(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		if l.Enabled(context.Background(), slog.LevelDebug) {
			t.Error("debug enabled at the default level")
		}
	}
	if got.String() != want.String() {
		t.Errorf("got  %s\nwant %s", got.String(), want.String())
	}
}

// FuzzJSONHandler compares the handler with slog's on arbitrary text.
func FuzzJSONHandler(f *testing.F) {
	f.Add("request", "route", "/v1/api-keys/verify", int64(200))
	f.Add("a\"b", "k<", "\u2028\xff", int64(-1))
	f.Fuzz(func(t *testing.T, msg, key, val string, n int64) {
		r := slog.NewRecord(time.Unix(0, n).UTC(), slog.Level(n%13), msg, 0)
		r.AddAttrs(slog.String(key, val), slog.Int64("n", n), slog.Duration("d", time.Duration(n)))
		var want, got bytes.Buffer
		opts := &slog.HandlerOptions{Level: slog.LevelDebug - 8}
		errWant := slog.NewJSONHandler(&want, opts).Handle(context.Background(), r)
		errGot := newJSONHandler(&got, opts).Handle(context.Background(), r)
		if got.String() != want.String() || (errGot == nil) != (errWant == nil) {
			t.Errorf("got  %s (%v)\nwant %s (%v)", got.String(), errGot, want.String(), errWant)
		}
	})
}

// BenchmarkJSONHandler is a request log line through slog's JSONHandler
// and through ours.
func BenchmarkJSONHandler(b *testing.B) {
	at := time.Now()
	attrs := []slog.Attr{
		slog.String("request_id", "296c7ad64eb71e7c911b956db946c05d"), slog.String("method", "POST"),
		slog.String("route", "/v1/api-keys/verify"), slog.Int("status", 200), slog.Duration("duration", 260329*time.Nanosecond),
		slog.Int64("bytes", 107), slog.String("client", "127.0.0.1"), slog.String("project", "acme"), slog.String("actor", "key_01"),
	}
	for _, h := range []struct {
		name string
		h    slog.Handler
	}{{"Slog", slog.NewJSONHandler(discard{}, nil)}, {"Ours", newJSONHandler(discard{}, nil)}} {
		b.Run(h.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r := slog.NewRecord(at, slog.LevelInfo, "request", 0)
				r.AddAttrs(attrs...)
				_ = h.h.Handle(context.Background(), r)
			}
		})
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
