package adaptertest

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/oauth2kit/oauth2kit/core"
)

// The suite's signing keys, made once per process (RSA key generation is
// slow): one per algorithm, RS256 first (the default).
var (
	suiteKeyOnce sync.Once
	suiteKeySet  []core.SigningKey
	suiteKeyErr  error
)

func suiteKeys(t *testing.T) []core.SigningKey {
	t.Helper()
	suiteKeyOnce.Do(func() {
		rk, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			suiteKeyErr = err
			return
		}
		pk, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			suiteKeyErr = err
			return
		}
		ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			suiteKeyErr = err
			return
		}
		_, dk, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			suiteKeyErr = err
			return
		}
		suiteKeySet = []core.SigningKey{
			{Alg: core.AlgRS256, Signer: rk}, {Alg: core.AlgPS256, Signer: pk},
			{Alg: core.AlgES256, Signer: ek}, {Alg: core.AlgEdDSA, Signer: dk},
		}
	})
	if suiteKeyErr != nil {
		t.Fatalf("adaptertest: generating signing keys: %v", suiteKeyErr)
	}
	return slices.Clone(suiteKeySet)
}

// aliceClaims is the suite's claims source: alice's profile and email.
var aliceClaims = core.ClaimsFunc(func(_ context.Context, user string, _, _ []string) (map[string]any, error) {
	if user != userName {
		return nil, nil
	}
	return map[string]any{
		"name": "Alice Liddell", "preferred_username": userName,
		"email": "alice@example.test", "email_verified": true,
		"sub": "forged", // the server's sub wins
	}, nil
})

// rp is a relying party written against the wire only: discovery, the
// token endpoint, and id_token verification with go-jose against the
// JWKS it fetches (signature, alg from discovery, iss, aud, exp, nonce,
// at_hash). Interop with go-oidc and x/oauth2 is the examples' e2e tests.
type rp struct {
	e        *env
	ctx      context.Context
	clientID string
	algs     []jose.SignatureAlgorithm
}

// token is a token response.
type token struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	IDToken      string `json:"id_token"`
}

// Extra returns the id_token, as a client library's token does.
func (t *token) Extra(k string) any {
	if k == "id_token" {
		return t.IDToken
	}
	return nil
}

// idToken is a verified id_token.
type idToken struct {
	Subject, Issuer, Nonce string
	Audience               []string
	alg                    string
	claims                 []byte
}

func (i *idToken) Claims(v any) error { return json.Unmarshal(i.claims, v) }

// VerifyAccessToken checks at_hash: the left half of the hash that
// belongs to the alg (SHA-512 for EdDSA), base64url.
func (i *idToken) VerifyAccessToken(at string) error {
	var c struct {
		AtHash string `json:"at_hash"`
	}
	_ = json.Unmarshal(i.claims, &c)
	var sum []byte
	if i.alg == core.AlgEdDSA {
		h := sha512.Sum512([]byte(at))
		sum = h[:32]
	} else {
		h := sha256.Sum256([]byte(at))
		sum = h[:16]
	}
	if c.AtHash == "" || c.AtHash != base64.RawURLEncoding.EncodeToString(sum) {
		return fmt.Errorf("at_hash %q does not match", c.AtHash)
	}
	return nil
}

func (e *env) relyingParty(clientID string) *rp {
	e.t.Helper()
	m := decodeJSON(e.t, e.get(e.api, "/.well-known/openid-configuration", nil))
	if m["issuer"] != e.base {
		e.t.Fatalf("discovery issuer %v, want %s", m["issuer"], e.base)
	}
	p := &rp{e: e, ctx: context.Background(), clientID: clientID}
	raw, _ := m["id_token_signing_alg_values_supported"].([]any)
	for _, a := range raw {
		s, _ := a.(string)
		p.algs = append(p.algs, jose.SignatureAlgorithm(s))
	}
	return p
}

