package securitytest

import (
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/oauth2kit/oauth2kit/adapters/nethttp"
	"github.com/oauth2kit/oauth2kit/core"
	"github.com/oauth2kit/oauth2kit/examples/internal/demo"
	"github.com/oauth2kit/oauth2kit/examples/internal/e2etest"
	gormstore "github.com/oauth2kit/oauth2kit/storage/gorm"
)

// The clients every env registers.
const (
	// confID is confidential with every grant type and one https redirect.
	confID       = "conf-app"
	confRedirect = "https://client.example.test/cb"
	// otherID is a second confidential client whose registered redirect
	// URI carries a query.
	otherID       = "other-app"
	otherRedirect = "https://other.example.test/cb?tenant=blue"
	// pubID is public (a native app) with three redirect URIs, so it must
	// name one: two loopback IP literals (any port) and a private scheme.
	pubID          = "native-app"
	pubRedirect    = "http://127.0.0.1/callback"
	pubRedirect6   = "http://[::1]/callback"
	pubRedirectApp = "com.example.app:/oauth"
	// optID is confidential, PKCE optional, without client_credentials.
	optID       = "opt-app"
	optRedirect = "https://opt.example.test/cb"
)

// Tables of the store (storage/gorm/models.go).
var tables = []string{"oauth2_clients", "oauth2_grants", "oauth2_refresh_tokens", "oauth2_revoked_families", "oauth2_consents"}

// clock is the server's clock: frozen at the env's start, moved only by
// the test (so "expires to the second" does not race the race detector).
type clock struct {
	start time.Time
	off   atomic.Int64
}

func (c *clock) now() time.Time          { return c.start.Add(time.Duration(c.off.Load())) }
func (c *clock) advance(d time.Duration) { c.off.Add(int64(d)) }

// secret is a credential seen on the wire: it must never be at rest.
type secret struct{ kind, value string }

// setup varies an env.
type setup struct {
	db *database // default: a fresh SQLite file
	// tls serves over TLS (httptest's certificate).
	tls bool
	// issuer replaces the server's URL as issuer.
	issuer string
	config func(*core.Config)
}

// env is one test's authorization server: a core.Server behind the nethttp
// adapter on a real listener, the GORM store on a fresh database, the
// demo's login and consent pages, a protected API, and the registered
// clients.
type env struct {
	t     *testing.T
	d     *database
	db    *gorm.DB // the test's own pool, for reading the tables
	clock *clock
	log   *e2etest.SyncBuffer
	slog  *slog.Logger
	ts    *httptest.Server
	base  string
	api   *http.Client // no cookies, no redirects

	handler atomic.Pointer[http.Handler]
	srv     *core.Server
	cfg     core.Config
	keys    map[string]core.Keys // every generation created, by id

	mu      sync.Mutex
	secrets map[string]string // client id -> secret
	seen    []secret
}

func newEnv(t *testing.T, s setup) *env {
	t.Helper()
	if s.db == nil {
		s.db = sqliteDB(t)
	}
	e := &env{t: t, d: s.db, clock: &clock{start: time.Now().Truncate(time.Second)}, log: &e2etest.SyncBuffer{}, keys: map[string]core.Keys{}, secrets: map[string]string{}}
	e.slog = slog.New(slog.NewTextHandler(e.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.ts = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		(*e.handler.Load()).ServeHTTP(w, r)
	}))
	if s.tls {
		e.ts.StartTLS()
	} else {
		e.ts.Start()
	}
	t.Cleanup(e.ts.Close)
	e.base = e.ts.URL
	e.api = &http.Client{Transport: e.ts.Client().Transport, CheckRedirect: noRedirect, Timeout: 30 * time.Second}

	e.db = e.d.open(t, logger.Discard)
	if err := gormstore.New(e.db).Migrate(context.Background()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	k1 := e.newKeys("k1")
	cfg := core.Config{
		Issuer: e.base,
		Keys:   core.Keys{ID: k1.ID, CryptKey: k1.CryptKey, SignKey: k1.SignKey},

		Scopes:       []string{"read", "write", "admin"},
		DefaultScope: "read",
		Now:          e.clock.now,
		Logger:       e.slog,
	}
	if s.issuer != "" {
		cfg.Issuer = s.issuer
	}
	if s.config != nil {
		s.config(&cfg)
	}
	e.start(cfg)
	for _, spec := range []core.ClientSpec{
		{ID: confID, Name: "Conf App", RedirectURIs: []string{confRedirect},
			GrantTypes: []string{core.GrantAuthorizationCode, core.GrantRefreshToken, core.GrantClientCredentials}},
		{ID: otherID, Name: "Other App", RedirectURIs: []string{otherRedirect},
			GrantTypes: []string{core.GrantAuthorizationCode, core.GrantRefreshToken, core.GrantClientCredentials}},
		{ID: pubID, Name: "Native App", RedirectURIs: []string{pubRedirect, pubRedirect6, pubRedirectApp}, Public: true},
		{ID: optID, Name: "Opt App", RedirectURIs: []string{optRedirect}, PKCE: core.PKCEOptional},
	} {
		e.addClient(spec)
	}
	// Registered last, so it runs first: nothing seen on the wire may be
	// at rest, whatever the test did.
	t.Cleanup(e.checkNothingAtRest)
	return e
}

