package core

import (
	"errors"
	"strings"
)

// Introspect is the introspection endpoint (RFC 7662). Only confidential
// clients may call it. Access tokens are described to any of them (they
// are the resource servers); refresh tokens only to the client holding
// them. Anything unusable is exactly {"active":false}.
func (s *Server) Introspect(w Responder, r Request) { s.serve(&epIntrospect, w, r) }

var epIntrospect = endpoint{field: "Paths.Introspect", path: func(c *Config) *string { return &c.Paths.Introspect }, def: "/oauth2/introspect",
	methods: []string{"POST"}, allow: hdrAllowPost, meta: "introspection_endpoint", serve: (*Server).introspect}

func (s *Server) introspect(w Responder, r Request) {
	f := s.getParams()
	defer s.putParams(f)
	if e := s.readPost(r, f); e != nil {
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
			desc := e.desc
			e = s.authRequired()
			e.desc = desc
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
	case s.formatOf(tok) != nil:
		var info TokenInfo
		if err := s.openAccessToken(tok, now, &info); err != nil {
			sendJSON(w, 200, inactive)
			return
		}
		// Its own family and, for an exchanged token, every one it
		// descends from.
		revoked, err := s.lineageRevoked(ctx, &info)
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
		if info.JKT != "" {
			o.str("token_type", "DPoP")
		} else {
			o.str("token_type", "Bearer")
		}
		o.num("exp", info.ExpiresAt.Unix())
		o.num("iat", info.IssuedAt.Unix())
		o.str("iss", info.Issuer)
		o.str("aud", info.Audience)
		o.str("jti", info.TokenID)
		appendCnf(o, info.JKT, info.X5T) // RFC 9449 §6.2, RFC 8705 §3.2
		appendAct(o, info.Act)           // RFC 8693 §4.1
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
