package client

import (
	"context"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Error is an error answer of the server: an RFC 9457 problem. Its message
// is the server's, which never contains a key or token.
type Error struct {
	// Status is the HTTP status code.
	Status int
	// Type is a URI naming the kind of problem, such as
	// "urn:apikeyd:problem:not-found".
	Type   string
	Title  string
	Detail string
	// Fields names the input fields at fault, for a 400.
	Fields []FieldError
	// RetryAfter is when to try again, for a 429 or 503 that says so.
	RetryAfter time.Duration
	// RequestID is the server's X-Request-Id for the request, to find it in
	// the server's log.
	RequestID string
}

// FieldError is one input field at fault and why.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Error returns "apikeyd: <status> <title>: <detail>" and the fields at
// fault.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("apikeyd: ")
	b.WriteString(strconv.Itoa(e.Status))
	if e.Title != "" {
		b.WriteString(" " + e.Title)
	}
	if e.Detail != "" {
		b.WriteString(": " + e.Detail)
	}
	for i, f := range e.Fields {
		if i == 0 {
			b.WriteString(" (")
		} else {
			b.WriteString("; ")
		}
		if f.Field != "" {
			b.WriteString(f.Field + ": ")
		}
		b.WriteString(f.Message)
		if i == len(e.Fields)-1 {
			b.WriteString(")")
		}
	}
	return b.String()
}

// newError turns an error answer into an *Error. An answer that is not a
// problem (a proxy's HTML page, say) keeps only its status.
func newError(resp *http.Response, body []byte) *Error {
	e := &Error{Status: resp.StatusCode, RequestID: resp.Header.Get("X-Request-Id")}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mt == "application/problem+json" || mt == "application/json" {
		var p struct {
			Type   string       `json:"type"`
			Title  string       `json:"title"`
			Detail string       `json:"detail"`
			Errors []FieldError `json:"errors"`
		}
		if json.Unmarshal(body, &p) == nil {
			e.Type, e.Title, e.Detail, e.Fields = p.Type, p.Title, p.Detail, p.Errors
		}
	}
	if e.Title == "" {
		e.Title = http.StatusText(resp.StatusCode)
	}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s >= 0 {
		e.RetryAfter = time.Duration(s) * time.Second
	}
	return e
}

// StatusOf returns the HTTP status of an error answer, or 0 when err is not
// one.
func StatusOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// IsInvalid reports a 400: the request was malformed or a field invalid.
func IsInvalid(err error) bool { return StatusOf(err) == http.StatusBadRequest }

// IsUnauthorized reports a 401: the token is missing, unknown, expired or
// revoked.
func IsUnauthorized(err error) bool { return StatusOf(err) == http.StatusUnauthorized }

// IsForbidden reports a 403: the token lacks the scope, or acts in another
// project.
func IsForbidden(err error) bool { return StatusOf(err) == http.StatusForbidden }

// IsNotFound reports a 404: no such key, or not one the token may see.
func IsNotFound(err error) bool { return StatusOf(err) == http.StatusNotFound }

// IsConflict reports a 409: the key is revoked or already replaced.
func IsConflict(err error) bool { return StatusOf(err) == http.StatusConflict }

// IsRateLimited reports a 429: too many failed authentications from this
// address; Error.RetryAfter says when to come back.
func IsRateLimited(err error) bool { return StatusOf(err) == http.StatusTooManyRequests }

// IsUnavailable reports that apikeyd could not give an answer: it could not
// be reached, did not answer in time, or answered 502, 503 or 504. A
// canceled context is not unavailability.
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	switch StatusOf(err) {
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	case 0:
		var ue *url.Error
		return errors.As(err, &ue) && !errors.Is(err, context.Canceled)
	}
	return false
}
