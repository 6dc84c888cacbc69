// Command echo is the demo authorization server on echo.
//
//	go run ./examples/echo            # SQLite file oauth2kit-demo.db
//	go run ./examples/echo -db postgres://localhost/oauth2kit
package main

import (
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	echoadapter "github.com/oauth2kit/oauth2kit/adapters/echo"
	"github.com/oauth2kit/oauth2kit/examples/internal/demo"
)

func main() {
	demo.Main(func(app *demo.App) demo.Runner {
		e := echo.New()
		e.HideBanner, e.HidePort = true, true
		e.Use(middleware.Recover())
		echoadapter.Mount(e, app.Server) // the OAuth endpoints
		e.GET("/api/me", me, echoadapter.Middleware(app.Server))
		e.GET("/api/admin", me, echoadapter.Middleware(app.Server, "admin"))
		return app.HTTPServer(e)
	})
}

func me(c echo.Context) error {
	info, _ := echoadapter.TokenInfo(c)
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.Blob(http.StatusOK, "application/json", demo.Me(info))
}
