package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
	"unsafe"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"

	"github.com/apikeyd/apikeyd/apikey"
	"github.com/apikeyd/apikeyd/observe"
	"github.com/apikeyd/apikeyd/service"
	"github.com/apikeyd/apikeyd/usage"
)

// Verification is the call a platform makes on every request of its own
// API. POST /v1/api-keys/verify is a huma operation like every other
// (routed, authenticated, documented and validated by huma from
// verifyInput and verifyOutput, answered by verifyKey), with one addition
// measured to pay for itself (docs/benchmarks.md, "Verify's own stack"):
// verifyFast, a middleware of this operation only, reads the small body
// into pooled memory, decodes the common shape without allocating and
// appends the answer by hand. Any body off that shape it hands on,
// unchanged, to huma and verifyKey, so every problem is huma's.

type verifyInput struct {
	Body struct {
		Key           string   `json:"key" doc:"The presented API key."`
		Scopes        []string `json:"scopes,omitempty" nullable:"true" maxItems:"64" doc:"Scopes the key must all hold."`
		EnvironmentID string   `json:"environment_id,omitempty" maxLength:"128" doc:"Environment the key must be bound to."`
		ClientIP      string   `json:"client_ip,omitempty" maxLength:"64" doc:"Address the key was presented from; a key with an ip_allowlist is IP_NOT_ALLOWED without it."`
		Cost          *int64   `json:"cost,omitempty" minimum:"0" maximum:"1000000" doc:"Credits a VALID verify spends; default 1, 0 checks without spending."`
	}
}

type verifyOutput struct {
	Body VerifyObject
}

// verifyKey answers a verification, noting in the request's record what
// the log line and the metrics report of it.
func (a *API) verifyKey(ctx context.Context, in *verifyInput) (*verifyOutput, error) {
	rec := observe.From(ctx)
	vin := service.VerifyInput{Key: in.Body.Key, Scopes: in.Body.Scopes, EnvironmentID: in.Body.EnvironmentID, ClientIP: in.Body.ClientIP, At: rec.Start}
	if in.Body.Cost != nil {
		vin.Cost = apikey.Some(*in.Body.Cost)
	}
	v, err := a.svc.Verify(ctx, principal(ctx), vin)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	if v.Known {
		rec.NoteProject(v.Record.ProjectID)
	}
	rec.NoteVerdict(v.Code)
	return &verifyOutput{Body: verifyObject(v)}, nil
}

// verifyFast serves the verifications whose body parseFast takes, after
// authenticate has run; it hands every other body on to huma's own
// decoding and verifyKey, as it arrived.
func (a *API) verifyFast(ctx huma.Context, next func(huma.Context)) {
	r, w := humago.Unwrap(ctx)
	vb := verifyBufs.Get().(*verifyBuf)
	defer vb.release()
	body, err := vb.readBody(r.Body)
	if err != nil {
		a.writeProblem(w, r, err)
		return
	}
	in, ok := vb.parseFast(body)
	if !ok {
		// next runs before vb is released, so body stays valid.
		r.Body = io.NopCloser(bytes.NewReader(body))
		next(ctx)
		return
	}
	rec := observe.From(r.Context())
	in.At = rec.Start
	v, err := a.svc.Verify(r.Context(), principal(ctx.Context()), in)
	if err != nil {
		a.writeProblem(w, r, err)
		return
	}
	if v.Known {
		rec.NoteProject(v.Record.ProjectID)
	}
	rec.NoteVerdict(v.Code)
	vb.out = appendVerdict(vb.out[:0], &v)
	w.Header()["Content-Type"] = jsonContentType
	_, _ = w.Write(vb.out)
}

var jsonContentType = []string{"application/json"}

// verifyBuf is the memory one verification works in, pooled: the body as
// read, the scopes decoded from it (strings pointing into the body) and
// the answer.
type verifyBuf struct {
	body   []byte
	out    []byte
	scopes [maxFastScopes]string
}

const (
	// maxFastScopes scopes at most are decoded by parseFast.
	maxFastScopes = 16
	// maxClientIPLen is the longest client_ip verify takes (the schema's
	// maxLength).
	maxClientIPLen = 64
	// maxPooledBuf bounds the buffers kept for reuse, so that one large
	// body does not stay in memory.
	maxPooledBuf = 64 << 10
)

var verifyBufs = sync.Pool{New: func() any {
	return &verifyBuf{body: make([]byte, 0, 1024), out: make([]byte, 0, 512)}
}}

func (vb *verifyBuf) release() {
	clear(vb.scopes[:])
	if cap(vb.body) <= maxPooledBuf && cap(vb.out) <= maxPooledBuf {
		verifyBufs.Put(vb)
	}
}

