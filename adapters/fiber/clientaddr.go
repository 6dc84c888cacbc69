package fiberadapter

import (
	"net/netip"
	"strings"
)

const (
	// maxHops bounds the ProxyHeader entries read, from the right: no real
	// chain of trusted proxies is longer.
	maxHops = 32
	// maxHopLen is the longest entry worth parsing, "[v6%zone]:port" with
	// room to spare; the search for an entry's start never looks further
	// back, so a huge header costs no more than a short one.
	maxHopLen = 64
)

// clientAddr is q's client address. Only with EnableTrustedProxyCheck does
// fiber tell proxies from clients (without it, c.IP() believes ProxyHeader
// from anyone); then a peer it trusts (c.IsProxyTrusted) reports the
// client in ProxyHeader.
func clientAddr(q request) string {
	peer := q.c.Context().RemoteAddr().String()
	cfg := q.c.App().Config()
	if !cfg.EnableTrustedProxyCheck || cfg.ProxyHeader == "" || !q.c.IsProxyTrusted() {
		return peer
	}
	if a, ok := forwardedFor(q.Header(cfg.ProxyHeader), cfg.TrustedProxies); ok {
		return a.String()
	}
	return peer
}

// forwardedFor walks the header's entries (every line, comma separated)
// from the right, the last hop first, and returns the first that is not a
// trusted proxy. c.IP() takes the first entry instead; but a proxy appends
// the address of its peer to X-Forwarded-For, so everything left of what
// the trusted proxies wrote is the client's to choose. A header a proxy
// sets whole (X-Real-IP, CF-Connecting-IP) has one entry, and reads the
// same either way. When every entry is a trusted proxy the leftmost is the
// client. It gives up (false) on an entry that is not an address, and
// after maxHops entries.
func forwardedFor(values, proxies []string) (netip.Addr, bool) {
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
			a, ok := parseHop(strings.TrimSpace(entry))
			if !ok {
				return netip.Addr{}, false
			}
			if !trusted(a, proxies) {
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

// parseHop reads "ip", "ip:port", "[ipv6]" or "[ipv6]:port". The address
// comes back without a zone (it means nothing off its host) and IPv4 in
// IPv6 as plain IPv4, so that the trusted list and the server's
// per-address counts see one form.
func parseHop(s string) (netip.Addr, bool) {
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

// trusted reports whether a is in Config.TrustedProxies, read as fiber
// reads it: an entry with a slash is a range, any other one address.
// fiber keeps its parsed list private; netip parses without allocating.
func trusted(a netip.Addr, proxies []string) bool {
	for _, s := range proxies {
		if strings.Contains(s, "/") {
			if p, err := netip.ParsePrefix(s); err == nil && p.Contains(a) {
				return true
			}
		} else if b, err := netip.ParseAddr(s); err == nil && b.Unmap().WithZone("") == a {
			return true
		}
	}
	return false
}
