package webhook

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// MaxURLLen is the longest webhook URL accepted.
const MaxURLLen = 2048

// PublicAddr reports whether ip is an address a webhook may be delivered
// to: one that IANA's special-purpose address registries (IPv4 and IPv6)
// do not mark as not globally reachable. An IPv6 address that stands for
// an IPv4 one — IPv4-mapped (::ffff:a.b.c.d), NAT64 (64:ff9b::/96) and
// 6to4 (2002:aabb:ccdd::/48) — is judged by the IPv4 address it embeds.
// Other IPv6 addresses must be global unicast (2000::/3) outside the
// registry's non-global blocks, which rules out the deprecated
// IPv4-compatible (::a.b.c.d) and IPv4-translated (::ffff:0:a.b.c.d) forms,
// Teredo (2001::/32, in 2001::/23), SRv6 SIDs (5f00::/16), ULA, link- and
// site-local, multicast and the documentation prefixes. A zone (fe80::1%eth0)
// is never public.
func PublicAddr(ip netip.Addr) bool {
	if !ip.IsValid() || ip.Zone() != "" {
		return false
	}
	if v4, ok := embeddedIPv4(ip); ok {
		return publicIPv4(v4)
	}
	if !globalUnicast6.Contains(ip) {
		return false
	}
	for _, p := range nonGlobal6 {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

// embeddedIPv4 returns the IPv4 address ip is, or stands for.
func embeddedIPv4(ip netip.Addr) (netip.Addr, bool) {
	if ip.Is4() || ip.Is4In6() {
		return ip.Unmap(), true
	}
	b := ip.As16()
	switch {
	case nat64.Contains(ip):
		return netip.AddrFrom4([4]byte(b[12:16])), true
	case sixToFour.Contains(ip):
		return netip.AddrFrom4([4]byte(b[2:6])), true
	}
	return netip.Addr{}, false
}

// publicIPv4 reports whether ip is an IPv4 address outside every block of
// IANA's IPv4 special-purpose registry that is not globally reachable (and
// outside multicast and broadcast).
func publicIPv4(ip netip.Addr) bool {
	for _, p := range nonGlobal4 {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

var (
	globalUnicast6 = netip.MustParsePrefix("2000::/3")
	nat64          = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour      = netip.MustParsePrefix("2002::/16")
)

// nonGlobal4 is IANA's IPv4 special-purpose address registry
// (iana-ipv4-special-registry, 2024) where "Globally Reachable" is False or
// N/A, the deprecated 6to4 relay anycast block, multicast and the
// limited broadcast address. Its few globally reachable exceptions inside
// 192.0.0.0/24 (192.0.0.9, 192.0.0.10) are not webhook targets either.
var nonGlobal4 = prefixes(
	"0.0.0.0/8",          // "this network"
	"10.0.0.0/8",         // private
	"100.64.0.0/10",      // shared address space (CGN)
	"127.0.0.0/8",        // loopback
	"169.254.0.0/16",     // link local
	"172.16.0.0/12",      // private
	"192.0.0.0/24",       // IETF protocol assignments
	"192.0.2.0/24",       // documentation (TEST-NET-1)
	"192.88.99.0/24",     // 6to4 relay anycast (deprecated)
	"192.168.0.0/16",     // private
	"198.18.0.0/15",      // benchmarking
	"198.51.100.0/24",    // documentation (TEST-NET-2)
	"203.0.113.0/24",     // documentation (TEST-NET-3)
	"224.0.0.0/4",        // multicast
	"240.0.0.0/4",        // reserved
	"255.255.255.255/32", // limited broadcast
)

// nonGlobal6 is IANA's IPv6 special-purpose address registry
// (iana-ipv6-special-registry, 2024) where "Globally Reachable" is False,
// as far as it lies inside 2000::/3: everything outside it (::/128, ::1,
// 64:ff9b:1::/48, 100::/64, 5f00::/16, fc00::/7, fe80::/10, ff00::/8, …)
// is refused already.
var nonGlobal6 = prefixes(
	"2001::/23",     // IETF protocol assignments, Teredo (2001::/32) among them
	"2001:db8::/32", // documentation
	"3fff::/20",     // documentation (RFC 9637)
)

func prefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

// validPort reports whether port, the digits url.Parse found after the
// host, names a TCP port a connection can be made to.
func validPort(port string) bool {
	n, err := strconv.Atoi(port)
	return err == nil && n >= 1 && n <= 65535
}

// Policy decides which webhook targets are allowed.
type Policy struct {
	// Insecure allows http:// and private or loopback targets, for
	// development and tests only.
	Insecure bool
	// Resolver looks host names up; nil means net.DefaultResolver.
	Resolver *net.Resolver
}

// ErrTarget is wrapped by every refusal of a webhook target.
var ErrTarget = errors.New("webhook target not allowed")

type targetError struct{ msg string }

func (e *targetError) Error() string        { return e.msg }
func (e *targetError) Is(target error) bool { return target == ErrTarget }

func refuse(msg string) error { return &targetError{msg: msg} }

// CheckURL validates a webhook URL when it is configured: absolute, https,
// no credentials, at most 2048 bytes, and a host that is public. A host name
// is resolved and refused if any of its addresses is not public; a name that
// does not resolve yet is accepted, because every delivery checks the
// address it actually connects to again (see Dialer). The error message is
// fit to show to the API caller.
func (p Policy) CheckURL(ctx context.Context, raw string) error {
	if len(raw) > MaxURLLen {
		return refuse("must be at most 2048 characters")
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "" {
		return refuse("must be an absolute URL")
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && p.Insecure:
	default:
		return refuse("must use https")
	}
	if u.User != nil {
		return refuse("must not contain credentials")
	}
	if u.Fragment != "" {
		return refuse("must not contain a fragment")
	}
	if port := u.Port(); port != "" && !validPort(port) {
		return refuse("must have a port between 1 and 65535")
	}
	if p.Insecure {
		return nil
	}
	host := u.Hostname()
	if ip, err := netip.ParseAddr(host); err == nil {
		if !PublicAddr(ip) {
			return refuse("must point to a public address")
		}
		return nil
	}
	lower := strings.TrimSuffix(strings.ToLower(host), ".")
	if lower == "localhost" || strings.HasSuffix(lower, ".localhost") || !strings.Contains(lower, ".") {
		return refuse("must point to a public host name")
	}
	resolver := p.Resolver
	if resolver == nil {
		resolver = net.DefaultResolver
	}
	addrs, err := resolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil // not resolvable now; checked again at connect time
	}
	for _, a := range addrs {
		if !PublicAddr(a) {
			return refuse("must point to a public address")
		}
	}
	return nil
}
