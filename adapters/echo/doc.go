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
package echoadapter
