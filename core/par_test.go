package core_test

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/oauth2kit/oauth2kit/core"
	"github.com/oauth2kit/oauth2kit/core/memstore"
)

func parOn(c *core.Config) { c.PAR.Enabled = true }

// push sends form to the PAR endpoint with hdr (client authentication).
func (e *env) push(form url.Values, hdr http.Header) *fakeResp {
	return e.post("/oauth2/par", form, hdr)
}

func pushedCodeForm() url.Values {
	q := codeQuery("", confCB, "read", "pushed-state")
	q.Del("client_id")
	return q
}

func (e *env) requestURI(t *testing.T) string {
	t.Helper()
	w := e.push(pushedCodeForm(), basic("conf", e.secret))
	got := w.json(t)
	ru, _ := got["request_uri"].(string)
	if w.status != 201 || !strings.HasPrefix(ru, "urn:ietf:params:oauth:request_uri:") || got["expires_in"] != float64(60) {
		t.Fatalf("push: %d %s", w.status, w.body)
	}
	return ru
}

func TestPARFlow(t *testing.T) {
	e := newEnv(t, false, parOn)
	md := e.do(&fakeReq{method: "GET", path: "/.well-known/oauth-authorization-server"}).json(t)
	if md["pushed_authorization_request_endpoint"] != issuer+"/oauth2/par" || md["require_pushed_authorization_requests"] != false {
		t.Fatalf("metadata: %v", md)
	}
	ru := e.requestURI(t)
	// Parameters beside client_id and request_uri are ignored: the pushed
	// ones count (RFC 9126 §4).
	q := url.Values{"client_id": {"conf"}, "request_uri": {ru}, "scope": {"admin"}, "redirect_uri": {"https://evil.example/"}}
	page := e.authorize(q)
	if page.status != 200 {
		t.Fatalf("authorize: %d %s", page.status, page.body)
	}
	// A reload shows the page again: the request_uri is spent only by the
	// code.
	again := e.authorize(q)
	if again.status != 200 {
		t.Fatalf("reload: %d %s", again.status, again.body)
	}
	w := e.login(page, "alice", "pw")
	code := wantCodeRedirect(t, w, confCB, "pushed-state").Get("code")
	tok := e.post("/oauth2/token", url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {confCB},
		"code_verifier": {verifier}}, basic("conf", e.secret))
	if tok.status != 200 || tok.json(t)["scope"] != "read" {
		t.Fatalf("token: %d %s", tok.status, tok.body)
	}
	// The second tab's login finds the request used: no second code.
	w = e.login(again, "alice", "pw")
	if w.status != 400 || w.hdr.Get("Location") != "" || !strings.Contains(string(w.body), "used already") {
		t.Fatalf("second completion: %d %v %s", w.status, w.hdr, w.body)
	}
}

