package core_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gojose "github.com/go-jose/go-jose/v4"

	"github.com/oauth2kit/oauth2kit/core"
	"github.com/oauth2kit/oauth2kit/core/memstore"
)

// The JWT bearer grant accepting Identity Assertion JWT Authorization
// Grants (RFC 7523 §2.1, draft-ietf-oauth-identity-assertion-authz-grant).

const idpIssuer = "https://idp.example.com"

// jbEnv is newEnv with an enterprise identity provider trusted for ID-JAGs
// (inline key set) and "agent", a confidential client allowed the grant
// with scopes read and write.
type jbEnv struct {
	*env
	idp         *tkey // ES256, kid idp-1
	agentSecret string
}

func trustIDP(keys string) func(*core.Config) {
	return func(c *core.Config) {
		c.JWTBearer = core.JWTBearer{Issuers: []core.TrustedIssuer{{Issuer: idpIssuer, JWKS: keys}}}
	}
}

func newJBEnv(t *testing.T, mod ...func(*core.Config)) *jbEnv {
	t.Helper()
	idp := newTKey(t, "ES256", "idp-1")
	e := newEnv(t, false, append([]func(*core.Config){quietLog, relaxedThrottle, trustIDP(jwks(idp))}, mod...)...)
	j := &jbEnv{env: e, idp: idp}
	j.agentSecret = e.addClient(core.ClientSpec{ID: "agent", Name: "Agent", GrantTypes: []string{core.GrantJWTBearer}, Scopes: []string{"read", "write"}})
	return j
}

// idjagClaims are valid ID-JAG claims for "agent" at now.
func (j *jbEnv) idjagClaims() map[string]any {
	return map[string]any{
		"iss": idpIssuer, "sub": "alice@corp", "aud": issuer, "client_id": "agent",
		"jti": rand.Text(), "iat": j.now.Unix(), "exp": j.now.Add(5 * time.Minute).Unix(),
		"scope": "read write", "email": "alice@corp.example", "amr": []string{"pwd", "mfa"},
	}
}

