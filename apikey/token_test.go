package apikey

import (
	"hash/crc32"
	"strings"
	"testing"
)

func TestGenerateKey(t *testing.T) {
	seen := map[string]bool{}
	for range 200 {
		s, err := GenerateKey("sk")
		if err != nil {
			t.Fatal(err)
		}
		if len(s.Plaintext) != len("sk_")+bodyLen {
			t.Fatalf("len(%q) = %d", s.Plaintext, len(s.Plaintext))
		}
		if !ParseKey(s.Plaintext) {
			t.Fatalf("ParseKey(%q) = false for a generated key", s.Plaintext)
		}
		if s.Prefix != s.Plaintext[:KeyPrefixLen] || len(s.Prefix) != 12 {
			t.Fatalf("Prefix = %q", s.Prefix)
		}
		if s.Hash != HashKey(s.Plaintext) {
			t.Fatal("Hash is not the SHA-256 of the plaintext")
		}
		if seen[s.Plaintext] {
			t.Fatal("duplicate key")
		}
		seen[s.Plaintext] = true
	}
}

func TestKeyFromRandom(t *testing.T) {
	// Vectors computed independently (Python's int and zlib.crc32): the
	// extremes of the 256-bit range as fixed-width base62, then the CRC32 of
	// everything before it as 6 base62 digits.
	var zero, ones [32]byte
	for i := range ones {
		ones[i] = 0xff
	}
	for name, tc := range map[string]struct {
		random [32]byte
		want   string
	}{
		"zero": {zero, "sk_00000000000000000000000000000000000000000004LPos6"},
		"max":  {ones, "sk_yhjskwdA6OZ1AL1YmHWZWm8LLG7HjnuCA2j5rOw8Xp11IM8Ve"},
	} {
		t.Run(name, func(t *testing.T) {
			if got := keyFromRandom("sk", tc.random).Plaintext; got != tc.want {
				t.Fatalf("key = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestParseKey(t *testing.T) {
	good, _ := GenerateKey("sk_live")
	ok := good.Plaintext
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'a' {
			b[i] = 'b'
		} else {
			b[i] = 'a'
		}
		return string(b)
	}
	for name, tc := range map[string]struct {
		key  string
		want bool
	}{
		"OK":                  {ok, true},
		"OK/otherPrefix":      {keyFromRandom("pk", [32]byte{1}).Plaintext, true},
		"ErrEmpty":            {"", false},
		"ErrChecksum":         {flip(ok, len(ok)-1), false},
		"ErrRandomPart":       {flip(ok, len(ok)-10), false},
		"ErrPrefixChanged":    {"sk_test" + ok[len("sk_live"):], false},
		"ErrTruncated":        {ok[:len(ok)-1], false},
		"ErrExtra":            {ok + "a", false},
		"ErrNoSeparator":      {strings.Replace(ok, "_", "", -1), false},
		"ErrBadChar":          {ok[:len(ok)-20] + "-" + ok[len(ok)-19:], false},
		"ErrNoPrefix":         {ok[len("sk_live"):], false},
		"ErrLongPrefix":       {"abcdefghi_" + ok[len("sk_live_"):], false},
		"ErrWhitespace":       {" " + ok, false},
		"ErrChecksumOverflow": {ok[:len(ok)-6] + "zzzzzz", false},
		"ErrHuge":             {strings.Repeat("a", 10000), false},
	} {
		t.Run(name, func(t *testing.T) {
			if got := ParseKey(tc.key); got != tc.want {
				t.Fatalf("ParseKey(%q) = %v, want %v", tc.key, got, tc.want)
			}
		})
	}
}

func TestValidKeyPrefix(t *testing.T) {
	for p, want := range map[string]bool{
		"sk": true, "sk_live": true, "A1": true, "abcdefgh": true,
		"": false, "_sk": false, "sk_": false, "abcdefghi": false, "s-k": false, "sk live": false,
	} {
		if got := ValidKeyPrefix(p); got != want {
			t.Errorf("ValidKeyPrefix(%q) = %v, want %v", p, got, want)
		}
	}
}

func FuzzParseKey(f *testing.F) {
	s, _ := GenerateKey("sk")
	f.Add(s.Plaintext)
	f.Add("sk_")
	f.Add("")
	f.Add("a_" + strings.Repeat("0", 49))
	f.Fuzz(func(t *testing.T, in string) {
		if !ParseKey(in) {
			return
		}
		// Whatever parses has the documented shape and a matching checksum.
		sep := strings.LastIndexByte(in, '_')
		if len(in)-sep-1 != bodyLen || !ValidKeyPrefix(in[:sep]) {
			t.Fatalf("ParseKey accepted %q", in)
		}
		sum, ok := decodeBase62Uint32(in[len(in)-checksumLen:])
		if !ok || sum != crc32.ChecksumIEEE([]byte(in[:len(in)-checksumLen])) {
			t.Fatalf("ParseKey accepted %q with a wrong checksum", in)
		}
	})
}

// TestCheckAllocs: checking and hashing a presented key, done for every
// verification and bearer, allocate nothing.
func TestCheckAllocs(t *testing.T) {
	s, _ := GenerateKey("sk")
	if n := testing.AllocsPerRun(100, func() {
		if !ParseKey(s.Plaintext) || HashKey(s.Plaintext) != s.Hash {
			t.Fatal("wrong answer")
		}
	}); n != 0 {
		t.Fatalf("%v allocations, want 0", n)
	}
}

// BenchmarkCheckKey is what every verification and bearer check does to a
// presented key before the index: the shape and checksum, then the hash.
func BenchmarkCheckKey(b *testing.B) {
	s, _ := GenerateKey("sk")
	b.ReportAllocs()
	for b.Loop() {
		if !ParseKey(s.Plaintext) || HashKey(s.Plaintext) != s.Hash {
			b.Fatal("wrong answer")
		}
	}
}

func BenchmarkParseKey(b *testing.B) {
	s, _ := GenerateKey("sk")
	for b.Loop() {
		if !ParseKey(s.Plaintext) {
			b.Fatal("wrong answer")
		}
	}
}
