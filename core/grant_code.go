package core

import (
	"context"
	"errors"
	"time"
)

// codeGrant is the authorization code grant (RFC 6749 §4.1.3, with PKCE
// and the Security BCP's replay revocation).
var codeGrant = grantType{
	name:      GrantAuthorizationCode,
	required:  []string{"code"},
	public:    true,
	byDefault: true,
	redirect:  true,
	handle:    (*Server).exchangeCode,
}

// codeSigs returns the candidate stored signatures of a presented code.
func (s *Server) codeSigs(code string, c *Client) []string {
	if sig, ok := s.keys.opaqueSig(prefixCode, code); ok {
		return []string{sig}
	}
	if s.profileOf(c) == ProfileDraft10 {
		return s.keys.legacyCodeSigs(code)
	}
	return nil
}

func (s *Server) exchangeCode(ctx context.Context, c *Client, f *params) (*tokenResult, *oauthError) {
	return s.redeemCode(ctx, c, f, s.codeSigs(f.get("code"), c))
}

// redeemCode redeems the grant stored under one of sigs (a code's, or an
// approved device code's) for the tokens of its family.
func (s *Server) redeemCode(ctx context.Context, c *Client, f *params, sigs []string) (*tokenResult, *oauthError) {
	redirect, verifier := f.get("redirect_uri"), f.get("code_verifier")
	now := s.now()
	// check validates the request against the grant; it runs inside the
	// store's consumption, and also for a replay (to decide whether the
	// replay is authentic enough to revoke the first issuance).
	var aud string
	check := func(g *Grant) *oauthError {
		if g.ClientID != c.ID {
			return badGrant("the code was not issued to this client")
		}
		// Checked before anything is written: a refused request leaves no
		// refresh token behind (the code is burned, as for any refusal).
		var e *oauthError
		if aud, e = s.tokenAudience(g.Resource, resourceParam(f)); e != nil {
			return e
		}
		if s.wantsIDToken(g.Scope) && s.signing.Load().signer(c.IDTokenSignedResponseAlg) == nil {
			s.log.ErrorContext(ctx, "oauth2kit: no signing key for the client's id_token_signed_response_alg", "client_id", c.ID, "alg", c.IDTokenSignedResponseAlg)
			return oerr(500, ErrServerError, "the server has no key for the client's id_token algorithm")
		}
		if !now.Before(g.ExpiresAt) {
			return badGrant("the code expired")
		}
		if g.RedirectURI != "" && redirect != g.RedirectURI {
			return badGrant("redirect_uri does not match the authorization request")
		}
		if g.RedirectURI == "" && redirect != "" && !(len(c.RedirectURIs) == 1 && redirect == c.RedirectURIs[0]) {
			return badGrant("redirect_uri does not match the authorization request")
		}
		if g.DPoPJKT != "" && g.DPoPJKT != f.dpopJKT {
			return badGrant("the code is bound to a DPoP key: send a proof of that key")
		}
		if g.CodeChallenge == "" {
			if verifier != "" {
				return badRequest("code_verifier sent but no code_challenge was bound to the code")
			}
			return nil
		}
		if verifier == "" {
			return badGrant("code_verifier is required")
		}
		if !verifyPKCE(verifier, g.CodeChallenge, g.CodeChallengeMethod) {
			return badGrant("code_verifier does not match the code_challenge")
		}
		return nil
	}
	var res tokenResult
	var checkErr *oauthError
	issue := func(g *Grant) (*RefreshToken, error) {
		if e := check(g); e != nil {
			checkErr = e
			return nil, e
		}
		if !c.AllowsGrant(GrantRefreshToken) || (s.cfg.OIDC.RefreshPolicy != nil && !s.cfg.OIDC.RefreshPolicy(c, g.Scope)) {
			return nil, nil
		}
		tok, sig, err := s.keys.newOpaque(prefixRefresh)
		if err != nil {
			return nil, err
		}
		res.refresh = tok
		rt := &RefreshToken{
			Sig: sig, FamilyID: g.ID, ClientID: c.ID, UserID: g.UserID, Scope: g.Scope,
			AdditionalInfo: g.AdditionalInfo, OIDC: g.OIDC, Resource: g.Resource, CreatedAt: now, ExpiresAt: now.Add(s.cfg.Lifetimes.RefreshToken),
		}
		if c.Public {
			// A public client has no credentials of its own: the key is
			// what keeps its refresh token from working for a thief
			// (RFC 9449 §5).
			rt.JKT = f.dpopJKT
		}
		return rt, nil
	}
	if len(sigs) == 0 {
		return nil, badGrant("the code is invalid, expired or used")
	}
	var g *Grant
	var err error
	for _, sig := range sigs {
		g, err = s.store.RedeemCode(ctx, sig, now, issue)
		if !errors.Is(err, ErrNotFound) {
			break
		}
	}
	switch {
	case err == nil:
	case checkErr != nil && errors.Is(err, checkErr):
		// The request was refused (and, for a code, the code burned); a
		// storage failure while committing that takes precedence below.
		return nil, checkErr
	case errors.Is(err, ErrNotFound):
		return nil, badGrant("the code is invalid, expired or used")
	case errors.Is(err, ErrCodeUsed):
		// A replay. Revoke what the first redemption issued, but only if
		// this request is otherwise valid: a replay with a wrong verifier
		// or another client's credentials proves nothing and must not let
		// anyone knock out a legitimate client's tokens (RFC 9700 §4.2.4).
		if g == nil {
			return nil, badGrant("the code is invalid, expired or used")
		}
		g.ExpiresAt = now.Add(time.Hour) // expiry is not what this asks
		revoked := false
		if check(g) == nil {
			s.log.WarnContext(ctx, "oauth2kit: authorization code replayed; revoking its tokens", "client_id", c.ID, "grant_id", g.ID)
			if rerr := s.revokeFamily(ctx, g.ID, now); rerr != nil {
				s.log.ErrorContext(ctx, "oauth2kit: revoking a replayed grant failed", "err", rerr)
			} else {
				revoked = true
			}
		}
		if s.eventsOn() {
			// The user is the grant's; the client is the one replaying,
			// which need not be the grant's when the replay is refused.
			s.emit(ctx, Event{Kind: EventCodeReplay, ClientID: c.ID, UserID: g.UserID, GrantID: g.ID, GrantType: f.get("grant_type"), FamilyRevoked: revoked})
		}
		return nil, badGrant("the code is invalid, expired or used")
	default:
		s.log.ErrorContext(ctx, "oauth2kit: redeeming a code failed", "err", err)
		return nil, storageError(err)
	}
	at, e := s.issueAccess(c, g.UserID, g.Scope, g.ID, g.AdditionalInfo, aud, userinfoClaimsOf(g.OIDC), f.dpopJKT, now)
	if e != nil {
		return nil, e
	}
	res.access, res.scope = at, g.Scope
	res.userID, res.grantID = g.UserID, g.ID
	if res.idToken, e = s.grantIDToken(ctx, c, g.UserID, g.Scope, g.OIDC, at, now, true); e != nil {
		return nil, e
	}
	return &res, nil
}
