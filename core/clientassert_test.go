package core_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gojose "github.com/go-jose/go-jose/v4"

	"github.com/oauth2kit/oauth2kit/core"
	"github.com/oauth2kit/oauth2kit/core/memstore"
)

// private_key_jwt client authentication (RFC 7523; SECURITY.md R69).

// ---- keys and assertions ----

// tkey is a client's signing key.
type tkey struct {
	kid, alg string
	priv     crypto.Signer
}

var (
	rsaOnce sync.Once
	rsaPriv *rsa.PrivateKey
)

func rsaTestKey(tb testing.TB) *rsa.PrivateKey {
	rsaOnce.Do(func() {
		var err error
		if rsaPriv, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
	})
	return rsaPriv
}

func newTKey(tb testing.TB, alg, kid string) *tkey {
	tb.Helper()
	var priv crypto.Signer
	var err error
	switch alg {
	case "ES256":
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "EdDSA":
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	case "RS256", "PS256":
		priv = rsaTestKey(tb)
	}
	if err != nil || priv == nil {
		tb.Fatalf("key %s: %v", alg, err)
	}
	return &tkey{kid: kid, alg: alg, priv: priv}
}

// jwk is the public JWK of k (without alg, so an RSA key serves RS256 and
// PS256).
func (k *tkey) jwk() map[string]any {
	b, err := gojose.JSONWebKey{Key: k.priv.Public(), KeyID: k.kid, Use: "sig"}.MarshalJSON()
	if err != nil {
		panic(err)
	}
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return m
}

// jwks is the JWK Set of keys, as JSON.
func jwks(keys ...*tkey) string {
	set := map[string]any{"keys": []any{}}
	for _, k := range keys {
		set["keys"] = append(set["keys"].([]any), k.jwk())
	}
	b, _ := json.Marshal(set)
	return string(b)
}

var jtiSeq atomic.Int64

// claimsFor are valid assertion claims of client id at now.
func claimsFor(id string, now time.Time) map[string]any {
	return map[string]any{"iss": id, "sub": id, "aud": issuer, "iat": now.Unix(),
		"exp": now.Add(time.Minute).Unix(), "jti": "jti-" + strconv.FormatInt(jtiSeq.Add(1), 10) + "-" + rand.Text()}
}

// sign signs claims with go-jose under k's alg and kid (none when kid is
// "-"), with typ JWT and the extra header members.
func (k *tkey) sign(tb testing.TB, claims map[string]any, extra map[string]any) string {
	tb.Helper()
	opts := (&gojose.SignerOptions{}).WithType("JWT")
	if k.kid != "" && k.kid != "-" {
		opts = opts.WithHeader("kid", k.kid)
	}
	for name, v := range extra {
		opts = opts.WithHeader(gojose.HeaderKey(name), v)
	}
	sg, err := gojose.NewSigner(gojose.SigningKey{Algorithm: gojose.SignatureAlgorithm(k.alg), Key: k.priv}, opts)
	if err != nil {
		tb.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	obj, err := sg.Sign(payload)
	if err != nil {
		tb.Fatal(err)
	}
	out, err := obj.CompactSerialize()
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// assertion is a valid assertion of client id at now signed by k, changed
// by mod.
func (k *tkey) assertion(tb testing.TB, id string, now time.Time, mod func(c map[string]any)) string {
	c := claimsFor(id, now)
	if mod != nil {
		mod(c)
	}
	return k.sign(tb, c, nil)
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// signRaw signs header and payload bytes as they are (the fuzz target's
// way to send any header): ES256, EdDSA or RS256 with priv.
func signRaw(priv crypto.Signer, alg string, header, payload []byte) string {
	in := b64(header) + "." + b64(payload)
	sum := sha256.Sum256([]byte(in))
	var sig []byte
	switch alg {
	case "ES256":
		r, s, err := ecdsa.Sign(rand.Reader, priv.(*ecdsa.PrivateKey), sum[:])
		if err != nil {
			panic(err)
		}
		sig = append(r.FillBytes(make([]byte, 32)), s.FillBytes(make([]byte, 32))...)
	case "EdDSA":
		sig = ed25519.Sign(priv.(ed25519.PrivateKey), []byte(in))
	case "RS256":
		var err error
		if sig, err = rsa.SignPKCS1v15(rand.Reader, priv.(*rsa.PrivateKey), crypto.SHA256, sum[:]); err != nil {
			panic(err)
		}
	}
	return in + "." + b64(sig)
}

// ---- the environment ----

// memstore is a core.ReplayCache: the jtis of client assertions are spent
// there, across every server sharing one store.
var _ core.ReplayCache = (*memstore.Store)(nil)

// bareStore is a Storage without any capability (no ReplayCache).
type bareStore struct{ core.Storage }

type pkEnv struct {
	*env
	storage core.Storage
	es, ed  *tkey // of "pk"
	rs, ps  *tkey // of "pk" (one RSA key, two algorithms)
	other   *tkey // of "pk2"
}

// pkClients are the private_key_jwt clients newPKEnv registers: "pk"
// (ES256, EdDSA and RSA keys) and "pk2" (its own ES256 key).
const pkCB = "https://pk.example.com/cb"

func relaxedThrottle(c *core.Config) {
	c.AuthThrottle = core.Throttle{PerAccount: 1 << 30, PerAddr: 1 << 30}
}

// newPKEnv is newEnv (whose memstore is a ReplayCache) with the
// private_key_jwt clients "pk" and "pk2".
func newPKEnv(t *testing.T, consent bool, mod ...func(*core.Config)) *pkEnv {
	t.Helper()
	e := newEnv(t, consent, append([]func(*core.Config){quietLog, relaxedThrottle}, mod...)...)
	p := &pkEnv{env: e, storage: e.store,
		es: newTKey(t, "ES256", "es"), ed: newTKey(t, "EdDSA", "ed"), rs: newTKey(t, "RS256", "rsa"), other: newTKey(t, "ES256", "es")}
	p.ps = &tkey{kid: "rsa", alg: "PS256", priv: p.rs.priv}
	e.store.AddClient(&core.Client{ID: "pk", Name: "PK App", RedirectURIs: []string{pkCB}, AuthMethod: core.AuthPrivateKeyJWT,
		JWKS: jwks(p.es, p.ed, p.rs), GrantTypes: []string{"authorization_code", "refresh_token", "client_credentials"}})
	e.store.AddClient(&core.Client{ID: "pk2", Name: "PK2", AuthMethod: core.AuthPrivateKeyJWT,
		JWKS: jwks(p.other), GrantTypes: []string{"client_credentials"}})
	return p
}

// rebuild replaces the server by one over p.storage with cfg.
func (p *pkEnv) rebuild(cfg core.Config, consent bool) {
	p.t.Helper()
	var auth core.Authenticator = &testAuth{srv: &p.srv}
	if consent {
		auth = &consentAuth{testAuth{srv: &p.srv}}
	}
	srv, err := core.New(cfg, p.storage, auth)
	if err != nil {
		p.t.Fatal(err)
	}
	p.srv = srv
}

// assertForm is form with the client assertion.
func assertForm(form url.Values, assertion string) url.Values {
	form.Set("client_assertion_type", core.ClientAssertionType)
	form.Set("client_assertion", assertion)
	return form
}

// cc asks for client_credentials with assertion.
func (e *env) cc(assertion string) *fakeResp {
	return e.token(assertForm(url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}, assertion), nil)
}

// pkCode runs authorize + login (+ consent) for client id at redirect
// and returns the code.
func (e *env) pkCode(id, redirect string) string {
	e.t.Helper()
	page := e.authorize(codeQuery(id, redirect, "read", "st"))
	if page.status != 200 {
		e.t.Fatalf("authorize: %d %s", page.status, page.body)
	}
	w := e.login(page, "alice", "pw")
	if w.status == 200 {
		f := hidden(e.t, w.body)
		f.Set("decision", "approve")
		w = e.post("/oauth2/login", f, nil)
	}
	return wantCodeRedirect(e.t, w, redirect, "st").Get("code")
}

func pkCodeForm(code, redirect string) url.Values {
	return url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect}, "code_verifier": {verifier}}
}

