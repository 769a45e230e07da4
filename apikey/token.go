package apikey

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"unsafe"
)

// The plaintext form of a key is
//
//	<prefix>_<43 base62 characters: 256 random bits><6 base62 characters: CRC32>
//
// where the checksum covers everything before it. The checksum lets a typo or
// a truncated key be rejected without touching the store, and lets secret
// scanners recognise real keys with few false positives.
const (
	randomLen    = 43
	checksumLen  = 6
	bodyLen      = randomLen + checksumLen
	maxPrefixLen = 8
	// KeyPrefixLen is how many leading characters of a key are kept and shown
	// as key_prefix.
	KeyPrefixLen = 12
)

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// Hash is the SHA-256 digest of a key's plaintext.
type Hash [32]byte

// HashKey returns the digest under which a key is stored. It runs on every
// verification and bearer check, so it hashes the string's bytes in place
// instead of copying them to the heap.
func HashKey(plaintext string) Hash { return sha256.Sum256(stringBytes(plaintext)) }

// stringBytes returns the bytes of s without copying them. The caller must
// only read them.
func stringBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// String returns the digest in hex, for logs and tests.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// Secret is a newly generated key, the one moment its plaintext exists.
type Secret struct {
	Plaintext string
	Hash      Hash
	Prefix    string // the first KeyPrefixLen characters
}

// ValidKeyPrefix reports whether p can start issued keys: 1–8 characters of
// [A-Za-z0-9], optionally with inner underscores (e.g. "sk_live"). The limit
// keeps at least three random characters inside the 12-character key_prefix.
func ValidKeyPrefix(p string) bool {
	if len(p) == 0 || len(p) > maxPrefixLen || p[0] == '_' || p[len(p)-1] == '_' {
		return false
	}
	for i := 0; i < len(p); i++ {
		if !isBase62(p[i]) && p[i] != '_' {
			return false
		}
	}
	return true
}

// GenerateKey returns a fresh random key with the given prefix.
func GenerateKey(prefix string) (Secret, error) {
	if !ValidKeyPrefix(prefix) {
		return Secret{}, fmt.Errorf("invalid key prefix %q", prefix)
	}
	var random [32]byte
	if _, err := rand.Read(random[:]); err != nil {
		return Secret{}, fmt.Errorf("read random: %w", err)
	}
	return keyFromRandom(prefix, random), nil
}

// keyFromRandom builds the plaintext for the given 256 random bits.
func keyFromRandom(prefix string, random [32]byte) Secret {
	buf := make([]byte, 0, len(prefix)+1+bodyLen)
	buf = append(buf, prefix...)
	buf = append(buf, '_')
	buf = appendBase62Bytes(buf, random, randomLen)
	buf = appendBase62Uint32(buf, crc32.ChecksumIEEE(buf), checksumLen)
	s := string(buf)
	return Secret{Plaintext: s, Hash: HashKey(s), Prefix: s[:KeyPrefixLen]}
}

// ParseKey checks that s has the shape and checksum of a key apikeyd issues,
// whatever its prefix (keys outlive a change of APIKEYD_KEY_PREFIX). It does
// no lookup.
func ParseKey(s string) bool {
	if !OwnFormat(s) {
		return false
	}
	want, ok := decodeBase62Uint32(s[len(s)-checksumLen:])
	if !ok {
		return false
	}
	return crc32.ChecksumIEEE(stringBytes(s[:len(s)-checksumLen])) == want
}

// OwnFormat reports whether s has the shape of a key apikeyd issues — a
// valid prefix, "_", then 49 base62 characters — whether or not its
// checksum holds. A string of that shape whose checksum fails is a
// mistyped key of ours, never an imported one (SPEC §9).
func OwnFormat(s string) bool {
	if len(s) > MaxPresentedKeyBytes || len(s) < 2+bodyLen {
		return false
	}
	sep := len(s) - bodyLen - 1
	if s[sep] != '_' || !ValidKeyPrefix(s[:sep]) {
		return false
	}
	for i := sep + 1; i < len(s); i++ {
		if !isBase62(s[i]) {
			return false
		}
	}
	return true
}

func isBase62(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z'
}

func base62Value(c byte) uint64 {
	switch {
	case c >= '0' && c <= '9':
		return uint64(c - '0')
	case c >= 'A' && c <= 'Z':
		return uint64(c-'A') + 10
	default:
		return uint64(c-'a') + 36
	}
}

// appendBase62Bytes appends the big-endian number in b as exactly n base62
// digits, most significant first.
func appendBase62Bytes(dst []byte, b [32]byte, n int) []byte {
	digits := make([]byte, n)
	num := b
	for i := n - 1; i >= 0; i-- {
		var rem uint32
		for j := range num {
			cur := rem<<8 | uint32(num[j])
			num[j] = byte(cur / 62)
			rem = cur % 62
		}
		digits[i] = base62[rem]
	}
	return append(dst, digits...)
}

// appendBase62Uint32 appends v as exactly n base62 digits.
func appendBase62Uint32(dst []byte, v uint32, n int) []byte {
	var digits [checksumLen]byte
	x := uint64(v)
	for i := n - 1; i >= 0; i-- {
		digits[i] = base62[x%62]
		x /= 62
	}
	return append(dst, digits[:n]...)
}

func decodeBase62Uint32(s string) (uint32, bool) {
	var v uint64
	for i := 0; i < len(s); i++ {
		v = v*62 + base62Value(s[i])
	}
	if v > 0xFFFFFFFF {
		return 0, false
	}
	return uint32(v), true
}
