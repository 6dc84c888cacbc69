package core

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// refreshGrant is the refresh token grant (RFC 6749 §6), rotating with
// reuse detection (RFC 9700 §4.14.2) unless the client's policy keeps its
// token (RefreshRotation).
var refreshGrant = grantType{
	name:      GrantRefreshToken,
	required:  []string{"refresh_token"},
	public:    true,
	byDefault: true,
	handle:    (*Server).refresh,
}

// RefreshRotation is a client's refresh token policy: whether a refresh
// replaces the refresh token (and a stale copy coming back revokes the
// grant) or leaves it valid until it expires or is revoked.
//
// The two standards the kit follows disagree, so it is per client. OAuth
// 2.1 (§4.3.1) and MCP require rotation for public clients, whose tokens
// have nothing else protecting them. FAPI 2.0 (§5.3.2.1) asks its
// confidential, sender-constrained clients not to rotate: a response lost
// in transit would otherwise cost the client its grant, and a stolen token
// is useless without the client's key anyway.
type RefreshRotation uint8

const (
	// RotationDefault rotates, except for FAPI 2.0 clients (Client.Profile
	// or Config.Profile ProfileFAPI2), whose refresh tokens stay.
	RotationDefault RefreshRotation = iota
	// RotationAlways rotates, FAPI 2.0 client or not.
	RotationAlways
	// RotationNever keeps the refresh token: a refresh answers with the
	// same one. For confidential clients only; public clients always
	// rotate.
	RotationNever
)

func (r RefreshRotation) check(public bool) error {
	switch {
	case r > RotationNever:
		return fmt.Errorf("refresh rotation %d is not RotationDefault, RotationAlways or RotationNever", r)
	case r == RotationNever && public:
		return errors.New("a public client's refresh tokens always rotate (OAuth 2.1 §4.3.1)")
	}
	return nil
}

// rotates reports whether c's refresh tokens rotate.
func (s *Server) rotates(c *Client) bool {
	switch {
	case c.Public || c.RefreshRotation == RotationAlways:
		return true
	case c.RefreshRotation == RotationNever:
		return false
	}
	return !s.fapi(c)
}

