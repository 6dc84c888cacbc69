package e2etest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/oauth2kit/oauth2kit/examples/internal/demo"
)

// testOIDC drives the example as an OpenID Provider with go-oidc as the
// relying party (EXAMPLES.md contract v2): discovery, the id_token
// (signature, nonce, at_hash), userinfo with the demo user's claims, the
// refresh id_token, a JWT access token client, and a key rotation by the
// keys command picked up without a restart.
func testOIDC(t *testing.T, s *Server, bin, db string) {
	ctx := oidc.ClientContext(clientCtx(t), plain)
	p, err := oidc.NewProvider(ctx, s.Issuer)
	if err != nil {
		t.Fatalf("go-oidc discovery: %v", err)
	}
	conf := &oauth2.Config{ClientID: s.ClientID, ClientSecret: s.ClientSecret, RedirectURL: redirectURI,
		Endpoint: p.Endpoint(), Scopes: []string{oidc.ScopeOpenID, "profile", "email"}}
	tok, idt := oidcFlow(t, ctx, s, p, conf)
	if idt.Subject != demo.DemoUser {
		t.Errorf("sub = %q, want %q", idt.Subject, demo.DemoUser)
	}
	ui, err := p.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatalf("userinfo: %v", err)
	}
	var claims map[string]any
	_ = ui.Claims(&claims)
	for k, v := range map[string]any{"sub": "demo", "name": "Demo User", "preferred_username": "demo", "email": "demo@example.com", "email_verified": true} {
		if claims[k] != v {
			t.Errorf("userinfo %s = %v, want %v", k, claims[k], v)
		}
	}
	var first struct {
		AuthTime int64 `json:"auth_time"`
	}
	_ = idt.Claims(&first)
	nt, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken, Expiry: time.Now().Add(-time.Hour)}).Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	raw, _ := nt.Extra("id_token").(string)
	rid, err := p.Verifier(&oidc.Config{ClientID: s.ClientID}).Verify(ctx, raw)
	if err != nil {
		t.Fatalf("refreshed id_token: %v", err)
	}
	var again struct {
		AuthTime int64 `json:"auth_time"`
	}
	_ = rid.Claims(&again)
	if rid.Subject != idt.Subject || again.AuthTime != first.AuthTime {
		t.Errorf("refreshed id_token sub %q auth_time %d, want %q %d", rid.Subject, again.AuthTime, idt.Subject, first.AuthTime)
	}

	// A client registered for JWT access tokens.
	out, errOut, code := Run(t, bin, "client", "add", "-db", db, "-name", "JWT App", "-redirect-uri", redirectURI,
		"-access-token-format", "jwt", "-scope", "openid read")
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
	jc := &oauth2.Config{ClientID: reg.ID, ClientSecret: reg.Secret, RedirectURL: redirectURI, Endpoint: p.Endpoint(), Scopes: []string{oidc.ScopeOpenID, "read"}}
	jt, _ := oidcFlowAs(t, ctx, s, p, jc, "JWT App")
	hdr, _ := base64.RawURLEncoding.DecodeString(strings.Split(jt.AccessToken, ".")[0])
	if !strings.Contains(string(hdr), `"typ":"at+jwt"`) {
		t.Errorf("access token header %s, want typ at+jwt", hdr)
	}
	if _, err := oidc.NewRemoteKeySet(ctx, s.Base+"/oauth2/jwks").VerifySignature(ctx, jt.AccessToken); err != nil {
		t.Errorf("the JWT access token does not verify with the JWKS: %v", err)
	}
	if status, m, _ := api(t, s.Base, "/api/me", jt.AccessToken); status != 200 || m["sub"] != demo.DemoUser {
		t.Errorf("/api/me with a JWT access token: %d %v", status, m)
	}

	// keys rotate publishes a key per algorithm; the running server serves
	// it within its reload interval.
	before := jwksKIDs(t, s)
	if _, errOut, code := Run(t, bin, "keys", "rotate", "-db", db); code != 0 {
		t.Fatalf("keys rotate: %d %s", code, errOut)
	}
	deadline := time.Now().Add(20 * time.Second)
	for len(jwksKIDs(t, s)) != 2*len(before) {
		if time.Now().After(deadline) {
			t.Fatalf("JWKS has %d keys 20 s after a rotation, want %d", len(jwksKIDs(t, s)), 2*len(before))
		}
		time.Sleep(500 * time.Millisecond)
	}
	list, _, _ := Run(t, bin, "keys", "list", "-db", db)
	if strings.Count(list, "\tpublished") != len(before) || strings.Count(list, "\tsigning") != len(before) {
		t.Errorf("keys list after a rotation:\n%s", list)
	}
	// Until the publish-ahead time passes, the old keys still sign.
	_, idt = oidcFlow(t, ctx, s, p, conf)
	_ = idt
}

func oidcFlow(t *testing.T, ctx context.Context, s *Server, p *oidc.Provider, conf *oauth2.Config) (*oauth2.Token, *oidc.IDToken) {
	t.Helper()
	return oidcFlowAs(t, ctx, s, p, conf, demoClientName)
}

func oidcFlowAs(t *testing.T, ctx context.Context, s *Server, p *oidc.Provider, conf *oauth2.Config, name string) (*oauth2.Token, *oidc.IDToken) {
	t.Helper()
	verifier := oauth2.GenerateVerifier()
	nonce := "n-" + randomHex(t, 8) + "/+ ü"
	state := "s-" + randomHex(t, 8)
	q, _ := authorizeAs(t, s, conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce)), state, conf.Scopes, name)
	tok, err := conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := p.Verifier(&oidc.Config{ClientID: conf.ClientID}).Verify(ctx, raw)
	if err != nil {
		t.Fatalf("id_token: %v", err)
	}
	if idt.Nonce != nonce {
		t.Errorf("nonce %q, want %q", idt.Nonce, nonce)
	}
	if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
		t.Errorf("at_hash: %v", err)
	}
	return tok, idt
}

func jwksKIDs(t *testing.T, s *Server) []string {
	t.Helper()
	res, err := plain.Get(s.Base + "/oauth2/jwks")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var set struct {
		Keys []struct {
			KID string `json:"kid"`
		} `json:"keys"`
	}
	if res.StatusCode != http.StatusOK || json.NewDecoder(res.Body).Decode(&set) != nil {
		t.Fatalf("JWKS: HTTP %d", res.StatusCode)
	}
	out := make([]string, len(set.Keys))
	for i, k := range set.Keys {
		out[i] = k.KID
	}
	return out
}
