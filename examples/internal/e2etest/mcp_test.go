package e2etest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
	"golang.org/x/oauth2"

	"github.com/oauth2kit/oauth2kit/examples/internal/demo"
)

// The MCP example (EXAMPLES.md, "MCP server" and "Protected resource
// metadata"): the kit plus an MCP server at /mcp whose tokens are for
// <issuer>/mcp alone. TestMCPExample drives it as a resource server with
// plain HTTP and the SDK's client holding a token; TestMCPClientRegisters
// lets the SDK's OAuth client find everything from a 401, register
// itself and sign the demo user in.

const (
	mcpPRMPath = "/.well-known/oauth-protected-resource/mcp"
	mcpScope   = "mcp"
)

func TestMCPExample(t *testing.T) {
	bin := Build(t, "mcp")
	t.Run("Contract", func(t *testing.T) {
		// The MCP example is also a demo server like every other one.
		t.Parallel()
		testSQLite(t, bin)
	})
	t.Run("Resource", func(t *testing.T) {
		t.Parallel()
		db := filepath.Join(t.TempDir(), "demo.db")
		s := Start(t, bin, "-addr", "127.0.0.1:0", "-db", db)
		testMCPResource(t, s, bin, db)
	})
}

func testMCPResource(t *testing.T, s *Server, bin, db string) {
	resource := s.Issuer + "/mcp"
	challenge := `resource_metadata="` + s.Issuer + mcpPRMPath + `"`

	t.Run("NoToken", func(t *testing.T) {
		for _, method := range []string{http.MethodPost, http.MethodGet} {
			status, h, body := mcpRequest(t, method, s.Base+"/mcp", "")
			www := h.Get("WWW-Authenticate")
			if status != http.StatusUnauthorized || !strings.HasPrefix(www, "Bearer ") || !strings.Contains(www, challenge) {
				t.Errorf("%s /mcp without a token: HTTP %d, WWW-Authenticate %q, want 401 with %s", method, status, www, challenge)
			}
			if strings.Contains(www, "error=") {
				t.Errorf("%s /mcp without a token: WWW-Authenticate %q carries an error code (RFC 6750 §3.1: none without credentials)", method, www)
			}
			if len(body) > 0 && strings.Contains(string(body), "jsonrpc") {
				t.Errorf("%s /mcp without a token reached the MCP server: %s", method, body)
			}
		}
	})

	t.Run("ProtectedResourceMetadata", func(t *testing.T) {
		res, err := plain.Get(s.Base + mcpPRMPath)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
			t.Fatalf("GET %s: HTTP %d, Content-Type %q", mcpPRMPath, res.StatusCode, res.Header.Get("Content-Type"))
		}
		var md map[string]any
		if err := json.NewDecoder(res.Body).Decode(&md); err != nil {
			t.Fatal(err)
		}
		if md["resource"] != resource {
			t.Errorf("resource = %v, want %q", md["resource"], resource)
		}
		for field, want := range map[string][]string{
			"authorization_servers":    {s.Issuer},
			"scopes_supported":         {mcpScope},
			"bearer_methods_supported": {"header"},
		} {
			list, _ := md[field].([]any)
			for _, w := range want {
				if !slices.Contains(list, any(w)) {
					t.Errorf("%s = %v, lacks %q", field, md[field], w)
				}
			}
		}
		if list, _ := md["authorization_servers"].([]any); len(list) != 1 {
			t.Errorf("authorization_servers = %v, want exactly the issuer", list)
		}
		// The SDK's own reader accepts it for the MCP URL (it checks
		// resource against the URL it connects to).
		if _, err := oauthex.GetProtectedResourceMetadata(t.Context(), s.Base+mcpPRMPath, resource, plain); err != nil {
			t.Errorf("the SDK refuses the metadata: %v", err)
		}
		// And the authorization server it names is this one.
		asm, err := auth.GetAuthServerMetadata(t.Context(), s.Issuer, plain)
		if err != nil || asm == nil || asm.Issuer != s.Issuer {
			t.Errorf("authorization server metadata of %s: %+v, %v", s.Issuer, asm, err)
		}
	})

	// A token of the demo API (audience: the issuer).
	apiToken := clientCredentials(t, s, url.Values{"scope": {"read"}})
	t.Run("OtherAudience", func(t *testing.T) {
		status, h, _ := mcpRequest(t, http.MethodPost, s.Base+"/mcp", apiToken)
		www := h.Get("WWW-Authenticate")
		if status != http.StatusUnauthorized || !strings.Contains(www, `error="invalid_token"`) || !strings.Contains(www, challenge) {
			t.Errorf("/mcp with a token for %s: HTTP %d, WWW-Authenticate %q, want 401 invalid_token with %s", s.Issuer, status, www, challenge)
		}
		if status, _, _ := api(t, s.Base, "/api/me", apiToken); status != http.StatusOK {
			t.Errorf("/api/me with the API's token: HTTP %d, want 200", status)
		}
	})

	// A client of the MCP server, registered with the client command, and
	// tokens for <issuer>/mcp through the code flow with PKCE.
	out, errOut, code := Run(t, bin, "client", "add", "-db", db, "-name", "E2E MCP", "-redirect-uri", redirectURI, "-scope", "mcp openid")
	var cl map[string]string
	if err := json.Unmarshal([]byte(out), &cl); code != 0 || err != nil {
		t.Fatalf("client add: exit %d, %v\n%s%s", code, err, out, errOut)
	}
	conf := &oauth2.Config{
		ClientID: cl["client_id"], ClientSecret: cl["client_secret"], RedirectURL: redirectURI,
		Endpoint: oauth2.Endpoint{AuthURL: s.Base + "/oauth2/authorize", TokenURL: s.Base + "/oauth2/token", AuthStyle: oauth2.AuthStyleInHeader},
	}
	mcpToken := mcpCodeFlow(t, s, conf, "E2E MCP", resource, mcpScope)

	t.Run("Tools", func(t *testing.T) {
		cs := mcpConnect(t, s.Base+"/mcp", &http.Client{Transport: bearerTransport{token: mcpToken}, Timeout: 30 * time.Second})
		who := mcpWhoami(t, cs)
		if who["sub"] != demo.DemoUser || who["client_id"] != conf.ClientID || who["scope"] != mcpScope {
			t.Errorf("whoami = %v, want sub %q, client_id %q, scope %q", who, demo.DemoUser, conf.ClientID, mcpScope)
		}
		mcpWantEcho(t, cs)
	})

	t.Run("TokenNotForTheAPI", func(t *testing.T) {
		status, _, h := api(t, s.Base, "/api/me", mcpToken)
		if status != http.StatusUnauthorized || !strings.Contains(h.Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Errorf("/api/me with a token for %s: HTTP %d, WWW-Authenticate %q, want 401 invalid_token", resource, status, h.Get("WWW-Authenticate"))
		}
	})

	t.Run("TokenInQuery", func(t *testing.T) {
		// bearer_methods_supported is ["header"]: a token in the URL (it
		// ends up in logs) is no credential at all.
		for _, param := range []string{"access_token", "oauth_token"} {
			for _, method := range []string{http.MethodPost, http.MethodGet} {
				status, h, _ := mcpRequest(t, method, s.Base+"/mcp?"+url.Values{param: {mcpToken}}.Encode(), "")
				if status != http.StatusUnauthorized || !strings.Contains(h.Get("WWW-Authenticate"), challenge) {
					t.Errorf("%s /mcp?%s=…: HTTP %d, WWW-Authenticate %q, want 401 with %s", method, param, status, h.Get("WWW-Authenticate"), challenge)
				}
			}
		}
	})

	t.Run("MissingScope", func(t *testing.T) {
		// A token for the MCP resource without the mcp scope (openid is
		// allowed with any resource).
		tok := mcpCodeFlow(t, s, conf, "E2E MCP", resource, "openid")
		status, h, _ := mcpRequest(t, http.MethodPost, s.Base+"/mcp", tok)
		www := h.Get("WWW-Authenticate")
		if status != http.StatusForbidden || !strings.Contains(www, `error="insufficient_scope"`) || !strings.Contains(www, `scope="mcp"`) {
			t.Errorf("/mcp without the mcp scope: HTTP %d, WWW-Authenticate %q, want 403 insufficient_scope with scope=\"mcp\"", status, www)
		}
	})

	t.Run("NoSessions", func(t *testing.T) {
		// Stateless: no Mcp-Session-Id, so any instance serves the next
		// request.
		status, h, body := mcpRequest(t, http.MethodPost, s.Base+"/mcp", mcpToken)
		if status != http.StatusOK {
			t.Fatalf("initialize with a good token: HTTP %d %s", status, body)
		}
		if id := h.Get("Mcp-Session-Id"); id != "" {
			t.Errorf("initialize answered Mcp-Session-Id %q: the MCP server keeps sessions", id)
		}
	})
}