func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// newKeys creates a key generation named id.
func (e *env) newKeys(id string) core.Keys {
	k := core.Keys{ID: id, CryptKey: make([]byte, 32), SignKey: make([]byte, 32)}
	if _, err := rand.Read(k.CryptKey); err != nil {
		e.t.Fatal(err)
	}
	if _, err := rand.Read(k.SignKey); err != nil {
		e.t.Fatal(err)
	}
	e.keys[id] = k
	return k
}

// start builds a server on cfg over a new connection pool and puts it
// behind the listener: the first start, or a restart (same issuer, same
// database).
func (e *env) start(cfg core.Config) {
	e.t.Helper()
	h, srv := e.build(cfg)
	e.handler.Store(&h)
	e.srv, e.cfg = srv, srv.Config()
}

// replica starts another instance of the server on cfg, sharing the
// database, behind a listener of its own (a second node behind a load
// balancer), and returns its base URL.
func (e *env) replica(cfg core.Config) string {
	e.t.Helper()
	h, _ := e.build(cfg)
	ts := httptest.NewServer(h)
	e.t.Cleanup(ts.Close)
	return ts.URL
}

// build makes a server on cfg, with the demo's pages and a protected API
// (/api/me, and /api/write needing scope write), mounted with the nethttp
// adapter.
func (e *env) build(cfg core.Config) (http.Handler, *core.Server) {
	e.t.Helper()
	sqlLog := logger.New(log.New(e.log, "gorm: ", 0), logger.Config{LogLevel: logger.Info, Colorful: false})
	store := gormstore.New(e.d.open(e.t, sqlLog))
	auth, bind := demo.NewAuthenticator(e.slog)
	srv, err := core.New(cfg, store, auth)
	if err != nil {
		e.t.Fatalf("core.New: %v", err)
	}
	bind(srv)
	mux := http.NewServeMux()
	nethttp.Mount(mux, srv)
	me := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info, _ := nethttp.TokenInfo(r.Context())
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(demo.Me(info))
	})
	mux.Handle("/api/me", nethttp.Middleware(srv)(me))
	mux.Handle("/api/write", nethttp.Middleware(srv, "write")(me))
	return mux, srv
}

// addClient registers a client as the examples do (core.NewClient, then
// the store) and returns its secret ("" for a public client).
func (e *env) addClient(spec core.ClientSpec) string {
	e.t.Helper()
	c, sec, err := core.NewClient(spec)
	if err != nil {
		e.t.Fatalf("NewClient %q: %v", spec.ID, err)
	}
	if err := gormstore.New(e.db).SaveClient(context.Background(), c); err != nil {
		e.t.Fatalf("SaveClient %q: %v", spec.ID, err)
	}
	e.mu.Lock()
	e.secrets[c.ID] = sec
	e.mu.Unlock()
	e.remember("client secret", sec)
	return sec
}

func (e *env) secret(id string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.secrets[id]
}

// remember records a credential seen on the wire.
func (e *env) remember(kind, v string) {
	if v == "" {
		return
	}
	e.mu.Lock()
	e.seen = append(e.seen, secret{kind, v})
	e.mu.Unlock()
}

