package mcpauth_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/oauth2kit/oauth2kit/adapters/nethttp"
	"github.com/oauth2kit/oauth2kit/core"
	"github.com/oauth2kit/oauth2kit/core/memstore"
	"github.com/oauth2kit/oauth2kit/mcpauth"
)

// clock is the server's Config.Now, moved by the expiry test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// failingStore is memstore whose revocation lookup fails on demand: a
// database that went away.
type failingStore struct {
	*memstore.Store
	mu   sync.Mutex
	fail error
}

func (s *failingStore) IsFamilyRevoked(ctx context.Context, id string) (bool, error) {
	s.mu.Lock()
	err := s.fail
	s.mu.Unlock()
	if err != nil {
		return false, err
	}
	return s.Store.IsFamilyRevoked(ctx, id)
}

func (s *failingStore) setFail(err error) {
	s.mu.Lock()
	s.fail = err
	s.mu.Unlock()
}

// noLogin is an Authenticator for a server whose tokens come from
// client_credentials only.
type noLogin struct{}

func (noLogin) Login(w core.Responder, _ core.Request, _ *core.AuthorizationRequest) {
	_ = w.Send(http.StatusNotImplemented, nil)
}

func (noLogin) ProcessLogin(w core.Responder, _ core.Request, _ *core.AuthorizationRequest) {
	_ = w.Send(http.StatusNotImplemented, nil)
}

// env is a kit server on httptest with two MCP resources: /mcp behind
// mcpauth.Middleware, /sdk behind the SDK's RequireBearerToken with
// mcpauth.TokenVerifier; and /other, a resource whose tokens both must
// refuse.
type env struct {
	srv                 *core.Server
	store               *failingStore
	clock               *clock
	ts                  *httptest.Server
	mcpRes, sdkRes, api string
	secret              string
}

const clientID = "robot"

func newEnv(t *testing.T) *env {
	t.Helper()
	ts := httptest.NewUnstartedServer(nil)
	base := "http://" + ts.Listener.Addr().String()
	e := &env{
		store:  &failingStore{Store: memstore.New()},
		clock:  &clock{t: time.Now()},
		ts:     ts,
		mcpRes: base + "/mcp",
		sdkRes: base + "/sdk",
		api:    base + "/other",
	}
	e.store.SetClock(e.clock.now)
	srv, err := core.New(core.Config{
		Issuer: base,
		Keys:   core.Keys{CryptKey: []byte("mcpauth test crypt key, 32 bytes"), SignKey: []byte("mcpauth test sign key, 32+ bytes")},
		Scopes: []string{"mcp", "mcp:admin", "read"},
		Resources: []core.Resource{
			{URI: e.mcpRes, Scopes: []string{"mcp", "mcp:admin"}, Name: "Test MCP"},
			{URI: e.sdkRes, Scopes: []string{"mcp", "mcp:admin"}},
			{URI: e.api, Scopes: []string{"read"}},
		},
		Now: e.clock.now,
	}, e.store, noLogin{})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = srv
	c, secret, err := core.NewClient(core.ClientSpec{ID: clientID, GrantTypes: []string{core.GrantClientCredentials}})
	if err != nil {
		t.Fatal(err)
	}
	e.store.AddClient(c)
	e.secret = secret

	mux := http.NewServeMux()
	nethttp.Mount(mux, srv)
	nethttp.MountProtectedResource(mux, srv, e.mcpRes)
	handler := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return newMCPServer() },
		&mcp.StreamableHTTPOptions{Stateless: true})
	mux.Handle("/mcp", mcpauth.Middleware(srv, e.mcpRes, "mcp")(handler))
	mux.Handle("/sdk", auth.RequireBearerToken(mcpauth.TokenVerifier(srv, e.sdkRes), &auth.RequireBearerTokenOptions{
		ResourceMetadataURL: mcpauth.ResourceMetadataURL(srv, e.sdkRes),
		Scopes:              []string{"mcp"},
	})(handler))
	ts.Config.Handler = mux
	ts.Start()
	t.Cleanup(ts.Close)
	return e
}

