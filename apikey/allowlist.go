package apikey

import (
	"fmt"
	"net/netip"
	"strings"
)

// Allowlist is the set of client addresses a key may be used from (SPEC
// §9). A nil Allowlist allows every address. Entries are kept in the form
// they were given, normalised: single addresses as /32 or /128 prefixes,
// IPv4-mapped IPv6 as IPv4.
type Allowlist []netip.Prefix

// ParseAllowlist reads 1–MaxAllowlistEntries addresses or CIDRs. A CIDR
// with host bits set (10.0.0.1/8) is refused rather than silently masked:
// the customer meant something, and we would guess. It returns one message
// per bad entry, keyed by its index, so that the caller can name
// ip_allowlist[3].
func ParseAllowlist(entries []string) (Allowlist, map[int]string, error) {
	if len(entries) == 0 {
		return nil, nil, fmt.Errorf("must have at least 1 entry (null allows every address)")
	}
	if len(entries) > MaxAllowlistEntries {
		return nil, nil, fmt.Errorf("must have at most %d entries, got %d", MaxAllowlistEntries, len(entries))
	}
	list := make(Allowlist, 0, len(entries))
	var bad map[int]string
	for i, e := range entries {
		p, err := parseAllowEntry(e)
		if err != nil {
			if bad == nil {
				bad = map[int]string{}
			}
			bad[i] = err.Error()
			continue
		}
		list = append(list, p)
	}
	if bad != nil {
		return nil, bad, nil
	}
	return list, nil, nil
}

func parseAllowEntry(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("is not an IP address or CIDR")
		}
		if p.Addr().Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("must not carry an IPv6 zone")
		}
		if p.Masked() != p {
			return netip.Prefix{}, fmt.Errorf("has host bits set: did you mean %s?", p.Masked())
		}
		if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		return p, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("is not an IP address or CIDR")
	}
	if a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("must not carry an IPv6 zone")
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// Allows reports whether addr may use the key. An invalid addr (a client
// address that could not be read) is never allowed by a non-nil list.
// IPv4-mapped IPv6 addresses are compared as IPv4.
func (l Allowlist) Allows(addr netip.Addr) bool {
	if l == nil {
		return true
	}
	if !addr.IsValid() {
		return false
	}
	addr = addr.Unmap().WithZone("")
	for _, p := range l {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// Strings returns the entries as the API shows them: a single address
// without its prefix length, a network as a CIDR.
func (l Allowlist) Strings() []string {
	if l == nil {
		return nil
	}
	out := make([]string, len(l))
	for i, p := range l {
		if p.IsSingleIP() {
			out[i] = p.Addr().String()
		} else {
			out[i] = p.String()
		}
	}
	return out
}

// Encode returns the list as the stores keep it: the entries of Strings
// joined by ","; empty for nil.
func (l Allowlist) Encode() string { return strings.Join(l.Strings(), ",") }

// DecodeAllowlist reads what Encode wrote; "" is nil (any address).
func DecodeAllowlist(s string) (Allowlist, error) {
	if s == "" {
		return nil, nil
	}
	l, bad, err := ParseAllowlist(strings.Split(s, ","))
	if err == nil && bad != nil {
		err = fmt.Errorf("bad entries %v", bad)
	}
	return l, err
}