func (s *Server) refresh(ctx context.Context, c *Client, f *params) (*tokenResult, *oauthError) {
	tok := f.get("refresh_token")
	sig, ok := s.keys.opaqueSig(prefixRefresh, tok)
	if !ok {
		return nil, badGrant("the refresh token is invalid, expired or revoked")
	}
	now := s.now()
	var (
		res tokenResult
		old *RefreshToken
		aud string
		e   *oauthError
	)
	if s.rotates(c) {
		old, aud, e = s.refreshRotating(ctx, c, f, sig, now, &res)
	} else {
		old, aud, e = s.refreshInPlace(ctx, c, f, sig, now, &res)
		// The client keeps its token: the answer names it again, so that
		// clients which replace theirs with whatever comes back keep it.
		res.refresh = tok
	}
	if e != nil {
		return nil, e
	}
	at, e := s.issueAccess(c, old.UserID, res.scope, old.FamilyID, old.AdditionalInfo, aud, userinfoClaimsOf(old.OIDC), f.dpopJKT, now)
	if e != nil {
		return nil, e
	}
	res.access = at
	res.userID, res.grantID = old.UserID, old.FamilyID
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

// judgeRefresh checks a refresh request against the stored token: its
// client, expiry, DPoP key, and the narrowing of scope and resources. It
// sets res.scope and returns the access token's audience.
func (s *Server) judgeRefresh(old *RefreshToken, c *Client, f *params, now time.Time, res *tokenResult) (string, *oauthError) {
	switch {
	case old.ClientID != c.ID:
		return "", badGrant("the refresh token was not issued to this client")
	case !now.Before(old.ExpiresAt):
		return "", badGrant("the refresh token is invalid, expired or revoked")
	case old.JKT != "" && old.JKT != f.dpopJKT:
		return "", badGrant("the refresh token is bound to a DPoP key: send a proof of that key")
	}
	scope, ok := narrowScope(f.get("scope"), old.Scope)
	if !ok {
		return "", oerr(400, ErrInvalidScope, "the requested scope exceeds the granted scope")
	}
	res.scope = scope
	// Refresh can only narrow the resources (RFC 8707 §2.2).
	return s.tokenAudience(old.Resource, resourceParam(f))
}

// refreshRotating exchanges the refresh token for a new one, atomically.
func (s *Server) refreshRotating(ctx context.Context, c *Client, f *params, sig string, now time.Time, res *tokenResult) (*RefreshToken, string, *oauthError) {
	var checkErr *oauthError
	var aud string
	old, err := s.store.RotateRefreshToken(ctx, sig, now, func(old *RefreshToken) (*RefreshToken, error) {
		if aud, checkErr = s.judgeRefresh(old, c, f, now, res); checkErr != nil {
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
		return old, aud, nil
	case checkErr != nil && errors.Is(err, checkErr):
		return nil, "", checkErr
	case errors.Is(err, ErrNotFound):
		return nil, "", badGrant("the refresh token is invalid, expired or revoked")
	case errors.Is(err, ErrTokenRotated):
		s.reused(ctx, c, old, now)
		return nil, "", badGrant("the refresh token is invalid, expired or revoked")
	}
	s.log.ErrorContext(ctx, "oauth2kit: rotating a refresh token failed", "err", err)
	return nil, "", storageError(err)
}

// refreshInPlace serves a refresh for a client whose tokens do not rotate:
// the token is read, not consumed, so concurrent refreshes all succeed.
// Revocation still reaches it through its family.
func (s *Server) refreshInPlace(ctx context.Context, c *Client, f *params, sig string, now time.Time, res *tokenResult) (*RefreshToken, string, *oauthError) {
	old, err := s.store.GetRefreshToken(ctx, sig)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, "", badGrant("the refresh token is invalid, expired or revoked")
	case err != nil:
		s.log.ErrorContext(ctx, "oauth2kit: reading a refresh token failed", "err", err)
		return nil, "", storageError(err)
	case old.RotatedAt != nil:
		// Rotated out while the client's policy rotated: a stale copy is
		// a reuse whatever the policy says now.
		s.reused(ctx, c, old, now)
		return nil, "", badGrant("the refresh token is invalid, expired or revoked")
	}
	aud, e := s.judgeRefresh(old, c, f, now, res)
	if e != nil {
		return nil, "", e
	}
	revoked, err := s.store.IsFamilyRevoked(ctx, old.FamilyID)
	switch {
	case err != nil:
		s.log.ErrorContext(ctx, "oauth2kit: reading a grant's revocation failed", "err", err)
		return nil, "", storageError(err)
	case revoked:
		return nil, "", badGrant("the refresh token is invalid, expired or revoked")
	}
	return old, aud, nil
}

// reused handles a refresh token that came back after it was rotated out:
// either the client or an attacker holds a stale copy, so the whole family
// dies (RFC 9700 §4.14.2).
func (s *Server) reused(ctx context.Context, c *Client, old *RefreshToken, now time.Time) {
	if old == nil || old.ClientID != c.ID || old.RotatedAt == nil {
		return
	}
	s.log.WarnContext(ctx, "oauth2kit: refresh token reused; revoking its grant", "client_id", c.ID, "grant_id", old.FamilyID)
	err := s.revokeFamily(ctx, old.FamilyID, now)
	if err != nil {
		s.log.ErrorContext(ctx, "oauth2kit: revoking a reused refresh family failed", "err", err)
	}
	s.emit(ctx, Event{Kind: EventRefreshReuse, ClientID: c.ID, UserID: old.UserID, GrantID: old.FamilyID, FamilyRevoked: err == nil})
}
