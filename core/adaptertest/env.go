package adaptertest

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"html"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oauth2kit/oauth2kit/core"
	"github.com/oauth2kit/oauth2kit/core/memstore"
)

// The users and clients every server of the suite knows.
const (
	userName     = "alice"
	userPassword = "correct horse battery staple"

	// confID is a confidential client with every grant type.
	confID       = "web-app"
	confName     = "Web <App> & Co"
	confRedirect = "https://client.example.test/callback"
	// confLoggedOut is its registered post-logout redirect URI.
	confLoggedOut = "https://client.example.test/logged-out"
	// otherID is a second confidential client whose registered redirect
	// URI carries a query.
	otherID       = "other-app"
	otherRedirect = "https://other.example.test/cb?tenant=blue"
	// pubID is a public (native) client with two redirect URIs, so it must
	// name one.
	pubID        = "native-app"
	pubRedirect  = "http://127.0.0.1/callback"
	pubRedirect2 = "com.example.native:/oauth"
	// optID is a confidential client for which PKCE is optional.
	optID       = "optional-pkce-app"
	optRedirect = "https://optional.example.test/cb"

	// verifier is the PKCE code_verifier of every flow; RFC 7636's example.
	verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
)

var serverScopes = []string{"read", "write", "admin", core.ScopeOpenID, "profile", "email"}

// testClock is the servers' clock: real time plus an offset tests can move.
type testClock struct{ off atomic.Int64 }

func (c *testClock) now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *testClock) advance(d time.Duration) { c.off.Add(int64(d)) }

// loginApp is the application side: a login page, a password check and a
// consent page.
type loginApp struct {
	srv *core.Server
}

func (a *loginApp) Login(w core.Responder, r core.Request, ar *core.AuthorizationRequest) {
	a.loginPage(w, ar, "")
}

func (a *loginApp) ProcessLogin(w core.Responder, r core.Request, ar *core.AuthorizationRequest) {
	okUser := subtle.ConstantTimeCompare([]byte(ar.Form.Get("username")), []byte(userName)) == 1
	okPass := subtle.ConstantTimeCompare([]byte(ar.Form.Get("password")), []byte(userPassword)) == 1
	if !okUser || !okPass {
		a.loginPage(w, ar, "wrong username or password")
		return
	}
	a.srv.SendLogin(w, r, ar, core.LoginResult{UserID: userName, AMR: []string{"pwd"}})
}

func (a *loginApp) loginPage(w core.Responder, ar *core.AuthorizationRequest, problem string) {
	var b strings.Builder
	b.WriteString(`<!doctype html><html><head><meta charset="utf-8"><title>Sign in</title></head><body>`)
	b.WriteString(`<h1>Sign in</h1><p>to continue to ` + html.EscapeString(ar.ClientName) + `</p>`)
	if problem != "" {
		b.WriteString(`<p class="error">` + html.EscapeString(problem) + `</p>`)
	}
	b.WriteString(`<form method="post" action="` + html.EscapeString(ar.ProcessLoginURL) + `">`)
	b.WriteString(ar.HiddenFields())
	b.WriteString(`<input name="username"><input type="password" name="password"><button>Sign in</button></form></body></html>`)
	w.SetHeader("Content-Type", "text/html; charset=utf-8")
	_ = w.Send(200, []byte(b.String()))
}

func (a *loginApp) Consent(w core.Responder, r core.Request, ar *core.AuthorizationRequest) {
	var b strings.Builder
	b.WriteString(`<!doctype html><html><head><meta charset="utf-8"><title>Consent</title></head><body>`)
	b.WriteString(`<h1>Consent</h1><p>` + html.EscapeString(ar.ClientName) + ` asks for: <span id="scope">` + html.EscapeString(ar.Scope) + `</span></p>`)
	b.WriteString(`<form method="post" action="` + html.EscapeString(ar.ProcessLoginURL) + `">`)
	b.WriteString(ar.HiddenFields())
	b.WriteString(`<button name="decision" value="approve">Allow</button><button name="decision" value="deny">Deny</button></form></body></html>`)
	w.SetHeader("Content-Type", "text/html; charset=utf-8")
	_ = w.Send(200, []byte(b.String()))
}

var _ core.ConsentPrompter = (*loginApp)(nil)

// env is one subtest's server behind the adapter, and the clients that
// talk to it.
type env struct {
	t       *testing.T
	base    string
	srv     *core.Server
	store   *memstore.Store
	clock   *testClock
	secrets map[string]string // client id -> secret
	tr      *http.Transport
	// browser keeps cookies (the user agent); api keeps none (clients and
	// resource calls). Neither follows redirects.
	browser *http.Client
	api     *http.Client
}