// ---- HTTP ----

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r *response) String() string {
	loc := ""
	if l := r.header.Get("Location"); l != "" {
		loc = " Location: " + l
	}
	b := string(r.body)
	if len(b) > 400 {
		b = b[:400] + "…"
	}
	return fmt.Sprintf("%d%s %s", r.status, loc, b)
}

// do sends one request to path (with its query, sent as is).
func (e *env) do(c *http.Client, method, pathQuery, body string, hdr http.Header) *response {
	e.t.Helper()
	return e.doAt(e.base, c, method, pathQuery, body, hdr)
}

// doAt sends one request to the server at base.
func (e *env) doAt(base string, c *http.Client, method, pathQuery, body string, hdr http.Header) *response {
	e.t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		e.t.Fatal(err)
	}
	u.Path, u.RawQuery, _ = strings.Cut(pathQuery, "?")
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(e.t.Context(), method, u.String(), rd)
	if err != nil {
		e.t.Fatal(err)
	}
	req.URL.RawQuery = u.RawQuery
	for k, vs := range hdr {
		req.Header[http.CanonicalHeaderKey(k)] = append([]string(nil), vs...)
	}
	res, err := c.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, u.Path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, ck := range res.Cookies() {
		e.remember("session cookie", ck.Value)
	}
	return &response{status: res.StatusCode, header: res.Header, body: b}
}

var formHeader = http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}

// post sends a form (the form content type unless hdr names another).
func (e *env) post(c *http.Client, pathQuery, form string, hdr http.Header) *response {
	h := http.Header{}
	for k, v := range hdr {
		h[http.CanonicalHeaderKey(k)] = v
	}
	if _, ok := h["Content-Type"]; !ok {
		h["Content-Type"] = formHeader["Content-Type"]
	}
	return e.do(c, "POST", pathQuery, form, h)
}

// browser is a user agent with its own cookie jar; it follows no redirect.
type browser struct {
	e *env
	c *http.Client
}

func (e *env) browser() *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return &browser{e: e, c: &http.Client{Transport: e.ts.Client().Transport, Jar: jar, CheckRedirect: noRedirect, Timeout: 30 * time.Second}}
}

func (b *browser) get(pathQuery string) *response { return b.e.do(b.c, "GET", pathQuery, "", nil) }
func (b *browser) post(pathQuery, form string) *response {
	return b.e.post(b.c, pathQuery, form, nil)
}

var hiddenRe = regexp.MustCompile(`<input type="hidden" name="([a-z_0-9]+)" value="([^"]*)">`)

// hidden returns the hidden fields of the login or consent form in page.
func (e *env) hidden(page *response) url.Values {
	e.t.Helper()
	v := url.Values{}
	for _, m := range hiddenRe.FindAllStringSubmatch(string(page.body), -1) {
		v.Set(m[1], html.UnescapeString(m[2]))
	}
	if v.Get(core.FieldRequest) == "" || v.Get(core.FieldCSRF) == "" {
		e.t.Fatalf("no login/consent form in the page: %v", page)
	}
	e.remember("login handle", v.Get(core.FieldRequest))
	e.remember("csrf token", v.Get(core.FieldCSRF))
	return v
}

// login posts the demo user's credentials into the login page and returns
// the answer (the consent page, or the redirect when consent is
// remembered).
func (b *browser) login(page *response) *response {
	b.e.t.Helper()
	if page.status != 200 {
		b.e.t.Fatalf("expected the login page, got %v", page)
	}
	f := b.e.hidden(page)
	f.Set("username", demo.DemoUser)
	f.Set("password", demo.DemoPassword)
	return b.post("/oauth2/login", f.Encode())
}

// decide answers the consent page.
func (b *browser) decide(page *response, decision string) *response {
	b.e.t.Helper()
	f := b.e.hidden(page)
	f.Set(core.FieldDecision, decision)
	return b.post("/oauth2/login", f.Encode())
}

// approve logs in on the login page and approves consent if asked; it
// returns the redirect that ends the flow (303).
func (b *browser) approve(page *response) *response {
	b.e.t.Helper()
	r := b.login(page)
	if r.status == 200 && strings.Contains(string(r.body), `value="approve"`) {
		r = b.decide(r, "approve")
	}
	if r.status != 303 {
		b.e.t.Fatalf("the flow did not end in a redirect: %v", r)
	}
	if loc, err := url.Parse(r.header.Get("Location")); err == nil {
		b.e.remember("code", loc.Query().Get("code"))
	}
	return r
}