// readBody reads the whole body into vb.body: a body of exactly
// MaxBodyBytes is read, one byte more answers 413. The buffer grows by
// doubling up to MaxBodyBytes and never past it; once it is full, one more
// byte is read into a probe to tell a body of exactly the limit from a
// larger one.
func (vb *verifyBuf) readBody(body io.Reader) ([]byte, error) {
	buf := vb.body[:0]
	defer func() { vb.body = buf[:0] }()
	for {
		var n int
		var err error
		if len(buf) < MaxBodyBytes {
			if len(buf) == cap(buf) {
				grown := make([]byte, len(buf), min(max(2*cap(buf), 1024), MaxBodyBytes))
				copy(grown, buf)
				buf = grown
			}
			n, err = body.Read(buf[len(buf):min(cap(buf), MaxBodyBytes)])
			buf = buf[:len(buf)+n]
		} else {
			var probe [1]byte
			if n, err = body.Read(probe[:]); n > 0 {
				return nil, errBodyTooLarge()
			}
		}
		switch {
		case err == io.EOF:
			return buf, nil
		case err != nil:
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return nil, newHumaError(http.StatusRequestTimeout, "request body read timeout")
			}
			return nil, newHumaError(http.StatusInternalServerError, "cannot read request body", err)
		}
	}
}

// parseFast decodes the common shape of a verify body without allocating:
// an object of "key", and optionally "scopes" (at most maxFastScopes
// strings), "environment_id" (at most 128 characters) and "client_ip" (at
// most maxClientIPLen), each at most
// once, whose strings are printable ASCII without escapes. The strings
// point into body. Anything else — other whitespace than JSON's, other
// names, nulls, escapes, non-ASCII, duplicates, a missing key — it reports
// false for, and huma decides.
func (vb *verifyBuf) parseFast(body []byte) (service.VerifyInput, bool) {
	var in service.VerifyInput
	d := fastDecoder{b: body}
	if !d.next('{') {
		return in, false
	}
	var key, scopes, env, client, cost bool
	for {
		name, ok := d.str()
		if !ok || !d.next(':') {
			return in, false
		}
		switch name {
		case "key":
			if key {
				return in, false
			}
			key = true
			if in.Key, ok = d.str(); !ok {
				return in, false
			}
		case "environment_id":
			if env {
				return in, false
			}
			env = true
			if in.EnvironmentID, ok = d.str(); !ok || len(in.EnvironmentID) > apikey.MaxIdentifierLen {
				return in, false
			}
		case "client_ip":
			if client {
				return in, false
			}
			client = true
			if in.ClientIP, ok = d.str(); !ok || len(in.ClientIP) > maxClientIPLen {
				return in, false
			}
		case "cost":
			if cost {
				return in, false
			}
			cost = true
			n, ok := d.count()
			if !ok {
				return in, false
			}
			in.Cost = apikey.Some(n)
		case "scopes":
			if scopes {
				return in, false
			}
			scopes = true
			if !d.next('[') {
				return in, false
			}
			n := 0
			if !d.next(']') {
				for {
					if n == maxFastScopes {
						return in, false
					}
					if vb.scopes[n], ok = d.str(); !ok {
						return in, false
					}
					n++
					if d.next(',') {
						continue
					}
					if !d.next(']') {
						return in, false
					}
					break
				}
			}
			in.Scopes = vb.scopes[:n:n]
		default:
			return in, false
		}
		if d.next(',') {
			continue
		}
		if !d.next('}') {
			return in, false
		}
		break
	}
	d.space()
	return in, key && d.i == len(d.b)
}

// fastDecoder reads the tokens parseFast accepts.
type fastDecoder struct {
	b []byte
	i int
}

func (d *fastDecoder) space() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// next consumes c, after whitespace, if it comes next.
func (d *fastDecoder) next(c byte) bool {
	d.space()
	if d.i < len(d.b) && d.b[d.i] == c {
		d.i++
		return true
	}
	return false
}

// count reads a whole number of at most 7 digits without a sign, a
// fraction or an exponent, and without leading zeros: the costs a verify
// takes (0–1000000) as a client writes them.
func (d *fastDecoder) count() (int64, bool) {
	d.space()
	var n int64
	start := d.i
	for d.i < len(d.b) && d.b[d.i] >= '0' && d.b[d.i] <= '9' {
		n = n*10 + int64(d.b[d.i]-'0')
		d.i++
	}
	digits := d.i - start
	if digits == 0 || digits > 7 || (digits > 1 && d.b[start] == '0') || n > apikey.MaxCost {
		return 0, false
	}
	if d.i < len(d.b) {
		switch d.b[d.i] {
		case '.', 'e', 'E':
			return 0, false
		}
	}
	return n, true
}

// str reads a string of printable ASCII without escapes, returned without
// copying.
func (d *fastDecoder) str() (string, bool) {
	if !d.next('"') {
		return "", false
	}
	rest := d.b[d.i:]
	n := bytes.IndexByte(rest, '"')
	if n < 0 {
		return "", false
	}
	s := rest[:n]
	for _, c := range s {
		if !plainASCII[c] {
			return "", false
		}
	}
	d.i += n + 1
	return unsafe.String(unsafe.SliceData(s), len(s)), true
}

// plainASCII tells the bytes a JSON string may hold as they are and mean
// themselves: printable ASCII but the backslash (and the quote, which ends
// it).
var plainASCII = func() (t [256]bool) {
	for c := 0x20; c <= 0x7e; c++ {
		t[c] = c != '\\' && c != '"'
	}
	return t
}()

