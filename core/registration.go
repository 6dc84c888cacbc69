package core

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"mime"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/oauth2kit/oauth2kit/core/internal/fetch"
	"github.com/oauth2kit/oauth2kit/core/internal/jose"
)

// Dynamic client registration (RFC 7591) and its management API (RFC 7592).
// One endpoint row serves both: POST to the registration endpoint
// registers; GET, PUT and DELETE at a client's registration_client_uri
// (the same path with ?client_id=…, so adapters route one path) read,
// replace and delete the registration, authorised by its registration
// access token.

var epRegistration = endpoint{field: "Paths.Registration", path: func(c *Config) *string { return &c.Paths.Registration },
	def: "/register", methods: []string{"POST", "GET", "PUT", "DELETE"}, allow: header("Allow", "POST, GET, PUT, DELETE"),
	meta: "registration_endpoint", serve: (*Server).serveRegistration}

// Bounds of registered metadata: a registration is stored and shown, so
// every member is bounded.
const (
	maxRegisteredURIs = 20
	maxContacts       = 10
	maxRegMetaBytes   = 32 << 10
)

func (c *Registration) setDefaults() {
	if c.PerAddress <= 0 {
		c.PerAddress = 20
	}
	if c.Window <= 0 {
		c.Window = time.Hour
	}
	if c.Quota <= 0 {
		c.Quota = 10000
	}
	if c.UnusedLifetime <= 0 {
		c.UnusedLifetime = 24 * time.Hour
	}
	if c.GrantTypes == nil {
		c.GrantTypes = []string{GrantAuthorizationCode, GrantRefreshToken}
	}
}

// checkRegistration validates the registration and CIMD configuration
// against the server New builds.
func (s *Server) checkRegistration() error {
	rc := &s.cfg.Registration
	if rc.Policy == RegistrationOff && !s.cfg.CIMD.Enabled {
		return nil
	}
	if _, ok := s.auth.(ConsentPrompter); !ok {
		return errors.New("oauth2kit: Registration and CIMD need an Authenticator that asks for consent (ConsentPrompter): such clients name themselves")
	}
	switch rc.Policy {
	case RegistrationOff:
		return nil
	case RegistrationOpen:
	case RegistrationInitialToken:
		if rc.InitialAccessToken == nil {
			return errors.New("oauth2kit: Registration.Policy RegistrationInitialToken needs Registration.InitialAccessToken")
		}
	case RegistrationHook:
		if rc.Approve == nil {
			return errors.New("oauth2kit: Registration.Policy RegistrationHook needs Registration.Approve")
		}
	default:
		return errors.New("oauth2kit: Registration.Policy is not a RegistrationPolicy")
	}
	if s.caps.reg == nil {
		return missing("RegistrationStore")
	}
	rc.setDefaults()
	s.regThrottle = newThrottle(0, rc.PerAddress, false, rc.Window)
	return nil
}

// registrationBody is a registration or update request: the metadata plus
// the members that are not metadata.
type registrationBody struct {
	ClientMetadata
	SoftwareStatement string `json:"software_statement,omitempty"`
	ClientID          string `json:"client_id,omitempty"`
	ClientSecret      string `json:"client_secret,omitempty"`
	// TokenEndpointAuthSigningAlg is validated (one of the algorithms
	// ClientAssertions accepts) but not kept: every one of them is
	// accepted from the client anyway.
	TokenEndpointAuthSigningAlg string `json:"token_endpoint_auth_signing_alg,omitempty"`
}

func regError(code, desc string) *oauthError { return oerr(400, code, desc) }

func (s *Server) serveRegistration(w Responder, r Request) {
	if r.Method() == "POST" {
		if r.RawQuery() != "" {
			sendError(w, badRequest("register by POST to the registration endpoint itself"), false)
			return
		}
		s.register(w, r)
		return
	}
	s.manageRegistration(w, r)
}