// token obtains a client_credentials token for resource ("" for none)
// with scope.
func (e *env) token(t *testing.T, resource, scope string) string {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {scope}}
	if resource != "" {
		form.Set("resource", resource)
	}
	req, err := http.NewRequest(http.MethodPost, e.ts.URL+"/oauth2/token", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", core.EncodeBasic(clientID, e.secret))
	res, err := e.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var tr struct {
		AccessToken string `json:"access_token"`
		Error       string `json:"error"`
	}
	if err := json.NewDecoder(res.Body).Decode(&tr); err != nil || res.StatusCode != http.StatusOK || tr.AccessToken == "" {
		t.Fatalf("token for %q, scope %q: HTTP %d %q (%v)", resource, scope, res.StatusCode, tr.Error, err)
	}
	return tr.AccessToken
}

// revoke revokes token at the revocation endpoint.
func (e *env) revoke(t *testing.T, token string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.ts.URL+"/oauth2/revoke", strings.NewReader(url.Values{"token": {token}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", core.EncodeBasic(clientID, e.secret))
	res, err := e.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("revoke: HTTP %d", res.StatusCode)
	}
}

// newMCPServer is an MCP server with one tool, whoami, that answers with
// what the SDK was told about the caller.
func newMCPServer() *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "mcpauth-test", Version: "v0.0.1"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "whoami", Description: "the caller's token"},
		func(_ context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
			ti := req.Extra.TokenInfo
			if ti == nil {
				return nil, nil, errors.New("no token info")
			}
			b, err := json.Marshal(map[string]any{
				"sub": ti.UserID, "client_id": ti.Extra[mcpauth.ClientIDKey], "scope": strings.Join(ti.Scopes, " "),
				"exp_set": !ti.Expiration.IsZero(),
			})
			if err != nil {
				return nil, nil, err
			}
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: string(b)}}}, nil, nil
		})
	return s
}

func TestTokenVerifierAccepts(t *testing.T) {
	e := newEnv(t)
	tok := e.token(t, e.sdkRes, "mcp mcp:admin")
	before := time.Now()
	ti, err := mcpauth.TokenVerifier(e.srv, e.sdkRes, "mcp")(t.Context(), tok, nil)
	if err != nil {
		t.Fatalf("a valid token for the resource: %v", err)
	}
	if ti.Expiration.IsZero() || ti.Expiration.Before(before.Add(50*time.Minute)) || ti.Expiration.After(before.Add(61*time.Minute)) {
		t.Errorf("Expiration %v, want about an hour from now", ti.Expiration)
	}
	if want := []string{"mcp", "mcp:admin"}; !slices.Equal(slices.Sorted(slices.Values(ti.Scopes)), want) {
		t.Errorf("Scopes %q, want %q", ti.Scopes, want)
	}
	// A client_credentials token's subject is its client.
	if ti.UserID != clientID || ti.Extra[mcpauth.ClientIDKey] != clientID {
		t.Errorf("UserID %q, Extra %v; want both %q", ti.UserID, ti.Extra, clientID)
	}
	// The trailing-slash-insensitive comparison of the kit does not make
	// a path resource match its origin.
	if _, err := mcpauth.TokenVerifier(e.srv, e.ts.URL)(t.Context(), tok, nil); !errors.Is(err, auth.ErrInvalidToken) {
		t.Errorf("the resource's token at the issuer's audience: %v, want ErrInvalidToken", err)
	}
}