func wantOK(t *testing.T, what string, w *fakeResp) map[string]any {
	t.Helper()
	if w.status != 200 {
		t.Fatalf("%s: %d %s", what, w.status, w.body)
	}
	return w.json(t)
}

// wantInvalidClient asserts a refused body authentication: 400
// invalid_client (the kit's answer to a failed body authentication).
func wantInvalidClient(t *testing.T, what string, w *fakeResp) {
	t.Helper()
	if w.status != 400 || w.json(t)["error"] != core.ErrInvalidClient {
		t.Errorf("%s: %d %s, want 400 invalid_client", what, w.status, w.body)
	}
}

// ---- tests ----

// TestPrivateKeyJWTClientCredentials: each key type of the client's set
// authenticates it (the kid picks the key), with or without client_id in
// the body, and the token is the client's.
func TestPrivateKeyJWTClientCredentials(t *testing.T) {
	p := newPKEnv(t, false)
	for _, k := range []*tkey{p.es, p.ed, p.rs, p.ps} {
		m := wantOK(t, k.alg, p.cc(k.assertion(t, "pk", p.now, nil)))
		info, err := p.srv.CheckToken(context.Background(), m["access_token"].(string))
		if err != nil || info.ClientID != "pk" || info.Scope != "read" {
			t.Errorf("%s: CheckToken %+v %v", k.alg, info, err)
		}
	}
	// client_id in the body, equal to sub.
	f := assertForm(url.Values{"grant_type": {"client_credentials"}, "client_id": {"pk"}}, p.es.assertion(t, "pk", p.now, nil))
	wantOK(t, "with client_id", p.token(f, nil))
	// Another client_id than sub.
	f = assertForm(url.Values{"grant_type": {"client_credentials"}, "client_id": {"pk2"}}, p.es.assertion(t, "pk", p.now, nil))
	if w := p.token(f, nil); w.status != 400 || w.json(t)["error"] != core.ErrInvalidRequest {
		t.Errorf("client_id other than sub: %d %s", w.status, w.body)
	}
	// A key set without kids: every key of the alg's type is tried.
	noKID := []*tkey{newTKey(t, "ES256", ""), newTKey(t, "ES256", "")}
	p.store.AddClient(&core.Client{ID: "nokid", AuthMethod: core.AuthPrivateKeyJWT, JWKS: jwks(noKID...), GrantTypes: []string{"client_credentials"}})
	for i, k := range noKID {
		wantOK(t, "key without kid "+string(rune('0'+i)), p.cc(k.assertion(t, "nokid", p.now, nil)))
		k2 := &tkey{kid: "whatever", alg: k.alg, priv: k.priv}
		wantOK(t, "a kid the set does not name", p.cc(k2.assertion(t, "nokid", p.now, nil)))
	}
}

// TestPrivateKeyJWTCodeAndRefusedAuthKeepsCode: a code of a
// private_key_jwt client is redeemed with an assertion; a refused client
// authentication (a bad assertion, a secret) comes before the code is
// looked at, so the right request still redeems it; refresh works too.
func TestPrivateKeyJWTCodeAndRefusedAuthKeepsCode(t *testing.T) {
	p := newPKEnv(t, false)
	code := p.pkCode("pk", pkCB)
	for name, w := range map[string]*fakeResp{
		"expired assertion": p.token(assertForm(pkCodeForm(code, pkCB), p.es.assertion(t, "pk", p.now, func(c map[string]any) {
			c["exp"] = p.now.Add(-time.Second).Unix()
		})), nil),
		"other client's key": p.token(assertForm(pkCodeForm(code, pkCB), p.other.assertion(t, "pk", p.now, nil)), nil),
		"no authentication":  p.token(pkCodeForm(code, pkCB), nil),
	} {
		if w.status/100 != 4 || w.json(t)["error"] != core.ErrInvalidClient {
			t.Errorf("%s: %d %s", name, w.status, w.body)
		}
	}
	if w := p.token(pkCodeForm(code, pkCB), basic("pk", "guess")); w.status != 401 {
		t.Errorf("a secret: %d %s", w.status, w.body)
	}
	m := wantOK(t, "redeem", p.token(assertForm(pkCodeForm(code, pkCB), p.ed.assertion(t, "pk", p.now, nil)), nil))
	rt, _ := m["refresh_token"].(string)
	if rt == "" {
		t.Fatalf("no refresh token: %v", m)
	}
	wantOK(t, "refresh", p.token(assertForm(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, p.rs.assertion(t, "pk", p.now, nil)), nil))
	// The code is spent now.
	if w := p.token(assertForm(pkCodeForm(code, pkCB), p.es.assertion(t, "pk", p.now, nil)), nil); w.status != 400 || w.json(t)["error"] != core.ErrInvalidGrant {
		t.Errorf("second redemption: %d %s", w.status, w.body)
	}
}

