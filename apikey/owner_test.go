package apikey

import (
	"net/netip"
	"strings"
	"testing"
)

func TestValidOwnerID(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"user_123", true},
		{"alice@example.com", true},
		{"team:eng.platform-1", true},
		{strings.Repeat("a", MaxOwnerIDLen), true},
		{"", false},
		{strings.Repeat("a", MaxOwnerIDLen+1), false},
		{"has space", false},
		{"slash/es", false},
		{"ünïcode", false},
		{"star*", false},
	} {
		if got := ValidOwnerID(tc.in); got != tc.want {
			t.Errorf("ValidOwnerID(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestCompactMeta(t *testing.T) {
	many := func(n int) string {
		var b strings.Builder
		b.WriteString("{")
		for i := range n {
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString(`"k` + strings.Repeat("x", i) + `":1`)
		}
		b.WriteString("}")
		return b.String()
	}
	t.Run("OK", func(t *testing.T) {
		got, err := CompactMeta([]byte(" {\n \"plan\" : \"pro\", \"n\": [1, 2] } "))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != `{"plan":"pro","n":[1,2]}` {
			t.Errorf("compact form = %s", got)
		}
	})
	t.Run("OK64Members", func(t *testing.T) {
		if _, err := CompactMeta([]byte(many(MaxMetaMembers))); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("OKExactly4096", func(t *testing.T) {
		body := `{"a":"` + strings.Repeat("x", MaxMetaBytes-8) + `"}`
		if len(body) != MaxMetaBytes {
			t.Fatalf("fixture is %d bytes", len(body))
		}
		if _, err := CompactMeta([]byte(body)); err != nil {
			t.Fatal(err)
		}
	})
	for name, in := range map[string]string{
		"ErrArray":      `[1]`,
		"ErrString":     `"x"`,
		"ErrNull":       `null`,
		"ErrBroken":     `{"a":`,
		"Err65Members":  many(MaxMetaMembers + 1),
		"ErrTooLarge":   `{"a":"` + strings.Repeat("x", MaxMetaBytes-7) + `"}`,
		"ErrTrailing":   `{"a":1} {"b":2}`,
		"ErrEmptyInput": ``,
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := CompactMeta([]byte(in)); err == nil {
				t.Errorf("CompactMeta(%.40q) accepted", in)
			}
		})
	}
}

func TestParseRevocationReason(t *testing.T) {
	if r, err := ParseRevocationReason(""); err != nil || r != RevocationUnspecified {
		t.Errorf(`"" = %q, %v; want unspecified`, r, err)
	}
	for _, r := range RevocationReasons {
		if got, err := ParseRevocationReason(string(r)); err != nil || got != r {
			t.Errorf("%q = %q, %v", r, got, err)
		}
	}
	for _, bad := range []string{"compromised", "KEY_COMPROMISE", " superseded"} {
		if _, err := ParseRevocationReason(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestParseImportHash(t *testing.T) {
	plain := "legacy_live_abc"
	h := HashKey(plain)
	got, err := ParseImportHash("sha256:" + h.String())
	if err != nil || got != h {
		t.Fatalf("round trip: %v, %v", got, err)
	}
	for _, bad := range []string{
		h.String(),
		"sha256:" + strings.ToUpper(h.String()),
		"sha256:" + h.String()[:63],
		"sha256:" + h.String() + "0",
		"sha1:" + h.String(),
		"sha256:" + strings.Repeat("g", 64),
	} {
		if _, err := ParseImportHash(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestAllowlist(t *testing.T) {
	list, bad, err := ParseAllowlist([]string{"203.0.113.7", "10.0.0.0/8", "2001:db8::/32", "::ffff:192.0.2.1", "::ffff:198.51.100.0/120"})
	if err != nil || bad != nil {
		t.Fatalf("parse: %v %v", bad, err)
	}
	if got := strings.Join(list.Strings(), ","); got != "203.0.113.7,10.0.0.0/8,2001:db8::/32,192.0.2.1,198.51.100.0/24" {
		t.Errorf("Strings() = %s", got)
	}
	for _, tc := range []struct {
		addr string
		want bool
	}{
		{"203.0.113.7", true},
		{"203.0.113.8", false},
		{"10.200.3.4", true},
		{"11.0.0.1", false},
		{"2001:db8:1::5", true},
		{"2001:db9::1", false},
		{"::ffff:203.0.113.7", true}, // mapped client address, compared as IPv4
		{"::ffff:10.1.1.1", true},
		{"192.0.2.1", true}, // mapped entry, compared as IPv4
		{"198.51.100.77", true},
		{"fe80::1%eth0", false},
	} {
		if got := list.Allows(netip.MustParseAddr(tc.addr)); got != tc.want {
			t.Errorf("Allows(%s) = %v, want %v", tc.addr, got, tc.want)
		}
	}
	if list.Allows(netip.Addr{}) {
		t.Error("an unknown client address is allowed")
	}
	if !Allowlist(nil).Allows(netip.Addr{}) {
		t.Error("a nil list must allow every address")
	}
}

func TestParseAllowlistErrors(t *testing.T) {
	if _, _, err := ParseAllowlist(nil); err == nil {
		t.Error("an empty list is accepted")
	}
	if _, _, err := ParseAllowlist(make([]string, MaxAllowlistEntries+1)); err == nil {
		t.Error("101 entries accepted")
	}
	_, bad, err := ParseAllowlist([]string{"10.0.0.1", "10.0.0.1/8", "not-an-ip", "2001:db8::1/32", "fe80::1%eth0", "300.1.1.1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{1, 2, 3, 4, 5} {
		if bad[i] == "" {
			t.Errorf("entry %d accepted", i)
		}
	}
	if _, ok := bad[0]; ok {
		t.Errorf("entry 0 refused: %s", bad[0])
	}
	if !strings.Contains(bad[1], "10.0.0.0/8") {
		t.Errorf("host-bits message does not suggest the network: %s", bad[1])
	}
}
