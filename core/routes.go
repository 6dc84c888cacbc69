package core

import (
	"slices"
	"strings"
)

// endpoint is one row of the endpoint table: Config's path field and its
// default, the methods it answers, its handler and the metadata member
// naming its URL. Handle, Paths, the method checks and the metadata's
// endpoint URLs are derived from the table; a new endpoint (userinfo,
// JWKS, PAR, device authorization, registration) is one row.
type endpoint struct {
	// field names the Config field holding the path, for errors.
	field string
	// path points into a Config at the path; def is its default.
	path func(*Config) *string
	def  string
	// methods the endpoint answers; others get 405 with allow.
	methods []string
	allow   constHeader
	// page: the endpoint answers browsers, so its errors (405 included)
	// are HTML pages; otherwise they are JSON.
	page bool
	// meta is the metadata member whose value is the endpoint's URL, ""
	// for none.
	meta  string
	serve func(*Server, Responder, Request)
}

// builtinEndpoints is the kit's endpoint table, in Paths order; each row
// lives beside its handler. It is filled in init: the handlers reach the
// rows (through Server.serve), and a package-level initialiser would be a
// cycle.
var builtinEndpoints []*endpoint

func init() {
	builtinEndpoints = []*endpoint{&epAuthorize, &epProcessLogin, &epToken, &epRevoke, &epIntrospect, &epMetadata}
}

// Handle answers r if its path is one of the server's endpoints and reports
// whether it did. Adapters call it for every request under their mount.
func (s *Server) Handle(w Responder, r Request) bool {
	ep := s.byPath[r.Path()]
	if ep == nil {
		return false
	}
	s.serve(ep, w, r)
	return true
}

// Paths lists the endpoint paths Handle answers, for routers that need
// routes registered one by one.
func (s *Server) Paths() []string {
	out := make([]string, len(s.routes))
	for i, ep := range s.routes {
		out[i] = *ep.path(&s.cfg)
	}
	return out
}

// serve checks the method against the endpoint's row and runs it.
func (s *Server) serve(ep *endpoint, w Responder, r Request) {
	if s.cors(ep, w, r) {
		return
	}
	if !slices.Contains(ep.methods, r.Method()) {
		ep.allow.set(w)
		desc := "use " + strings.Join(slices.DeleteFunc(slices.Clone(ep.methods), func(m string) bool { return m == "HEAD" }), " or ")
		if ep.page {
			s.errorPage(w, r, 405, ErrInvalidRequest, desc)
		} else {
			sendError(w, oerr(405, ErrInvalidRequest, desc), false)
		}
		return
	}
	ep.serve(s, w, r)
}