func (s *Server) register(w Responder, r Request) {
	ctx, now, rc := r.Context(), s.now(), &s.cfg.Registration
	// Every attempt counts, refused ones included: a flood of bad
	// registrations costs as much to answer as good ones.
	if wait := s.regThrottle.blocked("", r.RemoteAddr(), now); wait > 0 {
		e := oerr(429, ErrInvalidRequest, "too many registrations from this address; retry later")
		e.retryAfter = int(wait/time.Second) + 1
		sendError(w, e, false)
		return
	}
	s.regThrottle.fail("", r.RemoteAddr(), now)
	token, hasToken := bearerOf(r)
	if rc.Policy == RegistrationInitialToken {
		ok := false
		if hasToken {
			var err error
			if ok, err = rc.InitialAccessToken(ctx, token); err != nil {
				s.log.ErrorContext(ctx, "oauth2kit: checking an initial access token failed", "err", err)
				sendError(w, oerr(500, ErrServerError, "the registration could not be authorised"), false)
				return
			}
		}
		if !ok {
			sendError(w, invalidTokenError(s, hasToken, "a valid initial access token is required"), false)
			return
		}
	}
	body, md, e := s.registrationMetadata(r)
	if e == nil && (body.ClientID != "" || body.ClientSecret != "") {
		e = regError(ErrInvalidClientMetadata, "client_id and client_secret are assigned by the server")
	}
	if e != nil {
		sendError(w, e, false)
		return
	}
	n, err := s.caps.reg.CountDynamicClients(ctx)
	if err != nil {
		s.log.ErrorContext(ctx, "oauth2kit: counting registered clients failed", "err", err)
		sendError(w, storageError(err), false)
		return
	}
	if n >= rc.Quota {
		s.log.WarnContext(ctx, "oauth2kit: registration quota exhausted", "quota", rc.Quota)
		sendError(w, oerr(403, ErrAccessDenied, "the server accepts no more registrations"), false)
		return
	}
	id, err := newClientID()
	if err != nil {
		sendError(w, oerr(500, ErrServerError, "no randomness"), false)
		return
	}
	if e := s.approve(ctx, r, &ClientRegistration{ClientID: id, Metadata: md, InitialAccessToken: token, RemoteAddr: r.RemoteAddr()}); e != nil {
		sendError(w, e, false)
		return
	}
	c, secret, regToken, err := s.registeredClient(id, md, nil, now)
	if err != nil {
		sendError(w, oerr(500, ErrServerError, "no randomness"), false)
		return
	}
	if err := s.caps.reg.CreateClient(ctx, c); err != nil {
		// ErrExists would mean 128 random bits collided: refuse rather
		// than retry forever.
		s.log.ErrorContext(ctx, "oauth2kit: storing a registered client failed", "err", err)
		sendError(w, storageError(err), false)
		return
	}
	s.log.InfoContext(ctx, "oauth2kit: client registered", "client_id", c.ID, "remote", r.RemoteAddr())
	s.emit(ctx, Event{Kind: EventClientRegistered, ClientID: c.ID, RemoteAddr: r.RemoteAddr()})
	sendJSON(w, 201, s.registrationResponse(c, md, secret, regToken))
}

// bearerOf returns the bearer token of the Authorization header.
func bearerOf(r Request) (string, bool) {
	h := r.Header("Authorization")
	if len(h) != 1 {
		return "", false
	}
	t, ok := cutScheme(h[0], "Bearer")
	return t, ok && t != "" && len(t) <= 4096
}

// invalidTokenError refuses a registration or management request for its
// bearer token; without one the challenge names the realm alone (RFC 6750
// §3.1).
func invalidTokenError(s *Server, sent bool, desc string) *oauthError {
	e := oerr(401, ErrInvalidToken, desc)
	e.challenge = `Bearer realm="` + safeDescription(s.cfg.Realm) + `"`
	if sent {
		e.challenge += `, error="invalid_token"`
	}
	return e
}

