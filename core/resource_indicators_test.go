package core_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/oauth2kit/oauth2kit/core"
)

const (
	apiRes = "https://api.example.com"
	mcpRes = "https://mcp.example.com/mcp"
)

func withResources(c *core.Config) {
	c.Resources = []core.Resource{{URI: apiRes + "/", Scopes: []string{"read", "write"}}, {URI: mcpRes, Scopes: []string{"read"}}}
}

// codeWith runs authorize + login with extra raw query parameters and
// returns the redirect.
func (e *env) codeWith(scope, extra string) *fakeResp {
	e.t.Helper()
	q := codeQuery("conf", confCB, scope, "st").Encode() + extra
	page := e.do(&fakeReq{method: "GET", path: "/oauth2/authorize", query: q})
	if page.status != 200 {
		return page
	}
	return e.login(page, "alice", "pw")
}

func (e *env) redeemWith(w *fakeResp, extra url.Values) *fakeResp {
	e.t.Helper()
	loc, _ := url.Parse(w.hdr.Get("Location"))
	form := url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")}, "redirect_uri": {confCB}, "code_verifier": {verifier}}
	for k, v := range extra {
		form[k] = v
	}
	return e.post("/oauth2/token", form, basic("conf", e.secret))
}

func redirectErr(t *testing.T, w *fakeResp) string {
	t.Helper()
	loc, err := url.Parse(w.hdr.Get("Location"))
	if w.status != 303 || err != nil {
		t.Fatalf("want a redirect, got %d %s", w.status, w.body)
	}
	return loc.Query().Get("error")
}

// With no resources configured, resource never fails a request and the
// token has the default audience.
func TestResourceIgnoredWithoutResources(t *testing.T) {
	e := newEnv(t, false)
	w := e.codeWith("read", "&resource=not%20a%20uri&resource=https%3A%2F%2Fx.example")
	if w.status != 303 || redirectErr(t, w) != "" {
		t.Fatalf("authorize with resource: %d %v", w.status, w.hdr)
	}
	tok := e.redeemWith(w, url.Values{"resource": {"https://y.example"}})
	if tok.status != 200 {
		t.Fatalf("token: %d %s", tok.status, tok.body)
	}
	at, _ := tok.json(t)["access_token"].(string)
	info, err := e.srv.CheckToken(context.Background(), at)
	if err != nil || info.Audience != issuer {
		t.Fatalf("CheckToken: %v %+v", err, info)
	}
}

