package core

// Handle answers r if its path is one of the server's endpoints and reports
// whether it did. Adapters call it for every request under their mount.
func (s *Server) Handle(w Responder, r Request) bool {
	switch r.Path() {
	case s.cfg.AuthorizeURL:
		s.Authorize(w, r)
	case s.cfg.ProcessLoginURL:
		s.ProcessLogin(w, r)
	case s.cfg.TokenURL:
		s.Token(w, r)
	case s.cfg.RevokeURL:
		s.Revoke(w, r)
	case s.cfg.IntrospectURL:
		s.Introspect(w, r)
	case s.cfg.MetadataURL:
		s.Metadata(w, r)
	default:
		return false
	}
	return true
}

// Paths lists the endpoint paths Handle answers, for routers that need
// routes registered one by one.
func (s *Server) Paths() []string {
	c := &s.cfg
	return []string{c.AuthorizeURL, c.ProcessLoginURL, c.TokenURL, c.RevokeURL, c.IntrospectURL, c.MetadataURL}
}