// TestMCPClientRegisters is the MCP authorization flow end to end, as an
// MCP host runs it with the official Go SDK: the client knows only the MCP
// URL, gets a 401, reads the protected resource metadata it names, the
// authorization server metadata, registers itself at
// registration_endpoint (RFC 7591), sends the user to authorize (here the
// test signs the demo user in and approves), redeems the code with PKCE
// and resource, and calls the tools with the token.
func TestMCPClientRegisters(t *testing.T) {
	bin := Build(t, "mcp")
	s := Start(t, bin, "-addr", "127.0.0.1:0", "-db", filepath.Join(t.TempDir(), "demo.db"))
	for _, c := range []struct {
		name string
		meta oauthex.ClientRegistrationMetadata
	}{
		// What the SDK's own example client registers: a client name,
		// its loopback redirect URI and a scope; the server issues a
		// secret (client_secret_basic by default).
		{"Confidential", oauthex.ClientRegistrationMetadata{
			ClientName: "E2E MCP Client", RedirectURIs: []string{redirectURI}, Scope: mcpScope,
		}},
		// A public client (PKCE only), as most MCP hosts register.
		{"Public", oauthex.ClientRegistrationMetadata{
			ClientName: "E2E MCP Public Client", RedirectURIs: []string{redirectURI}, TokenEndpointAuthMethod: "none",
			GrantTypes: []string{"authorization_code", "refresh_token"}, ResponseTypes: []string{"code"},
		}},
	} {
		t.Run(c.name, func(t *testing.T) { testMCPRegisters(t, s, c.meta) })
	}
}

