package core

import (
	"context"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Identity Assertion JWT Authorization Grants (ID-JAG,
// draft-ietf-oauth-identity-assertion-authz-grant; the MCP ext-auth
// extension's enterprise-managed authorization): as the enterprise IdP,
// the server exchanges an id_token it issued to a client for a short JWT
// that another authorization server, which trusts this one, accepts in
// the RFC 7523 jwt-bearer grant. The exchange is the token exchange grant
// with requested_token_type TokenTypeIDJAG.

const (
	// TokenTypeIDJAG is the token type of an ID-JAG: the
	// requested_token_type that asks for one, and the issued_token_type
	// of the answer.
	TokenTypeIDJAG = "urn:ietf:params:oauth:token-type:id-jag"
	// IDJAGType is the JWT header typ of an ID-JAG (RFC 8725 §3.11
	// explicit typing): what a receiving server checks first.
	IDJAGType = "oauth-id-jag+jwt"
	// TokenTypeNA is the token_type of an exchange answer whose token is
	// no access token (RFC 8693 §2.2.1), such as an ID-JAG.
	TokenTypeNA = "N_A"

	maxIDJAGLifetime = 10 * time.Minute
)

// IDJAGAudience is an authorization server ID-JAGs may be issued for
// (Config.TokenExchange.IDJAGAudiences).
type IDJAGAudience struct {
	// Issuer is its issuer identifier: the audience clients ask for
	// (compared ignoring a trailing "/" on an origin) and, exactly as
	// written here, the ID-JAG's aud.
	Issuer string
	// Scopes an ID-JAG for it may carry (scopes at its resources, not
	// this server's); empty: the scope the client requests, as it is.
	Scopes []string
	// Resources an ID-JAG for it may name (resource); empty: any
	// absolute URI.
	Resources []string
}

// exchangeIDJAG issues an ID-JAG for the id_token subject: aud the target
// authorization server's issuer (one of IDJAGAudiences, or one the Policy
// allows), client_id the client's id there (its own unless the Policy
// maps it), sub the user, the id_token's authentication (auth_time, acr,
// amr), a fresh jti, and a lifetime of IDJAGLifetime at most.
func (s *Server) exchangeIDJAG(ctx context.Context, c *Client, f *params, subj *exchangeToken, r *TokenExchangeRequest, now time.Time) (*tokenResult, *oauthError) {
	x := &s.cfg.TokenExchange
	target := f.get("audience")
	if target == "" {
		return nil, badRequest("audience is required: the issuer of the authorization server the ID-JAG is for")
	}
	if !absoluteURI(target) {
		return nil, oerr(400, ErrInvalidTarget, "audience must be an absolute URI without fragment")
	}
	if canonicalResource(target) == canonicalResource(s.cfg.Issuer) {
		// The IdP must not accept its own ID-JAGs (draft §9.3): one for
		// itself has no use but to widen a grant.
		return nil, oerr(400, ErrInvalidTarget, "an ID-JAG is for another authorization server")
	}
	var entry *IDJAGAudience
	for i := range x.IDJAGAudiences {
		if canonicalResource(x.IDJAGAudiences[i].Issuer) == canonicalResource(target) {
			entry = &x.IDJAGAudiences[i]
			target = entry.Issuer
			break
		}
	}
	other := entry == nil
	res := f.get("resource")
	if res != "" {
		if !absoluteURI(res) {
			return nil, oerr(400, ErrInvalidTarget, "resource must be an absolute URI without fragment")
		}
		if entry != nil && len(entry.Resources) > 0 && !slices.ContainsFunc(entry.Resources, func(u string) bool { return canonicalResource(u) == canonicalResource(res) }) {
			other = true
		}
	}
	requested := f.get("scope")
	if len(requested) > maxScopeLen {
		return nil, oerr(400, ErrInvalidScope, "the scope is too long")
	}
	parts, ok := parseScope(requested)
	if !ok {
		return nil, oerr(400, ErrInvalidScope, "the scope is malformed")
	}
	wider := false
	if entry != nil && len(entry.Scopes) > 0 {
		for _, p := range parts {
			if !slices.Contains(entry.Scopes, p) {
				wider = true
			}
		}
	}
	scope := strings.Join(parts, " ")
	r.Scope, r.Audience, r.Resource = scope, target, res
	if e := s.runExchangePolicy(ctx, r); e != nil {
		return nil, e
	}
	switch {
	case other && !r.AllowOtherAudience:
		return nil, oerr(400, ErrInvalidTarget, "ID-JAGs are not issued for that audience or resource")
	case wider && !r.AllowWiderScope:
		return nil, oerr(400, ErrInvalidScope, "the scope is not allowed for that audience")
	}
	clientID := r.TargetClientID
	if clientID == "" || len(clientID) > 256 || !printable(clientID) {
		s.log.ErrorContext(ctx, "oauth2kit: the token exchange policy set an unusable TargetClientID", "client_id", c.ID)
		return nil, oerr(500, ErrServerError, "the server could not complete the request")
	}
	sg := s.signing.Load().signer(s.fapiIDTokenAlg(c))
	if sg == nil {
		s.log.ErrorContext(ctx, "oauth2kit: no signing key for the client's id_token_signed_response_alg", "client_id", c.ID, "alg", c.IDTokenSignedResponseAlg)
		return nil, oerr(500, ErrServerError, "the server has no key for the client's id_token algorithm")
	}
	jti, err := newID()
	if err != nil {
		return nil, oerr(500, ErrServerError, "the server could not complete the request")
	}
	exp := now.Add(x.IDJAGLifetime)
	if subj.info.ExpiresAt.Before(exp) {
		// No assertion outlives the authentication it asserts.
		exp = subj.info.ExpiresAt
	}
	o := newJSON(512)
	o.str("iss", s.cfg.Issuer)
	o.str("sub", subj.info.UserID)
	o.str("aud", target)
	o.str("client_id", clientID)
	o.str("jti", jti)
	o.num("iat", now.Unix())
	o.num("exp", exp.Unix())
	o.strIf("scope", scope)
	o.strIf("resource", res)
	if subj.auth.authTime > 0 {
		o.num("auth_time", subj.auth.authTime)
	}
	o.strIf("acr", subj.auth.acr)
	if len(subj.auth.amr) > 0 {
		o.strList("amr", subj.auth.amr)
	}
	tok, err := sg.Sign(IDJAGType, o.bytes())
	if err != nil {
		s.log.ErrorContext(ctx, "oauth2kit: signing an ID-JAG failed", "err", err, "kid", sg.KID())
		return nil, oerr(500, ErrServerError, "the server could not complete the request")
	}
	s.log.InfoContext(ctx, "oauth2kit: ID-JAG issued", "client_id", c.ID, "aud", target, "target_client_id", clientID)
	return &tokenResult{access: tok, scope: scope, issuedType: TokenTypeIDJAG, tokenType: TokenTypeNA, expiresIn: exp.Sub(now)}, nil
}

// absoluteURI: an absolute URI without fragment (RFC 8707 §2, RFC 8693
// §2.1 audience values this server can name).
func absoluteURI(u string) bool {
	p, err := url.Parse(u)
	return err == nil && p.IsAbs() && p.Fragment == "" && !strings.Contains(u, "#")
}

// issuerURL: an authorization server issuer identifier (RFC 8414 §2), https
// (http only on loopback), with a host, without query or fragment.
func issuerURL(u string) bool {
	p, err := url.Parse(u)
	if err != nil || !p.IsAbs() || p.Host == "" || p.RawQuery != "" || p.Fragment != "" || strings.ContainsAny(u, "#?") || p.User != nil {
		return false
	}
	return p.Scheme == "https" || p.Scheme == "http" && isLoopbackHost(p.Hostname())
}
