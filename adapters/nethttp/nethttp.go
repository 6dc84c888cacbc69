// Package nethttp mounts an oauth2kit server on net/http and protects
// handlers with its token check.
//
//	srv, _ := core.New(cfg, store, auth)
//	mux := http.NewServeMux()
//	nethttp.Mount(mux, srv)
//	mux.Handle("/api/", nethttp.Middleware(srv)(api))
//
// # The client address
//
// The server counts failed client authentications and logins per client
// address (core.Request.RemoteAddr). By default that is the peer of the
// connection, r.RemoteAddr, whatever X-Forwarded-For says: anyone can send
// that header, and an address of the client's choosing would dodge the
// count. Behind a reverse proxy every request has the proxy's address, so
// one client failing often enough would lock every other out: name the
// proxies with TrustedProxies,
//
//	nethttp.Mount(mux, srv, nethttp.TrustedProxies(netip.MustParsePrefix("10.0.0.0/8")))
//
// and a request whose peer is one of them counts under the client address
// the proxies report in X-Forwarded-For: the rightmost address that is not
// itself a trusted proxy (each proxy appends its peer; what lies left of
// the last trusted one the client wrote itself). Without a usable address
// there (no header, an entry that is not an IP address, more than 32
// trusted hops) it is the peer's.
package nethttp

import (
	"context"
	"crypto/x509"
	"io"
	"net/http"
	"net/netip"

	"github.com/oauth2kit/oauth2kit/core"
)

// An Option configures Handler, Mount and Request.
type Option func(*options)

type options struct {
	proxies []netip.Prefix
}

// TrustedProxies names the reverse proxies in front of the server (a
// single address is a prefix of its full length, /32 or /128): a request
// from one of them counts under the client address they report in
// X-Forwarded-For (see the package documentation). Several
// TrustedProxies options add up.
func TrustedProxies(prefixes ...netip.Prefix) Option {
	return func(o *options) {
		for _, p := range prefixes {
			if p.IsValid() {
				o.proxies = append(o.proxies, p.Masked())
			}
		}
	}
}

// trustedBy returns the proxies opts name, nil for none.
func trustedBy(opts []Option) []netip.Prefix {
	if len(opts) == 0 {
		return nil // and no options value to escape to the heap
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	return o.proxies
}

// wrap is r as a core.Request. Without trusted proxies it is one pointer,
// which goes into the interface without an allocation.
func wrap(r *http.Request, proxies []netip.Prefix) core.Request {
	if len(proxies) == 0 {
		return request{r}
	}
	return proxiedRequest{request{r}, proxies}
}

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
func (q request) PeerAddr() string            { return q.r.RemoteAddr }

// PeerCertificates implements core.PeerCertificates (RFC 8705 mTLS).
func (q request) PeerCertificates() []*x509.Certificate {
	if q.r.TLS == nil {
		return nil
	}
	return q.r.TLS.PeerCertificates
}

// proxiedRequest is a request that may come through trusted proxies.
type proxiedRequest struct {
	request
	proxies []netip.Prefix
}

func (q proxiedRequest) RemoteAddr() string { return clientAddr(q.r, q.proxies) }

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
// (Server.SendGrant, Server.LoginAllowed, Server.CheckRequest) from their
// own handlers. Give it the options Mount got, so that the login throttle
// counts the same client address.
func Request(r *http.Request, opts ...Option) core.Request { return wrap(r, trustedBy(opts)) }

// Responder wraps w as a core.Responder.
func Responder(w http.ResponseWriter) core.Responder { return responder{w} }

// Unwrap returns the *http.Request behind a core.Request built by this
// package (inside an Authenticator, to read the app's own cookies), or nil.
func Unwrap(r core.Request) *http.Request {
	switch q := r.(type) {
	case request:
		return q.r
	case proxiedRequest:
		return q.r
	}
	return nil
}

// Handler serves the server's endpoints and answers 404 for any other path.
func Handler(s *core.Server, opts ...Option) http.Handler {
	proxies := trustedBy(opts)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.Handle(responder{w}, wrap(r, proxies)) {
			http.NotFound(w, r)
		}
	})
}

// Mount registers the server's endpoints on mux, one pattern per path.
func Mount(mux *http.ServeMux, s *core.Server, opts ...Option) {
	h := Handler(s, opts...)
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
// Refusals follow RFC 6750 §3 (401/403/400 with WWW-Authenticate). It
// takes no options: the token check counts no failures per address.
//
// When the token may come in a form body (RFC 6750 §2.2), the body the
// check read is put back for the handler.
func Middleware(s *core.Server, scopes ...string) func(http.Handler) http.Handler {
	return MiddlewareFor(s, "", scopes...)
}

// MiddlewareFor is Middleware at a resource of its own (RFC 8707): it
// accepts only tokens whose audience is audience (a core.Config.Resources
// URI), so a token issued for another resource, or for the server's
// default audience, is refused. "" is core.Config.Audience.
func MiddlewareFor(s *core.Server, audience string, scopes ...string) func(http.Handler) http.Handler {
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
			info, rerr := s.CheckRequestFor(request{r}, audience, scopes...)
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

// MountWellKnown registers on mux (the host's root mux) the metadata paths
// RFC 8414 §3.1 gives an issuer with a path (core.Server.WellKnownPaths:
// /.well-known/oauth-authorization-server/auth for https://host/auth).
// For an issuer without a path it registers nothing.
func MountWellKnown(mux *http.ServeMux, s *core.Server) {
	for _, p := range s.WellKnownPaths() {
		mux.Handle(p, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !s.ServeWellKnown(responder{w}, wrap(r, nil)) {
				http.NotFound(w, r)
			}
		}))
	}
}

// MountProtectedResource serves on mux the RFC 9728 metadata of resource
// (a core.Config.Resources URI) at its well-known path
// (core.Server.ProtectedResourcePath), for the resource server that
// protects it with MiddlewareFor(s, resource).
func MountProtectedResource(mux *http.ServeMux, s *core.Server, resource string) {
	if p := s.ProtectedResourcePath(resource); p != "" {
		mux.Handle(p, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !s.ServeProtectedResource(responder{w}, wrap(r, nil)) {
				http.NotFound(w, r)
			}
		}))
	}
}
