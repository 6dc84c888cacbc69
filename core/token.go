package core

import (
	"context"
	"encoding/base64"
	"errors"
	"net/url"
	"slices"
	"strings"
	"time"
)

// clientAuth is the outcome of client authentication.
type clientAuth struct {
	client   *Client
	viaBasic bool
}

// formError maps a form parsing failure to its RFC error.
func formError(err error) *oauthError {
	switch err {
	case errTooLarge:
		return oerr(413, ErrInvalidRequest, "request body too large")
	case errRepeated:
		return badRequest("a parameter is repeated")
	case errTooMany:
		return badRequest("too many parameters")
	case errValueLarge:
		return badRequest("a parameter value is too long")
	case errBadContentType:
		return badRequest("the body must be application/x-www-form-urlencoded")
	}
	return badRequest("malformed parameters")
}

// readPost checks the method and reads the form of a token, revocation or
// introspection request.
func (s *Server) readPost(w Responder, r Request, f *params) *oauthError {
	if r.Method() != "POST" {
		hdrAllowPost.set(w)
		return oerr(405, ErrInvalidRequest, "use POST")
	}
	// A secret in the URI ends up in logs and histories: refuse it, even
	// when the body authenticates properly (OAuth 2.1 §2.4.1).
	if q := r.RawQuery(); q != "" {
		var qp params
		if err := parseParams(q, s.cfg.MaxParams, s.cfg.MaxValueLength, &qp); err != nil {
			return formError(err)
		}
		if qp.get("client_secret") != "" {
			return badRequest("client_secret must not be sent in the URI")
		}
	}
	if err := readForm(r, s.cfg.MaxBodyBytes, s.cfg.MaxParams, s.cfg.MaxValueLength, f); err != nil {
		return formError(err)
	}
	return nil
}

// authenticateClient authenticates the client of a token, revocation or
// introspection request: HTTP Basic (form-urlencoded id and secret) or
// client_id/client_secret in the body, never both; public clients send
// client_id only. Failures are counted for throttling.
func (s *Server) authenticateClient(r Request, f *params, allowPublic bool) (clientAuth, *oauthError) {
	// The challenge is built only on the failure paths that send it: a
	// concatenation here cost an allocation on every token request.
	basicChallenge := func() string { return `Basic realm="` + SafeDescription(s.cfg.Realm) + `", charset="UTF-8"` }
	invalid := func(basic bool) *oauthError {
		if basic {
			e := oerr(401, ErrInvalidClient, "client authentication failed")
			e.challenge = basicChallenge()
			return e
		}
		return oerr(400, ErrInvalidClient, "client authentication failed")
	}
	hdrs := r.Header("Authorization")
	if len(hdrs) > 1 {
		return clientAuth{}, badRequest("more than one Authorization header")
	}
	bodyID, bodySecret := f.get("client_id"), f.get("client_secret")
	var id, secret string
	basic := false
	if len(hdrs) == 1 {
		basic = true
		if bodySecret != "" {
			return clientAuth{}, badRequest("use one client authentication method, not two")
		}
		raw, ok := cutScheme(hdrs[0], "Basic")
		if !ok {
			return clientAuth{}, invalid(true)
		}
		var decodeOK bool
		id, secret, decodeOK = decodeBasic(raw)
		if !decodeOK {
			// The original library's clients send "Basic <raw secret>" with
			// client_id in the body; honoured only for clients that opted
			// in (checked below once the client is known).
			if bodyID == "" {
				return clientAuth{}, invalid(true)
			}
			id, secret = bodyID, raw
		} else if bodyID != "" && bodyID != id {
			return clientAuth{}, badRequest("client_id differs from the authenticated client")
		}
		return s.verifyClient(r, id, secret, basic, !decodeOK, allowPublic, invalid)
	}
	if bodyID == "" {
		return clientAuth{}, s.authRequired()
	}
	id, secret = bodyID, bodySecret
	return s.verifyClient(r, id, secret, basic, false, allowPublic, invalid)
}