// appendVerdict appends the JSON of v exactly as json.Marshal of its
// VerifyObject, followed by a newline as a json.Encoder writes it.
func appendVerdict(b []byte, v *service.Verdict) []byte {
	b = append(b, `{"valid":`...)
	b = strconv.AppendBool(b, v.Valid())
	b = append(b, `,"code":`...)
	b = appendJSONString(b, string(v.Code))
	if r := &v.Record; v.Known {
		b = append(b, `,"key_id":`...)
		b = appendJSONString(b, r.ID)
		b = append(b, `,"project_id":`...)
		b = appendJSONString(b, r.ProjectID)
		b = append(b, `,"environment_id":`...)
		if r.EnvironmentID == "" {
			b = append(b, "null"...)
		} else {
			b = appendJSONString(b, r.EnvironmentID)
		}
		b = append(b, `,"name":`...)
		b = appendJSONString(b, r.Name)
		b = append(b, `,"scopes":[`...)
		for i, s := range r.Scopes {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, s)
		}
		b = append(b, `],"expires_at":`...)
		b = appendJSONTime(b, r.ExpiresAt)
		b = append(b, `,"grace_expires_at":`...)
		if r.Replaced {
			b = appendJSONTime(b, r.GraceExpiresAt)
		} else {
			b = append(b, "null"...)
		}
		b = append(b, `,"owner_id":`...)
		if r.OwnerID == "" {
			b = append(b, "null"...)
		} else {
			b = appendJSONString(b, r.OwnerID)
		}
		b = append(b, `,"meta":`...)
		b = appendMeta(b, r.Meta)
		if v.Metered {
			b = appendUsage(b, v)
		}
	}
	return append(b, "}\n"...)
}

// appendUsage appends the fields of verifyUsage(v) as json.Marshal writes
// them.
func appendUsage(b []byte, v *service.Verdict) []byte {
	b = append(b, `,"ratelimits":`...)
	b = appendSubject(b, v.Record.RateLimits, &v.Usage.Subjects[0])
	if o := v.Owner; o != nil {
		b = append(b, `,"owner":{"id":`...)
		b = appendJSONString(b, o.OwnerID)
		b = append(b, `,"meta":`...)
		if o.Meta == nil {
			b = append(b, "null"...)
		} else {
			b = append(b, o.Meta...)
		}
		b = append(b, `,"ratelimits":`...)
		b = appendSubject(b, o.RateLimits, &v.Usage.Subjects[1])
		b = append(b, '}')
	}
	return b
}

// appendSubject appends a subject's limits as an array and, after
// ,"credits":, its balance or null.
func appendSubject(b []byte, limits []apikey.RateLimit, st *usage.SubjectState) []byte {
	b = append(b, '[')
	for i, l := range limits {
		if i > 0 {
			b = append(b, ',')
		}
		var ls usage.LimitState
		if i < st.NLimits {
			ls = st.Limits[i]
		}
		b = append(b, `{"name":`...)
		b = appendJSONString(b, l.Name)
		b = append(b, `,"limit":`...)
		b = strconv.AppendInt(b, l.Limit, 10)
		b = append(b, `,"duration_ms":`...)
		b = strconv.AppendInt(b, l.DurationMS, 10)
		b = append(b, `,"remaining":`...)
		b = strconv.AppendInt(b, ls.Remaining, 10)
		b = append(b, `,"reset_at":`...)
		b = appendOptMillis(b, ls.ResetAt)
		b = append(b, '}')
	}
	b = append(b, `],"credits":`...)
	if !st.Credits {
		return append(b, "null"...)
	}
	b = append(b, `{"remaining":`...)
	b = strconv.AppendInt(b, st.Remaining, 10)
	b = append(b, `,"next_refill_at":`...)
	b = appendOptMillis(b, st.NextRefillAt)
	return append(b, '}')
}

func appendOptMillis(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(b, "null"...)
	}
	return appendMillis(b, t)
}

// appendJSONString appends s as encoding/json writes it. Strings of plain
// ASCII, all that IDs and scopes can be, are copied as they are; anything
// else goes through encoding/json, so that escaping (HTML characters,
// U+2028, invalid UTF-8) is exactly its own.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			j, _ := json.Marshal(s)
			return append(b, j...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendMeta appends a key's meta, stored as compact JSON, as encoding/json
// writes a json.RawMessage: null for none, else the bytes as they are —
// unless they hold what encoding/json escapes inside a raw message (HTML
// characters, U+2028 and U+2029, whose UTF-8 starts with 0xe2), which it
// then escapes itself.
func appendMeta(b []byte, meta string) []byte {
	if meta == "" {
		return append(b, "null"...)
	}
	for i := 0; i < len(meta); i++ {
		if c := meta[i]; c == '<' || c == '>' || c == '&' || c == 0xe2 {
			j, _ := json.Marshal(json.RawMessage(meta))
			return append(b, j...)
		}
	}
	return append(b, meta...)
}

// appendJSONTime appends t as encoding/json writes a *time.Time: null when
// unset, else RFC 3339 with as many fractional digits as it needs.
func appendJSONTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(b, "null"...)
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}
