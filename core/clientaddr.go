package core

import (
	"net/netip"
	"strings"
)

const (
	// maxHops bounds the forwarded entries read, from the right: no real
	// chain of trusted proxies is longer.
	maxHops = 32
	// maxHopLen is the longest entry worth parsing, "[v6%zone]:port" with
	// room to spare; the search for an entry's start never looks further
	// back, so a huge header costs no more than a short one.
	maxHopLen = 64
)

// ForwardedClient is for adapters whose app configured trusted reverse
// proxies. Given the values of a forwarded-for header (X-Forwarded-For:
// every header line, comma separated) that a trusted peer sent, it walks
// the entries from the right, the last hop first, and returns the first
// address that trusted does not claim: each proxy appends the address of
// its own peer, so everything left of what the trusted proxies wrote is the
// client's to choose. When every entry is trusted the leftmost is the
// client. It reports false on an entry that is not an address (a proxy that
// writes one cannot be read) and after 32 entries; the caller then uses
// the peer address.
//
// Addresses come back without a zone and IPv4-in-IPv6 as IPv4, so that the
// server's per-address throttles see one form of each address.
func ForwardedClient(values []string, trusted func(netip.Addr) bool) (netip.Addr, bool) {
	var last netip.Addr
	hops := 0
	for i := len(values) - 1; i >= 0; i-- {
		v := values[i]
		for {
			if hops == maxHops {
				return netip.Addr{}, false
			}
			hops++
			from := max(0, len(v)-maxHopLen-1)
			comma := strings.LastIndexByte(v[from:], ',')
			var entry string
			if comma < 0 {
				if from > 0 {
					return netip.Addr{}, false // an entry too long to be an address
				}
				entry, v = v, ""
			} else {
				entry, v = v[from+comma+1:], v[:from+comma]
			}
			a, ok := ParseHop(strings.TrimSpace(entry))
			if !ok {
				return netip.Addr{}, false
			}
			if !trusted(a) {
				return a, true
			}
			last = a
			if comma < 0 {
				break
			}
		}
	}
	return last, last.IsValid()
}

// ParseHop reads one address as peers and proxies write it: "ip",
// "ip:port", "[ipv6]" or "[ipv6]:port" (at most 64 bytes). The address
// comes back without a zone (it means nothing off its host) and IPv4 in
// IPv6 as plain IPv4.
func ParseHop(s string) (netip.Addr, bool) {
	if len(s) > maxHopLen {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		ap, perr := netip.ParseAddrPort(s)
		switch {
		case perr == nil:
			a = ap.Addr()
		case len(s) > 2 && s[0] == '[' && s[len(s)-1] == ']':
			if a, err = netip.ParseAddr(s[1 : len(s)-1]); err != nil {
				return netip.Addr{}, false
			}
		default:
			return netip.Addr{}, false
		}
	}
	return a.Unmap().WithZone(""), true
}
