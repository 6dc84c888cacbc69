package core

import (
	"errors"
	"strings"
)

// Revoke is the revocation endpoint (RFC 7009). Revoking a refresh token or
// an access token revokes its whole grant: every refresh token of the
// family stops working and its access tokens fail the resource check, and
// so does every token exchanged from them (TokenInfo.ParentGrantIDs). A
// token issued by token exchange is a family of its own, its client's:
// revoking it revokes that family (and what was exchanged from it), never
// the grant it was exchanged from.
func (s *Server) Revoke(w Responder, r Request) { s.serve(&epRevoke, w, r) }

var epRevoke = endpoint{field: "Paths.Revoke", path: func(c *Config) *string { return &c.Paths.Revoke }, def: "/oauth2/revoke",
	methods: []string{"POST"}, allow: hdrAllowPost, meta: "revocation_endpoint", serve: (*Server).revoke}

func (s *Server) revoke(w Responder, r Request) {
	f := s.getParams()
	defer s.putParams(f)
	if e := s.readPost(r, f); e != nil {
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
	case s.formatOf(tok) != nil:
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
