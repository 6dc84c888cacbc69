package e2etest

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/oauth2kit/oauth2kit/examples/internal/demo"
)

// A client added with -backchannel-logout-uri is POSTed a logout token
// when the browser's session with it ends (EXAMPLES.md contract v2): the
// relying party, on loopback here (-backchannel-allow-loopback), verifies
// it against the JWKS with go-oidc and finds the id_token's sub and sid.
func TestExampleBackchannelLogout(t *testing.T) {
	bin := Build(t, "nethttp")
	db := filepath.Join(t.TempDir(), "demo.db")
	posts := make(chan url.Values, 4)
	rp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		f, _ := url.ParseQuery(string(b))
		if r.Method != http.MethodPost || r.URL.Path != "/backchannel" {
			t.Errorf("%s %s", r.Method, r.URL)
		}
		posts <- f
	}))
	t.Cleanup(rp.Close)
	out, errOut, code := Run(t, bin, "client", "add", "-db", db, "-name", "BC App", "-redirect-uri", redirectURI,
		"-scope", "openid read", "-backchannel-logout-uri", rp.URL+"/backchannel")
	if code != 0 {
		t.Fatalf("client add: %d %s", code, errOut)
	}
	var reg struct {
		ID     string `json:"client_id"`
		Secret string `json:"client_secret"`
	}
	if err := json.Unmarshal([]byte(out), &reg); err != nil {
		t.Fatalf("client add printed %q: %v", out, err)
	}
	s := Start(t, bin, "-addr", "127.0.0.1:0", "-db", db, "-backchannel-allow-loopback")
	ctx := oidc.ClientContext(clientCtx(t), plain)
	p, err := oidc.NewProvider(ctx, s.Issuer)
	if err != nil {
		t.Fatalf("go-oidc discovery: %v", err)
	}
	var md struct {
		Supported bool `json:"backchannel_logout_supported"`
		Session   bool `json:"backchannel_logout_session_supported"`
	}
	if err := p.Claims(&md); err != nil || !md.Supported || !md.Session {
		t.Errorf("discovery: back-channel logout supported %v, session %v (%v)", md.Supported, md.Session, err)
	}
	conf := &oauth2.Config{ClientID: reg.ID, ClientSecret: reg.Secret, RedirectURL: redirectURI, Endpoint: p.Endpoint(), Scopes: []string{oidc.ScopeOpenID, "read"}}

	// Sign in with the browser that will log out: the session is its.
	b := newBrowser(t)
	verifier, state := oauth2.GenerateVerifier(), "s-"+randomHex(t, 8)
	page := b.get(t, conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oidc.Nonce("n-1")))
	page = b.submit(t, page, page.form(t), url.Values{"username": {demo.DemoUser}, "password": {demo.DemoPassword}})
	if page.status == http.StatusOK { // the consent page
		page = b.submit(t, page, page.form(t), url.Values{"decision": {"approve"}})
	}
	if page.status != http.StatusSeeOther {
		t.Fatalf("sign-in: HTTP %d:\n%s", page.status, page.body)
	}
	tok, err := conf.Exchange(ctx, page.location(t).Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	rawID, _ := tok.Extra("id_token").(string)
	idt, err := p.Verifier(&oidc.Config{ClientID: reg.ID}).Verify(ctx, rawID)
	if err != nil {
		t.Fatalf("id_token: %v", err)
	}
	var idc struct {
		SID string `json:"sid"`
	}
	_ = idt.Claims(&idc)
	if idc.SID == "" {
		t.Fatal("the id_token has no sid")
	}

	if page := b.get(t, s.Base+"/oauth2/logout?"+url.Values{"id_token_hint": {rawID}}.Encode()); page.status != http.StatusOK {
		t.Fatalf("logout: HTTP %d:\n%s", page.status, page.body)
	}
	var f url.Values
	select {
	case f = <-posts:
	case <-time.After(30 * time.Second):
		t.Fatal("no logout token posted within 30 s of the logout")
	}
	lt := f.Get("logout_token")
	payload, err := oidc.NewRemoteKeySet(ctx, s.Base+"/oauth2/jwks").VerifySignature(ctx, lt)
	if err != nil {
		t.Fatalf("the logout token does not verify with the JWKS: %v", err)
	}
	hdr, _ := base64.RawURLEncoding.DecodeString(strings.Split(lt, ".")[0])
	var c struct {
		Iss, Sub, Aud, SID, Nonce string
		Events                    map[string]json.RawMessage
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(hdr), `"typ":"logout+jwt"`) || c.Iss != s.Issuer || c.Aud != reg.ID || c.Sub != idt.Subject ||
		c.SID != idc.SID || c.Nonce != "" || string(c.Events["http://schemas.openid.net/event/backchannel-logout"]) != "{}" {
		t.Errorf("logout token header %s claims %s", hdr, payload)
	}
}
