package core

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Grant types.
const (
	GrantAuthorizationCode = "authorization_code"
	GrantRefreshToken      = "refresh_token"
	GrantClientCredentials = "client_credentials"
)

// Profile selects the wire behaviour offered to a client.
type Profile uint8

const (
	// ProfileDefault is RFC 6749/6750 with the OAuth 2.1 and Security BCP
	// restrictions.
	ProfileDefault Profile = iota
	// ProfileDraft10 adds what clients written against OAuth 2.0 draft 10
	// (and the original oauth2_server_node library) send and expect: the
	// "OAuth" authorization scheme and oauth_token parameter at resources,
	// "<grant id>.<secret>" codes, optional PKCE, expired_token. Exact
	// redirect matching, single-use codes and constant-time checks stay on.
	ProfileDraft10
)

// PKCEPolicy is the PKCE requirement of a confidential client.
type PKCEPolicy uint8

const (
	// PKCERequired: every authorization request carries an S256 challenge.
	PKCERequired PKCEPolicy = iota
	// PKCEOptional: a challenge is verified when sent but not demanded
	// (a confidential client that cannot send one).
	PKCEOptional
)

// Config configures a Server. Only Issuer and Keys (CryptKey and SignKey)
// are required; every other zero value is the safe default named in its
// comment. Fields are grouped by concern, one sub-struct per group, as
// each feature after these gets its own.
type Config struct {
	// Issuer is the server's identifier (RFC 8414), an https URL (http only
	// for loopback), without query or fragment. It is sent as "iss" in
	// every authorization response and as "issuer" in metadata, byte for
	// byte.
	Issuer string

	// Paths are the endpoint paths.
	Paths Paths

	// Keys is the current key generation: it mints every token (the
	// original library's crypt_key and sign_key).
	Keys Keys
	// VerifyKeys are older generations still accepted (never used to
	// mint). Drop one when the longest-lived token it could have minted
	// (a refresh token) has expired.
	VerifyKeys []Keys

	// Lifetimes of what the server issues.
	Lifetimes Lifetimes

	// Scopes the server knows. A request naming another gets
	// invalid_scope. Empty: any syntactically valid scope.
	Scopes []string
	// DefaultScope is granted when an authorization request names none
	// (and the client has no scope list of its own).
	DefaultScope string

	// Audience is put into access tokens and demanded by CheckToken.
	// Default: Issuer.
	Audience string
	// Resources are the protected resources the server issues tokens for
	// (RFC 8707 resource indicators). With none, the resource parameter is
	// accepted and ignored; with some, an unknown resource gets
	// invalid_target and a token for a resource has it as its audience
	// (checked by CheckTokenFor / CheckRequestFor at that resource).
	Resources []Resource
	// Realm in WWW-Authenticate challenges. Default: Issuer.
	Realm string

	// AllowPlainPKCE accepts code_challenge_method=plain. Off by default.
	AllowPlainPKCE bool

	// Profile is the server-wide default for clients whose profile is
	// ProfileDefault. ProfileDraft10 here opts every client in.
	Profile Profile
	// Draft10ErrorEnvelope answers token endpoint errors of draft-10
	// clients in the original library's envelope
	// {"error":{"type":"OAuthException","message":"<code>: <text>"}}.
	Draft10ErrorEnvelope bool

	// Limits bound what a request may carry.
	Limits Limits

	// AuthThrottle throttles client authentication, per client id
	// (PerAccount) and per remote address: after too many failures within
	// Window, further attempts get 429 with Retry-After until the window
	// ends. Defaults: 10 failures per client, 50 per address, 1 minute.
	AuthThrottle Throttle
	// LoginThrottle throttles logins, for apps that report failed logins
	// with Server.LoginFailed and ask Server.LoginAllowed first: per user
	// name (PerAccount; whether or not the user exists, so the answer
	// reveals nothing) and per address. Defaults: 10, 30, 5 minutes.
	LoginThrottle Throttle

	// Caches trade exactness for fewer storage reads; both are off by
	// default.
	Caches Caches

	// AccessTokenFormat is how access tokens are minted for clients whose
	// Client.AccessTokenFormat is empty: FormatSealed (the default: opaque,
	// encrypted, the fastest) or FormatJWT (RFC 9068, verifiable by any
	// resource server with the JWKS; needs OIDC.SigningKeys). The server
	// accepts both formats whatever it mints.
	AccessTokenFormat string

	// CORS lets browser-based clients call the API endpoints cross-origin.
	CORS CORS

	// OIDC makes the server an OpenID Provider. Off unless signing keys
	// are given.
	OIDC OIDC
	// Registration configures dynamic client registration (RFC 7591 and
	// 7592); off by default.
	Registration Registration
	// CIMD configures client ID metadata documents (clients whose
	// client_id is the https URL of their metadata); off by default.
	CIMD CIMD
	// DPoP configures sender-constrained tokens (RFC 9449); off by
	// default.
	DPoP DPoP
	// PAR configures pushed authorization requests (RFC 9126); off by
	// default.
	PAR PAR
	// Device configures the device authorization grant (RFC 8628); off
	// by default.
	Device DeviceFlow
	// ClientAssertions configures private_key_jwt client authentication.
	ClientAssertions ClientAssertions
	// MTLS configures mutual-TLS client authentication and
	// certificate-bound access tokens (RFC 8705); off by default.
	MTLS MTLS
	// BackchannelLogout configures OpenID Connect Back-Channel Logout
	// 1.0; off by default.
	BackchannelLogout BackchannelLogout
	// TokenExchange configures token exchange (RFC 8693) and ID-JAG
	// issuance; off by default.
	TokenExchange TokenExchange
	// JWTBearer configures the JWT bearer grant (RFC 7523) accepting
	// Identity Assertion JWT Authorization Grants; off unless issuers are
	// given.
	JWTBearer JWTBearer

	// Logger receives security events (code replay, refresh reuse, storage
	// failures). Tokens, codes, secrets and passwords are never logged.
	// Default: slog.Default().
	Logger *slog.Logger
	// Events, when set, is called for every security event (tokens issued
	// and refused, code replay, refresh reuse, failed client
	// authentication and sign-in, consent, key rotation, registration; see
	// EventKind). It runs synchronously on the request's goroutine and
	// must be quick and non-blocking: an app that does I/O hands the event
	// to its own queue. A panic in it is logged and dropped; it never
	// fails a request. Events carry no token, code, secret or password.
	Events func(ctx context.Context, e Event)

	// Now replaces the clock in tests. Default: time.Now.
	Now func() time.Time
}