// signJWT signs claims with k under its alg and kid, with header typ
// ("" for none).
func signJWT(t testing.TB, k *tkey, typ string, claims map[string]any) string {
	t.Helper()
	opts := &gojose.SignerOptions{}
	if typ != "" {
		opts = opts.WithType(gojose.ContentType(typ))
	}
	if k.kid != "" {
		opts = opts.WithHeader("kid", k.kid)
	}
	sg, err := gojose.NewSigner(gojose.SigningKey{Algorithm: gojose.SignatureAlgorithm(k.alg), Key: k.priv}, opts)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	obj, err := sg.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	s, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// idjag is a valid ID-JAG for "agent" signed by the identity provider,
// changed by mod.
func (j *jbEnv) idjag(mod func(c map[string]any)) string {
	c := j.idjagClaims()
	if mod != nil {
		mod(c)
	}
	return signJWT(j.t, j.idp, core.IDJAGType, c)
}

// grant presents assertion as "agent" (HTTP Basic) with the extra
// parameters.
func (j *jbEnv) grant(assertion string, extra url.Values) *fakeResp {
	f := url.Values{"grant_type": {core.GrantJWTBearer}, "assertion": {assertion}}
	for k, v := range extra {
		f[k] = v
	}
	return j.token(f, basic("agent", j.agentSecret))
}

// wantGrantOK asserts a successful token response and returns the access
// token and its info, checked for the default audience.
func (j *jbEnv) wantGrantOK(what string, w *fakeResp, scope string) (string, *core.TokenInfo) {
	j.t.Helper()
	return j.wantGrantOKFor(what, w, scope, "")
}

// wantGrantOKFor is wantGrantOK for a token checked at resource aud.
func (j *jbEnv) wantGrantOKFor(what string, w *fakeResp, scope, aud string) (string, *core.TokenInfo) {
	j.t.Helper()
	m := wantOK(j.t, what, w)
	wantJSONHeaders(j.t, w)
	if m["token_type"] != "Bearer" || m["scope"] != scope || m["expires_in"] != float64(3600) {
		j.t.Errorf("%s: token_type %v scope %v expires_in %v, want Bearer %q 3600", what, m["token_type"], m["scope"], m["expires_in"], scope)
	}
	for _, k := range []string{"refresh_token", "id_token"} {
		if _, ok := m[k]; ok {
			j.t.Errorf("%s: the response carries a %s", what, k)
		}
	}
	at, _ := m["access_token"].(string)
	info, err := j.srv.CheckTokenFor(context.Background(), at, aud)
	if err != nil {
		j.t.Fatalf("%s: the access token does not check: %v", what, err)
	}
	return at, info
}

func TestJWTBearerGrant(t *testing.T) {
	j := newJBEnv(t)
	at, info := j.wantGrantOK("ID-JAG", j.grant(j.idjag(nil), nil), "read write")
	if info.UserID != "alice@corp" || info.ClientID != "agent" || info.Scope != "read write" || info.Audience != issuer ||
		info.ClientCredentials || info.GrantID == "" || info.JKT != "" || !info.ExpiresAt.Equal(j.now.Add(time.Hour)) {
		t.Errorf("token info %+v", info)
	}

	// As the Go MCP SDK sends it: client_secret_post and an empty code.
	f := url.Values{"grant_type": {core.GrantJWTBearer}, "assertion": {j.idjag(nil)}, "client_id": {"agent"},
		"client_secret": {j.agentSecret}, "code": {""}}
	j.wantGrantOK("client_secret_post", j.token(f, nil), "read write")

	// aud as an array of the issuer alone; typ in its other spellings.
	j.wantGrantOK("aud array", j.grant(j.idjag(func(c map[string]any) { c["aud"] = []string{issuer} }), nil), "read write")
	for _, typ := range []string{"application/oauth-id-jag+jwt", "OAuth-ID-JAG+JWT"} {
		j.wantGrantOK("typ "+typ, j.grant(signJWT(t, j.idp, typ, j.idjagClaims()), nil), "read write")
	}

	// The request narrows the assertion's scope; by default the server
	// grants the assertion's scopes the client may have (a subset).
	j.wantGrantOK("narrowed", j.grant(j.idjag(nil), url.Values{"scope": {"read"}}), "read")
	j.wantGrantOK("subset", j.grant(j.idjag(func(c map[string]any) { c["scope"] = "admin read" }), nil), "read")
	// Without a scope claim the client's own scopes apply.
	j.wantGrantOK("no scope claim", j.grant(j.idjag(func(c map[string]any) { delete(c, "scope") }), nil), "read write")
	j.wantGrantOK("no scope claim, requested", j.grant(j.idjag(func(c map[string]any) { delete(c, "scope") }), url.Values{"scope": {"write"}}), "write")

	// Each grant is a family of its own, which revocation ends.
	fam := j.family(at)
	if j.revoked(fam) {
		t.Fatal("a new family is revoked")
	}
	if w := j.post("/oauth2/revoke", url.Values{"token": {at}}, basic("agent", j.agentSecret)); w.status != 200 {
		t.Fatalf("revoke: %d %s", w.status, w.body)
	}
	if !j.revoked(fam) {
		t.Error("the family is not revoked")
	}
	if _, err := j.srv.CheckToken(context.Background(), at); err == nil {
		t.Error("a revoked token still checks")
	}

	// The metadata names the grant and the profile (draft §6.2).
	md := j.do(&fakeReq{method: "GET", path: "/.well-known/oauth-authorization-server"}).json(t)
	if !slices.Contains(jbStrings(md["grant_types_supported"]), core.GrantJWTBearer) {
		t.Errorf("grant_types_supported %v lacks jwt-bearer", md["grant_types_supported"])
	}
	if p := jbStrings(md["authorization_grant_profiles_supported"]); !slices.Equal(p, []string{"urn:ietf:params:oauth:grant-profile:id-jag"}) {
		t.Errorf("authorization_grant_profiles_supported %v", p)
	}
	if strings.Contains(fmt.Sprint(md), idpIssuer) {
		t.Error("the metadata discloses a trusted issuer (draft §7.4)")
	}
}

// jbStrings reads a JSON array of strings.
func jbStrings(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, x := range l {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

// tamperPayload replaces the payload of a compact JWS, keeping its header
// and signature.
func tamperPayload(tok string, claims map[string]any) string {
	parts := strings.Split(tok, ".")
	b, _ := json.Marshal(claims)
	parts[1] = base64.RawURLEncoding.EncodeToString(b)
	return strings.Join(parts, ".")
}

// unsigned is a JWS with alg none.
func unsigned(claims map[string]any) string {
	h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"oauth-id-jag+jwt","kid":"idp-1"}`))
	b, _ := json.Marshal(claims)
	return h + "." + base64.RawURLEncoding.EncodeToString(b) + "."
}

// hmacSigned is claims signed with HS256 under the identity provider's
// public key bytes (the alg confusion attack) and kid.
func hmacSigned(t *testing.T, secret []byte, claims map[string]any) string {
	sg, err := gojose.NewSigner(gojose.SigningKey{Algorithm: gojose.HS256, Key: secret},
		(&gojose.SignerOptions{}).WithType(core.IDJAGType).WithHeader("kid", "idp-1"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(claims)
	obj, err := sg.Sign(b)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := obj.CompactSerialize()
	return s
}

// Every unusable assertion is refused with invalid_grant and a safe
// description, and spends nothing: the assertions the client can correct
// its request for stay usable.
func TestJWTBearerRefusals(t *testing.T) {
	j := newJBEnv(t)
	mod := func(f func(c map[string]any)) string { return j.idjag(f) }
	other := newTKey(t, "ES256", "idp-1") // same kid, another key
	stranger := newTKey(t, "ES256", "nope")
	pubJWK, _ := json.Marshal(j.idp.jwk())
	for _, c := range []struct {
		name, assertion string
		extra           url.Values
		code, desc      string
	}{
		{"wrong aud", mod(func(c map[string]any) { c["aud"] = "https://other-as.example.com" }), nil, core.ErrInvalidGrant, "aud"},
		{"token endpoint aud", mod(func(c map[string]any) { c["aud"] = tokenURL }), nil, core.ErrInvalidGrant, "aud"},
		{"aud of two", mod(func(c map[string]any) { c["aud"] = []string{issuer, "https://other-as.example.com"} }), nil, core.ErrInvalidGrant, "alone"},
		{"aud empty list", mod(func(c map[string]any) { c["aud"] = []string{} }), nil, core.ErrInvalidGrant, "alone"},
		{"aud number", mod(func(c map[string]any) { c["aud"] = 5 }), nil, core.ErrInvalidGrant, "aud"},
		{"no aud", mod(func(c map[string]any) { delete(c, "aud") }), nil, core.ErrInvalidGrant, "aud"},
		{"untrusted issuer", mod(func(c map[string]any) { c["iss"] = "https://evil.example.com" }), nil, core.ErrInvalidGrant, "not trusted"},
		{"own issuer", mod(func(c map[string]any) { c["iss"] = issuer }), nil, core.ErrInvalidGrant, "not trusted"},
		{"no iss", mod(func(c map[string]any) { delete(c, "iss") }), nil, core.ErrInvalidGrant, "issuer"},
		{"unknown kid", signJWT(t, stranger, core.IDJAGType, j.idjagClaims()), nil, core.ErrInvalidGrant, "verified"},
		{"no kid, other key", signJWT(t, &tkey{alg: "ES256", priv: stranger.priv}, core.IDJAGType, j.idjagClaims()), nil, core.ErrInvalidGrant, "verified"},
		{"bad signature", signJWT(t, other, core.IDJAGType, j.idjagClaims()), nil, core.ErrInvalidGrant, "verified"},
		{"tampered", tamperPayload(j.idjag(nil), func() map[string]any { c := j.idjagClaims(); c["sub"] = "ceo@corp"; return c }()), nil, core.ErrInvalidGrant, "verified"},
		{"alg none", unsigned(j.idjagClaims()), nil, core.ErrInvalidGrant, "verified"},
		{"HS256", hmacSigned(t, pubJWK, j.idjagClaims()), nil, core.ErrInvalidGrant, "verified"},
		{"typ JWT", signJWT(t, j.idp, "JWT", j.idjagClaims()), nil, core.ErrInvalidGrant, "typ"},
		{"no typ", signJWT(t, j.idp, "", j.idjagClaims()), nil, core.ErrInvalidGrant, "typ"},
		{"typ at+jwt", signJWT(t, j.idp, "at+jwt", j.idjagClaims()), nil, core.ErrInvalidGrant, "typ"},
		{"expired", mod(func(c map[string]any) {
			c["iat"] = j.now.Add(-5 * time.Minute).Unix()
			c["exp"] = j.now.Add(-time.Second).Unix()
		}), nil, core.ErrInvalidGrant, "expired"},
		{"exp now", mod(func(c map[string]any) { c["exp"] = j.now.Unix() }), nil, core.ErrInvalidGrant, "expired"},
		{"iat in the future", mod(func(c map[string]any) { c["iat"] = j.now.Add(time.Minute).Unix() }), nil, core.ErrInvalidGrant, "future"},
		{"nbf in the future", mod(func(c map[string]any) { c["nbf"] = j.now.Add(time.Minute).Unix() }), nil, core.ErrInvalidGrant, "nbf"},
		{"no iat", mod(func(c map[string]any) { delete(c, "iat") }), nil, core.ErrInvalidGrant, "iat"},
		{"no exp", mod(func(c map[string]any) { delete(c, "exp") }), nil, core.ErrInvalidGrant, "exp"},
		{"too long", mod(func(c map[string]any) { c["exp"] = j.now.Add(11 * time.Minute).Unix() }), nil, core.ErrInvalidGrant, "lifetime"},
		{"no jti", mod(func(c map[string]any) { delete(c, "jti") }), nil, core.ErrInvalidGrant, "jti"},
		{"jti number", mod(func(c map[string]any) { c["jti"] = 7 }), nil, core.ErrInvalidGrant, "jti"},
		{"no sub", mod(func(c map[string]any) { delete(c, "sub") }), nil, core.ErrInvalidGrant, "sub"},
		{"client_id mismatch", mod(func(c map[string]any) { c["client_id"] = "conf" }), nil, core.ErrInvalidGrant, "client_id"},
		{"no client_id", mod(func(c map[string]any) { delete(c, "client_id") }), nil, core.ErrInvalidGrant, "client_id"},
		{"scope not a string", mod(func(c map[string]any) { c["scope"] = []string{"read"} }), nil, core.ErrInvalidGrant, "scope"},
		{"scope malformed", mod(func(c map[string]any) { c["scope"] = "read  write" }), nil, core.ErrInvalidGrant, "scope"},
		{"resource number", mod(func(c map[string]any) { c["resource"] = 5 }), nil, core.ErrInvalidGrant, "resource"},
		{"amr not a list", mod(func(c map[string]any) { c["amr"] = "pwd" }), nil, core.ErrInvalidGrant, "amr"},
		{"cnf without proof", mod(func(c map[string]any) {
			c["cnf"] = map[string]string{"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}
		}), nil, core.ErrInvalidGrant, "DPoP"},
		{"cnf of another method", mod(func(c map[string]any) { c["cnf"] = map[string]string{"x5t#S256": "abc"} }), nil, core.ErrInvalidGrant, "cnf"},
		{"garbage", "not-a-jwt", nil, core.ErrInvalidGrant, "issuer"},
		{"payload not an object", tamperPayload(j.idjag(nil), nil), nil, core.ErrInvalidGrant, ""},
		{"scope widened", j.idjag(nil), url.Values{"scope": {"read admin"}}, core.ErrInvalidScope, "exceeds"},
		{"scope malformed request", j.idjag(nil), url.Values{"scope": {"read\twrite"}}, core.ErrInvalidScope, "malformed"},
		{"no scope granted", mod(func(c map[string]any) { c["scope"] = "admin" }), nil, core.ErrInvalidScope, "none"},
		{"no scope claim, client scope exceeded", mod(func(c map[string]any) { delete(c, "scope") }), url.Values{"scope": {"admin"}}, core.ErrInvalidScope, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := wantTokenError(t, j.grant(c.assertion, c.extra), 400, c.code)
			if d, _ := m["error_description"].(string); !strings.Contains(d, c.desc) || d == "" {
				t.Errorf("error_description %q, want it to mention %q", d, c.desc)
			}
		})
	}

	// A refused request spent nothing: the widened one's assertion,
	// presented again within its scope, is accepted.
	a := j.idjag(nil)
	wantTokenError(t, j.grant(a, url.Values{"scope": {"admin"}}), 400, core.ErrInvalidScope)
	j.wantGrantOK("after a refusal", j.grant(a, nil), "read write")
	wantTokenError(t, j.grant(a, nil), 400, core.ErrInvalidGrant)

	// No assertion: invalid_request, before anything else.
	wantTokenError(t, j.token(url.Values{"grant_type": {core.GrantJWTBearer}}, basic("agent", j.agentSecret)), 400, core.ErrInvalidRequest)
}

// The grant is for the clients allowed it, confidential ones only.
func TestJWTBearerClients(t *testing.T) {
	j := newJBEnv(t)
	// "conf" is not allowed the grant.
	w := j.token(url.Values{"grant_type": {core.GrantJWTBearer}, "assertion": {j.idjag(func(c map[string]any) { c["client_id"] = "conf" })}}, basic("conf", j.secret))
	wantTokenError(t, w, 400, core.ErrUnauthorizedClient)
	// A wrong secret is a client authentication failure, whatever the
	// assertion.
	wantTokenError(t, j.token(url.Values{"grant_type": {core.GrantJWTBearer}, "assertion": {j.idjag(nil)}}, basic("agent", "wrong")), 401, core.ErrInvalidClient)
	// A public client cannot register for it, nor use it if a store holds
	// one that does.
	if _, _, err := core.NewClient(core.ClientSpec{ID: "pubjb", RedirectURIs: []string{publicCB}, Public: true, GrantTypes: []string{core.GrantJWTBearer}}); err == nil {
		t.Error("NewClient accepts a public client with the jwt-bearer grant")
	}
	j.store.AddClient(&core.Client{ID: "pubjb", Public: true, GrantTypes: []string{core.GrantJWTBearer}})
	w = j.token(url.Values{"grant_type": {core.GrantJWTBearer}, "client_id": {"pubjb"},
		"assertion": {j.idjag(func(c map[string]any) { c["client_id"] = "pubjb" })}}, nil)
	wantTokenError(t, w, 400, core.ErrInvalidClient)
	// The grant is not a default one.
	if (&core.Client{}).AllowsGrant(core.GrantJWTBearer) {
		t.Error("a client without a grant type list may use jwt-bearer")
	}
}

// Off (no issuers), the grant is neither offered nor served.
func TestJWTBearerOff(t *testing.T) {
	e := newEnv(t, false, quietLog)
	secret := e.addClient(core.ClientSpec{ID: "agent", GrantTypes: []string{core.GrantJWTBearer}})
	md := string(e.do(&fakeReq{method: "GET", path: "/.well-known/oauth-authorization-server"}).body)
	if strings.Contains(md, core.GrantJWTBearer) || strings.Contains(md, "authorization_grant_profiles_supported") {
		t.Errorf("the metadata offers the grant while it is off: %s", md)
	}
	w := e.token(url.Values{"grant_type": {core.GrantJWTBearer}, "assertion": {"x.y.z"}}, basic("agent", secret))
	wantTokenError(t, w, 400, core.ErrUnsupportedGrantType)
}

// replayStore is memstore whose ReplayCache fails with err.
type replayStore struct {
	*memstore.Store
	err error
}

func (s *replayStore) Remember(context.Context, string, time.Time, time.Time) (bool, error) {
	return false, s.err
}

// New validates Config.JWTBearer.
func TestJWTBearerConfig(t *testing.T) {
	k := newTKey(t, "ES256", "k")
	good := core.TrustedIssuer{Issuer: idpIssuer, JWKS: jwks(k)}
	for name, c := range map[string]struct {
		jb    core.JWTBearer
		store core.Storage
		want  string
	}{
		"no ReplayCache":  {core.JWTBearer{Issuers: []core.TrustedIssuer{good}}, newHookStore(memstore.New()), "ReplayCache"},
		"no issuer id":    {core.JWTBearer{Issuers: []core.TrustedIssuer{{JWKS: jwks(k)}}}, nil, "Issuer is required"},
		"own issuer":      {core.JWTBearer{Issuers: []core.TrustedIssuer{{Issuer: issuer, JWKS: jwks(k)}}}, nil, "own issuer"},
		"twice":           {core.JWTBearer{Issuers: []core.TrustedIssuer{good, good}, MapUser: func(context.Context, *core.IDJAGClaims) (string, error) { return "", nil }}, nil, "twice"},
		"no keys":         {core.JWTBearer{Issuers: []core.TrustedIssuer{{Issuer: idpIssuer}}}, nil, "JWKS or JWKSURI"},
		"both keys":       {core.JWTBearer{Issuers: []core.TrustedIssuer{{Issuer: idpIssuer, JWKS: jwks(k), JWKSURI: "https://idp.example.com/jwks"}}}, nil, "JWKS or JWKSURI"},
		"symmetric key":   {core.JWTBearer{Issuers: []core.TrustedIssuer{{Issuer: idpIssuer, JWKS: `{"keys":[{"kty":"oct","k":"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"}]}`}}}, nil, "JWKS"},
		"private key":     {core.JWTBearer{Issuers: []core.TrustedIssuer{{Issuer: idpIssuer, JWKS: privateJWKS(t, k)}}}, nil, "JWKS"},
		"http jwks_uri":   {core.JWTBearer{Issuers: []core.TrustedIssuer{{Issuer: idpIssuer, JWKSURI: "http://idp.example.com/jwks"}}}, nil, "https"},
		"HS256":           {core.JWTBearer{Issuers: []core.TrustedIssuer{{Issuer: idpIssuer, JWKS: jwks(k), Algs: []string{"HS256"}}}}, nil, "Algs"},
		"none":            {core.JWTBearer{Issuers: []core.TrustedIssuer{{Issuer: idpIssuer, JWKS: jwks(k), Algs: []string{"none"}}}}, nil, "Algs"},
		"long lifetime":   {core.JWTBearer{Issuers: []core.TrustedIssuer{good}, MaxLifetime: 2 * time.Hour}, nil, "MaxLifetime"},
		"two, no MapUser": {core.JWTBearer{Issuers: []core.TrustedIssuer{good, {Issuer: "https://idp2.example.com", JWKS: jwks(k)}}}, nil, "MapUser"},
	} {
		t.Run(name, func(t *testing.T) {
			store := c.store
			if store == nil {
				store = memstore.New()
			}
			_, err := core.New(core.Config{Issuer: issuer, Keys: testKeys, JWTBearer: c.jb}, store, &testAuth{})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("New: %v, want an error mentioning %q", err, c.want)
			}
		})
	}
}

var testKeys = core.Keys{CryptKey: []byte("0123456789abcdef0123456789abcdef"), SignKey: []byte("fedcba9876543210fedcba9876543210")}

// privateJWKS is a key set holding k's private key.
func privateJWKS(t *testing.T, k *tkey) string {
	b, err := gojose.JSONWebKey{Key: k.priv, KeyID: k.kid}.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return `{"keys":[` + string(b) + `]}`
}

// An issuer's Algs bound what it may sign with.
func TestJWTBearerIssuerAlgs(t *testing.T) {
	es, ed := newTKey(t, "ES256", "es"), newTKey(t, "EdDSA", "ed")
	j := newJBEnv(t, func(c *core.Config) {
		c.JWTBearer.Issuers = []core.TrustedIssuer{{Issuer: idpIssuer, JWKS: jwks(es, ed), Algs: []string{"EdDSA"}}}
	})
	j.wantGrantOK("EdDSA", j.grant(signJWT(t, ed, core.IDJAGType, j.idjagClaims()), nil), "read write")
	wantTokenError(t, j.grant(signJWT(t, es, core.IDJAGType, j.idjagClaims()), nil), 400, core.ErrInvalidGrant)
}

// An assertion is accepted once across instances: two servers over one
// store, the same assertion raced on both.
func TestJWTBearerReplay(t *testing.T) {
	j := newJBEnv(t)
	second, err := core.New(j.srv.Config(), j.store, &testAuth{})
	if err != nil {
		t.Fatal(err)
	}
	servers := []*core.Server{j.srv, second}
	for round := 0; round < 3; round++ {
		a := j.idjag(nil)
		body := url.Values{"grant_type": {core.GrantJWTBearer}, "assertion": {a}}.Encode()
		var ok, replayed atomic.Int32
		var wg sync.WaitGroup
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func(srv *core.Server) {
				defer wg.Done()
				hdr := basic("agent", j.agentSecret)
				hdr.Set("Content-Type", "application/x-www-form-urlencoded")
				w := newResp()
				srv.Handle(w, &fakeReq{method: "POST", path: "/oauth2/token", hdr: hdr, body: body})
				switch {
				case w.status == 200:
					ok.Add(1)
				case w.status == 400 && strings.Contains(string(w.body), `"invalid_grant"`) && strings.Contains(string(w.body), "used before"):
					replayed.Add(1)
				default:
					t.Errorf("status %d %s", w.status, w.body)
				}
			}(servers[i%2])
		}
		wg.Wait()
		if ok.Load() != 1 || replayed.Load() != 7 {
			t.Errorf("round %d: %d accepted, %d refused as replays; want 1 and 7", round, ok.Load(), replayed.Load())
		}
	}
	// The same jti again from this issuer is a replay, whatever else
	// differs.
	c := j.idjagClaims()
	j.wantGrantOK("first", j.grant(signJWT(t, j.idp, core.IDJAGType, c), nil), "read write")
	c["scope"] = "read"
	wantTokenError(t, j.grant(signJWT(t, j.idp, core.IDJAGType, c), nil), 400, core.ErrInvalidGrant)
}

// A storage failure while spending the jti issues nothing.
func TestJWTBearerStorageFailure(t *testing.T) {
	j := newJBEnv(t)
	for _, c := range []struct {
		err    error
		status int
		code   string
	}{
		{fmt.Errorf("busy: %w", core.ErrUnavailable), 503, core.ErrTemporarilyUnavailable},
		{errors.New("disk on fire"), 500, core.ErrServerError},
	} {
		j.rebuild(false, &replayStore{Store: j.store, err: c.err})
		w := j.grant(j.idjag(nil), nil)
		m := wantTokenError(t, w, c.status, c.code)
		if strings.Contains(fmt.Sprint(m), "disk") || strings.Contains(fmt.Sprint(m), "busy") {
			t.Errorf("the cause reaches the client: %v", m)
		}
	}
}

// MapUser maps the enterprise subject to the app's user.
func TestJWTBearerMapUser(t *testing.T) {
	var seen *core.IDJAGClaims
	idp2 := newTKey(t, "EdDSA", "idp2")
	j := newJBEnv(t, func(c *core.Config) {
		c.JWTBearer.Issuers = append(c.JWTBearer.Issuers, core.TrustedIssuer{Issuer: "https://idp2.example.com", JWKS: jwks(idp2)})
		c.JWTBearer.MapUser = func(_ context.Context, a *core.IDJAGClaims) (string, error) {
			seen = a
			switch a.Subject {
			case "gone":
				return "", errors.New("no such employee")
			case "db-down":
				return "", fmt.Errorf("lookup: %w", core.ErrUnavailable)
			case "empty":
				return "", nil
			}
			if a.Issuer == "https://idp2.example.com" {
				return "idp2:" + a.Subject, nil
			}
			return "u-" + a.Subject, nil
		}
	})
	_, info := j.wantGrantOK("mapped", j.grant(j.idjag(func(c map[string]any) {
		c["resource"] = []string{"https://mcp.example.com/mcp"}
		c["auth_time"] = j.now.Add(-time.Minute).Unix()
		c["acr"] = "urn:mace:incommon:iap:silver"
		c["tenant"] = "corp"
	}), nil), "read write")
	if info.UserID != "u-alice@corp" {
		t.Errorf("UserID %q", info.UserID)
	}
	if seen == nil || seen.Issuer != idpIssuer || seen.Subject != "alice@corp" || seen.ClientID != "agent" || seen.JTI == "" ||
		seen.Scope != "read write" || !seen.HasScope || seen.Email != "alice@corp.example" || seen.Tenant != "corp" ||
		seen.ACR != "urn:mace:incommon:iap:silver" || !slices.Equal(seen.AMR, []string{"pwd", "mfa"}) ||
		!slices.Equal(seen.Resources, []string{"https://mcp.example.com/mcp"}) || !seen.AuthTime.Equal(j.now.Add(-time.Minute)) ||
		!seen.IssuedAt.Equal(j.now) || !seen.ExpiresAt.Equal(j.now.Add(5*time.Minute)) || !json.Valid(seen.Raw) {
		t.Errorf("MapUser saw %+v", seen)
	}
	// The second issuer's subjects are its own.
	c := j.idjagClaims()
	c["iss"] = "https://idp2.example.com"
	if _, info := j.wantGrantOK("idp2", j.grant(signJWT(t, idp2, core.IDJAGType, c), nil), "read write"); info.UserID != "idp2:alice@corp" {
		t.Errorf("idp2 UserID %q", info.UserID)
	}
	// An assertion of one issuer signed by the other's key is refused.
	c["iss"], c["jti"] = idpIssuer, rand.Text()
	wantTokenError(t, j.grant(signJWT(t, idp2, core.IDJAGType, c), nil), 400, core.ErrInvalidGrant)

	for sub, want := range map[string]struct {
		status int
		code   string
	}{"gone": {400, core.ErrInvalidGrant}, "empty": {400, core.ErrInvalidGrant}, "db-down": {503, core.ErrTemporarilyUnavailable}} {
		m := wantTokenError(t, j.grant(j.idjag(func(c map[string]any) { c["sub"] = sub }), nil), want.status, want.code)
		if strings.Contains(fmt.Sprint(m), "employee") {
			t.Errorf("%s: the app's error reaches the client: %v", sub, m)
		}
	}
	// The default maps sub itself, bounded as user ids are.
	d := newJBEnv(t)
	wantTokenError(t, d.grant(d.idjag(func(c map[string]any) { c["sub"] = strings.Repeat("u", 257) }), nil), 400, core.ErrInvalidGrant)
}

// Keys fetched from an issuer's jwks_uri are cached; an unknown kid
// refetches the set at most every 30 s; without the test switch loopback
// is refused.
func TestJWTBearerJWKSURI(t *testing.T) {
	k1, k2, k3 := newTKey(t, "ES256", "k1"), newTKey(t, "EdDSA", "k2"), newTKey(t, "RS256", "k3")
	js := newJWKSServer(t, jwks(k1))
	trust := func(c *core.Config) {
		js.trust(c)
		c.JWTBearer = core.JWTBearer{Issuers: []core.TrustedIssuer{{Issuer: idpIssuer, JWKSURI: js.URL + "/jwks"}},
			AllowLoopbackForTests: true, TLS: c.ClientAssertions.TLS}
	}
	j := newJBEnv(t, trust)
	hits := func(want int64, when string) {
		t.Helper()
		if n := js.hits.Load(); n != want {
			t.Errorf("%s: %d fetches, want %d", when, n, want)
		}
	}
	with := func(k *tkey) string { return signJWT(t, k, core.IDJAGType, j.idjagClaims()) }
	for i := 0; i < 3; i++ {
		j.wantGrantOK("k1", j.grant(with(k1), nil), "read write")
	}
	hits(1, "three grants")

	// The provider rotates to k2: the unknown kid refetches.
	js.set(jwks(k1, k2))
	j.now = j.now.Add(31 * time.Second)
	j.wantGrantOK("k2", j.grant(with(k2), nil), "read write")
	hits(2, "after the rotation")
	// Within 30 s, unknown kids do not refetch.
	js.set(jwks(k1, k2, k3))
	for i := 0; i < 3; i++ {
		wantTokenError(t, j.grant(with(k3), nil), 400, core.ErrInvalidGrant)
	}
	hits(2, "unknown kids within 30 s")
	j.now = j.now.Add(31 * time.Second)
	j.wantGrantOK("k3 after 30 s", j.grant(with(k3), nil), "read write")
	hits(3, "k3 after 30 s")

	// A failing jwks_uri refuses (invalid_grant, not a 500).
	j.now = j.now.Add(2 * time.Hour)
	js.status.Store(500)
	wantTokenError(t, j.grant(with(k1), nil), 400, core.ErrInvalidGrant)
	js.status.Store(0)

	// Without the switch, the loopback key set is never fetched.
	js2 := newJWKSServer(t, jwks(k1))
	n := newJBEnv(t, func(c *core.Config) {
		js2.trust(c)
		c.JWTBearer = core.JWTBearer{Issuers: []core.TrustedIssuer{{Issuer: idpIssuer, JWKSURI: js2.URL + "/jwks"}}, TLS: c.ClientAssertions.TLS}
	})
	wantTokenError(t, n.grant(signJWT(t, k1, core.IDJAGType, n.idjagClaims()), nil), 400, core.ErrInvalidGrant)
	if h := js2.hits.Load(); h != 0 {
		t.Errorf("%d requests reached the loopback key set", h)
	}
}

// With DPoP, the token is bound to the proof's key; an assertion bound to
// a key (cnf.jkt) needs a proof of that key.
func TestJWTBearerDPoP(t *testing.T) {
	j := newJBEnv(t, dpopOn)
	key, other := newDPoPKey(t), newDPoPKey(t)
	grant := func(a string, k *dpopKey) *fakeResp {
		hdr := basic("agent", j.agentSecret)
		if k != nil {
			hdr.Set("DPoP", k.proof(j.now, "POST", tokenURL))
		}
		return j.token(url.Values{"grant_type": {core.GrantJWTBearer}, "assertion": {a}}, hdr)
	}
	check := func(what string, w *fakeResp, k *dpopKey) {
		t.Helper()
		m := wantOK(t, what, w)
		if m["token_type"] != "DPoP" {
			t.Errorf("%s: token_type %v", what, m["token_type"])
		}
		info, err := j.srv.CheckToken(context.Background(), m["access_token"].(string))
		if err != nil || info.JKT != k.jkt() {
			t.Errorf("%s: %v, JKT %q want %q", what, err, info.JKT, k.jkt())
		}
	}
	check("unbound assertion, proof", grant(j.idjag(nil), key), key)
	bound := func() string {
		return j.idjag(func(c map[string]any) { c["cnf"] = map[string]string{"jkt": key.jkt()} })
	}
	check("bound assertion, its key", grant(bound(), key), key)
	m := wantTokenError(t, grant(bound(), other), 400, core.ErrInvalidGrant)
	if !strings.Contains(m["error_description"].(string), "key") {
		t.Errorf("another key: %v", m)
	}
	wantTokenError(t, grant(bound(), nil), 400, core.ErrInvalidGrant)
	// A bad proof is the proof's error, before the assertion is read.
	hdr := basic("agent", j.agentSecret)
	hdr.Set("DPoP", key.proof(j.now, "GET", tokenURL))
	wantTokenError(t, j.token(url.Values{"grant_type": {core.GrantJWTBearer}, "assertion": {bound()}}, hdr), 400, core.ErrInvalidDPoPProof)
}

// With resources configured (RFC 8707), the token is for a resource the
// assertion grants; the request may only narrow them.
func TestJWTBearerResources(t *testing.T) {
	const mcpRes, apiRes = "https://mcp.example.com/mcp", "https://api.example.com"
	j := newJBEnv(t, func(c *core.Config) {
		c.Resources = []core.Resource{{URI: mcpRes, Scopes: []string{"read"}}, {URI: apiRes, Scopes: []string{"read", "write"}}}
	})
	withRes := func(res ...string) string { return j.idjag(func(c map[string]any) { c["resource"] = res }) }
	aud := func(what string, w *fakeResp, scope, want string) {
		t.Helper()
		aud := want
		if want == issuer {
			aud = ""
		}
		if _, info := j.wantGrantOKFor(what, w, scope, aud); info.Audience != want {
			t.Errorf("%s: audience %q, want %q", what, info.Audience, want)
		}
	}
	// The scope is cut to what the resource takes.
	aud("one resource", j.grant(withRes(mcpRes), nil), "read", mcpRes)
	aud("a string", j.grant(j.idjag(func(c map[string]any) { c["resource"] = apiRes }), nil), "read write", apiRes)
	aud("unknown ones dropped", j.grant(withRes("https://elsewhere.example.com", apiRes), nil), "read write", apiRes)
	aud("narrowed", j.grant(withRes(mcpRes, apiRes), url.Values{"resource": {apiRes}}), "read write", apiRes)
	aud("trailing slash", j.grant(withRes(apiRes+"/"), nil), "read write", apiRes)
	aud("no claim, requested", j.grant(j.idjag(func(c map[string]any) { delete(c, "resource") }), url.Values{"resource": {apiRes}}), "read write", apiRes)
	aud("no claim, default", j.grant(j.idjag(nil), nil), "read write", issuer)

	for name, c := range map[string]struct {
		a     string
		extra url.Values
		code  string
	}{
		"only unknown":           {withRes("https://elsewhere.example.com"), nil, core.ErrInvalidTarget},
		"not granted":            {withRes(mcpRes), url.Values{"resource": {apiRes}}, core.ErrInvalidTarget},
		"no claim, unknown":      {j.idjag(nil), url.Values{"resource": {"https://elsewhere.example.com"}}, core.ErrInvalidTarget},
		"scope not for resource": {withRes(mcpRes), url.Values{"scope": {"write"}}, core.ErrInvalidScope},
	} {
		m := wantTokenError(t, j.grant(c.a, c.extra), 400, c.code)
		if m["error"] != c.code {
			t.Errorf("%s: %v", name, m)
		}
	}
}
