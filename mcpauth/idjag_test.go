package mcpauth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/auth/extauth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
	"golang.org/x/oauth2"

	"github.com/oauth2kit/oauth2kit/adapters/nethttp"
	"github.com/oauth2kit/oauth2kit/core"
	"github.com/oauth2kit/oauth2kit/core/memstore"
	"github.com/oauth2kit/oauth2kit/mcpauth"
)

// Enterprise-managed authorization (the MCP ext-auth extension) between
// two kit instances, driven by the Go MCP SDK's enterprise client
// (auth/extauth): the user signs in at the enterprise IdP (a kit OpenID
// Provider), the SDK exchanges the id_token there for an Identity
// Assertion JWT Authorization Grant (RFC 8693, requested_token_type
// id-jag), presents it to the MCP server's authorization server (a second
// kit, trusting the IdP) in the RFC 7523 jwt-bearer grant, and calls a
// tool of the MCP server with the access token it got.

const (
	idpClient   = "agent"     // the MCP client at the IdP
	mcpClient   = "agent-mcp" // the same client at the MCP authorization server
	otherClient = "other-mcp" // another client there, also allowed the grant
	idpUser     = "alice"
	idpCallback = "http://127.0.0.1:9/callback" // never reached: the test reads the redirect
)

// autoLogin signs idpUser in without a page: the enterprise SSO the test
// does not need to show.
type autoLogin struct{ srv **core.Server }

func (a autoLogin) Login(w core.Responder, r core.Request, ar *core.AuthorizationRequest) {
	(*a.srv).SendLogin(w, r, ar, core.LoginResult{UserID: idpUser, AMR: []string{"pwd", "mfa"}})
}

func (a autoLogin) ProcessLogin(w core.Responder, r core.Request, ar *core.AuthorizationRequest) {
	a.Login(w, r, ar)
}

// idp is an enterprise IdP: a kit OpenID Provider over TLS that issues
// ID-JAGs for the authorization servers it is told of.
type idp struct {
	ts     *httptest.Server
	srv    *core.Server
	issuer string
	secret string // of idpClient
}

// newIdP starts an IdP issuing ID-JAGs for the authorization servers
// audiences, mapping idpClient to mcpClient there.
func newIdP(t *testing.T, audiences ...string) *idp {
	t.Helper()
	ts := httptest.NewUnstartedServer(nil)
	p := &idp{ts: ts, issuer: "https://" + ts.Listener.Addr().String()}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var auds []core.IDJAGAudience
	for _, a := range audiences {
		auds = append(auds, core.IDJAGAudience{Issuer: a, Scopes: []string{"mcp"}})
	}
	store := memstore.New()
	p.srv, err = core.New(core.Config{
		Issuer: p.issuer,
		Keys:   core.Keys{CryptKey: []byte("idp test crypt key, 32 bytes...."), SignKey: []byte("idp test sign key, 32 bytes....!")},
		OIDC:   core.OIDC{SigningKeys: []core.SigningKey{{Alg: core.AlgES256, Signer: key, State: core.KeySigning}}},
		TokenExchange: core.TokenExchange{
			Enabled:        true,
			IDJAGAudiences: auds,
			// The client has its own registration at the MCP server's
			// authorization server (the draft's §5).
			Policy: func(_ context.Context, r *core.TokenExchangeRequest) error {
				if r.RequestedTokenType == core.TokenTypeIDJAG && r.Client.ID == idpClient {
					r.TargetClientID = mcpClient
				}
				return nil
			},
		},
	}, store, autoLogin{&p.srv})
	if err != nil {
		t.Fatal(err)
	}
	c, secret, err := core.NewClient(core.ClientSpec{ID: idpClient, Name: "Agent", RedirectURIs: []string{idpCallback},
		GrantTypes: []string{core.GrantAuthorizationCode, core.GrantTokenExchange}})
	if err != nil {
		t.Fatal(err)
	}
	store.AddClient(c)
	p.secret = secret
	mux := http.NewServeMux()
	nethttp.Mount(mux, p.srv)
	ts.Config.Handler = mux
	ts.StartTLS()
	t.Cleanup(ts.Close)
	return p
}

// creds are the client's credentials at the IdP.
func (p *idp) creds() *oauthex.ClientCredentials {
	return &oauthex.ClientCredentials{ClientID: idpClient, ClientSecretAuth: &oauthex.ClientSecretAuth{ClientSecret: p.secret}}
}