// Paths are the endpoint paths (the original library's authorize_url,
// process_login_url and token_url, plus the modern ones). Each must start
// with "/" and differ from the others.
type Paths struct {
	// Authorize is the authorization endpoint. Default: /oauth2/authorize.
	Authorize string
	// ProcessLogin is where the login and consent forms post. Default:
	// /oauth2/login.
	ProcessLogin string
	// Token is the token endpoint. Default: /oauth2/token.
	Token string
	// Revoke is the revocation endpoint (RFC 7009). Default: /oauth2/revoke.
	Revoke string
	// Introspect is the introspection endpoint (RFC 7662). Default:
	// /oauth2/introspect.
	Introspect string
	// UserInfo is the OpenID Connect userinfo endpoint (with OIDC on).
	// Default: /oauth2/userinfo.
	UserInfo string
	// JWKS serves the public signing keys (with OIDC on). Default:
	// /oauth2/jwks.
	JWKS string
	// EndSession is the RP-initiated logout endpoint (with OIDC on).
	// Default: /oauth2/logout.
	EndSession string
	// OpenIDConfiguration is the OpenID Connect Discovery document, the
	// same JSON as Metadata (with OIDC on). Default:
	// /.well-known/openid-configuration.
	OpenIDConfiguration string
	// PAR is the pushed authorization request endpoint (default
	// /oauth2/par, served with PAR.Enabled).
	PAR string
	// Registration is the dynamic client registration endpoint
	// (default /register, served when Registration.Policy is not
	// RegistrationOff); a client's registration_client_uri is this URL
	// with its client_id in the query.
	Registration string
	// DeviceAuthorization is the device authorization endpoint (RFC 8628;
	// default /oauth2/device_authorization, served with Device.Enabled).
	DeviceAuthorization string
	// DeviceVerification is the page users enter device user codes on
	// (default /device, served with Device.Enabled).
	DeviceVerification string
	// Metadata serves the authorization server metadata (RFC 8414).
	// Default: /.well-known/oauth-authorization-server.
	Metadata string
}

