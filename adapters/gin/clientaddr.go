package ginadapter

import (
	"net/http"
	"net/netip"

	"github.com/gin-gonic/gin"
)

// clientAddr is the address c.ClientIP() gives, unless gin took it from a
// header only because it trusts every peer (its default): then the peer's.
func clientAddr(c *gin.Context) string {
	peer := c.Request.RemoteAddr
	ip, err := netip.ParseAddr(c.ClientIP())
	if err != nil {
		// Nothing usable (a platform header need not hold an address):
		// the peer, rather than a string anyone could fill.
		return peer
	}
	ip = ip.Unmap().WithZone("")
	p, perr := netip.ParseAddrPort(peer)
	if perr == nil && p.Addr().Unmap().WithZone("") == ip {
		return peer // gin answered with the peer itself
	}
	if trustsEveryPeer(c, p.Addr()) {
		return peer
	}
	return ip.String()
}

// trustsEveryPeer reports whether gin took c's client address from a
// forwarding header (Engine.RemoteIPHeaders) because it trusts every peer:
// gin's default until the app calls Engine.SetTrustedProxies, and always
// on a unix socket. gin keeps its list private, so this asks ClientIP
// about two altered copies of the request, relying only on what gin
// documents of it: a platform header (Engine.TrustedPlatform) is taken
// from any peer, forwarding headers only from a trusted peer, and a
// forwarding header that does not parse is ignored.
func trustsEveryPeer(c *gin.Context, peer netip.Addr) bool {
	// The unspecified address is gin's own test for trusting everyone
	// (it warns of that configuration); no list of real proxies holds it.
	unspecified := "0.0.0.0:0"
	if peer.Is6() && !peer.Is4In6() {
		unspecified = "[::]:0"
	}
	r := *c.Request
	r.RemoteAddr = unspecified
	probe := c.Copy()
	probe.Request = &r
	if a, err := netip.ParseAddr(probe.ClientIP()); err == nil && a.IsUnspecified() {
		return false // the app's list of proxies holds the real peer
	}
	// The unspecified peer got the same answer: gin trusts everyone, or a
	// platform header named the client. End every header with a value
	// that is no address: forwarding headers no longer parse (gin reads
	// their values joined, from the right), a platform header keeps its
	// first value.
	h := make(http.Header, len(r.Header))
	for k, vs := range r.Header {
		if len(vs) > 0 {
			h[k] = []string{vs[0], "_"}
		}
	}
	r.Header = h
	a, err := netip.ParseAddr(probe.ClientIP())
	return err != nil || a.IsUnspecified()
}
