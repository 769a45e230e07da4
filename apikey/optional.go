package apikey

import (
	"bytes"
	"encoding/json"
)

// Optional is a field of a partial update (PATCH) that tells three cases
// apart: absent (Set false: leave the value as it is), null (Null: clear
// it) and a value. It is the one three-state type of apikeyd: the API
// decodes request bodies into it and the domain applies it (KeyPatch). Its
// OpenAPI schema, the value type made nullable, is the api package's
// business, so that this package imports no HTTP library.
type Optional[T any] struct {
	Set   bool // present in the request
	Null  bool // present and null
	Value T    // the value, when Set and not Null
}

// Some is the Optional holding v.
func Some[T any](v T) Optional[T] { return Optional[T]{Set: true, Value: v} }

// Null is the Optional that clears the field.
func Null[T any]() Optional[T] { return Optional[T]{Set: true, Null: true} }

// Valid reports whether o holds a value: present and not null.
func (o Optional[T]) Valid() bool { return o.Set && !o.Null }

// UnmarshalJSON implements json.Unmarshaler. encoding/json calls it only
// for fields present in the document, so an absent field stays unset.
func (o *Optional[T]) UnmarshalJSON(b []byte) error {
	*o = Optional[T]{Set: true}
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		o.Null = true
		return nil
	}
	return json.Unmarshal(b, &o.Value)
}
