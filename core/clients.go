package core

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/oauth2kit/oauth2kit/core/internal/fetch"
	"github.com/oauth2kit/oauth2kit/core/internal/jose"
)

// ClientSpec describes a client to register (NewClient).
type ClientSpec struct {
	// ID is the client_id. Empty generates one (128 random bits,
	// base64url, never starting with '-' so that it cannot be mistaken
	// for a flag on a command line). At most 128 printable characters,
	// no ':' (it would break Basic credentials).
	ID string
	// Name is shown to the user on the login and consent pages (escaped);
	// at most 200 printable characters.
	Name string
	// RedirectURIs are the exact URIs the client may ask to be sent back
	// to: https, loopback http (any port), or a private-use scheme; no
	// fragment. Required unless the client only uses grants without a
	// redirect (client_credentials).
	RedirectURIs []string
	// Public marks a client that cannot keep a secret (a SPA, a native or
	// command-line app): it gets no secret and must use PKCE.
	Public bool
	// GrantTypes the client may use; empty means authorization_code and
	// refresh_token. client_credentials needs a confidential client.
	GrantTypes []string
	// Scopes the client may ask for; empty means any scope the server
	// allows. When an authorization request names none, the client gets
	// all of these.
	Scopes []string
	// Profile selects wire behaviour: ProfileDefault, or ProfileDraft10
	// for clients written against OAuth 2.0 draft 10.
	Profile Profile
	// PKCE is a confidential client's PKCE policy (PKCERequired, the
	// default, or PKCEOptional). Public clients always need PKCE.
	PKCE PKCEPolicy
	// Secret imports an existing secret (a migration); empty generates one
	// with 256 bits of entropy. Imported secrets shorter than 32
	// characters are hashed with bcrypt, as they may be guessable.
	Secret string
	// LegacyBasicSecret lets a draft-10 client send its raw secret as the
	// whole Basic credential (the original library's "Basic <secret>").
	LegacyBasicSecret bool
	// IDTokenSignedResponseAlg is the client's id_token algorithm (see
	// Client); empty means RS256.
	IDTokenSignedResponseAlg string
	// AccessTokenFormat is FormatSealed (empty: the server's default) or
	// FormatJWT.
	AccessTokenFormat string
	// PostLogoutRedirectURIs are where RP-initiated logout may return the
	// browser to; the same rules as RedirectURIs.
	PostLogoutRedirectURIs []string
	// BackchannelLogoutURI is where logout tokens are POSTed when a login
	// session the client took part in ends (see Client): an absolute
	// https URL, or http on a loopback host, without userinfo or
	// fragment, at most 2048 bytes. BackchannelLogoutSessionRequired
	// makes its logout tokens carry sid.
	BackchannelLogoutURI             string
	BackchannelLogoutSessionRequired bool
	// AuthMethod is AuthPrivateKeyJWT for a client that authenticates
	// with signed JWTs (RFC 7523) by a key of JWKS (a JSON JWK Set of
	// public keys) or JWKSURI (https); such a client gets no secret.
	// Empty: a secret (confidential) or none (Public).
	AuthMethod    string
	JWKS, JWKSURI string
	// DPoPBoundAccessTokens refuses the client tokens not bound to a DPoP
	// key (RFC 9449).
	DPoPBoundAccessTokens bool
	// RequirePAR refuses the client authorization requests it did not
	// push first (RFC 9126).
	RequirePAR bool
	// AuthMethod AuthTLSClientAuth (RFC 8705 §2.1) authenticates the
	// client by a certificate chaining to Config.MTLS.ClientCAs that
	// names it by exactly one of these (see Client); such a client gets
	// no secret and registers no keys.
	TLSClientAuthSubjectDN, TLSClientAuthSANDNS, TLSClientAuthSANURI, TLSClientAuthSANIP, TLSClientAuthSANEmail string
	// AuthMethod AuthSelfSignedTLSClientAuth (§2.2) authenticates the
	// client by a certificate (self-signed or not: no chain is verified)
	// whose public key is in JWKS or at JWKSURI, as for private_key_jwt.
	//
	// TLSClientCertificateBoundAccessTokens binds the client's access
	// tokens to its TLS client certificate (§3), whatever its AuthMethod.
	TLSClientCertificateBoundAccessTokens bool
	// RefreshRotation is the client's refresh token policy (see
	// RefreshRotation); RotationNever needs a confidential client.
	RefreshRotation RefreshRotation
}

// NewClient validates spec and returns the client to store and, for a
// confidential client, its secret in clear: show it to the operator once,
// it is stored only hashed.
func NewClient(spec ClientSpec) (*Client, string, error) {
	return newClient(spec, builtinGrants)
}