// TestPrivateKeyJWTRevokeIntrospect: the revocation and introspection
// endpoints authenticate private_key_jwt clients the same way.
func TestPrivateKeyJWTRevokeIntrospect(t *testing.T) {
	p := newPKEnv(t, false)
	at := wantOK(t, "token", p.cc(p.es.assertion(t, "pk", p.now, nil)))["access_token"].(string)
	intro := func(a string) *fakeResp {
		return p.post("/oauth2/introspect", assertForm(url.Values{"token": {at}}, a), nil)
	}
	if m := wantOK(t, "introspect", intro(p.ed.assertion(t, "pk", p.now, nil))); m["active"] != true || m["client_id"] != "pk" {
		t.Errorf("introspection: %v", m)
	}
	// A refused assertion at introspection is a 401 (RFC 7662 §2.3).
	if w := intro(p.other.assertion(t, "pk", p.now, nil)); w.status != 401 || w.json(t)["error"] != core.ErrInvalidClient {
		t.Errorf("introspection with a wrong key: %d %s", w.status, w.body)
	}
	if w := p.post("/oauth2/revoke", assertForm(url.Values{"token": {at}}, p.es.assertion(t, "pk", p.now, nil)), nil); w.status != 200 {
		t.Fatalf("revoke: %d %s", w.status, w.body)
	}
	if m := wantOK(t, "introspect after revocation", intro(p.es.assertion(t, "pk", p.now, nil))); m["active"] != false {
		t.Errorf("revoked token introspected as %v", m)
	}
	wantInvalidClient(t, "revoke with a wrong key", p.post("/oauth2/revoke", assertForm(url.Values{"token": {at}}, p.other.assertion(t, "pk", p.now, nil)), nil))
}