// login signs the user in with the SDK's OIDC login (code flow with
// PKCE): the id_token fetcher of the enterprise handler.
func (p *idp) login(ctx context.Context) (*oauth2.Token, error) {
	noRedirect := *p.ts.Client()
	noRedirect.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return extauth.PerformOIDCLogin(ctx, &extauth.OIDCLoginConfig{
		IssuerURL:   p.issuer,
		Credentials: p.creds(),
		RedirectURL: idpCallback,
		Scopes:      []string{"openid"},
		HTTPClient:  p.ts.Client(),
	}, func(ctx context.Context, args *auth.AuthorizationArgs) (*auth.AuthorizationResult, error) {
		// The browser: the IdP signs the user in and redirects back.
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, args.URL, nil)
		if err != nil {
			return nil, err
		}
		res, err := noRedirect.Do(req)
		if err != nil {
			return nil, err
		}
		res.Body.Close()
		loc, err := url.Parse(res.Header.Get("Location"))
		if err != nil || res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc.String(), idpCallback) {
			return nil, fmt.Errorf("authorize: HTTP %d, Location %q", res.StatusCode, res.Header.Get("Location"))
		}
		q := loc.Query()
		return &auth.AuthorizationResult{Code: q.Get("code"), State: q.Get("state"), Iss: q.Get("iss")}, nil
	})
}

// idjag signs the user in and exchanges the id_token for an ID-JAG for
// the authorization server audience, as the enterprise handler does.
func (p *idp) idjag(t *testing.T, audience, resource string) string {
	t.Helper()
	tok, err := p.login(t.Context())
	if err != nil {
		t.Fatalf("OIDC login: %v", err)
	}
	idToken, _ := tok.Extra("id_token").(string)
	x, err := oauthex.ExchangeToken(t.Context(), p.issuer+"/oauth2/token", &oauthex.TokenExchangeRequest{
		RequestedTokenType: oauthex.TokenTypeIDJAG,
		Audience:           audience,
		Resource:           resource,
		Scope:              []string{"mcp"},
		SubjectToken:       idToken,
		SubjectTokenType:   oauthex.TokenTypeIDToken,
	}, p.creds(), p.ts.Client())
	if err != nil {
		t.Fatalf("token exchange for an ID-JAG: %v", err)
	}
	if x.Extra("issued_token_type") != oauthex.TokenTypeIDJAG || x.TokenType != "N_A" {
		t.Fatalf("token exchange answered issued_token_type %v, token_type %q", x.Extra("issued_token_type"), x.TokenType)
	}
	return x.AccessToken
}

// mcpDeployment is the MCP server's side: its authorization server (a
// kit trusting the IdP for ID-JAGs) and the MCP server behind
// mcpauth.Middleware, on one plain-HTTP loopback server.
type mcpDeployment struct {
	ts                     *httptest.Server
	srv                    *core.Server
	issuer, resource       string
	mcpSecret, otherSecret string
}

// newMCPDeployment starts the MCP side on ts, an unstarted server (whose
// address the IdP was told as an audience), trusting the IdP trusted.
func newMCPDeployment(t *testing.T, ts *httptest.Server, trusted *idp) *mcpDeployment {
	t.Helper()
	d := &mcpDeployment{ts: ts, issuer: "http://" + ts.Listener.Addr().String()}
	d.resource = d.issuer + "/mcp"
	pool := x509.NewCertPool()
	pool.AddCert(trusted.ts.Certificate())
	store := memstore.New()
	var err error
	d.srv, err = core.New(core.Config{
		Issuer:    d.issuer,
		Keys:      core.Keys{CryptKey: []byte("mcp as test crypt key, 32 bytes."), SignKey: []byte("mcp as test sign key, 32 bytes.!")},
		Scopes:    []string{"mcp"},
		Resources: []core.Resource{{URI: d.resource, Scopes: []string{"mcp"}, Name: "Enterprise MCP"}},
		JWTBearer: core.JWTBearer{
			Issuers: []core.TrustedIssuer{{Issuer: trusted.issuer, JWKSURI: trusted.issuer + "/oauth2/jwks"}},
			// The IdP is an httptest server on 127.0.0.1.
			AllowLoopbackForTests: true,
			TLS:                   &tls.Config{RootCAs: pool},
		},
	}, store, noLogin{})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{mcpClient, otherClient} {
		c, secret, err := core.NewClient(core.ClientSpec{ID: id, GrantTypes: []string{core.GrantJWTBearer}})
		if err != nil {
			t.Fatal(err)
		}
		store.AddClient(c)
		if id == mcpClient {
			d.mcpSecret = secret
		} else {
			d.otherSecret = secret
		}
	}
	mux := http.NewServeMux()
	nethttp.Mount(mux, d.srv)
	nethttp.MountProtectedResource(mux, d.srv, d.resource)
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return newMCPServer() }, &mcp.StreamableHTTPOptions{Stateless: true})
	mux.Handle("/mcp", mcpauth.Middleware(d.srv, d.resource, "mcp")(h))
	ts.Config.Handler = mux
	ts.Start()
	t.Cleanup(ts.Close)
	return d
}

