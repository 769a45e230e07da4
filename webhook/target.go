package webhook

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"net/url"
	"strings"
)

// MaxURLLen is the longest webhook URL accepted.
const MaxURLLen = 2048

// nonPublic lists the address ranges a webhook may never reach outside
// insecure mode, beyond what netip's predicates already catch: shared
// address space, benchmarking, documentation, reserved and translation
// prefixes through which a private address could be reached.
var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b::/96"),
	netip.MustParsePrefix("64:ff9b:1::/48"),
	netip.MustParsePrefix("100::/64"),
	netip.MustParsePrefix("2001::/23"),
	netip.MustParsePrefix("2001:db8::/32"),
	netip.MustParsePrefix("2002::/16"),
	netip.MustParsePrefix("fc00::/7"),
	netip.MustParsePrefix("fec0::/10"),
}

// PublicAddr reports whether ip is a public unicast address that a webhook
// may be delivered to.
func PublicAddr(ip netip.Addr) bool {
	ip = ip.Unmap()
	if !ip.IsValid() || ip.IsLoopback() || ip.IsPrivate() || ip.IsUnspecified() ||
		ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip.IsInterfaceLocalMulticast() ||
		ip.IsMulticast() || ip.Zone() != "" {
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(ip) {
			return false
		}
	}
	return ip != netip.AddrFrom4([4]byte{255, 255, 255, 255})
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