// authzQuery is an authorization request; empty values are left out.
func authzQuery(client, redirect, scope, state, verifier string) string {
	v := url.Values{"response_type": {"code"}, "client_id": {client}}
	if redirect != "" {
		v.Set("redirect_uri", redirect)
	}
	if scope != "" {
		v.Set("scope", scope)
	}
	if state != "" {
		v.Set("state", state)
	}
	if verifier != "" {
		v.Set("code_challenge", core.S256Challenge(verifier))
		v.Set("code_challenge_method", "S256")
	}
	return v.Encode()
}

func newVerifier(t testing.TB) string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// authCode is an issued code and what its redemption needs.
type authCode struct {
	client, code, verifier, redirect string
	res                              *response // the redirect that carried it
}

// newCode runs a whole authorization for client in a fresh browser (the
// demo user logs in and approves) with a new PKCE verifier; redirect ""
// leaves redirect_uri out. It returns the code.
func (e *env) newCode(client, redirect, scope string) authCode {
	e.t.Helper()
	v := newVerifier(e.t)
	e.remember("code verifier", v)
	b := e.browser()
	r := b.approve(b.get("/oauth2/authorize?" + authzQuery(client, redirect, scope, "st", v)))
	loc, err := url.Parse(r.header.Get("Location"))
	if err != nil || loc.Query().Get("code") == "" {
		e.t.Fatalf("no code in %v", r)
	}
	return authCode{client: client, code: loc.Query().Get("code"), verifier: v, redirect: redirect, res: r}
}

// clientAuth authenticates client on form: Basic for a confidential
// client, client_id in the body for a public one.
func (e *env) clientAuth(client string, form url.Values) http.Header {
	if client == "" {
		return nil
	}
	if sec := e.secret(client); sec != "" {
		return http.Header{"Authorization": {core.EncodeBasic(client, sec)}}
	}
	form.Set("client_id", client)
	return nil
}

// token sends a token request authenticated as client ("" for none).
func (e *env) token(client string, form url.Values) *response {
	e.t.Helper()
	hdr := e.clientAuth(client, form)
	return e.tokenRaw(form.Encode(), hdr)
}

func (e *env) tokenRaw(form string, hdr http.Header) *response {
	e.t.Helper()
	r := e.post(e.api, "/oauth2/token", form, hdr)
	if r.status == 200 {
		var m map[string]any
		if json.Unmarshal(r.body, &m) == nil {
			for _, k := range []string{"access_token", "refresh_token"} {
				if s, ok := m[k].(string); ok {
					e.remember(k, s)
				}
			}
		}
	}
	return r
}

func (e *env) redeemForm(c authCode) url.Values {
	f := url.Values{"grant_type": {"authorization_code"}, "code": {c.code}, "code_verifier": {c.verifier}}
	if c.redirect != "" {
		f.Set("redirect_uri", c.redirect)
	}
	return f
}

// redeem exchanges c as its own client would.
func (e *env) redeem(c authCode) *response {
	e.t.Helper()
	return e.token(c.client, e.redeemForm(c))
}

// tokenSet is what a code redemption gave.
type tokenSet struct {
	at, rt, scope string
	family        string // the grant id
}

// tokens runs a flow for client and redeems the code.
func (e *env) tokens(client, redirect, scope string) tokenSet {
	e.t.Helper()
	c := e.newCode(client, redirect, scope)
	r := e.redeem(c)
	m := wantTokenResponse(e.t, r, true)
	ts := tokenSet{at: m["access_token"].(string), rt: m["refresh_token"].(string), scope: m["scope"].(string)}
	g := e.grantOfCode(c.code)
	if g == nil {
		e.t.Fatalf("no grant row for the code")
	}
	ts.family = g.GrantID
	return ts
}

func (e *env) refresh(client, rt, scope string) *response {
	e.t.Helper()
	f := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
	if scope != "" {
		f.Set("scope", scope)
	}
	return e.token(client, f)
}

func (e *env) revoke(client, tok, hint string) *response {
	e.t.Helper()
	f := url.Values{"token": {tok}}
	if hint != "" {
		f.Set("token_type_hint", hint)
	}
	hdr := e.clientAuth(client, f)
	return e.post(e.api, "/oauth2/revoke", f.Encode(), hdr)
}

