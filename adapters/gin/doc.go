// Package ginadapter mounts an oauth2kit server on gin and protects gin
// handlers with its token check.
//
//	srv, _ := core.New(cfg, store, auth)
//	r := gin.New()
//	ginadapter.Mount(r, srv) // /oauth2/token, ..., the metadata
//	api := r.Group("/api", ginadapter.Middleware(srv, "read"))
//	api.GET("/me", func(c *gin.Context) {
//		info, _ := ginadapter.TokenInfo(c)
//		c.JSON(200, gin.H{"sub": info.UserID})
//	})
//
// The endpoint paths of core.Config are the paths requests arrive with,
// group prefix included: to mount on r.Group("/auth"), set them under
// /auth (Config.Paths.Token "/auth/oauth2/token", ...) and Mount registers
// each relative to the group. The form actions and the metadata the
// server publishes are built from those paths, so they stay right.
//
// # The client address
//
// The server counts failed client authentications and logins per client
// address (core.Request.RemoteAddr), so that address must be the client's
// and not one it picks. It is c.ClientIP() once the app has told gin whom
// to trust:
//
//	r.SetTrustedProxies([]string{"10.0.0.0/8"}) // the proxies in front; X-Forwarded-For, X-Real-IP from them
//	r.TrustedPlatform = gin.PlatformCloudflare  // or the header a platform sets
//
// Otherwise it is the peer of the connection, r.RemoteAddr. gin's own
// default trusts the forwarding headers (Engine.RemoteIPHeaders) from every
// peer, which would let any client name its address: that default counts
// as nothing configured, as does a trusted list holding every address
// (0.0.0.0/0 or ::/0). So does a unix socket, where gin trusts every peer
// whatever the list: behind a proxy on a unix socket, set TrustedPlatform
// to the header the proxy sets. An answer of ClientIP that is not an IP
// address (a platform header holding something else) also gives the peer.
//
// gin keeps its trusted list private, so the adapter finds out by asking
// ClientIP about copies of the request from the unspecified address, and
// only when ClientIP's answer differs from the peer.
package ginadapter