// registrationMetadata reads a registration (or update) and returns its
// body and the metadata to register: a software statement's claims
// applied, validated, defaults filled in.
func (s *Server) registrationMetadata(r Request) (*registrationBody, *ClientMetadata, *oauthError) {
	body, e := s.readRegistration(r)
	if e != nil {
		return nil, nil, e
	}
	md, e := s.applyStatement(r.Context(), body)
	if e == nil {
		e = s.validateMetadata(md)
	}
	if e == nil {
		e = s.checkAuthSigningAlg(body.TokenEndpointAuthSigningAlg)
	}
	if e == nil {
		e = s.registrableGrants(md)
	}
	return body, md, e
}

// registrableGrants limits what anyone may register to
// Registration.GrantTypes: by default the user's grants (authorization_code,
// refresh_token) and not client_credentials, which would hand whoever
// registers tokens with no user in the loop.
func (s *Server) registrableGrants(md *ClientMetadata) *oauthError {
	for _, g := range md.GrantTypes {
		if !slices.Contains(s.cfg.Registration.GrantTypes, g) {
			return regError(ErrInvalidClientMetadata, "grant type "+strconv.Quote(g)+" may not be registered here")
		}
	}
	return nil
}

// readRegistration reads a JSON registration body.
func (s *Server) readRegistration(r Request) (*registrationBody, *oauthError) {
	ct := r.Header("Content-Type")
	if len(ct) != 1 {
		return nil, badRequest("the registration must be application/json")
	}
	if mt, _, err := mime.ParseMediaType(ct[0]); err != nil || mt != "application/json" {
		return nil, badRequest("the registration must be application/json")
	}
	raw, err := readBody(r, min(s.cfg.Limits.MaxBodyBytes, maxRegMetaBytes))
	if err != nil {
		return nil, badRequest("the registration is too large or unreadable")
	}
	body, err := parseRegistration([]byte(raw))
	if err != nil {
		return nil, regError(ErrInvalidClientMetadata, err.Error())
	}
	return body, nil
}

// parseRegistration decodes a registration body: a JSON object whose
// members have the types RFC 7591 gives them.
func parseRegistration(raw []byte) (*registrationBody, error) {
	var body registrationBody
	if err := json.Unmarshal(raw, &body); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return nil, errors.New("member " + te.Field + " has the wrong type")
		}
		return nil, errors.New("the body is not a JSON object of client metadata")
	}
	return &body, nil
}

// applyStatement returns the metadata to register: the request's, with a
// verified software statement's claims over it.
func (s *Server) applyStatement(ctx context.Context, body *registrationBody) (*ClientMetadata, *oauthError) {
	md := body.ClientMetadata
	if body.SoftwareStatement == "" {
		return &md, nil
	}
	verify := s.cfg.Registration.VerifySoftwareStatement
	if verify == nil {
		return nil, regError(ErrUnapprovedSoftwareStatement, "this server accepts no software statements")
	}
	claims, err := verify(ctx, body.SoftwareStatement)
	if err != nil {
		return nil, regError(ErrInvalidSoftwareStatement, "the software statement was not accepted")
	}
	raw, err := json.Marshal(claims)
	if err == nil {
		err = json.Unmarshal(raw, &md)
	}
	if err != nil {
		return nil, regError(ErrInvalidSoftwareStatement, "the software statement's claims are not client metadata")
	}
	return &md, nil
}

// approve runs the app's hook, then validates what it may have changed.
func (s *Server) approve(ctx context.Context, r Request, reg *ClientRegistration) *oauthError {
	hook := s.cfg.Registration.Approve
	if hook == nil {
		return nil
	}
	if err := hook(ctx, reg); err != nil {
		var re *RegistrationError
		if errors.As(err, &re) {
			return regError(re.Code, re.Description)
		}
		s.log.InfoContext(ctx, "oauth2kit: a registration was refused by the app", "remote", r.RemoteAddr(), "err", err)
		return regError(ErrInvalidClientMetadata, "the registration was not approved")
	}
	if reg.Metadata == nil {
		return regError(ErrInvalidClientMetadata, "the registration was not approved")
	}
	return s.validateMetadata(reg.Metadata)
}

