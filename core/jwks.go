package core

import "strconv"

// JWKS serves the public signing keys (RFC 7517 JWK set): every key of the
// signing set, published ahead, signing or retired, with kid, use and alg.
func (s *Server) JWKS(w Responder, r Request) { s.serve(&epJWKS, w, r) }

var epJWKS = endpoint{field: "Paths.JWKS", path: func(c *Config) *string { return &c.Paths.JWKS }, def: "/oauth2/jwks",
	methods: []string{"GET", "HEAD"}, allow: hdrAllowGetHead, meta: "jwks_uri", serve: (*Server).serveJWKS}

func (s *Server) serveJWKS(w Responder, r Request) {
	w.SetHeader("Content-Type", "application/jwk-set+json")
	// Shorter than the publish-ahead time: a relying party that cached the
	// set has refetched it before a newly published key starts signing.
	w.SetHeader("Cache-Control", "public, max-age="+strconv.FormatInt(int64(s.cfg.OIDC.PublishAhead.Seconds()/6), 10))
	_ = w.Send(200, s.signing.Load().jwks)
}

// OpenIDConfiguration serves the OpenID Connect Discovery document: the
// same JSON as Metadata.
func (s *Server) OpenIDConfiguration(w Responder, r Request) { s.serve(&epOpenIDConfiguration, w, r) }

var epOpenIDConfiguration = endpoint{field: "Paths.OpenIDConfiguration", path: func(c *Config) *string { return &c.Paths.OpenIDConfiguration },
	def: "/.well-known/openid-configuration", methods: []string{"GET", "HEAD"}, allow: hdrAllowGetHead, serve: (*Server).serveMetadata}

// oidcEndpoints are the rows New adds with OIDC on.
var oidcEndpoints = []*endpoint{&epUserInfo, &epJWKS, &epEndSession, &epOpenIDConfiguration}
