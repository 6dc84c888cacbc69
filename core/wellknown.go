package core

import (
	"net/url"
	"strings"
)

// WellKnownPaths are, for an issuer with a path (https://host/auth), the
// host-root paths where RFC 8414 §3.1 puts the metadata: the well-known
// name with the issuer's path appended, for the RFC 8414 document and
// (with OIDC) for the OpenID Connect one, which some clients look up the
// same way:
//
//	/.well-known/oauth-authorization-server/auth
//	/.well-known/openid-configuration/auth
//
// They lie outside the kit's mount, at the root of the host; the adapters'
// MountWellKnown routes them to ServeWellKnown. Empty for an issuer
// without a path, whose metadata URLs are the mounted ones.
func (s *Server) WellKnownPaths() []string {
	u, err := url.Parse(s.cfg.Issuer)
	if err != nil || u.Path == "" || u.Path == "/" {
		return nil
	}
	p := strings.TrimSuffix(u.EscapedPath(), "/")
	out := []string{"/.well-known/oauth-authorization-server" + p}
	if s.cfg.OIDC.enabled() {
		out = append(out, "/.well-known/openid-configuration"+p)
	}
	return out
}

// ServeWellKnown answers r if its path is one of WellKnownPaths (GET or
// HEAD: the metadata document) and reports whether it did.
func (s *Server) ServeWellKnown(w Responder, r Request) bool {
	for _, p := range s.WellKnownPaths() {
		if r.Path() == p {
			s.serve(&epMetadata, w, r)
			return true
		}
	}
	return false
}
