package nethttp

import (
	"net/http"
	"net/netip"
	"strings"
)

const (
	// maxHops bounds the X-Forwarded-For entries read, from the right:
	// no real chain of trusted proxies is longer.
	maxHops = 32
	// maxHopLen is the longest entry worth parsing, "[v6%zone]:port" with
	// room to spare; the search for an entry's start never looks further
	// back, so a huge header costs no more than a short one.
	maxHopLen = 64
)

// clientAddr is r's client address: the peer's, or when the peer is one of
// the trusted proxies, the one they report (forwardedFor).
func clientAddr(r *http.Request, proxies []netip.Prefix) string {
	peer, ok := parseHop(r.RemoteAddr)
	if !ok || !trusted(peer, proxies) {
		return r.RemoteAddr
	}
	if client, ok := forwardedFor(r.Header.Values("X-Forwarded-For"), proxies); ok {
		return client.String()
	}
	return r.RemoteAddr
}

// forwardedFor walks the X-Forwarded-For entries (every header line, comma
// separated) from the right, the last hop first, and returns the first
// that is not a trusted proxy: each proxy appends the address of its own
// peer, so everything left of it is the client's to write. When every
// entry is a trusted proxy the leftmost is the client. It gives up (false)
// on an entry that is not an address, as a proxy that writes one cannot be
// read, and after maxHops entries.
func forwardedFor(values []string, proxies []netip.Prefix) (netip.Addr, bool) {
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
// IPv6 as plain IPv4, so that prefixes and the server's per-address counts
// see one form.
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

func trusted(a netip.Addr, proxies []netip.Prefix) bool {
	for _, p := range proxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
