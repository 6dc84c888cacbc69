// Command mcp is the demo authorization server with an MCP server at
// /mcp (the official Go SDK, streamable HTTP) as a resource of its own:
// an MCP client that gets a 401 there finds the authorization server in
// the protected resource metadata, registers itself (open dynamic client
// registration, or a client ID metadata document), signs the demo user in
// and calls the tools with a token issued for <issuer>/mcp alone.
//
//	go run ./examples/mcp                  # SQLite file oauth2kit-demo.db
//	go run ./examples/mcp -registration off
package main

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/oauth2kit/oauth2kit/adapters/nethttp"
	"github.com/oauth2kit/oauth2kit/core"
	"github.com/oauth2kit/oauth2kit/examples/internal/demo"
	"github.com/oauth2kit/oauth2kit/mcpauth"
)

// scope is what the MCP server requires of every token.
const scope = "mcp"

func main() {
	// demo's flags already set registration (-registration, default open)
	// and client ID metadata documents (-cimd-allow-loopback): MCP clients
	// rely on both, since none is registered beforehand.
	demo.MainWith(func(cfg *core.Config) {
		// Clip: cfg.Scopes is the demo's shared slice.
		cfg.Scopes = append(slices.Clip(cfg.Scopes), scope)
		cfg.Resources = append(cfg.Resources, core.Resource{URI: resource(cfg.Issuer), Scopes: []string{scope}, Name: "oauth2kit demo MCP server"})
	}, mount)
}

// resource is the MCP server's resource identifier, the URL clients
// connect to: its tokens are for it alone (RFC 8707), so a token of the
// demo API or of another MCP server is refused here, and one of this
// server is refused there. (core trims a trailing "/" off the issuer.)
func resource(issuer string) string { return strings.TrimSuffix(issuer, "/") + "/mcp" }

func mount(app *demo.App) demo.Runner {
	res := resource(app.Issuer)
	mux := http.NewServeMux()
	nethttp.Mount(mux, app.Server) // the OAuth endpoints
	mux.Handle("GET /api/me", nethttp.Middleware(app.Server)(http.HandlerFunc(me)))
	mux.Handle("GET /api/admin", nethttp.Middleware(app.Server, "admin")(http.HandlerFunc(me)))

	// RFC 9728 metadata at /.well-known/oauth-protected-resource/mcp: a
	// 401 at /mcp names it, and it names the issuer.
	nethttp.MountProtectedResource(mux, app.Server, res)
	server := newMCPServer()
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, &mcp.StreamableHTTPOptions{
		// No session state in this process: every request carries its
		// token and stands alone, so instances behind a load balancer
		// serve one client between them.
		Stateless: true,
		Logger:    app.Log,
		// The SDK refuses a non-loopback Host on a loopback listener (DNS
		// rebinding). Behind a proxy with a public issuer every request
		// has that Host; /mcp needs a token for the issuer's resource
		// anyway.
		DisableLocalhostProtection: !loopback(app.Issuer),
	})
	u, _ := url.Parse(res)
	mux.Handle(u.Path, mcpauth.Middleware(app.Server, res, scope)(h))
	return app.HTTPServer(mux)
}

func me(w http.ResponseWriter, r *http.Request) {
	info, _ := nethttp.TokenInfo(r.Context())
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(demo.Me(info))
}

// newMCPServer is the MCP server and its tools. A stateless handler may
// use one server for every request: the caller comes with each request
// (req.Extra.TokenInfo), not with the server.
func newMCPServer() *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "oauth2kit-demo", Version: "1.0.0"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "whoami", Description: "Who the access token says is calling: its subject, client and scope."}, whoami)
	mcp.AddTool(s, &mcp.Tool{Name: "echo", Description: "Returns the text it is given."}, echo)
	return s
}

func whoami(_ context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
	ti := req.Extra.TokenInfo // set by mcpauth.Middleware
	b, err := json.Marshal(map[string]any{
		"sub":       ti.UserID,
		"client_id": ti.Extra[mcpauth.ClientIDKey],
		"scope":     strings.Join(ti.Scopes, " "),
	})
	if err != nil {
		return nil, nil, err
	}
	return text(string(b)), nil, nil
}

type echoArgs struct {
	Text string `json:"text" jsonschema:"the text to return"`
}

func echo(_ context.Context, _ *mcp.CallToolRequest, args echoArgs) (*mcp.CallToolResult, any, error) {
	return text(args.Text), nil, nil
}

func text(s string) *mcp.CallToolResult {
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: s}}}
}

// loopback reports whether issuer's host is a loopback address or name.
func loopback(issuer string) bool {
	u, err := url.Parse(issuer)
	if err != nil {
		return false
	}
	ip := net.ParseIP(u.Hostname())
	return u.Hostname() == "localhost" || (ip != nil && ip.IsLoopback())
}
