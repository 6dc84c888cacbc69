package core

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Token exchange (RFC 8693): a client trades a token this server issued
// (the subject token, optionally with an actor token for delegation) for
// a new one. The subject token is verified as a resource server would
// (authentic, unexpired, its grant not revoked); the new token can only
// narrow scope and audience unless the app's Policy allows more; it
// carries the delegation chain in act. It starts a family of its own, the
// exchanging client's grant of the user (family.go), and names the
// families it descends from (TokenInfo.ParentGrantIDs): revoking the
// subject's grant revokes what was exchanged from it, however far down
// (SECURITY.md R71), while revoking the exchanged token revokes only its
// own family. The same grant issues Identity Assertion JWT Authorization
// Grants for other authorization servers (idjag.go).

// GrantTokenExchange is the token exchange grant type (RFC 8693 §2.1).
const GrantTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"

// Token type identifiers (RFC 8693 §3): subject_token_type,
// actor_token_type, requested_token_type and issued_token_type values.
const (
	TokenTypeAccessToken  = "urn:ietf:params:oauth:token-type:access_token"
	TokenTypeRefreshToken = "urn:ietf:params:oauth:token-type:refresh_token"
	TokenTypeIDToken      = "urn:ietf:params:oauth:token-type:id_token"
	// TokenTypeJWT names a JWT: as a subject or actor token, an RFC 9068
	// access token of this server; requested, an access token in that
	// format whatever the client's AccessTokenFormat.
	TokenTypeJWT = "urn:ietf:params:oauth:token-type:jwt"
)

// TokenExchange configures the token exchange grant (RFC 8693). A client
// may use it only when its GrantTypes list GrantTokenExchange (it is never
// a default grant), and a public client only with AllowPublicClients.
//
// Subject tokens are this server's access tokens (sealed or RFC 9068,
// subject_token_type access_token or jwt), its refresh tokens with
// AllowRefreshTokenSubjects, and id_tokens it issued to the requesting
// client (aud names it) in a login session that has not ended (with the
// kit's login sessions, LoginSessionStore: sid names one). Actor tokens are
// access tokens or id_tokens issued to the requesting client: the client
// proves it is the actor.
type TokenExchange struct {
	Enabled bool
	// Policy decides who may exchange what. It runs after every token
	// has been verified and before anything is issued, and sees the
	// request as the kit would grant it. Returning an error refuses the
	// exchange: a *TokenExchangeError with its error code, an error
	// wrapping ErrUnavailable as 503, anything else as invalid_grant. It
	// may set AllowWiderScope, AllowOtherAudience and (for an ID-JAG)
	// TargetClientID; other changes are ignored. Nil allows every
	// exchange that only narrows.
	Policy func(ctx context.Context, r *TokenExchangeRequest) error
	// AllowRefreshTokenSubjects accepts refresh tokens as subject tokens
	// (only the requesting client's own, not rotated, family not
	// revoked). Off by default: a refresh token is never meant to leave
	// its client.
	AllowRefreshTokenSubjects bool
	// AllowPublicClients lets public clients exchange tokens; off by
	// default (SECURITY.md R71).
	AllowPublicClients bool
	// IDJAGAudiences are the authorization servers ID-JAGs may be issued
	// for (requested_token_type TokenTypeIDJAG, audience their issuer);
	// another audience needs the Policy's AllowOtherAudience. ID-JAGs
	// need Config.OIDC.SigningKeys.
	IDJAGAudiences []IDJAGAudience
	// IDJAGLifetime is how long an ID-JAG is valid. Default 5 minutes, at
	// most 10; never beyond the id_token it was exchanged from.
	IDJAGLifetime time.Duration
}

