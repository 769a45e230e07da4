package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/apikeyd/apikeyd/apikey"
	"github.com/apikeyd/apikeyd/observe"
)

// Problem is an RFC 9457 problem detail, the body of every error response.
type Problem struct {
	Type   string         `json:"type" doc:"URI identifying the kind of problem." example:"urn:apikeyd:problem:invalid"`
	Title  string         `json:"title" example:"Bad Request"`
	Status int            `json:"status" example:"400"`
	Detail string         `json:"detail" example:"the request is invalid"`
	Errors []FieldProblem `json:"errors,omitempty" doc:"For invalid input: each JSON field at fault."`
	// Err is the problem again in the shape Strait's clients read (SPEC §12).
	Err ErrorObject `json:"error"`

	headers http.Header
	// cause is the error the problem was made from, for the operator's log
	// when it is an internal one; it never reaches the client.
	cause error
}

// ErrorObject is the "error" member of every problem: a stable code and the
// problem's detail.
type ErrorObject struct {
	Code    string `json:"code" enum:"bad_request,authentication_required,forbidden,not_found,conflict,validation_failed,rate_limited,payload_too_large,internal_error,service_unavailable" example:"validation_failed"`
	Message string `json:"message" example:"the request is invalid"`
}

// FieldProblem names one input field at fault.
type FieldProblem struct {
	Field   string `json:"field" example:"name"`
	Message string `json:"message" example:"must be 1-255 characters"`
}

func (p *Problem) Error() string { return p.Detail }

// GetStatus implements huma.StatusError.
func (p *Problem) GetStatus() int { return p.Status }

// ContentType implements huma.ContentTypeFilter: problems are
// application/problem+json.
func (p *Problem) ContentType(string) string { return "application/problem+json" }

// GetHeaders implements huma.HeadersError, for Retry-After and
// WWW-Authenticate.
func (p *Problem) GetHeaders() http.Header { return p.headers }

// statusOf is the one table from domain error code to HTTP status.
var statusOf = map[string]int{
	apikey.EINVALID:         http.StatusBadRequest,
	apikey.EUNAUTHENTICATED: http.StatusUnauthorized,
	apikey.EFORBIDDEN:       http.StatusForbidden,
	apikey.ENOTFOUND:        http.StatusNotFound,
	apikey.ECONFLICT:        http.StatusConflict,
	apikey.ETOOMANYREQUESTS: http.StatusTooManyRequests,
	apikey.EUNAVAILABLE:     http.StatusServiceUnavailable,
	apikey.EINTERNAL:        http.StatusInternalServerError,
}

// StatusOf returns the HTTP status of err's code from the one table above,
// so that other handlers of the server (the dashboard) answer each error
// with the status the API gives it.
func StatusOf(err error) int { return statusOf[apikey.ErrorCode(err)] }

// kind is what a status says about a problem: the last part of its type
// URI and its "error" code.
type kind struct{ slug, code string }

// kinds is the one table from HTTP status to the problem's type and
// "error" code. A 400 naming a field is validation_failed (see newProblem);
// a status not listed is an internal error. Statuses the SPEC's list of
// codes has no word for (405, 406, 408, 415, 499) are bad_request: the
// request was wrong, not the server.
var kinds = map[int]kind{
	http.StatusBadRequest:            {apikey.EINVALID, "bad_request"},
	http.StatusUnauthorized:          {apikey.EUNAUTHENTICATED, "authentication_required"},
	http.StatusForbidden:             {apikey.EFORBIDDEN, "forbidden"},
	http.StatusNotFound:              {apikey.ENOTFOUND, "not_found"},
	http.StatusMethodNotAllowed:      {"method_not_allowed", "bad_request"},
	http.StatusNotAcceptable:         {"not_acceptable", "bad_request"},
	http.StatusRequestTimeout:        {"timeout", "bad_request"},
	http.StatusConflict:              {apikey.ECONFLICT, "conflict"},
	http.StatusRequestEntityTooLarge: {"too_large", "payload_too_large"},
	http.StatusUnsupportedMediaType:  {"unsupported_media_type", "bad_request"},
	http.StatusTooManyRequests:       {apikey.ETOOMANYREQUESTS, "rate_limited"},
	observe.StatusClientClosed:       {"client_closed", "bad_request"},
	http.StatusInternalServerError:   {apikey.EINTERNAL, "internal_error"},
	http.StatusServiceUnavailable:    {apikey.EUNAVAILABLE, "service_unavailable"},
}

// newProblem is the one constructor of problems: status, detail and the
// fields at fault decide everything else.
func newProblem(status int, detail string, fields ...FieldProblem) *Problem {
	k, ok := kinds[status]
	if !ok {
		k = kinds[http.StatusInternalServerError]
	}
	code := k.code
	if status == http.StatusBadRequest && slices.ContainsFunc(fields, func(f FieldProblem) bool { return f.Field != "" }) {
		code = "validation_failed"
	}
	title := http.StatusText(status)
	if status == observe.StatusClientClosed {
		title = "Client Closed Request"
	}
	return &Problem{
		Type:   "urn:apikeyd:problem:" + strings.ReplaceAll(k.slug, "_", "-"),
		Title:  title,
		Status: status,
		Detail: detail,
		Errors: fields,
		Err:    ErrorObject{Code: code, Message: detail},
	}
}

