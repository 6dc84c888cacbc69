package core_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/oauth2kit/oauth2kit/core"
	"github.com/oauth2kit/oauth2kit/core/memstore"
)

// dpopKey is a client's DPoP key pair, making proofs as RFC 9449 §4.2 says.
type dpopKey struct {
	t    testing.TB
	priv crypto.Signer
	alg  jose.SignatureAlgorithm
}

func newDPoPKey(t testing.TB) *dpopKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &dpopKey{t: t, priv: k, alg: jose.ES256}
}

func newEdDPoPKey(t *testing.T) *dpopKey {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &dpopKey{t: t, priv: k, alg: jose.EdDSA}
}

// jkt is the key's RFC 7638 thumbprint.
func (k *dpopKey) jkt() string {
	jwk := jose.JSONWebKey{Key: k.priv.Public()}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		k.t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(tp)
}

type proofOpt func(claims map[string]any)

func withNonce(n string) proofOpt        { return func(c map[string]any) { c["nonce"] = n } }
func withATH(tok string) proofOpt        { return func(c map[string]any) { c["ath"] = ath(tok) } }
func withClaim(k string, v any) proofOpt { return func(c map[string]any) { c[k] = v } }
func ath(tok string) string {
	s := sha256.Sum256([]byte(tok))
	return base64.RawURLEncoding.EncodeToString(s[:])
}

// proof signs a proof for method and htu at now.
func (k *dpopKey) proof(now time.Time, method, htu string, opts ...proofOpt) string {
	k.t.Helper()
	claims := map[string]any{"jti": rand.Text(), "htm": method, "htu": htu, "iat": now.Unix()}
	for _, o := range opts {
		o(claims)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: k.priv},
		(&jose.SignerOptions{EmbedJWK: true}).WithType("dpop+jwt"))
	if err != nil {
		k.t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	jws, err := signer.Sign(payload)
	if err != nil {
		k.t.Fatal(err)
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		k.t.Fatal(err)
	}
	return s
}

func dpopOn(c *core.Config) { c.DPoP.Enabled = true }

const tokenURL = issuer + "/oauth2/token"

