package fiberadapter

import (
	"net/netip"
	"strings"

	"github.com/oauth2kit/oauth2kit/core"
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
	if a, ok := core.ForwardedClient(q.Header(cfg.ProxyHeader), func(a netip.Addr) bool { return trusted(a, cfg.TrustedProxies) }); ok {
		return a.String()
	}
	return peer
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
