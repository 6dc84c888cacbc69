// Package mcpauth protects an MCP server built with the official Go SDK
// (github.com/modelcontextprotocol/go-sdk) with tokens of an oauth2kit
// server: the MCP server is a resource of its own (core.Config.Resources,
// RFC 8707), so it accepts only tokens issued for it, and it publishes
// protected resource metadata (RFC 9728) from which an MCP client finds
// the authorization server after a 401 alone.
//
// The shortest road is Middleware, which answers refusals as RFC 6750
// says (401 invalid_token, 403 insufficient_scope, the resource_metadata
// URL) and hands the SDK the token's information:
//
//	resource := issuer + "/mcp" // one of cfg.Resources
//	mux := http.NewServeMux()
//	nethttp.Mount(mux, srv)
//	nethttp.MountProtectedResource(mux, srv, resource)
//	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server },
//		&mcp.StreamableHTTPOptions{Stateless: true})
//	mux.Handle("/mcp", mcpauth.Middleware(srv, resource, "mcp")(h))
//
// Tool handlers read the caller from req.Extra.TokenInfo: UserID is the
// token's subject, Scopes its scopes, Extra[ClientIDKey] its client.
//
// Code that uses the SDK's own auth.RequireBearerToken passes it
// TokenVerifier, and ResourceMetadataURL for the challenge;
// ProtectedResourceMetadata gives auth.ProtectedResourceMetadataHandler
// the kit's document.
package mcpauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/oauthex"

	"github.com/oauth2kit/oauth2kit/adapters/nethttp"
	"github.com/oauth2kit/oauth2kit/core"
)

// ClientIDKey is the auth.TokenInfo.Extra key of the token's client_id:
// the SDK's TokenInfo has no field for it, and a tool may need to tell
// one client of the same user from another.
const ClientIDKey = "client_id"

// ErrInsufficientScope is wrapped, together with auth.ErrInvalidToken, by
// TokenVerifier's refusal of a valid token that lacks a required scope.
var ErrInsufficientScope = errors.New("insufficient scope")

// ErrUnavailable is wrapped by TokenVerifier's error when the token could
// not be checked at all (the store that knows revocations failed): that
// is not the client's fault, so the SDK answers 500 rather than 401, and
// the client keeps its token.
var ErrUnavailable = errors.New("mcpauth: the access token could not be checked now")

// errInvalid is every refusal of the token itself. Its text is all the
// SDK sends the client (it writes the error into the 401 body), so it
// says no more than the kit does: not whether the token was expired,
// revoked, forged or for another resource.
var errInvalid = fmt.Errorf("mcpauth: %w", auth.ErrInvalidToken)

// TokenVerifier returns an auth.TokenVerifier for auth.RequireBearerToken
// that accepts only tokens s issued for resource (a core.Config.Resources
// URI; "" is core.Config.Audience), checked as the kit checks a resource
// request: authenticity, issuer, expiry by s's clock, audience and
// revocation.
//
// It refuses a token that is invalid, expired, revoked or issued for
// another resource with an error wrapping auth.ErrInvalidToken (the SDK
// answers 401, and an MCP client authorizes again). When the check
// cannot be made (storage failed) the error wraps ErrUnavailable and not
// auth.ErrInvalidToken, so the SDK answers 500 instead of making the
// client throw away a good token; the kit logs the cause.
//
// scopes, if given, must all be in the token. A token without one is
// refused like an invalid token (auth.ErrInvalidToken, and
// ErrInsufficientScope): a verifier's refusal can only be a 401 in the
// SDK, which makes an MCP client authorize again for the scopes of the
// resource metadata. For the 403 insufficient_scope of RFC 6750 §3.1,
// give no scopes here and set auth.RequireBearerTokenOptions.Scopes, or
// use Middleware.
//
// The TokenInfo always has Expiration (the SDK refuses a token without
// one) and UserID set: the token's subject, the user or, for a
// client_credentials token, the client. Extra[ClientIDKey] is the client.
func TokenVerifier(s *core.Server, resource string, scopes ...string) auth.TokenVerifier {
	scopes = append([]string(nil), scopes...)
	return func(ctx context.Context, token string, _ *http.Request) (*auth.TokenInfo, error) {
		// CheckRequestFor, not CheckTokenFor: it tells a bad token (401)
		// from a failed store (503), which CheckTokenFor's errors do not
		// let a caller outside core do.
		info, rerr := s.CheckRequestFor(bearerRequest{ctx: ctx, token: token}, resource, scopes...)
		if rerr == nil {
			return tokenInfo(info), nil
		}
		switch rerr.Status {
		case http.StatusForbidden:
			return nil, fmt.Errorf("mcpauth: %w: %w", auth.ErrInvalidToken, ErrInsufficientScope)
		case http.StatusServiceUnavailable:
			return nil, &unavailableError{cause: rerr.Err}
		default:
			return nil, errInvalid
		}
	}
}