// newClient is NewClient over a grant registry.
func newClient(spec ClientSpec, grants *grantRegistry) (*Client, string, error) {
	c := &Client{
		ID:                       spec.ID,
		Name:                     spec.Name,
		Public:                   spec.Public,
		Profile:                  spec.Profile,
		PKCE:                     spec.PKCE,
		LegacyBasicSecret:        spec.LegacyBasicSecret,
		IDTokenSignedResponseAlg: spec.IDTokenSignedResponseAlg,
		AccessTokenFormat:        spec.AccessTokenFormat,
		PostLogoutRedirectURIs:   slices.Clone(spec.PostLogoutRedirectURIs),
		CreatedAt:                time.Now().UTC(),
		DPoPBoundAccessTokens:    spec.DPoPBoundAccessTokens,
		RequirePAR:               spec.RequirePAR,
		RefreshRotation:          spec.RefreshRotation,

		TLSClientCertificateBoundAccessTokens: spec.TLSClientCertificateBoundAccessTokens,
	}
	if c.ID == "" {
		id, err := newClientID()
		if err != nil {
			return nil, "", err
		}
		c.ID = id
	}
	if len(c.ID) > 128 || strings.ContainsAny(c.ID, ":") || !printable(c.ID) {
		return nil, "", errors.New("client id must be 1-128 printable characters without ':'")
	}
	if len(spec.Name) > 200 || !printable(spec.Name) && spec.Name != "" {
		return nil, "", errors.New("client name must be at most 200 printable characters")
	}
	for _, u := range spec.PostLogoutRedirectURIs {
		if err := validateRedirectURI(u); err != nil {
			return nil, "", fmt.Errorf("post-logout redirect URI %q: %w", u, err)
		}
	}
	if err := checkBackchannelURI(spec.BackchannelLogoutURI, true); err != nil {
		return nil, "", fmt.Errorf("back-channel logout URI: %w", err)
	}
	if spec.BackchannelLogoutSessionRequired && spec.BackchannelLogoutURI == "" {
		return nil, "", errors.New("BackchannelLogoutSessionRequired needs a BackchannelLogoutURI")
	}
	c.BackchannelLogoutURI, c.BackchannelLogoutSessionRequired = spec.BackchannelLogoutURI, spec.BackchannelLogoutSessionRequired
	if spec.AccessTokenFormat != FormatSealed && spec.AccessTokenFormat != FormatJWT {
		return nil, "", fmt.Errorf("access token format %q is not %q or %q", spec.AccessTokenFormat, FormatSealed, FormatJWT)
	}
	switch spec.IDTokenSignedResponseAlg {
	case "", AlgRS256, AlgPS256, AlgES256, AlgEdDSA:
	default:
		return nil, "", fmt.Errorf("id_token_signed_response_alg %q is not one of RS256, PS256, ES256, EdDSA", spec.IDTokenSignedResponseAlg)
	}
	if err := spec.RefreshRotation.check(spec.Public); err != nil {
		return nil, "", err
	}
	if err := grants.checkGrantTypes(spec.GrantTypes, spec.Public); err != nil {
		return nil, "", err
	}
	if len(spec.RedirectURIs) == 0 && grants.needsRedirect(spec.GrantTypes) {
		return nil, "", errors.New("at least one redirect URI is required")
	}
	for _, u := range spec.RedirectURIs {
		if err := validateRedirectURI(u); err != nil {
			return nil, "", fmt.Errorf("redirect URI %q: %w", u, err)
		}
	}
	c.RedirectURIs = append([]string(nil), spec.RedirectURIs...)
	c.GrantTypes = append([]string(nil), spec.GrantTypes...)
	for _, s := range spec.Scopes {
		if !validScopeToken(s) {
			return nil, "", fmt.Errorf("scope %q is not a valid scope token", s)
		}
	}
	c.Scopes = append([]string(nil), spec.Scopes...)
	if spec.AuthMethod != AuthTLSClientAuth && (spec.TLSClientAuthSubjectDN != "" || spec.TLSClientAuthSANDNS != "" ||
		spec.TLSClientAuthSANURI != "" || spec.TLSClientAuthSANIP != "" || spec.TLSClientAuthSANEmail != "") {
		return nil, "", errors.New("the TLSClientAuth fields are for AuthMethod tls_client_auth")
	}
	switch spec.AuthMethod {
	case "":
		if spec.JWKS != "" || spec.JWKSURI != "" {
			return nil, "", errors.New("keys (JWKS, JWKSURI) are for AuthMethod private_key_jwt")
		}
	case AuthTLSClientAuth:
		switch {
		case spec.Public || spec.Secret != "":
			return nil, "", errors.New("a tls_client_auth client is confidential and has no secret")
		case spec.JWKS != "" || spec.JWKSURI != "":
			return nil, "", errors.New("a tls_client_auth client has no keys (JWKS, JWKSURI)")
		}
		if err := checkTLSClientSpec(&spec); err != nil {
			return nil, "", err
		}
		c.AuthMethod = AuthTLSClientAuth
		c.TLSClientAuthSubjectDN, c.TLSClientAuthSANDNS, c.TLSClientAuthSANURI = spec.TLSClientAuthSubjectDN, spec.TLSClientAuthSANDNS, spec.TLSClientAuthSANURI
		c.TLSClientAuthSANIP, c.TLSClientAuthSANEmail = spec.TLSClientAuthSANIP, spec.TLSClientAuthSANEmail
		return c, "", nil
	case AuthPrivateKeyJWT, AuthSelfSignedTLSClientAuth:
		switch {
		case spec.Public || spec.Secret != "":
			return nil, "", fmt.Errorf("a %s client is confidential and has no secret", spec.AuthMethod)
		case (spec.JWKS == "") == (spec.JWKSURI == ""):
			return nil, "", fmt.Errorf("a %s client needs exactly one of JWKS and JWKSURI", spec.AuthMethod)
		case spec.JWKS != "":
			if err := jose.CheckPublicJWKS([]byte(spec.JWKS)); err != nil {
				return nil, "", fmt.Errorf("JWKS: %w", err)
			}
		default:
			if _, err := fetch.CheckURL(spec.JWKSURI); err != nil {
				return nil, "", fmt.Errorf("JWKSURI: %w", err)
			}
		}
		c.AuthMethod, c.JWKS, c.JWKSURI = spec.AuthMethod, spec.JWKS, spec.JWKSURI
		return c, "", nil
	default:
		return nil, "", fmt.Errorf("AuthMethod %q: want empty, %q, %q or %q", spec.AuthMethod, AuthPrivateKeyJWT, AuthTLSClientAuth, AuthSelfSignedTLSClientAuth)
	}
	if spec.Public {
		if spec.Secret != "" {
			return nil, "", errors.New("a public client has no secret")
		}
		return c, "", nil
	}
	secret := spec.Secret
	if secret == "" {
		var err error
		if secret, err = GenerateSecret(); err != nil {
			return nil, "", err
		}
	}
	h, err := HashSecret(secret)
	if err != nil {
		return nil, "", err
	}
	c.SecretHash = h
	return c, secret, nil
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return s != ""
}