// authRequired is the refusal of a request that carries no client
// authentication.
func (s *Server) authRequired() *oauthError {
	e := oerr(401, ErrInvalidClient, "client authentication is required")
	e.challenge = `Basic realm="` + SafeDescription(s.cfg.Realm) + `", charset="UTF-8"`
	return e
}

func (s *Server) verifyClient(r Request, id, secret string, basic, legacyRaw, allowPublic bool, invalid func(bool) *oauthError) (clientAuth, *oauthError) {
	now := s.now()
	if wait := s.throttle.blocked(id, r.RemoteAddr(), now); wait > 0 {
		e := oerr(429, ErrInvalidClient, "too many failed authentication attempts; retry later")
		e.retryAfter = int(wait/time.Second) + 1
		return clientAuth{}, e
	}
	if len(id) > 128 || len(secret) > 512 {
		s.throttle.fail("", r.RemoteAddr(), now)
		return clientAuth{}, invalid(basic)
	}
	c, err := s.getClient(r.Context(), id)
	if err != nil {
		if !errors.Is(err, ErrNotFound) {
			s.log.ErrorContext(r.Context(), "oauth2kit: client lookup failed", "err", err)
			return clientAuth{}, storageError(err)
		}
		// Spend what a wrong secret costs, so timing does not tell
		// registered client ids from unknown ones.
		VerifySecret(dummyHash, secret)
		s.throttle.fail(id, r.RemoteAddr(), now)
		return clientAuth{}, invalid(basic)
	}
	ok := false
	switch {
	case c.Public:
		ok = secret == "" && allowPublic && !legacyRaw
	case legacyRaw:
		ok = c.LegacyBasicSecret && s.profileOf(c) == ProfileDraft10 && VerifySecret(c.SecretHash, secret)
	default:
		// Hash even an empty secret: the answer takes the same time.
		ok = VerifySecret(c.SecretHash, secret) && secret != ""
	}
	if !ok {
		account := id
		if c.Public {
			account = "" // nothing to guess: count the address only
		}
		s.throttle.fail(account, r.RemoteAddr(), now)
		s.log.WarnContext(r.Context(), "oauth2kit: client authentication failed", "client_id", id, "remote", r.RemoteAddr())
		return clientAuth{}, invalid(basic)
	}
	return clientAuth{client: c, viaBasic: basic}, nil
}

// cutScheme returns the credentials after "<scheme> " (scheme compared
// case-insensitively).
func cutScheme(h, scheme string) (string, bool) {
	if len(h) <= len(scheme)+1 || !strings.EqualFold(h[:len(scheme)], scheme) || h[len(scheme)] != ' ' {
		return "", false
	}
	return strings.TrimLeft(h[len(scheme)+1:], " "), true
}

// decodeBasic decodes Basic credentials: base64 of "id:secret" where both
// are form-urlencoded (RFC 6749 §2.3.1). A malformed escape fails.
func decodeBasic(raw string) (id, secret string, ok bool) {
	if len(raw) > 2048 {
		return "", "", false
	}
	b, err := base64.StdEncoding.DecodeString(raw)
	if err != nil {
		return "", "", false
	}
	u, p, found := strings.Cut(string(b), ":")
	if !found || u == "" {
		return "", "", false
	}
	if u, err = url.QueryUnescape(u); err != nil {
		return "", "", false
	}
	if p, err = url.QueryUnescape(p); err != nil {
		return "", "", false
	}
	return u, p, true
}

// EncodeBasic builds the value of an Authorization header for client
// credentials, form-urlencoding both parts as RFC 6749 §2.3.1 requires.
func EncodeBasic(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
}