// Lifetimes of what the server issues.
type Lifetimes struct {
	// AccessToken lifetime. Default: 1 hour.
	AccessToken time.Duration
	// RefreshToken lifetime, renewed on each rotation (so it also bounds
	// inactivity). Default: 30 days.
	RefreshToken time.Duration
	// Code is the authorization code lifetime. Default: 60 seconds; at
	// most 10 minutes.
	Code time.Duration
	// Login bounds how long a pending login or consent form stays usable.
	// Default: 15 minutes.
	Login time.Duration
	// IDToken is how long an id_token is valid (OIDC). Default: 1 hour.
	IDToken time.Duration
	// LoginSession is how long an end user's login session lasts (OIDC,
	// with a LoginSessionStore). Default: 24 hours.
	LoginSession time.Duration
}

// OIDC configures the OpenID Provider (OpenID Connect Core 1.0,
// Discovery 1.0). With SigningKeys given, a request with scope openid gets
// an id_token, and the userinfo, JWKS and discovery endpoints are served.
type OIDC struct {
	// SigningKeys sign id_tokens (and JWT access tokens); their public
	// halves are served at Paths.JWKS. At least one key must be in state
	// KeySigning; RS256 should be among them (OpenID Connect's mandatory
	// algorithm, the default of clients that name none), else clients
	// without IDTokenSignedResponseAlg get the first algorithm configured.
	SigningKeys []SigningKey
	// Claims supplies the user's claims for userinfo (and the claims
	// request parameter). Nil: userinfo answers sub alone.
	Claims ClaimsSource
	// PublishAhead is how long RotateKeys publishes a key before it
	// signs; the JWKS is served with a Cache-Control max-age a sixth of
	// it, so every relying party has fetched the new key before it is
	// used. Default: 1 hour. At least 1 minute.
	PublishAhead time.Duration
	// AccessTokenAlg signs JWT access tokens: empty means RS256 (what
	// RFC 9068 resource servers must support), or the first algorithm
	// configured without an RS256 key. ES256 and EdDSA sign some 30 times
	// faster than RSA-2048.
	AccessTokenAlg string
	// RefreshPolicy decides whether a code grant gets a refresh token
	// (beyond the client being allowed the refresh_token grant); nil
	// issues one whenever the client may. OfflineAccessOnly is OpenID
	// Connect Core §11's rule.
	RefreshPolicy func(c *Client, scope string) bool
	// SSO lets a browser with a live login session skip the login page
	// (single sign-on across clients) unless the request asks for a new
	// login (prompt=login, or max_age exceeded). Off by default: the
	// app's login page runs for every request except prompt=none, which
	// uses the session and never shows a page. Sessions need the
	// LoginSessionStore capability.
	SSO bool
}

func (o *OIDC) enabled() bool { return len(o.SigningKeys) > 0 }

// Limits bound the size of requests.
type Limits struct {
	// MaxBodyBytes bounds a request body. Default: 64 KiB.
	MaxBodyBytes int64
	// MaxParams bounds the parameters of a query or form. Default: 64.
	MaxParams int
	// MaxValueLength bounds one parameter value. Default: 4 KiB.
	MaxValueLength int
}

// Throttle is a failure throttle: after PerAccount failures for one
// account, or PerAddr from one remote address, within Window, further
// attempts are refused (429, Retry-After) until the window ends. Zero
// fields take the defaults of the Config field holding the Throttle.
type Throttle struct {
	// PerAccount bounds failures for one client id or user name.
	PerAccount int
	// PerAddr bounds failures from one remote address.
	PerAddr int
	// Window is how long failures count.
	Window time.Duration
}

// Caches are the server's optional caches. Both are per instance.
type Caches struct {
	// Revocation bounds how long the resource check may cache the answer
	// "this grant is not revoked". 0 (the default) asks the store on
	// every check: revocation is exact. Introspection is always exact.
	Revocation time.Duration
	// Client lets the server keep clients it looked up for this long (0,
	// the default: every request reads the store). A deleted client or a
	// rotated secret then takes effect on other instances after at most
	// this long; Server.ForgetClient drops one at once here.
	Client time.Duration
}

const (
	maxCodeLifetime = 10 * time.Minute
)