// validateMetadata checks md and fills in RFC 7591's defaults, so that
// what is stored and answered is what the server will enforce.
func (s *Server) validateMetadata(md *ClientMetadata) *oauthError {
	bad := func(desc string) *oauthError { return regError(ErrInvalidClientMetadata, desc) }
	if md.ApplicationType == "" {
		md.ApplicationType = "web"
	}
	if md.ApplicationType != "web" && md.ApplicationType != "native" {
		return bad(`application_type must be "web" or "native"`)
	}
	if md.TokenEndpointAuthMethod == "" {
		md.TokenEndpointAuthMethod = "client_secret_basic"
	}
	if e := s.checkRegisteredAuth(md); e != nil {
		return e
	}
	public := md.TokenEndpointAuthMethod == "none"
	if len(md.GrantTypes) == 0 {
		md.GrantTypes = []string{GrantAuthorizationCode}
	}
	md.GrantTypes = dedupe(md.GrantTypes)
	if err := s.grants.checkGrantTypes(md.GrantTypes, public); err != nil {
		return bad("grant_types: " + err.Error())
	}
	code := slices.Contains(md.GrantTypes, GrantAuthorizationCode)
	if md.ResponseTypes == nil && code {
		md.ResponseTypes = []string{"code"}
	}
	md.ResponseTypes = dedupe(md.ResponseTypes)
	for _, rt := range md.ResponseTypes {
		if rt != "code" {
			return bad(`the only response_types value supported is "code"`)
		}
	}
	if code != (len(md.ResponseTypes) == 1) {
		return bad(`grant_types authorization_code and response_types "code" go together`)
	}
	if code && len(md.RedirectURIs) == 0 {
		return regError(ErrInvalidRedirectURI, "redirect_uris is required for the authorization_code grant")
	}
	for _, list := range [][]string{md.RedirectURIs, md.PostLogoutRedirectURIs} {
		if len(list) > maxRegisteredURIs {
			return regError(ErrInvalidRedirectURI, "at most "+strconv.Itoa(maxRegisteredURIs)+" redirect URIs")
		}
		for _, u := range list {
			if err := checkRegisteredRedirect(u, md.ApplicationType); err != nil {
				return regError(ErrInvalidRedirectURI, err.Error())
			}
		}
	}
	if !displayText(md.ClientName, 200) {
		return bad("client_name must be at most 200 characters of text")
	}
	for name, u := range map[string]string{"client_uri": md.ClientURI, "logo_uri": md.LogoURI, "tos_uri": md.TOSURI, "policy_uri": md.PolicyURI} {
		if u != "" && !webURL(u) {
			return bad(name + " must be an https URL")
		}
	}
	if len(md.Contacts) > maxContacts {
		return bad("at most " + strconv.Itoa(maxContacts) + " contacts")
	}
	for _, c := range md.Contacts {
		if len(c) > 256 || !printable(c) {
			return bad("contacts must be printable, at most 256 characters each")
		}
	}
	for _, v := range []string{md.SoftwareID, md.SoftwareVersion} {
		if v != "" && (len(v) > 256 || !printable(v)) {
			return bad("software_id and software_version must be printable, at most 256 characters")
		}
	}
	if md.Scope != "" {
		scopes, ok := parseScope(md.Scope)
		if !ok || len(md.Scope) > 1024 {
			return bad("scope is not a list of scope tokens")
		}
		for _, sc := range scopes {
			if len(s.cfg.Scopes) > 0 && !slices.Contains(s.cfg.Scopes, sc) {
				return bad("scope " + strconv.Quote(sc) + " is not offered by this server")
			}
		}
		md.Scope = strings.Join(scopes, " ")
	}
	if md.JWKSURI != "" && md.JWKS != nil {
		return bad("jwks and jwks_uri are mutually exclusive")
	}
	if md.JWKSURI != "" {
		if _, err := fetch.CheckURL(md.JWKSURI); err != nil {
			return bad("jwks_uri must be an https URL without userinfo or fragment")
		}
	}
	if md.JWKS != nil {
		raw, _ := json.Marshal(md.JWKS)
		if err := jose.CheckPublicJWKS(raw); err != nil {
			return bad("jwks: " + strings.TrimPrefix(err.Error(), "invalid JWS: "))
		}
	}
	if alg := md.IDTokenSignedResponseAlg; alg != "" {
		if !s.cfg.OIDC.enabled() || !slices.Contains(s.signing.Load().algs, alg) {
			return bad("id_token_signed_response_alg " + strconv.Quote(alg) + " is not offered by this server")
		}
	}
	if e := s.checkBackchannelMetadata(md); e != nil {
		return e
	}
	return nil
}

