package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/danielgtaylor/huma/v2"
)

// The API's JSON is stricter than encoding/json, which decodes member
// names case-insensitively, keeps the last of a member given twice and
// replaces invalid UTF-8 and lone surrogates by U+FFFD. Case is enforced
// by the validator (huma.ValidateStrictCasing, set below); checkStrict
// refuses the rest, so that what a client sent is never taken to mean
// something else than it says.

func init() {
	// Huma's validator matches member names case-insensitively unless told
	// otherwise; it is the API's JSON, and only the API's, it validates.
	huma.ValidateStrictCasing = true
}

// checkStrict reports the first reason data, which is syntactically JSON,
// is not strict JSON: text that is not UTF-8, a \u escape that is a lone
// surrogate, or an object member given twice (compared after unescaping,
// so "a" and "\u0061" are the same member).
func checkStrict(data []byte) error {
	if !utf8.Valid(data) {
		return errors.New("the body is not valid UTF-8")
	}
	if err := checkSurrogates(data); err != nil {
		return err
	}
	return checkDuplicates(data)
}

// checkSurrogates refuses a \u escape of a UTF-16 surrogate that is not
// half of a pair. In JSON text a backslash occurs only inside strings,
// and there only as the start of an escape, so the scan needs no parser.
func checkSurrogates(data []byte) error {
	for i := bytes.IndexByte(data, '\\'); i >= 0 && i+1 < len(data); {
		n := 2
		if data[i+1] == 'u' {
			r := hex4(data[i+2:])
			switch {
			case r >= 0xd800 && r < 0xdc00:
				if i+11 < len(data) && data[i+6] == '\\' && data[i+7] == 'u' {
					if lo := hex4(data[i+8:]); lo >= 0xdc00 && lo < 0xe000 {
						n = 12
						break
					}
				}
				return errors.New("a string holds a lone UTF-16 surrogate (\\u" + string(data[i+2:i+6]) + "), which is not valid Unicode")
			case r >= 0xdc00 && r < 0xe000:
				return errors.New("a string holds a lone UTF-16 surrogate (\\u" + string(data[i+2:i+6]) + "), which is not valid Unicode")
			default:
				n = 6
			}
		}
		j := bytes.IndexByte(data[i+n:], '\\')
		if j < 0 {
			return nil
		}
		i += n + j
	}
	return nil
}

// hex4 is the value of the 4 hex digits b starts with (JSON's syntax
// guarantees them after \u); -1 if b is shorter.
func hex4(b []byte) int {
	if len(b) < 4 {
		return -1
	}
	v, err := strconv.ParseUint(string(b[:4]), 16, 16)
	if err != nil {
		return -1
	}
	return int(v)
}

// checkDuplicates refuses an object that has a member twice, naming it by
// its path from the body ("meta.a", "keys[2].name").
func checkDuplicates(data []byte) error {
	if bytes.IndexByte(data, '{') < 0 {
		return nil
	}
	d := json.NewDecoder(bytes.NewReader(data))
	type level struct {
		object bool
		names  map[string]struct{}
		name   string // of the member whose value is being read
		index  int    // of the next element of an array
		atName bool   // the next token of an object is a member name
	}
	var stack []level
	path := func() string {
		var b []byte
		for i, l := range stack {
			switch {
			case l.object:
				if i > 0 {
					b = append(b, '.')
				}
				b = append(b, l.name...)
			default:
				b = append(b, '[')
				b = strconv.AppendInt(b, int64(l.index-1), 10)
				b = append(b, ']')
			}
		}
		return string(b)
	}
	// value notes that a value begins in the innermost container.
	value := func() {
		if n := len(stack); n > 0 {
			if l := &stack[n-1]; l.object {
				l.atName = true
			} else {
				l.index++
			}
		}
	}
	for {
		tok, err := d.Token()
		if err != nil {
			return nil // the end; syntax is encoding/json's to report
		}
		if n := len(stack); n > 0 && stack[n-1].object && stack[n-1].atName {
			l := &stack[n-1]
			if name, ok := tok.(string); ok {
				if _, dup := l.names[name]; dup {
					l.name = name
					return fmt.Errorf("member %q is given more than once", path())
				}
				l.names[name] = struct{}{}
				l.name = name
				l.atName = false
				continue
			}
		}
		switch tok {
		case json.Delim('{'):
			value()
			stack = append(stack, level{object: true, names: map[string]struct{}{}, atName: true})
		case json.Delim('['):
			value()
			stack = append(stack, level{})
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		default:
			value()
		}
	}
}
