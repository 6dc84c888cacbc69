package core

import (
	"context"
	"errors"
	"slices"
	"time"
)

// Errors a Storage returns. Anything else a Storage returns is treated as a
// storage failure: the request fails with server_error (500) and no token is
// issued. Wrap ErrUnavailable for transient failures (a busy database) so
// clients get temporarily_unavailable (503) and may retry.
var (
	// ErrNotFound: no such client, code, token or consent (or it expired).
	ErrNotFound = errors.New("oauth2kit: not found")
	// ErrCodeUsed: RedeemCode found a code that was redeemed before.
	ErrCodeUsed = errors.New("oauth2kit: authorization code already used")
	// ErrTokenRotated: RotateRefreshToken found a token that was rotated
	// out (or revoked) before: a reuse.
	ErrTokenRotated = errors.New("oauth2kit: refresh token already rotated")
	// ErrExists: CreateGrant found a grant with the same code signature.
	ErrExists = errors.New("oauth2kit: already exists")
	// ErrUnavailable marks a transient storage failure.
	ErrUnavailable = errors.New("oauth2kit: storage temporarily unavailable")
)

// Storage is everything the server persists. Every method is safe for
// concurrent use, and the two consuming methods (RedeemCode and
// RotateRefreshToken) are atomic: when N callers race on one code or one
// refresh token, exactly one of them gets to issue.
//
// Codes and refresh tokens reach the store only as signatures (an HMAC of the
// token computed by the server); a store never sees a usable credential.
// Client secrets reach it only hashed.
//
// The issue callbacks of the consuming methods may run inside a database
// transaction while the row is locked: they are quick, pure CPU work and
// never call the store. A store must not run issue twice for one call.
//
// The package core/storagetest holds a conformance suite every
// implementation should run.
type Storage interface {
	// GetClient returns the registered client, or ErrNotFound.
	GetClient(ctx context.Context, id string) (*Client, error)

	// CreateGrant stores a new authorization code. If a grant with the
	// same CodeSig exists (expired or used, until the store dropped it) it
	// stores nothing and returns ErrExists: the server relies on that to
	// make a pending login or consent form usable once.
	CreateGrant(ctx context.Context, g *Grant) error

	// RedeemCode consumes the code whose signature is sig, atomically.
	//
	// If no unexpired code has that signature it returns ErrNotFound. If the
	// code was consumed before it returns the grant and ErrCodeUsed, without
	// calling issue. Otherwise it marks the code used and calls issue with
	// the grant: issue validates the request and returns the refresh token
	// to store (nil for none). If issue returns an error the code stays
	// consumed, nothing else is written, and RedeemCode returns that error.
	// If storing the refresh token fails, nothing is written: the code is
	// not consumed, and the error is returned. (If issue fails and the
	// consumption itself cannot be committed, the storage error is
	// returned; no token is issued either way.)
	RedeemCode(ctx context.Context, sig string, now time.Time, issue func(*Grant) (*RefreshToken, error)) (*Grant, error)

	// RotateRefreshToken replaces the refresh token whose signature is sig,
	// atomically.
	//
	// If no unexpired token has that signature it returns ErrNotFound. If
	// the token was rotated out or revoked, or its family was revoked, it
	// returns the token and ErrTokenRotated without calling issue.
	// Otherwise it calls issue with the token; if issue returns an error,
	// nothing is written and that error is returned. Else it marks the old
	// token rotated and stores the new one in one transaction, and returns
	// the old one as it was read (RotatedAt still nil).
	RotateRefreshToken(ctx context.Context, sig string, now time.Time, issue func(old *RefreshToken) (*RefreshToken, error)) (*RefreshToken, error)

	// GetRefreshToken returns the refresh token whose signature is sig
	// (whatever its state), or ErrNotFound.
	GetRefreshToken(ctx context.Context, sig string) (*RefreshToken, error)

	// RevokeFamily revokes every token descending from one authorization
	// grant (or one client_credentials issuance): its refresh tokens stop
	// rotating and IsFamilyRevoked reports true for it. The record may be
	// dropped after keepUntil, when no token of the family can be valid.
	// Revoking twice is not an error.
	RevokeFamily(ctx context.Context, familyID string, keepUntil time.Time) error

	// IsFamilyRevoked reports whether RevokeFamily was called for the family.
	IsFamilyRevoked(ctx context.Context, familyID string) (bool, error)

	// GetConsent returns the scope the user has already approved for the
	// client, or ErrNotFound.
	GetConsent(ctx context.Context, userID, clientID string) (string, error)

	// SaveConsent remembers (replaces) the scope the user approved for the
	// client.
	SaveConsent(ctx context.Context, userID, clientID, scope string) error
}