func (e *env) introspect(client, tok string) *response {
	e.t.Helper()
	f := url.Values{"token": {tok}}
	hdr := e.clientAuth(client, f)
	return e.post(e.api, "/oauth2/introspect", f.Encode(), hdr)
}

// resource calls the protected API with a Bearer token.
func (e *env) resource(path, at string) *response {
	e.t.Helper()
	return e.do(e.api, "GET", path, "", http.Header{"Authorization": {"Bearer " + at}})
}

func (e *env) metadata() map[string]any {
	e.t.Helper()
	r := e.do(e.api, "GET", "/.well-known/oauth-authorization-server", "", nil)
	if r.status != 200 {
		e.t.Fatalf("metadata: %v", r)
	}
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		e.t.Fatal(err)
	}
	return m
}

// ---- assertions on the wire ----

// descOK: error and error_description use %x20-21 / %x23-5B / %x5D-7E.
func descOK(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

func decodeJSON(t testing.TB, r *response) map[string]any {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q, want application/json: %v", ct, r)
	}
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body is not a JSON object: %v", r)
	}
	return m
}

func wantNoStore(t testing.TB, r *response) {
	t.Helper()
	if r.header.Get("Cache-Control") != "no-store" || r.header.Get("Pragma") != "no-cache" {
		t.Errorf("Cache-Control %q Pragma %q, want no-store and no-cache", r.header.Get("Cache-Control"), r.header.Get("Pragma"))
	}
}

// wantTokenError checks a token, revocation or introspection endpoint
// error: status, JSON {error, error_description?} in the RFC character
// set, no-store, and for 401 exactly the Basic challenge.
func (e *env) wantTokenError(t testing.TB, r *response, status int, code string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d %s: %v", r.status, status, code, r)
	}
	m := decodeJSON(t, r)
	wantNoStore(t, r)
	if m["error"] != code {
		t.Errorf("error %v, want %s: %v", m["error"], code, r)
	}
	for k, v := range m {
		s, ok := v.(string)
		if (k != "error" && k != "error_description") || !ok || !descOK(s) {
			t.Errorf("field %s=%v not allowed in an error body", k, v)
		}
	}
	challenge := r.header.Values("WWW-Authenticate")
	switch {
	case status == 401:
		if want := `Basic realm="` + e.cfg.Realm + `", charset="UTF-8"`; len(challenge) != 1 || challenge[0] != want {
			t.Errorf("WWW-Authenticate %q, want %q", challenge, want)
		}
	case challenge != nil:
		t.Errorf("unexpected WWW-Authenticate %q on %d", challenge, status)
	}
	if status == 429 || status == 503 {
		if r.header.Get("Retry-After") == "" {
			t.Errorf("%d without Retry-After", status)
		}
	}
}

// wantTokenResponse checks a successful token response and returns it.
func wantTokenResponse(t testing.TB, r *response, refresh bool) map[string]any {
	t.Helper()
	if r.status != 200 {
		t.Fatalf("token request: %v", r)
	}
	m := decodeJSON(t, r)
	wantNoStore(t, r)
	keys := []string{"access_token", "expires_in", "scope", "token_type"}
	if refresh {
		keys = append(keys, "refresh_token")
	}
	sort.Strings(keys)
	got := make([]string, 0, len(m))
	for k := range m {
		got = append(got, k)
	}
	sort.Strings(got)
	if !slices.Equal(got, keys) {
		t.Errorf("fields %v, want %v", got, keys)
	}
	if m["token_type"] != "Bearer" {
		t.Errorf("token_type %v", m["token_type"])
	}
	return m
}

// pageHeaders are what every page of the flow must carry.
var pageHeaders = map[string]string{
	"Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
	"X-Frame-Options":         "DENY",
	"Referrer-Policy":         "no-referrer",
	"Cache-Control":           "no-store",
	"Pragma":                  "no-cache",
	"X-Content-Type-Options":  "nosniff",
	"Content-Type":            "text/html; charset=utf-8",
}

func wantPageHeaders(t testing.TB, r *response) {
	t.Helper()
	for k, v := range pageHeaders {
		if got := r.header.Values(k); len(got) != 1 || got[0] != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
	if r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("Access-Control-Allow-Origin on a page")
	}
}

