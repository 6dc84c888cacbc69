package echoadapter_test

import (
	"crypto/rand"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	echoadapter "github.com/oauth2kit/oauth2kit/adapters/echo"
	"github.com/oauth2kit/oauth2kit/core"
	"github.com/oauth2kit/oauth2kit/core/adaptertest"
	"github.com/oauth2kit/oauth2kit/core/memstore"
)

// protectedHandler answers what the conformance suite expects of a
// protected route: the token info the middleware passed on, and the body
// the handler could still read.
func protectedHandler(c echo.Context) error {
	info, ok := echoadapter.TokenInfo(c)
	if !ok {
		return c.String(http.StatusInternalServerError, "no token info in the context")
	}
	body, err := io.ReadAll(c.Request().Body)
	if err != nil {
		return c.String(http.StatusInternalServerError, "reading the body failed")
	}
	return c.Blob(http.StatusOK, "application/json", adaptertest.ProtectedResponse(info, body))
}

// mount serves a suite server through echoadapter.Mount and
// echoadapter.Middleware on an httptest server.
func mount(t *testing.T, newServer func(baseURL string) *core.Server) string {
	return mountExtracting(nil)(t, newServer)
}

// mountExtracting is mount on an echo whose IPExtractor is extract.
func mountExtracting(extract echo.IPExtractor) adaptertest.Mount {
	return func(t *testing.T, newServer func(baseURL string) *core.Server) string {
		return mountEcho(t, newServer, extract)
	}
}

func mountEcho(t *testing.T, newServer func(baseURL string) *core.Server, extract echo.IPExtractor) string {
	ts := httptest.NewUnstartedServer(nil)
	base := "http://" + ts.Listener.Addr().String()
	s := newServer(base)
	e := echo.New()
	e.IPExtractor = extract
	echoadapter.Mount(e, s)
	me := echoadapter.Middleware(s)
	e.GET(adaptertest.PathMe, protectedHandler, me)
	e.POST(adaptertest.PathMe, protectedHandler, me)
	e.GET(adaptertest.PathAdmin, protectedHandler, echoadapter.Middleware(s, adaptertest.AdminScope))
	e.GET(adaptertest.PathResource, protectedHandler, echoadapter.MiddlewareFor(s, adaptertest.ResourceAudience))
	echoadapter.MountProtectedResource(e, s, adaptertest.ResourceAudience)
	ts.Config.Handler = e
	ts.Start()
	t.Cleanup(ts.Close)
	return ts.URL
}

func TestConformance(t *testing.T) {
	adaptertest.Run(t, mount)
}

// TestClientAddress: behind a proxy the app's IPExtractor trusts (echo's
// X-Forwarded-For extractor trusts loopback by default), each client has
// its own throttle budget; without an IPExtractor a forged header changes
// nothing.
func TestClientAddress(t *testing.T) {
	adaptertest.RunClientAddress(t, mountExtracting(echo.ExtractIPFromXFFHeader()), mount)
}

// kit is a server with a client_credentials client ("svc", scopes read
// and admin) and a public web client for the authorization code flow.
type kit struct {
	srv    *core.Server
	secret string
}

const (
	webClient   = "web"
	webRedirect = "https://app.example.test/callback"
)

func newKit(t testing.TB, issuer string, auth core.Authenticator) *kit {
	t.Helper()
	key := func() []byte {
		k := make([]byte, 32)
		if _, err := rand.Read(k); err != nil {
			t.Fatal(err)
		}
		return k
	}
	if auth == nil {
		auth = noLogin{}
	}
	store := memstore.New()
	srv, err := core.New(core.Config{Issuer: issuer, Keys: core.Keys{CryptKey: key(), SignKey: key()}, Scopes: []string{"read", "admin"}}, store, auth)
	if err != nil {
		t.Fatal(err)
	}
	svc, secret, err := core.NewClient(core.ClientSpec{ID: "svc", GrantTypes: []string{core.GrantClientCredentials}, Scopes: []string{"read", "admin"}})
	if err != nil {
		t.Fatal(err)
	}
	store.AddClient(svc)
	web, _, err := core.NewClient(core.ClientSpec{ID: webClient, Public: true, RedirectURIs: []string{webRedirect},
		GrantTypes: []string{core.GrantAuthorizationCode}, Scopes: []string{"read"}})
	if err != nil {
		t.Fatal(err)
	}
	store.AddClient(web)
	return &kit{srv: srv, secret: secret}
}