// tamper changes one character in the middle of token.
func tamper(token string) string {
	b := []byte(token)
	i := len(b) / 2
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

func TestTokenVerifierRefuses(t *testing.T) {
	e := newEnv(t)
	verify := mcpauth.TokenVerifier(e.srv, e.sdkRes, "mcp")
	good := e.token(t, e.sdkRes, "mcp")
	for name, tok := range map[string]string{
		"OtherResource":   e.token(t, e.api, "read"),
		"OtherMCPServer":  e.token(t, e.mcpRes, "mcp"),
		"DefaultAudience": e.token(t, "", "read"),
		"Garbage":         "at2.not-a-token",
		"Empty":           "",
		"Tampered":        tamper(good),
	} {
		t.Run(name, func(t *testing.T) {
			ti, err := verify(t.Context(), tok, nil)
			if !errors.Is(err, auth.ErrInvalidToken) || ti != nil {
				t.Fatalf("got %v, %v; want an error wrapping auth.ErrInvalidToken", ti, err)
			}
			// The client learns nothing about why (the SDK sends the text).
			if err.Error() != "mcpauth: invalid token" {
				t.Errorf("error text %q says more than invalid token", err)
			}
		})
	}

	t.Run("MissingScope", func(t *testing.T) {
		_, err := mcpauth.TokenVerifier(e.srv, e.sdkRes, "mcp", "mcp:admin")(t.Context(), good, nil)
		if !errors.Is(err, auth.ErrInvalidToken) || !errors.Is(err, mcpauth.ErrInsufficientScope) {
			t.Errorf("a token without a required scope: %v, want ErrInvalidToken and ErrInsufficientScope", err)
		}
	})

	t.Run("Revoked", func(t *testing.T) {
		tok := e.token(t, e.sdkRes, "mcp")
		if _, err := verify(t.Context(), tok, nil); err != nil {
			t.Fatalf("before revocation: %v", err)
		}
		e.revoke(t, tok)
		if _, err := verify(t.Context(), tok, nil); !errors.Is(err, auth.ErrInvalidToken) {
			t.Errorf("after revocation: %v, want ErrInvalidToken", err)
		}
	})

	t.Run("StorageFails", func(t *testing.T) {
		down := errors.New("database is down")
		e.store.setFail(down)
		defer e.store.setFail(nil)
		_, err := verify(t.Context(), good, nil)
		if err == nil || errors.Is(err, auth.ErrInvalidToken) {
			t.Fatalf("with the store failing: %v, want an error that is not ErrInvalidToken", err)
		}
		if !errors.Is(err, mcpauth.ErrUnavailable) || !errors.Is(err, down) {
			t.Errorf("with the store failing: %v, want ErrUnavailable wrapping the cause", err)
		}
		if strings.Contains(err.Error(), down.Error()) {
			t.Errorf("the error text %q carries the storage error to the client", err)
		}
	})

	// Last: it moves the clock past every token's expiry.
	t.Run("Expired", func(t *testing.T) {
		tok := e.token(t, e.sdkRes, "mcp")
		e.clock.advance(2 * time.Hour)
		if _, err := verify(t.Context(), tok, nil); !errors.Is(err, auth.ErrInvalidToken) {
			t.Errorf("an expired token: %v, want ErrInvalidToken", err)
		}
	})
}

func TestProtectedResourceMetadata(t *testing.T) {
	e := newEnv(t)
	m, err := mcpauth.ProtectedResourceMetadata(e.srv, e.mcpRes)
	if err != nil {
		t.Fatal(err)
	}
	if m.Resource != e.mcpRes || !slices.Equal(m.AuthorizationServers, []string{e.ts.URL}) ||
		!slices.Equal(m.ScopesSupported, []string{"mcp", "mcp:admin"}) || !slices.Equal(m.BearerMethodsSupported, []string{"header"}) ||
		m.ResourceName != "Test MCP" {
		t.Errorf("metadata %+v", m)
	}
	if _, err := mcpauth.ProtectedResourceMetadata(e.srv, e.ts.URL+"/nope"); err == nil {
		t.Error("metadata of an unknown resource: no error")
	}
	u := mcpauth.ResourceMetadataURL(e.srv, e.mcpRes)
	if want := e.ts.URL + "/.well-known/oauth-protected-resource/mcp"; u != want {
		t.Fatalf("ResourceMetadataURL %q, want %q", u, want)
	}
	if got := mcpauth.ResourceMetadataURL(e.srv, e.ts.URL+"/nope"); got != "" {
		t.Errorf("ResourceMetadataURL of an unknown resource: %q", got)
	}
	// The URL serves that very document: what the SDK's client checks.
	res, err := e.ts.Client().Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var served map[string]any
	if err := json.NewDecoder(res.Body).Decode(&served); err != nil || served["resource"] != e.mcpRes {
		t.Errorf("GET %s: HTTP %d, %v (%v)", u, res.StatusCode, served, err)
	}
}

// post sends an MCP initialize to path with the Authorization header
// auth ("" for none) and returns the answer's status and challenge.
func (e *env) post(t *testing.T, path, authz string) (int, string) {
	t.Helper()
	body := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`
	req, err := http.NewRequest(http.MethodPost, e.ts.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	res, err := e.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode, res.Header.Get("WWW-Authenticate")
}

// Middleware refuses as RFC 6750 says, with the metadata URL, where the
// SDK's own middleware gives no error code.
func TestMiddlewareRefusals(t *testing.T) {
	e := newEnv(t)
	meta := `resource_metadata="` + mcpauth.ResourceMetadataURL(e.srv, e.mcpRes) + `"`
	for _, c := range []struct {
		name, authz string
		status      int
		want        []string
	}{
		{"NoToken", "", 401, []string{"Bearer ", meta}},
		{"OtherAudience", "Bearer " + e.token(t, e.sdkRes, "mcp"), 401, []string{`error="invalid_token"`, meta}},
		{"Garbage", "Bearer at2.garbage", 401, []string{`error="invalid_token"`, meta}},
		{"MissingScope", "Bearer " + e.token(t, e.mcpRes, "mcp:admin"), 403, []string{`error="insufficient_scope"`, `scope="mcp"`, meta}},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, challenge := e.post(t, "/mcp", c.authz)
			if status != c.status {
				t.Errorf("HTTP %d, want %d", status, c.status)
			}
			for _, w := range c.want {
				if !strings.Contains(challenge, w) {
					t.Errorf("WWW-Authenticate %q lacks %s", challenge, w)
				}
			}
			if c.name == "NoToken" && strings.Contains(challenge, "error=") {
				t.Errorf("WWW-Authenticate %q: an error code for a request without a token (RFC 6750 §3.1)", challenge)
			}
		})
	}
	if status, challenge := e.post(t, "/mcp", "Bearer "+e.token(t, e.mcpRes, "mcp")); status != http.StatusOK {
		t.Errorf("a good token: HTTP %d (%s)", status, challenge)
	}
}

// bearer adds a token to every request, as an MCP client that obtained
// one does.
type bearer struct {
	token string
	next  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.next.RoundTrip(r)
}

// callWhoami connects the SDK's client to endpoint with token and calls
// whoami.
func callWhoami(t *testing.T, endpoint, token string) (map[string]any, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	client := mcp.NewClient(&mcp.Implementation{Name: "mcpauth-test-client", Version: "v0.0.1"}, nil)
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{
		Endpoint:             endpoint,
		HTTPClient:           &http.Client{Transport: bearer{token, http.DefaultTransport}, Timeout: 30 * time.Second},
		DisableStandaloneSSE: true,
		MaxRetries:           -1,
	}, nil)
	if err != nil {
		return nil, err
	}
	defer cs.Close()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "whoami"})
	if err != nil {
		return nil, err
	}
	if res.IsError || len(res.Content) != 1 {
		t.Fatalf("whoami: %+v", res)
	}
	text, ok := res.Content[0].(*mcp.TextContent)
	if !ok {
		t.Fatalf("whoami answered %T", res.Content[0])
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(text.Text), &m); err != nil {
		t.Fatalf("whoami: %v: %s", err, text.Text)
	}
	return m, nil
}

// End to end: the SDK's client calls a tool of the SDK's server through
// both middlewares, with a token of the kit; tokens for the other one are
// refused.
func TestEndToEnd(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct{ name, path, resource string }{
		{"Middleware", "/mcp", e.mcpRes},
		{"RequireBearerToken", "/sdk", e.sdkRes},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, err := callWhoami(t, e.ts.URL+c.path, e.token(t, c.resource, "mcp"))
			if err != nil {
				t.Fatalf("connect and call: %v", err)
			}
			want := map[string]any{"sub": clientID, "client_id": clientID, "scope": "mcp", "exp_set": true}
			for k, v := range want {
				if m[k] != v {
					t.Errorf("whoami %s = %v, want %v", k, m[k], v)
				}
			}
			other := e.sdkRes
			if c.resource == e.sdkRes {
				other = e.mcpRes
			}
			if _, err := callWhoami(t, e.ts.URL+c.path, e.token(t, other, "mcp")); err == nil {
				t.Error("a token for the other MCP server was accepted")
			}
		})
	}
}