// problemFrom turns an error into a problem: a *Problem as it is, a domain
// error by the table statusOf, anything else as an internal error that
// says nothing about its cause (kept for the operator's log). A request
// whose client went away gets 499 whatever its work failed with: the
// failure is most likely the cancellation, and nobody reads the answer.
func problemFrom(ctx context.Context, err error) *Problem {
	var p *Problem
	if errors.As(err, &p) {
		return p
	}
	var e *apikey.Error
	status := http.StatusInternalServerError
	if errors.As(err, &e) {
		if s, ok := statusOf[e.Code]; ok {
			status = s
		}
	}
	if status >= 500 && clientGone(ctx) {
		p = newProblem(observe.StatusClientClosed, "the client closed the request")
		p.cause = err
		return p
	}
	if e == nil || status == http.StatusInternalServerError {
		p = newProblem(http.StatusInternalServerError, "internal error")
		p.cause = err
		return p
	}
	var fields []FieldProblem
	for _, f := range e.Fields {
		fields = append(fields, FieldProblem{Field: f.Field, Message: f.Message})
	}
	p = newProblem(status, apikey.ErrorMessage(err), fields...)
	p.cause = err
	switch status {
	case http.StatusUnauthorized:
		p.headers = http.Header{"Www-Authenticate": {`Bearer realm="apikeyd"`}}
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		secs := max(int(e.RetryAfter.Seconds()+0.999), 1)
		p.headers = http.Header{"Retry-After": {strconv.Itoa(secs)}}
	}
	return p
}

// clientGone reports whether ctx ended because the client went away.
func clientGone(ctx context.Context) bool {
	return ctx.Err() != nil && errors.Is(context.Cause(ctx), context.Canceled)
}

// fail turns a service error into the problem a handler returns. It only
// converts: the problem is written, and an internal cause logged, on its
// way out (writeProblem, or reportProblem for huma's operations).
func (a *API) fail(ctx context.Context, err error) error { return problemFrom(ctx, err) }

// writeProblem is the one writer of problems: every error a client sees
// leaves through it, the problems of huma's operations included (huma
// hands them to reportProblem and encodeJSON, the two halves of this
// function, in the same order).
func (a *API) writeProblem(w http.ResponseWriter, r *http.Request, err error) {
	p := problemFrom(r.Context(), err)
	a.reportProblem(r.Context(), p)
	h := w.Header()
	for k, vs := range p.headers {
		h[k] = vs
	}
	h.Set("Content-Type", "application/problem+json")
	w.WriteHeader(p.Status)
	_ = encodeJSON(w, p)
}

// reportProblem logs the cause of an internal error for the operator. A
// request whose client went away is not the server's failure: observe
// records it as 499 at INFO, and nothing more is logged here.
func (a *API) reportProblem(ctx context.Context, p *Problem) {
	if p.Status >= 500 && p.cause != nil && !clientGone(ctx) {
		a.log.ErrorContext(ctx, "request failed", "request_id", observe.From(ctx).ID, "status", p.Status, "err", p.cause)
	}
}

// transformProblem is the huma transformer through which every problem of
// a huma operation passes before huma encodes it with encodeJSON.
func (a *API) transformProblem(ctx huma.Context, _ string, v any) (any, error) {
	if p, ok := v.(*Problem); ok {
		a.reportProblem(ctx.Context(), p)
	}
	return v, nil
}

// encodeJSON is how every response body is encoded, problems and huma's
// operations alike: one line of JSON, without HTML escaping.
func encodeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// newHumaError replaces huma.NewError so that the errors huma raises itself
// (validation, malformed JSON, oversized bodies) are problems of the same
// shape as ours, naming JSON fields. Huma reports validation failures as
// 422; apikeyd answers 400 for every invalid input.
func newHumaError(status int, msg string, errs ...error) huma.StatusError {
	if status == http.StatusUnprocessableEntity {
		status = http.StatusBadRequest
	}
	if status >= 500 {
		p := newProblem(status, "internal error")
		p.cause = errors.Join(append([]error{errors.New(msg)}, errs...)...)
		return p
	}
	if status == http.StatusRequestEntityTooLarge {
		// Huma's message names the limit it was given, one byte over ours.
		return errBodyTooLarge()
	}
	if status == http.StatusBadRequest && msg == "validation failed" {
		msg = "the request is invalid"
	}
	var fields []FieldProblem
	for _, err := range errs {
		if err == nil {
			continue
		}
		var d huma.ErrorDetailer
		if errors.As(err, &d) {
			detail := d.ErrorDetail()
			fields = append(fields, fieldProblem(detail.Location, detail.Message))
			continue
		}
		fields = append(fields, FieldProblem{Message: userMessage(err.Error())})
	}
	return newProblem(status, msg, fields...)
}

// userMessage is msg, unless it is one of encoding/json's own, which name
// Go types and fields: decodeJSON restates those, and this is the last
// guard that none reaches a client.
func userMessage(msg string) string {
	if strings.HasPrefix(msg, "json: ") {
		return msgBodyMismatch
	}
	return msg
}

// errBodyTooLarge is the answer to a body over MaxBodyBytes, on every
// route.
func errBodyTooLarge() *Problem {
	return newProblem(http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is too large limit=%d bytes", MaxBodyBytes))
}

// fieldProblem turns huma's location ("body.scopes[0]", "query.limit") into
// the JSON field name, and names the missing property of a "required" error.
func fieldProblem(location, message string) FieldProblem {
	field := location
	for _, prefix := range []string{"body.", "query.", "path.", "header."} {
		if strings.HasPrefix(field, prefix) {
			field = field[len(prefix):]
			break
		}
	}
	if field == "body" {
		field = ""
	}
	const req, present = "expected required property ", " to be present"
	if strings.HasPrefix(message, req) && strings.HasSuffix(message, present) {
		name := message[len(req) : len(message)-len(present)]
		if field != "" {
			name = field + "." + name
		}
		return FieldProblem{Field: name, Message: "is required"}
	}
	if message == "unexpected property" {
		message = "is not a known field"
	}
	return FieldProblem{Field: field, Message: userMessage(message)}
}
