package core_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/oauth2kit/oauth2kit/core"
	"github.com/oauth2kit/oauth2kit/core/memstore"
)

type noAuth struct{}

func (noAuth) Login(core.Responder, core.Request, *core.AuthorizationRequest)        {}
func (noAuth) ProcessLogin(core.Responder, core.Request, *core.AuthorizationRequest) {}

func oidcKeys(t testing.TB) []core.SigningKey {
	t.Helper()
	ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, dk, _ := ed25519.GenerateKey(rand.Reader)
	return []core.SigningKey{{Alg: core.AlgES256, Signer: ek}, {ID: "ed-1", Alg: core.AlgEdDSA, Signer: dk}}
}

func oidcConfig(t testing.TB, keys []core.SigningKey) core.Config {
	return core.Config{
		Issuer: "https://as.example.com",
		Keys:   core.Keys{CryptKey: []byte("0123456789abcdef0123456789abcdef"), SignKey: []byte("fedcba9876543210fedcba9876543210")},
		OIDC:   core.OIDC{SigningKeys: keys},
	}
}

// New refuses signing sets that cannot work, naming the field.
func TestOIDCConfigValidation(t *testing.T) {
	ok := oidcKeys(t)
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	cases := map[string]func(c *core.Config){
		"no signing state": func(c *core.Config) {
			c.OIDC.SigningKeys = []core.SigningKey{{Alg: core.AlgES256, Signer: ok[0].Signer, State: core.KeyPublished}}
		},
		"alg/key mismatch": func(c *core.Config) {
			c.OIDC.SigningKeys = []core.SigningKey{{Alg: core.AlgRS256, Signer: ok[0].Signer}}
		},
		"RSA-1024":  func(c *core.Config) { c.OIDC.SigningKeys = []core.SigningKey{{Alg: core.AlgRS256, Signer: small}} },
		"HS256":     func(c *core.Config) { c.OIDC.SigningKeys = []core.SigningKey{{Alg: "HS256", Signer: ok[0].Signer}} },
		"no signer": func(c *core.Config) { c.OIDC.SigningKeys = []core.SigningKey{{Alg: core.AlgES256}} },
		"duplicate kid": func(c *core.Config) {
			c.OIDC.SigningKeys = []core.SigningKey{{ID: "a", Alg: core.AlgES256, Signer: ok[0].Signer}, {ID: "a", Alg: core.AlgEdDSA, Signer: ok[1].Signer}}
		},
		"kid with a space": func(c *core.Config) {
			c.OIDC.SigningKeys = []core.SigningKey{{ID: "a b", Alg: core.AlgES256, Signer: ok[0].Signer}}
		},
		"short publish-ahead":   func(c *core.Config) { c.OIDC.PublishAhead = time.Second },
		"jwt without keys":      func(c *core.Config) { c.OIDC.SigningKeys = nil; c.AccessTokenFormat = core.FormatJWT },
		"unknown format":        func(c *core.Config) { c.AccessTokenFormat = "paseto" },
		"AT alg without key":    func(c *core.Config) { c.OIDC.AccessTokenAlg = core.AlgRS256 },
		"scopes without openid": func(c *core.Config) { c.Scopes = []string{"read"} },
	}
	for name, mod := range cases {
		c := oidcConfig(t, ok)
		mod(&c)
		if _, err := core.New(c, memstore.New(), noAuth{}); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
	if _, err := core.New(oidcConfig(t, ok), memstore.New(), noAuth{}); err != nil {
		t.Fatalf("a valid set: %v", err)
	}
}

// A printed SigningKey or Config shows no private key material.
func TestSigningKeyRedacted(t *testing.T) {
	ks := oidcKeys(t)
	raw, err := ks[0].Signer.(*ecdsa.PrivateKey).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	d := new(big.Int).SetBytes(raw).String()
	for _, s := range []string{fmt.Sprint(ks[0]), fmt.Sprintf("%+v", ks[0]), fmt.Sprintf("%#v", ks[0]), fmt.Sprintf("%v", oidcConfig(t, ks))} {
		if strings.Contains(s, d) {
			t.Fatalf("private key printed: %s", s)
		}
	}
}

// The thumbprint kid is filled in and kept through SigningKeys.
func TestSigningKeysThumbprintKID(t *testing.T) {
	s, err := core.New(oidcConfig(t, oidcKeys(t)), memstore.New(), noAuth{})
	if err != nil {
		t.Fatal(err)
	}
	got := s.SigningKeys()
	if len(got) != 2 || len(got[0].ID) != 43 || got[1].ID != "ed-1" {
		t.Fatalf("kids %q %q: want a 43-character RFC 7638 thumbprint and the given one", got[0].ID, got[1].ID)
	}
	if err := s.SetSigningKeys(got[:1]); err != nil {
		t.Fatal(err)
	}
	if n := len(s.SigningKeys()); n != 1 {
		t.Fatalf("SetSigningKeys: %d keys", n)
	}
}

// FuzzJWTAccessToken: whatever the bytes, the token check never panics and
// accepts nothing but the genuine token.
func FuzzJWTAccessToken(f *testing.F) {
	store := memstore.New()
	cfg := oidcConfig(f, oidcKeys(f))
	cfg.AccessTokenFormat = core.FormatJWT
	s, err := core.New(cfg, store, noAuth{})
	if err != nil {
		f.Fatal(err)
	}
	c, secret, err := core.NewClient(core.ClientSpec{ID: "svc", GrantTypes: []string{core.GrantClientCredentials}})
	if err != nil {
		f.Fatal(err)
	}
	store.AddClient(c)
	w := newResp()
	s.Token(w, &fakeReq{method: "POST", path: "/oauth2/token", body: "grant_type=client_credentials&scope=read",
		hdr: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Authorization": {core.EncodeBasic("svc", secret)}}})
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(w.body, &tr); err != nil || w.status != 200 || !strings.HasPrefix(tr.AccessToken, "eyJ") {
		f.Fatalf("token: %d %s", w.status, w.body)
	}
	genuine := tr.AccessToken
	f.Add(genuine)
	f.Add(genuine[:len(genuine)-2])
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.")
	f.Add("eyJ.eyJ.eyJ")
	f.Fuzz(func(t *testing.T, tok string) {
		info, err := s.CheckToken(context.Background(), tok)
		if err == nil && tok != genuine && info.TokenID != "" {
			// A different string may still be the same JWS (base64 slack
			// in the last character); it must then carry the same claims.
			if g, _ := s.CheckToken(context.Background(), genuine); g == nil || g.TokenID != info.TokenID {
				t.Fatalf("accepted a forged token %q", tok)
			}
		}
	})
}

// FuzzIDTokenHint: the logout endpoint's id_token_hint check never panics
// and accepts nothing but id_tokens this server signed.
func FuzzIDTokenHint(f *testing.F) {
	keys := oidcKeys(f)
	s, err := core.New(oidcConfig(f, keys), memstore.New(), noAuth{})
	if err != nil {
		f.Fatal(err)
	}
	f.Add("eyJhbGciOiJFUzI1NiIsImtpZCI6ImVkLTEiLCJ0eXAiOiJKV1QifQ.eyJpc3MiOiJodHRwczovL2FzLmV4YW1wbGUuY29tIiwic3ViIjoiYWxpY2UiLCJhdWQiOiJjb25mIn0.AAAA")
	f.Add("eyJhbGciOiJub25lIn0.eyJpc3MiOiJodHRwczovL2FzLmV4YW1wbGUuY29tIiwic3ViIjoiYSIsImF1ZCI6ImMifQ.")
	f.Add("..")
	f.Fuzz(func(t *testing.T, hint string) {
		aud, sub, err := s.VerifyIDTokenHint(hint)
		if err == nil {
			// Nobody but the keys' holder can sign: the fuzzer never should.
			t.Fatalf("accepted a hint the server never signed: %q (aud %v sub %q)", hint, aud, sub)
		}
	})
}

// OpenID Connect Core §11 with OfflineAccessOnly: an openid grant gets a
// refresh token only with offline_access; a plain OAuth grant as before.
func TestRefreshPolicyOfflineAccess(t *testing.T) {
	e := newEnv(t, false, func(c *core.Config) {
		c.Scopes = append(c.Scopes, core.ScopeOpenID, "offline_access")
		c.OIDC = core.OIDC{SigningKeys: oidcKeys(t), RefreshPolicy: core.OfflineAccessOnly}
	})
	for scope, wantRefresh := range map[string]bool{"openid read": false, "openid offline_access read": true, "read": true} {
		w := e.post("/oauth2/token", url.Values{"grant_type": {"authorization_code"}, "code": {e.code(scope)}, "redirect_uri": {confCB}, "code_verifier": {verifier}}, basic("conf", e.secret))
		m := w.json(t)
		if _, got := m["refresh_token"]; w.status != 200 || got != wantRefresh {
			t.Errorf("%q: %d, refresh token %v, want %v (%s)", scope, w.status, got, wantRefresh, w.body)
		}
		if _, got := m["id_token"]; got != strings.Contains(scope, "openid") {
			t.Errorf("%q: id_token %v", scope, got)
		}
	}
}

// An issuer without a path has no path-inserted metadata URLs; one with a
// path has both documents', and nothing else is served as them.
func TestWellKnownPaths(t *testing.T) {
	s, err := core.New(oidcConfig(t, oidcKeys(t)), memstore.New(), noAuth{})
	if err != nil {
		t.Fatal(err)
	}
	if p := s.WellKnownPaths(); len(p) != 0 {
		t.Errorf("issuer without a path: %q", p)
	}
	cfg := oidcConfig(t, oidcKeys(t))
	cfg.Issuer = "https://as.example.com/tenant/a"
	if s, err = core.New(cfg, memstore.New(), noAuth{}); err != nil {
		t.Fatal(err)
	}
	want := []string{"/.well-known/oauth-authorization-server/tenant/a", "/.well-known/openid-configuration/tenant/a"}
	if got := s.WellKnownPaths(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("WellKnownPaths = %q, want %q", got, want)
	}
	w := newResp()
	if s.ServeWellKnown(w, &fakeReq{method: "GET", path: "/.well-known/oauth-authorization-server/tenant/b"}) {
		t.Error("another issuer's path was served")
	}
	if !s.ServeWellKnown(w, &fakeReq{method: "GET", path: want[1]}) || w.status != 200 || !strings.Contains(string(w.body), `"issuer":"https://as.example.com/tenant/a"`) {
		t.Errorf("ServeWellKnown: %d %s", w.status, w.body)
	}
}

// appSessions is an Authenticator whose app keeps the login session.
type appSessions struct {
	srv  **core.Server
	user string
	at   time.Time
}

func (a *appSessions) Login(w core.Responder, r core.Request, ar *core.AuthorizationRequest) {
	(*a.srv).SendLogin(w, r, ar, core.LoginResult{UserID: a.user, AuthTime: a.at})
}
func (a *appSessions) ProcessLogin(core.Responder, core.Request, *core.AuthorizationRequest) {}
func (a *appSessions) EndLogin(core.Responder, core.Request) error                           { a.user = ""; return nil }
func (a *appSessions) CurrentLogin(core.Request) (core.LoginResult, bool) {
	return core.LoginResult{UserID: a.user, AuthTime: a.at, AMR: []string{"otp"}}, a.user != ""
}

// An app with its own sessions (SessionAuthenticator) answers prompt=none
// and max_age; an id_token_hint for another user is no silent login.
func TestAppSessionsPromptNone(t *testing.T) {
	var srv *core.Server
	now := time.Unix(1_800_000_000, 0)
	app := &appSessions{srv: &srv, user: "bob", at: now.Add(-10 * time.Minute)}
	cfg := oidcConfig(t, oidcKeys(t))
	cfg.Scopes, cfg.Now = []string{core.ScopeOpenID, "read"}, func() time.Time { return now }
	store := memstore.New()
	s, err := core.New(cfg, store, app)
	if err != nil {
		t.Fatal(err)
	}
	srv = s
	c, secret, _ := core.NewClient(core.ClientSpec{ID: "rp", RedirectURIs: []string{confCB}})
	store.AddClient(c)
	authorize := func(extra url.Values) url.Values {
		q := codeQuery("rp", confCB, "openid", "st")
		for k, v := range extra {
			q[k] = v
		}
		w := newResp()
		s.Authorize(w, &fakeReq{method: "GET", path: "/oauth2/authorize", query: q.Encode()})
		loc, err := url.Parse(w.hdr.Get("Location"))
		if w.status != 303 || err != nil {
			t.Fatalf("authorize %v: %d %s", extra, w.status, w.body)
		}
		return loc.Query()
	}
	idToken := func(code string) map[string]any {
		w := newResp()
		s.Token(w, &fakeReq{method: "POST", path: "/oauth2/token", body: url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {confCB}, "code_verifier": {verifier}}.Encode(),
			hdr: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Authorization": {core.EncodeBasic("rp", secret)}}})
		raw, _ := w.json(t)["id_token"].(string)
		parts := strings.Split(raw, ".")
		if len(parts) != 3 {
			t.Fatalf("token: %d %s", w.status, w.body)
		}
		b, _ := base64.RawURLEncoding.DecodeString(parts[1])
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		m["raw"] = raw
		return m
	}
	q := authorize(url.Values{"prompt": {"none"}})
	bob := idToken(q.Get("code"))
	if bob["sub"] != "bob" || int64(bob["auth_time"].(float64)) != app.at.Unix() || fmt.Sprint(bob["amr"]) != "[otp]" {
		t.Fatalf("silent id_token %v", bob)
	}
	if q := authorize(url.Values{"prompt": {"none"}, "max_age": {"60"}}); q.Get("error") != "login_required" {
		t.Errorf("max_age older than the app's login: %v", q)
	}
	if q := authorize(url.Values{"prompt": {"none"}, "id_token_hint": {bob["raw"].(string)}}); q.Get("code") == "" {
		t.Errorf("hint for the signed-in user: %v", q)
	}
	app.user = "alice"
	if q := authorize(url.Values{"prompt": {"none"}, "id_token_hint": {bob["raw"].(string)}}); q.Get("error") != "login_required" {
		t.Errorf("hint for another user: %v", q)
	}
	// Logout ends the app's session.
	app.user = "bob"
	w := newResp()
	s.EndSession(w, &fakeReq{method: "GET", path: "/oauth2/logout", query: url.Values{"id_token_hint": {bob["raw"].(string)}}.Encode()})
	if w.status != 200 || app.user != "" {
		t.Fatalf("logout: %d, app session %q", w.status, app.user)
	}
	if q := authorize(url.Values{"prompt": {"none"}}); q.Get("error") != "login_required" {
		t.Errorf("no app session: %v", q)
	}
}

// A set without a signing key for the JWT access tokens' algorithm is
// refused when installed (it would leave the token endpoint no key); a
// retired key's JWT access tokens verify while it is published, though
// its algorithm no longer signs.
func TestSigningSetSwaps(t *testing.T) {
	keys := oidcKeys(t) // ES256 (thumbprint kid), EdDSA "ed-1"
	cfg := oidcConfig(t, keys)
	cfg.AccessTokenFormat, cfg.OIDC.AccessTokenAlg = core.FormatJWT, core.AlgEdDSA
	store := memstore.New()
	s, err := core.New(cfg, store, noAuth{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetSigningKeys(keys[:1]); err == nil {
		t.Fatal("a set without the EdDSA key JWT access tokens need was installed")
	}
	c, secret, _ := core.NewClient(core.ClientSpec{ID: "svc", GrantTypes: []string{core.GrantClientCredentials}})
	store.AddClient(c)
	w := newResp()
	s.Token(w, &fakeReq{method: "POST", path: "/oauth2/token", body: "grant_type=client_credentials",
		hdr: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Authorization": {core.EncodeBasic("svc", secret)}}})
	at, _ := w.json(t)["access_token"].(string)
	// EdDSA retired: ES256 signs from now on (and signs the JWTs).
	set := s.SigningKeys()
	set[1].State = core.KeyRetired
	s2, err := core.New(func() core.Config {
		c := cfg
		c.OIDC.AccessTokenAlg = core.AlgES256
		c.OIDC.SigningKeys = set
		return c
	}(), store, noAuth{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s2.CheckToken(context.Background(), at); err != nil {
		t.Errorf("a JWT of the retired EdDSA key: %v", err)
	}
	md := newResp()
	s2.Metadata(md, &fakeReq{method: "GET", path: "/.well-known/oauth-authorization-server"})
	if !strings.Contains(string(md.body), `"id_token_signing_alg_values_supported":["ES256"]`) {
		t.Errorf("metadata algorithms: %s", md.body)
	}
}
