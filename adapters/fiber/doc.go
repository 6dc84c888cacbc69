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
package fiberadapter
