package fiberadapter

import (
	"bytes"
	"context"
	"crypto/x509"
	"io"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/oauth2kit/oauth2kit/core"
)

// request adapts *fiber.Ctx to core.Request. path, when set, is the
// endpoint path Mount matched, without the prefix of the group it is
// mounted on.
type request struct {
	c    *fiber.Ctx
	path string
}

func (q request) Context() context.Context { return q.c.UserContext() }
func (q request) Method() string           { return method(q.c.Method()) }
func (q request) RawQuery() string         { return string(q.c.Request().URI().QueryString()) }

// RemoteAddr is the client address as the package documentation describes
// it: from Config.ProxyHeader when fiber's trusted-proxy check vouches for
// the peer, the peer's otherwise.
func (q request) RemoteAddr() string { return clientAddr(q) }

// TLS is true over TLS, or behind a proxy that says https in
// X-Forwarded-Proto (fiber believes every peer unless
// Config.EnableTrustedProxyCheck is set). It only makes cookies Secure.
func (q request) TLS() bool { return q.c.Protocol() == "https" }

// PeerCertificates implements core.PeerCertificates (RFC 8705 mTLS): the
// chain of fasthttp's TLS connection; PeerAddr is the peer RemoteAddr may
// look past.
func (q request) PeerCertificates() []*x509.Certificate {
	if st := q.c.Context().TLSConnectionState(); st != nil {
		return st.PeerCertificates
	}
	return nil
}
func (q request) PeerAddr() string { return q.c.Context().RemoteAddr().String() }

func (q request) Path() string {
	if q.path != "" {
		return q.path
	}
	return strings.Clone(q.c.Path())
}

// Body reads the raw request body (no Content-Encoding decoding, as with
// net/http) from fasthttp's buffer, so the handler can read it again.
func (q request) Body() io.Reader { return bytes.NewReader(q.c.BodyRaw()) }

// Header copies the values out: fasthttp reuses both the bytes and the
// slice PeekAll returns.
func (q request) Header(name string) []string {
	var out []string
	h := &q.c.Request().Header
	if q.c.App().Server().DisableHeaderNamesNormalizing {
		// Names are kept as sent; PeekAll would match them case-sensitively.
		for k, v := range h.All() {
			if strings.EqualFold(string(k), name) {
				out = append(out, string(v))
			}
		}
		return out
	}
	for _, v := range h.PeekAll(name) {
		out = append(out, string(v))
	}
	return out
}

var methods = [...]string{fiber.MethodGet, fiber.MethodPost, fiber.MethodHead, fiber.MethodPut,
	fiber.MethodPatch, fiber.MethodDelete, fiber.MethodOptions}

// method returns m as a string that does not point into fasthttp's header
// buffer, without allocating for the common methods.
func method(m string) string {
	for _, k := range methods {
		if m == k {
			return k
		}
	}
	return strings.Clone(m)
}

// responder adapts *fiber.Ctx to core.Responder.
type responder struct{ c *fiber.Ctx }

func (p responder) SetHeader(name, value string) { p.c.Set(name, value) }

// AddHeader appends a header line (fiber's Append would join the values
// with commas, which breaks Set-Cookie).
func (p responder) AddHeader(name, value string) { p.c.Response().Header.Add(name, value) }

// Send copies body into the response: the server may reuse its buffer.
func (p responder) Send(status int, body []byte) error {
	p.c.Status(status)
	p.c.Response().SetBody(body)
	return nil
}

// Request wraps c as a core.Request, for apps that call core functions
// (Server.SendGrant, Server.CheckRequest) from their own handlers. It is
// valid only while the handler runs.
func Request(c *fiber.Ctx) core.Request { return request{c: c} }

// Responder wraps c as a core.Responder.
func Responder(c *fiber.Ctx) core.Responder { return responder{c} }

// Unwrap returns the *fiber.Ctx behind a core.Request built by this package
// (inside an Authenticator, to read the app's own cookies), or nil.
//
// Fiber reuses the context and the memory behind its values (headers,
// cookies, params, body) once the handler returns: copy what you keep, and
// never keep the *fiber.Ctx itself.
func Unwrap(r core.Request) *fiber.Ctx {
	if q, ok := r.(request); ok {
		return q.c
	}
	return nil
}

// Mount registers every endpoint path of s on r, for any method. On a group
// (or a sub-app mounted under a prefix) the endpoints live under its
// prefix: with app.Group("/auth") and the default paths the token endpoint
// is /auth/oauth2/token, so let the issuer end in /auth. Requests that only
// fiber's lenient routing matched (other case, trailing slash) go on to the
// next handler.
func Mount(r fiber.Router, s *core.Server) {
	for _, p := range s.Paths() {
		r.All(p, func(c *fiber.Ctx) error {
			if strings.HasSuffix(c.Path(), p) && s.Handle(responder{c}, request{c: c, path: p}) {
				return nil
			}
			return c.Next()
		})
	}
}

// TokenInfoKey is the c.Locals key under which Middleware stores the
// *core.TokenInfo of the request.
const TokenInfoKey = "oauth2kit.token_info"

// TokenInfo returns the token info Middleware stored in c.Locals.
func TokenInfo(c *fiber.Ctx) (*core.TokenInfo, bool) {
	ti, ok := c.Locals(TokenInfoKey).(*core.TokenInfo)
	return ti, ok
}

// Middleware lets a request through only with a valid access token holding
// every scope in scopes; the handlers after it find the token info with
// TokenInfo. Refusals follow RFC 6750 §3 (401/403/400 with
// WWW-Authenticate) and end the chain.
//
// A form body the check reads stays readable: fasthttp keeps the body in
// memory, so c.Body() still returns it.
func Middleware(s *core.Server, scopes ...string) fiber.Handler {
	return MiddlewareFor(s, "", scopes...)
}

// MiddlewareFor is Middleware at a resource of its own (RFC 8707): it
// accepts only tokens whose audience is audience (a core.Config.Resources
// URI), so a token issued for another resource, or for the server's
// default audience, is refused. "" is core.Config.Audience.
func MiddlewareFor(s *core.Server, audience string, scopes ...string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		info, rerr := s.CheckRequestFor(request{c: c}, audience, scopes...)
		if rerr != nil {
			rerr.Write(responder{c})
			return nil
		}
		c.Locals(TokenInfoKey, info)
		return c.Next()
	}
}

// MountWellKnown registers on r (the app: these paths are at the host's
// root) the metadata paths RFC 8414 §3.1 gives an issuer with a path
// (core.Server.WellKnownPaths). For an issuer without a path it registers
// nothing.
func MountWellKnown(r fiber.Router, s *core.Server) {
	for _, p := range s.WellKnownPaths() {
		r.All(p, func(c *fiber.Ctx) error {
			if s.ServeWellKnown(responder{c}, request{c: c, path: p}) {
				return nil
			}
			return c.Next()
		})
	}
}

// MountProtectedResource serves on r the RFC 9728 metadata of resource
// (a core.Config.Resources URI) at its well-known path
// (core.Server.ProtectedResourcePath), for the resource server that
// protects it with MiddlewareFor(s, resource).
func MountProtectedResource(r fiber.Router, s *core.Server, resource string) {
	if p := s.ProtectedResourcePath(resource); p != "" {
		r.All(p, func(c *fiber.Ctx) error {
			if s.ServeProtectedResource(responder{c}, request{c: c, path: p}) {
				return nil
			}
			return c.Next()
		})
	}
}
