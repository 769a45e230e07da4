package api

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/apikeyd/apikeyd/apikey"
)

// Problem is an RFC 9457 problem detail, the body of every error response.
type Problem struct {
	Type   string         `json:"type" doc:"URI identifying the kind of problem." example:"urn:apikeyd:problem:invalid"`
	Title  string         `json:"title" example:"Bad Request"`
	Status int            `json:"status" example:"400"`
	Detail string         `json:"detail" example:"the request is invalid"`
	Errors []FieldProblem `json:"errors,omitempty" doc:"For invalid input: each JSON field at fault."`

	headers http.Header
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

// statusOf is the one table from error code to HTTP status.
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

// codeOf names the problem type for a status, for problems huma raises.
var codeOf = map[int]string{
	http.StatusBadRequest:            apikey.EINVALID,
	http.StatusUnauthorized:          apikey.EUNAUTHENTICATED,
	http.StatusForbidden:             apikey.EFORBIDDEN,
	http.StatusNotFound:              apikey.ENOTFOUND,
	http.StatusMethodNotAllowed:      "method_not_allowed",
	http.StatusNotAcceptable:         "not_acceptable",
	http.StatusConflict:              apikey.ECONFLICT,
	http.StatusRequestEntityTooLarge: "too_large",
	http.StatusUnsupportedMediaType:  "unsupported_media_type",
	http.StatusTooManyRequests:       apikey.ETOOMANYREQUESTS,
	http.StatusServiceUnavailable:    apikey.EUNAVAILABLE,
}

func newProblem(status int, detail string) *Problem {
	code := codeOf[status]
	if code == "" {
		code = apikey.EINTERNAL
	}
	return &Problem{
		Type:   "urn:apikeyd:problem:" + strings.ReplaceAll(code, "_", "-"),
		Title:  http.StatusText(status),
		Status: status,
		Detail: detail,
	}
}

// problemFrom turns a domain error into a problem. Internal errors say
// nothing about their cause; the caller logs it.
func problemFrom(err error) *Problem {
	var e *apikey.Error
	if !errors.As(err, &e) {
		return newProblem(http.StatusInternalServerError, "internal error")
	}
	status, ok := statusOf[e.Code]
	if !ok {
		status = http.StatusInternalServerError
	}
	p := newProblem(status, apikey.ErrorMessage(err))
	for _, f := range e.Fields {
		p.Errors = append(p.Errors, FieldProblem{Field: f.Field, Message: f.Message})
	}
	switch status {
	case http.StatusUnauthorized:
		p.headers = http.Header{"Www-Authenticate": {`Bearer realm="apikeyd"`}}
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		secs := max(int(e.RetryAfter.Seconds()+0.999), 1)
		p.headers = http.Header{"Retry-After": {strconv.Itoa(secs)}}
	}
	return p
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
		msg = "internal error"
		errs = nil
	}
	if status == http.StatusRequestEntityTooLarge {
		// Huma's message names the limit it was given, one byte over ours.
		return errBodyTooLarge()
	}
	p := newProblem(status, msg)
	if status == http.StatusBadRequest && msg == "validation failed" {
		p.Detail = "the request is invalid"
	}
	for _, err := range errs {
		if err == nil {
			continue
		}
		var d huma.ErrorDetailer
		if errors.As(err, &d) {
			detail := d.ErrorDetail()
			p.Errors = append(p.Errors, fieldProblem(detail.Location, detail.Message))
			continue
		}
		p.Errors = append(p.Errors, FieldProblem{Message: userMessage(err.Error())})
	}
	return p
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