// TestPrivateKeyJWTRefusals: every rule of R69, each refused with
// invalid_client and accepted when just inside its bound.
func TestPrivateKeyJWTRefusals(t *testing.T) {
	var logs logBuf
	p := newPKEnv(t, false, withLog(&logs))
	now := p.now
	set := func(kv ...any) func(c map[string]any) {
		return func(c map[string]any) {
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i+1] == nil {
					delete(c, kv[i].(string))
				} else {
					c[kv[i].(string)] = kv[i+1]
				}
			}
		}
	}
	tokenURL := issuer + "/oauth2/token"
	pubDER, _ := x509.MarshalPKIXPublicKey(p.rs.priv.Public())
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	esJWK, _ := json.Marshal(p.es.jwk())
	claims, _ := json.Marshal(claimsFor("pk", now))
	hs256 := func(secret []byte) string {
		in := b64([]byte(`{"alg":"HS256","kid":"rsa","typ":"JWT"}`)) + "." + b64(claims)
		mac := hmac.New(sha256.New, secret)
		mac.Write([]byte(in))
		return in + "." + b64(mac.Sum(nil))
	}
	stranger := newTKey(t, "ES256", "es") // the kid of a key in the set, another key
	unknown := newTKey(t, "ES256", "new")
	for _, c := range []struct {
		name      string
		assertion string
		desc      string // in error_description, when the signature held
		log       string // in the log, when it did not
	}{
		{"wrong iss", p.es.assertion(t, "pk", now, set("iss", "pk2")), "iss and sub", ""},
		{"wrong sub", p.es.assertion(t, "pk", now, set("sub", "pk2")), "", "error in cryptographic primitive"}, // sub names pk2: pk2's key set does not verify it
		{"iss missing", p.es.assertion(t, "pk", now, set("iss", nil)), "no iss", ""},
		{"iss not a string", p.es.assertion(t, "pk", now, set("iss", 7)), "iss", ""},
		{"aud the token endpoint", p.es.assertion(t, "pk", now, set("aud", tokenURL)), "aud must be the issuer", ""},
		{"aud an array holding the issuer", p.es.assertion(t, "pk", now, set("aud", []string{issuer})), "aud must be the issuer", ""},
		{"aud another server", p.es.assertion(t, "pk", now, set("aud", "https://other.example.com")), "aud must be the issuer", ""},
		{"aud with a trailing slash", p.es.assertion(t, "pk", now, set("aud", issuer+"/")), "aud must be the issuer", ""},
		{"aud missing", p.es.assertion(t, "pk", now, set("aud", nil)), "no aud", ""},
		{"aud a number", p.es.assertion(t, "pk", now, set("aud", 1)), "aud", ""},
		{"expired", p.es.assertion(t, "pk", now, set("exp", now.Unix())), "expired", ""},
		{"exp missing", p.es.assertion(t, "pk", now, set("exp", nil)), "no exp", ""},
		{"exp a string", p.es.assertion(t, "pk", now, set("exp", "soon")), "exp", ""},
		{"exp too far after iat", p.es.assertion(t, "pk", now, set("exp", now.Add(5*time.Minute+time.Second).Unix())), "too long", ""},
		{"exp too far, no iat", p.es.assertion(t, "pk", now, set("iat", nil, "exp", now.Add(5*time.Minute+time.Second).Unix())), "too long", ""},
		{"iat 11 s ahead", p.es.assertion(t, "pk", now, set("iat", now.Add(11*time.Second).Unix())), "iat", ""},
		{"nbf 11 s ahead", p.es.assertion(t, "pk", now, set("nbf", now.Add(11*time.Second).Unix())), "nbf", ""},
		{"jti missing", p.es.assertion(t, "pk", now, set("jti", nil)), "no jti", ""},
		{"jti empty", p.es.assertion(t, "pk", now, set("jti", "")), "no jti", ""},
		{"typ of an access token", p.es.sign(t, claimsFor("pk", now), map[string]any{"typ": "at+jwt"}), "typ", ""},
		{"alg none", b64([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + b64(claims) + ".", "", "unexpected signature algorithm"},
		{"HS256 with the public key (PEM) as secret", hs256(pubPEM), "", "unexpected signature algorithm"},
		{"HS256 with the public key (JWK) as secret", hs256(esJWK), "", "unexpected signature algorithm"},
		{"a key not in the set, a kid of the set", stranger.assertion(t, "pk", now, nil), "", "error in cryptographic primitive"},
		{"a key not in the set, its own kid", unknown.assertion(t, "pk", now, nil), "", "no key of the client fits"},
		{"another client's key", p.other.assertion(t, "pk", now, nil), "", "error in cryptographic primitive"},
		{"an ES256 kid under EdDSA", (&tkey{kid: "es", alg: "EdDSA", priv: p.ed.priv}).assertion(t, "pk", now, nil), "", "no key of the client fits"},
		{"a jwk in the header", p.es.sign(t, claimsFor("pk", now), map[string]any{"jwk": p.es.jwk()}), "", "the header carries a key"},
		{"not a JWT", "not-a-jwt", "", ""},
		{"payload not JSON", b64([]byte(`{"alg":"ES256"}`)) + "." + b64([]byte("pk")) + ".c2ln", "", ""},
	} {
		before := len(logs.String())
		w := p.cc(c.assertion)
		wantInvalidClient(t, c.name, w)
		if d, _ := w.json(t)["error_description"].(string); c.desc != "" && !strings.Contains(d, c.desc) {
			t.Errorf("%s: error_description %q lacks %q", c.name, d, c.desc)
		}
		if l := logs.String()[before:]; c.log != "" && !strings.Contains(l, c.log) {
			t.Errorf("%s: log %q lacks %q", c.name, l, c.log)
		}
	}
	for _, c := range []struct{ name, assertion string }{
		{"iat 9 s ahead", p.es.assertion(t, "pk", now, set("iat", now.Add(9*time.Second).Unix()))},
		{"nbf 9 s ahead", p.es.assertion(t, "pk", now, set("nbf", now.Add(9*time.Second).Unix()))},
		{"no iat", p.es.assertion(t, "pk", now, set("iat", nil))},
		{"exp just 5 min after iat", p.es.assertion(t, "pk", now, set("iat", now.Add(-time.Minute).Unix(), "exp", now.Add(4*time.Minute).Unix()))},
		{"fractional NumericDates", p.es.assertion(t, "pk", now, set("iat", float64(now.Unix())+0.5, "exp", float64(now.Unix())+30.25))},
		{"typ client-authentication+jwt", p.es.sign(t, claimsFor("pk", now), map[string]any{"typ": "client-authentication+jwt"})},
		{"no typ, no kid", signRaw(p.es.priv, "ES256", []byte(`{"alg":"ES256"}`), mustJSON(claimsFor("pk", now)))},
	} {
		wantOK(t, c.name, p.cc(c.assertion))
	}
	for name, f := range map[string]url.Values{
		"wrong client_assertion_type": {"grant_type": {"client_credentials"}, "client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:saml2-bearer"},
			"client_assertion": {p.es.assertion(t, "pk", now, nil)}},
		"client_assertion without its type": {"grant_type": {"client_credentials"}, "client_assertion": {p.es.assertion(t, "pk", now, nil)}},
		"client_assertion_type alone":       {"grant_type": {"client_credentials"}, "client_assertion_type": {core.ClientAssertionType}},
	} {
		w := p.token(f, nil)
		if w.status != 400 || (w.json(t)["error"] != core.ErrInvalidClient && w.json(t)["error"] != core.ErrInvalidRequest) {
			t.Errorf("%s: %d %s", name, w.status, w.body)
		}
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// TestPrivateKeyJWTTokenEndpointAudience: with
// AcceptTokenEndpointAudience, the token endpoint URL is accepted too, as
// a string or in an array (old clients); an unrelated aud still is not.
func TestPrivateKeyJWTTokenEndpointAudience(t *testing.T) {
	p := newPKEnv(t, false, func(c *core.Config) { c.ClientAssertions.AcceptTokenEndpointAudience = true })
	tokenURL := issuer + "/oauth2/token"
	for _, aud := range []any{issuer, tokenURL, []string{tokenURL}, []string{"https://rs.example.com", tokenURL}, []string{issuer}} {
		wantOK(t, "aud "+string(mustJSON(aud)), p.cc(p.es.assertion(t, "pk", p.now, func(c map[string]any) { c["aud"] = aud })))
	}
	for _, aud := range []any{"https://other.example.com", []string{"https://other.example.com"}, issuer + "/oauth2/introspect", []string{}} {
		wantInvalidClient(t, "aud "+string(mustJSON(aud)), p.cc(p.es.assertion(t, "pk", p.now, func(c map[string]any) { c["aud"] = aud })))
	}
}

// TestPrivateKeyJWTMethodIsStrict: a private_key_jwt client cannot use a
// secret, a secret client cannot use an assertion, and an assertion does
// not combine with Basic or client_secret.
func TestPrivateKeyJWTMethodIsStrict(t *testing.T) {
	p := newPKEnv(t, false)
	cc := url.Values{"grant_type": {"client_credentials"}}
	if w := p.token(cc, basic("pk", "anything")); w.status != 401 || w.json(t)["error"] != core.ErrInvalidClient {
		t.Errorf("Basic for a private_key_jwt client: %d %s", w.status, w.body)
	}
	wantInvalidClient(t, "client_secret for a private_key_jwt client", p.token(url.Values{"grant_type": {"client_credentials"}, "client_id": {"pk"}, "client_secret": {"x"}}, nil))
	wantInvalidClient(t, "client_id alone for a private_key_jwt client", p.token(url.Values{"grant_type": {"client_credentials"}, "client_id": {"pk"}}, nil))
	// A secret client ("conf") and a public one ("pub") with assertions.
	k := newTKey(t, "ES256", "k")
	wantInvalidClient(t, "assertion for a secret client", p.cc(k.assertion(t, "conf", p.now, nil)))
	wantInvalidClient(t, "assertion for a public client", p.cc(k.assertion(t, "pub", p.now, nil)))
	wantInvalidClient(t, "assertion for an unknown client", p.cc(k.assertion(t, "nobody", p.now, nil)))
	// Even a secret client that lists keys stays a secret client.
	p.store.AddClient(&core.Client{ID: "sk", SecretHash: mustHash(t, "s3cret-s3cret-s3cret-s3cret-s3cret"), JWKS: jwks(k), GrantTypes: []string{"client_credentials"}})
	wantInvalidClient(t, "assertion for a secret client with keys", p.cc(k.assertion(t, "sk", p.now, nil)))
	wantOK(t, "the secret of that client", p.token(cc, basic("sk", "s3cret-s3cret-s3cret-s3cret-s3cret")))

	a := p.es.assertion(t, "pk", p.now, nil)
	for name, w := range map[string]*fakeResp{
		"Basic + assertion":         p.token(assertForm(url.Values{"grant_type": {"client_credentials"}}, a), basic("pk", "x")),
		"Basic of conf + assertion": p.token(assertForm(url.Values{"grant_type": {"client_credentials"}}, a), basic("conf", p.secret)),
		"client_secret + assertion": p.token(assertForm(url.Values{"grant_type": {"client_credentials"}, "client_secret": {"x"}}, a), nil),
	} {
		if w.status != 400 || w.json(t)["error"] != core.ErrInvalidRequest {
			t.Errorf("%s: %d %s, want 400 invalid_request", name, w.status, w.body)
		}
	}
	// None of these spent the assertion.
	wantOK(t, "the assertion after the refusals", p.cc(a))
}

func mustHash(t *testing.T, secret string) string {
	h, err := core.HashSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestPrivateKeyJWTReplay: an assertion is accepted once — also across
// two servers sharing one store, also when the copies race.
func TestPrivateKeyJWTReplay(t *testing.T) {
	p := newPKEnv(t, false)
	a := p.es.assertion(t, "pk", p.now, nil)
	wantOK(t, "first use", p.cc(a))
	w := p.cc(a)
	wantInvalidClient(t, "second use", w)
	if d, _ := w.json(t)["error_description"].(string); !strings.Contains(d, "used before") {
		t.Errorf("replay description %q", d)
	}
	// Another client may use the same jti: the record is per client.
	wantOK(t, "same jti, another client", p.cc(p.other.assertion(t, "pk2", p.now, func(c map[string]any) { c["jti"] = jtiOf(a) })))

	// Two instances on one store.
	a1 := p.srv
	p.rebuild(p.srv.Config(), false)
	a2 := p.srv
	if a1 == a2 {
		t.Fatal("one server")
	}
	srvs := []*core.Server{a1, a2}
	b := p.es.assertion(t, "pk", p.now, nil)
	p.srv = a1
	wantOK(t, "instance A", p.cc(b))
	p.srv = a2
	wantInvalidClient(t, "the copy at instance B", p.cc(b))

	const n = 16
	for round := 0; round < 3; round++ {
		c := p.ed.assertion(t, "pk", p.now, nil)
		var ok atomic.Int32
		var wg sync.WaitGroup
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func(srv *core.Server) {
				defer wg.Done()
				w := newResp()
				srv.Handle(w, &fakeReq{method: "POST", path: "/oauth2/token", hdr: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}},
					body: assertForm(url.Values{"grant_type": {"client_credentials"}}, c).Encode()})
				if w.status == 200 {
					ok.Add(1)
				}
			}(srvs[i%2])
		}
		wg.Wait()
		if ok.Load() != 1 {
			t.Errorf("round %d: %d of %d racing copies accepted, want 1", round, ok.Load(), n)
		}
	}
}