// verifyJWS checks a compact JWS against the JWKS fetched now and returns
// its alg and payload.
func (e *env) verifyJWS(raw string, algs []jose.SignatureAlgorithm) (string, []byte, error) {
	jws, err := jose.ParseSignedCompact(raw, algs)
	if err != nil {
		return "", nil, err
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(e.get(e.api, "/oauth2/jwks", nil).body, &set); err != nil {
		return "", nil, err
	}
	h := jws.Signatures[0].Header
	keys := set.Key(h.KeyID)
	if len(keys) != 1 || keys[0].Algorithm != h.Algorithm {
		return "", nil, fmt.Errorf("kid %q is not published for %s", h.KeyID, h.Algorithm)
	}
	payload, err := jws.Verify(keys[0].Key)
	return h.Algorithm, payload, err
}

type idVerifier struct {
	p          *rp
	skipExpiry bool
}

func (p *rp) verifier(skipExpiry bool) *idVerifier { return &idVerifier{p, skipExpiry} }

// Verify checks an id_token: signature, iss, aud, exp (at the env's clock).
func (v *idVerifier) Verify(_ context.Context, raw string) (*idToken, error) {
	alg, payload, err := v.p.e.verifyJWS(raw, v.p.algs)
	if err != nil {
		return nil, err
	}
	var c struct {
		Iss, Sub, Nonce string
		Aud             any
		Exp             int64
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, err
	}
	idt := &idToken{Subject: c.Sub, Issuer: c.Iss, Nonce: c.Nonce, alg: alg, claims: payload}
	switch a := c.Aud.(type) {
	case string:
		idt.Audience = []string{a}
	case []any:
		for _, x := range a {
			s, _ := x.(string)
			idt.Audience = append(idt.Audience, s)
		}
	}
	switch {
	case c.Iss != v.p.e.base:
		return nil, fmt.Errorf("iss %q", c.Iss)
	case !slices.Contains(idt.Audience, v.p.clientID):
		return nil, fmt.Errorf("aud %v", idt.Audience)
	case !v.skipExpiry && v.p.e.clock.now().Unix() >= c.Exp:
		return nil, fmt.Errorf("expired")
	}
	return idt, nil
}

// login runs the browser part for the RP's authorization request and
// returns the code.
func (p *rp) login(nonce string) string {
	e := p.e
	e.t.Helper()
	q := with(authzQuery(p.clientID, confRedirect, "openid profile email", "st-1"), "nonce", nonce)
	red := e.loginAndApprove(q)
	rq := e.location(red).Query()
	if rq.Get("code") == "" || rq.Get("state") != "st-1" || rq.Get("iss") != e.base {
		e.t.Fatalf("authorization response %s", red.header.Get("Location"))
	}
	return rq.Get("code")
}

func (p *rp) tokens(r *response) (*token, error) {
	if r.status != 200 {
		return nil, fmt.Errorf("token endpoint: %d %s", r.status, r.body)
	}
	var t token
	return &t, json.Unmarshal(r.body, &t)
}

// exchange redeems code and verifies the id_token, its nonce and at_hash.
func (p *rp) exchange(code, nonce string) (*token, *idToken) {
	e := p.e
	e.t.Helper()
	tok, err := p.tokens(e.tokenRequest(p.clientID, authBasic, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {verifier}, "redirect_uri": {confRedirect}}))
	if err != nil {
		e.t.Fatal(err)
	}
	if tok.IDToken == "" {
		e.t.Fatal("no id_token in the token response")
	}
	idt, err := p.verifier(false).Verify(p.ctx, tok.IDToken)
	if err != nil {
		e.t.Fatalf("id_token: %v", err)
	}
	if idt.Nonce != nonce {
		e.t.Errorf("nonce = %q, want %q byte for byte", idt.Nonce, nonce)
	}
	if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
		e.t.Errorf("at_hash: %v", err)
	}
	return tok, idt
}

type idClaims struct {
	AuthTime int64    `json:"auth_time"`
	AZP      string   `json:"azp"`
	AMR      []string `json:"amr"`
	Nonce    *string  `json:"nonce"`
	IAT      int64    `json:"iat"`
	Exp      int64    `json:"exp"`
}

