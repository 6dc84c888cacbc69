package core

import (
	"net/url"
	"strings"
)

// Protected resource metadata (RFC 9728) for the resources the server
// issues tokens for (Config.Resources): what a resource server built with
// the kit publishes so that clients find its authorization server from a
// 401 alone (the MCP authorization flow).

const wellKnownProtectedResource = "/.well-known/oauth-protected-resource"

// ProtectedResourcePath is the host-root path of the metadata of resource
// (a Config.Resources URI): the well-known name with the resource's path
// appended (RFC 9728 §3.1), e.g. /.well-known/oauth-protected-resource/mcp
// for https://api.example.com/mcp. "" for a resource the server does not
// know.
func (s *Server) ProtectedResourcePath(resource string) string {
	res := s.resource(resource)
	if res == nil {
		return ""
	}
	u, err := url.Parse(res.URI)
	if err != nil {
		return ""
	}
	return wellKnownProtectedResource + strings.TrimSuffix(u.EscapedPath(), "/")
}

// resourceMetadataURL is the absolute URL of the resource's metadata, ""
// when audience is not a configured resource.
func (s *Server) resourceMetadataURL(audience string) string {
	p := s.ProtectedResourcePath(audience)
	if p == "" {
		return ""
	}
	u, _ := url.Parse(s.resource(audience).URI)
	return u.Scheme + "://" + u.Host + p
}

// ProtectedResourceMetadata is the RFC 9728 document of resource:
// resource, authorization_servers (this issuer), scopes_supported,
// bearer_methods_supported (header only: a token in a query or a form is
// not offered) and resource_name. ok is false for an unknown resource.
func (s *Server) ProtectedResourceMetadata(resource string) (doc []byte, ok bool) {
	res := s.resource(resource)
	if res == nil {
		return nil, false
	}
	o := newJSON(256)
	o.str("resource", res.URI)
	o.strList("authorization_servers", []string{s.cfg.Issuer})
	if len(res.Scopes) > 0 {
		o.strList("scopes_supported", res.Scopes)
	}
	o.strList("bearer_methods_supported", []string{"header"})
	o.strIf("resource_name", res.Name)
	if s.cfg.DPoP.Enabled {
		o.strList("dpop_signing_alg_values_supported", s.cfg.DPoP.Algs)
	}
	return o.bytes(), true
}

// ServeProtectedResource answers a GET or HEAD of a resource's metadata
// path (ProtectedResourcePath) and reports whether r was one; adapters'
// resource middleware options route it.
func (s *Server) ServeProtectedResource(w Responder, r Request) bool {
	for i := range s.cfg.Resources {
		uri := s.cfg.Resources[i].URI
		if r.Path() != s.ProtectedResourcePath(uri) {
			continue
		}
		if r.Method() != "GET" && r.Method() != "HEAD" {
			hdrAllowGetHead.set(w)
			sendError(w, oerr(405, ErrInvalidRequest, "use GET"), false)
			return true
		}
		doc, _ := s.ProtectedResourceMetadata(uri)
		hdrJSON.set(w)
		hdrPublicMeta.set(w)
		_ = w.Send(200, doc)
		return true
	}
	return false
}