func (c *Config) setDefaults(routes []*endpoint) error {
	if c.Issuer == "" {
		return errors.New("oauth2kit: Config.Issuer is required")
	}
	u, err := url.Parse(c.Issuer)
	if err != nil || !u.IsAbs() || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("oauth2kit: Config.Issuer %q must be an absolute URL without query or fragment", c.Issuer)
	}
	if u.Scheme != "https" && !(u.Scheme == "http" && isLoopbackHost(u.Hostname())) {
		return fmt.Errorf("oauth2kit: Config.Issuer %q must use https (http only on loopback)", c.Issuer)
	}
	c.Issuer = strings.TrimSuffix(c.Issuer, "/")
	def := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	def(&c.Audience, c.Issuer)
	def(&c.Realm, c.Issuer)
	seen := map[string]bool{}
	for _, ep := range routes {
		p := ep.path(c)
		def(p, ep.def)
		if !strings.HasPrefix(*p, "/") {
			return fmt.Errorf("oauth2kit: Config.%s %q must start with /", ep.field, *p)
		}
		if seen[*p] {
			return fmt.Errorf("oauth2kit: endpoint path %q is used twice (Config.%s)", *p, ep.field)
		}
		seen[*p] = true
	}
	dur := func(p *time.Duration, v time.Duration) {
		if *p <= 0 {
			*p = v
		}
	}
	dur(&c.Lifetimes.AccessToken, time.Hour)
	dur(&c.Lifetimes.RefreshToken, 30*24*time.Hour)
	dur(&c.Lifetimes.Code, 60*time.Second)
	dur(&c.Lifetimes.Login, 15*time.Minute)
	dur(&c.Lifetimes.IDToken, time.Hour)
	dur(&c.Lifetimes.LoginSession, 24*time.Hour)
	if c.OIDC.enabled() && len(c.Scopes) > 0 && !slices.Contains(c.Scopes, ScopeOpenID) {
		// Every openid request would get invalid_scope: a provider that
		// can never issue an id_token is a configuration mistake.
		return errors.New("oauth2kit: Config.Scopes must include openid when Config.OIDC.SigningKeys are set")
	}
	if c.AccessTokenFormat != FormatSealed && c.AccessTokenFormat != FormatJWT {
		return fmt.Errorf("oauth2kit: Config.AccessTokenFormat %q is not %q or %q", c.AccessTokenFormat, FormatSealed, FormatJWT)
	}
	dur(&c.OIDC.PublishAhead, time.Hour)
	if c.OIDC.PublishAhead < time.Minute {
		return errors.New("oauth2kit: Config.OIDC.PublishAhead is at least 1 minute")
	}
	dur(&c.AuthThrottle.Window, time.Minute)
	dur(&c.LoginThrottle.Window, 5*time.Minute)
	if c.Lifetimes.Code > maxCodeLifetime {
		return errors.New("oauth2kit: Config.Lifetimes.Code is at most 10 minutes")
	}
	if c.Limits.MaxBodyBytes <= 0 {
		c.Limits.MaxBodyBytes = 64 << 10
	}
	if c.Limits.MaxParams <= 0 {
		c.Limits.MaxParams = 64
	}
	if c.Limits.MaxValueLength <= 0 {
		c.Limits.MaxValueLength = 4096
	}
	if c.AuthThrottle.PerAccount <= 0 {
		c.AuthThrottle.PerAccount = 10
	}
	if c.AuthThrottle.PerAddr <= 0 {
		c.AuthThrottle.PerAddr = 50
	}
	if c.LoginThrottle.PerAccount <= 0 {
		c.LoginThrottle.PerAccount = 10
	}
	if c.LoginThrottle.PerAddr <= 0 {
		c.LoginThrottle.PerAddr = 30
	}
	for _, s := range c.Scopes {
		if !validScopeToken(s) {
			return fmt.Errorf("oauth2kit: scope %q is not a valid scope token", s)
		}
	}
	if c.DefaultScope != "" {
		if _, ok := parseScope(c.DefaultScope); !ok {
			return fmt.Errorf("oauth2kit: DefaultScope %q is malformed", c.DefaultScope)
		}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// String describes the configuration without its key material, so a
// Config (or Server.Config()) printed with %v or %+v leaks no key.
func (c Config) String() string {
	return fmt.Sprintf("core.Config{Issuer:%q Paths:%+v Keys:{ID:%s CryptKey:[redacted] SignKey:[redacted]} VerifyKeys:%d Lifetimes:%+v Scopes:%q Profile:%d}",
		c.Issuer, c.Paths, c.Keys.ID, len(c.VerifyKeys), c.Lifetimes, c.Scopes, c.Profile)
}

// GoString is String: %#v prints no key either.
func (c Config) GoString() string { return c.String() }

// LogValue keeps key material out of structured logs.
func (c Config) LogValue() slog.Value { return slog.StringValue(c.String()) }
