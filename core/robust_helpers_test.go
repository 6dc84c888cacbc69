package core_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/oauth2kit/oauth2kit/core"
	"github.com/oauth2kit/oauth2kit/core/memstore"
)

// rkit is env for any testing.TB (benchmarks and fuzz targets too). Its
// store sweeps by the same fixed clock as the server, so nothing it writes
// is dropped by a sweep running on the real clock.
type rkit struct {
	tb     testing.TB
	srv    *core.Server
	store  *memstore.Store
	now    time.Time
	secret string // of "conf"
	cookie string
}

func newRKit(tb testing.TB, mod ...func(*core.Config)) *rkit {
	tb.Helper()
	k := &rkit{tb: tb, store: memstore.New(), now: time.Unix(1_800_000_000, 0)}
	k.store.SetClock(func() time.Time { return k.now })
	cfg := core.Config{
		Issuer: issuer,
		Keys:   core.Keys{CryptKey: []byte("0123456789abcdef0123456789abcdef"), SignKey: []byte("fedcba9876543210fedcba9876543210")},

		Scopes: []string{"read", "write", "admin"},
		Now:    func() time.Time { return k.now },
		// Keep throttling out of the way of tests that fail on purpose
		// many times; TestRobustThrottle checks it separately.
		AuthThrottle: core.Throttle{PerAccount: 1 << 30, PerAddr: 1 << 30},

		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	for _, m := range mod {
		m(&cfg)
	}
	srv, err := core.New(cfg, k.store, &testAuth{srv: &k.srv})
	if err != nil {
		tb.Fatal(err)
	}
	k.srv = srv
	conf, secret, err := core.NewClient(core.ClientSpec{ID: "conf", Name: "Conf App", RedirectURIs: []string{confCB},
		GrantTypes: []string{"authorization_code", "refresh_token", "client_credentials"}})
	if err != nil {
		tb.Fatal(err)
	}
	k.secret = secret
	k.store.AddClient(conf)
	pub, _, err := core.NewClient(core.ClientSpec{ID: "pub", Name: "Public App", RedirectURIs: []string{publicCB, "com.example.app:/cb"}, Public: true})
	if err != nil {
		tb.Fatal(err)
	}
	k.store.AddClient(pub)
	return k
}

// with returns a view of k that reports to tb (a fuzz target's *testing.T)
// and shares its server and store.
func (k *rkit) with(tb testing.TB) *rkit {
	cp := *k
	cp.tb = tb
	return &cp
}

// do sends r through Handle; the server must answer exactly once.
func (k *rkit) do(r *fakeReq) *fakeResp {
	if r.hdr == nil {
		r.hdr = http.Header{}
	}
	if k.cookie != "" && r.hdr.Get("Cookie") == "" {
		r.hdr.Set("Cookie", k.cookie)
	}
	w := newResp()
	if !k.srv.Handle(w, r) {
		k.tb.Fatalf("path %s not handled", r.path)
	}
	if w.sends != 1 {
		k.tb.Fatalf("%s %s: Send called %d times", r.method, r.path, w.sends)
	}
	if sc := w.hdr.Get("Set-Cookie"); sc != "" {
		k.cookie = strings.Split(sc, ";")[0]
	}
	return w
}

func (k *rkit) post(path, body string, hdr http.Header) *fakeResp {
	if hdr == nil {
		hdr = http.Header{}
	}
	if _, ok := hdr["Content-Type"]; !ok {
		hdr.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	return k.do(&fakeReq{method: "POST", path: path, body: body, hdr: hdr})
}

// mustClient returns a registered client.
func (k *rkit) mustClient(id string) *core.Client {
	k.tb.Helper()
	c, err := k.store.GetClient(rctx, id)
	if err != nil {
		k.tb.Fatalf("GetClient(%q): %v", id, err)
	}
	return c
}

// hiddenFields reads the hidden fields of a login or consent page.
func (k *rkit) hiddenFields(page []byte) url.Values {
	k.tb.Helper()
	v := url.Values{}
	for _, m := range hiddenRe.FindAllSubmatch(page, -1) {
		v.Set(string(m[1]), strings.ReplaceAll(string(m[2]), "&#43;", "+"))
	}
	if v.Get(core.FieldRequest) == "" {
		k.tb.Fatalf("no hidden fields in %s", page)
	}
	return v
}

// loginPage runs the authorization request of "conf" up to the login page.
func (k *rkit) loginPage(scope string) *fakeResp {
	k.tb.Helper()
	page := k.do(&fakeReq{method: "GET", path: "/oauth2/authorize", query: codeQuery("conf", confCB, scope, "xyz").Encode()})
	if page.status != 200 {
		k.tb.Fatalf("authorize: %d %s", page.status, page.body)
	}
	return page
}

// code runs authorize + login for "conf" and returns the code.
func (k *rkit) code(scope string) string {
	k.tb.Helper()
	f := k.hiddenFields(k.loginPage(scope).body)
	f.Set("username", "alice")
	f.Set("password", "pw")
	w := k.post("/oauth2/login", f.Encode(), nil)
	if w.status != 303 {
		k.tb.Fatalf("login: %d %s", w.status, w.body)
	}
	loc, err := url.Parse(w.hdr.Get("Location"))
	if err != nil {
		k.tb.Fatal(err)
	}
	return loc.Query().Get("code")
}

func (k *rkit) basic() http.Header { return basic("conf", k.secret) }

// rExchangeBody is the token request body that redeems code for "conf".
func rExchangeBody(code string) string {
	return url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {confCB}, "code_verifier": {verifier}}.Encode()
}

// tokens redeems a fresh code and returns the access and refresh tokens.
func (k *rkit) tokens(scope string) (at, rt string) {
	k.tb.Helper()
	w := k.post("/oauth2/token", rExchangeBody(k.code(scope)), k.basic())
	if w.status != 200 {
		k.tb.Fatalf("token: %d %s", w.status, w.body)
	}
	var m struct{ AccessToken, RefreshToken string }
	if err := json.Unmarshal(w.body, &struct {
		A *string `json:"access_token"`
		R *string `json:"refresh_token"`
	}{&m.AccessToken, &m.RefreshToken}); err != nil || m.AccessToken == "" || m.RefreshToken == "" {
		k.tb.Fatalf("token response %s: %v", w.body, err)
	}
	return m.AccessToken, m.RefreshToken
}

// ccToken returns a client_credentials access token of "conf".
func (k *rkit) ccToken(scope string) string {
	k.tb.Helper()
	w := k.post("/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "scope": {scope}}.Encode(), k.basic())
	if w.status != 200 {
		k.tb.Fatalf("client_credentials: %d %s", w.status, w.body)
	}
	return rJSONField(w.body, "access_token")
}

// accessTokens returns access tokens whose encodings cover every length
// modulo 4 that the format produces (base64 quirks depend on it).
func (k *rkit) accessTokens() []string {
	k.tb.Helper()
	seen := map[int]bool{}
	var out []string
	add := func(at string) {
		if !seen[len(at)%4] {
			seen[len(at)%4] = true
			out = append(out, at)
		}
	}
	for _, sc := range []string{"read", "write", "admin read", "admin write"} {
		at, _ := k.tokens(sc)
		add(at)
		add(k.ccToken(sc))
	}
	if len(out) < 3 {
		k.tb.Fatalf("access tokens cover only %d lengths modulo 4", len(out))
	}
	return out
}

// rJSONField extracts a string field of a flat JSON object without a full
// decode (benchmarks chain refresh tokens through it).
func rJSONField(body []byte, name string) string {
	key := []byte(`"` + name + `":"`)
	i := bytes.Index(body, key)
	if i < 0 {
		return ""
	}
	rest := body[i+len(key):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return ""
	}
	return string(rest[:j])
}

var rctx = context.Background()