// unavailableError is ErrUnavailable with its cause. Its text is
// ErrUnavailable's alone, since the SDK sends it to the client and the
// cause is the server's business; errors.Is and errors.As still reach the
// cause.
type unavailableError struct{ cause error }

func (e *unavailableError) Error() string { return ErrUnavailable.Error() }

func (e *unavailableError) Unwrap() []error {
	if e.cause == nil {
		return []error{ErrUnavailable}
	}
	return []error{ErrUnavailable, e.cause}
}

// Middleware protects an MCP handler (mcp.NewStreamableHTTPHandler) at
// resource (a core.Config.Resources URI): the kit checks the token once,
// as nethttp.MiddlewareFor does, and refuses as RFC 6750 says — 401 with
// error="invalid_token" for a bad, expired, revoked or other-audience
// token, 403 insufficient_scope with the scopes, and the resource_metadata
// URL on both (RFC 9728 §5.1) — which the SDK's own middleware does not
// (its challenge carries no error code, so an SDK client cannot tell a
// missing scope from a bad token). The SDK's auth.RequireBearerToken then
// only hands the checked token's information to the MCP server, where
// tool handlers find it in req.Extra.TokenInfo (as TokenVerifier fills
// it).
//
// The token must come in the Authorization header with the Bearer scheme,
// as MCP clients send it: the SDK reads it from there.
func Middleware(s *core.Server, resource string, scopes ...string) func(http.Handler) http.Handler {
	kit := nethttp.MiddlewareFor(s, resource, scopes...)
	sdk := auth.RequireBearerToken(checked, &auth.RequireBearerTokenOptions{ResourceMetadataURL: ResourceMetadataURL(s, resource)})
	return func(next http.Handler) http.Handler { return kit(sdk(next)) }
}

// checked is the verifier behind Middleware: the token was checked by the
// kit's middleware just before, which put its info in the context.
func checked(_ context.Context, _ string, r *http.Request) (*auth.TokenInfo, error) {
	info, ok := nethttp.TokenInfo(r.Context())
	if !ok {
		return nil, errInvalid
	}
	return tokenInfo(info), nil
}

// tokenInfo is the SDK's view of a checked token.
func tokenInfo(info *core.TokenInfo) *auth.TokenInfo {
	return &auth.TokenInfo{
		Scopes:     strings.Fields(info.Scope),
		Expiration: info.ExpiresAt, // every kit token has an exp
		// The SDK compares it across the requests of a session (stateful
		// servers), so it must name the caller: the user, or the client of
		// a client_credentials token.
		UserID: info.Subject(),
		Extra:  map[string]any{ClientIDKey: info.ClientID},
	}
}

// ResourceMetadataURL is the absolute URL of resource's protected resource
// metadata (RFC 9728 §3.1: the well-known path with the resource's path
// inserted, on the resource's origin), as the kit's own challenges name
// it; give it to auth.RequireBearerTokenOptions.ResourceMetadataURL. ""
// when s does not know resource.
func ResourceMetadataURL(s *core.Server, resource string) string {
	p := s.ProtectedResourcePath(resource)
	if p == "" {
		return ""
	}
	u, err := url.Parse(resource)
	if err != nil {
		return ""
	}
	return u.Scheme + "://" + u.Host + p
}

// ProtectedResourceMetadata is the kit's RFC 9728 document of resource
// (core.Server.ProtectedResourceMetadata) as the SDK's type, for
// auth.ProtectedResourceMetadataHandler or a client-side check, so that
// what the SDK serves and what the kit's challenges point to cannot
// drift apart. It fails for a resource s does not know.
func ProtectedResourceMetadata(s *core.Server, resource string) (*oauthex.ProtectedResourceMetadata, error) {
	doc, ok := s.ProtectedResourceMetadata(resource)
	if !ok {
		return nil, fmt.Errorf("mcpauth: %q is not a resource of the server (core.Config.Resources)", resource)
	}
	var m oauthex.ProtectedResourceMetadata
	if err := json.Unmarshal(doc, &m); err != nil {
		return nil, fmt.Errorf("mcpauth: the server's resource metadata: %w", err)
	}
	return &m, nil
}

// bearerRequest is a resource request carrying token alone, in the
// Authorization header: what the kit's resource check needs to check one
// token. GET, so that no body is looked for.
type bearerRequest struct {
	ctx   context.Context
	token string
}

func (r bearerRequest) Context() context.Context { return r.ctx }
func (r bearerRequest) Method() string           { return http.MethodGet }
func (r bearerRequest) Path() string             { return "/" }
func (r bearerRequest) RawQuery() string         { return "" }
func (r bearerRequest) Body() io.Reader          { return http.NoBody }
func (r bearerRequest) RemoteAddr() string       { return "" }
func (r bearerRequest) TLS() bool                { return false }

func (r bearerRequest) Header(name string) []string {
	if strings.EqualFold(name, "Authorization") {
		return []string{"Bearer " + r.token}
	}
	return nil
}
