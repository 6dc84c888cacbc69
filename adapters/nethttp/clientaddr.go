package nethttp

import (
	"net/http"
	"net/netip"

	"github.com/oauth2kit/oauth2kit/core"
)

// clientAddr is r's client address: the peer's, or when the peer is one of
// the trusted proxies, the one they report (core.ForwardedClient).
func clientAddr(r *http.Request, proxies []netip.Prefix) string {
	peer, ok := core.ParseHop(r.RemoteAddr)
	if !ok || !trusted(peer, proxies) {
		return r.RemoteAddr
	}
	if client, ok := core.ForwardedClient(r.Header.Values("X-Forwarded-For"), func(a netip.Addr) bool { return trusted(a, proxies) }); ok {
		return client.String()
	}
	return r.RemoteAddr
}

func trusted(a netip.Addr, proxies []netip.Prefix) bool {
	for _, p := range proxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