// noLogin is an Authenticator for tests that never reach the login step.
type noLogin struct{}

func (noLogin) Login(w core.Responder, _ core.Request, _ *core.AuthorizationRequest) {
	_ = w.Send(http.StatusForbidden, nil)
}

func (noLogin) ProcessLogin(w core.Responder, _ core.Request, _ *core.AuthorizationRequest) {
	_ = w.Send(http.StatusForbidden, nil)
}

// tokenRequest is a client_credentials request of the svc client.
func (k *kit) tokenRequest(path, scope string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(url.Values{"grant_type": {"client_credentials"}, "scope": {scope}}.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.SetBasicAuth("svc", k.secret)
	return r
}

// token gets an access token with scope from h at path.
func (k *kit) token(t testing.TB, h http.Handler, path, scope string) string {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, k.tokenRequest(path, scope))
	var out struct {
		AccessToken string `json:"access_token"`
		Scope       string `json:"scope"`
	}
	if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &out) != nil || out.AccessToken == "" {
		t.Fatalf("token: %d %s", w.Code, w.Body)
	}
	return out.AccessToken
}

func get(h http.Handler, path string, hdr http.Header) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, path, nil)
	for k, v := range hdr {
		r.Header[k] = v
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestMiddleware(t *testing.T) {
	const issuer = "https://auth.example.test"
	k := newKit(t, issuer, nil)
	e := echo.New()
	echoadapter.Mount(e, k.srv)
	// The handler reports what it found through both accessors.
	handler := func(c echo.Context) error {
		info, ok := echoadapter.TokenInfo(c)
		raw, _ := c.Get(echoadapter.TokenInfoKey).(*core.TokenInfo)
		if !ok || raw != info {
			return c.String(http.StatusInternalServerError, "token info missing")
		}
		return c.JSON(http.StatusOK, map[string]string{"client_id": info.ClientID, "sub": info.UserID, "scope": info.Scope})
	}
	e.GET("/api/me", handler, echoadapter.Middleware(k.srv))
	e.GET("/api/admin", handler, echoadapter.Middleware(k.srv, "admin"))
	read := k.token(t, e, "/oauth2/token", "read")
	both := k.token(t, e, "/oauth2/token", "read admin")
	bearer := func(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }
	realm := `Bearer realm="` + issuer + `"`

	tests := []struct {
		name   string
		path   string
		hdr    http.Header
		status int
		// challenge is the exact WWW-Authenticate ("" when none).
		challenge string
		// code is the body's error ("" for no error member).
		code  string
		scope string
	}{
		{name: "Missing", path: "/api/me", status: 401, challenge: realm},
		{name: "BasicIsNoToken", path: "/api/me", hdr: http.Header{"Authorization": {"Basic c3ZjOng="}}, status: 401, challenge: realm},
		{name: "Invalid", path: "/api/me", hdr: bearer("not-a-token"), status: 401, code: "invalid_token",
			challenge: realm + `, error="invalid_token", error_description="the access token is invalid, expired or revoked"`},
		{name: "UnderScoped", path: "/api/admin", hdr: bearer(read), status: 403, code: "insufficient_scope", scope: "admin",
			challenge: realm + `, error="insufficient_scope", error_description="the access token lacks the required scope", scope="admin"`},
		{name: "Valid", path: "/api/me", hdr: bearer(read), status: 200, scope: "read"},
		{name: "ValidWithScope", path: "/api/admin", hdr: bearer(both), status: 200, scope: "admin read"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := get(e, tc.path, tc.hdr)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.status, w.Body)
			}
			if got := w.Header().Get("WWW-Authenticate"); got != tc.challenge {
				t.Errorf("WWW-Authenticate %q, want %q", got, tc.challenge)
			}
			if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type %q", ct)
			}
			var body map[string]string
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
				t.Fatalf("body %q: %v", w.Body, err)
			}
			if tc.status == 200 {
				if body["client_id"] != "svc" || body["sub"] != "" || body["scope"] != tc.scope {
					t.Errorf("handler saw %v", body)
				}
				return
			}
			if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control %q", cc)
			}
			if body["error"] != tc.code || body["scope"] != tc.scope {
				t.Errorf("body %v, want error %q scope %q", body, tc.code, tc.scope)
			}
		})
	}
}

