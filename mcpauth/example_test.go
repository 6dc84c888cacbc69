package mcpauth_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/oauth2kit/oauth2kit/adapters/nethttp"
	"github.com/oauth2kit/oauth2kit/core"
	"github.com/oauth2kit/oauth2kit/core/memstore"
	"github.com/oauth2kit/oauth2kit/mcpauth"
)

// An MCP server as a resource of a kit server on one mux: the kit's
// endpoints, the MCP server's resource metadata, and the MCP server
// behind Middleware. A client_credentials token for the resource calls a
// tool that reads the caller from req.Extra.TokenInfo.
func Example() {
	ts := httptest.NewUnstartedServer(nil)
	issuer := "http://" + ts.Listener.Addr().String()
	resource := issuer + "/mcp"

	store := memstore.New()
	srv, err := core.New(core.Config{
		Issuer:    issuer,
		Keys:      core.Keys{CryptKey: []byte("an example crypt key, 32+ bytes!"), SignKey: []byte("an example sign key, 32+ bytes!!")}, // use crypto/rand in production
		Scopes:    []string{"mcp"},
		Resources: []core.Resource{{URI: resource, Scopes: []string{"mcp"}}},
	}, store, noLogin{})
	if err != nil {
		panic(err)
	}
	client, secret, err := core.NewClient(core.ClientSpec{ID: "reporting", GrantTypes: []string{core.GrantClientCredentials}})
	if err != nil {
		panic(err)
	}
	store.AddClient(client)

	server := mcp.NewServer(&mcp.Implementation{Name: "example", Version: "v1.0.0"}, nil)
	mcp.AddTool(server, &mcp.Tool{Name: "whoami", Description: "who is calling"},
		func(_ context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
			ti := req.Extra.TokenInfo
			text := fmt.Sprintf("%s %v %v", ti.UserID, ti.Extra[mcpauth.ClientIDKey], ti.Scopes)
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: text}}}, nil, nil
		})

	mux := http.NewServeMux()
	nethttp.Mount(mux, srv)
	nethttp.MountProtectedResource(mux, srv, resource)
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, &mcp.StreamableHTTPOptions{Stateless: true})
	mux.Handle("/mcp", mcpauth.Middleware(srv, resource, "mcp")(h))
	ts.Config.Handler = mux
	ts.Start()
	defer ts.Close()

	// Without a token: 401, and where to find the authorization server.
	res, err := http.Post(resource, "application/json", strings.NewReader("{}"))
	if err != nil {
		panic(err)
	}
	res.Body.Close()
	fmt.Println(res.StatusCode, strings.Contains(res.Header.Get("WWW-Authenticate"), mcpauth.ResourceMetadataURL(srv, resource)))

	// A token for the resource, and the SDK's client with it.
	req, _ := http.NewRequest(http.MethodPost, issuer+"/oauth2/token", strings.NewReader(url.Values{
		"grant_type": {"client_credentials"}, "scope": {"mcp"}, "resource": {resource},
	}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", core.EncodeBasic("reporting", secret))
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.NewDecoder(res.Body).Decode(&tok)
	res.Body.Close()

	ctx := context.Background()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "example-client", Version: "v1.0.0"}, nil).Connect(ctx, &mcp.StreamableClientTransport{
		Endpoint:             resource,
		HTTPClient:           &http.Client{Transport: bearer{tok.AccessToken, http.DefaultTransport}},
		DisableStandaloneSSE: true,
	}, nil)
	if err != nil {
		panic(err)
	}
	defer cs.Close()
	out, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "whoami"})
	if err != nil {
		panic(err)
	}
	fmt.Println(out.Content[0].(*mcp.TextContent).Text)
	// Output:
	// 401 true
	// reporting reporting [mcp]
}