// registrableAuthMethods are the token_endpoint_auth_method values a
// registration may name on this server.
func (s *Server) registrableAuthMethods() []string {
	m := []string{AuthNone, AuthClientSecretBasic, AuthClientSecretPost}
	if s.privateKeyJWTOffered() {
		m = append(m, AuthPrivateKeyJWT)
	}
	if s.mtlsEnabled() {
		m = append(m, AuthTLSClientAuth, AuthSelfSignedTLSClientAuth)
	}
	if s.cfg.Profile == ProfileFAPI2 {
		m = slices.DeleteFunc(m, func(a string) bool { return !fapiAuthMethod(a) })
	}
	return m
}

// checkRegisteredAuth validates the client authentication and
// sender-constraint members: a method the server offers, with the keys or
// certificate name it needs, and requirements only for features that are
// on (a client that asked for DPoP-bound tokens on a server without DPoP
// would get unbound ones, or none).
func (s *Server) checkRegisteredAuth(md *ClientMetadata) *oauthError {
	bad := func(desc string) *oauthError { return regError(ErrInvalidClientMetadata, desc) }
	method := md.TokenEndpointAuthMethod
	offered := s.registrableAuthMethods()
	if !slices.Contains(offered, method) {
		return bad("token_endpoint_auth_method " + strconv.Quote(method) + " is not offered by this server: use one of " + strings.Join(offered, ", "))
	}
	keys := md.JWKS != nil || md.JWKSURI != ""
	names := ClientSpec{TLSClientAuthSubjectDN: md.TLSClientAuthSubjectDN, TLSClientAuthSANDNS: md.TLSClientAuthSANDNS,
		TLSClientAuthSANURI: md.TLSClientAuthSANURI, TLSClientAuthSANIP: md.TLSClientAuthSANIP, TLSClientAuthSANEmail: md.TLSClientAuthSANEmail}
	named := md.TLSClientAuthSubjectDN+md.TLSClientAuthSANDNS+md.TLSClientAuthSANURI+md.TLSClientAuthSANIP+md.TLSClientAuthSANEmail != ""
	switch {
	case (method == AuthPrivateKeyJWT || method == AuthSelfSignedTLSClientAuth) && !keys:
		return bad("token_endpoint_auth_method " + method + " needs jwks or jwks_uri")
	case method == AuthTLSClientAuth && keys:
		return bad("a tls_client_auth client registers no jwks or jwks_uri")
	case method == AuthTLSClientAuth:
		if err := checkTLSClientSpec(&names); err != nil {
			return bad(strings.NewReplacer("TLSClientAuthSubjectDN", "tls_client_auth_subject_dn", "TLSClientAuthSANDNS", "tls_client_auth_san_dns",
				"TLSClientAuthSANURI", "tls_client_auth_san_uri", "TLSClientAuthSANIP", "tls_client_auth_san_ip",
				"TLSClientAuthSANEmail", "tls_client_auth_san_email").Replace(err.Error()))
		}
	case named:
		return bad("the tls_client_auth_* members are for token_endpoint_auth_method tls_client_auth")
	}
	switch {
	case md.DPoPBoundAccessTokens && !s.cfg.DPoP.Enabled:
		return bad("dpop_bound_access_tokens: this server does not offer DPoP")
	case md.RequirePushedAuthorizationRequests && !s.cfg.PAR.Enabled:
		return bad("require_pushed_authorization_requests: this server does not offer PAR")
	case md.TLSClientCertificateBoundAccessTokens && !s.mtlsEnabled():
		return bad("tls_client_certificate_bound_access_tokens: this server does not offer mutual TLS")
	}
	return nil
}