// ccDPoP asks for a client_credentials token of "conf" with proof.
func (e *env) ccDPoP(proof string) *fakeResp {
	hdr := basic("conf", e.secret)
	if proof != "" {
		hdr.Set("DPoP", proof)
	}
	return e.post("/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}, hdr)
}

// resourceReq is a GET of issuer/api with the Authorization and DPoP
// headers given.
func resourceReq(authz, proof string) *fakeReq {
	hdr := http.Header{"Authorization": {authz}}
	if proof != "" {
		hdr.Set("DPoP", proof)
	}
	return &fakeReq{method: "GET", path: "/api", hdr: hdr}
}

func TestDPoPTokenAndResource(t *testing.T) {
	e := newEnv(t, false, dpopOn)
	md := e.do(&fakeReq{method: "GET", path: "/.well-known/oauth-authorization-server"}).json(t)
	if fmt.Sprint(md["dpop_signing_alg_values_supported"]) != "[ES256 EdDSA PS256 RS256]" {
		t.Fatalf("metadata: %v", md["dpop_signing_alg_values_supported"])
	}
	k := newDPoPKey(t)
	w := e.ccDPoP(k.proof(e.now, "POST", tokenURL))
	got := w.json(t)
	tok, _ := got["access_token"].(string)
	if w.status != 200 || got["token_type"] != "DPoP" || tok == "" {
		t.Fatalf("token: %d %s", w.status, w.body)
	}
	// Introspection says whose key.
	in := e.post("/oauth2/introspect", url.Values{"token": {tok}}, basic("conf", e.secret)).json(t)
	cnf, _ := in["cnf"].(map[string]any)
	if in["active"] != true || in["token_type"] != "DPoP" || cnf["jkt"] != k.jkt() {
		t.Fatalf("introspection: %v", in)
	}

	api := issuer + "/api"
	info, rerr := e.srv.CheckRequest(resourceReq("DPoP "+tok, k.proof(e.now, "GET", api, withATH(tok))))
	if rerr != nil || info.JKT != k.jkt() {
		t.Fatalf("resource with a proof: %+v %+v", info, rerr)
	}
	// Query and fragment of htu are not compared; scheme case is.
	if _, rerr := e.srv.CheckRequest(resourceReq("dpop "+tok, k.proof(e.now, "GET", api+"?x=1#f", withATH(tok)))); rerr != nil {
		t.Fatalf("lower-case scheme, query in htu: %+v", rerr)
	}

	other := newEdDPoPKey(t)
	replayed := k.proof(e.now, "GET", api, withATH(tok))
	if _, rerr := e.srv.CheckRequest(resourceReq("DPoP "+tok, replayed)); rerr != nil {
		t.Fatal(rerr)
	}
	for name, req := range map[string]*fakeReq{
		"bearer use of a bound token": resourceReq("Bearer "+tok, ""),
		"no proof":                    resourceReq("DPoP "+tok, ""),
		"replayed proof":              resourceReq("DPoP "+tok, replayed),
		"another key":                 resourceReq("DPoP "+tok, other.proof(e.now, "GET", api, withATH(tok))),
		"no ath":                      resourceReq("DPoP "+tok, k.proof(e.now, "GET", api)),
		"wrong ath":                   resourceReq("DPoP "+tok, k.proof(e.now, "GET", api, withATH(tok+"x"))),
		"wrong htm":                   resourceReq("DPoP "+tok, k.proof(e.now, "POST", api, withATH(tok))),
		"wrong htu":                   resourceReq("DPoP "+tok, k.proof(e.now, "GET", issuer+"/other", withATH(tok))),
		"other origin":                resourceReq("DPoP "+tok, k.proof(e.now, "GET", "https://evil.example/api", withATH(tok))),
		"stale iat":                   resourceReq("DPoP "+tok, k.proof(e.now.Add(-61*time.Second), "GET", api, withATH(tok))),
		"future iat":                  resourceReq("DPoP "+tok, k.proof(e.now.Add(11*time.Second), "GET", api, withATH(tok))),
	} {
		_, rerr := e.srv.CheckRequest(req)
		if rerr == nil || rerr.Status != 401 {
			t.Errorf("%s: accepted: %+v", name, rerr)
			continue
		}
		if name == "bearer use of a bound token" {
			if !strings.HasPrefix(rerr.WWWAuthenticate, `Bearer realm="`) || !strings.Contains(rerr.WWWAuthenticate, `error="invalid_token"`) {
				t.Errorf("%s: %q", name, rerr.WWWAuthenticate)
			}
			continue
		}
		if !strings.HasPrefix(rerr.WWWAuthenticate, `DPoP algs="ES256 EdDSA PS256 RS256", error="invalid_dpop_proof"`) {
			t.Errorf("%s: challenge %q", name, rerr.WWWAuthenticate)
		}
	}

	// An unbound token is not a DPoP token.
	bearer := e.ccDPoP("").json(t)["access_token"].(string)
	if _, rerr := e.srv.CheckRequest(resourceReq("DPoP "+bearer, k.proof(e.now, "GET", api, withATH(bearer)))); rerr == nil || rerr.Status != 401 {
		t.Fatalf("DPoP scheme with a bearer token: %+v", rerr)
	}
	if _, rerr := e.srv.CheckRequest(resourceReq("Bearer "+bearer, "")); rerr != nil {
		t.Fatalf("a bearer token: %+v", rerr)
	}
	// Both schemes are offered, Bearer first.
	_, rerr = e.srv.CheckRequest(&fakeReq{method: "GET", path: "/api", hdr: http.Header{}})
	if rerr == nil || rerr.WWWAuthenticate != `Bearer realm="`+issuer+`", DPoP algs="ES256 EdDSA PS256 RS256"` {
		t.Fatalf("challenge without credentials: %+v", rerr)
	}
}

func TestDPoPTokenEndpointRefusals(t *testing.T) {
	e := newEnv(t, false, dpopOn)
	k := newDPoPKey(t)
	used := k.proof(e.now, "POST", tokenURL)
	if w := e.ccDPoP(used); w.status != 200 {
		t.Fatal(w.status)
	}
	private := k.proof(e.now, "POST", tokenURL)
	// A proof carrying the private key is refused: rebuild one with d.
	parts := strings.Split(private, ".")
	hdr, _ := base64.RawURLEncoding.DecodeString(parts[0])
	var h map[string]any
	_ = json.Unmarshal(hdr, &h)
	h["jwk"].(map[string]any)["d"] = privBytes(t, k.priv.(*ecdsa.PrivateKey))
	hb, _ := json.Marshal(h)
	private = base64.RawURLEncoding.EncodeToString(hb) + "." + parts[1] + "." + parts[2]

	for name, proof := range map[string]string{
		"replayed":     used,
		"wrong htu":    k.proof(e.now, "POST", issuer+"/oauth2/revoke"),
		"wrong htm":    k.proof(e.now, "GET", tokenURL),
		"stale":        k.proof(e.now.Add(-61*time.Second), "POST", tokenURL),
		"private jwk":  private,
		"garbage":      "not.a.jwt",
		"iat a string": k.proof(e.now, "POST", tokenURL, withClaim("iat", "now")),
	} {
		w := e.ccDPoP(proof)
		if w.status != 400 || w.json(t)["error"] != core.ErrInvalidDPoPProof {
			t.Errorf("%s: %d %s", name, w.status, w.body)
		}
	}
	hdr2 := basic("conf", e.secret)
	hdr2["Dpop"] = []string{k.proof(e.now, "POST", tokenURL), k.proof(e.now, "POST", tokenURL)}
	if w := e.post("/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, hdr2); w.status != 400 {
		t.Errorf("two proofs: %d", w.status)
	}
	// A request refused before the proof is looked at (client
	// authentication) does not spend it: nobody can burn a client's proofs
	// without its credentials.
	p := k.proof(e.now, "POST", tokenURL)
	if w := e.post("/oauth2/token", url.Values{"grant_type": {"client_credentials"}},
		http.Header{"Authorization": {core.EncodeBasic("conf", e.secret+"x")}, "Dpop": {p}}); w.status != 401 {
		t.Fatalf("bad secret: %d", w.status)
	}
	if w := e.ccDPoP(p); w.status != 200 {
		t.Fatalf("the proof after refused requests: %d %s", w.status, w.body)
	}
}

func TestDPoPRequiredByClient(t *testing.T) {
	e := newEnv(t, false, dpopOn)
	c, _ := e.store.GetClient(t.Context(), "conf")
	c.DPoPBoundAccessTokens = true
	if err := e.store.SaveClient(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	if w := e.ccDPoP(""); w.status != 400 || w.json(t)["error"] != core.ErrInvalidDPoPProof {
		t.Fatalf("no proof: %d %s", w.status, w.body)
	}
	if w := e.ccDPoP(newDPoPKey(t).proof(e.now, "POST", tokenURL)); w.status != 200 || w.json(t)["token_type"] != "DPoP" {
		t.Fatalf("with a proof: %d %s", w.status, w.body)
	}
}

func TestDPoPNonce(t *testing.T) {
	keys := core.Keys{CryptKey: []byte("0123456789abcdef0123456789abcdef"), SignKey: []byte("fedcba9876543210fedcba9876543210")}
	withNonces := func(c *core.Config) { c.DPoP = core.DPoP{Enabled: true, RequireNonce: true}; c.Keys = keys }
	e := newEnv(t, false, withNonces)
	k := newDPoPKey(t)
	w := e.ccDPoP(k.proof(e.now, "POST", tokenURL))
	nonce := w.hdr.Get("DPoP-Nonce")
	if w.status != 400 || w.json(t)["error"] != core.ErrUseDPoPNonce || nonce == "" {
		t.Fatalf("no nonce: %d %v %s", w.status, w.hdr, w.body)
	}
	w = e.ccDPoP(k.proof(e.now, "POST", tokenURL, withNonce(nonce)))
	if w.status != 200 || w.hdr.Get("DPoP-Nonce") == "" {
		t.Fatalf("with the nonce: %d %v %s", w.status, w.hdr, w.body)
	}
	// Another instance with the same keys accepts it (stateless nonces).
	e2 := newEnv(t, false, withNonces)
	e2.now = e.now
	e2.secret = e.secret
	e2.store = e.store
	srv, err := core.New(e.srv.Config(), e.store, &testAuth{srv: &e2.srv})
	if err != nil {
		t.Fatal(err)
	}
	e2.srv = srv
	if w := e2.ccDPoP(k.proof(e.now, "POST", tokenURL, withNonce(nonce))); w.status != 200 {
		t.Fatalf("another instance: %d %s", w.status, w.body)
	}
	if w := e.ccDPoP(k.proof(e.now, "POST", tokenURL, withNonce("forged"))); w.status != 400 || w.json(t)["error"] != core.ErrUseDPoPNonce {
		t.Fatalf("forged nonce: %d %s", w.status, w.body)
	}
	e.now = e.now.Add(11 * time.Minute) // two periods on
	if w := e.ccDPoP(k.proof(e.now, "POST", tokenURL, withNonce(nonce))); w.status != 400 || w.json(t)["error"] != core.ErrUseDPoPNonce {
		t.Fatalf("old nonce: %d %s", w.status, w.body)
	}
}

// Two instances over one store accept a proof once in all (the replay
// cache is the store's).
func TestDPoPProofOnceAcrossInstances(t *testing.T) {
	e := newEnv(t, false, dpopOn)
	var srv2 *core.Server
	srv2, err := core.New(e.srv.Config(), e.store, &testAuth{srv: &srv2})
	if err != nil {
		t.Fatal(err)
	}
	p := newDPoPKey(t).proof(e.now, "POST", tokenURL)
	if w := e.ccDPoP(p); w.status != 200 {
		t.Fatal(w.status)
	}
	w := newResp()
	srv2.Handle(w, &fakeReq{method: "POST", path: "/oauth2/token", body: "grant_type=client_credentials",
		hdr: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Authorization": {core.EncodeBasic("conf", e.secret)}, "Dpop": {p}}})
	if w.status != 400 || !strings.Contains(string(w.body), "used before") {
		t.Fatalf("the proof at the second instance: %d %s", w.status, w.body)
	}
}

func TestDPoPPublicClientRefreshBound(t *testing.T) {
	e := newEnv(t, false, dpopOn)
	k := newDPoPKey(t)
	page := e.authorize(codeQuery("pub", publicCB, "read", "s"))
	w := e.login(page, "alice", "pw")
	code := wantCodeRedirect(t, w, publicCB, "s").Get("code")
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {publicCB}, "code_verifier": {verifier}, "client_id": {"pub"}}
	w = e.post("/oauth2/token", form, http.Header{"Dpop": {k.proof(e.now, "POST", tokenURL)}})
	got := w.json(t)
	rt, _ := got["refresh_token"].(string)
	if w.status != 200 || got["token_type"] != "DPoP" || rt == "" {
		t.Fatalf("code: %d %s", w.status, w.body)
	}
	refresh := func(proof string) *fakeResp {
		hdr := http.Header{}
		if proof != "" {
			hdr.Set("DPoP", proof)
		}
		return e.post("/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {"pub"}}, hdr)
	}
	if w := refresh(""); w.status != 400 || w.json(t)["error"] != core.ErrInvalidGrant {
		t.Fatalf("refresh without a proof: %d %s", w.status, w.body)
	}
	if w := refresh(newEdDPoPKey(t).proof(e.now, "POST", tokenURL)); w.status != 400 || w.json(t)["error"] != core.ErrInvalidGrant {
		t.Fatalf("refresh with another key: %d %s", w.status, w.body)
	}
	w = refresh(k.proof(e.now, "POST", tokenURL))
	if w.status != 200 || w.json(t)["token_type"] != "DPoP" {
		t.Fatalf("refresh with the key: %d %s", w.status, w.body)
	}
	next := w.json(t)["refresh_token"].(string)
	rt = next
	if w := refresh(""); w.status != 400 {
		t.Fatalf("the rotated token is bound too: %d", w.status)
	}
}

func TestDPoPJWTAccessTokenCnf(t *testing.T) {
	e := newEnv(t, false, dpopOn, func(c *core.Config) {
		c.OIDC.SigningKeys = oidcKeys(t)
		c.Scopes = append(c.Scopes, core.ScopeOpenID)
		c.AccessTokenFormat = core.FormatJWT
	})
	k := newDPoPKey(t)
	tok := e.ccDPoP(k.proof(e.now, "POST", tokenURL)).json(t)["access_token"].(string)
	parts := strings.Split(tok, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var claims struct {
		Cnf struct {
			JKT string `json:"jkt"`
		} `json:"cnf"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil || claims.Cnf.JKT != k.jkt() {
		t.Fatalf("cnf.jkt: %v %s", err, payload)
	}
	if _, rerr := e.srv.CheckRequest(resourceReq("Bearer "+tok, "")); rerr == nil {
		t.Fatal("a bound JWT accepted as a bearer token")
	}
	if _, rerr := e.srv.CheckRequest(resourceReq("DPoP "+tok, k.proof(e.now, "GET", issuer+"/api", withATH(tok)))); rerr != nil {
		t.Fatalf("a bound JWT with its proof: %+v", rerr)
	}
}

func TestDPoPNeedsReplayCache(t *testing.T) {
	cfg := core.Config{Issuer: issuer, Keys: core.Keys{CryptKey: make([]byte, 32), SignKey: make([]byte, 32)}, DPoP: core.DPoP{Enabled: true}}
	var srv *core.Server
	if _, err := core.New(cfg, baseOnlyStore{memstore.New()}, &testAuth{srv: &srv}); !errors.Is(err, core.ErrNoCapability) || !strings.Contains(err.Error(), "ReplayCache") {
		t.Fatalf("New without a replay cache: %v", err)
	}
	cfg.DPoP.Algs = []string{"HS256"}
	if _, err := core.New(cfg, memstore.New(), &testAuth{srv: &srv}); err == nil {
		t.Fatal("HS256 accepted for proofs")
	}
}

func privBytes(t *testing.T, k *ecdsa.PrivateKey) string {
	b, err := k.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// dpop_jkt binds the code to a key (RFC 9449 §10): at authorize, and at
// PAR from the push's own proof.
func TestDPoPCodeBinding(t *testing.T) {
	e := newEnv(t, false, dpopOn, parOn)
	k, other := newDPoPKey(t), newEdDPoPKey(t)
	code := func(q url.Values) string {
		w := e.login(e.authorize(q), "alice", "pw")
		return wantCodeRedirect(t, w, publicCB, "s").Get("code")
	}
	exchange := func(code string, key *dpopKey) *fakeResp {
		hdr := http.Header{}
		if key != nil {
			hdr.Set("DPoP", key.proof(e.now, "POST", tokenURL))
		}
		return e.post("/oauth2/token", url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {publicCB},
			"code_verifier": {verifier}, "client_id": {"pub"}}, hdr)
	}
	bound := func() url.Values { q := codeQuery("pub", publicCB, "read", "s"); q.Set("dpop_jkt", k.jkt()); return q }
	if w := exchange(code(bound()), other); w.status != 400 || w.json(t)["error"] != core.ErrInvalidGrant {
		t.Fatalf("another key: %d %s", w.status, w.body)
	}
	if w := exchange(code(bound()), nil); w.status != 400 || w.json(t)["error"] != core.ErrInvalidGrant {
		t.Fatalf("no proof: %d %s", w.status, w.body)
	}
	if w := exchange(code(bound()), k); w.status != 200 || w.json(t)["token_type"] != "DPoP" {
		t.Fatalf("the key: %d %s", w.status, w.body)
	}
	q := codeQuery("pub", publicCB, "read", "s")
	q.Set("dpop_jkt", "not-a-thumbprint")
	wantRedirectError(t, e.authorize(q), publicCB, core.ErrInvalidRequest, "s")

	// PAR: the push's proof binds the code.
	f := codeQuery("", confCB, "read", "s")
	f.Del("client_id")
	hdr := basic("conf", e.secret)
	hdr.Set("DPoP", k.proof(e.now, "POST", issuer+"/oauth2/par"))
	w := e.push(f, hdr)
	ru, _ := w.json(t)["request_uri"].(string)
	if w.status != 201 {
		t.Fatalf("push: %d %s", w.status, w.body)
	}
	page := e.authorize(url.Values{"client_id": {"conf"}, "request_uri": {ru}})
	c := wantCodeRedirect(t, e.login(page, "alice", "pw"), confCB, "s").Get("code")
	form := url.Values{"grant_type": {"authorization_code"}, "code": {c}, "redirect_uri": {confCB}, "code_verifier": {verifier}}
	if w := e.post("/oauth2/token", form, basic("conf", e.secret)); w.status != 400 || w.json(t)["error"] != core.ErrInvalidGrant {
		t.Fatalf("a pushed, bound code without a proof: %d %s", w.status, w.body)
	}
	hdr = basic("conf", e.secret)
	hdr.Set("DPoP", k.proof(e.now, "POST", issuer+"/oauth2/par"))
	f.Set("dpop_jkt", other.jkt())
	if w := e.push(f, hdr); w.status != 400 || w.json(t)["error"] != core.ErrInvalidDPoPProof {
		t.Fatalf("dpop_jkt of another key than the proof's: %d %s", w.status, w.body)
	}
}
