package ginadapter

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/oauth2kit/oauth2kit/core"
)

// TokenInfoKey is the gin context key under which Middleware stores the
// *core.TokenInfo of the request's access token: c.Get(TokenInfoKey), or
// the typed TokenInfo(c).
const TokenInfoKey = "oauth2kit.token_info"

// request adapts *gin.Context to core.Request. It holds the context
// itself, one pointer, so wrapping it in the interface does not allocate.
type request struct{ c *gin.Context }

func (q request) Context() context.Context    { return q.c.Request.Context() }
func (q request) Method() string              { return q.c.Request.Method }
func (q request) Path() string                { return q.c.Request.URL.Path }
func (q request) RawQuery() string            { return q.c.Request.URL.RawQuery }
func (q request) Header(name string) []string { return q.c.Request.Header.Values(name) }
func (q request) Body() io.Reader             { return q.c.Request.Body }
func (q request) TLS() bool                   { return q.c.Request.TLS != nil }
func (q request) PeerAddr() string            { return q.c.Request.RemoteAddr }

// PeerCertificates implements core.PeerCertificates (RFC 8705 mTLS).
func (q request) PeerCertificates() []*x509.Certificate {
	if q.c.Request.TLS == nil {
		return nil
	}
	return q.c.Request.TLS.PeerCertificates
}

// RemoteAddr is the client address as the package documentation describes
// it: c.ClientIP() once the app has told gin whom to trust, the peer
// otherwise.
func (q request) RemoteAddr() string { return clientAddr(q.c) }

// responder adapts *gin.Context to core.Responder.
type responder struct{ c *gin.Context }

func (p responder) SetHeader(name, value string) { p.c.Writer.Header().Set(name, value) }
func (p responder) AddHeader(name, value string) { p.c.Writer.Header().Add(name, value) }

var _ core.HeaderValuesSetter = responder{}

// SetHeaderValues implements core.HeaderValuesSetter: the shared constant
// slice goes into the header map as is, without an allocation.
func (p responder) SetHeaderValues(name string, values []string) { p.c.Writer.Header()[name] = values }
func (p responder) Send(status int, body []byte) error {
	p.c.Status(status)
	if len(body) == 0 {
		p.c.Writer.WriteHeaderNow()
		return nil
	}
	_, err := p.c.Writer.Write(body)
	return err
}

// Request wraps c as a core.Request, for apps that call core functions
// (Server.SendGrant, Server.CheckRequest) from their own handlers. It is
// valid only while the handler runs: gin reuses its contexts.
func Request(c *gin.Context) core.Request { return request{c} }

// Responder wraps c as a core.Responder.
func Responder(c *gin.Context) core.Responder { return responder{c} }

// Unwrap returns the *gin.Context behind a core.Request built by this
// package (inside an Authenticator, to read the app's own cookies or
// session), or nil. Do not keep it past the call: gin reuses its contexts.
func Unwrap(r core.Request) *gin.Context {
	if q, ok := r.(request); ok {
		return q.c
	}
	return nil
}

// Handler serves the server's endpoints and answers 404 for any other
// path, for use as a single route or in NoRoute.
func Handler(s *core.Server) gin.HandlerFunc {
	return func(c *gin.Context) {
		if !s.Handle(responder{c}, request{c}) {
			c.AbortWithStatus(http.StatusNotFound)
		}
	}
}

// Mount registers every endpoint path of s, for any method, on r (an
// *gin.Engine or a *gin.RouterGroup). On a group the paths are taken as
// full request paths and registered relative to the group's base path;
// Mount panics, as gin does for a bad route, when one lies outside it.
func Mount(r gin.IRouter, s *core.Server) {
	base := "/"
	if g, ok := r.(interface{ BasePath() string }); ok {
		base = g.BasePath()
	}
	base = strings.TrimSuffix(base, "/")
	h := Handler(s)
	for _, p := range s.Paths() {
		rel, ok := strings.CutPrefix(p, base)
		if !ok || (rel != "" && rel[0] != '/') {
			panic(fmt.Sprintf("ginadapter: endpoint path %q is outside the group %q; set the core.Config paths to the full request paths", p, base))
		}
		r.Any(rel, h)
	}
}

// TokenInfo returns the token info Middleware stored in c.
func TokenInfo(c *gin.Context) (*core.TokenInfo, bool) {
	v, ok := c.Get(TokenInfoKey)
	if !ok {
		return nil, false
	}
	ti, ok := v.(*core.TokenInfo)
	return ti, ok
}

// Middleware lets a request through only with a valid access token holding
// every scope in scopes, and stores its token info under TokenInfoKey (see
// TokenInfo). Otherwise it answers the refusal of RFC 6750 §3 (401, 403 or
// 400 with WWW-Authenticate and a JSON body) and aborts the chain.
//
// When the token may come in a form body (RFC 6750 §2.2), the body the
// check read is put back for the handler.
func Middleware(s *core.Server, scopes ...string) gin.HandlerFunc {
	return MiddlewareFor(s, "", scopes...)
}

// MiddlewareFor is Middleware at a resource of its own (RFC 8707): it
// accepts only tokens whose audience is audience (a core.Config.Resources
// URI), so a token issued for another resource, or for the server's
// default audience, is refused. "" is core.Config.Audience.
func MiddlewareFor(s *core.Server, audience string, scopes ...string) gin.HandlerFunc {
	return func(c *gin.Context) {
		r := c.Request
		// Record the body whether or not an Authorization header came: the
		// check reads a form body in both cases (a token in the header and
		// another in the body is invalid_request).
		var rec *core.BodyRecorder
		if r.Body != nil && r.Body != http.NoBody {
			rec = core.NewBodyRecorder(r.Body)
			r.Body = rec
		}
		info, rerr := s.CheckRequestFor(request{c}, audience, scopes...)
		if rec != nil {
			r.Body = rec.Replay()
		}
		if rerr != nil {
			rerr.Write(responder{c})
			c.Abort()
			return
		}
		c.Set(TokenInfoKey, info)
		c.Next()
	}
}

// MountWellKnown registers on r (the engine: these paths are at the
// host's root) the metadata paths RFC 8414 §3.1 gives an issuer with a
// path (core.Server.WellKnownPaths). For an issuer without a path it
// registers nothing.
func MountWellKnown(r gin.IRouter, s *core.Server) {
	for _, p := range s.WellKnownPaths() {
		r.Any(p, func(c *gin.Context) {
			if !s.ServeWellKnown(responder{c}, request{c}) {
				c.AbortWithStatus(http.StatusNotFound)
			}
		})
	}
}

// MountProtectedResource serves on r the RFC 9728 metadata of resource
// (a core.Config.Resources URI) at its well-known path
// (core.Server.ProtectedResourcePath), for the resource server that
// protects it with MiddlewareFor(s, resource).
func MountProtectedResource(r gin.IRouter, s *core.Server, resource string) {
	if p := s.ProtectedResourcePath(resource); p != "" {
		r.Any(p, func(c *gin.Context) {
			if !s.ServeProtectedResource(responder{c}, request{c}) {
				c.AbortWithStatus(http.StatusNotFound)
			}
		})
	}
}
