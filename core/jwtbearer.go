package core

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/oauth2kit/oauth2kit/core/internal/fetch"
	"github.com/oauth2kit/oauth2kit/core/internal/jose"
)

// The JWT bearer authorization grant (RFC 7523 §2.1) for Identity
// Assertion JWT Authorization Grants (ID-JAG,
// draft-ietf-oauth-identity-assertion-authz-grant §4.4): the authorization
// server side of the MCP enterprise-managed authorization extension. A
// client that signed its user in at an enterprise identity provider
// exchanges the id_token there for an ID-JAG (RFC 8693 token exchange)
// whose aud is this server's issuer, and presents it here:
//
//	grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=<ID-JAG>
//
// with its own client authentication. The server accepts it from the
// identity providers of Config.JWTBearer.Issuers only, once (its jti is
// spent in the ReplayCache, across instances), for the client it names in
// client_id, and issues an access token for the user (no refresh token:
// the client presents a new ID-JAG instead, draft §4.4.3). Each token is
// a family of its own, recorded as the client's grant of the user
// (family.go): RevokeUser and RevokeUserClient reach it.

// GrantJWTBearer is the JWT bearer grant type (RFC 7523 §2.1).
const GrantJWTBearer = "urn:ietf:params:oauth:grant-type:jwt-bearer"

const (
	// grantProfileIDJAG is the authorization_grant_profiles_supported
	// value of a server accepting ID-JAGs (draft §6.2).
	grantProfileIDJAG = "urn:ietf:params:oauth:grant-profile:id-jag"
	// maxJWTBearerLifetime caps JWTBearer.MaxLifetime: the replay cache
	// keeps each jti until its assertion expires.
	maxJWTBearerLifetime = time.Hour
	// maxAssertionResources bounds the resource claim.
	maxAssertionResources = 16
	// maxIssuerLen bounds an issuer identifier (config and claim).
	maxIssuerLen = 512
)

// JWTBearer configures the JWT bearer grant (RFC 7523) for Identity
// Assertion JWT Authorization Grants. It is off unless Issuers are given;
// it needs a Storage with ReplayCache. Only confidential clients may use
// the grant (the draft's §7.1: the client authenticates, so the
// assertion's client_id binds it), and only those whose
// Client.GrantTypes list GrantJWTBearer.
type JWTBearer struct {
	// Issuers are the identity providers whose assertions are accepted.
	Issuers []TrustedIssuer
	// MaxLifetime bounds an assertion's lifetime (exp minus iat).
	// Default 10 minutes, at most 1 hour.
	MaxLifetime time.Duration
	// MapUser maps an accepted assertion to the user the access token is
	// for (TokenInfo.UserID): the app's own account of the enterprise
	// user, found (or provisioned) by the claims. It runs once per
	// assertion, after every check and after the jti is spent. An error
	// refuses the grant with invalid_grant (the error is logged, not
	// sent); an error wrapping ErrUnavailable answers 503 instead.
	//
	// Nil takes the assertion's sub as the user id: right when the app's
	// users are the identity provider's (its logins go through that
	// provider too). With more than one issuer MapUser is required,
	// since two providers' subjects may be equal.
	MapUser func(ctx context.Context, a *IDJAGClaims) (userID string, err error)

	// AllowLoopbackForTests lets the JWKSURI fetcher connect to loopback
	// addresses on any port, and TLS sets its TLS configuration, so tests
	// can serve key sets from httptest. Never set them in a server that
	// faces the Internet.
	AllowLoopbackForTests bool
	TLS                   *tls.Config

	state *jwtBearerState // built by New
}

// TrustedIssuer is an identity provider whose ID-JAGs the server accepts.
type TrustedIssuer struct {
	// Issuer is the provider's issuer identifier, compared byte for byte
	// with the assertion's iss.
	Issuer string
	// JWKS (a JWK Set, as JSON) or JWKSURI (an https URL serving one,
	// fetched through the SSRF-safe fetcher, cached by its Cache-Control
	// within 1 minute and 1 hour, and fetched again on an unknown kid at
	// most every 30 seconds): the provider's public signing keys, one of
	// the two. A set holds at most 10 public keys usable with RS256,
	// PS256, ES256 or EdDSA.
	JWKS    string
	JWKSURI string
	// Algs are the signature algorithms accepted from the provider: a
	// subset of RS256, PS256, ES256 and EdDSA (never none, never HMAC).
	// Default: all four.
	Algs []string
}

