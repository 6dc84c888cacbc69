// Package core is the framework-agnostic heart of oauth2kit: an OAuth 2.0
// authorization server (RFC 6749, 6750, 7009, 7636, 7662, 8414, 9207, the
// Security BCP RFC 9700 and OAuth 2.1) built from a Config, a Storage and
// the application's Authenticator.
//
// The server speaks HTTP only through two small interfaces, Request and
// Responder; the adapters (adapters/nethttp, gin, echo, fiber) implement
// them for a framework and mount Server.Handle, and a team with its own HTTP
// stack can implement them in a few lines.
//
// The flow is the original oauth2_server_node's: the authorization endpoint
// validates the request and calls Authenticator.Login, which renders the
// app's login page; the page posts to the process-login endpoint, the kit
// checks the form's session binding and CSRF token and calls
// Authenticator.ProcessLogin; the app checks the credentials and calls
// Server.SendGrant, which asks for consent (ConsentPrompter) and redirects
// to the client with a single-use code. The client redeems the code at the
// token endpoint (with PKCE), refreshes with rotation, revokes and
// introspects. Resource servers check access tokens with
// Server.CheckRequest or Server.CheckToken.
//
// Security defaults: exact redirect URI matching, PKCE S256 required,
// single-use codes consumed atomically by the store, code replay and refresh
// reuse revoke the whole grant, constant-time secret checks on hashed
// secrets, throttled client authentication, CSRF-protected and
// session-bound login and consent forms, anti-framing headers on every page.
//
// Access tokens are self-contained: XChaCha20-Poly1305 sealed claims with
// an authenticated "at2.<key id>." header, keys derived with HKDF from
// CryptKey; codes and refresh tokens are opaque random values of which the
// store keeps only an HMAC (keys derived from SignKey).
package core
