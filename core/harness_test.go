package core_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/oauth2kit/oauth2kit/core"
	"github.com/oauth2kit/oauth2kit/core/memstore"
)

// fakeReq is a core.Request without any HTTP server.
type fakeReq struct {
	method, path, query string
	hdr                 http.Header
	body                string
	remote              string
	tls                 bool
	ctx                 context.Context
}

func (r *fakeReq) Context() context.Context {
	if r.ctx != nil {
		return r.ctx
	}
	return context.Background()
}
func (r *fakeReq) Method() string              { return r.method }
func (r *fakeReq) Path() string                { return r.path }
func (r *fakeReq) RawQuery() string            { return r.query }
func (r *fakeReq) Header(name string) []string { return r.hdr.Values(name) }
func (r *fakeReq) Body() io.Reader             { return strings.NewReader(r.body) }
func (r *fakeReq) RemoteAddr() string {
	if r.remote == "" {
		return "192.0.2.1:1234"
	}
	return r.remote
}
func (r *fakeReq) TLS() bool { return r.tls }

// fakeResp records what the server sent.
type fakeResp struct {
	status int
	hdr    http.Header
	body   []byte
	sends  int
}

func newResp() *fakeResp                         { return &fakeResp{hdr: http.Header{}} }
func (w *fakeResp) SetHeader(name, value string) { w.hdr.Set(name, value) }
func (w *fakeResp) AddHeader(name, value string) { w.hdr.Add(name, value) }
func (w *fakeResp) Send(status int, b []byte) error {
	w.status, w.body = status, b
	w.sends++
	return nil
}

func (w *fakeResp) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(w.body, &m); err != nil {
		t.Fatalf("body %q is not JSON: %v", w.body, err)
	}
	return m
}

// testAuth logs in user "alice" with password "pw"; asks for consent when
// consent is set.
type testAuth struct {
	srv **core.Server
}

func (a *testAuth) Login(w core.Responder, r core.Request, ar *core.AuthorizationRequest) {
	w.SetHeader("Content-Type", "text/html; charset=utf-8")
	_ = w.Send(200, []byte(`<form method="post" action="`+ar.ProcessLoginURL+`">`+ar.HiddenFields()+`</form>`))
}

func (a *testAuth) ProcessLogin(w core.Responder, r core.Request, ar *core.AuthorizationRequest) {
	if ar.Form.Get("username") != "alice" || ar.Form.Get("password") != "pw" {
		w.SetHeader("Content-Type", "text/html; charset=utf-8")
		_ = w.Send(200, []byte(`<p>wrong username or password</p><form>`+ar.HiddenFields()+`</form>`))
		return
	}
	(*a.srv).SendGrant(w, r, ar, "alice", `{"plan":"gold"}`)
}

type consentAuth struct{ testAuth }

func (a *consentAuth) Consent(w core.Responder, r core.Request, ar *core.AuthorizationRequest) {
	w.SetHeader("Content-Type", "text/html; charset=utf-8")
	_ = w.Send(200, []byte(`<p>`+ar.ClientName+` wants `+ar.Scope+`</p><form>`+ar.HiddenFields()+`</form>`))
}

type env struct {
	t      *testing.T
	srv    *core.Server
	store  *memstore.Store
	now    time.Time
	secret string // of "conf"
	cookie string
}

const (
	issuer   = "https://as.example.com"
	confCB   = "https://client.example.com/cb"
	publicCB = "http://127.0.0.1/cb"
	verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
)

func newEnv(t *testing.T, consent bool, mod ...func(*core.Config)) *env {
	t.Helper()
	e := &env{t: t, store: memstore.New(), now: time.Unix(1_800_000_000, 0)}
	cfg := core.Config{
		Issuer: issuer,
		Keys:   core.Keys{CryptKey: []byte("0123456789abcdef0123456789abcdef"), SignKey: []byte("fedcba9876543210fedcba9876543210")},

		Scopes: []string{"read", "write", "admin"},
		Now:    func() time.Time { return e.now },
		Logger: slog.New(slog.DiscardHandler),
	}
	for _, m := range mod {
		m(&cfg)
	}
	var auth core.Authenticator
	ta := testAuth{srv: &e.srv}
	if consent {
		auth = &consentAuth{ta}
	} else {
		auth = &ta
	}
	// The store sweeps expired state by the same clock as the server.
	e.store.SetClock(func() time.Time { return e.now })
	srv, err := core.New(cfg, e.store, auth)
	if err != nil {
		t.Fatal(err)
	}
	e.srv = srv
	conf, secret, err := core.NewClient(core.ClientSpec{ID: "conf", Name: "Conf App", RedirectURIs: []string{confCB},
		GrantTypes: []string{"authorization_code", "refresh_token", "client_credentials"}})
	if err != nil {
		t.Fatal(err)
	}
	e.secret = secret
	e.store.AddClient(conf)
	pub, _, err := core.NewClient(core.ClientSpec{ID: "pub", Name: "Public App", RedirectURIs: []string{publicCB, "com.example.app:/cb"}, Public: true})
	if err != nil {
		t.Fatal(err)
	}
	e.store.AddClient(pub)
	return e
}

