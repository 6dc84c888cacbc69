package core

import (
	"context"
	"strings"
)

// CheckToken validates an access token as a resource server must: it opens
// the token (authenticity, type, key), checks issuer, audience and expiry,
// and that its grant has not been revoked (exactly, or within
// Config.Caches.Revocation), nor, for a token issued by token exchange,
// any grant it was exchanged from (TokenInfo.ParentGrantIDs). Every
// failure returns an error; none of them says why beyond "invalid", on
// purpose.
func (s *Server) CheckToken(ctx context.Context, token string) (*TokenInfo, error) {
	return s.CheckTokenFor(ctx, token, s.cfg.Audience)
}

// CheckTokenFor is CheckToken for the resource audience (a
// Config.Resources URI): a token issued for another resource, or for the
// server's default audience, is refused (RFC 8707). "" is Config.Audience.
func (s *Server) CheckTokenFor(ctx context.Context, token, audience string) (*TokenInfo, error) {
	if audience == "" {
		audience = s.cfg.Audience
	}
	info := new(TokenInfo)
	if err := s.checkToken(ctx, token, info, audience); err != nil {
		return nil, err
	}
	return info, nil
}

// checkToken checks token for audience ("" accepts any of the server's
// audiences: its own endpoints, such as userinfo).
func (s *Server) checkToken(ctx context.Context, token string, info *TokenInfo, audience string) error {
	now := s.now()
	if err := s.openAccessToken(token, now, info); err != nil {
		return err
	}
	if audience != "" && canonicalResource(info.Audience) != canonicalResource(audience) {
		return errBadToken
	}
	if err := s.familyLive(ctx, info.GrantID, now); err != nil {
		return err
	}
	// An exchanged token dies with every family it was exchanged from
	// (SECURITY.md R71); any other token has none, and costs nothing more.
	for _, p := range info.ParentGrantIDs {
		if err := s.familyLive(ctx, p, now); err != nil {
			return err
		}
	}
	return nil
}

// ResourceError is a refused resource request: write Status, the
// WWW-Authenticate header and Body (JSON) as they are.
type ResourceError struct {
	Status          int
	WWWAuthenticate string
	Body            []byte
	// Err is the internal cause, for logs; never send it.
	Err error
	// nonce is a DPoP nonce the client must use (DPoP-Nonce, RFC 9449 §8).
	nonce string
}

func (e *ResourceError) Error() string { return string(e.Body) }

// Write sends the refusal through w.
func (e *ResourceError) Write(w Responder) {
	if e.WWWAuthenticate != "" {
		w.SetHeader("WWW-Authenticate", e.WWWAuthenticate)
	}
	if e.nonce != "" {
		w.SetHeader("DPoP-Nonce", e.nonce)
	}
	hdrJSON.set(w)
	hdrNoStore.set(w)
	_ = w.Send(e.Status, e.Body)
}

// CheckRequest extracts the access token from a resource request (RFC 6750
// §2: the Authorization header, or for POST, PUT, PATCH and DELETE a form
// body access_token; draft-10 clients also "Authorization: OAuth" and
// oauth_token) and checks it and the required scopes. On success it
// returns the token info; otherwise the refusal to send.
//
// A form body of a POST, PUT, PATCH or DELETE is read whenever the request
// is a form, with or without an Authorization header (a token in both is
// invalid_request); adapters that run this before a handler must make the
// body readable again (the nethttp adapter does).
func (s *Server) CheckRequest(r Request, scopes ...string) (*TokenInfo, *ResourceError) {
	return s.checkRequest(r, s.cfg.Audience, scopes)
}

// CheckRequestFor is CheckRequest at the resource audience (see
// CheckTokenFor); "" is Config.Audience.
func (s *Server) CheckRequestFor(r Request, audience string, scopes ...string) (*TokenInfo, *ResourceError) {
	if audience == "" {
		audience = s.cfg.Audience
	}
	return s.checkRequest(r, audience, scopes)
}