// groupLogin signs in whoever the app's own group middleware recognised,
// reading it through Unwrap.
type groupLogin struct{ srv *core.Server }

func (l *groupLogin) Login(w core.Responder, r core.Request, ar *core.AuthorizationRequest) {
	c := echoadapter.Unwrap(r)
	if c == nil {
		_ = w.Send(http.StatusInternalServerError, []byte("Unwrap gave nil"))
		return
	}
	user, _ := c.Get("user").(string)
	if user == "" {
		_ = w.Send(http.StatusUnauthorized, nil)
		return
	}
	l.srv.SendGrant(w, r, ar, user, "")
}

func (l *groupLogin) ProcessLogin(w core.Responder, r core.Request, ar *core.AuthorizationRequest) {
	l.Login(w, r, ar)
}

// TestMountGroup mounts the server on a prefixed group with its own
// middleware: the endpoints answer under the prefix only, the group's
// middleware runs before them, and the Authenticator reaches the echo
// context through Unwrap.
func TestMountGroup(t *testing.T) {
	const host = "https://auth.example.test"
	login := &groupLogin{}
	k := newKit(t, host+"/auth", login)
	login.srv = k.srv
	e := echo.New()
	g := e.Group("/auth", func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			c.Response().Header().Set("X-Group", "auth")
			if c.Request().Header.Get("X-User") == "alice" { // the app's own session
				c.Set("user", "alice")
			}
			return next(c)
		}
	})
	echoadapter.Mount(g, k.srv)
	e.GET("/api/me", protectedHandler, echoadapter.Middleware(k.srv))

	t.Run("Metadata", func(t *testing.T) {
		w := get(e, "/auth/.well-known/oauth-authorization-server", nil)
		var md map[string]any
		if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &md) != nil {
			t.Fatalf("metadata: %d %s", w.Code, w.Body)
		}
		if md["token_endpoint"] != host+"/auth/oauth2/token" || md["issuer"] != host+"/auth" {
			t.Errorf("metadata %v", md)
		}
		if w.Header().Get("X-Group") != "auth" {
			t.Error("the group middleware did not run")
		}
	})
	t.Run("TokenUnderPrefixOnly", func(t *testing.T) {
		w := httptest.NewRecorder()
		e.ServeHTTP(w, k.tokenRequest("/oauth2/token", "read"))
		if w.Code != http.StatusNotFound {
			t.Errorf("unprefixed token endpoint: %d, want 404", w.Code)
		}
		tok := k.token(t, e, "/auth/oauth2/token", "read")
		w = get(e, "/api/me", http.Header{"Authorization": {"Bearer " + tok}})
		if w.Code != 200 || !strings.Contains(w.Body.String(), `"client_id":"svc"`) {
			t.Errorf("protected route: %d %s", w.Code, w.Body)
		}
	})
	t.Run("AuthorizeThroughUnwrap", func(t *testing.T) {
		q := url.Values{"response_type": {"code"}, "client_id": {webClient}, "redirect_uri": {webRedirect}, "state": {"xyz"},
			"scope": {"read"}, "code_challenge": {strings.Repeat("a", 43)}, "code_challenge_method": {"S256"}}
		w := get(e, "/auth/oauth2/authorize?"+q.Encode(), http.Header{"X-User": {"alice"}})
		loc, err := url.Parse(w.Header().Get("Location"))
		if w.Code/100 != 3 || err != nil {
			t.Fatalf("authorize: %d %s", w.Code, w.Body)
		}
		if got := loc.Query(); got.Get("code") == "" || got.Get("state") != "xyz" || got.Get("iss") != host+"/auth" {
			t.Errorf("redirect %s", loc)
		}
		if w := get(e, "/auth/oauth2/authorize?"+q.Encode(), nil); w.Code != http.StatusUnauthorized {
			t.Errorf("without the app's session: %d, want the Authenticator's 401", w.Code)
		}
	})
}