func testMCPRegisters(t *testing.T, s *Server, meta oauthex.ClientRegistrationMetadata) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	rec := &registrationRecorder{}
	httpc := &http.Client{Transport: rec, Timeout: 30 * time.Second}

	// The SDK calls the fetcher from inside Connect; the browser checks
	// call t.Fatal, which only the test goroutine may, so the fetcher
	// hands the URL to it and waits.
	type authz struct {
		res *auth.AuthorizationResult
		err error
	}
	urls, results := make(chan string), make(chan authz)
	fetch := func(ctx context.Context, args *auth.AuthorizationArgs) (*auth.AuthorizationResult, error) {
		select {
		case urls <- args.URL:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		select {
		case a := <-results:
			return a.res, a.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	handler, err := auth.NewAuthorizationCodeHandler(&auth.AuthorizationCodeHandlerConfig{
		DynamicClientRegistrationConfig: &auth.DynamicClientRegistrationConfig{Metadata: &meta},
		AuthorizationCodeFetcher:        fetch,
		Client:                          httpc,
	})
	if err != nil {
		t.Fatal(err)
	}
	type connected struct {
		cs  *mcp.ClientSession
		err error
	}
	done := make(chan connected, 1)
	go func() {
		client := mcp.NewClient(&mcp.Implementation{Name: "oauth2kit-e2e", Version: "1.0.0"}, nil)
		cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{
			Endpoint: s.Base + "/mcp", HTTPClient: httpc, OAuthHandler: handler, MaxRetries: -1,
		}, nil)
		done <- connected{cs, err}
	}()

	authorized := 0
	var cs *mcp.ClientSession
	for cs == nil {
		select {
		case u := <-urls:
			authorized++
			if authorized > 1 {
				results <- authz{err: errors.New("a second authorization")}
				t.Fatalf("the SDK asked for a second authorization: %s", u)
			}
			au, err := url.Parse(u)
			if err != nil {
				t.Fatal(err)
			}
			q := au.Query()
			if q.Get("resource") != s.Issuer+"/mcp" || !slices.Contains(strings.Fields(q.Get("scope")), mcpScope) {
				t.Errorf("the SDK authorizes with resource %q, scope %q; want %s/mcp and %s", q.Get("resource"), q.Get("scope"), s.Issuer, mcpScope)
			}
			if rec.registered() == "" {
				t.Errorf("the SDK sends the user to authorize before registering: %s", u)
			}
			redirect, _ := authorizeAs(t, s, u, q.Get("state"), []string{mcpScope}, meta.ClientName)
			results <- authz{res: &auth.AuthorizationResult{Code: redirect.Get("code"), State: redirect.Get("state"), Iss: redirect.Get("iss")}}
		case c := <-done:
			if c.err != nil {
				t.Fatalf("the SDK's client could not connect to %s/mcp (this needs open dynamic client registration at the "+
					"registration_endpoint of %s%s; the client registered %s): %v\nrequests to the authorization server:\n%s",
					s.Base, s.Base, MetadataPath, registeredOrNot(rec.registered()), c.err, rec.log())
			}
			cs = c.cs
		case <-ctx.Done():
			t.Fatalf("no connection within the deadline; requests:\n%s", rec.log())
		}
	}
	defer cs.Close()
	if authorized != 1 {
		t.Errorf("%d authorizations, want 1", authorized)
	}
	t.Logf("the SDK registered with: %s", rec.registrationBody())

	who := mcpWhoami(t, cs)
	if who["sub"] != demo.DemoUser || !slices.Contains(strings.Fields(who["scope"]), mcpScope) {
		t.Errorf("whoami = %v, want sub %q and scope with %q", who, demo.DemoUser, mcpScope)
	}
	if id := rec.registered(); who["client_id"] != id {
		t.Errorf("whoami client_id = %q, want the registered client %q", who["client_id"], id)
	}
	mcpWantEcho(t, cs)
}

func registeredOrNot(id string) string {
	if id == "" {
		return "nothing"
	}
	return "client " + id
}

// registrationRecorder is the SDK's HTTP client transport: it remembers
// the requests (method and URL, for failure messages), the registration
// request's body and the client_id the registration answered. It keeps
// nothing secret: no response body beyond client_id, no header.
type registrationRecorder struct {
	mu       sync.Mutex
	requests []string
	body     []byte
	clientID string
}

func (r *registrationRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	isRegistration := req.Method == http.MethodPost && strings.HasSuffix(req.URL.Path, "/register")
	var body []byte
	if isRegistration && req.Body != nil {
		var err error
		if body, err = io.ReadAll(req.Body); err != nil {
			return nil, err
		}
		req.Body.Close()
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	res, err := http.DefaultTransport.RoundTrip(req)
	line := req.Method + " " + req.URL.Path
	if err != nil {
		line += ": " + err.Error()
	} else {
		line += ": " + res.Status
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests = append(r.requests, line)
	if isRegistration {
		r.body = body
		if err == nil && (res.StatusCode == http.StatusCreated || res.StatusCode == http.StatusOK) {
			b, rerr := io.ReadAll(res.Body)
			res.Body.Close()
			res.Body = io.NopCloser(bytes.NewReader(b))
			if rerr != nil {
				return nil, rerr
			}
			var reg struct {
				ClientID string `json:"client_id"`
			}
			_ = json.Unmarshal(b, &reg)
			r.clientID = reg.ClientID
		}
	}
	return res, err
}

func (r *registrationRecorder) registered() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.clientID
}

func (r *registrationRecorder) registrationBody() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return string(r.body)
}

func (r *registrationRecorder) log() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return "  " + strings.Join(r.requests, "\n  ")
}

