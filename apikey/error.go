package apikey

import (
	"errors"
	"fmt"
	"time"
)

// Error codes. Each maps to exactly one HTTP status in the api package; the
// domain and the stores speak only in these codes.
const (
	EINVALID         = "invalid"
	EUNAUTHENTICATED = "unauthenticated"
	EFORBIDDEN       = "forbidden"
	ENOTFOUND        = "not_found"
	ECONFLICT        = "conflict"
	ETOOMANYREQUESTS = "too_many_requests"
	EUNAVAILABLE     = "unavailable"
	EINTERNAL        = "internal"
)

// Error is an error meant for the caller of the API. Message is safe to show
// to that caller; the wrapped Err (if any) is for the operator's log only.
type Error struct {
	Code    string
	Message string
	// Fields names the JSON fields at fault in an EINVALID error.
	Fields []FieldError
	// RetryAfter tells a rate-limited or unavailable caller when to come back.
	RetryAfter time.Duration
	// Err is the underlying cause; it never reaches the caller.
	Err error
}

// FieldError explains what is wrong with one input field.
type FieldError struct {
	Field   string
	Message string
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Unwrap exposes the cause to errors.Is and errors.As.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalid returns an EINVALID error naming the fields at fault.
func Invalid(message string, fields ...FieldError) *Error {
	return &Error{Code: EINVALID, Message: message, Fields: fields}
}

// Internal wraps an unexpected failure. The caller sees a fixed message; the
// cause is kept for the log.
func Internal(err error) *Error {
	return &Error{Code: EINTERNAL, Message: "internal error", Err: err}
}

// ErrorCode returns the code of err, EINTERNAL for errors that carry none and
// "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the caller-safe message of err. Errors that are not an
// *Error, and internal ones, get a generic message so that no detail of the
// implementation leaks.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Code != EINTERNAL {
		return e.Message
	}
	return "internal error"
}

// Common errors, returned by stores and the service.
var (
	// ErrNotFound is returned when a key, event or delivery does not exist
	// (or, for a caller, is not theirs to see).
	ErrNotFound = &Error{Code: ENOTFOUND, Message: "not found"}
	// ErrUnauthenticated is the one message every failed authentication gets,
	// whatever the reason, so that failures reveal nothing.
	ErrUnauthenticated = &Error{Code: EUNAUTHENTICATED, Message: "missing or invalid bearer token"}
)
