package core

import (
	"context"
	"crypto/tls"
	"time"
)

// RegistrationPolicy says who may register clients at the registration
// endpoint.
type RegistrationPolicy uint8

const (
	// RegistrationOff serves no registration endpoint (the default).
	RegistrationOff RegistrationPolicy = iota
	// RegistrationOpen lets anyone register (MCP clients expect it), within
	// the per-address rate and the quota.
	RegistrationOpen
	// RegistrationInitialToken requires an initial access token (RFC 7591
	// §3: "Authorization: Bearer …"), which Registration.InitialAccessToken
	// checks.
	RegistrationInitialToken
	// RegistrationHook leaves every decision to Registration.Approve.
	RegistrationHook
)

// Registration configures dynamic client registration (RFC 7591) and its
// management API (RFC 7592). Open registration is an abuse target: every
// registration counts against a per-address rate and a server-wide quota,
// and clients that never obtain a token expire (Server.PurgeRegistrations).
// It needs a Storage with the RegistrationStore capability and an
// Authenticator that asks for consent (ConsentPrompter): a dynamically
// registered client names itself, so the user must see and approve it.
type Registration struct {
	Policy RegistrationPolicy
	// InitialAccessToken reports whether token (the bearer token of the
	// registration request) may register a client; required with
	// RegistrationInitialToken.
	InitialAccessToken func(ctx context.Context, token string) (bool, error)
	// Approve, when set, sees every registration (and update) after the
	// kit validated it and before it is stored: it may edit the metadata
	// (the edits are validated again) or refuse with an error — a
	// *RegistrationError is sent as it is, any other error as
	// invalid_client_metadata without its text. Required with
	// RegistrationHook.
	Approve func(ctx context.Context, reg *ClientRegistration) error
	// VerifySoftwareStatement verifies a software_statement (RFC 7591
	// §2.3) and returns its claims, which override the request's
	// metadata. Without it, a registration carrying a statement is
	// refused with invalid_software_statement: the kit cannot know whom to
	// trust.
	VerifySoftwareStatement func(ctx context.Context, statement string) (map[string]any, error)
	// PerAddress bounds registrations from one address (an IPv6 /64) per
	// Window. Defaults: 20 per hour.
	PerAddress int
	Window     time.Duration
	// Quota bounds the number of dynamically registered clients. Default
	// 10000.
	Quota int
	// UnusedLifetime is how long a registered client that never obtained
	// a token is kept. Default 24 h.
	UnusedLifetime time.Duration
	// GrantTypes are the grant types a client may register. Default
	// authorization_code and refresh_token: client_credentials (or any
	// grant without a user) only where the app lists it, since open
	// registration would otherwise give anyone such tokens.
	GrantTypes []string
	// RememberConsent lets a user's consent to a dynamically registered
	// client be remembered like any other. Off by default: such a client
	// is whoever registered it, so every authorization asks.
	RememberConsent bool
}

// CIMD configures client ID metadata documents
// (draft-ietf-oauth-client-id-metadata-document, the MCP specification's
// preferred registration): a client_id that is an https URL names a JSON
// document with the client's metadata, which the server fetches (through
// an SSRF-safe fetcher), validates and caches. Such clients are public or
// (later) use private_key_jwt, never a shared secret; their consent is
// never remembered by default, and the consent page shows the redirect
// URI's host.
type CIMD struct {
	Enabled bool
	// MaxCacheAge bounds how long a document is cached, whatever its
	// Cache-Control says. Default 1 h; documents without caching headers
	// are cached 5 minutes.
	MaxCacheAge time.Duration
	// RememberConsent: as Registration.RememberConsent.
	RememberConsent bool

	// AllowLoopbackForTests lets the fetcher connect to loopback
	// addresses on any port, and TLS sets its TLS configuration (a
	// throwaway CA's pool), so tests can serve documents from httptest.
	// Never set them in a server that faces the Internet.
	AllowLoopbackForTests bool
	TLS                   *tls.Config
}