// IDJAGClaims are the claims of a verified, accepted ID-JAG, as
// JWTBearer.MapUser sees them.
type IDJAGClaims struct {
	Issuer  string
	Subject string
	// ClientID is the client at this server (the authenticated client).
	ClientID string
	JTI      string
	// Scope is the scope claim (canonical, space-separated); HasScope
	// reports whether the assertion had one.
	Scope    string
	HasScope bool
	// Resources is the resource claim (RFC 8707 resource indicators).
	Resources []string
	IssuedAt  time.Time
	ExpiresAt time.Time
	// AuthTime, ACR and AMR say how the user authenticated, when the
	// provider said so.
	AuthTime time.Time
	ACR      string
	AMR      []string
	// Email, Tenant, AudTenant and AudSub are the draft's optional
	// subject resolution claims ("" when absent).
	Email     string
	Tenant    string
	AudTenant string
	AudSub    string
	// JKT is the cnf.jkt the assertion is bound to (a DPoP key), "" when
	// it is not bound.
	JKT string
	// Raw is the verified payload, for the claims above and any other.
	Raw json.RawMessage
}

// jwtBearerState is the per-server state of the grant.
type jwtBearerState struct {
	issuers map[string]*trustedIssuer
	// keys caches fetched key sets: the client assertions' machinery,
	// with its own fetcher and its own cache.
	keys *assertionState
}

type trustedIssuer struct {
	algs   []string
	inline []clientKey // from TrustedIssuer.JWKS
	// uri stands for the issuer in the key set cache (its ID is the
	// issuer, its JWKSURI the provider's); nil with inline keys.
	uri *Client
}

// jwtBearerGrant is the grant's row: confidential clients only, never a
// default, offered only with trusted issuers configured.
var jwtBearerGrant = grantType{
	name:     GrantJWTBearer,
	required: []string{"assertion"},
	enabled:  func(c *Config) bool { return len(c.JWTBearer.Issuers) > 0 },
	handle:   (*Server).jwtBearer,
}

func (s *Server) setupJWTBearer() error {
	c := &s.cfg.JWTBearer
	c.state = nil
	if len(c.Issuers) == 0 {
		return nil
	}
	if s.caps.replay == nil {
		return fmt.Errorf("%w (Config.JWTBearer: an assertion must be accepted once across instances)", missing("ReplayCache"))
	}
	if c.MaxLifetime <= 0 {
		c.MaxLifetime = 10 * time.Minute
	}
	if c.MaxLifetime > maxJWTBearerLifetime {
		return errors.New("oauth2kit: Config.JWTBearer.MaxLifetime is at most 1 hour")
	}
	if len(c.Issuers) > 1 && c.MapUser == nil {
		return errors.New("oauth2kit: Config.JWTBearer.MapUser is required with more than one issuer (their subjects may collide)")
	}
	st := &jwtBearerState{
		issuers: make(map[string]*trustedIssuer, len(c.Issuers)),
		// A new cache per Server, as for client assertions.
		keys: &assertionState{
			fetcher: fetch.New(fetch.Options{MaxBytes: maxJWKSBytes, Timeout: jwksTimeout,
				AllowLoopbackForTests: c.AllowLoopbackForTests, TLS: c.TLS}),
			sets: map[string]*keySetEntry{},
		},
	}
	for i, ti := range c.Issuers {
		field := fmt.Sprintf("Config.JWTBearer.Issuers[%d]", i)
		if ti.Issuer == "" || len(ti.Issuer) > maxIssuerLen {
			return fmt.Errorf("oauth2kit: %s.Issuer is required (at most %d bytes)", field, maxIssuerLen)
		}
		if ti.Issuer == s.cfg.Issuer {
			// The draft's §7.3: a server never takes its own ID-JAGs,
			// which would let an exchange widen what it granted.
			return fmt.Errorf("oauth2kit: %s.Issuer is this server's own issuer", field)
		}
		if st.issuers[ti.Issuer] != nil {
			return fmt.Errorf("oauth2kit: %s.Issuer %q is listed twice", field, ti.Issuer)
		}
		t := &trustedIssuer{}
		algs, err := issuerAlgs(ti.Algs)
		if err != nil {
			return fmt.Errorf("oauth2kit: %s.Algs: %w", field, err)
		}
		t.algs = algs
		switch {
		case (ti.JWKS == "") == (ti.JWKSURI == ""):
			return fmt.Errorf("oauth2kit: %s needs JWKS or JWKSURI, one of the two", field)
		case ti.JWKS != "":
			if t.inline, err = parseClientKeys([]byte(ti.JWKS)); err != nil {
				return fmt.Errorf("oauth2kit: %s.JWKS: %w", field, err)
			}
		default:
			u, err := url.Parse(ti.JWKSURI)
			if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.Fragment != "" {
				return fmt.Errorf("oauth2kit: %s.JWKSURI %q must be an https URL without userinfo or fragment", field, ti.JWKSURI)
			}
			t.uri = &Client{ID: ti.Issuer, JWKSURI: ti.JWKSURI}
		}
		st.issuers[ti.Issuer] = t
	}
	c.state = st
	return nil
}

