package core_test

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/oauth2kit/oauth2kit/core"
	"github.com/oauth2kit/oauth2kit/core/memstore"
)

// fapiEnv is newPKEnv with PAR and DPoP on, and "pk" under the FAPI 2.0
// profile.
func fapiEnv(t *testing.T, mod ...func(*core.Config)) *pkEnv {
	t.Helper()
	p := newPKEnv(t, false, append([]func(*core.Config){parOn, dpopOn, func(c *core.Config) {
		c.OIDC.SigningKeys = oidcKeys(t) // ES256 and EdDSA: no RS256 key
		c.Scopes = append(c.Scopes, core.ScopeOpenID)
	}}, mod...)...)
	c, _ := p.store.GetClient(t.Context(), "pk")
	c.Profile = core.ProfileFAPI2
	_ = p.store.SaveClient(t.Context(), c)
	return p
}

// fapiPush pushes an authorization request for "pk", authenticated by
// assertion, with form's changes.
func (p *pkEnv) fapiPush(mod func(url.Values)) *fakeResp {
	f := codeQuery("", pkCB, "openid read", "fs")
	f.Del("client_id")
	if mod != nil {
		mod(f)
	}
	return p.post("/oauth2/par", assertForm(f, p.es.assertion(p.t, "pk", p.now, nil)), nil)
}

// Each rule of the profile refuses a violating request with its error
// (SECURITY.md R72), and a conforming flow works end to end.
func TestFAPI2Profile(t *testing.T) {
	p := fapiEnv(t, func(c *core.Config) { c.Lifetimes.Code = 10 * time.Minute }) // the server's; FAPI clients get 60 s

	// Authorization requests must be pushed.
	if w := p.authorize(codeQuery("pk", pkCB, "read", "s")); w.status != 400 || w.hdr.Get("Location") != "" || !strings.Contains(string(w.body), "push") {
		t.Fatalf("unpushed: %d %v %s", w.status, w.hdr, w.body)
	}
	for name, tc := range map[string]struct {
		mod  func(url.Values)
		code string
	}{
		"no redirect_uri": {func(f url.Values) { f.Del("redirect_uri") }, core.ErrInvalidRequest},
		"long nonce":      {func(f url.Values) { f.Set("nonce", strings.Repeat("n", 65)) }, core.ErrInvalidRequest},
		"no PKCE":         {func(f url.Values) { f.Del("code_challenge"); f.Del("code_challenge_method") }, core.ErrInvalidRequest},
	} {
		if w := p.fapiPush(tc.mod); w.status != 400 || w.json(t)["error"] != tc.code {
			t.Errorf("push, %s: %d %s", name, w.status, w.body)
		}
	}
	// Pushing with a secret is not FAPI: a secret client under the profile.
	c, _ := p.store.GetClient(t.Context(), "conf")
	c.Profile = core.ProfileFAPI2
	_ = p.store.SaveClient(t.Context(), c)
	f := codeQuery("", confCB, "read", "s")
	f.Del("client_id")
	if w := p.post("/oauth2/par", f, basic("conf", p.secret)); w.status != 401 || w.json(t)["error"] != core.ErrInvalidClient {
		t.Errorf("push with a secret: %d %s", w.status, w.body)
	}
	if w := p.post("/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, basic("conf", p.secret)); w.status != 401 {
		t.Errorf("token with a secret: %d %s", w.status, w.body)
	}

	// RS256 is not FAPI: a client assertion signed with it is refused.
	if w := p.cc(p.rs.assertion(t, "pk", p.now, nil)); w.status != 400 && w.status != 401 {
		t.Errorf("RS256 assertion: %d %s", w.status, w.body)
	}
	// Tokens must be sender-constrained.
	if w := p.cc(p.es.assertion(t, "pk", p.now, nil)); w.status != 400 || w.json(t)["error"] != core.ErrInvalidDPoPProof {
		t.Errorf("unbound token: %d %s", w.status, w.body)
	}
	// An RS256 DPoP proof is not FAPI either.
	rsProof := &dpopKey{t: t, priv: rsaTestKey(t), alg: "RS256"}
	form := assertForm(url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}, p.es.assertion(t, "pk", p.now, nil))
	if w := p.post("/oauth2/token", form, http.Header{"Dpop": {rsProof.proof(p.now, "POST", tokenURL)}}); w.status != 400 || w.json(t)["error"] != core.ErrInvalidDPoPProof {
		t.Errorf("RS256 proof: %d %s", w.status, w.body)
	}

	// The conforming flow: PAR, login, a DPoP-bound code exchange with an
	// ES256 id_token, and a code that lives 60 s.
	w := p.fapiPush(nil)
	ru, _ := w.json(t)["request_uri"].(string)
	if w.status != 201 || ru == "" {
		t.Fatalf("push: %d %s", w.status, w.body)
	}
	page := p.authorize(url.Values{"client_id": {"pk"}, "request_uri": {ru}})
	code := wantCodeRedirect(t, p.login(page, "alice", "pw"), pkCB, "fs").Get("code")
	key := newDPoPKey(t)
	exchange := func(code string) *fakeResp {
		form := assertForm(pkCodeForm(code, pkCB), p.es.assertion(t, "pk", p.now, nil))
		return p.post("/oauth2/token", form, http.Header{"Dpop": {key.proof(p.now, "POST", tokenURL)}})
	}
	w = exchange(code)
	got := w.json(t)
	if w.status != 200 || got["token_type"] != "DPoP" {
		t.Fatalf("exchange: %d %s", w.status, w.body)
	}
	idt, _ := got["id_token"].(string)
	if hdr := strings.Split(idt, ".")[0]; !strings.Contains(string(mustB64(t, hdr)), `"ES256"`) {
		t.Errorf("id_token header %s: want ES256 (RS256 is not FAPI)", mustB64(t, hdr))
	}
	// A code older than 60 s is dead, whatever Lifetimes.Code says.
	w = p.fapiPush(nil)
	ru = w.json(t)["request_uri"].(string)
	page = p.authorize(url.Values{"client_id": {"pk"}, "request_uri": {ru}})
	code = wantCodeRedirect(t, p.login(page, "alice", "pw"), pkCB, "fs").Get("code")
	p.now = p.now.Add(61 * time.Second)
	if w := exchange(code); w.status != 400 || w.json(t)["error"] != core.ErrInvalidGrant {
		t.Errorf("a 61 s old code: %d %s", w.status, w.body)
	}
}

