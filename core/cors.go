package core

import (
	"net/url"
	"slices"
	"strings"
)

// CORS configures cross-origin access for browser-based clients (SPAs,
// the MCP Inspector): discovery and the JWKS answer any origin; the
// token, revocation, introspection and userinfo endpoints answer the
// origins listed here, and the token endpoint also the origins of the
// requesting client's registered redirect URIs. The authorization and
// login endpoints never send CORS headers (they are navigations, not
// fetches).
type CORS struct {
	// AllowedOrigins are origins ("https://app.example.com") the API
	// endpoints answer, preflight included.
	AllowedOrigins []string
}

// corsKind is how an endpoint takes part in CORS.
type corsKind uint8

const (
	corsNone   corsKind = iota // pages: never
	corsPublic                 // public documents: any origin
	corsAPI                    // API endpoints: allowed origins
)

func corsOf(ep *endpoint) corsKind {
	switch ep {
	case &epMetadata, &epOpenIDConfiguration, &epJWKS:
		return corsPublic
	case &epToken, &epRevoke, &epIntrospect, &epUserInfo, &epRegistration, &epPAR, &epDeviceAuthorization:
		return corsAPI
	}
	return corsNone
}

// originOf returns a request's Origin header ("" for none or "null").
func originOf(r Request) string {
	v := r.Header("Origin")
	if len(v) != 1 || v[0] == "null" || len(v[0]) > 256 {
		return ""
	}
	return v[0]
}

// cors sets the response headers of a cross-origin request to ep and
// answers a preflight; it reports whether it answered.
func (s *Server) cors(ep *endpoint, w Responder, r Request) bool {
	kind := corsOf(ep)
	origin := originOf(r)
	if kind == corsNone || origin == "" {
		return false
	}
	allowed := kind == corsPublic || slices.Contains(s.cfg.CORS.AllowedOrigins, origin)
	preflight := r.Method() == "OPTIONS" && len(r.Header("Access-Control-Request-Method")) > 0
	if allowed {
		allowOrigin(w, kind, origin)
	}
	if !preflight {
		return false
	}
	if allowed {
		w.SetHeader("Access-Control-Allow-Methods", strings.Join(ep.methods, ", "))
		w.SetHeader("Access-Control-Allow-Headers", "Authorization, Content-Type, DPoP")
		w.SetHeader("Access-Control-Max-Age", "600")
	}
	// A refused preflight is the same 204 without the allow headers: the
	// browser then blocks the request.
	_ = w.Send(204, nil)
	return true
}

func allowOrigin(w Responder, kind corsKind, origin string) {
	if kind == corsPublic {
		w.SetHeader("Access-Control-Allow-Origin", "*")
		return
	}
	w.SetHeader("Access-Control-Allow-Origin", origin)
	w.AddHeader("Vary", "Origin")
}

// corsForClient lets the token endpoint answer a browser client from the
// origin of one of its registered redirect URIs (an SPA needs no server
// configuration for its own origin).
func (s *Server) corsForClient(w Responder, r Request, c *Client) {
	origin := originOf(r)
	if origin == "" || slices.Contains(s.cfg.CORS.AllowedOrigins, origin) {
		return // none, or set already
	}
	for _, ru := range c.RedirectURIs {
		if u, err := url.Parse(ru); err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Scheme+"://"+u.Host == origin {
			allowOrigin(w, corsAPI, origin)
			return
		}
	}
}