// TokenExchangeRequest is a token exchange as the Policy sees it: the
// verified tokens and what the kit would issue.
type TokenExchangeRequest struct {
	// Client is the authenticated client asking for the exchange (the
	// server's own record: read it, never change it).
	Client *Client
	// SubjectTokenType is the subject_token_type; Subject is what the
	// subject token says. For a refresh token: its grant (Audience its
	// first resource, or the default audience); for an id_token: UserID
	// its sub, ClientID the client it was issued to, no scope, the
	// default audience, no GrantID.
	SubjectTokenType string
	Subject          TokenInfo
	// ActorTokenType and Actor describe the actor token; Actor is nil
	// without one.
	ActorTokenType string
	Actor          *TokenInfo
	// RequestedTokenType is TokenTypeAccessToken, TokenTypeJWT or
	// TokenTypeIDJAG.
	RequestedTokenType string
	// Scope is the scope the new token will carry (canonical): the
	// requested scope, or without one the subject's (as far as the client
	// may hold it).
	Scope string
	// Audience is the new token's audience: for an access token one of
	// the server's (Config.Audience or a Config.Resources URI); for an
	// ID-JAG the target authorization server's issuer.
	Audience string
	// Resource is an ID-JAG's resource claim ("" for none).
	Resource string
	// TargetClientID is an ID-JAG's client_id claim: the client's id at
	// the target authorization server. It starts as Client.ID; the Policy
	// may map it.
	TargetClientID string
	// AllowWiderScope, set by the Policy, lets the new token carry scope
	// the subject token does not (an id_token carries none), or an ID-JAG
	// scope beyond its IDJAGAudience's Scopes. The client's and the
	// server's scope lists still apply.
	AllowWiderScope bool
	// AllowOtherAudience, set by the Policy, lets the new token be for
	// another of the server's audiences than the subject token's, or an
	// ID-JAG be for an audience or resource IDJAGAudiences do not list.
	AllowOtherAudience bool
}

// TokenExchangeError is a Policy's refusal with its error code:
// ErrInvalidRequest, ErrInvalidGrant, ErrInvalidScope, ErrInvalidTarget or
// ErrUnauthorizedClient (anything else is sent as invalid_grant), and a
// description for the client (restricted to the characters RFC 6749
// allows).
type TokenExchangeError struct {
	Code        string
	Description string
}

func (e *TokenExchangeError) Error() string { return e.Code + ": " + e.Description }

// Actor is one link of a delegation chain (RFC 8693 §4.1, the act claim):
// who acts for the token's subject.
type Actor struct {
	// Subject is the actor's sub: a user, or for an actor token without a
	// user the client it was issued to.
	Subject string
	// ClientID is the client the actor token was issued to.
	ClientID string
	// Act is the actor before this one (the subject token's own act), nil
	// at the end of the chain.
	Act *Actor
}

const (
	// maxActDepth bounds a delegation chain, so that tokens stay within
	// maxTokenLen however often they are exchanged.
	maxActDepth = 4
	// maxActorSubject bounds one actor's sub.
	maxActorSubject = 256
)

// tokenExchangeGrant is the token exchange grant. It is public only so
// that a public client can authenticate for it; such clients are refused
// unless Config.TokenExchange.AllowPublicClients.
var tokenExchangeGrant = grantType{
	name:     GrantTokenExchange,
	required: []string{"subject_token", "subject_token_type"},
	public:   true,
	enabled:  func(c *Config) bool { return c.TokenExchange.Enabled },
	handle:   (*Server).exchange,
}

func (s *Server) setupTokenExchange() error {
	x := &s.cfg.TokenExchange
	if !x.Enabled {
		return nil
	}
	if x.IDJAGLifetime == 0 {
		x.IDJAGLifetime = 5 * time.Minute
	}
	if x.IDJAGLifetime < time.Second || x.IDJAGLifetime > maxIDJAGLifetime {
		return errors.New("oauth2kit: Config.TokenExchange.IDJAGLifetime is between 1 second and 10 minutes")
	}
	if len(x.IDJAGAudiences) > 0 && !s.cfg.OIDC.enabled() {
		return errors.New("oauth2kit: Config.TokenExchange.IDJAGAudiences needs Config.OIDC.SigningKeys (ID-JAGs are signed by them)")
	}
	// The caller's slices are not ours to keep: a later change there must
	// not change what the server allows.
	auds := make([]IDJAGAudience, len(x.IDJAGAudiences))
	for i, a := range x.IDJAGAudiences {
		field := fmt.Sprintf("oauth2kit: Config.TokenExchange.IDJAGAudiences[%d]", i)
		if !issuerURL(a.Issuer) {
			return fmt.Errorf("%s.Issuer %q must be an https URL (http only on loopback) without query or fragment", field, a.Issuer)
		}
		if canonicalResource(a.Issuer) == canonicalResource(s.cfg.Issuer) {
			return fmt.Errorf("%s.Issuer is this server: an ID-JAG is for another authorization server", field)
		}
		for _, b := range auds[:i] {
			if canonicalResource(b.Issuer) == canonicalResource(a.Issuer) {
				return fmt.Errorf("%s.Issuer %q is listed twice", field, a.Issuer)
			}
		}
		for _, sc := range a.Scopes {
			if !validScopeToken(sc) {
				return fmt.Errorf("%s.Scopes: %q is not a valid scope token", field, sc)
			}
		}
		for _, r := range a.Resources {
			if !absoluteURI(r) {
				return fmt.Errorf("%s.Resources: %q is not an absolute URI without fragment", field, r)
			}
		}
		auds[i] = IDJAGAudience{Issuer: a.Issuer, Scopes: slices.Clone(a.Scopes), Resources: slices.Clone(a.Resources)}
	}
	x.IDJAGAudiences = auds
	return nil
}

