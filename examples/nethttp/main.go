// Command nethttp is the demo authorization server on net/http.
//
//	go run ./examples/nethttp            # SQLite file oauth2kit-demo.db
//	go run ./examples/nethttp -db postgres://localhost/oauth2kit
package main

import (
	"net/http"

	"github.com/oauth2kit/oauth2kit/adapters/nethttp"
	"github.com/oauth2kit/oauth2kit/examples/internal/demo"
)

func main() {
	demo.Main(func(app *demo.App) demo.Runner {
		mux := http.NewServeMux()
		nethttp.Mount(mux, app.Server) // the OAuth endpoints
		mux.Handle("GET /api/me", nethttp.Middleware(app.Server)(http.HandlerFunc(me)))
		mux.Handle("GET /api/admin", nethttp.Middleware(app.Server, "admin")(http.HandlerFunc(me)))
		return app.HTTPServer(mux)
	})
}

func me(w http.ResponseWriter, r *http.Request) {
	info, _ := nethttp.TokenInfo(r.Context())
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(demo.Me(info))
}
