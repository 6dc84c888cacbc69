package core

import (
	"context"
	"errors"
)

// refreshGrant is the refresh token grant (RFC 6749 §6), rotating with
// reuse detection (RFC 9700 §4.14.2).
var refreshGrant = grantType{
	name:      GrantRefreshToken,
	required:  []string{"refresh_token"},
	public:    true,
	byDefault: true,
	handle:    (*Server).refresh,
}

func (s *Server) refresh(ctx context.Context, c *Client, f *params) (*tokenResult, *oauthError) {
	tok := f.get("refresh_token")
	sig, ok := s.keys.opaqueSig(prefixRefresh, tok)
	if !ok {
		return nil, badGrant("the refresh token is invalid, expired or revoked")
	}
	requested := f.get("scope")
	now := s.now()
	var res tokenResult
	var checkErr *oauthError
	var aud string
	old, err := s.store.RotateRefreshToken(ctx, sig, now, func(old *RefreshToken) (*RefreshToken, error) {
		if old.ClientID != c.ID {
			checkErr = badGrant("the refresh token was not issued to this client")
			return nil, checkErr
		}
		if !now.Before(old.ExpiresAt) {
			checkErr = badGrant("the refresh token is invalid, expired or revoked")
			return nil, checkErr
		}
		if old.JKT != "" && old.JKT != f.dpopJKT {
			checkErr = badGrant("the refresh token is bound to a DPoP key: send a proof of that key")
			return nil, checkErr
		}
		scope, ok := narrowScope(requested, old.Scope)
		if !ok {
			checkErr = oerr(400, ErrInvalidScope, "the requested scope exceeds the granted scope")
			return nil, checkErr
		}
		res.scope = scope
		// Refresh can only narrow the resources (RFC 8707 §2.2).
		if aud, checkErr = s.tokenAudience(old.Resource, resourceParam(f)); checkErr != nil {
			return nil, checkErr
		}
		nt, nsig, err := s.keys.newOpaque(prefixRefresh)
		if err != nil {
			return nil, err
		}
		res.refresh = nt
		// The new refresh token keeps the grant's full scope; only the
		// access token is narrowed (RFC 6749 §6).
		return &RefreshToken{
			Sig: nsig, FamilyID: old.FamilyID, ClientID: c.ID, UserID: old.UserID, Scope: old.Scope,
			AdditionalInfo: old.AdditionalInfo, OIDC: old.OIDC, Resource: old.Resource, JKT: old.JKT, CreatedAt: now, ExpiresAt: now.Add(s.cfg.Lifetimes.RefreshToken),
		}, nil
	})
	switch {
	case err == nil:
	case checkErr != nil && errors.Is(err, checkErr):
		// The request was refused (and, for a code, the code burned); a
		// storage failure while committing that takes precedence below.
		return nil, checkErr
	case errors.Is(err, ErrNotFound):
		return nil, badGrant("the refresh token is invalid, expired or revoked")
	case errors.Is(err, ErrTokenRotated):
		if old != nil && old.ClientID == c.ID && old.RotatedAt != nil {
			// A rotated-out token came back: either the client or an
			// attacker holds a stale copy. Kill the whole family (RFC 9700
			// §4.14.2).
			s.log.WarnContext(ctx, "oauth2kit: refresh token reused; revoking its grant", "client_id", c.ID, "grant_id", old.FamilyID)
			if rerr := s.revokeFamily(ctx, old.FamilyID, now); rerr != nil {
				s.log.ErrorContext(ctx, "oauth2kit: revoking a reused refresh family failed", "err", rerr)
			}
		}
		return nil, badGrant("the refresh token is invalid, expired or revoked")
	default:
		s.log.ErrorContext(ctx, "oauth2kit: rotating a refresh token failed", "err", err)
		return nil, storageError(err)
	}
	at, e := s.issueAccess(c, old.UserID, res.scope, old.FamilyID, old.AdditionalInfo, aud, userinfoClaimsOf(old.OIDC), f.dpopJKT, now)
	if e != nil {
		return nil, e
	}
	res.access = at
	// A new id_token for the same authentication (OpenID Connect Core
	// §12.2): same sub and auth_time, when the refreshed scope keeps openid.
	// The refresh token has rotated already: failing now would lose the
	// new one and make the client's retry look like a reuse. The id_token
	// is optional in a refresh response (Core §12.2), so it is left out
	// (grantIDToken logged why).
	if res.idToken, e = s.grantIDToken(ctx, c, old.UserID, res.scope, old.OIDC, at, now, false); e != nil {
		res.idToken = ""
	}
	return &res, nil
}
