package core

import (
	"errors"
	"strings"
)

// Revoke is the revocation endpoint (RFC 7009). Revoking a refresh token or
// an access token revokes its whole grant: every refresh token of the
// family stops working and its access tokens fail the resource check.
func (s *Server) Revoke(w Responder, r Request) {
	f := s.getParams()
	defer s.putParams(f)
	if e := s.readPost(w, r, f); e != nil {
		sendError(w, e, false)
		return
	}
	ca, e := s.authenticateClient(r, f, true)
	if e != nil {
		if e.status >= 500 {
			// The client lookup failed in storage: 503 like any other
			// storage failure here, so the client retries (RFC 7009
			// §2.2.1).
			sendRevokeUnavailable(w)
			return
		}
		sendError(w, e, false)
		return
	}
	tok := f.get("token")
	if tok == "" {
		sendError(w, badRequest("token is required"), false)
		return
	}
	hint := f.get("token_type_hint")
	if hint != "" && hint != "access_token" && hint != "refresh_token" {
		sendError(w, oerr(400, "unsupported_token_type", "token_type_hint is not supported"), false)
		return
	}
	ctx := r.Context()
	now := s.now()
	var family, owner string
	switch {
	case strings.HasPrefix(tok, prefixAccess+"."):
		var info TokenInfo
		// An expired access token still names its grant: revoking it
		// revokes the grant's refresh tokens too.
		// To anyone else it is just an invalid token (200, nothing done).
		err := s.openAccessToken(tok, now, &info)
		if err == nil || (err == errTokenExpired && info.ClientID == ca.client.ID) {
			family, owner = info.GrantID, info.ClientID
		}
	case strings.HasPrefix(tok, prefixRefresh+"."):
		if sig, ok := s.keys.opaqueSig(prefixRefresh, tok); ok {
			rt, err := s.store.GetRefreshToken(ctx, sig)
			switch {
			case err == nil:
				family, owner = rt.FamilyID, rt.ClientID
			case !errors.Is(err, ErrNotFound):
				s.log.ErrorContext(ctx, "oauth2kit: revocation lookup failed", "err", err)
				sendRevokeUnavailable(w)
				return
			}
		}
	}
	if family == "" {
		// Unknown, malformed or already invalid: nothing to do, and the
		// answer is the same as for a success (RFC 7009 §2.2).
		_ = w.Send(200, nil)
		return
	}
	if owner != ca.client.ID {
		sendError(w, oerr(400, ErrUnauthorizedClient, "the token was not issued to this client"), false)
		return
	}
	if err := s.revokeFamily(ctx, family, now); err != nil {
		// The client must assume the token still works (RFC 7009 §2.2.1).
		s.log.ErrorContext(ctx, "oauth2kit: revocation failed", "err", err)
		sendRevokeUnavailable(w)
		return
	}
	_ = w.Send(200, nil)
}

func sendRevokeUnavailable(w Responder) {
	e := oerr(503, ErrTemporarilyUnavailable, "the token could not be revoked; retry later")
	e.retryAfter = 1
	sendError(w, e, false)
}