func (e *env) do(r *fakeReq) *fakeResp {
	if r.hdr == nil {
		r.hdr = http.Header{}
	}
	if e.cookie != "" && r.hdr.Get("Cookie") == "" {
		r.hdr.Set("Cookie", e.cookie)
	}
	w := newResp()
	if !e.srv.Handle(w, r) {
		e.t.Fatalf("path %s not handled", r.path)
	}
	if w.sends != 1 {
		e.t.Fatalf("%s %s: Send called %d times", r.method, r.path, w.sends)
	}
	// The browser keeps every cookie by name: the session cookie of a
	// pending request and, with OIDC, the login session cookie.
	for _, sc := range w.hdr.Values("Set-Cookie") {
		nv := strings.Split(sc, ";")[0]
		name, _, _ := strings.Cut(nv, "=")
		kept := []string{}
		for _, c := range strings.Split(e.cookie, "; ") {
			if n, _, _ := strings.Cut(c, "="); c != "" && n != name {
				kept = append(kept, c)
			}
		}
		e.cookie = strings.Join(append(kept, nv), "; ")
	}
	return w
}

func (e *env) authorize(q url.Values) *fakeResp {
	return e.do(&fakeReq{method: "GET", path: "/oauth2/authorize", query: q.Encode()})
}

var hiddenRe = regexp.MustCompile(`name="(oauth2kit_request|csrf_token)" value="([^"]*)"`)

func hidden(t *testing.T, page []byte) url.Values {
	t.Helper()
	v := url.Values{}
	for _, m := range hiddenRe.FindAllSubmatch(page, -1) {
		v.Set(string(m[1]), strings.ReplaceAll(string(m[2]), "&#43;", "+"))
	}
	if v.Get(core.FieldRequest) == "" {
		t.Fatalf("no hidden fields in %s", page)
	}
	return v
}

func (e *env) post(path string, form url.Values, hdr http.Header) *fakeResp {
	if hdr == nil {
		hdr = http.Header{}
	}
	if hdr.Get("Content-Type") == "" {
		hdr.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	return e.do(&fakeReq{method: "POST", path: path, body: form.Encode(), hdr: hdr})
}

// login posts the login form of an authorize page.
func (e *env) login(page *fakeResp, user, pw string) *fakeResp {
	f := hidden(e.t, page.body)
	f.Set("username", user)
	f.Set("password", pw)
	return e.post("/oauth2/login", f, nil)
}

func codeQuery(client, redirect, scope, state string) url.Values {
	q := url.Values{"response_type": {"code"}, "client_id": {client}, "state": {state},
		"code_challenge": {core.S256Challenge(verifier)}, "code_challenge_method": {"S256"}}
	if redirect != "" {
		q.Set("redirect_uri", redirect)
	}
	if scope != "" {
		q.Set("scope", scope)
	}
	return q
}

// code runs authorize + login for the confidential client and returns the
// code.
func (e *env) code(scope string) string {
	e.t.Helper()
	page := e.authorize(codeQuery("conf", confCB, scope, "xyz"))
	if page.status != 200 {
		e.t.Fatalf("authorize: %d %s %v", page.status, page.body, page.hdr)
	}
	w := e.login(page, "alice", "pw")
	if w.status == 200 {
		f := hidden(e.t, w.body)
		f.Set("decision", "approve")
		w = e.post("/oauth2/login", f, nil)
	}
	if w.status != 303 {
		e.t.Fatalf("login: %d %s", w.status, w.body)
	}
	loc, _ := url.Parse(w.hdr.Get("Location"))
	return loc.Query().Get("code")
}

func basic(id, secret string) http.Header {
	return http.Header{"Authorization": {core.EncodeBasic(id, secret)}}
}

func TestSmokeFlow(t *testing.T) {
	for _, consent := range []bool{false, true} {
		e := newEnv(t, consent)
		code := e.code("read write")
		w := e.post("/oauth2/token", url.Values{"grant_type": {"authorization_code"}, "code": {code},
			"redirect_uri": {confCB}, "code_verifier": {verifier}}, basic("conf", e.secret))
		if w.status != 200 {
			t.Fatalf("token: %d %s", w.status, w.body)
		}
		m := w.json(t)
		at, rt := m["access_token"].(string), m["refresh_token"].(string)
		info, err := e.srv.CheckToken(context.Background(), at)
		if err != nil || info.UserID != "alice" || info.Scope != "read write" || info.AdditionalInfo != `{"plan":"gold"}` {
			t.Fatalf("check: %+v %v", info, err)
		}
		w = e.post("/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "scope": {"read"}}, basic("conf", e.secret))
		if w.status != 200 || w.json(t)["scope"] != "read" {
			t.Fatalf("refresh: %d %s", w.status, w.body)
		}
	}
}