// wantErrorPage checks an HTML error page: status, page headers, and no
// redirect.
func wantErrorPage(t testing.TB, r *response, status int, code string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want an error page %d: %v", r.status, status, r)
	}
	if l := r.header.Values("Location"); l != nil {
		t.Errorf("error page with Location %q", l)
	}
	wantPageHeaders(t, r)
	if code != "" && !strings.Contains(string(r.body), "<code>"+code+"</code>") {
		t.Errorf("error page does not name %s: %s", code, r.body)
	}
}

// wantRedirect checks a 303 to base whose added query is exactly want
// (values "*" only need to be present, in the RFC character set), with
// the redirect headers. It returns the added parameters.
func wantRedirect(t testing.TB, r *response, base string, want map[string]string) url.Values {
	t.Helper()
	if r.status != 303 {
		t.Fatalf("status %d, want 303 to %s: %v", r.status, base, r)
	}
	loc := r.header.Get("Location")
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	if !strings.HasPrefix(loc, base+sep) {
		t.Fatalf("Location %q does not start with %q", loc, base+sep)
	}
	got, err := url.ParseQuery(loc[len(base)+1:])
	if err != nil {
		t.Fatalf("Location query %q: %v", loc, err)
	}
	for k, vs := range got {
		w, ok := want[k]
		switch {
		case !ok:
			t.Errorf("Location has %s=%q, not expected", k, vs)
		case len(vs) != 1:
			t.Errorf("Location repeats %s", k)
		case w == "*":
			if !descOK(vs[0]) {
				t.Errorf("%s=%q outside the RFC character set", k, vs[0])
			}
		case vs[0] != w:
			t.Errorf("Location %s=%q, want %q", k, vs[0], w)
		}
	}
	for k := range want {
		if _, ok := got[k]; !ok {
			t.Errorf("Location %q lacks %s", loc, k)
		}
	}
	if r.header.Get("Cache-Control") != "no-store" || r.header.Get("Referrer-Policy") != "no-referrer" {
		t.Errorf("redirect headers: Cache-Control %q Referrer-Policy %q", r.header.Get("Cache-Control"), r.header.Get("Referrer-Policy"))
	}
	return got
}

// wantCodeRedirect checks the success redirect: code, state, iss.
func (e *env) wantCodeRedirect(t testing.TB, r *response, base, state string) string {
	t.Helper()
	want := map[string]string{"code": "*", "iss": e.cfg.Issuer}
	if state != "" {
		want["state"] = state
	}
	q := wantRedirect(t, r, base, want)
	e.remember("code", q.Get("code"))
	return q.Get("code")
}

// wantErrorRedirect checks an error redirect: error, error_description,
// state, iss.
func (e *env) wantErrorRedirect(t testing.TB, r *response, base, code, state string) {
	t.Helper()
	want := map[string]string{"error": code, "error_description": "*", "iss": e.cfg.Issuer}
	if state != "" {
		want["state"] = state
	}
	wantRedirect(t, r, base, want)
}

// The resource server's refusals (RFC 6750 §3), byte for byte.
func (e *env) wantInvalidToken(t testing.TB, r *response) {
	t.Helper()
	const desc = "the access token is invalid, expired or revoked"
	if r.status != 401 {
		t.Fatalf("status %d, want 401 invalid_token: %v", r.status, r)
	}
	if got, want := r.header.Get("WWW-Authenticate"), `Bearer realm="`+e.cfg.Realm+`", error="invalid_token", error_description="`+desc+`"`; got != want {
		t.Errorf("WWW-Authenticate %q, want %q", got, want)
	}
	if got, want := string(r.body), `{"error":"invalid_token","error_description":"`+desc+`"}`; got != want {
		t.Errorf("body %s, want %s", got, want)
	}
	if r.header.Get("Content-Type") != "application/json" || r.header.Get("Cache-Control") != "no-store" {
		t.Errorf("headers %v", r.header)
	}
}

// wantMe checks a granted resource request.
func wantMe(t testing.TB, r *response, sub, client, scope string) {
	t.Helper()
	if r.status != 200 {
		t.Fatalf("resource: %v", r)
	}
	var m map[string]string
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatal(err)
	}
	if m["sub"] != sub || m["client_id"] != client || m["scope"] != scope {
		t.Errorf("resource answered %v, want sub=%s client_id=%s scope=%s", m, sub, client, scope)
	}
}

