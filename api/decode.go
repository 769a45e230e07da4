package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"

	"github.com/apikeyd/apikeyd/apikey"
)

// decodeJSON decodes request bodies: huma's (it is the API's JSON format)
// and the verify handler's. It is encoding/json with two differences, so
// that a problem never shows a Go type or "json: cannot unmarshal":
//
//   - a number beyond the range of float64 (1e400) does not fail the
//     decoding into any that huma validates: it becomes ±Inf there, so the
//     validator names the field and says what range or type it expects;
//   - the errors it returns speak of JSON ("malformed JSON at byte 12: …",
//     "expected integer"), never of Go.
//
// Integer fields take any number whose value is whole: see wholeNumber.
func decodeJSON(data []byte, v any) error {
	err := json.Unmarshal(data, v)
	if err == nil || !isSyntaxError(err) {
		// The syntax is JSON's: what encoding/json lets pass that the API
		// does not is refused before anything else is said of the body.
		if serr := checkStrict(data); serr != nil {
			return serr
		}
	}
	if err == nil {
		return nil
	}
	var te *json.UnmarshalTypeError
	if p, ok := v.(*any); ok && errors.As(err, &te) {
		// Decoding into any only fails so on a number out of float64's range.
		return decodeOutOfRange(data, p)
	}
	return bodyError(err)
}

func isSyntaxError(err error) bool {
	var se *json.SyntaxError
	return errors.As(err, &se)
}

// decodeOutOfRange decodes data, whose syntax json.Unmarshal has checked,
// into p with every number out of float64's range as ±Inf.
func decodeOutOfRange(data []byte, p *any) error {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return bodyError(err)
	}
	*p = toFloats(v)
	return nil
}

// toFloats replaces the json.Numbers in v by float64s, ±Inf for those
// beyond its range.
func toFloats(v any) any {
	switch v := v.(type) {
	case json.Number:
		f, _ := strconv.ParseFloat(string(v), 64) // ±Inf and ErrRange beyond the range
		return f
	case map[string]any:
		for k, e := range v {
			v[k] = toFloats(e)
		}
	case []any:
		for i, e := range v {
			v[i] = toFloats(e)
		}
	}
	return v
}

// bodyError restates an error of encoding/json in JSON's terms. Huma
// reports it at the body as a whole (field ""). Huma's validator names the
// field of any value of the wrong type before the body is decoded into its
// Go type, so what comes this far is malformed JSON, or a value the
// validator and the decoder disagree on, whose message names its field.
func bodyError(err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Errorf("malformed JSON at byte %d: %s", se.Offset, se.Error())
	case errors.As(err, &te):
		msg := "expected " + jsonType(te.Type)
		if te.Field != "" {
			msg = te.Field + ": " + msg
		}
		return errors.New(msg)
	default:
		return errors.New(msgBodyMismatch)
	}
}

// msgBodyMismatch is what a problem says of a body that decoding rejected
// for a reason it cannot state in JSON's terms.
const msgBodyMismatch = "the body does not match the schema of this operation"

// jsonType names the JSON type that a value of Go type t is decoded from.
func jsonType(t reflect.Type) string {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil {
		return "a different value"
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Map, reflect.Struct:
		return "object"
	}
	return "a different value"
}

// wholeNumber is an integer field of a request body. JSON has one number
// type, and the schema /openapi.json gives these fields, JSON Schema's
// integer, is any number with a zero fractional part: so 5, 5.0 and 5e0
// all mean 5, as they do to the validator that checks the body first.
// Anything else is rejected with "expected integer" by that validator.
type wholeNumber int

// UnmarshalJSON takes a JSON number whose value is whole. Values the
// validator lets through but a float64 rounds (5.0000000000000001) are
// taken as it rounds them, as the validator does.
func (n *wholeNumber) UnmarshalJSON(b []byte) error {
	s := string(b)
	if s == "null" {
		return nil
	}
	if i, err := strconv.Atoi(s); err == nil {
		*n = wholeNumber(i)
		return nil
	}
	// b is a JSON value: only a number has the syntax ParseFloat accepts.
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != math.Trunc(f) || f < math.MinInt64 || f >= math.MaxInt64 {
		return &json.UnmarshalTypeError{Value: "number " + s, Type: reflect.TypeFor[int]()}
	}
	*n = wholeNumber(f)
	return nil
}

// intPtr is n as the service takes it.
func intPtr(n *wholeNumber) *int {
	if n == nil {
		return nil
	}
	i := int(*n)
	return &i
}

// wholeOptional is n as the domain takes it.
func wholeOptional(n Optional[wholeNumber]) apikey.Optional[int] {
	return apikey.Optional[int]{Set: n.Set, Null: n.Null, Value: int(n.Value)}
}