func claimsOf(t *testing.T, idt *idToken) idClaims {
	t.Helper()
	var c idClaims
	if err := idt.Claims(&c); err != nil {
		t.Fatal(err)
	}
	return c
}

// jwtHeader decodes a compact JWS's header.
func jwtHeader(t *testing.T, tok string) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]any
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	return h
}

func (e *env) withClientAlg(id, alg string) {
	e.changeClient(id, func(c *core.Client) { c.IDTokenSignedResponseAlg = alg })
}

func (e *env) changeClient(id string, change func(*core.Client)) {
	e.t.Helper()
	c, err := e.store.GetClient(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	cp := *c
	change(&cp)
	e.store.AddClient(&cp)
}

func jwtClaims(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWS: %q", tok)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func newRSA(t *testing.T) crypto.Signer {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func oidcTests() []test {
	return []test{
		{"DiscoveryIsTheMetadata", func(t *testing.T, e *env) {
			a := e.get(e.api, "/.well-known/openid-configuration", nil)
			b := e.get(e.api, "/.well-known/oauth-authorization-server", nil)
			wantStatus(t, a, 200)
			wantHeader(t, a, "Content-Type", "application/json")
			if string(a.body) != string(b.body) {
				t.Errorf("the two discovery documents differ:\n%s\n%s", a.body, b.body)
			}
			m := decodeJSON(t, a)
			for k, v := range map[string]string{"issuer": e.base, "jwks_uri": e.path("/oauth2/jwks"), "userinfo_endpoint": e.path("/oauth2/userinfo")} {
				if m[k] != v {
					t.Errorf("%s = %v, want %q", k, m[k], v)
				}
			}
			has := func(k string, want ...string) {
				raw, _ := m[k].([]any)
				for _, w := range want {
					if !slices.Contains(raw, any(w)) {
						t.Errorf("%s = %v, want it to contain %q", k, m[k], w)
					}
				}
			}
			has("id_token_signing_alg_values_supported", "RS256", "PS256", "ES256", "EdDSA")
			has("subject_types_supported", "public")
			has("response_modes_supported", "query", "form_post")
			has("scopes_supported", "openid")
			has("claims_supported", "sub", "iss", "auth_time", "nonce", "email")
		}},
		{"RelyingParty", func(t *testing.T, e *env) {
			p := e.relyingParty(confID)
			nonce := "n-0S6_WzA2Mj \"é\" +/="
			before := e.clock.now().Unix()
			tok, idt := p.exchange(p.login(nonce), nonce)
			c := claimsOf(t, idt)
			if idt.Subject != userName || idt.Issuer != e.base || !slices.Equal(idt.Audience, []string{confID}) || c.AZP != confID {
				t.Errorf("id_token sub %q iss %q aud %q azp %q", idt.Subject, idt.Issuer, idt.Audience, c.AZP)
			}
			if c.AuthTime < before-1 || c.AuthTime > e.clock.now().Unix() || c.IAT < c.AuthTime || c.Exp != c.IAT+3600 {
				t.Errorf("auth_time %d iat %d exp %d (login at %d)", c.AuthTime, c.IAT, c.Exp, before)
			}
			if !slices.Equal(c.AMR, []string{"pwd"}) {
				t.Errorf("amr = %q, want [pwd] as the app reported", c.AMR)
			}
			if h := jwtHeader(t, tok.Extra("id_token").(string)); h["alg"] != "RS256" || h["kid"] == "" {
				t.Errorf("id_token header %v, want RS256 with a kid", h)
			}
			ur := e.get(e.api, "/oauth2/userinfo", bearer(tok.AccessToken))
			wantStatus(t, ur, 200)
			uc := decodeJSON(t, ur)
			if uc["sub"] != idt.Subject || uc["email"] != "alice@example.test" || uc["email_verified"] != true || uc["name"] != "Alice Liddell" {
				t.Errorf("userinfo %v", uc)
			}
			// Refresh: a new id_token for the same authentication.
			e.clock.advance(10 * time.Minute)
			nt, err := p.tokens(e.refresh(tok.RefreshToken, ""))
			if err != nil {
				t.Fatalf("refresh: %v", err)
			}
			raw, _ := nt.Extra("id_token").(string)
			rid, err := p.verifier(false).Verify(p.ctx, raw)
			if err != nil {
				t.Fatalf("refreshed id_token: %v", err)
			}
			rc := claimsOf(t, rid)
			if rid.Subject != idt.Subject || rc.AuthTime != c.AuthTime || rc.IAT <= c.IAT || rc.Nonce != nil {
				t.Errorf("refreshed id_token sub %q auth_time %d iat %d nonce %v; want sub %q auth_time %d, a later iat, no nonce",
					rid.Subject, rc.AuthTime, rc.IAT, rc.Nonce, idt.Subject, c.AuthTime)
			}
			if err := rid.VerifyAccessToken(nt.AccessToken); err != nil {
				t.Errorf("refreshed at_hash: %v", err)
			}
		}},
		{"PerClientAlgorithm", func(t *testing.T, e *env) {
			for _, alg := range []string{core.AlgPS256, core.AlgES256, core.AlgEdDSA} {
				e.withClientAlg(confID, alg)
				p := e.relyingParty(confID)
				tok, _ := p.exchange(p.login("n-"+alg), "n-"+alg) // at_hash with SHA-512 for EdDSA
				if h := jwtHeader(t, tok.Extra("id_token").(string)); h["alg"] != alg {
					t.Errorf("id_token alg %v, want %s", h["alg"], alg)
				}
			}
		}},
		{"NoNonceNoNonceClaim", func(t *testing.T, e *env) {
			q := authzQuery(confID, confRedirect, "openid", "s")
			code := e.location(e.loginAndApprove(q)).Query().Get("code")
			m := decodeJSON(t, e.tokenRequest(confID, authBasic, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {verifier}, "redirect_uri": {confRedirect}}))
			raw, _ := m["id_token"].(string)
			parts := strings.Split(raw, ".")
			if len(parts) != 3 {
				t.Fatalf("id_token %q", raw)
			}
			body, _ := base64.RawURLEncoding.DecodeString(parts[1])
			if strings.Contains(string(body), `"nonce"`) {
				t.Errorf("id_token claims %s carry a nonce nobody sent", body)
			}
		}},
		{"NoOpenIDNoIDToken", func(t *testing.T, e *env) {
			code := e.code(confID, confRedirect, "read")
			m := decodeJSON(t, e.tokenRequest(confID, authBasic, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {verifier}, "redirect_uri": {confRedirect}}))
			if _, ok := m["id_token"]; ok {
				t.Error("an id_token without scope openid")
			}
		}},
		{"KeyRotation", func(t *testing.T, e *env) {
			p := e.relyingParty(confID)
			old, _ := p.exchange(p.login("n1"), "n1")
			oldID := old.Extra("id_token").(string)
			oldKID := jwtHeader(t, oldID)["kid"]
			next := newRSA(t)
			if _, err := e.srv.RotateKeys(core.SigningKey{Alg: core.AlgRS256, Signer: next}); err != nil {
				t.Fatal(err)
			}
			if _, err := e.srv.RotateKeys(core.SigningKey{Alg: core.AlgRS256, Signer: newRSA(t)}); err == nil {
				t.Fatal("a second rotation within the publish-ahead time was accepted")
			}
			// Published, not signing yet.
			jw := e.jwks(t)
			if len(jw) != 5 {
				t.Fatalf("JWKS has %d keys after publishing one, want 5", len(jw))
			}
			tk, _ := p.exchange(p.login("n2"), "n2")
			if kid := jwtHeader(t, tk.Extra("id_token").(string))["kid"]; kid != oldKID {
				t.Fatalf("a key signed (%v) before its publish-ahead time", kid)
			}
			e.clock.advance(time.Hour + time.Second)
			if _, err := e.srv.RotateKeys(core.SigningKey{Alg: core.AlgRS256, Signer: newRSA(t)}); err != nil {
				t.Fatal(err)
			}
			nt, _ := p.exchange(p.login("n3"), "n3") // go-oidc refetches the JWKS for the new kid
			newID := nt.Extra("id_token").(string)
			if kid := jwtHeader(t, newID)["kid"]; kid == oldKID {
				t.Fatal("the published key did not start signing at the rotation")
			}
			// The retired key stays published: its tokens still verify
			// for a relying party that fetches the JWKS now.
			if _, err := e.relyingParty(confID).verifier(true).Verify(p.ctx, oldID); err != nil {
				t.Errorf("a token of the retired key: %v", err)
			}
			// Once every token it signed has expired, the next rotation
			// drops it; its tokens no longer verify (expiry aside).
			e.clock.advance(time.Hour + time.Second)
			set, err := e.srv.RotateKeys(core.SigningKey{Alg: core.AlgRS256, Signer: newRSA(t)})
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range set {
				if k.ID == oldKID {
					t.Fatalf("retired key %v kept past its tokens' lifetime", oldKID)
				}
			}
			if _, err := e.relyingParty(confID).verifier(true).Verify(p.ctx, oldID); err == nil {
				t.Error("a token signed by a removed key verified")
			}
			if _, err := e.relyingParty(confID).verifier(true).Verify(p.ctx, newID); err != nil {
				t.Errorf("a token of the now retired key: %v", err)
			}
		}},
		{"JWKSPublicOnly", func(t *testing.T, e *env) {
			r := e.get(e.api, "/oauth2/jwks", nil)
			wantStatus(t, r, 200)
			cc := r.header.Get("Cache-Control")
			if cc != "public, max-age=600" {
				t.Errorf("Cache-Control %q, want a max-age under the publish-ahead hour", cc)
			}
			kids := map[any]bool{}
			for _, k := range e.jwks(t) {
				for _, m := range []string{"d", "p", "q", "dp", "dq", "qi", "k", "oth"} {
					if _, ok := k[m]; ok {
						t.Errorf("JWKS key %v has private member %q", k["kid"], m)
					}
				}
				if k["use"] != "sig" || k["alg"] == nil || k["kid"] == nil || kids[k["kid"]] {
					t.Errorf("JWKS key %v: want use sig, alg, a unique kid", k)
				}
				kids[k["kid"]] = true
			}
			if len(kids) != 4 {
				t.Errorf("%d keys, want 4", len(kids))
			}
		}},
		{"UserInfo", func(t *testing.T, e *env) {
			withOpenID := e.userTokens("openid email")
			plain := e.userTokens("read")
			r := e.get(e.api, "/oauth2/userinfo", nil)
			wantBearerError(t, e, r, 401, "", "")
			r = e.get(e.api, "/oauth2/userinfo", bearer(plain.access))
			wantBearerError(t, e, r, 403, "insufficient_scope", "openid")
			r = e.get(e.api, "/oauth2/userinfo", bearer("nope"))
			wantBearerError(t, e, r, 401, "invalid_token", "")
			for name, r := range map[string]*response{
				"GET":         e.get(e.api, "/oauth2/userinfo", bearer(withOpenID.access)),
				"POST header": e.post(e.api, "/oauth2/userinfo", "", bearer(withOpenID.access)),
				"POST body":   e.post(e.api, "/oauth2/userinfo", url.Values{"access_token": {withOpenID.access}}.Encode(), nil),
			} {
				wantStatus(t, r, 200)
				m := decodeJSON(t, r)
				// email by scope; not name (no profile scope); sub the server's.
				if m["sub"] != userName || m["email"] != "alice@example.test" || m["email_verified"] != true || m["name"] != nil {
					t.Errorf("%s: userinfo %v", name, m)
				}
			}
		}},
		{"JWTAccessTokens", func(t *testing.T, e *env) {
			e.changeClient(confID, func(c *core.Client) { c.AccessTokenFormat = core.FormatJWT })
			tk := e.userTokens("openid read")
			if h := jwtHeader(t, tk.access); h["typ"] != "at+jwt" || h["alg"] != "RS256" || h["kid"] == nil {
				t.Errorf("access token header %v, want typ at+jwt, RS256, a kid", h)
			}
			c := jwtClaims(t, tk.access)
			for k, want := range map[string]any{"iss": e.base, "sub": userName, "aud": e.base, "client_id": confID, "scope": "openid read"} {
				if c[k] != want {
					t.Errorf("claim %s = %v, want %v", k, c[k], want)
				}
			}
			for _, k := range []string{"exp", "iat", "jti"} {
				if c[k] == nil {
					t.Errorf("claim %s missing", k)
				}
			}
			// A third party verifies it with the JWKS alone (go-oidc's
			// remote key set).
			if _, _, err := e.verifyJWS(tk.access, []jose.SignatureAlgorithm{jose.RS256}); err != nil {
				t.Errorf("JWKS verification of the access token: %v", err)
			}
			e.wantMe(tk.access, userName, confID, "openid read")
			wantStatus(t, e.get(e.api, "/oauth2/userinfo", bearer(tk.access)), 200)
			intro := func(tok string) map[string]any {
				return decodeJSON(t, e.clientPost("/oauth2/introspect", confID, authBasic, url.Values{"token": {tok}}))
			}
			if m := intro(tk.access); m["active"] != true || m["sub"] != userName {
				t.Errorf("introspection of a JWT access token: %v", m)
			}
			// An id_token is no access token (typ), even though our key
			// signed it.
			p := e.relyingParty(confID)
			it, _ := p.exchange(p.login("n"), "n")
			e.wantDead(it.Extra("id_token").(string))
			wantStatus(t, e.get(e.api, "/oauth2/userinfo", bearer(it.Extra("id_token").(string))), 401)
			if m := intro(it.Extra("id_token").(string)); m["active"] != false {
				t.Errorf("an id_token introspected as %v", m)
			}
			// A tampered one is refused.
			e.wantDead(tk.access[:len(tk.access)-3] + "AAA")
			// Revocation reaches it.
			wantStatus(t, e.clientPost("/oauth2/revoke", confID, authBasic, url.Values{"token": {tk.access}}), 200)
			if m := intro(tk.access); m["active"] != false {
				t.Errorf("a revoked JWT access token introspected as %v", m)
			}
			e.wantDead(tk.access)
			// client_credentials: sub is the client, no user.
			cc := e.wantTokens(e.tokenRequest(confID, authBasic, url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}), false)
			if m := jwtClaims(t, cc.access); m["sub"] != confID || m["client_id"] != confID {
				t.Errorf("client_credentials JWT claims %v", m)
			}
			e.wantMe(cc.access, "", confID, "read")
		}},
		{"ResourceAudience", func(t *testing.T, e *env) {
			q := with(authzQuery(confID, confRedirect, "read", "s"), "resource", ResourceAudience)
			code := e.location(e.loginAndApprove(q)).Query().Get("code")
			forRes := e.exchange(confID, code, confRedirect)
			plain := e.userTokens("read")
			wantProtected(t, e.get(e.api, PathResource, bearer(forRes.access)), protected{Sub: userName, ClientID: confID, Scope: "read"})
			// Each token only where its audience is (SECURITY.md R64).
			wantBearerError(t, e, e.get(e.api, PathResource, bearer(plain.access)), 401, "invalid_token", "")
			wantBearerError(t, e, e.me(forRes.access), 401, "invalid_token", "")
			e.wantMe(plain.access, userName, confID, "read")
			// The resource's metadata (RFC 9728) names this issuer, and a
			// refusal there points to it.
			md := e.get(e.api, "/.well-known/oauth-protected-resource/mcp", nil)
			wantStatus(t, md, 200)
			if m := decodeJSON(t, md); m["resource"] != ResourceAudience || fmt.Sprint(m["authorization_servers"]) != "["+e.base+"]" {
				t.Errorf("protected resource metadata %s", md.body)
			}
			if h := e.get(e.api, PathResource, nil).header.Get("WWW-Authenticate"); !strings.Contains(h, `resource_metadata="https://resource.example.test/.well-known/oauth-protected-resource/mcp"`) {
				t.Errorf("challenge at the resource: %q", h)
			}
			// userinfo belongs to the default audience.
			wantStatus(t, e.get(e.api, "/oauth2/userinfo", bearer(forRes.access)), 401)
			// An unknown resource is invalid_target.
			q = with(authzQuery(confID, confRedirect, "read", "s2"), "resource", "https://evil.example/")
			e.wantRedirectError(e.authorize(e.browser, q.Encode()), confRedirect, "invalid_target", "s2")
		}},
		{"PromptNone", func(t *testing.T, e *env) {
			q := with(authzQuery(confID, confRedirect, "openid", "st-9"), "prompt", "none")
			r := e.authorize(e.browser, q.Encode())
			e.wantRedirectError(r, confRedirect, "login_required", "st-9")
			q = with(authzQuery(confID, confRedirect, "openid", "st-9"), "prompt", "none login")
			e.wantRedirectError(e.authorize(e.browser, q.Encode()), confRedirect, "invalid_request", "st-9")
		}},
		{"RequestObjectsRefused", func(t *testing.T, e *env) {
			q := with(authzQuery(confID, confRedirect, "openid", "s"), "request", "eyJhbGciOiJub25lIn0.e30.")
			e.wantRedirectError(e.authorize(e.browser, q.Encode()), confRedirect, "request_not_supported", "s")
			q = with(authzQuery(confID, confRedirect, "openid", "s"), "request_uri", "https://evil.example/r")
			e.wantRedirectError(e.authorize(e.browser, q.Encode()), confRedirect, "request_uri_not_supported", "s")
			q = with(authzQuery(confID, confRedirect, "openid", "s"), "response_mode", "fragment")
			e.wantRedirectError(e.authorize(e.browser, q.Encode()), confRedirect, "invalid_request", "s")
			// Unknown parameters are ignored; the OIDC ones the app renders
			// with pass through.
			q = with(with(authzQuery(confID, confRedirect, "openid", "s"), "frobnicate", "1"), "ui_locales", "fr-CA")
			if page := e.authorize(e.browser, q.Encode()); page.status != 200 || !isLoginPage(page) {
				t.Errorf("unknown parameter: %d %s", page.status, page.body)
			}
		}},
		{"FormPost", func(t *testing.T, e *env) {
			q := with(authzQuery(confID, confRedirect, "openid", "st-f"), "response_mode", "form_post")
			page := e.authorize(e.browser, q.Encode())
			r := e.submitLogin(e.browser, page, userName, userPassword)
			if isConsentPage(r) {
				r = e.decide(e.browser, r, "approve")
			}
			wantStatus(t, r, 200)
			wantNoHeader(t, r, "Location")
			wantHeader(t, r, "Cache-Control", "no-store")
			if csp := r.header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'sha256-") || !strings.Contains(csp, "frame-ancestors 'none'") {
				t.Errorf("form_post CSP %q", csp)
			}
			if a := e.formAction(r.body); a != confRedirect {
				t.Errorf("form action %q, want %q", a, confRedirect)
			}
			f := pageFields(r.body)
			if f.Get("code") == "" || f.Get("state") != "st-f" || f.Get("iss") != e.base {
				t.Errorf("form_post fields %v", f)
			}
			// An error in form_post mode is posted too (a browser without a
			// login session).
			q = with(with(authzQuery(confID, confRedirect, "openid", "st-e"), "response_mode", "form_post"), "prompt", "none")
			r = e.authorize(e.newBrowser(), q.Encode())
			wantStatus(t, r, 200)
			if f := pageFields(r.body); f.Get("error") != "login_required" || f.Get("state") != "st-e" {
				t.Errorf("form_post error fields %v", f)
			}
		}},
	}
}

// jwks fetches the JWKS and returns its keys.
func (e *env) jwks(t *testing.T) []map[string]any {
	t.Helper()
	r := e.get(e.api, "/oauth2/jwks", nil)
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(r.body, &set); err != nil {
		t.Fatalf("JWKS %s: %v", r.body, err)
	}
	return set.Keys
}

func newEC(t *testing.T) crypto.Signer {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