// exchangeToken is a verified subject or actor token.
type exchangeToken struct {
	typ  string
	info TokenInfo
	// granted is a refresh token's resources (space-separated): the
	// audiences an exchange may narrow to.
	granted string
	// auth is what an id_token says of the authentication (ID-JAG claims).
	auth idTokenAuth
	// sid is an id_token's login session (its sid claim), "" for none.
	sid string
}

// idTokenAuth is the authentication an id_token describes.
type idTokenAuth struct {
	authTime int64
	acr      string
	amr      []string
}

func (s *Server) exchange(ctx context.Context, c *Client, f *params) (*tokenResult, *oauthError) {
	x := &s.cfg.TokenExchange
	if c.Public && !x.AllowPublicClients {
		return nil, oerr(400, ErrUnauthorizedClient, "token exchange is for confidential clients")
	}
	reqType := f.get("requested_token_type")
	switch reqType {
	case "":
		reqType = TokenTypeAccessToken
	case TokenTypeAccessToken:
	case TokenTypeJWT:
		if s.jwt == nil || s.profileOf(c) == ProfileDraft10 {
			return nil, badRequest("JWT access tokens are not available")
		}
	case TokenTypeIDJAG:
		if !s.cfg.OIDC.enabled() {
			return nil, badRequest("ID-JAGs are not available")
		}
	default:
		return nil, badRequest("requested_token_type is not supported")
	}
	actorTok, actorType := f.get("actor_token"), f.get("actor_token_type")
	if (actorTok == "") != (actorType == "") {
		return nil, badRequest("actor_token and actor_token_type go together")
	}
	subjType := f.get("subject_token_type")
	if reqType == TokenTypeIDJAG {
		// The ID-JAG profile exchanges an identity assertion, without an
		// actor (draft-ietf-oauth-identity-assertion-authz-grant §4.3).
		if subjType != TokenTypeIDToken {
			return nil, badRequest("an ID-JAG is issued for an id_token (subject_token_type " + TokenTypeIDToken + ")")
		}
		if actorTok != "" {
			return nil, badRequest("an ID-JAG request carries no actor_token")
		}
	}
	now := s.now()
	subj, e := s.exchangeSubject(ctx, c, f, subjType, f.get("subject_token"), now, false)
	if e != nil {
		return nil, e
	}
	var actor *exchangeToken
	if actorTok != "" {
		if actor, e = s.exchangeSubject(ctx, c, f, actorType, actorTok, now, true); e != nil {
			return nil, e
		}
	}
	// The Policy gets copies: nothing it changes there reaches the token.
	r := &TokenExchangeRequest{
		Client: c, SubjectTokenType: subj.typ, Subject: subj.info,
		RequestedTokenType: reqType, TargetClientID: c.ID,
	}
	r.Subject.Act = cloneAct(subj.info.Act)
	r.Subject.ParentGrantIDs = slices.Clone(subj.info.ParentGrantIDs)
	if actor != nil {
		ai := actor.info
		ai.Act = cloneAct(ai.Act)
		ai.ParentGrantIDs = slices.Clone(ai.ParentGrantIDs)
		r.ActorTokenType, r.Actor = actor.typ, &ai
	}
	if reqType == TokenTypeIDJAG {
		return s.exchangeIDJAG(ctx, c, f, subj, r, now)
	}
	// The new token descends from the subject's family and from every
	// family the subject descends from; an id_token belongs to none.
	var parents []string
	if subj.info.GrantID != "" {
		var ok bool
		if parents, ok = lineage(subj.info.GrantID, subj.info.ParentGrantIDs); !ok {
			return nil, badGrant("the subject token was exchanged too often to be exchanged again")
		}
	}
	scope, widerScope, e := s.exchangeScope(c, f.get("scope"), subj.info.Scope)
	if e != nil {
		return nil, e
	}
	aud, otherAud, e := s.exchangeAudience(f, subj)
	if e != nil {
		return nil, e
	}
	r.Scope, r.Audience = scope, aud
	if e := s.runExchangePolicy(ctx, r); e != nil {
		return nil, e
	}
	switch {
	case widerScope && !r.AllowWiderScope:
		return nil, oerr(400, ErrInvalidScope, "the requested scope exceeds the subject token's scope")
	case otherAud && !r.AllowOtherAudience:
		return nil, oerr(400, ErrInvalidTarget, "the subject token is not for that audience")
	}
	if res := s.resource(aud); otherAud && res != nil {
		// A resource the subject token was not for: its scope list
		// applies, as at authorize.
		if _, e := s.checkResources([]string{res.URI}, scope); e != nil {
			return nil, e
		}
	}
	act, e := delegation(subj.info.Act, actor)
	if e != nil {
		return nil, e
	}
	// Never outliving the subject token.
	exp := now.Add(s.cfg.Lifetimes.AccessToken)
	if subj.info.ExpiresAt.Before(exp) {
		exp = subj.info.ExpiresAt
	}
	// A family of its own, the exchanging client's grant of the user:
	// revoking it (the client revoking its token, RevokeUserClient) ends
	// this token and what is exchanged from it, never the subject's grant.
	family, e := s.startFamily(ctx, c.ID, subj.info.UserID, scope, now, exp)
	if e != nil {
		return nil, e
	}
	t := TokenInfo{
		UserID: subj.info.UserID, Scope: scope, GrantID: family, ParentGrantIDs: parents, AdditionalInfo: subj.info.AdditionalInfo,
		Audience: aud, ClientCredentials: subj.info.ClientCredentials, JKT: f.dpopJKT, Act: act,
		userinfoClaims: subj.info.userinfoClaims,
	}
	at, e := s.mintExchanged(c, t, reqType == TokenTypeJWT, now, exp)
	if e != nil {
		return nil, e
	}
	life := exp.Sub(now)
	s.log.InfoContext(ctx, "oauth2kit: token exchanged", "client_id", c.ID, "subject_client_id", subj.info.ClientID,
		"subject_token_type", subj.typ, "grant_id", family, "parent_grant_id", subj.info.GrantID, "delegated", actor != nil)
	res := &tokenResult{access: at, scope: scope, issuedType: reqType, expiresIn: life, userID: subj.info.UserID, grantID: family}
	if reqType == TokenTypeJWT {
		res.format = TokenFormatJWT
	}
	return res, nil
}

