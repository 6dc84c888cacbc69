package ginadapter_test

import (
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	ginadapter "github.com/oauth2kit/oauth2kit/adapters/gin"
	"github.com/oauth2kit/oauth2kit/core"
	"github.com/oauth2kit/oauth2kit/core/adaptertest"
	"github.com/oauth2kit/oauth2kit/core/memstore"
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.TestMode)
	os.Exit(m.Run())
}

// protectedHandler answers what the conformance suite expects of a
// protected route: the token info the middleware passed on, and the body
// the handler could still read.
func protectedHandler(c *gin.Context) {
	info, ok := ginadapter.TokenInfo(c)
	if !ok {
		c.String(http.StatusInternalServerError, "no token info in the context")
		return
	}
	body, err := io.ReadAll(c.Request.Body)
	if err != nil {
		c.String(http.StatusInternalServerError, "reading the body failed")
		return
	}
	c.Data(http.StatusOK, "application/json", adaptertest.ProtectedResponse(info, body))
}

// mount serves a suite server through ginadapter.Mount and
// ginadapter.Middleware on a gin engine behind an httptest server.
func mount(t *testing.T, newServer func(baseURL string) *core.Server) string {
	return mountWith(nil)(t, newServer)
}

// mountWith is mount on an engine configure has set up (nil: gin's
// defaults).
func mountWith(configure func(t *testing.T, r *gin.Engine)) adaptertest.Mount {
	return func(t *testing.T, newServer func(baseURL string) *core.Server) string {
		return mountEngine(t, newServer, configure)
	}
}

func mountEngine(t *testing.T, newServer func(baseURL string) *core.Server, configure func(t *testing.T, r *gin.Engine)) string {
	ts := httptest.NewUnstartedServer(nil)
	base := "http://" + ts.Listener.Addr().String()
	s := newServer(base)
	r := gin.New()
	if configure != nil {
		configure(t, r)
	}
	ginadapter.Mount(r, s)
	r.GET(adaptertest.PathMe, ginadapter.Middleware(s), protectedHandler)
	r.POST(adaptertest.PathMe, ginadapter.Middleware(s), protectedHandler)
	r.GET(adaptertest.PathAdmin, ginadapter.Middleware(s, adaptertest.AdminScope), protectedHandler)
	r.GET(adaptertest.PathResource, ginadapter.MiddlewareFor(s, adaptertest.ResourceAudience), protectedHandler)
	ginadapter.MountProtectedResource(r, s, adaptertest.ResourceAudience)
	ts.Config.Handler = r
	ts.Start()
	t.Cleanup(ts.Close)
	return ts.URL
}

func TestConformance(t *testing.T) {
	adaptertest.Run(t, mount)
}

// TestClientAddress: behind the proxy the app told gin to trust, each client
// has its own throttle budget; with gin's defaults (which trust
// X-Forwarded-For from every peer) a forged one changes nothing.
func TestClientAddress(t *testing.T) {
	adaptertest.RunClientAddress(t, mountWith(func(t *testing.T, r *gin.Engine) {
		if err := r.SetTrustedProxies([]string{"127.0.0.1"}); err != nil {
			t.Fatal(err)
		}
	}), mount)
}

const testIssuer = "http://127.0.0.1:8080"

// noLogin is an Authenticator for tests that never reach the login step.
type noLogin struct{}

func (noLogin) Login(w core.Responder, _ core.Request, _ *core.AuthorizationRequest) {
	_ = w.Send(http.StatusForbidden, nil)
}

func (noLogin) ProcessLogin(w core.Responder, _ core.Request, _ *core.AuthorizationRequest) {
	_ = w.Send(http.StatusForbidden, nil)
}

// kit is a server with one client_credentials client, "svc".
type kit struct {
	srv    *core.Server
	secret string
}

func newKit(tb testing.TB, edit func(*core.Config)) *kit {
	tb.Helper()
	key := func() []byte {
		k := make([]byte, 32)
		_, _ = rand.Read(k)
		return k
	}
	cfg := core.Config{Issuer: testIssuer, Keys: core.Keys{CryptKey: key(), SignKey: key()}, Scopes: []string{"read", "admin"}}
	if edit != nil {
		edit(&cfg)
	}
	store := memstore.New()
	srv, err := core.New(cfg, store, noLogin{})
	if err != nil {
		tb.Fatal(err)
	}
	c, secret, err := core.NewClient(core.ClientSpec{ID: "svc", GrantTypes: []string{core.GrantClientCredentials}, Scopes: []string{"read", "admin"}})
	if err != nil {
		tb.Fatal(err)
	}
	store.AddClient(c)
	return &kit{srv: srv, secret: secret}
}