func (e *env) wantInactive(t testing.TB, r *response) {
	t.Helper()
	if r.status != 200 || string(r.body) != `{"active":false}` {
		t.Errorf("introspection %v, want exactly {\"active\":false}", r)
	}
}

// ---- the database ----

type grantRec struct {
	CodeSig             string     `gorm:"column:code_sig"`
	GrantID             string     `gorm:"column:grant_id"`
	ClientID            string     `gorm:"column:client_id"`
	UserID              string     `gorm:"column:user_id"`
	RedirectURI         string     `gorm:"column:redirect_uri"`
	Scope               string     `gorm:"column:scope"`
	CodeChallenge       string     `gorm:"column:code_challenge"`
	CodeChallengeMethod string     `gorm:"column:code_challenge_method"`
	CreatedAt           *time.Time `gorm:"column:created_at"`
	ExpiresAt           time.Time  `gorm:"column:expires_at"`
	UsedAt              *time.Time `gorm:"column:used_at"`
}

type refreshRec struct {
	Sig       string     `gorm:"column:sig"`
	FamilyID  string     `gorm:"column:family_id"`
	ClientID  string     `gorm:"column:client_id"`
	UserID    string     `gorm:"column:user_id"`
	Scope     string     `gorm:"column:scope"`
	CreatedAt *time.Time `gorm:"column:created_at"`
	ExpiresAt time.Time  `gorm:"column:expires_at"`
	RotatedAt *time.Time `gorm:"column:rotated_at"`
}

// sigOf is the signature the server stores for an opaque code or refresh
// token: HMAC-SHA256 of the whole token under a key derived with HKDF from
// the SignKey of the generation named in the token. Computing it here
// finds a token's row; R50 checks that it is what is stored.
func (e *env) sigOf(label, tok string) string {
	e.t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		e.t.Fatalf("not an opaque token: %d parts", len(parts))
	}
	k, ok := e.keys[parts[1]]
	if !ok {
		e.t.Fatalf("token of an unknown key generation %q", parts[1])
	}
	key, err := hkdf.Key(sha256.New, k.SignKey, nil, "oauth2kit/v1/"+label, 32)
	if err != nil {
		e.t.Fatal(err)
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(tok))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// grantOfCode is the row of a code, nil if there is none.
func (e *env) grantOfCode(code string) *grantRec {
	e.t.Helper()
	var rows []grantRec
	if err := e.db.Table("oauth2_grants").Where("code_sig = ?", e.sigOf("code/hmac", code)).Find(&rows).Error; err != nil {
		e.t.Fatal(err)
	}
	if len(rows) == 0 {
		return nil
	}
	return &rows[0]
}

// refreshRow is the row of a refresh token, nil if there is none.
func (e *env) refreshRow(rt string) *refreshRec {
	e.t.Helper()
	var rows []refreshRec
	if err := e.db.Table("oauth2_refresh_tokens").Where("sig = ?", e.sigOf("rt/hmac", rt)).Find(&rows).Error; err != nil {
		e.t.Fatal(err)
	}
	if len(rows) == 0 {
		return nil
	}
	return &rows[0]
}

func (e *env) familyRows(family string) []refreshRec {
	e.t.Helper()
	var rows []refreshRec
	if err := e.db.Table("oauth2_refresh_tokens").Where("family_id = ?", family).Order("created_at").Find(&rows).Error; err != nil {
		e.t.Fatal(err)
	}
	return rows
}

func (e *env) count(table string) int64 {
	e.t.Helper()
	var n int64
	if err := e.db.Table(table).Count(&n).Error; err != nil {
		e.t.Fatal(err)
	}
	return n
}

// counts is the number of rows of every table.
func (e *env) counts() map[string]int64 {
	m := map[string]int64{}
	for _, tb := range tables {
		m[tb] = e.count(tb)
	}
	return m
}

func (e *env) wantCounts(t testing.TB, before map[string]int64, what string) {
	t.Helper()
	if after := e.counts(); !mapsEqual(before, after) {
		t.Errorf("%s changed the tables: %v -> %v", what, before, after)
	}
}