// GenerateSecret returns a new client secret: 256 bits from crypto/rand in
// base64url ([A-Za-z0-9-_]).
func GenerateSecret() (string, error) { return randomToken(32) }

// HashSecret hashes a client secret for storage. Secrets of 32 characters
// or more (generated ones carry 256 bits) get SHA-256, which is enough for
// high-entropy values and costs nothing per request; shorter (imported)
// secrets get bcrypt, so a leaked table does not give them away.
func HashSecret(secret string) (string, error) {
	if len(secret) >= 32 {
		sum := sha256.Sum256([]byte(secret))
		return "sha256$" + base64.RawStdEncoding.EncodeToString(sum[:]), nil
	}
	if secret == "" || len(secret) > 72 {
		return "", errors.New("secret must not be empty")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(secret), 12)
	if err != nil {
		return "", err
	}
	return "bcrypt$" + string(h), nil
}

// dummyHash is compared against when the client is unknown, so that an
// unknown client costs the same as a wrong secret.
var dummyHash, _ = HashSecret("oauth2kit-dummy-secret-for-timing-equalisation")

// VerifySecret reports whether secret matches a HashSecret output, in
// constant time for SHA-256 hashes.
func VerifySecret(hash, secret string) bool {
	switch {
	case strings.HasPrefix(hash, "sha256$"):
		sum := sha256.Sum256([]byte(secret))
		var enc [43]byte
		base64.RawStdEncoding.Encode(enc[:], sum[:])
		// bytesOf: the comparison only reads; a []byte conversion would
		// allocate on every client authentication.
		return subtle.ConstantTimeCompare(enc[:], bytesOf(hash[len("sha256$"):])) == 1
	case strings.HasPrefix(hash, "bcrypt$"):
		if len(secret) > 72 {
			return false
		}
		return bcrypt.CompareHashAndPassword([]byte(hash[len("bcrypt$"):]), []byte(secret)) == nil
	}
	return false
}

// newClientID returns a random client id. One in 64 base64url strings
// starts with '-', which command-line tools (ours included) read as a flag:
// such draws are rejected, which keeps the id uniform over the rest.
func newClientID() (string, error) {
	for {
		id, err := randomToken(16)
		if err != nil || id[0] != '-' {
			return id, err
		}
	}
}

// newID returns a random identifier (128 bits).
func newID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}
