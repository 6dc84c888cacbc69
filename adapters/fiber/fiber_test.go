package fiberadapter_test

import (
	"bufio"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	fiberadapter "github.com/oauth2kit/oauth2kit/adapters/fiber"
	"github.com/oauth2kit/oauth2kit/core"
	"github.com/oauth2kit/oauth2kit/core/adaptertest"
	"github.com/oauth2kit/oauth2kit/core/memstore"
)

// protected answers what the conformance suite expects of a protected
// route: the token info the middleware passed on, and the body the handler
// could still read.
func protected(c *fiber.Ctx) error {
	info, ok := fiberadapter.TokenInfo(c)
	if !ok {
		return c.Status(http.StatusInternalServerError).SendString("no token info in c.Locals")
	}
	c.Set("Content-Type", "application/json")
	return c.Send(adaptertest.ProtectedResponse(info, c.Body()))
}

// serve runs app on a loopback listener until the test ends.
func serve(t *testing.T, app *fiber.App, ln net.Listener) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- app.Listener(ln) }()
	t.Cleanup(func() {
		if err := app.Shutdown(); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("listener: %v", err)
		}
	})
}

func listen(t *testing.T) (net.Listener, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln, "http://" + ln.Addr().String()
}

// mount serves a suite server through fiberadapter.Mount and Middleware.
func mount(t *testing.T, newServer func(baseURL string) *core.Server) string {
	return mountWith(fiber.Config{})(t, newServer)
}

// mountWith is mount on an app built with cfg.
func mountWith(cfg fiber.Config) adaptertest.Mount {
	return func(t *testing.T, newServer func(baseURL string) *core.Server) string {
		return mountApp(t, newServer, cfg)
	}
}

func mountApp(t *testing.T, newServer func(baseURL string) *core.Server, cfg fiber.Config) string {
	ln, base := listen(t)
	s := newServer(base)
	cfg.DisableStartupMessage = true
	app := fiber.New(cfg)
	fiberadapter.Mount(app, s)
	me := fiberadapter.Middleware(s)
	app.Get(adaptertest.PathMe, me, protected)
	app.Post(adaptertest.PathMe, me, protected)
	app.Get(adaptertest.PathAdmin, fiberadapter.Middleware(s, adaptertest.AdminScope), protected)
	app.Get(adaptertest.PathResource, fiberadapter.MiddlewareFor(s, adaptertest.ResourceAudience), protected)
	fiberadapter.MountProtectedResource(app, s, adaptertest.ResourceAudience)
	serve(t, app, ln)
	return base
}

func TestConformance(t *testing.T) {
	adaptertest.Run(t, mount)
}

// TestClientAddress: behind a proxy the app trusts, each client has its own
// throttle budget; with no trusted proxy, a forged X-Forwarded-For changes
// nothing, even with ProxyHeader set (without EnableTrustedProxyCheck fiber
// believes that header from every peer).
func TestClientAddress(t *testing.T) {
	adaptertest.RunClientAddress(t,
		mountWith(fiber.Config{EnableTrustedProxyCheck: true, TrustedProxies: []string{"127.0.0.1"}, ProxyHeader: fiber.HeaderXForwardedFor}),
		mountWith(fiber.Config{ProxyHeader: fiber.HeaderXForwardedFor}))
}

// kit is a server with a memory store and confidential clients for the
// client_credentials grant.
type kit struct {
	srv     *core.Server
	store   *memstore.Store
	secrets map[string]string
}

// noLogin is an Authenticator for tests that never reach the login step.
type noLogin struct{}

func (noLogin) Login(w core.Responder, _ core.Request, _ *core.AuthorizationRequest) {
	_ = w.Send(http.StatusForbidden, nil)
}

func (noLogin) ProcessLogin(w core.Responder, _ core.Request, _ *core.AuthorizationRequest) {
	_ = w.Send(http.StatusForbidden, nil)
}

