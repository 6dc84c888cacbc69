package fiberadapter_test

import (
	"crypto/tls"
	"net"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	fiberadapter "github.com/oauth2kit/oauth2kit/adapters/fiber"
	"github.com/oauth2kit/oauth2kit/core"
	"github.com/oauth2kit/oauth2kit/core/adaptertest"
)

// TestMTLSOverRealTLS: certificate-bound tokens (RFC 8705) through the
// fiber mount and MiddlewareFor, on a TLS listener that asks for client
// certificates (fasthttp's TLSConnectionState).
func TestMTLSOverRealTLS(t *testing.T) {
	adaptertest.RunMTLS(t, func(t *testing.T, config *tls.Config, newServer func(string) *core.Server) string {
		ln, _ := listen(t)
		base := "https://" + ln.Addr().String()
		s := newServer(base)
		app := fiber.New(fiber.Config{DisableStartupMessage: true})
		fiberadapter.Mount(app, s)
		app.Get(adaptertest.PathBound, fiberadapter.MiddlewareFor(s, "", adaptertest.BoundScope), func(c *fiber.Ctx) error {
			info, _ := fiberadapter.TokenInfo(c)
			c.Set("Content-Type", "application/json")
			return c.Send(adaptertest.BoundResponse(info))
		})
		serve(t, app, tls.NewListener(ln, config))
		return base
	})
}

// Without TLS a fiber request has no certificate; PeerAddr is the
// connection's peer.
func TestRequestPeerCapabilities(t *testing.T) {
	app := fiber.New()
	fctx := &fasthttp.RequestCtx{}
	fctx.SetRemoteAddr(&net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 443})
	c := app.AcquireCtx(fctx)
	defer app.ReleaseCtx(c)
	adaptertest.CheckPeerCapabilities(t, fiberadapter.Request(c), nil, "10.0.0.1:443")
}