// jwtBearer presents assertion at the authorization server as client id
// (client_secret_post, as the SDK sends it) and returns the status and the
// JSON answer.
func (d *mcpDeployment) jwtBearer(t *testing.T, id, secret, assertion string) (int, map[string]any) {
	t.Helper()
	form := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {assertion},
		"client_id": {id}, "client_secret": {secret}}
	res, err := http.Post(d.issuer+"/oauth2/token", "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(res.Body).Decode(&m); err != nil {
		t.Fatalf("token endpoint: HTTP %d, not JSON: %v", res.StatusCode, err)
	}
	if cc := res.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("token endpoint: Cache-Control %q", cc)
	}
	return res.StatusCode, m
}

// claims decodes a JWT's payload (unverified: the test reads what the IdP
// put there).
func claims(t *testing.T, jwt string) map[string]any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWS: %q", jwt)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// The round trip: the SDK's enterprise handler obtains an access token
// for the MCP server through both kits and calls a tool with it.
func TestEnterpriseManagedAuthorization(t *testing.T) {
	p, d := newEnterprise(t)

	var logins int
	handler, err := extauth.NewEnterpriseHandler(&extauth.EnterpriseHandlerConfig{
		IdPIssuerURL:     p.issuer,
		IdPCredentials:   p.creds(),
		MCPAuthServerURL: d.issuer,
		MCPResourceURI:   d.resource,
		MCPCredentials:   &oauthex.ClientCredentials{ClientID: mcpClient, ClientSecretAuth: &oauthex.ClientSecretAuth{ClientSecret: d.mcpSecret}},
		MCPScopes:        []string{"mcp"},
		IDTokenFetcher: func(ctx context.Context) (*oauth2.Token, error) {
			logins++
			return p.login(ctx)
		},
		HTTPClient: p.ts.Client(), // trusts the IdP's certificate; the MCP side is plain HTTP
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "enterprise-agent", Version: "v0.0.1"}, nil).Connect(ctx, &mcp.StreamableClientTransport{
		Endpoint:             d.resource,
		OAuthHandler:         handler,
		DisableStandaloneSSE: true,
		MaxRetries:           -1,
	}, nil)
	if err != nil {
		t.Fatalf("connect through enterprise-managed authorization: %v", err)
	}
	defer cs.Close()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "whoami"})
	if err != nil {
		t.Fatalf("call: %v", err)
	}
	if res.IsError || len(res.Content) != 1 {
		t.Fatalf("whoami: %+v", res)
	}
	var who map[string]any
	if err := json.Unmarshal([]byte(res.Content[0].(*mcp.TextContent).Text), &who); err != nil {
		t.Fatal(err)
	}
	// The IdP's user, the client's registration at the MCP side, the
	// scope the IdP granted.
	if who["sub"] != idpUser || who["client_id"] != mcpClient || who["scope"] != "mcp" || who["exp_set"] != true {
		t.Errorf("whoami %v", who)
	}
	if logins != 1 {
		t.Errorf("%d logins at the IdP, want 1", logins)
	}

	// The token the SDK holds is the MCP authorization server's, for the
	// MCP server alone, without a refresh token.
	src, _ := handler.TokenSource(ctx)
	tok, err := src.Token()
	if err != nil {
		t.Fatal(err)
	}
	if tok.RefreshToken != "" || tok.TokenType != "Bearer" {
		t.Errorf("token: type %q, refresh token %v", tok.TokenType, tok.RefreshToken != "")
	}
	info, err := d.srv.CheckTokenFor(ctx, tok.AccessToken, d.resource)
	if err != nil || info.UserID != idpUser || info.ClientID != mcpClient || info.Scope != "mcp" {
		t.Errorf("the access token: %+v, %v", info, err)
	}
	if _, err := p.srv.CheckToken(ctx, tok.AccessToken); err == nil {
		t.Error("the IdP accepts the MCP server's access token")
	}
}

// otherAS is an authorization server the IdP also issues ID-JAGs for.
const otherAS = "https://other-as.example.com"

// newEnterprise starts an IdP issuing ID-JAGs for the MCP side's
// authorization server (and otherAS), and the MCP side trusting it.
func newEnterprise(t *testing.T) (*idp, *mcpDeployment) {
	t.Helper()
	ts := httptest.NewUnstartedServer(nil) // its address is the MCP side's issuer
	p := newIdP(t, "http://"+ts.Listener.Addr().String(), otherAS)
	return p, newMCPDeployment(t, ts, p)
}

