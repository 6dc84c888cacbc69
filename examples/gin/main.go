// Command gin is the demo authorization server on gin.
//
//	go run ./examples/gin            # SQLite file oauth2kit-demo.db
//	go run ./examples/gin -db postgres://localhost/oauth2kit
package main

import (
	"net/http"

	"github.com/gin-gonic/gin"

	ginadapter "github.com/oauth2kit/oauth2kit/adapters/gin"
	"github.com/oauth2kit/oauth2kit/examples/internal/demo"
)

func main() {
	demo.Main(func(app *demo.App) demo.Runner {
		gin.SetMode(gin.ReleaseMode)
		r := gin.New()
		r.Use(gin.Recovery())
		ginadapter.Mount(r, app.Server) // the OAuth endpoints
		r.GET("/api/me", ginadapter.Middleware(app.Server), me)
		r.GET("/api/admin", ginadapter.Middleware(app.Server, "admin"), me)
		return app.HTTPServer(r)
	})
}

func me(c *gin.Context) {
	info, _ := ginadapter.TokenInfo(c)
	c.Header("Cache-Control", "no-store")
	c.Data(http.StatusOK, "application/json", demo.Me(info))
}