func (s *Server) checkRequest(r Request, audience string, scopes []string) (*TokenInfo, *ResourceError) {
	info, rerr := s.checkRequestToken(r, audience, scopes)
	// A refusal at a resource with protected resource metadata points the
	// client to it (RFC 9728 §5.1): that is how an MCP client finds the
	// authorization server from a 401 alone.
	if rerr != nil && strings.HasPrefix(rerr.WWWAuthenticate, "Bearer ") {
		if u := s.resourceMetadataURL(audience); u != "" {
			// At such a resource a 401 also names the scopes it needs, as
			// the 403 does, so that a client asks for them at once: the MCP
			// specification's scope selection reads them from this first
			// challenge. (Elsewhere a request without credentials gets the
			// realm alone, RFC 6750 §3.1.)
			if rerr.Status == 401 && len(scopes) > 0 && !strings.Contains(rerr.WWWAuthenticate, ` scope="`) {
				rerr.WWWAuthenticate += `, scope="` + safeDescription(strings.Join(scopes, " ")) + `"`
			}
			rerr.WWWAuthenticate += `, resource_metadata="` + u + `"`
		}
		// DPoP is offered after Bearer, which stays first: some clients read
		// only the first challenge (the MCP TypeScript SDK).
		if c := s.dpopChallenge(); c != "" && rerr.Status == 401 {
			rerr.WWWAuthenticate += ", " + c
		}
	}
	return info, rerr
}

func (s *Server) checkRequestToken(r Request, audience string, scopes []string) (*TokenInfo, *ResourceError) {
	tok, scheme, rerr := s.extractToken(r)
	if rerr != nil {
		return nil, rerr
	}
	draftServer := s.cfg.Profile == ProfileDraft10
	legacy := scheme == "OAuth" || (scheme == "" && draftServer)
	if tok == "" {
		return nil, s.resourceError(401, "", "", legacy, nil)
	}
	info := new(TokenInfo)
	if legacy && !draftServer {
		// Decided before the revocation lookup, which such a request must
		// not cost (nor turn into a 503 when storage fails).
		if s.openAccessToken(tok, s.now(), info); !info.Draft10 {
			return nil, s.resourceError(401, "", "", false, errBadToken)
		}
	}
	err := s.checkToken(r.Context(), tok, info, audience)
	if err != nil && err != errBadToken && err != errTokenExpired && err != errTokenRevoked {
		s.log.ErrorContext(r.Context(), "oauth2kit: revocation check failed", "err", err)
		return nil, &ResourceError{Status: 503, Body: []byte(`{"error":"temporarily_unavailable"}`), Err: err}
	}
	if legacy && !draftServer && !info.Draft10 {
		// The draft-10 forms (the OAuth scheme, oauth_token) are honoured
		// only for tokens minted for draft-10 clients (openAccessToken sets
		// the flag for authentic ones, expired or revoked included). For
		// anything else a default-profile server does not support them:
		// the request carries no credentials it understands (RFC 6750
		// §3.1), so no error code, and the Bearer challenge.
		return nil, s.resourceError(401, "", "", false, errBadToken)
	}
	if err != nil {
		code := ErrInvalidToken
		// expired_token only for a draft-10 token (openAccessToken fills
		// the flag before it reports expiry): a default-profile token sent
		// in the legacy scheme learns nothing beyond invalid_token.
		if legacy && err == errTokenExpired && (info.Draft10 || s.cfg.Profile == ProfileDraft10) {
			code = ErrExpiredToken
		}
		return nil, s.resourceError(401, code, "", legacy, err)
	}
	if rerr := s.checkBinding(r, tok, scheme, audience, info); rerr != nil {
		return nil, rerr
	}
	if info.X5T != "" {
		if rerr := s.checkCertBinding(r, info); rerr != nil {
			return nil, rerr
		}
	}
	for _, sc := range scopes {
		if !info.HasScope(sc) {
			return nil, s.resourceError(403, ErrInsufficientScope, strings.Join(scopes, " "), legacy, nil)
		}
	}
	return info, nil
}