func TestPARRefusals(t *testing.T) {
	e := newEnv(t, false, parOn)
	ru := e.requestURI(t)
	for name, q := range map[string]url.Values{
		"another client":  {"client_id": {"pub"}, "request_uri": {ru}},
		"tampered":        {"client_id": {"conf"}, "request_uri": {ru[:len(ru)-2] + "AA"}},
		"not a PAR URI":   {"client_id": {"conf"}, "request_uri": {"https://evil.example/req"}},
		"no client_id":    {"request_uri": {ru}},
		"malformed":       {"client_id": {"conf"}, "request_uri": {"urn:ietf:params:oauth:request_uri:!!"}},
		"expired (below)": nil,
	} {
		if q == nil {
			continue
		}
		w := e.authorize(q)
		if w.status != 400 || w.hdr.Get("Location") != "" {
			t.Errorf("%s: %d %v", name, w.status, w.hdr)
		}
	}
	e.now = e.now.Add(61 * time.Second)
	if w := e.authorize(url.Values{"client_id": {"conf"}, "request_uri": {ru}}); w.status != 400 {
		t.Errorf("expired: %d", w.status)
	}

	// Pushing: authenticated, checked like authorize, answered in JSON.
	for name, tc := range map[string]struct {
		form   url.Values
		hdr    http.Header
		status int
		code   string
	}{
		"unauthenticated":  {pushedCodeForm(), nil, 401, core.ErrInvalidClient},
		"wrong secret":     {pushedCodeForm(), basic("conf", e.secret+"x"), 401, core.ErrInvalidClient},
		"request_uri":      {func() url.Values { f := pushedCodeForm(); f.Set("request_uri", "urn:x"); return f }(), basic("conf", e.secret), 400, core.ErrInvalidRequest},
		"bad redirect_uri": {func() url.Values { f := pushedCodeForm(); f.Set("redirect_uri", "https://evil.example/"); return f }(), basic("conf", e.secret), 400, core.ErrInvalidRequest},
		"bad scope":        {func() url.Values { f := pushedCodeForm(); f.Set("scope", "root"); return f }(), basic("conf", e.secret), 400, core.ErrInvalidScope},
		"no PKCE": {func() url.Values {
			f := pushedCodeForm()
			f.Del("code_challenge")
			f.Del("code_challenge_method")
			return f
		}(), basic("conf", e.secret), 400, core.ErrInvalidRequest},
		"response_type": {func() url.Values { f := pushedCodeForm(); f.Set("response_type", "token"); return f }(), basic("conf", e.secret), 400, core.ErrUnsupportedResponseType},
		"oversized":     {func() url.Values { f := pushedCodeForm(); f.Set("state", strings.Repeat("s", 3500)); return f }(), basic("conf", e.secret), 400, core.ErrInvalidRequest},
	} {
		w := e.push(tc.form, tc.hdr)
		if w.status != tc.status || w.json(t)["error"] != tc.code || w.hdr.Get("Location") != "" {
			t.Errorf("push, %s: %d %s", name, w.status, w.body)
		}
	}
	// A public client pushes with its client_id (RFC 9126 allows it).
	f := codeQuery("pub", publicCB, "read", "s")
	if w := e.push(f, nil); w.status != 201 {
		t.Errorf("public client: %d %s", w.status, w.body)
	}
	hdr := basic("conf", e.secret)
	hdr.Set("Content-Type", "application/x-www-form-urlencoded")
	if w := e.do(&fakeReq{method: "POST", path: "/oauth2/par", query: "client_secret=x", body: pushedCodeForm().Encode(), hdr: hdr}); w.status != 400 {
		t.Errorf("parameters in the URI: %d", w.status)
	}
}

func TestPARRequired(t *testing.T) {
	e := newEnv(t, false, parOn, func(c *core.Config) { c.PAR.Required = true })
	if md := e.do(&fakeReq{method: "GET", path: "/.well-known/oauth-authorization-server"}).json(t); md["require_pushed_authorization_requests"] != true {
		t.Fatalf("metadata: %v", md)
	}
	if w := e.authorize(codeQuery("conf", confCB, "read", "s")); w.status != 400 || w.hdr.Get("Location") != "" {
		t.Fatalf("unpushed request: %d %v", w.status, w.hdr)
	}
	if w := e.authorize(url.Values{"client_id": {"conf"}, "request_uri": {e.requestURI(t)}}); w.status != 200 {
		t.Fatalf("pushed request: %d %s", w.status, w.body)
	}

	// Per client.
	e = newEnv(t, false, parOn)
	c, _ := e.store.GetClient(t.Context(), "conf")
	c.RequirePAR = true
	_ = e.store.SaveClient(t.Context(), c)
	if w := e.authorize(codeQuery("conf", confCB, "read", "s")); w.status != 400 {
		t.Fatalf("client requiring PAR: %d", w.status)
	}
	if w := e.authorize(codeQuery("pub", publicCB, "read", "s")); w.status != 200 {
		t.Fatalf("another client: %d", w.status)
	}
}

func TestPARConfig(t *testing.T) {
	var srv *core.Server
	cfg := core.Config{Issuer: issuer, Keys: core.Keys{CryptKey: make([]byte, 32), SignKey: make([]byte, 32)}, PAR: core.PAR{Enabled: true}}
	if _, err := core.New(cfg, baseOnlyStore{memstore.New()}, &testAuth{srv: &srv}); !errors.Is(err, core.ErrNoCapability) {
		t.Fatalf("without a replay cache: %v", err)
	}
	cfg.PAR.Lifetime = 11 * time.Minute
	if _, err := core.New(cfg, memstore.New(), &testAuth{srv: &srv}); err == nil {
		t.Fatal("a request_uri lifetime over 10 minutes accepted")
	}
}