// exchangeScope is the new access token's scope: the requested one (each
// part within the client's and the server's lists), or without one the
// subject's as far as the client may hold it. wider reports a requested
// scope beyond the subject's.
func (s *Server) exchangeScope(c *Client, requested, subject string) (scope string, wider bool, e *oauthError) {
	if len(requested) > maxScopeLen {
		return "", false, oerr(400, ErrInvalidScope, "the scope is too long")
	}
	have, _ := parseScope(subject)
	if requested == "" {
		keep := slices.DeleteFunc(have, func(p string) bool { return !s.clientMayHold(c, p) })
		return strings.Join(keep, " "), false, nil
	}
	parts, ok := parseScope(requested)
	if !ok {
		return "", false, oerr(400, ErrInvalidScope, "the scope is malformed")
	}
	for _, p := range parts {
		if !s.clientMayHold(c, p) {
			return "", false, oerr(400, ErrInvalidScope, "the client may not request scope "+p)
		}
		if _, found := slices.BinarySearch(have, p); !found {
			wider = true
		}
	}
	return strings.Join(parts, " "), wider, nil
}

func (s *Server) clientMayHold(c *Client, p string) bool {
	return (len(c.Scopes) == 0 || slices.Contains(c.Scopes, p)) && (len(s.cfg.Scopes) == 0 || slices.Contains(s.cfg.Scopes, p))
}

