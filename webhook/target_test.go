package webhook

import (
	"errors"
	"net/netip"
	"testing"
)

// TestPublicAddr: only globally reachable addresses are public; an IPv6
// address that carries an IPv4 one is judged by it, whatever the form.
func TestPublicAddr(t *testing.T) {
	for _, tc := range []struct {
		addr string
		ok   bool
	}{
		{"93.184.215.14", true},
		{"8.8.8.8", true},
		{"2606:2800:21f:cb07:6820:80da:af6b:8b2c", true},
		{"2a00:1450:4001:80b::200e", true},
		{"::ffff:8.8.8.8", true},    // IPv4-mapped, public
		{"64:ff9b::808:808", true},  // NAT64 of 8.8.8.8
		{"2002:808:808::1", true},   // 6to4 of 8.8.8.8
		{"::127.0.0.1", false},      // IPv4-compatible loopback
		{"::8.8.8.8", false},        // IPv4-compatible: deprecated, not routed
		{"::a00:1", false},          // IPv4-compatible 10.0.0.1
		{"::ffff:0:7f00:1", false},  // IPv4-translated 127.0.0.1
		{"::ffff:0:808:808", false}, // IPv4-translated: not global
		{"::ffff:127.0.0.1", false}, // IPv4-mapped loopback
		{"::ffff:10.0.0.1", false},
		{"::ffff:169.254.169.254", false},
		{"64:ff9b::7f00:1", false},                      // NAT64 of loopback
		{"64:ff9b::a9fe:a9fe", false},                   // NAT64 of 169.254.169.254
		{"64:ff9b::c0a8:1", false},                      // NAT64 of 192.168.0.1
		{"64:ff9b:1::a00:1", false},                     // local-use NAT64
		{"2002:7f00:1::1", false},                       // 6to4 of 127.0.0.1
		{"2002:a00:1::1", false},                        // 6to4 of 10.0.0.1
		{"2002:a9fe:a9fe::", false},                     // 6to4 of 169.254.169.254
		{"2001:0:4136:e378:8000:63bf:3fff:fdd2", false}, // Teredo
		{"2001:0:a00:1::f5ff:fffe", false},              // Teredo with a private server
		{"3fff::1", false},                              // documentation (RFC 9637)
		{"5f00::1", false},                              // SRv6 SIDs
		{"2001:db8::1", false},                          // documentation
		{"100::1", false},                               // discard-only
		{"fc00::1", false},                              // ULA
		{"fd12:3456::1", false},                         // ULA
		{"fe80::1", false},                              // link local
		{"fec0::1", false},                              // site local
		{"ff02::1", false},                              // multicast
		{"::", false},                                   // unspecified
		{"::1", false},                                  // loopback
		{"4000::1", false},                              // unallocated, outside 2000::/3
		{"127.0.0.1", false},
		{"10.1.2.3", false},
		{"172.16.0.1", false},
		{"192.168.0.1", false},
		{"169.254.169.254", false},
		{"100.64.0.1", false},
		{"0.0.0.0", false},
		{"192.0.0.8", false},
		{"192.0.2.1", false},
		{"192.88.99.1", false},
		{"198.18.0.1", false},
		{"198.51.100.1", false},
		{"203.0.113.1", false},
		{"224.0.0.1", false},
		{"240.0.0.1", false},
		{"255.255.255.255", false},
	} {
		if got := PublicAddr(netip.MustParseAddr(tc.addr)); got != tc.ok {
			t.Errorf("PublicAddr(%s) = %v, want %v", tc.addr, got, tc.ok)
		}
	}
	if PublicAddr(netip.MustParseAddr("2606:2800:21f:cb07:6820:80da:af6b:8b2c%eth0")) {
		t.Error("an address with a zone is public")
	}
}

// TestCheckURLTargets: CheckURL refuses the literal addresses PublicAddr
// refuses, in URL form, and ports no connection can be made to.
func TestCheckURLTargets(t *testing.T) {
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"https://93.184.215.14/h", true},
		{"https://93.184.215.14:8443/h", true},
		{"https://93.184.215.14:65535/h", true},
		{"https://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]:443/h", true},
		{"https://[::127.0.0.1]:8443/h", false},
		{"https://[::a00:1]/h", false},
		{"https://[::ffff:0:7f00:1]/h", false},
		{"https://[::ffff:7f00:1]/h", false},
		{"https://[3fff::1]/h", false},
		{"https://[5f00::1]/h", false},
		{"https://[2002:7f00:1::1]/h", false},
		{"https://[64:ff9b::a9fe:a9fe]/h", false},
		{"https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/h", false},
		{"https://93.184.215.14:0/h", false},
		{"https://93.184.215.14:99999/h", false},
		{"https://93.184.215.14:65536/h", false},
		{"https://93.184.215.14:00000/h", false},
		{"https://example.com:0/h", false},
	} {
		err := Policy{}.CheckURL(t.Context(), tc.url)
		if (err == nil) != tc.ok {
			t.Errorf("CheckURL(%s) = %v, want ok=%v", tc.url, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrTarget) {
			t.Errorf("CheckURL(%s) = %v, not ErrTarget", tc.url, err)
		}
	}
	// A port is a port in insecure mode too.
	if err := (Policy{Insecure: true}).CheckURL(t.Context(), "http://127.0.0.1:99999/h"); !errors.Is(err, ErrTarget) {
		t.Errorf("insecure CheckURL with port 99999: %v", err)
	}
}