// TestWrappers covers Request, Responder and Unwrap, as an app handler
// calling core functions itself uses them.
func TestWrappers(t *testing.T) {
	e := echo.New()
	r := httptest.NewRequest(http.MethodPost, "/app/things?a=1&a=2", strings.NewReader("x=1"))
	r.Header.Add("X-Multi", "one")
	r.Header.Add("X-Multi", "two")
	r.Header.Set("X-Forwarded-For", "203.0.113.9")
	r.RemoteAddr = "192.0.2.1:1234"
	w := httptest.NewRecorder()
	c := e.NewContext(r, w)

	req := echoadapter.Request(c)
	if req.Method() != "POST" || req.Path() != "/app/things" || req.RawQuery() != "a=1&a=2" || req.TLS() {
		t.Errorf("method %q path %q query %q tls %v", req.Method(), req.Path(), req.RawQuery(), req.TLS())
	}
	if got := req.Header("x-multi"); len(got) != 2 || got[1] != "two" {
		t.Errorf("Header = %q", got)
	}
	if req.Header("X-Absent") != nil {
		t.Error("absent header not nil")
	}
	if b, _ := io.ReadAll(req.Body()); string(b) != "x=1" {
		t.Errorf("Body = %q", b)
	}
	if req.Context() != r.Context() {
		t.Error("Context is not the request's")
	}
	// Without an IPExtractor, X-Forwarded-For is anyone's to forge: the
	// peer address counts.
	if got := req.RemoteAddr(); got != "192.0.2.1:1234" {
		t.Errorf("RemoteAddr without IPExtractor = %q", got)
	}
	e.IPExtractor = echo.ExtractIPFromXFFHeader(echo.TrustIPRange(mustCIDR(t, "192.0.2.0/24")))
	if got := req.RemoteAddr(); got != "203.0.113.9" {
		t.Errorf("RemoteAddr with IPExtractor = %q", got)
	}
	if echoadapter.Unwrap(req) != c {
		t.Error("Unwrap(Request(c)) != c")
	}
	if echoadapter.Unwrap(fakeRequest{req}) != nil {
		t.Error("Unwrap of a foreign Request is not nil")
	}

	res := echoadapter.Responder(c)
	res.SetHeader("Content-Type", "text/plain")
	res.AddHeader("Set-Cookie", "a=1")
	res.AddHeader("Set-Cookie", "b=2")
	if err := res.Send(http.StatusTeapot, []byte("short and stout")); err != nil {
		t.Fatal(err)
	}
	if w.Code != http.StatusTeapot || w.Body.String() != "short and stout" || len(w.Header().Values("Set-Cookie")) != 2 ||
		w.Header().Get("Content-Type") != "text/plain" || !c.Response().Committed {
		t.Errorf("response %d %q %v", w.Code, w.Body, w.Header())
	}
}

// fakeRequest is a core.Request of another adapter.
type fakeRequest struct{ core.Request }

func mustCIDR(t *testing.T, s string) *net.IPNet {
	t.Helper()
	_, n, err := net.ParseCIDR(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestMountWellKnown: the RFC 8414 §3.1 URLs of an issuer with a path, on
// the echo instance.
func TestMountWellKnown(t *testing.T) {
	adaptertest.RunWellKnown(t, func(t *testing.T, newServer func(baseURL string) *core.Server) string {
		ts := httptest.NewUnstartedServer(nil)
		s := newServer("http://" + ts.Listener.Addr().String())
		e := echo.New()
		echoadapter.MountWellKnown(e, s)
		ts.Config.Handler = e
		ts.Start()
		t.Cleanup(ts.Close)
		return ts.URL
	})
}