// ---- helpers ----

// mcpInitialize is an MCP initialize request, the first POST of every
// client.
const mcpInitialize = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"e2e","version":"1"}}}`

// mcpRequest sends method to u as an MCP client does (POST: an
// initialize), with the bearer token (none if "").
func mcpRequest(t *testing.T, method, u, token string) (int, http.Header, []byte) {
	t.Helper()
	var body io.Reader
	if method == http.MethodPost {
		body = strings.NewReader(mcpInitialize)
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json, text/event-stream")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := plain.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, res.Header, b
}

// clientCredentials is a client_credentials token of the demo client.
func clientCredentials(t *testing.T, s *Server, form url.Values) string {
	t.Helper()
	form.Set("grant_type", "client_credentials")
	status, body := clientPost(t, s.Base, "/oauth2/token", s.ClientID, s.ClientSecret, form)
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(body, &tr); status != http.StatusOK || err != nil || tr.AccessToken == "" {
		t.Fatalf("client_credentials %v: HTTP %d %s", form, status, body)
	}
	return tr.AccessToken
}

// mcpCodeFlow runs the code flow with PKCE for resource (RFC 8707: at
// authorize and at the token endpoint, as MCP clients send it), signing
// in and approving for the client named name, and returns the access
// token.
func mcpCodeFlow(t *testing.T, s *Server, conf *oauth2.Config, name, resource string, scopes ...string) string {
	t.Helper()
	c := *conf
	c.Scopes = scopes
	verifier := oauth2.GenerateVerifier()
	state := randomHex(t, 8)
	res := oauth2.SetAuthURLParam("resource", resource)
	q, _ := authorizeAs(t, s, c.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), res), state, scopes, name)
	tok, err := c.Exchange(clientCtx(t), q.Get("code"), oauth2.VerifierOption(verifier), res)
	if err != nil {
		t.Fatalf("Exchange for %s: %v", resource, err)
	}
	return tok.AccessToken
}

// bearerTransport sends the token with every request, as an MCP client
// that holds one does.
type bearerTransport struct{ token string }

func (b bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return http.DefaultTransport.RoundTrip(r)
}

// mcpConnect connects the SDK's client to endpoint through httpc.
func mcpConnect(t *testing.T, endpoint string, httpc *http.Client) *mcp.ClientSession {
	t.Helper()
	client := mcp.NewClient(&mcp.Implementation{Name: "oauth2kit-e2e", Version: "1.0.0"}, nil)
	cs, err := client.Connect(t.Context(), &mcp.StreamableClientTransport{Endpoint: endpoint, HTTPClient: httpc, MaxRetries: -1}, nil)
	if err != nil {
		t.Fatalf("connecting to %s: %v", endpoint, err)
	}
	t.Cleanup(func() { _ = cs.Close() })
	return cs
}

// mcpText calls the tool name and returns its one text content.
func mcpText(t *testing.T, cs *mcp.ClientSession, name string, args any) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("calling %s: %v", name, err)
	}
	if res.IsError || len(res.Content) != 1 {
		t.Fatalf("%s: error %t, %d contents", name, res.IsError, len(res.Content))
	}
	text, ok := res.Content[0].(*mcp.TextContent)
	if !ok {
		t.Fatalf("%s answered %T, want text", name, res.Content[0])
	}
	return text.Text
}

// mcpWhoami calls whoami and checks that its text is the JSON object
// {"sub","client_id","scope"}.
func mcpWhoami(t *testing.T, cs *mcp.ClientSession) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	tools, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatalf("tools/list: %v", err)
	}
	var names []string
	for _, tool := range tools.Tools {
		names = append(names, tool.Name)
	}
	if !slices.Contains(names, "whoami") || !slices.Contains(names, "echo") {
		t.Errorf("tools %q, want whoami and echo", names)
	}
	text := mcpText(t, cs, "whoami", nil)
	var who map[string]string
	if err := json.Unmarshal([]byte(text), &who); err != nil || len(who) != 3 {
		t.Fatalf("whoami: %q, want a JSON object of sub, client_id and scope (%v)", text, err)
	}
	return who
}

// mcpWantEcho checks that echo returns its text argument unchanged.
func mcpWantEcho(t *testing.T, cs *mcp.ClientSession) {
	t.Helper()
	const in = `héllo, "MCP" <&>`
	if got := mcpText(t, cs, "echo", map[string]any{"text": in}); got != in {
		t.Errorf("echo %q = %q", in, got)
	}
}
