package core

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/oauth2kit/oauth2kit/core/internal/jose"
)

// The subject and actor tokens of a token exchange (exchange.go): which
// of this server's tokens count, and how each kind is verified.

// exchangeSubject verifies a subject (or, with asActor, an actor) token of
// type typ for client c.
func (s *Server) exchangeSubject(ctx context.Context, c *Client, f *params, typ, tok string, now time.Time, asActor bool) (*exchangeToken, *oauthError) {
	what := "subject"
	if asActor {
		what = "actor"
	}
	unusable := badGrant("the " + what + " token is invalid, expired or revoked")
	var xt *exchangeToken
	switch typ {
	case TokenTypeAccessToken, TokenTypeJWT:
		if typ == TokenTypeJWT && (s.jwt == nil || !s.jwt.recognizes(tok)) {
			return nil, unusable
		}
		xt = &exchangeToken{typ: typ}
		if err := s.openAccessToken(tok, now, &xt.info); err != nil {
			return nil, unusable
		}
		// Exact, never the resource check's cache: the exchange issues a
		// token, and a grant revoked a moment ago must issue none. An
		// exchanged subject also needs every family it descends from.
		revoked, err := s.lineageRevoked(ctx, &xt.info)
		switch {
		case err != nil:
			s.log.ErrorContext(ctx, "oauth2kit: reading a grant's revocation failed", "err", err)
			return nil, storageError(err)
		case revoked:
			return nil, unusable
		}
	case TokenTypeRefreshToken:
		if asActor {
			return nil, badRequest("actor_token_type is not supported")
		}
		if !s.cfg.TokenExchange.AllowRefreshTokenSubjects {
			return nil, badRequest("refresh tokens are not accepted as subject tokens")
		}
		var e *oauthError
		if xt, e = s.refreshSubject(ctx, c, tok, now); e != nil {
			return nil, e
		}
	case TokenTypeIDToken:
		if !s.cfg.OIDC.enabled() {
			return nil, badRequest(what + "_token_type is not supported")
		}
		var err error
		if xt, err = s.openIDTokenFor(c, tok, now); err != nil {
			return nil, unusable
		}
		if e := s.idTokenSessionLive(ctx, c, xt.sid, now); e != nil {
			return nil, e
		}
	default:
		return nil, badRequest(what + "_token_type is not supported")
	}
	info := &xt.info
	switch {
	case asActor && info.ClientID != c.ID:
		// The actor token proves who acts: only the client's own can.
		return nil, badGrant("the actor token was not issued to this client")
	case info.ClientCredentials && info.ClientID != c.ID:
		// A token without a user is about its client: another client
		// could not carry that subject in a token of its own.
		return nil, badGrant("a token without a user can be exchanged only by its own client")
	case info.JKT != "" && info.JKT != f.dpopJKT:
		return nil, badGrant("the " + what + " token is bound to a DPoP key: send a proof of that key")
	case info.X5T != "" && subtle.ConstantTimeCompare([]byte(info.X5T), []byte(c.boundCert)) != 1:
		return nil, badGrant("the " + what + " token is bound to a certificate this request does not present")
	}
	return xt, nil
}

// refreshSubject verifies a refresh token of c as a subject token: read,
// not consumed (the client keeps using it), and refused once rotated out.
func (s *Server) refreshSubject(ctx context.Context, c *Client, tok string, now time.Time) (*exchangeToken, *oauthError) {
	unusable := badGrant("the subject token is invalid, expired or revoked")
	sig, ok := s.keys.opaqueSig(prefixRefresh, tok)
	if !ok {
		return nil, unusable
	}
	rt, err := s.store.GetRefreshToken(ctx, sig)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, unusable
	case err != nil:
		s.log.ErrorContext(ctx, "oauth2kit: reading a refresh token failed", "err", err)
		return nil, storageError(err)
	case rt.ClientID != c.ID:
		return nil, badGrant("the refresh token was not issued to this client")
	case rt.RotatedAt != nil:
		// A stale copy: the same reuse as at the refresh grant.
		s.reused(ctx, c, rt, now)
		return nil, unusable
	case !now.Before(rt.ExpiresAt):
		return nil, unusable
	}
	revoked, err := s.store.IsFamilyRevoked(ctx, rt.FamilyID)
	switch {
	case err != nil:
		s.log.ErrorContext(ctx, "oauth2kit: reading a grant's revocation failed", "err", err)
		return nil, storageError(err)
	case revoked:
		return nil, unusable
	}
	aud := s.cfg.Audience
	if g := strings.Fields(rt.Resource); len(g) > 0 {
		aud = g[0]
	}
	return &exchangeToken{typ: TokenTypeRefreshToken, granted: rt.Resource, info: TokenInfo{
		Issuer: s.cfg.Issuer, Audience: aud, UserID: rt.UserID, ClientID: rt.ClientID, Scope: rt.Scope,
		GrantID: rt.FamilyID, AdditionalInfo: rt.AdditionalInfo, IssuedAt: rt.CreatedAt, ExpiresAt: rt.ExpiresAt,
		JKT: rt.JKT, userinfoClaims: userinfoClaimsOf(rt.OIDC),
	}}, nil
}