func newEnv(t *testing.T, mount Mount) *env {
	t.Helper()
	e := &env{t: t, store: memstore.New(), clock: &testClock{}, secrets: map[string]string{}}
	e.store.SetClock(e.clock.now)
	calls := 0
	var given string
	newServer := func(baseURL string) *core.Server {
		t.Helper()
		calls++
		given = baseURL
		if calls > 1 {
			t.Fatalf("adaptertest: Mount called newServer %d times; once is the contract", calls)
		}
		e.srv = e.buildServer(baseURL)
		return e.srv
	}
	e.base = mount(t, newServer)
	switch {
	case calls != 1:
		t.Fatalf("adaptertest: Mount called newServer %d times; once is the contract", calls)
	case e.base != given:
		t.Fatalf("adaptertest: Mount returned base URL %q but built the server for %q", e.base, given)
	case strings.HasSuffix(e.base, "/"):
		t.Fatalf("adaptertest: base URL %q has a trailing slash", e.base)
	}
	e.tr = &http.Transport{
		Proxy:             nil,
		DialContext:       (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		ForceAttemptHTTP2: false,
	}
	t.Cleanup(e.tr.CloseIdleConnections)
	e.browser = e.newBrowser()
	e.api = &http.Client{Transport: e.tr, Timeout: 15 * time.Second, CheckRedirect: noRedirect}
	return e
}

func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// newBrowser returns a user agent with its own cookie jar.
func (e *env) newBrowser() *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return &http.Client{Transport: e.tr, Jar: jar, Timeout: 15 * time.Second, CheckRedirect: noRedirect}
}

func (e *env) buildServer(baseURL string) *core.Server {
	t := e.t
	t.Helper()
	key := func() []byte {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			t.Fatal(err)
		}
		return b
	}
	app := &loginApp{}
	srv, err := core.New(core.Config{
		Issuer: baseURL,
		Keys:   core.Keys{CryptKey: key(), SignKey: key()},

		Scopes:       serverScopes,
		DefaultScope: "read",
		Now:          e.clock.now,
		Logger:       slog.New(slog.DiscardHandler),
		OIDC:         core.OIDC{SigningKeys: suiteKeys(t), Claims: aliceClaims},
		Resources:    []core.Resource{{URI: ResourceAudience, Scopes: []string{"read", "write"}}},
		Registration: core.Registration{Policy: core.RegistrationOpen},
	}, e.store, app)
	if err != nil {
		t.Fatalf("adaptertest: core.New with issuer %q: %v", baseURL, err)
	}
	app.srv = srv
	specs := []core.ClientSpec{
		{ID: confID, Name: confName, RedirectURIs: []string{confRedirect}, PostLogoutRedirectURIs: []string{confLoggedOut},
			GrantTypes: []string{core.GrantAuthorizationCode, core.GrantRefreshToken, core.GrantClientCredentials}},
		{ID: otherID, Name: "Other App", RedirectURIs: []string{otherRedirect},
			GrantTypes: []string{core.GrantAuthorizationCode, core.GrantRefreshToken, core.GrantClientCredentials}},
		{ID: pubID, Name: "Native App", RedirectURIs: []string{pubRedirect, pubRedirect2}, Public: true},
		{ID: optID, Name: "Optional PKCE App", RedirectURIs: []string{optRedirect}, PKCE: core.PKCEOptional},
	}
	for _, spec := range specs {
		c, secret, err := core.NewClient(spec)
		if err != nil {
			t.Fatalf("adaptertest: registering %s: %v", spec.ID, err)
		}
		e.store.AddClient(c)
		e.secrets[c.ID] = secret
	}
	return srv
}

// --- HTTP ---------------------------------------------------------------

// response is an answer read in full.
type response struct {
	status int
	header http.Header
	body   []byte
	what   string // "METHOD path", for messages
}

func (e *env) send(c *http.Client, req *http.Request) *response {
	e.t.Helper()
	res, err := c.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatalf("%s %s: reading the body: %v", req.Method, req.URL.Path, err)
	}
	return &response{status: res.StatusCode, header: res.Header, body: body, what: req.Method + " " + req.URL.Path}
}

func (e *env) newRequest(method, pathQuery string, body io.Reader) *http.Request {
	e.t.Helper()
	req, err := http.NewRequest(method, e.base+pathQuery, body)
	if err != nil {
		e.t.Fatal(err)
	}
	return req
}

// get sends GET base+pathQuery with the extra headers.
func (e *env) get(c *http.Client, pathQuery string, hdr http.Header) *response {
	e.t.Helper()
	req := e.newRequest("GET", pathQuery, nil)
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	return e.send(c, req)
}