// exchangeAudience is the new access token's audience: resource or
// audience if named (one target: both may be sent, naming the same), else
// the subject's. other reports a target the subject token is not for (a
// refresh token: not among its grant's resources). A target that is none
// of the server's audiences is refused whatever the Policy says: no check
// of this server would ever accept the token.
func (s *Server) exchangeAudience(f *params, subj *exchangeToken) (aud string, other bool, e *oauthError) {
	res, named := f.get("resource"), f.get("audience")
	if len(s.cfg.Resources) == 0 {
		// As everywhere else: without configured resources the resource
		// parameter is accepted and ignored (clients send it regardless).
		res = ""
	}
	if res != "" && !absoluteURI(res) {
		return "", false, oerr(400, ErrInvalidTarget, "resource must be an absolute URI without fragment")
	}
	if res != "" && named != "" && canonicalResource(res) != canonicalResource(named) {
		return "", false, oerr(400, ErrInvalidTarget, "resource and audience name different targets")
	}
	target := res
	if target == "" {
		target = named
	}
	if target == "" {
		return subj.info.Audience, false, nil
	}
	want := canonicalResource(target)
	switch {
	case subj.typ == TokenTypeRefreshToken && slices.Contains(strings.Fields(subj.granted), want):
		return want, false, nil
	case subj.typ == TokenTypeRefreshToken && subj.granted == "" && want == canonicalResource(s.cfg.Audience):
		return s.cfg.Audience, false, nil
	case subj.typ != TokenTypeRefreshToken && want == canonicalResource(subj.info.Audience):
		return subj.info.Audience, false, nil
	}
	if want == canonicalResource(s.cfg.Audience) {
		return s.cfg.Audience, true, nil
	}
	if r := s.resource(target); r != nil {
		return canonicalResource(r.URI), true, nil
	}
	return "", false, oerr(400, ErrInvalidTarget, "unknown audience")
}

// runExchangePolicy asks the app's Policy, if any.
func (s *Server) runExchangePolicy(ctx context.Context, r *TokenExchangeRequest) *oauthError {
	p := s.cfg.TokenExchange.Policy
	if p == nil {
		return nil
	}
	err := p(ctx, r)
	if err == nil {
		return nil
	}
	var xe *TokenExchangeError
	switch {
	case errors.As(err, &xe):
		switch xe.Code {
		case ErrInvalidRequest, ErrInvalidGrant, ErrInvalidScope, ErrInvalidTarget, ErrUnauthorizedClient:
			return oerr(400, xe.Code, xe.Description)
		}
		return badGrant(xe.Description)
	case errors.Is(err, ErrUnavailable):
		s.log.ErrorContext(ctx, "oauth2kit: the token exchange policy failed", "err", err)
		return storageError(err)
	}
	s.log.InfoContext(ctx, "oauth2kit: token exchange refused by the policy", "client_id", r.Client.ID, "err", err)
	return badGrant("the token exchange is not allowed")
}

// mintExchanged mints the exchanged access token for c (as an RFC 9068
// JWT with jwt), issued at now and valid until exp (never beyond its
// subject token, nor the server's access token lifetime).
func (s *Server) mintExchanged(c *Client, t TokenInfo, jwt bool, now, exp time.Time) (string, *oauthError) {
	fc := c
	if jwt {
		cp := *c
		cp.AccessTokenFormat = FormatJWT
		fc = &cp
	}
	t.Issuer, t.ClientID = s.cfg.Issuer, c.ID
	t.IssuedAt, t.ExpiresAt = now, exp
	t.Draft10 = s.profileOf(c) == ProfileDraft10
	at, err := s.mintAccessToken(fc, &t)
	if err != nil {
		s.log.Error("oauth2kit: minting an access token failed", "err", err)
		return "", oerr(500, ErrServerError, "the server could not complete the request")
	}
	return at, nil
}

// writeExchangeMetadata advertises ID-JAG issuance
// (identity_chaining_requested_token_types_supported, of
// draft-ietf-oauth-identity-chaining) when the server can sign them.
// grant_types_supported lists the grant from the registry.
func (s *Server) writeExchangeMetadata(o *jsonObj) {
	if s.cfg.TokenExchange.Enabled && s.cfg.OIDC.enabled() {
		o.strList("identity_chaining_requested_token_types_supported", []string{TokenTypeIDJAG})
	}
}
