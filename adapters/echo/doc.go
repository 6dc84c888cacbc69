// Package echoadapter mounts an oauth2kit server on echo and protects echo
// handlers with its token check.
//
//	srv, _ := core.New(cfg, store, auth)
//	e := echo.New()
//	echoadapter.Mount(e, srv) // or a *echo.Group with its own middleware
//	api := e.Group("/api", echoadapter.Middleware(srv, "read"))
//	api.GET("/me", func(c echo.Context) error {
//		info, _ := echoadapter.TokenInfo(c)
//		return c.JSON(http.StatusOK, map[string]string{"sub": info.UserID})
//	})
//
// # The client address
//
// The server counts failed client authentications and logins per client
// address (core.Request.RemoteAddr), so that address must be the client's
// and not one it picks. Behind a reverse proxy, set echo's IPExtractor:
//
//	e.IPExtractor = echo.ExtractIPFromXFFHeader(echo.TrustIPRange(proxies)) // or ExtractIPFromRealIPHeader
//
// and the address is c.RealIP(), the one the extractor finds. Without an
// IPExtractor it is the peer of the connection: echo's RealIP would then
// believe X-Forwarded-For and X-Real-IP from anyone.
package echoadapter
