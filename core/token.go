package core

import (
	"slices"
	"strings"
	"time"
)

// Token is the token endpoint (RFC 6749 §3.2).
func (s *Server) Token(w Responder, r Request) { s.serve(&epToken, w, r) }

var epToken = endpoint{field: "Paths.Token", path: func(c *Config) *string { return &c.Paths.Token }, def: "/oauth2/token",
	methods: []string{"POST"}, allow: hdrAllowPost, meta: "token_endpoint", serve: (*Server).token}

func (s *Server) token(w Responder, r Request) {
	f := s.getParams()
	defer s.putParams(f)
	if e := s.readPost(r, f); e != nil {
		s.refuseToken(w, r, e, false, "", nil)
		return
	}
	gt := f.get("grant_type")
	if gt == "" {
		s.refuseToken(w, r, badRequest("grant_type is required"), false, "", nil)
		return
	}
	g := s.grants.lookup(gt)
	if g == nil {
		s.refuseToken(w, r, oerr(400, ErrUnsupportedGrantType, "the grant type is not supported"), false, "", nil)
		return
	}
	ca, e := s.authenticateClient(r, f, g.public)
	if e != nil {
		s.refuseToken(w, r, e, false, gt, nil)
		return
	}
	c := ca.client
	s.corsForClient(w, r, c)
	legacy := s.profileOf(c) == ProfileDraft10 && s.cfg.Draft10ErrorEnvelope
	if !c.AllowsGrant(gt) {
		s.refuseToken(w, r, oerr(400, ErrUnauthorizedClient, "the client may not use this grant type"), legacy, gt, c)
		return
	}
	for _, p := range g.required {
		if f.get(p) == "" {
			s.refuseToken(w, r, badRequest(p+" is required"), legacy, gt, c)
			return
		}
	}
	// The proof is checked (and its jti spent) only once the client has
	// authenticated: nobody can use up a client's proofs without its
	// credentials. The grant runs after it, so a proof can never be
	// replayed into a code redemption.
	if f.dpopJKT, e = s.tokenProof(w, r, c); e != nil {
		s.refuseToken(w, r, e, legacy, gt, c)
		return
	}
	if e = s.fapiToken(c, f.dpopJKT); e != nil {
		s.refuseToken(w, r, e, legacy, gt, c)
		return
	}
	res, e := g.handle(s, r.Context(), c, f)
	if e != nil {
		s.refuseToken(w, r, e, legacy, gt, c)
		return
	}
	s.noteClientUsed(r.Context(), c)
	if s.eventsOn() {
		s.tokenIssued(r, gt, c, res)
	}
	o := newJSON(512)
	o.str("access_token", res.access)
	o.strIf("issued_token_type", res.issuedType)
	switch {
	case res.tokenType != "":
		o.str("token_type", res.tokenType)
	case f.dpopJKT != "":
		o.str("token_type", "DPoP") // RFC 9449 §5.1
	default:
		o.str("token_type", "Bearer")
	}
	expires := s.cfg.Lifetimes.AccessToken
	if res.expiresIn > 0 {
		expires = res.expiresIn
	}
	o.num("expires_in", int64(expires/time.Second))
	o.strIf("refresh_token", res.refresh)
	o.strIf("scope", res.scope)
	o.strIf("id_token", res.idToken)
	sendJSON(w, 200, o.bytes())
}

// refuseToken sends a token endpoint error and reports it
// (EventTokenRefused). c is the authenticated client, nil before.
func (s *Server) refuseToken(w Responder, r Request, e *oauthError, legacy bool, gt string, c *Client) {
	if s.eventsOn() {
		ev := Event{Kind: EventTokenRefused, GrantType: gt, ErrorCode: e.code, Reason: e.desc, RemoteAddr: r.RemoteAddr()}
		if c != nil {
			ev.ClientID = c.ID
		}
		s.emit(r.Context(), ev)
	}
	sendError(w, e, legacy)
}

// tokenIssued reports a token response (EventTokenIssued).
func (s *Server) tokenIssued(r Request, gt string, c *Client, res *tokenResult) {
	format := res.format
	switch {
	case res.tokenType == TokenTypeNA:
		format = "" // an ID-JAG: no access token of the server's
	case format == "":
		format = s.tokenFormatName(c)
	}
	s.emit(r.Context(), Event{
		Kind: EventTokenIssued, ClientID: c.ID, UserID: res.userID, GrantType: gt, GrantID: res.grantID,
		TokenFormat: format, TokenType: res.issuedType, Scope: res.scope, RemoteAddr: r.RemoteAddr(),
	})
}

type tokenResult struct {
	access, refresh, scope, idToken string
	// issuedType is issued_token_type (token exchange, RFC 8693 §2.2.1);
	// tokenType replaces Bearer / DPoP (N_A for an ID-JAG); expiresIn,
	// when set, the access token lifetime (a token shorter-lived than the
	// default).
	issuedType, tokenType string
	expiresIn             time.Duration
	// userID and grantID are the user and grant the tokens were issued
	// for, and format the access token's Event.TokenFormat ("" for the
	// client's format, TokenFormatJWT for an exchange to a JWT): what
	// EventTokenIssued reports.
	userID, grantID, format string
}

// issueAccess mints the access token of a family.
func (s *Server) issueAccess(c *Client, userID, scope, familyID, info, aud, claims, jkt string, now time.Time) (string, *oauthError) {
	return s.mintFor(c, TokenInfo{UserID: userID, Scope: scope, GrantID: familyID, AdditionalInfo: info, Audience: aud, userinfoClaims: claims, JKT: jkt}, now)
}

// mintFor fills in what every access token carries and seals t.
func (s *Server) mintFor(c *Client, t TokenInfo, now time.Time) (string, *oauthError) {
	t.Issuer, t.ClientID = s.cfg.Issuer, c.ID
	if t.Audience == "" {
		t.Audience = s.cfg.Audience
	}
	t.IssuedAt, t.ExpiresAt = now, now.Add(s.cfg.Lifetimes.AccessToken)
	t.Draft10 = s.profileOf(c) == ProfileDraft10
	at, err := s.mintAccessToken(c, &t)
	if err != nil {
		s.log.Error("oauth2kit: minting an access token failed", "err", err)
		return "", oerr(500, ErrServerError, "the server could not complete the request")
	}
	return at, nil
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