func issuerAlgs(algs []string) ([]string, error) {
	if len(algs) == 0 {
		return slices.Clone(jose.Algorithms), nil
	}
	out := make([]string, 0, len(algs))
	for _, a := range algs {
		if !slices.Contains(jose.Algorithms, a) {
			return nil, fmt.Errorf("%q is not one of %v", a, jose.Algorithms)
		}
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out, nil
}

// jwtBearerMetadata adds the grant's metadata member (draft §6.2) when the
// grant is on; grant_types_supported lists the grant from the registry.
func (s *Server) jwtBearerMetadata(o *jsonObj) {
	if s.cfg.JWTBearer.state != nil {
		o.strList("authorization_grant_profiles_supported", []string{grantProfileIDJAG})
	}
}

// jwtBearer runs the grant for an authenticated client allowed it.
func (s *Server) jwtBearer(ctx context.Context, c *Client, f *params) (*tokenResult, *oauthError) {
	st := s.cfg.JWTBearer.state
	if st == nil {
		return nil, oerr(400, ErrUnsupportedGrantType, "the grant type is not supported")
	}
	if c.Public {
		// Unreachable through the registry (the row is not public); kept
		// so that no path can hand a public client a user's token.
		return nil, oerr(400, ErrUnauthorizedClient, "the jwt-bearer grant is for confidential clients")
	}
	now := s.now()
	a, fail := s.checkIDJAG(ctx, st, c, f.get("assertion"), now)
	if fail == nil {
		// The draft's §7.6.2: a bound assertion only with a proof of its
		// key (the token endpoint verified the proof and spent its jti).
		switch {
		case a.JKT != "" && f.dpopJKT == "":
			fail = &assertionFailure{desc: "the assertion is bound to a key: send a DPoP proof of it", log: "bound assertion without a DPoP proof"}
		case a.JKT != "" && f.dpopJKT != a.JKT:
			fail = &assertionFailure{desc: "the DPoP proof is not made with the assertion's key", log: "DPoP key differs from cnf.jkt"}
		}
	}
	if fail != nil {
		s.log.WarnContext(ctx, "oauth2kit: jwt-bearer assertion refused", "client_id", c.ID, "iss", a.logIssuer(), "reason", fail.log)
		return nil, badGrant(fail.desc)
	}
	aud, res, e := s.jwtBearerAudience(a, resourceParam(f))
	if e != nil {
		return nil, e
	}
	scope, e := s.jwtBearerScope(c, a, f.get("scope"), res)
	if e != nil {
		return nil, e
	}
	// Spent last, after everything the client could correct: a refused
	// request leaves the assertion usable, an accepted one consumes it.
	fresh, err := s.spendIDJAG(ctx, a, now)
	if err != nil {
		s.log.ErrorContext(ctx, "oauth2kit: recording a jwt-bearer assertion failed", "err", err)
		return nil, storageError(err)
	}
	if !fresh {
		s.log.WarnContext(ctx, "oauth2kit: jwt-bearer assertion refused", "client_id", c.ID, "iss", a.logIssuer(), "reason", "replayed assertion (jti seen before)")
		return nil, badGrant("the assertion was used before")
	}
	userID, e := s.jwtBearerUser(ctx, c, a)
	if e != nil {
		return nil, e
	}
	// A family of its own, recorded as the client's grant of the user so
	// that RevokeUser and RevokeUserClient reach it (family.go); mintFor
	// gives the token the server's access token lifetime.
	fam, e := s.startFamily(ctx, c.ID, userID, scope, now, now.Add(s.cfg.Lifetimes.AccessToken))
	if e != nil {
		return nil, e
	}
	at, e := s.mintFor(c, TokenInfo{UserID: userID, Scope: scope, GrantID: fam, Audience: aud, JKT: f.dpopJKT}, now)
	if e != nil {
		return nil, e
	}
	s.log.InfoContext(ctx, "oauth2kit: jwt-bearer grant", "client_id", c.ID, "iss", a.Issuer, "family", fam)
	return &tokenResult{access: at, scope: scope, userID: userID, grantID: fam}, nil
}

// logIssuer is the issuer for a log line: the claim as the assertion
// named it (verified or not), bounded.
func (a *IDJAGClaims) logIssuer() string {
	if a == nil {
		return ""
	}
	if len(a.Issuer) > 128 {
		return a.Issuer[:128] + "..."
	}
	return a.Issuer
}

// checkIDJAG verifies assertion for client c at now: a trusted issuer's
// signature under an allowed algorithm, then the ID-JAG's header and
// claims. On failure the claims returned (possibly nil) carry what is
// known of the issuer, for the log.
func (s *Server) checkIDJAG(ctx context.Context, st *jwtBearerState, c *Client, assertion string, now time.Time) (*IDJAGClaims, *assertionFailure) {
	generic := func(log string) *assertionFailure {
		return &assertionFailure{desc: "the assertion could not be verified", log: log}
	}
	iss := unverifiedClaimString(assertion, "iss")
	if iss == "" {
		return nil, &assertionFailure{desc: "the assertion is not a JWT naming its issuer", log: "no iss"}
	}
	a := &IDJAGClaims{Issuer: iss}
	ti := st.issuers[iss]
	if ti == nil {
		return a, &assertionFailure{desc: "the assertion's issuer is not trusted", log: "untrusted issuer"}
	}
	keys, err := s.issuerKeys(ctx, st, ti, now, false)
	if err != nil {
		return a, generic(err.Error())
	}
	h, payload, unknownKID, err := verifyWithKeys(assertion, ti.algs, keys)
	if err != nil && unknownKID && ti.uri != nil {
		// The provider may have rotated its keys: fetch its set again
		// (at most once per jwksRefetch) and retry.
		if keys, err = s.issuerKeys(ctx, st, ti, now, true); err != nil {
			return a, generic(err.Error())
		}
		h, payload, _, err = verifyWithKeys(assertion, ti.algs, keys)
	}
	if err != nil {
		return a, generic(err.Error())
	}
	// The signature holds: from here on the client may learn what is
	// wrong with the assertion. The explicit typ (draft §3) keeps every
	// other JWT of the provider, an id_token above all, from serving as
	// an ID-JAG.
	if t := strings.TrimPrefix(strings.ToLower(h.Typ), "application/"); t != IDJAGType {
		return a, &assertionFailure{desc: "the assertion's typ is not " + IDJAGType, log: "typ " + strconv.Quote(h.Typ)}
	}
	if desc := s.readIDJAG(a, c.ID, payload, now); desc != "" {
		return a, &assertionFailure{desc: desc, log: desc}
	}
	return a, nil
}

// issuerKeys returns an issuer's keys: its configured set, or its
// jwks_uri's through the client assertions' cache (unknownKID asks for a
// refetch, at most once per jwksRefetch).
func (s *Server) issuerKeys(ctx context.Context, st *jwtBearerState, ti *trustedIssuer, now time.Time, unknownKID bool) ([]clientKey, error) {
	if ti.uri == nil {
		return ti.inline, nil
	}
	return st.keys.uriKeys(ctx, s, ti.uri, now, unknownKID)
}

// readIDJAG fills a from the verified payload of an assertion presented by
// client clientID at now, and returns why it is refused ("" when not).
func (s *Server) readIDJAG(a *IDJAGClaims, clientID string, payload []byte, now time.Time) string {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(payload, &m); err != nil || m == nil {
		return "the assertion's payload is not a JSON object"
	}
	a.Raw = payload
	str := func(name string, required bool, dst *string) string {
		v, ok, err := strClaim(m, name)
		switch {
		case err != nil:
			return "the assertion's " + name + " is not a string"
		case required && (!ok || v == ""):
			return "the assertion has no " + name
		}
		*dst = v
		return ""
	}
	iss := a.Issuer
	for _, c := range []struct {
		name     string
		required bool
		dst      *string
	}{
		{"iss", true, &a.Issuer}, {"sub", true, &a.Subject}, {"client_id", true, &a.ClientID}, {"jti", true, &a.JTI},
		{"acr", false, &a.ACR}, {"email", false, &a.Email}, {"tenant", false, &a.Tenant},
		{"aud_tenant", false, &a.AudTenant}, {"aud_sub", false, &a.AudSub},
	} {
		if d := str(c.name, c.required, c.dst); d != "" {
			return d
		}
	}
	if a.Issuer != iss {
		return "the assertion's iss is not its signer"
	}
	if d := s.checkIDJAGAudience(m["aud"]); d != "" {
		return d
	}
	// The draft's §4.4.1: client continuity. The assertion is for one
	// client, and only that client, authenticated, may present it.
	if a.ClientID != clientID {
		return "the assertion's client_id is not the authenticated client"
	}
	var err error
	var hasExp, hasIat, hasNbf bool
	var nbf time.Time
	if a.ExpiresAt, hasExp, err = timeClaim(m, "exp"); err != nil || !hasExp {
		return "the assertion has no valid exp"
	}
	if a.IssuedAt, hasIat, err = timeClaim(m, "iat"); err != nil || !hasIat {
		return "the assertion has no valid iat"
	}
	if nbf, hasNbf, err = timeClaim(m, "nbf"); err != nil {
		return "the assertion's nbf is not a NumericDate"
	}
	if a.AuthTime, _, err = timeClaim(m, "auth_time"); err != nil {
		return "the assertion's auth_time is not a NumericDate"
	}
	limit := now.Add(assertionSkew)
	switch {
	case !now.Before(a.ExpiresAt):
		return "the assertion has expired"
	case a.IssuedAt.After(limit):
		return "the assertion's iat is in the future"
	case hasNbf && nbf.After(limit):
		return "the assertion is not valid yet (nbf)"
	case a.ExpiresAt.Sub(a.IssuedAt) > s.cfg.JWTBearer.MaxLifetime:
		return "the assertion's lifetime (exp - iat) is too long; at most " + s.cfg.JWTBearer.MaxLifetime.String()
	}
	if raw, ok := m["scope"]; ok {
		var sc string
		if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &sc) != nil {
			return "the assertion's scope is not a string"
		}
		parts, ok := parseScope(sc)
		if !ok || len(sc) > maxScopeLen {
			return "the assertion's scope is malformed"
		}
		a.Scope, a.HasScope = strings.Join(parts, " "), true
	}
	if raw, ok := m["resource"]; ok {
		if a.Resources, ok = stringOrList(raw); !ok || len(a.Resources) == 0 || len(a.Resources) > maxAssertionResources {
			return "the assertion's resource is not a URI or a list of at most " + strconv.Itoa(maxAssertionResources)
		}
	}
	if raw, ok := m["amr"]; ok {
		if json.Unmarshal(raw, &a.AMR) != nil || raw[0] != '[' {
			return "the assertion's amr is not a list of strings"
		}
	}
	if raw, ok := m["cnf"]; ok {
		var cnf struct {
			JKT *string `json:"jkt"`
		}
		if len(raw) == 0 || raw[0] != '{' || json.Unmarshal(raw, &cnf) != nil || cnf.JKT == nil || *cnf.JKT == "" {
			// A confirmation this server cannot check (another method, or
			// a malformed one) binds the assertion to something it cannot
			// prove: refused rather than ignored.
			return "the assertion's cnf is not a DPoP key thumbprint (jkt)"
		}
		a.JKT = *cnf.JKT
	}
	return ""
}