// Token is the token endpoint (RFC 6749 §3.2).
func (s *Server) Token(w Responder, r Request) {
	f := s.getParams()
	defer s.putParams(f)
	if e := s.readPost(w, r, f); e != nil {
		sendError(w, e, false)
		return
	}
	gt := f.get("grant_type")
	switch gt {
	case GrantAuthorizationCode, GrantRefreshToken, GrantClientCredentials:
	case "":
		sendError(w, badRequest("grant_type is required"), false)
		return
	default:
		sendError(w, oerr(400, ErrUnsupportedGrantType, "the grant type is not supported"), false)
		return
	}
	ca, e := s.authenticateClient(r, f, gt != GrantClientCredentials)
	if e != nil {
		sendError(w, e, false)
		return
	}
	c := ca.client
	legacy := s.profileOf(c) == ProfileDraft10 && s.cfg.Draft10ErrorEnvelope
	if !c.AllowsGrant(gt) {
		sendError(w, oerr(400, ErrUnauthorizedClient, "the client may not use this grant type"), legacy)
		return
	}
	var res *tokenResult
	switch gt {
	case GrantAuthorizationCode:
		res, e = s.exchangeCode(r.Context(), c, f)
	case GrantRefreshToken:
		res, e = s.refresh(r.Context(), c, f)
	default:
		res, e = s.clientCredentials(c, f)
	}
	if e != nil {
		sendError(w, e, legacy)
		return
	}
	o := newJSON(512)
	o.str("access_token", res.access)
	o.str("token_type", "Bearer")
	o.num("expires_in", int64(s.cfg.AccessTokenLifetime/time.Second))
	o.strIf("refresh_token", res.refresh)
	o.strIf("scope", res.scope)
	sendJSON(w, 200, o.bytes())
}

type tokenResult struct{ access, refresh, scope string }

// issueAccess mints the access token of a family.
func (s *Server) issueAccess(c *Client, userID, scope, familyID, info string, now time.Time) (string, *oauthError) {
	return s.mintFor(c, TokenInfo{UserID: userID, Scope: scope, GrantID: familyID, AdditionalInfo: info}, now)
}