func jtiOf(assertion string) string {
	parts := strings.Split(assertion, ".")
	raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	s, _ := m["jti"].(string)
	return s
}

// TestPrivateKeyJWTThrottled: failed assertions count like wrong secrets.
func TestPrivateKeyJWTThrottled(t *testing.T) {
	p := newPKEnv(t, false, func(c *core.Config) { c.AuthThrottle = core.Throttle{PerAccount: 3, PerAddr: 100} })
	for i := 0; i < 3; i++ {
		wantInvalidClient(t, "wrong key", p.cc(p.other.assertion(t, "pk", p.now, nil)))
	}
	w := p.cc(p.es.assertion(t, "pk", p.now, nil))
	if w.status != 429 || w.hdr.Get("Retry-After") == "" {
		t.Errorf("after 3 failures: %d %s", w.status, w.body)
	}
	p.now = p.now.Add(2 * time.Minute)
	wantOK(t, "after the window", p.cc(p.es.assertion(t, "pk", p.now, nil)))
}

// TestPrivateKeyJWTConfig: Algs narrows the algorithms (and metadata says
// so); New refuses algorithms it does not know and a lifetime past 1 h.
func TestPrivateKeyJWTConfig(t *testing.T) {
	p := newPKEnv(t, false, func(c *core.Config) { c.ClientAssertions.Algs = []string{"ES256", "EdDSA"} })
	wantOK(t, "ES256", p.cc(p.es.assertion(t, "pk", p.now, nil)))
	wantInvalidClient(t, "RS256 not allowed", p.cc(p.rs.assertion(t, "pk", p.now, nil)))
	md := p.do(&fakeReq{method: "GET", path: "/.well-known/oauth-authorization-server"}).json(t)
	list := func(k string) []string {
		var out []string
		raw, _ := md[k].([]any)
		for _, v := range raw {
			out = append(out, v.(string))
		}
		return out
	}
	for _, k := range []string{"token_endpoint_auth_methods_supported", "revocation_endpoint_auth_methods_supported", "introspection_endpoint_auth_methods_supported"} {
		if !slices.Contains(list(k), "private_key_jwt") {
			t.Errorf("%s = %q", k, list(k))
		}
	}
	if got := list("introspection_endpoint_auth_methods_supported"); slices.Contains(got, "none") {
		t.Errorf("introspection advertises none: %q", got)
	}
	for _, k := range []string{"token_endpoint_auth_signing_alg_values_supported", "revocation_endpoint_auth_signing_alg_values_supported", "introspection_endpoint_auth_signing_alg_values_supported"} {
		if got := list(k); !slices.Equal(got, []string{"ES256", "EdDSA"}) {
			t.Errorf("%s = %q", k, got)
		}
	}
	for name, mod := range map[string]func(*core.Config){
		"HS256":        func(c *core.Config) { c.ClientAssertions.Algs = []string{"HS256"} },
		"none":         func(c *core.Config) { c.ClientAssertions.Algs = []string{"none"} },
		"2h lifetimes": func(c *core.Config) { c.ClientAssertions.MaxLifetime = 2 * time.Hour },
	} {
		cfg := p.srv.Config()
		mod(&cfg)
		if _, err := core.New(cfg, p.storage, &testAuth{}); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
	// A longer MaxLifetime lets a longer assertion through.
	q := newPKEnv(t, false, func(c *core.Config) { c.ClientAssertions.MaxLifetime = 10 * time.Minute })
	wantOK(t, "9 min with MaxLifetime 10 min", q.cc(q.es.assertion(t, "pk", q.now, func(c map[string]any) { c["exp"] = q.now.Add(9 * time.Minute).Unix() })))
}

// TestPrivateKeyJWTWithoutReplayCache: a store without ReplayCache cannot
// spend jtis: private_key_jwt clients are refused (logged once), the
// method is not advertised.
func TestPrivateKeyJWTWithoutReplayCache(t *testing.T) {
	var logs logBuf
	p := newPKEnv(t, false, withLog(&logs))
	p.storage = bareStore{p.store}
	p.rebuild(p.srv.Config(), false)
	for i := 0; i < 2; i++ {
		w := p.cc(p.es.assertion(t, "pk", p.now, nil))
		wantInvalidClient(t, "no ReplayCache", w)
	}
	if n := strings.Count(logs.String(), "private_key_jwt needs a Storage with core.ReplayCache"); n != 1 {
		t.Errorf("the missing ReplayCache was logged %d times, want once:\n%s", n, logs.String())
	}
	md := string(p.do(&fakeReq{method: "GET", path: "/.well-known/oauth-authorization-server"}).body)
	if strings.Contains(md, "private_key_jwt") || strings.Contains(md, "auth_signing_alg") {
		t.Errorf("metadata advertises private_key_jwt without a ReplayCache: %s", md)
	}
	wantOK(t, "secret clients still work", p.token(url.Values{"grant_type": {"client_credentials"}}, basic("conf", p.secret)))
}

// ---- jwks_uri ----

// jwksServer serves a key set over TLS and counts the fetches.
type jwksServer struct {
	*httptest.Server
	hits   atomic.Int64
	body   atomic.Pointer[string]
	header atomic.Pointer[[2]string] // one header line to add
	status atomic.Int64
}

func newJWKSServer(t *testing.T, set string) *jwksServer {
	s := &jwksServer{}
	s.body.Store(&set)
	s.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		if h := s.header.Load(); h != nil {
			w.Header().Set(h[0], h[1])
		}
		if st := s.status.Load(); st != 0 {
			w.WriteHeader(int(st))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(*s.body.Load()))
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(v string) { s.body.Store(&v) }

func (s *jwksServer) trust(c *core.Config) {
	pool := x509.NewCertPool()
	pool.AddCert(s.Certificate())
	c.ClientAssertions.AllowLoopbackForTests = true
	c.ClientAssertions.TLS = &tls.Config{RootCAs: pool}
}

// TestPrivateKeyJWTJWKSURI: keys fetched from jwks_uri are cached (one
// fetch for many authentications, concurrent first uses included) within
// Cache-Control's bounds; an unknown kid (the client rotated its key)
// refetches the set, at most once per 30 s; a failed fetch refuses, and
// is not retried for 30 s either.
func TestPrivateKeyJWTJWKSURI(t *testing.T) {
	k1, k2, k3 := newTKey(t, "ES256", "k1"), newTKey(t, "EdDSA", "k2"), newTKey(t, "RS256", "k3")
	js := newJWKSServer(t, jwks(k1))
	p := newPKEnv(t, false, js.trust)
	p.store.AddClient(&core.Client{ID: "pku", AuthMethod: core.AuthPrivateKeyJWT, JWKSURI: js.URL + "/jwks.json", GrantTypes: []string{"client_credentials"}})
	hits := func(want int64, when string) {
		t.Helper()
		if n := js.hits.Load(); n != want {
			t.Errorf("%s: %d fetches, want %d", when, n, want)
		}
	}

	var wg sync.WaitGroup
	var ok atomic.Int32
	for i := 0; i < 8; i++ {
		a := k1.assertion(t, "pku", p.now, nil)
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := newResp()
			p.srv.Handle(w, &fakeReq{method: "POST", path: "/oauth2/token", hdr: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}},
				body: assertForm(url.Values{"grant_type": {"client_credentials"}}, a).Encode()})
			if w.status == 200 {
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 8 {
		t.Errorf("%d of 8 concurrent first authentications succeeded", ok.Load())
	}
	for i := 0; i < 5; i++ {
		wantOK(t, "cached", p.cc(k1.assertion(t, "pku", p.now, nil)))
	}
	hits(1, "after 13 authentications")

	// The client rotates to k2: the unknown kid refetches.
	js.set(jwks(k1, k2))
	p.now = p.now.Add(31 * time.Second)
	wantOK(t, "new key k2", p.cc(k2.assertion(t, "pku", p.now, nil)))
	hits(2, "after the rotation")
	// Unknown kids right after: no refetch within 30 s, whatever they say.
	js.set(jwks(k1, k2, k3))
	for i := 0; i < 3; i++ {
		wantInvalidClient(t, "k3 within 30 s", p.cc(k3.assertion(t, "pku", p.now, nil)))
		wantInvalidClient(t, "random kid", p.cc((&tkey{kid: rand.Text(), alg: "ES256", priv: k1.priv}).assertion(t, "pku", p.now, nil)))
	}
	hits(2, "unknown kids within 30 s")
	p.now = p.now.Add(31 * time.Second)
	wantOK(t, "k3 after 30 s", p.cc(k3.assertion(t, "pku", p.now, nil)))
	hits(3, "k3 after 30 s")
	wantOK(t, "k1 still", p.cc(k1.assertion(t, "pku", p.now, nil)))
	hits(3, "known kid")

	// Without caching headers a set is kept 5 minutes.
	p.now = p.now.Add(5*time.Minute + time.Second)
	js.set(jwks(k2))
	wantInvalidClient(t, "k1 dropped by the client", p.cc(k1.assertion(t, "pku", p.now, nil)))
	hits(4, "after 5 minutes")
	wantOK(t, "k2", p.cc(k2.assertion(t, "pku", p.now, nil)))

	// max-age is honoured within [1 min, 1 h].
	for _, c := range []struct {
		cc        string
		keptUntil time.Duration
	}{{"max-age=120", 2 * time.Minute}, {"no-store", time.Minute}, {"max-age=86400", time.Hour}} {
		js.header.Store(&[2]string{"Cache-Control", c.cc})
		p.now = p.now.Add(2 * time.Hour) // everything cached so far expired
		before := js.hits.Load()
		wantOK(t, c.cc, p.cc(k2.assertion(t, "pku", p.now, nil)))
		at := p.now
		p.now = at.Add(c.keptUntil - time.Second)
		wantOK(t, c.cc+" cached", p.cc(k2.assertion(t, "pku", p.now, nil)))
		p.now = at.Add(c.keptUntil)
		wantOK(t, c.cc+" expired", p.cc(k2.assertion(t, "pku", p.now, nil)))
		if n := js.hits.Load() - before; n != 2 {
			t.Errorf("%s: %d fetches, want 2", c.cc, n)
		}
	}
	js.header.Store(nil)

	// A failing jwks_uri refuses, and is asked again only after 30 s.
	p.now = p.now.Add(2 * time.Hour)
	js.status.Store(500)
	before := js.hits.Load()
	for i := 0; i < 3; i++ {
		wantInvalidClient(t, "jwks_uri answers 500", p.cc(k2.assertion(t, "pku", p.now, nil)))
	}
	if n := js.hits.Load() - before; n != 1 {
		t.Errorf("a failing jwks_uri was fetched %d times within 30 s, want 1", n)
	}
	js.status.Store(0)
	p.now = p.now.Add(31 * time.Second)
	wantOK(t, "jwks_uri back", p.cc(k2.assertion(t, "pku", p.now, nil)))

	// A set that is not a valid public key set is refused.
	p.now = p.now.Add(2 * time.Hour)
	js.set(`{"keys":[{"kty":"oct","k":"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"}]}`)
	wantInvalidClient(t, "symmetric key set", p.cc(k2.assertion(t, "pku", p.now, nil)))
}

// TestPrivateKeyJWTJWKSURISSRF: without the test switch the fetcher
// refuses loopback: the jwks_uri of a client cannot reach internal hosts.
func TestPrivateKeyJWTJWKSURISSRF(t *testing.T) {
	k := newTKey(t, "ES256", "k")
	js := newJWKSServer(t, jwks(k))
	p := newPKEnv(t, false, func(c *core.Config) { js.trust(c); c.ClientAssertions.AllowLoopbackForTests = false })
	p.store.AddClient(&core.Client{ID: "pku", AuthMethod: core.AuthPrivateKeyJWT, JWKSURI: js.URL + "/jwks.json", GrantTypes: []string{"client_credentials"}})
	wantInvalidClient(t, "loopback jwks_uri", p.cc(k.assertion(t, "pku", p.now, nil)))
	if n := js.hits.Load(); n != 0 {
		t.Errorf("%d requests reached the loopback server", n)
	}
	p.store.AddClient(&core.Client{ID: "pkh", AuthMethod: core.AuthPrivateKeyJWT, JWKSURI: "http://example.com/jwks", GrantTypes: []string{"client_credentials"}})
	wantInvalidClient(t, "http jwks_uri", p.cc(k.assertion(t, "pkh", p.now, nil)))
}

// ---- registration and CIMD ----

// TestPrivateKeyJWTRegistration: a client registers with private_key_jwt
// and its jwks (or jwks_uri), gets no secret, and authenticates with an
// assertion; without keys, or with an algorithm not offered, the
// registration is refused. An update keeps it secretless.
func TestPrivateKeyJWTRegistration(t *testing.T) {
	p := newPKEnv(t, true, openRegistration, withCCRegistration)
	k := newTKey(t, "ES256", "reg")
	body := `{"token_endpoint_auth_method":"private_key_jwt","grant_types":["client_credentials"],"client_name":"PK reg",` +
		`"token_endpoint_auth_signing_alg":"ES256","jwks":` + jwks(k) + `}`
	w := p.register(body, nil, "")
	if w.status != 201 {
		t.Fatalf("register: %d %s", w.status, w.body)
	}
	m := w.json(t)
	id, _ := m["client_id"].(string)
	if _, ok := m["client_secret"]; ok {
		t.Errorf("a private_key_jwt client got a secret: %v", m)
	}
	if _, ok := m["client_secret_expires_at"]; ok {
		t.Errorf("client_secret_expires_at without a secret: %v", m)
	}
	if m["token_endpoint_auth_method"] != "private_key_jwt" || m["jwks"] == nil {
		t.Errorf("registration response: %v", m)
	}
	c, err := p.store.GetClient(context.Background(), id)
	if err != nil || c.AuthMethod != core.AuthPrivateKeyJWT || c.Public || c.SecretHash != "" || c.JWKS == "" || c.JWKSURI != "" {
		t.Fatalf("stored client %+v %v", c, err)
	}
	wantOK(t, "client_credentials of the registered client", p.cc(k.assertion(t, id, p.now, nil)))
	wantInvalidClient(t, "another key", p.cc(newTKey(t, "ES256", "reg").assertion(t, id, p.now, nil)))

	// RFC 7592 update: still no secret, still the keys.
	regToken, _ := m["registration_access_token"].(string)
	upd := `{"client_id":"` + id + `","token_endpoint_auth_method":"private_key_jwt","grant_types":["client_credentials"],"jwks":` + jwks(k) + `}`
	uw := p.do(&fakeReq{method: "PUT", path: "/register", query: "client_id=" + url.QueryEscape(id), body: upd,
		hdr: http.Header{"Content-Type": {"application/json"}, "Authorization": {"Bearer " + regToken}}})
	if uw.status != 200 {
		t.Fatalf("update: %d %s", uw.status, uw.body)
	}
	if _, ok := uw.json(t)["client_secret"]; ok {
		t.Errorf("the update issued a secret: %s", uw.body)
	}
	wantOK(t, "after the update", p.cc(k.assertion(t, id, p.now, nil)))

	// Other methods are recorded too.
	for _, method := range []string{"client_secret_basic", "client_secret_post", "none"} {
		b := `{"token_endpoint_auth_method":"` + method + `","redirect_uris":["https://a.example/cb"]}`
		w := p.register(b, nil, "")
		if w.status != 201 {
			t.Fatalf("%s: %d %s", method, w.status, w.body)
		}
		c, _ := p.store.GetClient(context.Background(), w.json(t)["client_id"].(string))
		if c == nil || c.AuthMethod != method {
			t.Errorf("%s: stored %+v", method, c)
		}
	}

	// jwks_uri.
	w = p.register(`{"token_endpoint_auth_method":"private_key_jwt","grant_types":["client_credentials"],"jwks_uri":"https://keys.example.com/jwks"}`, nil, "")
	if w.status != 201 {
		t.Fatalf("jwks_uri: %d %s", w.status, w.body)
	}
	c, _ = p.store.GetClient(context.Background(), w.json(t)["client_id"].(string))
	if c == nil || c.JWKSURI != "https://keys.example.com/jwks" || c.JWKS != "" || c.SecretHash != "" {
		t.Errorf("jwks_uri client stored as %+v", c)
	}

	for name, b := range map[string]string{
		"no keys":           `{"token_endpoint_auth_method":"private_key_jwt","grant_types":["client_credentials"]}`,
		"empty key set":     `{"token_endpoint_auth_method":"private_key_jwt","grant_types":["client_credentials"],"jwks":{"keys":[]}}`,
		"HS256 signing alg": `{"token_endpoint_auth_method":"private_key_jwt","grant_types":["client_credentials"],"token_endpoint_auth_signing_alg":"HS256","jwks":` + jwks(k) + `}`,
		"none signing alg":  `{"token_endpoint_auth_method":"private_key_jwt","grant_types":["client_credentials"],"token_endpoint_auth_signing_alg":"none","jwks":` + jwks(k) + `}`,
		"http jwks_uri":     `{"token_endpoint_auth_method":"private_key_jwt","grant_types":["client_credentials"],"jwks_uri":"http://keys.example.com/jwks"}`,
		"client_secret_jwt": `{"token_endpoint_auth_method":"client_secret_jwt","grant_types":["client_credentials"]}`,
	} {
		w := p.register(b, nil, "")
		if w.status != 400 || w.json(t)["error"] != core.ErrInvalidClientMetadata {
			t.Errorf("%s: %d %s", name, w.status, w.body)
		}
	}

	// Without a ReplayCache, private_key_jwt is not offered.
	q := newPKEnv(t, true, openRegistration)
	q.storage = noReplayRegStore{q.store, q.store}
	q.rebuild(q.srv.Config(), true)
	if w := q.register(body, nil, ""); w.status != 400 || !strings.Contains(string(w.body), "not offered") {
		t.Errorf("private_key_jwt without a ReplayCache: %d %s", w.status, w.body)
	}
}

// noReplayRegStore is a Storage with a RegistrationStore and no
// ReplayCache.
type noReplayRegStore struct {
	core.Storage
	core.RegistrationStore
}

// TestPrivateKeyJWTCIMD: a client metadata document with private_key_jwt
// and its jwks is a confidential client: the code flow completes with an
// assertion whose sub is the document's URL, never with an empty secret.
func TestPrivateKeyJWTCIMD(t *testing.T) {
	k := newTKey(t, "EdDSA", "cimd")
	s := newCIMDServer(t, func(s *cimdServer, w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(cimdDoc("https://"+r.Host+r.URL.RequestURI(), func(m map[string]any) {
			m["token_endpoint_auth_method"] = "private_key_jwt"
			m["jwks"] = json.RawMessage(jwks(k))
		}))
	})
	e, _ := newCIMDEnv(t, s, quietLog)
	id := s.id()
	code, _ := e.cimdCode(id)
	if w := e.token(cimdTokenForm(code), http.Header{"Authorization": {core.EncodeBasic(id, "")}}); w.status != 401 {
		t.Errorf("empty secret for a private_key_jwt document: %d %s", w.status, w.body)
	}
	wantInvalidClient(t, "another key", e.token(assertForm(cimdTokenForm(code), newTKey(t, "EdDSA", "cimd").assertion(t, id, e.now, nil)), nil))
	m := wantOK(t, "token", e.token(assertForm(cimdTokenForm(code), k.assertion(t, id, e.now, nil)), nil))
	info, err := e.srv.CheckToken(context.Background(), m["access_token"].(string))
	if err != nil || info.ClientID != id || info.UserID != "alice" {
		t.Errorf("CheckToken: %+v %v", info, err)
	}
}

// TestPrivateKeyJWTCIMDRefusals: a document with private_key_jwt needs
// keys, and still may not ask for client_credentials.
func TestPrivateKeyJWTCIMDRefusals(t *testing.T) {
	k := newTKey(t, "ES256", "cimd")
	for _, c := range []struct {
		name, reason string
		mod          func(m map[string]any)
	}{
		{"no keys", "needs jwks or jwks_uri", func(m map[string]any) { m["token_endpoint_auth_method"] = "private_key_jwt" }},
		{"client_credentials", "client_credentials", func(m map[string]any) {
			m["token_endpoint_auth_method"] = "private_key_jwt"
			m["jwks"] = json.RawMessage(jwks(k))
			m["grant_types"] = []string{"authorization_code", "client_credentials"}
		}},
		{"signing alg", "token_endpoint_auth_signing_alg", func(m map[string]any) {
			m["token_endpoint_auth_method"] = "private_key_jwt"
			m["jwks"] = json.RawMessage(jwks(k))
			m["token_endpoint_auth_signing_alg"] = "HS256"
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newCIMDServer(t, func(s *cimdServer, w http.ResponseWriter, r *http.Request) {
				_, _ = w.Write(cimdDoc("https://"+r.Host+r.URL.RequestURI(), c.mod))
			})
			e, _ := newCIMDEnv(t, s, quietLog)
			wantCIMDRefusal(t, e.authorize(codeQuery(s.id(), cimdRedirect, "read", "st")), c.reason)
		})
	}
}

// ---- benchmark ----

// BenchmarkClientCredentialsPrivateKeyJWT is BenchmarkTokenClientCredentials
// with an ES256 client assertion instead of Basic: signature
// verification and the jti's ReplayCache record on top. The assertions
// are signed before the timer starts.
func BenchmarkClientCredentialsPrivateKeyJWT(b *testing.B) {
	k := newRKit(b)
	key := newTKey(b, "ES256", "bench")
	k.store.AddClient(&core.Client{ID: "pkb", AuthMethod: core.AuthPrivateKeyJWT, JWKS: jwks(key), GrantTypes: []string{"client_credentials"}})
	bodies := make([]string, b.N)
	for i := range bodies {
		bodies[i] = assertForm(url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}, key.assertion(b, "pkb", k.now, nil)).Encode()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		h := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
		if w := k.post("/oauth2/token", bodies[i], h); w.status != 200 {
			b.Fatalf("client_credentials: %d %s", w.status, w.body)
		}
	}
}
