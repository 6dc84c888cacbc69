package echoadapter

import (
	"context"
	"crypto/x509"
	"io"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/oauth2kit/oauth2kit/core"
)

// exchange adapts an echo.Context to both core.Request and core.Responder.
// One pointer serves both sides, so a request costs one small allocation
// (an echo.Context is an interface: wrapping it by value in a
// core.Request would allocate once per side).
type exchange struct {
	c echo.Context
	// path is the endpoint path the route was registered for; empty means
	// the URL path.
	path string
}

func (x *exchange) Context() context.Context    { return x.c.Request().Context() }
func (x *exchange) Method() string              { return x.c.Request().Method }
func (x *exchange) RawQuery() string            { return x.c.Request().URL.RawQuery }
func (x *exchange) Header(name string) []string { return x.c.Request().Header.Values(name) }
func (x *exchange) Body() io.Reader             { return x.c.Request().Body }
func (x *exchange) TLS() bool                   { return x.c.Request().TLS != nil }
func (x *exchange) PeerAddr() string            { return x.c.Request().RemoteAddr }

// PeerCertificates implements core.PeerCertificates (RFC 8705 mTLS).
func (x *exchange) PeerCertificates() []*x509.Certificate {
	if t := x.c.Request().TLS; t != nil {
		return t.PeerCertificates
	}
	return nil
}

func (x *exchange) Path() string {
	if x.path != "" {
		return x.path
	}
	return x.c.Request().URL.Path
}

// RemoteAddr is the peer address, or the client address the app's
// echo.IPExtractor derives when it configured one (behind a proxy). echo's
// fallback for RealIP trusts X-Forwarded-For from anyone, which would let
// a client pick its own address past the failure throttle, so it is not
// used.
func (x *exchange) RemoteAddr() string {
	if e := x.c.Echo(); e != nil && e.IPExtractor != nil {
		return x.c.RealIP()
	}
	return x.c.Request().RemoteAddr
}

func (x *exchange) SetHeader(name, value string) { x.c.Response().Header().Set(name, value) }
func (x *exchange) AddHeader(name, value string) { x.c.Response().Header().Add(name, value) }

var _ core.HeaderValuesSetter = (*exchange)(nil)

// SetHeaderValues implements core.HeaderValuesSetter: the shared constant
// slice goes into the header map as is, without an allocation.
func (x *exchange) SetHeaderValues(name string, values []string) {
	x.c.Response().Header()[name] = values
}

func (x *exchange) Send(status int, body []byte) error {
	res := x.c.Response()
	res.WriteHeader(status)
	if len(body) == 0 {
		return nil
	}
	_, err := res.Write(body)
	return err
}

// Request wraps c as a core.Request, for apps that call core functions
// (Server.SendGrant, Server.CheckRequest) from their own handlers.
func Request(c echo.Context) core.Request { return &exchange{c: c} }

// Responder wraps c's response as a core.Responder.
func Responder(c echo.Context) core.Responder { return &exchange{c: c} }

// Unwrap returns the echo.Context behind a core.Request built by this
// package (inside an Authenticator, to read the app's own cookies or
// session), or nil.
func Unwrap(r core.Request) echo.Context {
	if x, ok := r.(*exchange); ok {
		return x.c
	}
	return nil
}

// Router is where Mount registers routes: *echo.Echo and *echo.Group both
// satisfy it.
type Router interface {
	Any(path string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) []*echo.Route
}

// Mount registers every endpoint of s on r, for any method, each with the
// route-level middleware m. Mounted on a group, the endpoints answer under
// the group's prefix; the metadata advertises Config.Issuer followed by
// the endpoint path, so the Issuer must then end with that prefix, and a
// login form must post to the prefix followed by ar.ProcessLoginURL (a bare
// path).
func Mount(r Router, s *core.Server, m ...echo.MiddlewareFunc) {
	for _, p := range s.Paths() {
		// Each route answers as the endpoint it was registered for, so a
		// group prefix or a path rewritten by Pre middleware does not
		// change which endpoint runs.
		r.Any(p, func(c echo.Context) error {
			x := &exchange{c: c, path: p}
			s.Handle(x, x)
			return nil
		}, m...)
	}
}

// TokenInfoKey is the echo.Context key under which Middleware stores the
// *core.TokenInfo of an accepted request; TokenInfo reads it typed.
const TokenInfoKey = "oauth2kit.token_info"

// TokenInfo returns the token info Middleware stored in c.
func TokenInfo(c echo.Context) (*core.TokenInfo, bool) {
	info, ok := c.Get(TokenInfoKey).(*core.TokenInfo)
	return info, ok && info != nil
}

// Middleware lets a request through only with a valid access token holding
// every scope in scopes, and stores its token info in the context (read it
// with TokenInfo, or c.Get(TokenInfoKey)). Refusals follow RFC 6750 §3
// (401/403/400 with WWW-Authenticate and a JSON body) and end the chain.
//
// When the token may come in a form body (RFC 6750 §2.2), the body the
// check read is put back for the handler.
func Middleware(s *core.Server, scopes ...string) echo.MiddlewareFunc {
	return MiddlewareFor(s, "", scopes...)
}

// MiddlewareFor is Middleware at a resource of its own (RFC 8707): it
// accepts only tokens whose audience is audience (a core.Config.Resources
// URI), so a token issued for another resource, or for the server's
// default audience, is refused. "" is core.Config.Audience.
func MiddlewareFor(s *core.Server, audience string, scopes ...string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			// The check reads a form body whether or not an Authorization
			// header came (a token in both is invalid_request): record it.
			var rec *core.BodyRecorder
			if r.Body != nil && r.Body != http.NoBody {
				rec = core.NewBodyRecorder(r.Body)
				r.Body = rec
			}
			x := &exchange{c: c}
			info, rerr := s.CheckRequestFor(x, audience, scopes...)
			if rec != nil {
				r.Body = rec.Replay()
			}
			if rerr != nil {
				rerr.Write(x)
				return nil
			}
			c.Set(TokenInfoKey, info)
			return next(c)
		}
	}
}

// MountWellKnown registers on r (the echo instance: these paths are at the
// host's root) the metadata paths RFC 8414 §3.1 gives an issuer with a
// path (core.Server.WellKnownPaths). For an issuer without a path it
// registers nothing.
func MountWellKnown(r Router, s *core.Server) {
	for _, p := range s.WellKnownPaths() {
		r.Any(p, func(c echo.Context) error {
			x := &exchange{c: c, path: p}
			if !s.ServeWellKnown(x, x) {
				return echo.ErrNotFound
			}
			return nil
		})
	}
}

// MountProtectedResource serves on r the RFC 9728 metadata of resource
// (a core.Config.Resources URI) at its well-known path
// (core.Server.ProtectedResourcePath), for the resource server that
// protects it with MiddlewareFor(s, resource).
func MountProtectedResource(r Router, s *core.Server, resource string) {
	if p := s.ProtectedResourcePath(resource); p != "" {
		r.Any(p, func(c echo.Context) error {
			x := &exchange{c: c, path: p}
			if !s.ServeProtectedResource(x, x) {
				return echo.ErrNotFound
			}
			return nil
		})
	}
}