// mintFor fills in what every access token carries and seals t.
func (s *Server) mintFor(c *Client, t TokenInfo, now time.Time) (string, *oauthError) {
	t.Issuer, t.Audience, t.ClientID = s.cfg.Issuer, s.cfg.Audience, c.ID
	t.IssuedAt, t.ExpiresAt = now, now.Add(s.cfg.AccessTokenLifetime)
	t.Draft10 = s.profileOf(c) == ProfileDraft10
	at, err := s.mintAccessToken(&t)
	if err != nil {
		s.log.Error("oauth2kit: minting an access token failed", "err", err)
		return "", oerr(500, ErrServerError, "the server could not complete the request")
	}
	return at, nil
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
	code := f.get("code")
	if code == "" {
		return nil, badRequest("code is required")
	}
	redirect, verifier := f.get("redirect_uri"), f.get("code_verifier")
	now := s.now()
	// check validates the request against the grant; it runs inside the
	// store's consumption, and also for a replay (to decide whether the
	// replay is authentic enough to revoke the first issuance).
	check := func(g *Grant) *oauthError {
		if g.ClientID != c.ID {
			return badGrant("the code was not issued to this client")
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
		if g.CodeChallenge == "" {
			if verifier != "" {
				return badRequest("code_verifier sent but no code_challenge was bound to the code")
			}
			return nil
		}
		if verifier == "" {
			return badGrant("code_verifier is required")
		}
		if !VerifyPKCE(verifier, g.CodeChallenge, g.CodeChallengeMethod) {
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
		if !c.AllowsGrant(GrantRefreshToken) {
			return nil, nil
		}
		tok, sig, err := s.keys.newOpaque(prefixRefresh)
		if err != nil {
			return nil, err
		}
		res.refresh = tok
		return &RefreshToken{
			Sig: sig, FamilyID: g.ID, ClientID: c.ID, UserID: g.UserID, Scope: g.Scope,
			AdditionalInfo: g.AdditionalInfo, CreatedAt: now, ExpiresAt: now.Add(s.cfg.RefreshTokenLifetime),
		}, nil
	}
	sigs := s.codeSigs(code, c)
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
		if check(g) == nil {
			s.log.WarnContext(ctx, "oauth2kit: authorization code replayed; revoking its tokens", "client_id", c.ID, "grant_id", g.ID)
			if rerr := s.revokeFamily(ctx, g.ID, now); rerr != nil {
				s.log.ErrorContext(ctx, "oauth2kit: revoking a replayed grant failed", "err", rerr)
			}
		}
		return nil, badGrant("the code is invalid, expired or used")
	default:
		s.log.ErrorContext(ctx, "oauth2kit: redeeming a code failed", "err", err)
		return nil, storageError(err)
	}
	at, e := s.issueAccess(c, g.UserID, g.Scope, g.ID, g.AdditionalInfo, now)
	if e != nil {
		return nil, e
	}
	res.access, res.scope = at, g.Scope
	return &res, nil
}

func (s *Server) refresh(ctx context.Context, c *Client, f *params) (*tokenResult, *oauthError) {
	tok := f.get("refresh_token")
	if tok == "" {
		return nil, badRequest("refresh_token is required")
	}
	sig, ok := s.keys.opaqueSig(prefixRefresh, tok)
	if !ok {
		return nil, badGrant("the refresh token is invalid, expired or revoked")
	}
	requested := f.get("scope")
	now := s.now()
	var res tokenResult
	var checkErr *oauthError
	old, err := s.store.RotateRefreshToken(ctx, sig, now, func(old *RefreshToken) (*RefreshToken, error) {
		if old.ClientID != c.ID {
			checkErr = badGrant("the refresh token was not issued to this client")
			return nil, checkErr
		}
		if !now.Before(old.ExpiresAt) {
			checkErr = badGrant("the refresh token is invalid, expired or revoked")
			return nil, checkErr
		}
		scope, ok := NarrowScope(requested, old.Scope)
		if !ok {
			checkErr = oerr(400, ErrInvalidScope, "the requested scope exceeds the granted scope")
			return nil, checkErr
		}
		res.scope = scope
		nt, nsig, err := s.keys.newOpaque(prefixRefresh)
		if err != nil {
			return nil, err
		}
		res.refresh = nt
		// The new refresh token keeps the grant's full scope; only the
		// access token is narrowed (RFC 6749 §6).
		return &RefreshToken{
			Sig: nsig, FamilyID: old.FamilyID, ClientID: c.ID, UserID: old.UserID, Scope: old.Scope,
			AdditionalInfo: old.AdditionalInfo, CreatedAt: now, ExpiresAt: now.Add(s.cfg.RefreshTokenLifetime),
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
	at, e := s.issueAccess(c, old.UserID, res.scope, old.FamilyID, old.AdditionalInfo, now)
	if e != nil {
		return nil, e
	}
	res.access = at
	return &res, nil
}

func (s *Server) clientCredentials(c *Client, f *params) (*tokenResult, *oauthError) {
	if c.Public {
		return nil, oerr(400, ErrUnauthorizedClient, "client_credentials is for confidential clients")
	}
	scope, e := s.allowedScope(c, f.get("scope"))
	if e != nil {
		return nil, e
	}
	fam, err := newID()
	if err != nil {
		return nil, oerr(500, ErrServerError, "the server could not complete the request")
	}
	at, e := s.mintFor(c, TokenInfo{Scope: scope, GrantID: fam, ClientCredentials: true}, s.now())
	if e != nil {
		return nil, e
	}
	return &tokenResult{access: at, scope: scope}, nil
}

// allowedScope resolves a requested scope against the client's and the
// server's lists: the canonical requested scope, or the default when none
// was requested.
func (s *Server) allowedScope(c *Client, requested string) (string, *oauthError) {
	if requested == "" {
		switch {
		case len(c.Scopes) > 0:
			requested = strings.Join(c.Scopes, " ")
		default:
			requested = s.cfg.DefaultScope
		}
	}
	// Bounded so that every token minted with it stays within what the
	// server accepts back (maxTokenLen).
	if len(requested) > maxScopeLen {
		return "", oerr(400, ErrInvalidScope, "the scope is too long")
	}
	parts, ok := parseScope(requested)
	if !ok {
		return "", oerr(400, ErrInvalidScope, "the scope is malformed")
	}
	for _, p := range parts {
		if len(c.Scopes) > 0 && !slices.Contains(c.Scopes, p) {
			return "", oerr(400, ErrInvalidScope, "the client may not request scope "+p)
		}
		if len(s.cfg.Scopes) > 0 && !slices.Contains(s.cfg.Scopes, p) {
			return "", oerr(400, ErrInvalidScope, "unknown scope")
		}
	}
	return strings.Join(parts, " "), nil
}