// jwtHeader decodes a JWT's header.
func jwtHeader(t *testing.T, jwt string) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(jwt, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// wantRefused asserts the token endpoint's invalid_grant, without a token.
func wantRefused(t *testing.T, what string, status int, m map[string]any) {
	t.Helper()
	if status != http.StatusBadRequest || m["error"] != "invalid_grant" || m["error_description"] == nil {
		t.Errorf("%s: HTTP %d %v, want 400 invalid_grant with a description", what, status, m)
	}
	if _, ok := m["access_token"]; ok {
		t.Errorf("%s: a refusal carries an access token", what)
	}
}

// The authorization server's refusals over HTTP, with ID-JAGs the IdP
// issued: one presented by another client, a replayed one, one for
// another authorization server, one from an IdP the server does not
// trust, and an id_token passed off as one.
func TestEnterpriseManagedAuthorizationRefusals(t *testing.T) {
	p, d := newEnterprise(t)
	good := p.idjag(t, d.issuer, d.resource)
	if h := jwtHeader(t, good); h["typ"] != core.IDJAGType || h["kid"] == nil {
		t.Errorf("ID-JAG header %v", h)
	}
	c := claims(t, good)
	if c["iss"] != p.issuer || c["aud"] != d.issuer || c["client_id"] != mcpClient || c["sub"] != idpUser ||
		c["resource"] != d.resource || c["scope"] != "mcp" || c["jti"] == nil {
		t.Errorf("ID-JAG claims %v", c)
	}

	// client_id names agent-mcp: another client of the server, properly
	// authenticated, may not present it...
	status, m := d.jwtBearer(t, otherClient, d.otherSecret, good)
	wantRefused(t, "client_id mismatch", status, m)
	// ...and its refusal did not use the assertion up.
	status, m = d.jwtBearer(t, mcpClient, d.mcpSecret, good)
	if status != http.StatusOK || m["token_type"] != "Bearer" || m["scope"] != "mcp" || m["access_token"] == nil || m["refresh_token"] != nil {
		t.Fatalf("the ID-JAG from its client: HTTP %d %v", status, m)
	}
	if _, err := d.srv.CheckTokenFor(t.Context(), m["access_token"].(string), d.resource); err != nil {
		t.Errorf("the access token is not for the MCP server: %v", err)
	}
	// Replayed: its jti is spent.
	status, m = d.jwtBearer(t, mcpClient, d.mcpSecret, good)
	wantRefused(t, "replayed jti", status, m)
	if !strings.Contains(fmt.Sprint(m["error_description"]), "used before") {
		t.Errorf("replay: %v", m)
	}

	// For another authorization server (aud).
	status, m = d.jwtBearer(t, mcpClient, d.mcpSecret, p.idjag(t, otherAS, d.resource))
	wantRefused(t, "wrong aud", status, m)

	// From an IdP the server does not trust, though it names the server
	// and the client rightly.
	stranger := newIdP(t, d.issuer)
	status, m = d.jwtBearer(t, mcpClient, d.mcpSecret, stranger.idjag(t, d.issuer, d.resource))
	wantRefused(t, "untrusted issuer", status, m)

	// The trusted IdP's id_token is signed by the same keys, but it is no
	// ID-JAG (typ).
	tok, err := p.login(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	status, m = d.jwtBearer(t, mcpClient, d.mcpSecret, tok.Extra("id_token").(string))
	wantRefused(t, "id_token as the assertion", status, m)

	// The SDK's enterprise handler surfaces the refusal: a client the IdP
	// did not issue the grant for cannot connect.
	handler, err := extauth.NewEnterpriseHandler(&extauth.EnterpriseHandlerConfig{
		IdPIssuerURL:     p.issuer,
		IdPCredentials:   p.creds(),
		MCPAuthServerURL: d.issuer,
		MCPResourceURI:   d.resource,
		MCPCredentials:   &oauthex.ClientCredentials{ClientID: otherClient, ClientSecretAuth: &oauthex.ClientSecretAuth{ClientSecret: d.otherSecret}},
		MCPScopes:        []string{"mcp"},
		IDTokenFetcher:   p.login,
		HTTPClient:       p.ts.Client(),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	_, err = mcp.NewClient(&mcp.Implementation{Name: "other-agent", Version: "v0.0.1"}, nil).Connect(ctx, &mcp.StreamableClientTransport{
		Endpoint: d.resource, OAuthHandler: handler, DisableStandaloneSSE: true, MaxRetries: -1,
	}, nil)
	var re *oauth2.RetrieveError
	if err == nil || !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Errorf("connect as a client the ID-JAG is not for: %v, want the token endpoint's invalid_grant", err)
	}
}