// checkIDJAGAudience checks aud: this server's issuer identifier, as a
// string or as an array of exactly that one element (the draft's §4.4.1:
// an assertion for several servers is refused, against audience
// injection).
func (s *Server) checkIDJAGAudience(raw json.RawMessage) string {
	const bad = "the assertion's aud is not this server's issuer identifier"
	if len(raw) == 0 {
		return "the assertion has no aud"
	}
	list, ok := stringOrList(raw)
	switch {
	case !ok:
		return "the assertion's aud is not a string"
	case len(list) != 1:
		return "the assertion's aud must name this server alone"
	case list[0] != s.cfg.Issuer:
		return bad
	}
	return ""
}

// stringOrList reads a JSON string or an array of strings.
func stringOrList(raw json.RawMessage) ([]string, bool) {
	if len(raw) == 0 {
		return nil, false
	}
	switch raw[0] {
	case '"':
		var one string
		if json.Unmarshal(raw, &one) != nil {
			return nil, false
		}
		return []string{one}, true
	case '[':
		var list []string
		if json.Unmarshal(raw, &list) != nil {
			return nil, false
		}
		return list, true
	}
	return nil, false
}

// unverifiedClaimString reads a string claim of a compact JWS without
// verifying it: it only picks the keys that then verify the token. ""
// when there is none.
func unverifiedClaimString(token, name string) string {
	if len(token) > jose.MaxTokenSize || strings.Count(token, ".") != 2 {
		return ""
	}
	_, rest, _ := strings.Cut(token, ".")
	payload, _, _ := strings.Cut(rest, ".")
	raw, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return ""
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return ""
	}
	v, _, err := strClaim(m, name)
	if err != nil || len(v) > maxIssuerLen {
		return ""
	}
	return v
}

