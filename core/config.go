package core

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
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

// Config configures a Server. Only Issuer, CryptKey and SignKey are required.
type Config struct {
	// Issuer is the server's identifier (RFC 8414), an https URL (http only
	// for loopback), without query or fragment. It is sent as "iss" in
	// every authorization response and as "issuer" in metadata, byte for
	// byte.
	Issuer string

	// Endpoint paths (the original library's authorize_url,
	// process_login_url and token_url, plus the modern ones). Defaults:
	// /oauth2/authorize, /oauth2/login, /oauth2/token, /oauth2/revoke,
	// /oauth2/introspect, /.well-known/oauth-authorization-server.
	AuthorizeURL    string
	ProcessLoginURL string
	TokenURL        string
	RevokeURL       string
	IntrospectURL   string
	MetadataURL     string

	// CryptKey and SignKey are the current key generation (the original
	// library's crypt_key and sign_key); at least 32 random bytes each.
	// KeyID names it inside tokens (derived from the keys when empty).
	CryptKey []byte
	SignKey  []byte
	KeyID    string
	// VerifyKeys are older generations still accepted (never used to
	// mint). Drop one when the longest-lived token it could have minted
	// (a refresh token) has expired.
	VerifyKeys []Keys

	// Lifetimes. Defaults: access token 1 h, refresh token 30 days (renewed
	// on each rotation, so it also bounds inactivity), code 60 s (at most
	// 10 min), pending login/consent 15 min.
	AccessTokenLifetime  time.Duration
	RefreshTokenLifetime time.Duration
	CodeLifetime         time.Duration
	LoginLifetime        time.Duration

	// Scopes the server knows. A request naming another gets
	// invalid_scope. Empty: any syntactically valid scope.
	Scopes []string
	// DefaultScope is granted when an authorization request names none
	// (and the client has no scope list of its own).
	DefaultScope string

	// Audience is put into access tokens and demanded by CheckToken.
	// Default: Issuer.
	Audience string
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

	// RevocationCacheTTL bounds how long the resource check may cache the
	// answer "this grant is not revoked". 0 (the default) asks the store on
	// every check: revocation is exact. Introspection is always exact.
	RevocationCacheTTL time.Duration

	// ClientCacheTTL lets the server keep clients it looked up for this
	// long (0, the default: every request reads the store). A deleted
	// client or a rotated secret then takes effect on other instances
	// after at most this long; Server.ForgetClient drops one at once here.
	ClientCacheTTL time.Duration

	// Limits on request size. Defaults: body 64 KiB, 64 parameters, 4 KiB
	// per value.
	MaxBodyBytes   int64
	MaxParams      int
	MaxValueLength int

	// Client authentication throttling (per client id and per remote
	// address): after MaxAuthFailures failures within AuthFailureWindow,
	// further attempts get 429 with Retry-After until the window ends.
	// Defaults: 10 failures per client, 50 per address, 1 minute.
	MaxAuthFailures        int
	MaxAuthFailuresPerAddr int
	AuthFailureWindow      time.Duration

	// Login throttling, for apps that report failed logins with
	// Server.LoginFailed and ask Server.LoginAllowed first: after
	// MaxLoginFailures failures for one user name (whether or not it
	// exists, so the answer reveals nothing) or MaxLoginFailuresPerAddr
	// from one address within LoginFailureWindow, logins are refused with
	// 429 and Retry-After. Defaults: 10, 30, 5 minutes.
	MaxLoginFailures        int
	MaxLoginFailuresPerAddr int
	LoginFailureWindow      time.Duration

	// Logger receives security events (code replay, refresh reuse, storage
	// failures). Tokens, codes, secrets and passwords are never logged.
	// Default: slog.Default().
	Logger *slog.Logger

	// Now replaces the clock in tests.
	Now func() time.Time
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
	dur(&c.AccessTokenLifetime, time.Hour)
	dur(&c.RefreshTokenLifetime, 30*24*time.Hour)
	dur(&c.CodeLifetime, 60*time.Second)
	dur(&c.LoginLifetime, 15*time.Minute)
	dur(&c.AuthFailureWindow, time.Minute)
	dur(&c.LoginFailureWindow, 5*time.Minute)
	if c.CodeLifetime > maxCodeLifetime {
		return errors.New("oauth2kit: CodeLifetime is at most 10 minutes")
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 64 << 10
	}
	if c.MaxParams <= 0 {
		c.MaxParams = 64
	}
	if c.MaxValueLength <= 0 {
		c.MaxValueLength = 4096
	}
	if c.MaxAuthFailures <= 0 {
		c.MaxAuthFailures = 10
	}
	if c.MaxAuthFailuresPerAddr <= 0 {
		c.MaxAuthFailuresPerAddr = 50
	}
	if c.MaxLoginFailures <= 0 {
		c.MaxLoginFailures = 10
	}
	if c.MaxLoginFailuresPerAddr <= 0 {
		c.MaxLoginFailuresPerAddr = 30
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
	return fmt.Sprintf("core.Config{Issuer:%q AuthorizeURL:%q ProcessLoginURL:%q TokenURL:%q RevokeURL:%q IntrospectURL:%q MetadataURL:%q KeyID:%q CryptKey:[redacted] SignKey:[redacted] VerifyKeys:%d AccessTokenLifetime:%v RefreshTokenLifetime:%v CodeLifetime:%v Scopes:%q Profile:%d}",
		c.Issuer, c.AuthorizeURL, c.ProcessLoginURL, c.TokenURL, c.RevokeURL, c.IntrospectURL, c.MetadataURL, c.KeyID,
		len(c.VerifyKeys), c.AccessTokenLifetime, c.RefreshTokenLifetime, c.CodeLifetime, c.Scopes, c.Profile)
}

// LogValue keeps key material out of structured logs.
func (c Config) LogValue() slog.Value { return slog.StringValue(c.String()) }