// Introspect is the introspection endpoint (RFC 7662). Only confidential
// clients may call it. Access tokens are described to any of them (they
// are the resource servers); refresh tokens only to the client holding
// them. Anything unusable is exactly {"active":false}.
func (s *Server) Introspect(w Responder, r Request) {
	f := s.getParams()
	defer s.putParams(f)
	if e := s.readPost(w, r, f); e != nil {
		sendError(w, e, false)
		return
	}
	ca, e := s.authenticateClient(r, f, false)
	if e != nil {
		if e.code == ErrInvalidClient && e.status == 400 {
			// Every failed client authentication here is a 401 with the
			// challenge (RFC 7662 §2.3), also a client_id without a
			// secret or a public client's id: the token endpoint's 400 for
			// a failed body authentication (RFC 6749 §5.2 allows either)
			// would tell a resource server nothing about what to send.
			e = s.authRequired()
		}
		sendError(w, e, false)
		return
	}
	tok := f.get("token")
	if tok == "" {
		sendError(w, badRequest("token is required"), false)
		return
	}
	ctx := r.Context()
	now := s.now()
	inactive := inactiveJSON
	o := newJSON(384)
	o.boolean("active", true)
	switch {
	case strings.HasPrefix(tok, prefixAccess+"."):
		var info TokenInfo
		if err := s.openAccessToken(tok, now, &info); err != nil {
			sendJSON(w, 200, inactive)
			return
		}
		revoked, err := s.store.IsFamilyRevoked(ctx, info.GrantID)
		if err != nil {
			s.log.ErrorContext(ctx, "oauth2kit: introspection lookup failed", "err", err)
			sendError(w, storageError(err), false)
			return
		}
		if revoked {
			sendJSON(w, 200, inactive)
			return
		}
		o.str("scope", info.Scope)
		o.str("client_id", info.ClientID)
		o.str("sub", info.Subject())
		if !info.ClientCredentials {
			o.str("username", info.UserID)
		}
		o.str("token_type", "Bearer")
		o.num("exp", info.ExpiresAt.Unix())
		o.num("iat", info.IssuedAt.Unix())
		o.str("iss", info.Issuer)
		o.str("aud", info.Audience)
		o.str("jti", info.TokenID)
	case strings.HasPrefix(tok, prefixRefresh+"."):
		sig, ok := s.keys.opaqueSig(prefixRefresh, tok)
		if !ok {
			sendJSON(w, 200, inactive)
			return
		}
		rt, err := s.store.GetRefreshToken(ctx, sig)
		if errors.Is(err, ErrNotFound) {
			sendJSON(w, 200, inactive)
			return
		}
		if err != nil {
			s.log.ErrorContext(ctx, "oauth2kit: introspection lookup failed", "err", err)
			sendError(w, storageError(err), false)
			return
		}
		if rt.ClientID != ca.client.ID || rt.RotatedAt != nil || !now.Before(rt.ExpiresAt) {
			sendJSON(w, 200, inactive)
			return
		}
		revoked, err := s.store.IsFamilyRevoked(ctx, rt.FamilyID)
		if err != nil {
			s.log.ErrorContext(ctx, "oauth2kit: introspection lookup failed", "err", err)
			sendError(w, storageError(err), false)
			return
		}
		if revoked {
			sendJSON(w, 200, inactive)
			return
		}
		o.str("scope", rt.Scope)
		o.str("client_id", rt.ClientID)
		o.str("sub", rt.UserID)
		o.str("username", rt.UserID)
		o.str("token_type", "refresh_token")
		o.num("exp", rt.ExpiresAt.Unix())
		o.num("iat", rt.CreatedAt.Unix())
		o.str("iss", s.cfg.Issuer)
	default:
		sendJSON(w, 200, inactive)
		return
	}
	sendJSON(w, 200, o.bytes())
}

// inactiveJSON is the whole answer for any unusable token, shared (like
// the metadata) instead of allocated per request; Responders do not write
// into bodies they are given.
var inactiveJSON = []byte(`{"active":false}`)

// Metadata serves the RFC 8414 authorization server metadata.
func (s *Server) Metadata(w Responder, r Request) {
	if m := r.Method(); m != "GET" && m != "HEAD" {
		hdrAllowGetHead.set(w)
		sendError(w, oerr(405, ErrInvalidRequest, "use GET"), false)
		return
	}
	hdrJSON.set(w)
	// Metadata is public and changes only with a redeploy.
	hdrPublicMeta.set(w)
	_ = w.Send(200, s.metadata)
}

func (s *Server) buildMetadata() []byte {
	c := &s.cfg
	o := newJSON(1024)
	o.str("issuer", c.Issuer)
	o.str("authorization_endpoint", c.Issuer+c.AuthorizeURL)
	o.str("token_endpoint", c.Issuer+c.TokenURL)
	o.str("revocation_endpoint", c.Issuer+c.RevokeURL)
	o.str("introspection_endpoint", c.Issuer+c.IntrospectURL)
	o.strList("response_types_supported", []string{"code"})
	o.strList("response_modes_supported", []string{"query"})
	o.strList("grant_types_supported", []string{GrantAuthorizationCode, GrantRefreshToken, GrantClientCredentials})
	methods := []string{"S256"}
	if c.AllowPlainPKCE {
		methods = append(methods, "plain")
	}
	o.strList("code_challenge_methods_supported", methods)
	auth := []string{"client_secret_basic", "client_secret_post", "none"}
	o.strList("token_endpoint_auth_methods_supported", auth)
	o.strList("revocation_endpoint_auth_methods_supported", auth)
	o.strList("introspection_endpoint_auth_methods_supported", auth[:2])
	o.boolean("authorization_response_iss_parameter_supported", true)
	if len(c.Scopes) > 0 { // RFC 8414: omitted when the server has no fixed list
		o.strList("scopes_supported", c.Scopes)
	}
	return o.bytes()
}