// spendIDJAG records the assertion's jti in the ReplayCache until shortly
// after it expires, and reports whether it was fresh. A jti is unique per
// issuer (RFC 7519 §4.1.7), so the key names the issuer; both are hashed,
// so the key is bounded whatever they are.
func (s *Server) spendIDJAG(ctx context.Context, a *IDJAGClaims, now time.Time) (bool, error) {
	sum := sha256.Sum256([]byte(a.Issuer + "\x00" + a.JTI))
	key := "idjag|" + base64.RawURLEncoding.EncodeToString(sum[:])
	return s.caps.replay.Remember(ctx, key, now, a.ExpiresAt.Add(assertionSkew))
}

// jwtBearerAudience is the access token's audience: with resources
// configured, one resource the assertion grants (the request's resource
// parameter may pick one of them; by default the first), or, for an
// assertion without a resource claim, the resource the request names
// (checked as for client_credentials) or the default audience. Without
// resources configured, Config.Audience, as for every grant.
func (s *Server) jwtBearerAudience(a *IDJAGClaims, requested []string) (string, *Resource, *oauthError) {
	if len(s.cfg.Resources) == 0 {
		return s.cfg.Audience, nil, nil
	}
	if len(requested) > 1 {
		return "", nil, oerr(400, ErrInvalidTarget, "name one resource per token request")
	}
	if a.Resources == nil {
		if len(requested) == 0 {
			return s.cfg.Audience, nil, nil
		}
		// Scope is checked against the resource below.
		list, e := s.checkResources(requested, "")
		if e != nil {
			return "", nil, e
		}
		return list[0], s.resource(list[0]), nil
	}
	// The draft's §4.4.1: the server grants those of the assertion's
	// resources it knows (a subset); the request may only narrow them.
	var granted []*Resource
	for _, r := range a.Resources {
		if res := s.resource(r); res != nil && !slices.Contains(granted, res) {
			granted = append(granted, res)
		}
	}
	if len(granted) == 0 {
		return "", nil, oerr(400, ErrInvalidTarget, "the assertion names no resource of this server")
	}
	res := granted[0]
	if len(requested) == 1 {
		if res = s.resource(requested[0]); res == nil || !slices.Contains(granted, res) {
			return "", nil, oerr(400, ErrInvalidTarget, "the assertion does not grant the resource")
		}
	}
	return canonicalResource(res.URI), res, nil
}

