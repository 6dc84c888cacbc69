package core

import "slices"

// Metadata serves the RFC 8414 authorization server metadata.
func (s *Server) Metadata(w Responder, r Request) { s.serve(&epMetadata, w, r) }

var epMetadata = endpoint{field: "Paths.Metadata", path: func(c *Config) *string { return &c.Paths.Metadata }, def: "/.well-known/oauth-authorization-server",
	methods: []string{"GET", "HEAD"}, allow: hdrAllowGetHead, serve: (*Server).serveMetadata}

func (s *Server) serveMetadata(w Responder, r Request) {
	hdrJSON.set(w)
	// Metadata is public and changes only with a redeploy.
	hdrPublicMeta.set(w)
	_ = w.Send(200, *s.metadata.Load())
}

func (s *Server) buildMetadata() []byte {
	c := &s.cfg
	// A server-wide FAPI 2.0 profile advertises only what it allows.
	fapi := c.Profile == ProfileFAPI2
	allowed := func(algs []string) []string {
		if !fapi {
			return algs
		}
		return fapiOnly(algs)
	}
	o := newJSON(1024)
	o.str("issuer", c.Issuer)
	for _, ep := range s.routes {
		if ep.meta != "" {
			o.str(ep.meta, c.Issuer+*ep.path(c))
		}
	}
	o.strList("response_types_supported", []string{"code"})
	o.strList("response_modes_supported", []string{"query", "form_post"})
	o.strList("grant_types_supported", s.grants.names())
	s.jwtBearerMetadata(o)
	methods := []string{"S256"}
	if c.AllowPlainPKCE {
		methods = append(methods, "plain")
	}
	o.strList("code_challenge_methods_supported", methods)
	// Confidential methods first: introspection takes those only.
	auth := []string{AuthClientSecretBasic, AuthClientSecretPost}
	if s.privateKeyJWTOffered() {
		auth = append(auth, AuthPrivateKeyJWT)
	}
	auth = append(auth, s.mtlsAuthMethods()...) // RFC 8705 §2
	if fapi {
		auth = slices.DeleteFunc(auth, func(m string) bool { return !fapiAuthMethod(m) })
	}
	confidential := len(auth)
	if !fapi {
		auth = append(auth, AuthNone)
	}
	o.strList("token_endpoint_auth_methods_supported", auth)
	o.strList("revocation_endpoint_auth_methods_supported", auth)
	o.strList("introspection_endpoint_auth_methods_supported", auth[:confidential])
	if s.privateKeyJWTOffered() {
		for _, ep := range []string{"token", "revocation", "introspection"} {
			o.strList(ep+"_endpoint_auth_signing_alg_values_supported", allowed(c.ClientAssertions.Algs))
		}
	}
	o.boolean("authorization_response_iss_parameter_supported", true)
	if c.CIMD.Enabled {
		o.boolean("client_id_metadata_document_supported", true)
	}
	if c.PAR.Enabled {
		o.boolean("require_pushed_authorization_requests", c.PAR.Required || fapi)
	}
	if c.DPoP.Enabled { // RFC 9449 §5.1
		o.strList("dpop_signing_alg_values_supported", allowed(c.DPoP.Algs))
	}
	if len(c.Scopes) > 0 { // RFC 8414: omitted when the server has no fixed list
		o.strList("scopes_supported", c.Scopes)
	} else if c.OIDC.enabled() { // OpenID Discovery requires the member
		o.strList("scopes_supported", []string{ScopeOpenID, "profile", "email", "address", "phone", "offline_access"})
	}
	if c.OIDC.enabled() {
		o.strList("subject_types_supported", []string{"public"})
		o.strList("id_token_signing_alg_values_supported", allowed(s.signing.Load().algs))
		o.strList("claims_supported", claimsSupported())
		o.strList("prompt_values_supported", []string{"none", "login", "consent", "select_account"})
		o.boolean("claims_parameter_supported", true)
		o.boolean("request_parameter_supported", false)
		o.boolean("request_uri_parameter_supported", false)
	}
	if c.BackchannelLogout.Enabled { // Back-Channel Logout §2.1
		o.boolean("backchannel_logout_supported", true)
		o.boolean("backchannel_logout_session_supported", true)
	}
	s.writeMTLSMetadata(o) // RFC 8705 §3.3, §5
	s.writeExchangeMetadata(o)
	return o.bytes()
}