// Client is a registered client application.
type Client struct {
	ID   string
	Name string
	// SecretHash is the output of HashSecret; empty for public clients.
	SecretHash string
	// RedirectURIs are compared byte for byte (see matchRedirectURI).
	RedirectURIs []string
	// Public clients have no secret and must use PKCE.
	Public bool
	// GrantTypes allowed; empty means authorization_code and refresh_token.
	GrantTypes []string
	// Scopes the client may ask for; empty means any scope the server
	// allows.
	Scopes []string
	// Profile selects wire behaviour: ProfileDefault or ProfileDraft10.
	Profile Profile
	// PKCE policy for a confidential client: PKCERequired (the default),
	// PKCEOptional. Public clients always need PKCE.
	PKCE PKCEPolicy
	// LegacyBasicSecret lets a draft-10 client send its raw secret as the
	// whole Basic credential (the original library's "Basic <secret>").
	LegacyBasicSecret bool
	// IDTokenSignedResponseAlg is the JWS algorithm of the client's
	// id_tokens (OpenID Connect Dynamic Client Registration's
	// id_token_signed_response_alg): RS256, PS256, ES256 or EdDSA. Empty
	// means RS256, the algorithm OpenID Connect makes mandatory.
	IDTokenSignedResponseAlg string
	// AccessTokenFormat is FormatSealed (empty: the server's
	// Config.AccessTokenFormat) or FormatJWT (RFC 9068, which needs the
	// OIDC signing keys).
	AccessTokenFormat string
	// PostLogoutRedirectURIs are where RP-initiated logout may send the
	// browser back to (OpenID Connect RP-Initiated Logout §3), compared
	// byte for byte.
	PostLogoutRedirectURIs []string
	CreatedAt              time.Time

	// BackchannelLogoutURI is where the server POSTs a logout token when
	// a login session the client took part in ends (OpenID Connect
	// Back-Channel Logout 1.0, backchannel_logout_uri): https, or http on
	// a loopback host (sent to only with
	// Config.BackchannelLogout.AllowLoopbackForTests). Empty: none.
	BackchannelLogoutURI string
	// BackchannelLogoutSessionRequired is the client's
	// backchannel_logout_session_required: its logout tokens must carry
	// sid (a session without one is not notified).
	BackchannelLogoutSessionRequired bool

	// Dynamic marks a client registered through dynamic client
	// registration (RFC 7591): its name and URIs are its own claims, so
	// the consent page shows it as unverified and consent is never
	// remembered for it by default.
	Dynamic bool
	// RegistrationTokenHash is the SHA-256 (hex) of the client's
	// registration access token (RFC 7592); the token itself is never
	// stored. Empty for clients not registered dynamically.
	RegistrationTokenHash string
	// Metadata is the client metadata as registered (a JSON object of the
	// RFC 7591 members), which the registration management API returns. A
	// store keeps it as it gets it.
	Metadata string
	// UsedAt is when the client first obtained a token (zero: never), so
	// that dynamically registered clients nobody used can expire.
	UsedAt time.Time

	// AuthMethod is the client's token_endpoint_auth_method: empty means
	// the kit's historical behaviour (none for public clients,
	// client_secret_basic or client_secret_post for confidential ones);
	// AuthPrivateKeyJWT makes the client authenticate with a JWT signed by
	// a key of JWKS or JWKSURI (RFC 7523), never with a secret.
	AuthMethod string
	// JWKS is the client's public key set (a JSON JWK Set), JWKSURI where
	// the server fetches it; at most one is set.
	JWKS    string
	JWKSURI string
	// DPoPBoundAccessTokens requires every access token of the client to
	// be bound to a DPoP key (RFC 9449 §5.2, dpop_bound_access_tokens).
	DPoPBoundAccessTokens bool
	// RequirePAR requires the client's authorization requests to be pushed
	// first (RFC 9126 require_pushed_authorization_requests).
	RequirePAR bool

	// The certificate of an AuthTLSClientAuth client (RFC 8705 §2.1.2),
	// by exactly one of: its subject DN in the RFC 4514 string form
	// (tls_client_auth_subject_dn, compared as a DN: attribute types
	// case-insensitively, values exactly), or a subject alternative name:
	// a DNS name (tls_client_auth_san_dns, case-insensitively), a URI
	// (tls_client_auth_san_uri), an IP address (tls_client_auth_san_ip)
	// or an email address (tls_client_auth_san_email).
	TLSClientAuthSubjectDN string
	TLSClientAuthSANDNS    string
	TLSClientAuthSANURI    string
	TLSClientAuthSANIP     string
	TLSClientAuthSANEmail  string
	// TLSClientCertificateBoundAccessTokens binds the client's access
	// tokens to its TLS client certificate (RFC 8705 §3,
	// tls_client_certificate_bound_access_tokens): a token request without
	// a certificate is refused (unless it carries a DPoP proof, which binds
	// the token to the DPoP key instead).
	TLSClientCertificateBoundAccessTokens bool
	// RefreshRotation is the client's refresh token policy: the zero
	// value rotates, except for FAPI 2.0 clients (see RefreshRotation).
	RefreshRotation RefreshRotation

	// boundCert is the x5t#S256 the access tokens of this request are
	// bound to: set only on the per-request copy authenticateClient
	// returns, never stored.
	boundCert string
}