// jwtBearerScope is the access token's scope. With a scope claim, the
// request's scope must be within it (invalid_scope otherwise), and
// without one the token gets those of the assertion's scopes this server
// grants the client (at least one). Without a scope claim the assertion
// says nothing of scope, and the client's own policy decides, as for
// client_credentials: the requested scope, or the client's default, within
// the client's and the server's scopes. Either way the scopes must fit the
// token's resource.
func (s *Server) jwtBearerScope(c *Client, a *IDJAGClaims, requested string, res *Resource) (string, *oauthError) {
	fits := func(sc string) bool {
		return (len(c.Scopes) == 0 || slices.Contains(c.Scopes, sc)) &&
			(len(s.cfg.Scopes) == 0 || slices.Contains(s.cfg.Scopes, sc)) &&
			(res == nil || len(res.Scopes) == 0 || slices.Contains(res.Scopes, sc) || sc == ScopeOpenID || sc == "offline_access")
	}
	var scope string
	switch {
	case !a.HasScope:
		var e *oauthError
		if scope, e = s.allowedScope(c, requested); e != nil {
			return "", e
		}
	case requested != "":
		narrowed, ok := narrowScope(requested, a.Scope)
		if !ok {
			if _, wellFormed := parseScope(requested); !wellFormed {
				return "", oerr(400, ErrInvalidScope, "the scope is malformed")
			}
			return "", oerr(400, ErrInvalidScope, "the scope exceeds the assertion's")
		}
		var e *oauthError
		if scope, e = s.allowedScope(c, narrowed); e != nil {
			return "", e
		}
	default:
		// The draft's §4.4.1: the server may grant a subset of the
		// assertion's scopes.
		parts, _ := parseScope(a.Scope)
		parts = slices.DeleteFunc(parts, func(sc string) bool { return !fits(sc) })
		if len(parts) == 0 {
			return "", oerr(400, ErrInvalidScope, "none of the assertion's scopes may be granted to the client")
		}
		scope = strings.Join(parts, " ")
	}
	if res != nil {
		for _, sc := range strings.Fields(scope) {
			if !fits(sc) {
				return "", oerr(400, ErrInvalidScope, "scope "+sc+" is not allowed for the resource")
			}
		}
	}
	return scope, nil
}

// jwtBearerUser maps the accepted assertion to the token's user.
func (s *Server) jwtBearerUser(ctx context.Context, c *Client, a *IDJAGClaims) (string, *oauthError) {
	userID := a.Subject
	if m := s.cfg.JWTBearer.MapUser; m != nil {
		var err error
		userID, err = m(ctx, a)
		switch {
		case errors.Is(err, ErrUnavailable):
			s.log.ErrorContext(ctx, "oauth2kit: JWTBearer.MapUser failed", "client_id", c.ID, "iss", a.Issuer, "err", err)
			return "", storageError(err)
		case err != nil:
			s.log.WarnContext(ctx, "oauth2kit: jwt-bearer assertion refused", "client_id", c.ID, "iss", a.Issuer, "reason", "MapUser: "+err.Error())
			return "", badGrant("the assertion's subject is not a user of this server")
		}
	}
	if userID == "" || len(userID) > 256 {
		s.log.WarnContext(ctx, "oauth2kit: jwt-bearer assertion refused", "client_id", c.ID, "iss", a.Issuer, "reason", "user id empty or longer than 256 bytes")
		return "", badGrant("the assertion's subject is not a user of this server")
	}
	return userID, nil
}