// checkAuthSigningAlg validates token_endpoint_auth_signing_alg (RFC 7591
// §2, OpenID Connect Dynamic Client Registration §2): when present, one of
// the algorithms client assertions may use ("none" never is).
func (s *Server) checkAuthSigningAlg(alg string) *oauthError {
	if alg != "" && !slices.Contains(s.cfg.ClientAssertions.Algs, alg) {
		return regError(ErrInvalidClientMetadata, "token_endpoint_auth_signing_alg "+strconv.Quote(alg)+" is not offered by this server")
	}
	return nil
}

// checkRegisteredRedirect applies the redirect URI rules of RFC 8252 and
// RFC 9700 to a self-registered client: https, or http on a loopback
// host (any port) — for web clients too, since the MCP SDKs register
// loopback redirects without saying native — and private-use schemes
// (reverse domain names, RFC 8252 §7.1) for native clients only.
func checkRegisteredRedirect(raw, appType string) error {
	if err := validateRedirectURI(raw); err != nil {
		return err
	}
	u, _ := url.Parse(raw)
	switch u.Scheme {
	case "https", "http":
		return nil
	}
	if appType != "native" {
		return errors.New("a web client's redirect URIs are https or loopback http")
	}
	if !strings.Contains(u.Scheme, ".") {
		return errors.New("a private-use scheme must be a reverse domain name (RFC 8252 §7.1)")
	}
	return nil
}

// displayText reports whether s can be shown to a user as the client's
// name: valid UTF-8, at most n bytes, no control or bidirectional
// formatting characters (which could make a name read as another).
func displayText(s string, n int) bool {
	if len(s) > n || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) || r == '\u2028' || r == '\u2029' {
			return false
		}
	}
	return true
}

// webURL reports whether s is an absolute https URL without userinfo: the
// kind of URL a consent page may link to (never fetched by the server).
func webURL(s string) bool {
	if len(s) > 2000 || !printable(s) {
		return false
	}
	u, err := url.Parse(s)
	return err == nil && u.Scheme == "https" && u.Host != "" && u.User == nil
}