func key(t testing.TB) []byte {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

// newKit builds a server for issuer with clients "reader" (scope read) and
// "admin" (scopes read and admin).
func newKit(t testing.TB, issuer string) *kit {
	t.Helper()
	k := &kit{store: memstore.New(), secrets: map[string]string{}}
	srv, err := core.New(core.Config{
		Issuer: issuer,
		Keys:   core.Keys{CryptKey: key(t), SignKey: key(t)},

		Scopes: []string{"read", "admin"},
	}, k.store, noLogin{})
	if err != nil {
		t.Fatal(err)
	}
	k.srv = srv
	for id, scopes := range map[string][]string{"reader": {"read"}, "admin": {"read", "admin"}} {
		c, secret, err := core.NewClient(core.ClientSpec{ID: id, GrantTypes: []string{core.GrantClientCredentials}, Scopes: scopes})
		if err != nil {
			t.Fatal(err)
		}
		k.store.AddClient(c)
		k.secrets[id] = secret
	}
	return k
}

// tokenForm is the client_credentials request body for client.
func (k *kit) tokenForm(client, scope string) string {
	return url.Values{"grant_type": {"client_credentials"}, "client_id": {client},
		"client_secret": {k.secrets[client]}, "scope": {scope}}.Encode()
}

// token gets an access token for client from app's token endpoint at path.
func (k *kit) token(t *testing.T, app *fiber.App, path, client, scope string) string {
	t.Helper()
	req := httptest.NewRequest("POST", path, strings.NewReader(k.tokenForm(client, scope)))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res := do(t, app, req)
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if res.StatusCode != 200 || json.Unmarshal(res.body, &out) != nil || out.AccessToken == "" {
		t.Fatalf("token: %d %s", res.StatusCode, res.body)
	}
	return out.AccessToken
}

type response struct {
	*http.Response
	body []byte
}

// do runs req through app in memory.
func do(t *testing.T, app *fiber.App, req *http.Request) response {
	t.Helper()
	res, err := app.Test(req, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{res, b}
}

func TestMiddleware(t *testing.T) {
	const issuer = "http://127.0.0.1:9"
	k := newKit(t, issuer)
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	fiberadapter.Mount(app, k.srv)
	handler := func(c *fiber.Ctx) error {
		info, ok := fiberadapter.TokenInfo(c)
		local, _ := c.Locals(fiberadapter.TokenInfoKey).(*core.TokenInfo)
		if !ok || local != info {
			return c.Status(500).SendString("token info missing from c.Locals")
		}
		return c.SendString(info.ClientID + " " + info.Scope + " " + string(c.Body()))
	}
	app.All("/read", fiberadapter.Middleware(k.srv, "read"), handler)
	app.Get("/admin", fiberadapter.Middleware(k.srv, "admin"), handler)
	reader := k.token(t, app, "/oauth2/token", "reader", "read")
	admin := k.token(t, app, "/oauth2/token", "admin", "read admin")

	realm := `Bearer realm="` + issuer + `"`
	invalid := realm + `, error="invalid_token", error_description="the access token is invalid, expired or revoked"`
	tests := []struct {
		name, method, path string
		auth               []string
		form               string
		status             int
		challenge, code    string // for refusals
		body               string // for passes
	}{
		{"no token", "GET", "/read", nil, "", 401, realm, "", ""},
		{"invalid token", "GET", "/read", []string{"Bearer nope"}, "", 401, invalid, "invalid_token", ""},
		{"tampered token", "GET", "/read", []string{"Bearer " + flip(reader)}, "", 401, invalid, "invalid_token", ""},
		{"basic auth is no token", "GET", "/read", []string{"Basic cmVhZGVyOng="}, "", 401, realm, "", ""},
		{"two authorization headers", "GET", "/read", []string{"Bearer " + reader, "Bearer " + reader}, "", 400, "", "invalid_request", ""},
		{"header and form token", "POST", "/read", []string{"Bearer " + reader}, "access_token=" + url.QueryEscape(reader), 400, "", "invalid_request", ""},
		{"insufficient scope", "GET", "/admin", []string{"Bearer " + reader}, "", 403,
			realm + `, error="insufficient_scope", error_description="the access token lacks the required scope", scope="admin"`, "insufficient_scope", ""},
		{"valid", "GET", "/read", []string{"Bearer " + reader}, "", 200, "", "", "reader read "},
		{"valid admin", "GET", "/admin", []string{"Bearer " + admin}, "", 200, "", "", "admin admin read "},
		{"lower-case scheme", "GET", "/read", []string{"bearer " + reader}, "", 200, "", "", "reader read "},
		{"body stays readable", "POST", "/read", []string{"Bearer " + reader}, "a=1&b=2", 200, "", "", "reader read a=1&b=2"},
		{"form token", "POST", "/read", nil, "access_token=" + url.QueryEscape(admin) + "&x=y", 200, "", "", "admin admin read access_token=" + url.QueryEscape(admin) + "&x=y"},
		{"query token ignored", "GET", "/read?access_token=" + url.QueryEscape(reader), nil, "", 401, realm, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader
			if tc.form != "" {
				body = strings.NewReader(tc.form)
			}
			req := httptest.NewRequest(tc.method, tc.path, body)
			if tc.form != "" {
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
			for _, a := range tc.auth {
				req.Header.Add("Authorization", a)
			}
			res := do(t, app, req)
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d (%s)", res.StatusCode, tc.status, res.body)
			}
			if got := res.Header.Values("WWW-Authenticate"); tc.challenge == "" && len(got) != 0 || tc.challenge != "" && (len(got) != 1 || got[0] != tc.challenge) {
				t.Errorf("WWW-Authenticate %q, want %q", got, tc.challenge)
			}
			if tc.status != 200 {
				var e struct {
					Error string `json:"error"`
				}
				if err := json.Unmarshal(res.body, &e); err != nil || e.Error != tc.code {
					t.Errorf("refusal body %q, want error %q", res.body, tc.code)
				}
				if ct := res.Header.Get("Content-Type"); ct != "application/json" {
					t.Errorf("Content-Type %q", ct)
				}
				if cc := res.Header.Get("Cache-Control"); cc != "no-store" {
					t.Errorf("Cache-Control %q", cc)
				}
				return
			}
			if string(res.body) != tc.body {
				t.Errorf("body %q, want %q", res.body, tc.body)
			}
		})
	}
}

// TestMiddlewareChain checks that a refusal ends the chain and that a pass
// runs what follows.
func TestMiddlewareChain(t *testing.T) {
	k := newKit(t, "http://127.0.0.1:9")
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	fiberadapter.Mount(app, k.srv)
	calls := 0
	app.Get("/x", fiberadapter.Middleware(k.srv), func(c *fiber.Ctx) error {
		calls++
		return c.Next()
	}, func(c *fiber.Ctx) error {
		info, _ := fiberadapter.TokenInfo(c)
		return c.SendString(info.ClientID)
	})
	if res := do(t, app, httptest.NewRequest("GET", "/x", nil)); res.StatusCode != 401 || calls != 0 {
		t.Fatalf("without a token: status %d, handler called %d times", res.StatusCode, calls)
	}
	req := httptest.NewRequest("GET", "/x", nil)
	req.Header.Set("Authorization", "Bearer "+k.token(t, app, "/oauth2/token", "reader", "read"))
	if res := do(t, app, req); res.StatusCode != 200 || calls != 1 || string(res.body) != "reader" {
		t.Fatalf("with a token: status %d %q, handler called %d times", res.StatusCode, res.body, calls)
	}
}

func TestTokenInfoWithoutMiddleware(t *testing.T) {
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Get("/", func(c *fiber.Ctx) error {
		if info, ok := fiberadapter.TokenInfo(c); ok || info != nil {
			t.Errorf("TokenInfo = %v, %v", info, ok)
		}
		return nil
	})
	do(t, app, httptest.NewRequest("GET", "/", nil))
}

// TestMountGroup mounts the endpoints on a group with a prefix and its own
// middleware: they answer under the prefix, matched exactly.
func TestMountGroup(t *testing.T) {
	const issuer = "http://127.0.0.1:9/auth"
	k := newKit(t, issuer)
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	g := app.Group("/auth", func(c *fiber.Ctx) error {
		c.Set("X-Group", "auth")
		return c.Next()
	})
	fiberadapter.Mount(g, k.srv)
	app.Get("/api/me", fiberadapter.Middleware(k.srv), func(c *fiber.Ctx) error {
		info, _ := fiberadapter.TokenInfo(c)
		return c.SendString(info.ClientID)
	})

	res := do(t, app, httptest.NewRequest("GET", "/auth/.well-known/oauth-authorization-server", nil))
	var md struct {
		Issuer        string `json:"issuer"`
		TokenEndpoint string `json:"token_endpoint"`
	}
	if res.StatusCode != 200 || json.Unmarshal(res.body, &md) != nil {
		t.Fatalf("metadata: %d %s", res.StatusCode, res.body)
	}
	if md.Issuer != issuer || md.TokenEndpoint != issuer+"/oauth2/token" {
		t.Errorf("metadata issuer %q, token_endpoint %q", md.Issuer, md.TokenEndpoint)
	}
	if res.Header.Get("X-Group") != "auth" {
		t.Error("the group's middleware did not run")
	}
	tok := k.token(t, app, "/auth/oauth2/token", "reader", "read")
	req := httptest.NewRequest("GET", "/api/me", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	if res := do(t, app, req); res.StatusCode != 200 || string(res.body) != "reader" {
		t.Errorf("/api/me: %d %s", res.StatusCode, res.body)
	}
	// Only the exact paths: not outside the group, nor the variants
	// fiber's lenient routing lets through.
	for _, p := range []string{"/oauth2/token", "/auth/oauth2/token/", "/auth/OAUTH2/token", "/auth/oauth2/Token"} {
		req := httptest.NewRequest("POST", p, strings.NewReader(k.tokenForm("reader", "read")))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if res := do(t, app, req); res.StatusCode != 404 {
			t.Errorf("POST %s: %d %s, want 404", p, res.StatusCode, res.body)
		}
	}
}

// TestRequest checks the core.Request view of a fiber request: repeated
// headers, case-insensitive names, raw query, body, and Unwrap.
func TestRequest(t *testing.T) {
	for _, disable := range []bool{false, true} {
		t.Run(fmt.Sprintf("DisableHeaderNormalizing=%v", disable), func(t *testing.T) {
			app := fiber.New(fiber.Config{DisableStartupMessage: true, DisableHeaderNormalizing: disable})
			app.All("/p", func(c *fiber.Ctx) error {
				r := fiberadapter.Request(c)
				if fiberadapter.Unwrap(r) != c {
					t.Error("Unwrap did not return the fiber context")
				}
				body, _ := io.ReadAll(r.Body())
				again, _ := io.ReadAll(r.Body())
				got := fmt.Sprintf("%s %s %s %q %q %q %q %s|%s %v %v", r.Method(), r.Path(), r.RawQuery(),
					r.Header("x-multi"), r.Header("X-MULTI"), r.Header("content-type"), r.Header("X-Absent"),
					body, again, r.TLS(), r.Context() != nil)
				// Header.Write sends X-Multi before x-multi.
				want := `PATCH /p a=1&a=2 ["two" "one"] ["two" "one"] ["text/plain"] [] x=y|x=y false true`
				if got != want {
					t.Errorf("request view:\n got %s\nwant %s", got, want)
				}
				if r.Header("X-Absent") != nil {
					t.Error("absent header is not nil")
				}
				if _, _, err := net.SplitHostPort(r.RemoteAddr()); err != nil {
					t.Errorf("RemoteAddr %q: %v", r.RemoteAddr(), err)
				}
				return nil
			})
			req := httptest.NewRequest("PATCH", "/p?a=1&a=2", strings.NewReader("x=y"))
			req.Header.Set("Content-Type", "text/plain")
			req.Header["x-multi"] = []string{"one"}
			req.Header["X-Multi"] = []string{"two"}
			if res := do(t, app, req); res.StatusCode != 200 {
				t.Fatalf("status %d", res.StatusCode)
			}
		})
	}
	if fiberadapter.Unwrap(fakeRequest{}) != nil {
		t.Error("Unwrap of a foreign request is not nil")
	}
}

type fakeRequest struct{ core.Request }

// flip changes the last character of a token.
func flip(tok string) string {
	last := "A"
	if strings.HasSuffix(tok, last) {
		last = "B"
	}
	return tok[:len(tok)-1] + last
}

// TestResponder checks that Set-Cookie lines stay separate and that the
// body is copied.
func TestResponder(t *testing.T) {
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Get("/", func(c *fiber.Ctx) error {
		w := fiberadapter.Responder(c)
		w.SetHeader("X-One", "a")
		w.SetHeader("X-One", "b")
		w.AddHeader("Set-Cookie", "a=1; Path=/")
		w.AddHeader("Set-Cookie", "b=2; Path=/")
		body := []byte("hello")
		err := w.Send(http.StatusTeapot, body)
		copy(body, "XXXXX") // the server may reuse its buffer
		return err
	})
	res := do(t, app, httptest.NewRequest("GET", "/", nil))
	if res.StatusCode != http.StatusTeapot || string(res.body) != "hello" || res.Header.Get("X-One") != "b" {
		t.Errorf("got %d %q X-One=%q", res.StatusCode, res.body, res.Header.Values("X-One"))
	}
	if got := res.Header.Values("Set-Cookie"); len(got) != 2 {
		t.Errorf("Set-Cookie %q, want two lines", got)
	}
}

// TestBufferReuse sends many requests with different values down one
// keep-alive connection, where fasthttp reuses its request context and
// buffers: values kept past a handler and the answers must not mix.
func TestBufferReuse(t *testing.T) {
	ln, base := listen(t)
	k := newKit(t, base)
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	fiberadapter.Mount(app, k.srv)
	type kept struct{ method, path, query, header, body string }
	var (
		mu   sync.Mutex
		keep []kept
	)
	app.All("/keep/*", fiberadapter.Middleware(k.srv), func(c *fiber.Ctx) error {
		r := fiberadapter.Request(c)
		b, _ := io.ReadAll(r.Body())
		h := r.Header("X-Value")
		mu.Lock()
		keep = append(keep, kept{r.Method(), r.Path(), r.RawQuery(), strings.Join(h, ","), string(b)})
		mu.Unlock()
		info, _ := fiberadapter.TokenInfo(c)
		return c.SendString(info.ClientID + " " + string(c.Body()))
	})
	serve(t, app, ln)

	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	roundTrip := func(req *http.Request) (int, string) {
		t.Helper()
		if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
			t.Fatal(err)
		}
		if err := req.Write(conn); err != nil {
			t.Fatal(err)
		}
		res, err := http.ReadResponse(br, req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		return res.StatusCode, string(b)
	}
	form := func(method, target, body string) *http.Request {
		req, err := http.NewRequest(method, base+target, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return req
	}

	tokens := map[string]string{}
	for _, client := range []string{"reader", "admin"} {
		status, body := roundTrip(form("POST", "/oauth2/token", k.tokenForm(client, "read")))
		var out struct {
			AccessToken string `json:"access_token"`
		}
		if status != 200 || json.Unmarshal([]byte(body), &out) != nil {
			t.Fatalf("token for %s: %d %s", client, status, body)
		}
		tokens[client] = out.AccessToken
	}
	const n = 200
	methods := []string{"POST", "PUT", "PATCH", "DELETE"}
	var want []kept
	for i := range n {
		client := []string{"reader", "admin"}[i%2]
		method := methods[i%len(methods)]
		// Lengths vary so that a stale view would show torn values.
		pad := strings.Repeat("z", i%17)
		v := kept{method, fmt.Sprintf("/keep/%d%s", i, pad), fmt.Sprintf("q=%d&r=%s", i, pad),
			fmt.Sprintf("v%d%s,w%d", i, pad, i), fmt.Sprintf("n=%d&pad=%s", i, pad)}
		want = append(want, v)
		req := form(method, v.path+"?"+v.query, v.body)
		req.Header.Set("Authorization", "Bearer "+tokens[client])
		req.Header["X-Value"] = strings.Split(v.header, ",")
		status, body := roundTrip(req)
		if status != 200 || body != client+" "+v.body {
			t.Fatalf("request %d: %d %q, want %q", i, status, body, client+" "+v.body)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(keep) != n {
		t.Fatalf("kept %d values, want %d", len(keep), n)
	}
	for i := range want {
		if keep[i] != want[i] {
			t.Errorf("request %d kept %+v, want %+v", i, keep[i], want[i])
		}
	}
}

// TestMountWellKnown: the RFC 8414 §3.1 URLs of an issuer with a path, on
// the app.
func TestMountWellKnown(t *testing.T) {
	adaptertest.RunWellKnown(t, func(t *testing.T, newServer func(baseURL string) *core.Server) string {
		ln, base := listen(t)
		s := newServer(base)
		app := fiber.New(fiber.Config{DisableStartupMessage: true})
		fiberadapter.MountWellKnown(app, s)
		serve(t, app, ln)
		return base
	})
}
