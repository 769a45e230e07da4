package service

import (
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/apikeyd/apikeyd/apikey"
)

// Nullable is a PATCH field that can be absent (leave as is), null (clear)
// or a value.
type Nullable[T any] struct {
	Set   bool // present in the request
	Valid bool // not null
	Value T
}

// CreateInput is what a caller gives to create a key. Pointers are nil when
// the field was not given.
type CreateInput struct {
	ProjectID            string
	Name                 string
	Scopes               []string
	ExpiresInDays        *int
	ExpiresAt            *time.Time
	EnvironmentID        *string
	RotationIntervalDays *int
	RotationWebhookURL   *string
}

// PatchInput is a partial update of a key.
type PatchInput struct {
	Name                 *string
	Scopes               *[]string
	ExpiresAt            Nullable[time.Time]
	RotationIntervalDays Nullable[int]
	RotationWebhookURL   Nullable[string]
	NextRotationAt       *time.Time
}

func (in *PatchInput) empty() bool {
	return in.Name == nil && in.Scopes == nil && !in.ExpiresAt.Set && !in.RotationIntervalDays.Set &&
		!in.RotationWebhookURL.Set && in.NextRotationAt == nil
}

// problems collects field errors so that a caller hears of all of them at
// once.
type problems []apikey.FieldError

func (p *problems) add(field, msg string) {
	*p = append(*p, apikey.FieldError{Field: field, Message: msg})
}

func (p problems) err() error {
	if len(p) == 0 {
		return nil
	}
	return apikey.Invalid("the request is invalid", p...)
}

// fromError adds the fields of an EINVALID error.
func (p *problems) fromError(err *apikey.Error) {
	if err != nil {
		*p = append(*p, err.Fields...)
	}
}

func (p *problems) name(field, name string) {
	n := utf8.RuneCountInString(name)
	switch {
	case !utf8.ValidString(name):
		p.add(field, "must be valid UTF-8")
	case n == 0 || n > apikey.MaxNameLen:
		p.add(field, "must be 1-255 characters")
	default:
		for _, r := range name {
			switch {
			case unicode.IsControl(r):
				p.add(field, "must not contain control characters")
				return
			case isBidiControl(r):
				p.add(field, "must not contain bidirectional control characters (U+202A-U+202E, U+2066-U+2069)")
				return
			}
		}
	}
}

// isBidiControl reports the embedding, override and isolate controls,
// which make a name display as something else than it is (the "Trojan
// Source" characters): a name in a list, a log or an audit entry must read
// as what is stored.
func isBidiControl(r rune) bool {
	return r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069
}

func (p *problems) identifier(field, s string) {
	if !apikey.ValidIdentifier(s) {
		p.add(field, "must be 1-128 characters of A-Z a-z 0-9 _ . : -")
	}
}

func (p *problems) days(field string, v, max int) {
	if v < 1 || v > max {
		p.add(field, "must be between 1 and "+strconv.Itoa(max))
	}
}

func (p *problems) future(field string, t, now time.Time) {
	if !t.After(now) {
		p.add(field, "must be in the future")
	}
}
