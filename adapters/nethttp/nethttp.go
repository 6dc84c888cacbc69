// Package nethttp mounts an oauth2kit server on net/http and protects
// handlers with its token check.
//
//	srv, _ := core.New(cfg, store, auth)
//	mux := http.NewServeMux()
//	nethttp.Mount(mux, srv)
//	mux.Handle("/api/", nethttp.Middleware(srv)(api))
package nethttp

import (
	"context"
	"io"
	"net/http"

	"github.com/oauth2kit/oauth2kit/core"
)

// request adapts *http.Request to core.Request.
type request struct{ r *http.Request }

func (q request) Context() context.Context    { return q.r.Context() }
func (q request) Method() string              { return q.r.Method }
func (q request) Path() string                { return q.r.URL.Path }
func (q request) RawQuery() string            { return q.r.URL.RawQuery }
func (q request) Header(name string) []string { return q.r.Header.Values(name) }
func (q request) Body() io.Reader             { return q.r.Body }
func (q request) RemoteAddr() string          { return q.r.RemoteAddr }
func (q request) TLS() bool                   { return q.r.TLS != nil }
func (q request) Unwrap() *http.Request       { return q.r }

// responder adapts http.ResponseWriter to core.Responder.
type responder struct{ w http.ResponseWriter }

func (p responder) SetHeader(name, value string) { p.w.Header().Set(name, value) }
func (p responder) AddHeader(name, value string) { p.w.Header().Add(name, value) }

var _ core.HeaderValuesSetter = responder{}

// SetHeaderValues implements core.HeaderValuesSetter: the shared constant
// slice goes into the header map as is, without an allocation.
func (p responder) SetHeaderValues(name string, values []string) { p.w.Header()[name] = values }
func (p responder) Send(status int, body []byte) error {
	p.w.WriteHeader(status)
	if len(body) == 0 {
		return nil
	}
	_, err := p.w.Write(body)
	return err
}

// Request wraps r as a core.Request, for apps that call core functions
// (Server.SendGrant, Server.CheckRequest) from their own handlers.
func Request(r *http.Request) core.Request { return request{r} }

// Responder wraps w as a core.Responder.
func Responder(w http.ResponseWriter) core.Responder { return responder{w} }

// Unwrap returns the *http.Request behind a core.Request built by this
// package (inside an Authenticator, to read the app's own cookies), or nil.
func Unwrap(r core.Request) *http.Request {
	if q, ok := r.(request); ok {
		return q.r
	}
	return nil
}

// Handler serves the server's endpoints and answers 404 for any other path.
func Handler(s *core.Server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.Handle(responder{w}, request{r}) {
			http.NotFound(w, r)
		}
	})
}

// Mount registers the server's endpoints on mux, one pattern per path.
func Mount(mux *http.ServeMux, s *core.Server) {
	h := Handler(s)
	for _, p := range s.Paths() {
		mux.Handle(p, h)
	}
}

type ctxKey struct{}

// TokenInfo returns the token info the Middleware put in the request
// context.
func TokenInfo(ctx context.Context) (*core.TokenInfo, bool) {
	ti, ok := ctx.Value(ctxKey{}).(*core.TokenInfo)
	return ti, ok
}

// Middleware lets a request through only with a valid access token holding
// every scope in scopes; the handler finds the token info with TokenInfo.
// Refusals follow RFC 6750 §3 (401/403/400 with WWW-Authenticate).
//
// When the token may come in a form body (RFC 6750 §2.2), the body the
// check read is put back for the handler.
func Middleware(s *core.Server, scopes ...string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// Record the body whether or not an Authorization header came:
			// the check reads a form body in both cases (a token in the
			// header and another in the body is invalid_request).
			var rec *core.BodyRecorder
			if r.Body != nil && r.Body != http.NoBody {
				rec = core.NewBodyRecorder(r.Body)
				r.Body = rec
			}
			info, rerr := s.CheckRequest(request{r}, scopes...)
			if rec != nil {
				r.Body = rec.Replay()
			}
			if rerr != nil {
				rerr.Write(responder{w})
				return
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, info)))
		})
	}
}
