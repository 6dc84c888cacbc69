// Package fiberadapter mounts an oauth2kit server on fiber (v2) and
// protects handlers with its token check.
//
//	srv, _ := core.New(cfg, store, auth)
//	app := fiber.New()
//	fiberadapter.Mount(app, srv) // /oauth2/token, ... and the metadata
//	app.Get("/api/me", fiberadapter.Middleware(srv), func(c *fiber.Ctx) error {
//		info, _ := fiberadapter.TokenInfo(c)
//		return c.SendString(info.UserID)
//	})
//
// Fiber runs on fasthttp, which reuses the memory behind every request
// value once the handler returns. The adapter copies the request values it
// hands to the server (method, path, query, header values), and the server
// copies what it keeps; the Body reader and *fiber.Ctx itself are valid only
// while the handler runs.
//
// # The client address
//
// The server counts failed client authentications and logins per client
// address (core.Request.RemoteAddr), so that address must be the client's
// and not one it picks. Behind a reverse proxy, tell fiber which peers are
// proxies and which header they report the client in:
//
//	app := fiber.New(fiber.Config{
//		EnableTrustedProxyCheck: true,
//		TrustedProxies:          []string{"10.0.0.0/8"},
//		ProxyHeader:             fiber.HeaderXForwardedFor,
//	})
//
// A request whose peer passes fiber's check (c.IsProxyTrusted) then counts
// under the rightmost address in ProxyHeader that is not itself in
// TrustedProxies: each proxy appends its peer to X-Forwarded-For, so what
// lies left of the last trusted hop the client wrote itself (c.IP(), which
// takes the first address, would let it choose). A header a proxy sets
// whole (X-Real-IP) has one address. In every other case the address is
// the peer's: without EnableTrustedProxyCheck fiber believes ProxyHeader
// from anyone, and an entry that is not an IP address (or more than 32
// trusted hops) cannot be read.
package fiberadapter