func TestFAPI2ServerProfileConfig(t *testing.T) {
	for name, mod := range map[string]func(*core.Config){
		"without PAR":       func(c *core.Config) { c.PAR.Enabled = false },
		"without DPoP":      func(c *core.Config) { c.DPoP.Enabled = false },
		"long codes":        func(c *core.Config) { c.Lifetimes.Code = 5 * time.Minute },
		"endpoint audience": func(c *core.Config) { c.ClientAssertions.AcceptTokenEndpointAudience = true },
	} {
		cfg := core.Config{Issuer: issuer, Keys: core.Keys{CryptKey: make([]byte, 32), SignKey: make([]byte, 32)},
			Profile: core.ProfileFAPI2, PAR: core.PAR{Enabled: true}, DPoP: core.DPoP{Enabled: true}, Lifetimes: core.Lifetimes{Code: time.Minute}}
		mod(&cfg)
		var srv *core.Server
		if _, err := core.New(cfg, memstore.New(), &testAuth{srv: &srv}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func mustB64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A server-wide profile advertises what it allows: pushed requests
// required, no secrets or public clients, no RS256.
func TestFAPI2ServerMetadata(t *testing.T) {
	e := newEnv(t, false, parOn, dpopOn, func(c *core.Config) {
		c.Profile = core.ProfileFAPI2
		c.Lifetimes.Code = time.Minute
		c.OIDC.SigningKeys = oidcKeys(t)
		c.Scopes = append(c.Scopes, core.ScopeOpenID)
	})
	md := e.do(&fakeReq{method: "GET", path: "/.well-known/oauth-authorization-server"}).json(t)
	if md["require_pushed_authorization_requests"] != true {
		t.Errorf("require_pushed_authorization_requests %v", md["require_pushed_authorization_requests"])
	}
	for _, k := range []string{"token_endpoint_auth_methods_supported", "dpop_signing_alg_values_supported", "token_endpoint_auth_signing_alg_values_supported", "id_token_signing_alg_values_supported"} {
		for _, v := range md[k].([]any) {
			if s := v.(string); strings.HasPrefix(s, "client_secret") || s == "none" || s == "RS256" {
				t.Errorf("%s advertises %s", k, s)
			}
		}
	}
	// A static secret client cannot authorize (it is not FAPI).
	if w := e.authorize(codeQuery("pub", publicCB, "read", "s")); w.status != 400 || w.hdr.Get("Location") != "" {
		t.Errorf("public client under the server profile: %d %v", w.status, w.hdr)
	}
}