// tokenRequest is a client_credentials request for scope to tokenPath.
func (k *kit) tokenRequest(tokenPath, scope string) *http.Request {
	req := httptest.NewRequest(http.MethodPost, tokenPath, strings.NewReader(url.Values{"grant_type": {"client_credentials"}, "scope": {scope}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("svc", k.secret)
	return req
}

// token gets an access token for scope from h's token endpoint.
func (k *kit) token(tb testing.TB, h http.Handler, tokenPath, scope string) string {
	tb.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, k.tokenRequest(tokenPath, scope))
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &out) != nil || out.AccessToken == "" {
		tb.Fatalf("token endpoint: %d %s", w.Code, w.Body)
	}
	return out.AccessToken
}

// seen is what a protected handler observed.
type seen struct {
	calls   int
	info    *core.TokenInfo
	fromGet any
	note    string
}

func TestMiddleware(t *testing.T) {
	k := newKit(t, nil)
	var got seen
	handler := func(c *gin.Context) {
		got.calls++
		got.info, _ = ginadapter.TokenInfo(c)
		got.fromGet, _ = c.Get(ginadapter.TokenInfoKey)
		got.note = c.PostForm("note") // the body the check read, read again
		c.JSON(http.StatusOK, gin.H{"sub": got.info.UserID})
	}
	r := gin.New()
	ginadapter.Mount(r, k.srv)
	r.GET("/me", ginadapter.Middleware(k.srv), handler)
	r.POST("/me", ginadapter.Middleware(k.srv), handler)
	r.GET("/admin", ginadapter.Middleware(k.srv, "admin"), handler)
	readTok := k.token(t, r, "/oauth2/token", "read")
	adminTok := k.token(t, r, "/oauth2/token", "read admin")

	realm := `Bearer realm="` + testIssuer + `"`
	tests := []struct {
		name      string
		method    string
		path      string
		auth      string
		form      url.Values
		status    int
		challenge string // exact WWW-Authenticate, or "" for none
		code      string // error in the JSON body
		scope     string // scope in the JSON body
		wantScope string // token scope the handler saw
		wantNote  string
	}{
		{name: "Missing", method: "GET", path: "/me", status: 401, challenge: realm},
		{name: "NotBearer", method: "GET", path: "/me", auth: "Basic c3ZjOnNlY3JldA==", status: 401, challenge: realm},
		{name: "Invalid", method: "GET", path: "/me", auth: "Bearer not-a-token", status: 401, code: "invalid_token",
			challenge: realm + `, error="invalid_token", error_description="the access token is invalid, expired or revoked"`},
		{name: "Tampered", method: "GET", path: "/me", auth: "Bearer " + readTok[:len(readTok)-2] + "AA", status: 401, code: "invalid_token",
			challenge: realm + `, error="invalid_token", error_description="the access token is invalid, expired or revoked"`},
		{name: "UnderScoped", method: "GET", path: "/admin", auth: "Bearer " + readTok, status: 403, code: "insufficient_scope", scope: "admin",
			challenge: realm + `, error="insufficient_scope", error_description="the access token lacks the required scope", scope="admin"`},
		{name: "AdminMissing", method: "GET", path: "/admin", status: 401, challenge: realm},
		{name: "Valid", method: "GET", path: "/me", auth: "Bearer " + readTok, status: 200, wantScope: "read"},
		{name: "LowercaseScheme", method: "GET", path: "/me", auth: "bearer " + readTok, status: 200, wantScope: "read"},
		{name: "Admin", method: "GET", path: "/admin", auth: "Bearer " + adminTok, status: 200, wantScope: "admin read"},
		{name: "FormBodyToken", method: "POST", path: "/me", form: url.Values{"access_token": {readTok}, "note": {"kept"}},
			status: 200, wantScope: "read", wantNote: "kept"},
		{name: "HeaderWithFormBody", method: "POST", path: "/me", auth: "Bearer " + readTok, form: url.Values{"note": {"kept too"}},
			status: 200, wantScope: "read", wantNote: "kept too"},
		{name: "HeaderAndFormToken", method: "POST", path: "/me", auth: "Bearer " + readTok, form: url.Values{"access_token": {readTok}},
			status: 400, code: "invalid_request"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got = seen{}
			var body io.Reader
			if tc.form != nil {
				body = strings.NewReader(tc.form.Encode())
			}
			req := httptest.NewRequest(tc.method, tc.path, body)
			if tc.form != nil {
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			w := httptest.NewRecorder()
			r.ServeHTTP(w, req)

			if w.Code != tc.status {
				t.Fatalf("status %d, want %d (%s)", w.Code, tc.status, w.Body)
			}
			if h := w.Header().Get("WWW-Authenticate"); h != tc.challenge {
				t.Errorf("WWW-Authenticate %q, want %q", h, tc.challenge)
			}
			if tc.status != http.StatusOK {
				if got.calls != 0 {
					t.Errorf("the handler ran %d times after a refusal", got.calls)
				}
				if ct, cc := w.Header().Get("Content-Type"), w.Header().Get("Cache-Control"); ct != "application/json" || cc != "no-store" {
					t.Errorf("Content-Type %q, Cache-Control %q", ct, cc)
				}
				var e map[string]string
				if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil {
					t.Fatalf("body %q: %v", w.Body, err)
				}
				if e["error"] != tc.code || e["scope"] != tc.scope {
					t.Errorf("body %s, want error %q scope %q", w.Body, tc.code, tc.scope)
				}
				return
			}
			if got.calls != 1 || got.info == nil {
				t.Fatalf("handler calls %d, token info %v", got.calls, got.info)
			}
			if got.fromGet != any(got.info) {
				t.Errorf("c.Get(TokenInfoKey) = %v, not the TokenInfo(c) pointer", got.fromGet)
			}
			if got.info.ClientID != "svc" || got.info.UserID != "" || got.info.Scope != tc.wantScope {
				t.Errorf("token info %+v, want client svc, scope %q", got.info, tc.wantScope)
			}
			if got.note != tc.wantNote {
				t.Errorf("handler read note %q, want %q", got.note, tc.wantNote)
			}
		})
	}
}

// A refusal aborts the whole chain, handlers after the middleware in a
// group included; a pass runs them.
func TestMiddlewareAbortsChain(t *testing.T) {
	k := newKit(t, nil)
	r := gin.New()
	ginadapter.Mount(r, k.srv)
	ran := 0
	api := r.Group("/api", ginadapter.Middleware(k.srv, "read"))
	api.Use(func(c *gin.Context) { ran++ })
	api.GET("/x", func(c *gin.Context) { ran++; c.Status(http.StatusNoContent) })
	tok := k.token(t, r, "/oauth2/token", "read")

	w := httptest.NewRecorder()
	r.ServeHTTP(w, httptest.NewRequest("GET", "/api/x", nil))
	if w.Code != http.StatusUnauthorized || ran != 0 {
		t.Fatalf("without token: status %d, %d later handlers ran", w.Code, ran)
	}
	req := httptest.NewRequest("GET", "/api/x", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	w = httptest.NewRecorder()
	r.ServeHTTP(w, req)
	if w.Code != http.StatusNoContent || ran != 2 {
		t.Fatalf("with token: status %d, %d later handlers ran", w.Code, ran)
	}
}

func TestTokenInfoWithoutMiddleware(t *testing.T) {
	c, _ := gin.CreateTestContext(httptest.NewRecorder())
	if info, ok := ginadapter.TokenInfo(c); ok || info != nil {
		t.Errorf("TokenInfo = %v, %v on a bare context", info, ok)
	}
	c.Set(ginadapter.TokenInfoKey, "not token info")
	if info, ok := ginadapter.TokenInfo(c); ok || info != nil {
		t.Errorf("TokenInfo = %v, %v with a foreign value under the key", info, ok)
	}
}

// Mounted on a group, the Config paths are the full request paths: the
// routes, the metadata and the token endpoint all live under the prefix.
func TestMountOnGroup(t *testing.T) {
	k := newKit(t, func(c *core.Config) {
		c.Paths.Authorize = "/auth/oauth2/authorize"
		c.Paths.ProcessLogin = "/auth/oauth2/login"
		c.Paths.Token = "/auth/oauth2/token"
		c.Paths.Revoke = "/auth/oauth2/revoke"
		c.Paths.Introspect = "/auth/oauth2/introspect"
		c.Paths.Metadata = "/auth/.well-known/oauth-authorization-server"
	})
	r := gin.New()
	groupRan := 0
	ginadapter.Mount(r.Group("/auth/", func(c *gin.Context) { groupRan++ }), k.srv)
	r.GET("/api/me", ginadapter.Middleware(k.srv), func(c *gin.Context) {
		info, _ := ginadapter.TokenInfo(c)
		c.String(http.StatusOK, info.Scope)
	})

	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/auth/.well-known/oauth-authorization-server", 200},
		{"HEAD", "/auth/.well-known/oauth-authorization-server", 200},
		{"GET", "/.well-known/oauth-authorization-server", 404},
		{"POST", "/oauth2/token", 404},
		{"GET", "/auth/oauth2/token", 405},
	} {
		w := httptest.NewRecorder()
		r.ServeHTTP(w, httptest.NewRequest(tc.method, tc.path, nil))
		if w.Code != tc.status {
			t.Errorf("%s %s: status %d, want %d", tc.method, tc.path, w.Code, tc.status)
		}
	}

	w := httptest.NewRecorder()
	r.ServeHTTP(w, httptest.NewRequest("GET", "/auth/.well-known/oauth-authorization-server", nil))
	var md map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &md); err != nil {
		t.Fatal(err)
	}
	if md["token_endpoint"] != testIssuer+"/auth/oauth2/token" || md["authorization_endpoint"] != testIssuer+"/auth/oauth2/authorize" {
		t.Errorf("metadata endpoints %v, %v", md["token_endpoint"], md["authorization_endpoint"])
	}

	tok := k.token(t, r, "/auth/oauth2/token", "read")
	req := httptest.NewRequest("GET", "/api/me", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	w = httptest.NewRecorder()
	r.ServeHTTP(w, req)
	if w.Code != http.StatusOK || w.Body.String() != "read" {
		t.Errorf("protected route: %d %s", w.Code, w.Body)
	}
	if groupRan == 0 {
		t.Error("the group's middleware never ran for the mounted endpoints")
	}
}

func TestMountOutsideGroupPanics(t *testing.T) {
	k := newKit(t, nil) // paths under /oauth2 and /.well-known
	defer func() {
		if recover() == nil {
			t.Error("Mount on /auth with root paths did not panic")
		}
	}()
	ginadapter.Mount(gin.New().Group("/auth"), k.srv)
}

// Handler serves the endpoints from a single route, here NoRoute.
func TestHandlerAsNoRoute(t *testing.T) {
	k := newKit(t, nil)
	r := gin.New()
	r.NoRoute(ginadapter.Handler(k.srv))
	k.token(t, r, "/oauth2/token", "read")
	w := httptest.NewRecorder()
	r.ServeHTTP(w, httptest.NewRequest("GET", "/elsewhere", nil))
	if w.Code != http.StatusNotFound {
		t.Errorf("unknown path: status %d, want 404", w.Code)
	}
}

func TestRequestResponder(t *testing.T) {
	r := gin.New()
	r.POST("/p", func(c *gin.Context) {
		q := ginadapter.Request(c)
		if ginadapter.Unwrap(q) != c {
			t.Error("Unwrap(Request(c)) is not c")
		}
		b, _ := io.ReadAll(q.Body())
		if q.Method() != "POST" || q.Path() != "/p" || q.RawQuery() != "a=1&a=2" || q.TLS() ||
			strings.Join(q.Header("x-multi"), ",") != "1,2" || q.RemoteAddr() != "192.0.2.1:1234" || string(b) != "body" || q.Context() == nil {
			t.Errorf("request view: %s %s %q %v %v %q %q", q.Method(), q.Path(), q.RawQuery(), q.TLS(), q.Header("x-multi"), q.RemoteAddr(), b)
		}
		w := ginadapter.Responder(c)
		w.SetHeader("X-One", "a")
		w.SetHeader("X-One", "b")
		w.AddHeader("Set-Cookie", "x=1")
		w.AddHeader("Set-Cookie", "y=2")
		_ = w.Send(http.StatusCreated, []byte("done"))
	})
	r.GET("/empty", func(c *gin.Context) { _ = ginadapter.Responder(c).Send(http.StatusNoContent, nil) })

	req := httptest.NewRequest("POST", "/p?a=1&a=2", strings.NewReader("body"))
	req.Header.Add("X-Multi", "1")
	req.Header.Add("X-Multi", "2")
	w := httptest.NewRecorder()
	r.ServeHTTP(w, req)
	if w.Code != http.StatusCreated || w.Body.String() != "done" || w.Header().Get("X-One") != "b" || len(w.Header().Values("Set-Cookie")) != 2 {
		t.Errorf("response: %d %q %v", w.Code, w.Body, w.Header())
	}
	w = httptest.NewRecorder()
	r.ServeHTTP(w, httptest.NewRequest("GET", "/empty", nil))
	if w.Code != http.StatusNoContent || w.Body.Len() != 0 {
		t.Errorf("empty response: %d %q", w.Code, w.Body)
	}
	if ginadapter.Unwrap(fakeRequest{}) != nil {
		t.Error("Unwrap of a foreign core.Request is not nil")
	}
}

type fakeRequest struct{ core.Request }

// TestMountWellKnown: the RFC 8414 §3.1 URLs of an issuer with a path, on
// the engine.
func TestMountWellKnown(t *testing.T) {
	adaptertest.RunWellKnown(t, func(t *testing.T, newServer func(baseURL string) *core.Server) string {
		ts := httptest.NewUnstartedServer(nil)
		s := newServer("http://" + ts.Listener.Addr().String())
		r := gin.New()
		ginadapter.MountWellKnown(r, s)
		ts.Config.Handler = r
		ts.Start()
		t.Cleanup(ts.Close)
		return ts.URL
	})
}