// ClientRegistration is a registration (or update) as Registration.Approve
// sees it.
type ClientRegistration struct {
	// ClientID is the client's ID: new on registration, the existing one on
	// update.
	ClientID string
	// Update is true for an RFC 7592 update of an existing client.
	Update bool
	// Metadata is the validated metadata; Approve may edit it.
	Metadata *ClientMetadata
	// InitialAccessToken is the bearer token the request carried, if any.
	InitialAccessToken string
	// RemoteAddr is the registering peer's address.
	RemoteAddr string
}

// ClientMetadata is the client metadata of RFC 7591 §2 (and OpenID Connect
// Dynamic Client Registration's application_type,
// id_token_signed_response_alg and RP-Initiated Logout's
// post_logout_redirect_uris) that the kit understands; other members are
// ignored.
type ClientMetadata struct {
	RedirectURIs            []string `json:"redirect_uris,omitempty"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method,omitempty"`
	GrantTypes              []string `json:"grant_types,omitempty"`
	ResponseTypes           []string `json:"response_types,omitempty"`
	ClientName              string   `json:"client_name,omitempty"`
	ClientURI               string   `json:"client_uri,omitempty"`
	LogoURI                 string   `json:"logo_uri,omitempty"`
	Scope                   string   `json:"scope,omitempty"`
	Contacts                []string `json:"contacts,omitempty"`
	TOSURI                  string   `json:"tos_uri,omitempty"`
	PolicyURI               string   `json:"policy_uri,omitempty"`
	JWKSURI                 string   `json:"jwks_uri,omitempty"`
	// JWKS is the client's public key set, kept as sent (validated).
	JWKS                     map[string]any `json:"jwks,omitempty"`
	SoftwareID               string         `json:"software_id,omitempty"`
	SoftwareVersion          string         `json:"software_version,omitempty"`
	ApplicationType          string         `json:"application_type,omitempty"`
	IDTokenSignedResponseAlg string         `json:"id_token_signed_response_alg,omitempty"`
	PostLogoutRedirectURIs   []string       `json:"post_logout_redirect_uris,omitempty"`
	// Back-Channel Logout §2.2, accepted only when the server has it on.
	BackchannelLogoutURI             string `json:"backchannel_logout_uri,omitempty"`
	BackchannelLogoutSessionRequired bool   `json:"backchannel_logout_session_required,omitempty"`

	// Sender-constraint and PAR (RFC 9449 §5.2, RFC 9126 §6, RFC 8705
	// §3.4), each accepted only when the server has the feature on.
	DPoPBoundAccessTokens                 bool `json:"dpop_bound_access_tokens,omitempty"`
	RequirePushedAuthorizationRequests    bool `json:"require_pushed_authorization_requests,omitempty"`
	TLSClientCertificateBoundAccessTokens bool `json:"tls_client_certificate_bound_access_tokens,omitempty"`
	// The certificate of a tls_client_auth client (RFC 8705 §2.1.2):
	// exactly one of these.
	TLSClientAuthSubjectDN string `json:"tls_client_auth_subject_dn,omitempty"`
	TLSClientAuthSANDNS    string `json:"tls_client_auth_san_dns,omitempty"`
	TLSClientAuthSANURI    string `json:"tls_client_auth_san_uri,omitempty"`
	TLSClientAuthSANIP     string `json:"tls_client_auth_san_ip,omitempty"`
	TLSClientAuthSANEmail  string `json:"tls_client_auth_san_email,omitempty"`
}

// RegistrationError is a refusal of a registration with an RFC 7591 §3.2.2
// error code (ErrInvalidRedirectURI, ErrInvalidClientMetadata,
// ErrInvalidSoftwareStatement, ErrUnapprovedSoftwareStatement).
type RegistrationError struct {
	Code, Description string
}

func (e *RegistrationError) Error() string { return e.Code + ": " + e.Description }

// RFC 7591 §3.2.2 error codes.
const (
	ErrInvalidRedirectURI          = "invalid_redirect_uri"
	ErrInvalidClientMetadata       = "invalid_client_metadata"
	ErrInvalidSoftwareStatement    = "invalid_software_statement"
	ErrUnapprovedSoftwareStatement = "unapproved_software_statement"
)