// extractToken finds the token and the scheme it came in ("Bearer",
// "OAuth", or "" for none).
func (s *Server) extractToken(r Request) (tok, scheme string, rerr *ResourceError) {
	found := 0
	hdrs := r.Header("Authorization")
	if len(hdrs) > 1 {
		return "", "", s.resourceError(400, ErrInvalidRequest, "", false, nil)
	}
	// Draft-10 forms are recognised always, and honoured only for tokens
	// minted for draft-10 clients (CheckRequest checks the flag).
	if len(hdrs) == 1 {
		t, ok := parseBearer(hdrs[0])
		if ok {
			tok, scheme = t, "Bearer"
		} else if t, ok := parseAuthScheme(hdrs[0], "DPoP"); ok && s.cfg.DPoP.Enabled {
			tok, scheme = t, "DPoP"
		} else if t, ok := parseAuthScheme(hdrs[0], "OAuth"); ok {
			tok, scheme = t, "OAuth"
		} else {
			// An Authorization header of another scheme (Basic) is no
			// token; a malformed Bearer header is an invalid token, and so
			// is a malformed OAuth one where draft 10 is the server's
			// profile (elsewhere that scheme is unsupported: no token).
			if hasScheme(hdrs[0], "Bearer") || (s.cfg.DPoP.Enabled && hasScheme(hdrs[0], "DPoP")) || (s.cfg.Profile == ProfileDraft10 && hasScheme(hdrs[0], "OAuth")) {
				return "", "", s.resourceError(401, ErrInvalidToken, "", false, errBadToken)
			}
		}
		if tok != "" {
			found++
		}
	}
	if strings.Contains(r.RawQuery(), "oauth_token") {
		// The query belongs to the app: one that does not parse as ours
		// carries no oauth_token we could use, and is not refused for it.
		var q params
		_ = parseParams(r.RawQuery(), s.cfg.Limits.MaxParams, s.cfg.Limits.MaxValueLength, &q)
		if t := q.get("oauth_token"); t != "" {
			tok, scheme = t, "OAuth"
			found++
		}
	}
	m := r.Method()
	if (m == "POST" || m == "PUT" || m == "PATCH" || m == "DELETE") && isForm(r) {
		var f params
		if err := readForm(r, s.cfg.Limits.MaxBodyBytes, s.cfg.Limits.MaxParams, s.cfg.Limits.MaxValueLength, &f); err != nil {
			// A large or unusual form is the handler's business when the
			// token came in the header; without one, the request has no
			// usable token.
			if found == 0 {
				return "", "", s.resourceError(400, ErrInvalidRequest, "", false, nil)
			}
		}
		if t := f.get("access_token"); t != "" {
			tok, scheme = t, "Bearer"
			found++
		}
		if t := f.get("oauth_token"); t != "" {
			tok, scheme = t, "OAuth"
			found++
		}
	}
	if found > 1 {
		return "", "", s.resourceError(400, ErrInvalidRequest, "", scheme == "OAuth", nil)
	}
	return tok, scheme, nil
}

// resourceError builds the RFC 6750 §3 (or draft-10 §5.2) refusal. Every
// invalid token gets the same body, whatever the cause.
func (s *Server) resourceError(status int, code, scope string, legacy bool, cause error) *ResourceError {
	scheme := "Bearer"
	if legacy {
		scheme = "OAuth"
	}
	var b strings.Builder
	b.WriteString(scheme)
	b.WriteString(` realm="`)
	b.WriteString(safeDescription(s.cfg.Realm))
	b.WriteByte('"')
	desc := ""
	switch code {
	case ErrInvalidToken:
		desc = "the access token is invalid, expired or revoked"
	case ErrExpiredToken:
		desc = "the access token expired"
	case ErrInsufficientScope:
		desc = "the access token lacks the required scope"
	case ErrInvalidRequest:
		desc = "the request is malformed or carries more than one token"
	}
	if code != "" {
		b.WriteString(`, error="` + code + `", error_description="` + desc + `"`)
	}
	if scope != "" {
		b.WriteString(`, scope="` + safeDescription(scope) + `"`)
	}
	var body []byte
	if code != "" {
		o := newJSON(128)
		o.str("error", code)
		o.str("error_description", desc)
		if scope != "" {
			o.str("scope", scope)
		}
		body = o.bytes()
	} else {
		// No credentials: no error information at all (RFC 6750 §3.1).
		body = []byte(`{}`)
	}
	e := &ResourceError{Status: status, Body: body, Err: cause}
	if status == 401 || status == 403 || code == "" {
		e.WWWAuthenticate = b.String()
	}
	return e
}
