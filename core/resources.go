package core

import (
	"net/url"
	"slices"
	"strings"
)

// Resource is a protected resource the server issues tokens for (RFC 8707
// resource indicators): its URI, the audience of its tokens, and the scopes
// it accepts.
type Resource struct {
	// URI is an absolute URI without fragment (an origin, or a URL with a
	// path such as https://api.example.com/mcp).
	URI string
	// Scopes the resource accepts; empty means any scope the server
	// allows.
	Scopes []string
	// Name is the resource's human-readable name in its protected
	// resource metadata (RFC 9728 resource_name), optional.
	Name string
}

// ErrInvalidTarget: the requested resource is unknown or not allowed (RFC
// 8707 §2).
const ErrInvalidTarget = "invalid_target"

// maxResources bounds the resource parameters of one request.
const maxResources = 10

// resourceValues returns every value of the resource parameter in a raw
// query or form (the parameter may repeat: RFC 8707 §2).
func resourceValues(raw string) ([]string, bool) {
	var out []string
	for raw != "" {
		var kv string
		kv, raw, _ = strings.Cut(raw, "&")
		k, v, _ := strings.Cut(kv, "=")
		if k != "resource" {
			continue
		}
		u, err := url.QueryUnescape(v)
		if err != nil || len(out) == maxResources {
			return nil, false
		}
		if u != "" && !slices.Contains(out, u) {
			out = append(out, u)
		}
	}
	return out, true
}

// resourceParam is the token request's resource parameter (the first, as
// params keeps it; one is what a token request may name here).
func resourceParam(f *params) []string {
	if r := f.get("resource"); r != "" {
		return []string{r}
	}
	return nil
}

// canonicalResource is the form resources compare in: an origin-only URI
// with and without its trailing "/" are one resource (SDKs add one).
func canonicalResource(u string) string {
	if p, err := url.Parse(u); err == nil && (p.Path == "/" || p.Path == "") && p.RawQuery == "" && !strings.HasSuffix(u, "?") {
		return strings.TrimSuffix(u, "/")
	}
	return u
}

// checkResources validates the requested resources against the server's
// and the scope; it returns the canonical list (empty when the server
// knows no resources: then resource never fails a request, since clients
// send it whether or not a server polices it).
func (s *Server) checkResources(requested []string, scope string) ([]string, *oauthError) {
	if len(s.cfg.Resources) == 0 || len(requested) == 0 {
		return nil, nil
	}
	scopes, _ := parseScope(scope)
	out := make([]string, 0, len(requested))
	for _, r := range requested {
		u, err := url.Parse(r)
		if err != nil || !u.IsAbs() || u.Fragment != "" || strings.Contains(r, "#") {
			return nil, oerr(400, ErrInvalidTarget, "resource must be an absolute URI without fragment")
		}
		res := s.resource(r)
		if res == nil {
			return nil, oerr(400, ErrInvalidTarget, "unknown resource")
		}
		for _, sc := range scopes {
			if len(res.Scopes) > 0 && !slices.Contains(res.Scopes, sc) && sc != ScopeOpenID && sc != "offline_access" {
				return nil, oerr(400, ErrInvalidScope, "scope "+sc+" is not allowed for the resource")
			}
		}
		out = append(out, canonicalResource(res.URI))
	}
	return out, nil
}

func (s *Server) resource(uri string) *Resource {
	c := canonicalResource(uri)
	for i := range s.cfg.Resources {
		if canonicalResource(s.cfg.Resources[i].URI) == c {
			return &s.cfg.Resources[i]
		}
	}
	return nil
}

// tokenAudience is the audience of an access token of a grant that named
// resources (space-separated, canonical), narrowed by the token request's
// own resource parameters: one resource, since an access token has one
// audience here (RFC 8707 §2.2 lets the server choose).

// clientAudience is the audience of a client_credentials token: a resource
// named in the token request, checked as at authorize, or the default.
func (s *Server) clientAudience(requested []string, scope string) (string, *oauthError) {
	if len(requested) == 0 || len(s.cfg.Resources) == 0 {
		return s.cfg.Audience, nil
	}
	res, e := s.checkResources(requested, scope)
	if e != nil {
		return "", e
	}
	return res[0], nil
}
func (s *Server) tokenAudience(granted string, requested []string) (string, *oauthError) {
	if granted == "" {
		// The authorization named no resource: its tokens are for the
		// default audience. A resource named only now would switch the
		// audience, not narrow it, past the scope check of authorize.
		if len(requested) == 0 || len(s.cfg.Resources) == 0 {
			return s.cfg.Audience, nil
		}
		return "", oerr(400, ErrInvalidTarget, "the authorization named no resource")
	}
	g := strings.Fields(granted)
	switch {
	case len(requested) == 0:
		// RFC 8707 §2.2 lets the server pick a default: the first resource
		// of the authorization (refusing would burn the code).
		return g[0], nil
	case len(requested) > 1:
		return "", oerr(400, ErrInvalidTarget, "name one resource per token request")
	}
	want := canonicalResource(requested[0])
	if !slices.Contains(g, want) {
		return "", oerr(400, ErrInvalidTarget, "the resource was not granted")
	}
	return want, nil
}

// ownAudience reports whether aud names this server's tokens: its
// Audience, or a resource it knows.
func (s *Server) ownAudience(aud string) bool {
	return aud == s.cfg.Audience || (len(s.cfg.Resources) > 0 && s.resource(aud) != nil)
}