// idTokenClaimsIn is what an exchange reads of an id_token.
type idTokenClaimsIn struct {
	Iss      string          `json:"iss"`
	Sub      string          `json:"sub"`
	Aud      json.RawMessage `json:"aud"`
	Azp      string          `json:"azp"`
	Exp      int64           `json:"exp"`
	Iat      int64           `json:"iat"`
	AuthTime int64           `json:"auth_time"`
	ACR      string          `json:"acr"`
	AMR      []string        `json:"amr"`
	SID      string          `json:"sid"`
}

// openIDTokenFor verifies an id_token this server issued to c: our
// signature (a key still published), typ JWT (no access token, ID-JAG or
// other JWT of ours passes), iss, unexpired, a lifetime this server
// mints, and c among its audiences.
func (s *Server) openIDTokenFor(c *Client, tok string, now time.Time) (*exchangeToken, error) {
	ks := s.signing.Load()
	if ks == nil {
		return nil, errBadToken
	}
	h, payload, err := jose.Verify(tok, ks.verify, ks.verifyKey)
	if err != nil || h.Typ != "JWT" {
		return nil, errBadToken
	}
	var cl idTokenClaimsIn
	if err := json.Unmarshal(payload, &cl); err != nil || cl.Iss != s.cfg.Issuer || cl.Sub == "" || len(cl.Sub) > maxActorSubject {
		return nil, errBadToken
	}
	if cl.Iat <= 0 || cl.Iat > now.Unix()+60 || cl.Exp < cl.Iat || cl.Exp-cl.Iat > int64(s.cfg.Lifetimes.IDToken/time.Second)+60 || now.Unix() >= cl.Exp {
		return nil, errBadToken
	}
	var auds []string
	var one string
	if json.Unmarshal(cl.Aud, &one) == nil && one != "" {
		auds = []string{one}
	} else if json.Unmarshal(cl.Aud, &auds) != nil {
		return nil, errBadToken
	}
	// Issued to c: an id_token is the client's proof of the user's
	// authentication, and no other party's to trade.
	if !slices.Contains(auds, c.ID) || (cl.Azp != "" && cl.Azp != c.ID) || (len(auds) > 1 && cl.Azp == "") {
		return nil, errBadToken
	}
	if len(cl.AMR) > 16 {
		cl.AMR = cl.AMR[:16]
	}
	return &exchangeToken{typ: TokenTypeIDToken,
		info: TokenInfo{Issuer: cl.Iss, Audience: s.cfg.Audience, UserID: cl.Sub, ClientID: c.ID,
			IssuedAt: time.Unix(cl.Iat, 0), ExpiresAt: time.Unix(cl.Exp, 0)},
		auth: idTokenAuth{authTime: cl.AuthTime, acr: cl.ACR, amr: cl.AMR},
		sid:  cl.SID,
	}, nil
}

// idTokenSessionLive refuses an id_token of client c whose login session
// (sid) has ended: after a logout or EndUserSessions the id_token proves
// an authentication the user has taken back. The only lookup of a session
// by its sid is SessionClientStore.AddSessionClient, which answers
// ErrNotFound for no live session and otherwise records c in it (c is the
// id_token's audience, normally there already; being there, the client is
// told of the session's end by back-channel logout). A store with
// LoginSessionStore alone cannot look a session up by sid: the id_token
// is accepted until it expires (Lifetimes.IDToken).
func (s *Server) idTokenSessionLive(ctx context.Context, c *Client, sid string, now time.Time) *oauthError {
	if sid == "" || !s.sessionsOn() || s.caps.sessionClients == nil {
		return nil
	}
	err := s.caps.sessionClients.AddSessionClient(ctx, sid, c.ID, now)
	switch {
	case err == nil, errors.Is(err, ErrTooManySessionClients):
		// Too many clients: the session is live all the same.
		return nil
	case errors.Is(err, ErrNotFound):
		s.log.InfoContext(ctx, "oauth2kit: id_token of an ended login session refused for exchange", "client_id", c.ID)
		return badGrant("the id_token's login session has ended")
	}
	s.log.ErrorContext(ctx, "oauth2kit: looking up an id_token's login session failed", "err", err)
	return storageError(err)
}
