package apikey

import (
	"fmt"

	"github.com/google/uuid"
)

// ID kinds: the part before the underscore says what an ID names.
const (
	IDKindKey      = "key"
	IDKindEvent    = "evt"
	IDKindDelivery = "msg"
)

// crockford is Crockford's base32 alphabet in lower case. Its characters are
// in ASCII order, so IDs sort as the UUIDv7 timestamps inside them do.
const crockford = "0123456789abcdefghjkmnpqrstvwxyz"

// NewID returns an opaque, unique ID that sorts by creation time:
// kind + "_" + 26 characters of a UUIDv7 in Crockford base32.
func NewID(kind string) (string, error) {
	u, err := uuid.NewV7()
	if err != nil {
		return "", fmt.Errorf("new uuid: %w", err)
	}
	return kind + "_" + encodeCrockford(u), nil
}

// encodeCrockford writes 128 bits as 26 base32 digits (130 bits, the top two
// zero), most significant first.
func encodeCrockford(u [16]byte) string {
	var out [26]byte
	hi := uint64(u[0])<<56 | uint64(u[1])<<48 | uint64(u[2])<<40 | uint64(u[3])<<32 |
		uint64(u[4])<<24 | uint64(u[5])<<16 | uint64(u[6])<<8 | uint64(u[7])
	lo := uint64(u[8])<<56 | uint64(u[9])<<48 | uint64(u[10])<<40 | uint64(u[11])<<32 |
		uint64(u[12])<<24 | uint64(u[13])<<16 | uint64(u[14])<<8 | uint64(u[15])
	for i := 25; i >= 0; i-- {
		out[i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return string(out[:])
}

// ValidID reports whether s has the shape of an ID of the given kind. Handlers
// use it to answer 404 for garbage without a store round trip.
func ValidID(kind, s string) bool {
	if len(s) != len(kind)+1+26 || s[:len(kind)] != kind || s[len(kind)] != '_' {
		return false
	}
	for i := len(kind) + 1; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' && c != 'i' && c != 'l' && c != 'o' && c != 'u') {
			return false
		}
	}
	return true
}
