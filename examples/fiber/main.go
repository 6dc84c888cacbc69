// Command fiber is the demo authorization server on fiber.
//
//	go run ./examples/fiber            # SQLite file oauth2kit-demo.db
//	go run ./examples/fiber -db postgres://localhost/oauth2kit
package main

import (
	"context"
	"net"
	"time"

	"github.com/gofiber/fiber/v2"

	fiberadapter "github.com/oauth2kit/oauth2kit/adapters/fiber"
	"github.com/oauth2kit/oauth2kit/examples/internal/demo"
)

func main() {
	demo.Main(func(app *demo.App) demo.Runner {
		f := fiber.New(fiber.Config{
			DisableStartupMessage: true, // demo logs its own
			// fasthttp has no separate header timeout: ReadTimeout covers
			// the whole request, so slow clients cannot hold connections.
			ReadTimeout:  15 * time.Second,
			WriteTimeout: 30 * time.Second,
			IdleTimeout:  60 * time.Second,
			BodyLimit:    64 << 10,
			// Request line and headers: an authorization URL may carry a
			// 2 KiB state, a long redirect URI and scope (fasthttp's
			// default 4 KiB would answer 431 before the kit sees them).
			ReadBufferSize: 16 << 10,
			// X-Forwarded-* only from listed proxies (none here): the kit
			// decides the Secure cookie attribute from the scheme.
			EnableTrustedProxyCheck: true,
		})
		fiberadapter.Mount(f, app.Server) // the OAuth endpoints
		f.Get("/api/me", fiberadapter.Middleware(app.Server), me)
		f.Get("/api/admin", fiberadapter.Middleware(app.Server, "admin"), me)
		return runner{f}
	})
}

func me(c *fiber.Ctx) error {
	info, _ := fiberadapter.TokenInfo(c)
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Send(demo.Me(info))
}

// runner makes the fiber app a demo.Runner; Serve returns nil once
// Shutdown closed the listener.
type runner struct{ app *fiber.App }

func (r runner) Serve(ln net.Listener) error        { return r.app.Listener(ln) }
func (r runner) Shutdown(ctx context.Context) error { return r.app.ShutdownWithContext(ctx) }