func dedupe(in []string) []string {
	out := in[:0:0]
	for _, v := range in {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// registeredClient builds the Client for validated metadata; prev is the
// client being updated (nil on registration). It returns the new secret in
// clear (when one is issued) and the new registration access token (on
// registration only).
func (s *Server) registeredClient(id string, md *ClientMetadata, prev *Client, now time.Time) (c *Client, secret, regToken string, err error) {
	meta, err := json.Marshal(md)
	if err != nil {
		return nil, "", "", err
	}
	scopes, _ := parseScope(md.Scope)
	method := md.TokenEndpointAuthMethod
	c = &Client{
		ID: id, Name: md.ClientName, RedirectURIs: slices.Clone(md.RedirectURIs),
		Public: method == AuthNone, AuthMethod: method, GrantTypes: slices.Clone(md.GrantTypes), Scopes: scopes,
		IDTokenSignedResponseAlg: md.IDTokenSignedResponseAlg, PostLogoutRedirectURIs: slices.Clone(md.PostLogoutRedirectURIs),
		CreatedAt: now.UTC(), Dynamic: true, Metadata: string(meta),
		BackchannelLogoutURI: md.BackchannelLogoutURI, BackchannelLogoutSessionRequired: md.BackchannelLogoutSessionRequired,

		DPoPBoundAccessTokens: md.DPoPBoundAccessTokens, RequirePAR: md.RequirePushedAuthorizationRequests,
		TLSClientCertificateBoundAccessTokens: md.TLSClientCertificateBoundAccessTokens,
		TLSClientAuthSubjectDN:                md.TLSClientAuthSubjectDN, TLSClientAuthSANDNS: md.TLSClientAuthSANDNS,
		TLSClientAuthSANURI: md.TLSClientAuthSANURI, TLSClientAuthSANIP: md.TLSClientAuthSANIP, TLSClientAuthSANEmail: md.TLSClientAuthSANEmail,
	}
	hasSecret := method == AuthClientSecretBasic || method == AuthClientSecretPost
	if method == AuthPrivateKeyJWT || method == AuthSelfSignedTLSClientAuth {
		// The keys the client authenticates with (validated); a
		// private_key_jwt client has no secret.
		if md.JWKS != nil {
			raw, err := json.Marshal(md.JWKS)
			if err != nil {
				return nil, "", "", err
			}
			c.JWKS = string(raw)
		} else {
			c.JWKSURI = md.JWKSURI
		}
	}
	if prev != nil {
		c.CreatedAt, c.UsedAt, c.RegistrationTokenHash = prev.CreatedAt, prev.UsedAt, prev.RegistrationTokenHash
		c.AccessTokenFormat = prev.AccessTokenFormat
		if hasSecret && !prev.Public {
			c.SecretHash = prev.SecretHash // the secret stays across updates
		}
	} else {
		if regToken, err = randomToken(32); err != nil {
			return nil, "", "", err
		}
		c.RegistrationTokenHash = hashRegistrationToken(regToken)
	}
	if hasSecret && c.SecretHash == "" {
		if secret, err = GenerateSecret(); err != nil {
			return nil, "", "", err
		}
		if c.SecretHash, err = HashSecret(secret); err != nil {
			return nil, "", "", err
		}
	}
	return c, secret, regToken, nil
}

// hashRegistrationToken is how a registration access token is stored: it
// carries 256 random bits, so SHA-256 alone keeps it from a reader of the
// table.
func hashRegistrationToken(t string) string {
	sum := sha256.Sum256([]byte(t))
	return hex.EncodeToString(sum[:])
}

// registrationClientURI is where the client manages its registration.
func (s *Server) registrationClientURI(id string) string {
	return s.cfg.Issuer + s.cfg.Paths.Registration + "?client_id=" + url.QueryEscape(id)
}

// registrationResponse is the client information response (RFC 7591
// §3.2.1, RFC 7592 §3): the registered metadata and what the server
// assigned. secret and regToken appear only when just issued: the
// server keeps neither in clear.
func (s *Server) registrationResponse(c *Client, md *ClientMetadata, secret, regToken string) []byte {
	out := map[string]any{}
	raw, _ := json.Marshal(md)
	_ = json.Unmarshal(raw, &out)
	out["client_id"] = c.ID
	out["client_id_issued_at"] = c.CreatedAt.Unix()
	if secret != "" {
		out["client_secret"] = secret
	}
	if c.SecretHash != "" {
		out["client_secret_expires_at"] = 0
	}
	if regToken != "" {
		out["registration_access_token"] = regToken
	}
	out["registration_client_uri"] = s.registrationClientURI(c.ID)
	b, _ := json.Marshal(out)
	return b
}

// manageRegistration serves RFC 7592 at a registration_client_uri.
func (s *Server) manageRegistration(w Responder, r Request) {
	ctx := r.Context()
	q, err := url.ParseQuery(r.RawQuery())
	ids := q["client_id"]
	if err != nil || len(ids) != 1 || ids[0] == "" {
		sendError(w, badRequest("the registration_client_uri names one client_id"), false)
		return
	}
	token, ok := bearerOf(r)
	if !ok {
		sendError(w, invalidTokenError(s, false, "the registration access token is required"), false)
		return
	}
	// The store, not the client cache: an update must see the last one.
	c, err := s.store.GetClient(ctx, ids[0])
	if err != nil && !errors.Is(err, ErrNotFound) {
		s.log.ErrorContext(ctx, "oauth2kit: client lookup failed", "err", err)
		sendError(w, storageError(err), false)
		return
	}
	// An unknown client and a wrong token answer alike (RFC 7592 §3), so
	// the endpoint tells nobody which clients exist.
	want := hashRegistrationToken(token)
	if c == nil || !c.Dynamic || subtle.ConstantTimeCompare([]byte(want), []byte(c.RegistrationTokenHash)) != 1 {
		sendError(w, invalidTokenError(s, true, "the registration access token is not valid for this client"), false)
		return
	}
	var md ClientMetadata
	if c.Metadata != "" {
		if err := json.Unmarshal([]byte(c.Metadata), &md); err != nil {
			s.log.ErrorContext(ctx, "oauth2kit: a stored registration does not parse", "client_id", c.ID, "err", err)
			sendError(w, oerr(500, ErrServerError, "the registration could not be read"), false)
			return
		}
	}
	switch r.Method() {
	case "GET":
		sendJSON(w, 200, s.registrationResponse(c, &md, "", ""))
	case "DELETE":
		if err := s.caps.reg.DeleteClient(ctx, c.ID); err != nil && !errors.Is(err, ErrNotFound) {
			s.log.ErrorContext(ctx, "oauth2kit: deleting a registered client failed", "err", err)
			sendError(w, storageError(err), false)
			return
		}
		s.ForgetClient(c.ID)
		s.log.InfoContext(ctx, "oauth2kit: client registration deleted", "client_id", c.ID)
		hdrNoStore.set(w)
		_ = w.Send(204, nil)
	case "PUT":
		s.updateRegistration(w, r, c)
	}
}

func (s *Server) updateRegistration(w Responder, r Request, prev *Client) {
	ctx := r.Context()
	body, md, e := s.registrationMetadata(r)
	switch {
	case e != nil:
	case body.ClientID != prev.ID:
		e = regError(ErrInvalidClientMetadata, "client_id must be the registered client's")
	case body.ClientSecret != "" && (prev.Public || !VerifySecret(prev.SecretHash, body.ClientSecret)):
		e = regError(ErrInvalidClientMetadata, "client_secret is not the client's")
	}
	if e != nil {
		sendError(w, e, false)
		return
	}
	if e := s.approve(ctx, r, &ClientRegistration{ClientID: prev.ID, Update: true, Metadata: md, RemoteAddr: r.RemoteAddr()}); e != nil {
		sendError(w, e, false)
		return
	}
	c, secret, _, err := s.registeredClient(prev.ID, md, prev, s.now())
	var regToken string
	if err == nil {
		// A new registration access token with every update (RFC 7592
		// §2.2 lets the server rotate it; §3 wants it in the response): the
		// server keeps none in clear to send back otherwise.
		if regToken, err = randomToken(32); err == nil {
			c.RegistrationTokenHash = hashRegistrationToken(regToken)
		}
	}
	if err != nil {
		sendError(w, oerr(500, ErrServerError, "no randomness"), false)
		return
	}
	if err := s.caps.reg.SaveClient(ctx, c); err != nil {
		s.log.ErrorContext(ctx, "oauth2kit: updating a registered client failed", "err", err)
		sendError(w, storageError(err), false)
		return
	}
	s.ForgetClient(c.ID)
	s.log.InfoContext(ctx, "oauth2kit: client registration updated", "client_id", c.ID)
	sendJSON(w, 200, s.registrationResponse(c, md, secret, regToken))
}

// PurgeRegistrations deletes dynamically registered clients that never
// obtained a token within Registration.UnusedLifetime of registering, and
// returns how many it deleted. Call it periodically (the examples do,
// beside Storage purging).
func (s *Server) PurgeRegistrations(ctx context.Context) (int, error) {
	if s.caps.reg == nil || s.cfg.Registration.Policy == RegistrationOff {
		return 0, nil
	}
	return s.caps.reg.DeleteUnusedClients(ctx, s.now().Add(-s.cfg.Registration.UnusedLifetime))
}

// noteClientUsed records a dynamically registered client's first token,
// which keeps it from expiring. Bookkeeping only: a failure is logged and
// the request goes on.
func (s *Server) noteClientUsed(ctx context.Context, c *Client) {
	if !c.Dynamic || !c.UsedAt.IsZero() || s.caps.reg == nil {
		return
	}
	// The UPDATE is conditional (UsedAt still zero), so repeating it while
	// a cached copy of the client says "never used" costs a no-op write
	// per token, for at most the client cache's lifetime.
	if err := s.caps.reg.MarkClientUsed(ctx, c.ID, s.now()); err != nil {
		s.log.WarnContext(ctx, "oauth2kit: recording a client's first use failed", "client_id", c.ID, "err", err)
	}
}
