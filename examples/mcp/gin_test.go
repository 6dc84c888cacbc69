package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	ginadapter "github.com/oauth2kit/oauth2kit/adapters/gin"
	"github.com/oauth2kit/oauth2kit/core"
	"github.com/oauth2kit/oauth2kit/core/memstore"
	"github.com/oauth2kit/oauth2kit/mcpauth"
)

type noLogin struct{}

func (noLogin) Login(w core.Responder, _ core.Request, _ *core.AuthorizationRequest) {
	_ = w.Send(http.StatusNotImplemented, nil)
}
func (noLogin) ProcessLogin(w core.Responder, _ core.Request, _ *core.AuthorizationRequest) {
	_ = w.Send(http.StatusNotImplemented, nil)
}

type bearer struct{ token string }

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return http.DefaultTransport.RoundTrip(r)
}

// TestGinMount is the README's "Protect an MCP server" in gin, line for
// line: the kit's endpoints, the protected resource metadata and the SDK's
// handler behind mcpauth.Middleware on a gin router; the Go SDK's client
// calls whoami with a token for the MCP resource, and a token for the
// server's default audience is refused with the RFC 6750 challenge.
func TestGinMount(t *testing.T) {
	gin.SetMode(gin.ReleaseMode)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	issuer := "http://" + ln.Addr().String()
	resource := issuer + "/mcp"
	st := memstore.New()
	srv, err := core.New(core.Config{
		Issuer:    issuer,
		Keys:      core.Keys{CryptKey: []byte(rand.Text() + rand.Text())[:32], SignKey: []byte(rand.Text() + rand.Text())[:32]},
		Scopes:    []string{"mcp", "read"},
		Resources: []core.Resource{{URI: resource, Scopes: []string{"mcp"}}},
		Logger:    slog.New(slog.DiscardHandler),
	}, st, noLogin{})
	if err != nil {
		t.Fatal(err)
	}
	c, secret, err := core.NewClient(core.ClientSpec{ID: "worker", GrantTypes: []string{core.GrantClientCredentials}})
	if err != nil {
		t.Fatal(err)
	}
	st.AddClient(c)

	server := newMCPServer()
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, &mcp.StreamableHTTPOptions{Stateless: true})
	r := gin.New()
	ginadapter.Mount(r, srv)
	ginadapter.MountProtectedResource(r, srv, resource)
	r.Any("/mcp", gin.WrapH(mcpauth.Middleware(srv, resource, "mcp")(h)))
	hs := &http.Server{Handler: r}
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() { _ = hs.Close() })

	token := func(form url.Values) string {
		form.Set("grant_type", "client_credentials")
		req, _ := http.NewRequest("POST", issuer+"/oauth2/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", core.EncodeBasic("worker", secret))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var out struct {
			AccessToken string `json:"access_token"`
		}
		if err := json.NewDecoder(res.Body).Decode(&out); err != nil || out.AccessToken == "" {
			t.Fatalf("token: %d %v", res.StatusCode, err)
		}
		return out.AccessToken
	}

	// The 401 a client starts from names the metadata, which names us.
	res, err := http.Post(issuer+"/mcp", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	want := `resource_metadata="` + issuer + `/.well-known/oauth-protected-resource/mcp"`
	if res.StatusCode != 401 || !strings.Contains(res.Header.Get("WWW-Authenticate"), want) {
		t.Fatalf("no token: %d %q", res.StatusCode, res.Header.Get("WWW-Authenticate"))
	}
	res, err = http.Get(issuer + "/.well-known/oauth-protected-resource/mcp")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(body), `"authorization_servers":["`+issuer+`"]`) {
		t.Fatalf("metadata: %d %s", res.StatusCode, body)
	}

	// A token for the default audience is not one for the MCP server.
	other := token(url.Values{"scope": {"read"}})
	req, _ := http.NewRequest("POST", issuer+"/mcp", strings.NewReader(`{}`))
	req.Header.Set("Authorization", "Bearer "+other)
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 401 || !strings.Contains(res.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Fatalf("other audience: %d %q", res.StatusCode, res.Header.Get("WWW-Authenticate"))
	}

	tok := token(url.Values{"scope": {"mcp"}, "resource": {resource}})
	client := mcp.NewClient(&mcp.Implementation{Name: "gin-test", Version: "1"}, nil)
	cs, err := client.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: issuer + "/mcp",
		HTTPClient: &http.Client{Transport: bearer{tok}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	out, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "whoami"})
	if err != nil || out.IsError || len(out.Content) != 1 {
		t.Fatalf("whoami: %v %+v", err, out)
	}
	var who map[string]string
	if err := json.Unmarshal([]byte(out.Content[0].(*mcp.TextContent).Text), &who); err != nil {
		t.Fatal(err)
	}
	if who["sub"] != "worker" || who["client_id"] != "worker" || who["scope"] != "mcp" {
		t.Fatalf("whoami: %v", who)
	}
}
