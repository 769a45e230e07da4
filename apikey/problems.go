package apikey

import (
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"
)

// problems collects field errors so that a caller hears of all of them at
// once.
type problems []FieldError

func (p *problems) add(field, msg string) {
	*p = append(*p, FieldError{Field: field, Message: msg})
}

// fromError adds the fields of an EINVALID error.
func (p *problems) fromError(err *Error) {
	if err != nil {
		*p = append(*p, err.Fields...)
	}
}

func (p *problems) name(field, name string) {
	n := utf8.RuneCountInString(name)
	switch {
	case !utf8.ValidString(name):
		p.add(field, "must be valid UTF-8")
	case n == 0 || n > MaxNameLen:
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

// MsgIdentifier is what a field error says of a bad project or environment
// ID.
const MsgIdentifier = "must be 1-128 characters of A-Z a-z 0-9 _ . : -"

func (p *problems) identifier(field, s string) {
	if !ValidIdentifier(s) {
		p.add(field, MsgIdentifier)
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

func (p *problems) notNull(field string, null bool) {
	if null {
		p.add(field, "must not be null")
	}
}

// InvalidFields returns the EINVALID error of the field errors, or nil when
// there are none.
func InvalidFields(fields []FieldError) error {
	if len(fields) == 0 {
		return nil
	}
	return Invalid("the request is invalid", fields...)
}
