// Command custom is the demo authorization server integrated without any
// adapter: it implements core's Request/Responder seam over its own HTTP
// handling and calls core's functions directly, the way a team with an
// in-house HTTP stack would.
package main

import (
	"context"
	"io"
	"net/http"

	"github.com/oauth2kit/oauth2kit/core"
	"github.com/oauth2kit/oauth2kit/examples/internal/demo"
)

// request is core.Request over the in-house stack's request type (here
// *http.Request stands in for it).
type request struct{ r *http.Request }

func (q request) Context() context.Context    { return q.r.Context() }
func (q request) Method() string              { return q.r.Method }
func (q request) Path() string                { return q.r.URL.Path }
func (q request) RawQuery() string            { return q.r.URL.RawQuery }
func (q request) Header(name string) []string { return q.r.Header.Values(name) }
func (q request) Body() io.Reader             { return q.r.Body }
func (q request) RemoteAddr() string          { return q.r.RemoteAddr }
func (q request) TLS() bool                   { return q.r.TLS != nil }

// responder is core.Responder over the stack's response type.
type responder struct{ w http.ResponseWriter }

func (p responder) SetHeader(k, v string) { p.w.Header().Set(k, v) }
func (p responder) AddHeader(k, v string) { p.w.Header().Add(k, v) }
func (p responder) Send(status int, body []byte) error {
	p.w.WriteHeader(status)
	_, err := p.w.Write(body)
	return err
}

func main() {
	demo.Main(func(app *demo.App) demo.Runner {
		return app.HTTPServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			req, resp := request{r}, responder{w}
			switch r.URL.Path {
			case "/api/me", "/api/admin":
				var scopes []string
				if r.URL.Path == "/api/admin" {
					scopes = []string{"admin"}
				}
				if r.Method != http.MethodGet {
					w.Header().Set("Allow", "GET")
					http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
					return
				}
				info, rerr := app.Server.CheckRequest(req, scopes...)
				if rerr != nil {
					rerr.Write(resp)
					return
				}
				resp.SetHeader("Content-Type", "application/json")
				resp.SetHeader("Cache-Control", "no-store")
				_ = resp.Send(200, demo.Me(info))
			default:
				if !app.Server.Handle(resp, req) {
					http.NotFound(w, r)
				}
			}
		}))
	})
}

var _ core.Request = request{}