// post sends a POST with body; the content type is a form unless hdr
// names another.
func (e *env) post(c *http.Client, pathQuery, body string, hdr http.Header) *response {
	e.t.Helper()
	req := e.newRequest("POST", pathQuery, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	return e.send(c, req)
}

func (e *env) path(p string) string { return e.base + p }

// basic returns the Authorization header of client id with its secret.
func (e *env) basic(id string) http.Header {
	return http.Header{"Authorization": {core.EncodeBasic(id, e.secrets[id])}}
}

// --- the browser flow -------------------------------------------------------

// authzQuery is an authorization request with S256 PKCE.
func authzQuery(clientID, redirect, scope, state string) url.Values {
	q := url.Values{
		"response_type":         {"code"},
		"client_id":             {clientID},
		"code_challenge":        {core.S256Challenge(verifier)},
		"code_challenge_method": {"S256"},
	}
	set := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	set("redirect_uri", redirect)
	set("scope", scope)
	set("state", state)
	return q
}

// authorize sends the authorization request from browser c.
func (e *env) authorize(c *http.Client, rawQuery string) *response {
	e.t.Helper()
	return e.get(c, "/oauth2/authorize?"+rawQuery, nil)
}

var (
	inputRe  = regexp.MustCompile(`<input\b[^>]*>`)
	nameRe   = regexp.MustCompile(`\bname="([^"]*)"`)
	valueRe  = regexp.MustCompile(`\bvalue="([^"]*)"`)
	actionRe = regexp.MustCompile(`<form\b[^>]*\baction="([^"]*)"`)
)

// hiddenFields reads the hidden inputs of a page, as a browser would
// submit them.
func hiddenFields(t *testing.T, page []byte) url.Values {
	t.Helper()
	v := pageFields(page)
	if v.Get(core.FieldRequest) == "" || v.Get(core.FieldCSRF) == "" {
		t.Fatalf("the page has no %s/%s hidden fields:\n%s", core.FieldRequest, core.FieldCSRF, page)
	}
	return v
}

// pageFields reads every hidden input of a page.
func pageFields(page []byte) url.Values {
	v := url.Values{}
	for _, in := range inputRe.FindAll(page, -1) {
		if !strings.Contains(string(in), `type="hidden"`) {
			continue
		}
		n, val := nameRe.FindSubmatch(in), valueRe.FindSubmatch(in)
		if n == nil || val == nil {
			continue
		}
		v.Set(html.UnescapeString(string(n[1])), html.UnescapeString(string(val[1])))
	}
	return v
}

// formAction is where the page's form posts, as a path.
func (e *env) formAction(page []byte) string {
	e.t.Helper()
	m := actionRe.FindSubmatch(page)
	if m == nil {
		e.t.Fatalf("no form on the page:\n%s", page)
	}
	return strings.TrimPrefix(html.UnescapeString(string(m[1])), e.base)
}

func isLoginPage(r *response) bool   { return strings.Contains(string(r.body), "<h1>Sign in</h1>") }
func isConsentPage(r *response) bool { return strings.Contains(string(r.body), "<h1>Consent</h1>") }

// submitLogin posts the login form of page with the credentials.
func (e *env) submitLogin(c *http.Client, page *response, user, password string) *response {
	e.t.Helper()
	f := hiddenFields(e.t, page.body)
	f.Set("username", user)
	f.Set("password", password)
	return e.post(c, e.formAction(page.body), f.Encode(), nil)
}

// decide posts the consent form of page with decision.
func (e *env) decide(c *http.Client, page *response, decision string) *response {
	e.t.Helper()
	f := hiddenFields(e.t, page.body)
	f.Set(core.FieldDecision, decision)
	return e.post(c, e.formAction(page.body), f.Encode(), nil)
}

// loginAndApprove runs authorize, login and (if asked) consent in the
// env's browser and returns the final 303.
func (e *env) loginAndApprove(q url.Values) *response {
	e.t.Helper()
	page := e.authorize(e.browser, q.Encode())
	if page.status != 200 || !isLoginPage(page) {
		e.t.Fatalf("authorize: want the login page, got %d %v\n%s", page.status, page.header, page.body)
	}
	r := e.submitLogin(e.browser, page, userName, userPassword)
	if r.status == 200 && isConsentPage(r) {
		r = e.decide(e.browser, r, "approve")
	}
	if r.status != 303 {
		e.t.Fatalf("login/consent: want 303, got %d %v\n%s", r.status, r.header, r.body)
	}
	return r
}

// code runs the whole browser part and returns the code.
func (e *env) code(clientID, redirect, scope string) string {
	e.t.Helper()
	r := e.loginAndApprove(authzQuery(clientID, redirect, scope, "s1"))
	q := e.location(r).Query()
	if q.Get("code") == "" {
		e.t.Fatalf("no code in %s", r.header.Get("Location"))
	}
	return q.Get("code")
}

// location parses the Location header.
func (e *env) location(r *response) *url.URL {
	e.t.Helper()
	loc := r.header.Get("Location")
	if loc == "" {
		e.t.Fatalf("%s: %d without Location", r.what, r.status)
	}
	u, err := url.Parse(loc)
	if err != nil {
		e.t.Fatalf("%s: Location %q: %v", r.what, loc, err)
	}
	return u
}

// --- tokens -----------------------------------------------------------------

type tokens struct {
	access, refresh, scope string
}

// clientAuth says how a token request authenticates.
type clientAuth int

const (
	authBasic clientAuth = iota // HTTP Basic
	authBody                    // client_id + client_secret in the body
	authNone                    // client_id only (public)
)

// tokenRequest posts form to the token endpoint as client id.
func (e *env) tokenRequest(id string, how clientAuth, form url.Values) *response {
	e.t.Helper()
	return e.clientPost("/oauth2/token", id, how, form)
}

// clientPost posts form to an endpoint with client authentication.
func (e *env) clientPost(path, id string, how clientAuth, form url.Values) *response {
	e.t.Helper()
	f := url.Values{}
	for k, v := range form {
		f[k] = v
	}
	var hdr http.Header
	switch how {
	case authBasic:
		hdr = e.basic(id)
	case authBody:
		f.Set("client_id", id)
		f.Set("client_secret", e.secrets[id])
	case authNone:
		f.Set("client_id", id)
	}
	return e.post(e.api, path, f.Encode(), hdr)
}

// exchange redeems code for the client (Basic for confidential clients,
// client_id for public ones) and demands success.
func (e *env) exchange(id, code, redirect string) tokens {
	e.t.Helper()
	how := authBasic
	if id == pubID {
		how = authNone
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {verifier}}
	if redirect != "" {
		form.Set("redirect_uri", redirect)
	}
	return e.wantTokens(e.tokenRequest(id, how, form), true)
}

// userTokens runs the code flow for confID with scope and redeems it.
func (e *env) userTokens(scope string) tokens {
	e.t.Helper()
	return e.exchange(confID, e.code(confID, confRedirect, scope), confRedirect)
}

// refresh uses a refresh token as confID.
func (e *env) refresh(rt, scope string) *response {
	e.t.Helper()
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
	if scope != "" {
		form.Set("scope", scope)
	}
	return e.tokenRequest(confID, authBasic, form)
}

// wantTokens checks a successful token response exactly and returns it.
func (e *env) wantTokens(r *response, wantRefresh bool) tokens {
	t := e.t
	t.Helper()
	if r.status != 200 {
		t.Fatalf("%s: want 200, got %d\n%s", r.what, r.status, r.body)
	}
	wantJSONHeaders(t, r)
	m := decodeJSON(t, r)
	keys := []string{"access_token", "expires_in", "scope", "token_type"}
	if sc, _ := m["scope"].(string); slices.Contains(strings.Fields(sc), core.ScopeOpenID) {
		keys = append(keys, "id_token")
	}
	if wantRefresh {
		keys = append(keys, "refresh_token")
	}
	wantKeys(t, m, keys...)
	if m["token_type"] != "Bearer" {
		t.Errorf("token_type = %v, want Bearer", m["token_type"])
	}
	if n, ok := m["expires_in"].(json.Number); !ok || n.String() != "3600" {
		t.Errorf("expires_in = %v, want 3600", m["expires_in"])
	}
	str := func(k string) string {
		s, ok := m[k].(string)
		if !ok && m[k] != nil {
			t.Errorf("%s is %T, want a string", k, m[k])
		}
		return s
	}
	tk := tokens{access: str("access_token"), refresh: str("refresh_token"), scope: str("scope")}
	if tk.access == "" || wantRefresh && tk.refresh == "" {
		t.Fatalf("empty token in %s", r.body)
	}
	return tk
}

// --- resource calls ---------------------------------------------------------

// bearer is an Authorization header with the Bearer scheme.
func bearer(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

// me calls GET PathMe with the token and returns the answer.
func (e *env) me(tok string) *response {
	e.t.Helper()
	return e.get(e.api, PathMe, bearer(tok))
}

// wantMe demands that tok works at PathMe and yields the given identity.
func (e *env) wantMe(tok, sub, clientID, scope string) {
	e.t.Helper()
	r := e.me(tok)
	wantProtected(e.t, r, protected{Sub: sub, ClientID: clientID, Scope: scope})
}

// wantDead demands that tok is refused at PathMe as invalid_token.
func (e *env) wantDead(tok string) {
	e.t.Helper()
	wantBearerError(e.t, e, e.me(tok), 401, "invalid_token", "")
}

// --- assertions ---------------------------------------------------------------
