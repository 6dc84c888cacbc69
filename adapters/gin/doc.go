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
// /auth (Config.TokenURL "/auth/oauth2/token", ...) and Mount registers
// each relative to the group. The form actions and the metadata the
// server publishes are built from those paths, so they stay right.
package ginadapter