// Client authentication methods (token_endpoint_auth_method values).
const (
	AuthNone              = "none"
	AuthClientSecretBasic = "client_secret_basic"
	AuthClientSecretPost  = "client_secret_post"
	AuthPrivateKeyJWT     = "private_key_jwt"
	// AuthTLSClientAuth: a certificate chaining to Config.MTLS.ClientCAs
	// that names the client (RFC 8705 §2.1); AuthSelfSignedTLSClientAuth:
	// a certificate whose key is one of the client's JWKS (§2.2).
	AuthTLSClientAuth           = "tls_client_auth"
	AuthSelfSignedTLSClientAuth = "self_signed_tls_client_auth"
)

// AllowsGrant reports whether the client may use grant type gt.
// A client without a grant type list may use the kit's default grants
// (authorization_code and refresh_token).
func (c *Client) AllowsGrant(gt string) bool {
	if len(c.GrantTypes) == 0 {
		g := builtinGrants.lookup(gt)
		return g != nil && g.byDefault
	}
	return slices.Contains(c.GrantTypes, gt)
}

// Grant is a pending authorization code, the original library's Grant.
type Grant struct {
	// ID identifies the grant; it is also the family id of every token
	// issued from it.
	ID string
	// CodeSig is the server's HMAC of the code; the code itself is never
	// stored.
	CodeSig  string
	ClientID string
	UserID   string
	// RedirectURI is the redirect_uri the authorization request carried,
	// empty if it carried none (the token request must then carry none or
	// the registered one).
	RedirectURI         string
	Scope               string
	CodeChallenge       string
	CodeChallengeMethod string
	// AdditionalInfo is what the app attached at SendGrant; it travels into
	// every token of the family.
	AdditionalInfo string
	// OIDC is the OpenID Connect context of the authentication behind the
	// grant (nonce, auth_time, acr, amr, session), encoded by the server.
	// A store keeps it as it gets it, like AdditionalInfo; it is empty for
	// a grant without the openid scope.
	OIDC string
	// Resource lists the RFC 8707 resources the grant is for (canonical
	// URIs, space-separated), empty for none named.
	Resource string
	// DPoPJKT binds the code to a DPoP key (RFC 9449 §10, dpop_jkt): it is
	// redeemed only with a proof of that key. A store keeps it as it gets
	// it; empty for an unbound code.
	DPoPJKT   string
	CreatedAt time.Time
	// ExpiresAt ends the code's redeemability.
	ExpiresAt time.Time
	// KeepUntil is when the store may drop the grant: past it no token of
	// the family can be valid unless a refresh token of the family
	// exists (which names the family itself). Zero means ExpiresAt. A
	// store keeps the grant until then so that user-wide revocation
	// (UserGrantStore) finds the family.
	KeepUntil time.Time
	// UsedAt is set when the code was redeemed, or from the start for
	// the records the server stores born used: a submitted login or
	// consent form, and a family of tokens minted without a code (token
	// exchange, the JWT bearer grant: its user, client and KeepUntil make
	// UserGrantStore find it).
	UsedAt *time.Time
}

// RefreshToken is a stored refresh token (by signature only).
type RefreshToken struct {
	Sig            string
	FamilyID       string
	ClientID       string
	UserID         string
	Scope          string
	AdditionalInfo string
	// OIDC is the grant's OpenID Connect context (Grant.OIDC), carried from
	// token to token so that a refreshed id_token keeps the original
	// authentication's sub and auth_time.
	OIDC string
	// Resource is the grant's resources (Grant.Resource): a refresh can
	// only narrow them.
	Resource string
	// JKT is the thumbprint of the DPoP key a public client's refresh
	// token is bound to (RFC 9449 §5): it is refreshed only with a proof
	// of that key. A store keeps it as it gets it; empty for unbound.
	JKT       string
	CreatedAt time.Time
	ExpiresAt time.Time
	// RotatedAt is set when the token was exchanged for a new one.
	RotatedAt *time.Time
}