// SECURITY.md R64: unknown resources, bad URIs and disallowed scopes are
// refused; the token's audience is the resource, narrowed at the token
// endpoint and on refresh; a token for one resource is refused at another.
func TestResourceIndicators(t *testing.T) {
	e := newEnv(t, false, withResources, func(c *core.Config) { c.Scopes = append(c.Scopes, "offline_access") })
	for name, c := range map[string]struct{ scope, extra, want string }{
		"unknown":       {"read", "&resource=https%3A%2F%2Fevil.example", core.ErrInvalidTarget},
		"fragment":      {"read", "&resource=https%3A%2F%2Fapi.example.com%2F%23x", core.ErrInvalidTarget},
		"relative":      {"read", "&resource=%2Fapi", core.ErrInvalidTarget},
		"scope not for": {"write", "&resource=https%3A%2F%2Fmcp.example.com%2Fmcp", core.ErrInvalidScope},
	} {
		if got := redirectErr(t, e.do(&fakeReq{method: "GET", path: "/oauth2/authorize", query: codeQuery("conf", confCB, c.scope, "st").Encode() + c.extra})); got != c.want {
			t.Errorf("%s: error %q, want %q", name, got, c.want)
		}
	}
	ctx := context.Background()
	// The origin compares equal with and without its trailing slash.
	w := e.codeWith("read write", "&resource=https%3A%2F%2Fapi.example.com")
	tok := e.redeemWith(w, nil)
	at, _ := tok.json(t)["access_token"].(string)
	if info, err := e.srv.CheckTokenFor(ctx, at, apiRes+"/"); err != nil || info.Audience != apiRes {
		t.Fatalf("CheckTokenFor(api): %v %+v", err, info)
	}
	if _, err := e.srv.CheckTokenFor(ctx, at, mcpRes); err == nil {
		t.Error("a token for the API was accepted at the MCP resource")
	}
	if _, err := e.srv.CheckToken(ctx, at); err == nil {
		t.Error("a token for the API was accepted at the default audience")
	}
	// Two resources at authorize: without resource at the token endpoint,
	// the first is the audience; with one, that one.
	w = e.codeWith("read", "&resource=https%3A%2F%2Fapi.example.com%2F&resource=https%3A%2F%2Fmcp.example.com%2Fmcp")
	first, _ := e.redeemWith(w, nil).json(t)["access_token"].(string)
	if _, err := e.srv.CheckTokenFor(ctx, first, apiRes); err != nil {
		t.Fatalf("token without resource for a two-resource grant: %v", err)
	}
	// A grant that named no resource never becomes a token for one (that
	// would skip the resource's scope check).
	w = e.codeWith("read write", "")
	if r := e.redeemWith(w, url.Values{"resource": {mcpRes}}); r.status != 400 || r.json(t)["error"] != core.ErrInvalidTarget {
		t.Fatalf("resource at the token endpoint only: %d %s", r.status, r.body)
	}
	w = e.codeWith("read", "&resource=https%3A%2F%2Fapi.example.com%2F&resource=https%3A%2F%2Fmcp.example.com%2Fmcp")
	tok = e.redeemWith(w, url.Values{"resource": {mcpRes}})
	m := tok.json(t)
	at, _ = m["access_token"].(string)
	rt, _ := m["refresh_token"].(string)
	if _, err := e.srv.CheckTokenFor(ctx, at, mcpRes); err != nil {
		t.Fatalf("token for the MCP resource: %v (%s)", err, tok.body)
	}
	// Refresh narrows to a granted resource, never to another.
	ref := func(res string) *fakeResp {
		return e.post("/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "resource": {res}}, basic("conf", e.secret))
	}
	if r := ref("https://evil.example"); r.status != 400 || r.json(t)["error"] != core.ErrInvalidTarget {
		t.Fatalf("refresh to an ungranted resource: %d %s", r.status, r.body)
	}
	r := ref(apiRes)
	if r.status != 200 {
		t.Fatalf("refresh to the API: %d %s", r.status, r.body)
	}
	at2, _ := r.json(t)["access_token"].(string)
	if _, err := e.srv.CheckTokenFor(ctx, at2, apiRes); err != nil {
		t.Errorf("refreshed token for the API: %v", err)
	}
	// Introspection knows tokens of every audience of the server.
	in := e.post("/oauth2/introspect", url.Values{"token": {at2}}, basic("conf", e.secret)).json(t)
	if in["active"] != true || in["aud"] != apiRes {
		t.Errorf("introspection of a resource token: %v", in)
	}
	// client_credentials with a resource.
	cc := e.post("/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}, "resource": {mcpRes}}, basic("conf", e.secret))
	cat, _ := cc.json(t)["access_token"].(string)
	if _, err := e.srv.CheckTokenFor(ctx, cat, mcpRes); err != nil {
		t.Errorf("client_credentials for the MCP resource: %v (%s)", err, cc.body)
	}
	cc = e.post("/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"write"}, "resource": {mcpRes}}, basic("conf", e.secret))
	if cc.status != 400 {
		t.Errorf("client_credentials with a scope the resource does not accept: %d %s", cc.status, cc.body)
	}
}

// RFC 9728: a configured resource's metadata names this issuer, at the
// path-inserted well-known URL, and a refusal at the resource points to it
// in the challenge; a default-audience refusal does not.
func TestProtectedResourceMetadata(t *testing.T) {
	e := newEnv(t, false, withResources)
	if p := e.srv.ProtectedResourcePath(mcpRes); p != "/.well-known/oauth-protected-resource/mcp" {
		t.Errorf("path %q", p)
	}
	if p := e.srv.ProtectedResourcePath(apiRes); p != "/.well-known/oauth-protected-resource" {
		t.Errorf("origin path %q", p)
	}
	if p := e.srv.ProtectedResourcePath("https://unknown.example"); p != "" {
		t.Errorf("unknown resource path %q", p)
	}
	w := newResp()
	if !e.srv.ServeProtectedResource(w, &fakeReq{method: "GET", path: "/.well-known/oauth-protected-resource/mcp"}) || w.status != 200 {
		t.Fatalf("metadata: %d %s", w.status, w.body)
	}
	m := w.json(t)
	if m["resource"] != mcpRes || fmt.Sprint(m["authorization_servers"]) != "["+issuer+"]" || fmt.Sprint(m["bearer_methods_supported"]) != "[header]" || fmt.Sprint(m["scopes_supported"]) != "[read]" {
		t.Errorf("document %s", w.body)
	}
	w = newResp()
	if !e.srv.ServeProtectedResource(w, &fakeReq{method: "POST", path: "/.well-known/oauth-protected-resource/mcp"}) || w.status != 405 {
		t.Errorf("POST: %d", w.status)
	}
	if e.srv.ServeProtectedResource(newResp(), &fakeReq{method: "GET", path: "/.well-known/oauth-protected-resource/other"}) {
		t.Error("another path was served")
	}
	_, rerr := e.srv.CheckRequestFor(&fakeReq{method: "GET", path: "/mcp", hdr: http.Header{}}, mcpRes)
	if rerr == nil || rerr.Status != 401 || !strings.Contains(rerr.WWWAuthenticate, `resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp"`) {
		t.Errorf("challenge at the resource: %+v", rerr)
	}
	if strings.Contains(rerr.WWWAuthenticate, "scope=") {
		t.Errorf("scope named where the resource requires none: %q", rerr.WWWAuthenticate)
	}
	// With required scopes, the first 401 names them (MCP scope selection).
	_, rerr = e.srv.CheckRequestFor(&fakeReq{method: "GET", path: "/mcp", hdr: http.Header{}}, mcpRes, "read")
	if rerr == nil || rerr.Status != 401 || !strings.HasSuffix(rerr.WWWAuthenticate, `, scope="read", resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp"`) {
		t.Errorf("challenge with a scope: %+v", rerr)
	}
	_, rerr = e.srv.CheckRequest(&fakeReq{method: "GET", path: "/api", hdr: http.Header{}}, "read")
	if rerr == nil || strings.Contains(rerr.WWWAuthenticate, "resource_metadata") || strings.Contains(rerr.WWWAuthenticate, "scope=") {
		t.Errorf("challenge at the default audience: %+v", rerr)
	}
}