func mapsEqual(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func (e *env) revokedFamilies() []string {
	e.t.Helper()
	var ids []string
	if err := e.db.Table("oauth2_revoked_families").Order("family_id").Pluck("family_id", &ids).Error; err != nil {
		e.t.Fatal(err)
	}
	return ids
}

func (e *env) isRevoked(family string) bool {
	return slices.Contains(e.revokedFamilies(), family)
}

// wantRTState checks a refresh token's row: present, and rotated or not.
func (e *env) wantRTState(t testing.TB, rt string, rotated bool) *refreshRec {
	t.Helper()
	row := e.refreshRow(rt)
	switch {
	case row == nil:
		t.Fatalf("no row for the refresh token")
	case rotated && row.RotatedAt == nil:
		t.Errorf("refresh token not marked rotated")
	case !rotated && row.RotatedAt != nil:
		t.Errorf("refresh token marked rotated at %v", row.RotatedAt)
	}
	return row
}

// dump returns every value of every column of every table as text.
func (e *env) dump() map[string][]string {
	e.t.Helper()
	out := map[string][]string{}
	for _, tb := range tables {
		rows, err := e.db.Table(tb).Rows()
		if err != nil {
			e.t.Fatal(err)
		}
		cols, err := rows.Columns()
		if err != nil {
			e.t.Fatal(err)
		}
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				e.t.Fatal(err)
			}
			for i, v := range vals {
				var s string
				switch v := v.(type) {
				case nil:
					continue
				case []byte:
					s = string(v)
				case string:
					s = v
				case time.Time:
					s = v.Format(time.RFC3339Nano)
				default:
					s = fmt.Sprint(v)
				}
				out[tb+"."+cols[i]] = append(out[tb+"."+cols[i]], s)
			}
		}
		if err := rows.Close(); err != nil {
			e.t.Fatal(err)
		}
	}
	return out
}

// window is the length of the substrings compared: a secret is "at rest"
// if any 16 consecutive characters of it are (96 bits of a base64url
// value: no false positive, and no truncated or partial copy escapes).
const window = 16

func windows(s string, into map[string]bool) {
	for i := 0; i+window <= len(s); i++ {
		into[s[i:i+window]] = true
	}
}

// leaked returns the kinds of secrets with a window in haystack.
func leaked(seen []secret, haystack map[string]bool) []string {
	var out []string
	for _, s := range seen {
		for i := 0; i+window <= len(s.value); i++ {
			if haystack[s.value[i:i+window]] {
				out = append(out, s.kind)
				break
			}
		}
	}
	return out
}

// checkNothingAtRest: no credential seen on the wire is in a table or in
// the server's log, and no stored signature is in the log.
func (e *env) checkNothingAtRest() {
	t := e.t
	e.mu.Lock()
	seen := append([]secret(nil), e.seen...)
	e.mu.Unlock()
	db := map[string]bool{}
	var sigs []secret
	for col, vals := range e.dump() {
		for _, v := range vals {
			windows(v, db)
			if strings.HasSuffix(col, "code_sig") || strings.HasSuffix(col, ".sig") || strings.HasSuffix(col, "secret_hash") {
				sigs = append(sigs, secret{col, v})
			}
		}
	}
	if l := leaked(seen, db); l != nil {
		t.Errorf("at rest in the database: %v", l)
	}
	lg := map[string]bool{}
	windows(e.log.String(), lg)
	if l := leaked(seen, lg); l != nil {
		t.Errorf("in the server's log: %v", l)
	}
	if l := leaked(sigs, lg); l != nil {
		t.Errorf("stored values in the server's log: %v", l)
	}
}

func (e *env) wantInsufficientScope(t testing.TB, r *response, scope string) {
	t.Helper()
	const desc = "the access token lacks the required scope"
	if r.status != 403 {
		t.Fatalf("status %d, want 403 insufficient_scope: %v", r.status, r)
	}
	if got, want := r.header.Get("WWW-Authenticate"), `Bearer realm="`+e.cfg.Realm+`", error="insufficient_scope", error_description="`+desc+`", scope="`+scope+`"`; got != want {
		t.Errorf("WWW-Authenticate %q, want %q", got, want)
	}
	if got, want := string(r.body), `{"error":"insufficient_scope","error_description":"`+desc+`","scope":"`+scope+`"}`; got != want {
		t.Errorf("body %s, want %s", got, want)
	}
}
