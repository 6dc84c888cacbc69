package browsertest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/oauth2kit/oauth2kit/examples/internal/e2etest"
)

const (
	fapiClientName   = "FAPI E2E"
	jwtBearerType    = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	errUseDPoPNonce  = "use_dpop_nonce"
	errInvalidDPoP   = "invalid_dpop_proof"
	grantAuthCode    = "authorization_code"
	grantRefresh     = "refresh_token"
	fapiScope        = "openid read"
	fapiNodeDeadline = 2 * time.Minute
)

// fapiResult is what fapi.mjs reports.
type fapiResult struct {
	Issuer   string `json:"issuer"`
	Metadata struct {
		Issuer                string   `json:"issuer"`
		TokenEndpoint         string   `json:"token_endpoint"`
		UserinfoEndpoint      string   `json:"userinfo_endpoint"`
		AuthMethods           []string `json:"token_endpoint_auth_methods_supported"`
		AuthSigningAlgs       []string `json:"token_endpoint_auth_signing_alg_values_supported"`
		DPoPAlgs              []string `json:"dpop_signing_alg_values_supported"`
		CodeChallengeMethods  []string `json:"code_challenge_methods_supported"`
		IssParameterSupported bool     `json:"authorization_response_iss_parameter_supported"`
		AuthorizationEndpoint string   `json:"authorization_endpoint"`
	} `json:"metadata"`
	DPoPJKT      string `json:"dpop_jkt"`
	AuthorizeURL string `json:"authorize_url"`
	ConsentPage  bool   `json:"consent_page"`
	Callback     struct {
		Iss          string `json:"iss"`
		StateMatches bool   `json:"state_matches"`
		Code         bool   `json:"code"`
		Error        string `json:"error"`
	} `json:"callback"`
	Token struct {
		TokenType    string `json:"token_type"`
		Scope        string `json:"scope"`
		ExpiresIn    int    `json:"expires_in"`
		RefreshToken bool   `json:"refresh_token"`
		IDToken      bool   `json:"id_token"`
	} `json:"token"`
	IDToken struct {
		Iss          string `json:"iss"`
		Aud          any    `json:"aud"`
		Sub          string `json:"sub"`
		NonceMatches bool   `json:"nonce_matches"`
		AuthTime     bool   `json:"auth_time"`
	} `json:"id_token"`
	Me     fapiResponse `json:"me"`
	Bearer struct {
		Status          int    `json:"status"`
		WWWAuthenticate string `json:"www_authenticate"`
	} `json:"bearer"`
	ResourceNonceProbe fapiResponse      `json:"resource_nonce_probe"`
	Userinfo           map[string]any    `json:"userinfo"`
	UserinfoError      string            `json:"userinfo_error"`
	Refresh            fapiRefresh       `json:"refresh"`
	RefreshNoProof     fapiRefusal       `json:"refresh_without_proof"`
	NonceRetries       map[string]int    `json:"nonce_retries"`
	Requests           []fapiRequest     `json:"requests"`
	Replay             map[string]string `json:"replay"`
}

type fapiResponse struct {
	Status int               `json:"status"`
	Body   map[string]string `json:"body"`
}

type fapiRefresh struct {
	TokenType      string       `json:"token_type"`
	NewAccessToken bool         `json:"new_access_token"`
	RefreshToken   bool         `json:"refresh_token"`
	Rotated        bool         `json:"rotated"`
	IDTokenSub     string       `json:"id_token_sub"`
	Me             fapiResponse `json:"me"`
}

type fapiRefusal struct {
	Accepted bool   `json:"accepted"`
	Error    string `json:"error"`
	Status   int    `json:"status"`
	Message  string `json:"message"`
}

type fapiRequest struct {
	Method              string `json:"method"`
	URL                 string `json:"url"`
	Status              int    `json:"status"`
	GrantType           string `json:"grant_type"`
	ClientAssertionType string `json:"client_assertion_type"`
	ClientAssertion     *struct {
		Alg         string `json:"alg"`
		Kid         string `json:"kid"`
		Iss         string `json:"iss"`
		Sub         string `json:"sub"`
		Aud         any    `json:"aud"`
		ExpMinusIat int    `json:"exp_minus_iat"`
		JTI         bool   `json:"jti"`
	} `json:"client_assertion"`
	ClientSecret        bool   `json:"client_secret"`
	AuthorizationScheme string `json:"authorization_scheme"`
	Proof               *struct {
		Typ        string `json:"typ"`
		Alg        string `json:"alg"`
		JWKKty     string `json:"jwk_kty"`
		JWKPrivate bool   `json:"jwk_private"`
		Htm        string `json:"htm"`
		Htu        string `json:"htu"`
		Nonce      bool   `json:"nonce"`
		Ath        bool   `json:"ath"`
	} `json:"proof"`
	DPoPNonce        bool   `json:"dpop_nonce"`
	WWWAuthenticate  string `json:"www_authenticate"`
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
	TokenType        string `json:"token_type"`
}

func (r fapiRequest) String() string {
	s := r.Method + " " + r.URL
	if r.GrantType != "" {
		s += " grant_type=" + r.GrantType
	}
	if r.ClientAssertion != nil {
		s += " +private_key_jwt"
	}
	if r.AuthorizationScheme != "" {
		s += " Authorization: " + r.AuthorizationScheme
	}
	if p := r.Proof; p != nil {
		s += " +DPoP proof"
		if p.Nonce {
			s += " (with nonce)"
		} else {
			s += " (no nonce)"
		}
	}
	s += " → " + strconv.Itoa(r.Status)
	if r.Error != "" {
		s += " " + r.Error
	}
	if r.TokenType != "" {
		s += " token_type=" + r.TokenType
	}
	if r.DPoPNonce {
		s += " +DPoP-Nonce"
	}
	if r.WWWAuthenticate != "" {
		s += " (WWW-Authenticate: " + r.WWWAuthenticate + ")"
	}
	return s
}

// TestOAuth4WebAPIDPoPPrivateKeyJWT runs fapi.mjs against the nethttp
// example started with -dpop-nonce: oauth4webapi, a strict client,
// authenticates with private_key_jwt, binds its tokens with DPoP (retrying
// once for the server's nonce), signs in through Chromium, calls the API
// and userinfo, and refreshes. Then the test replays proofs the script
// used.
func TestOAuth4WebAPIDPoPPrivateKeyJWT(t *testing.T) {
	if _, err := os.Stat(chromium); err != nil {
		skip(t, "%s not found: install Chromium (apt-get install -y chromium) to run the browser test", chromium)
	}
	for _, pkg := range []string{"playwright-core", "oauth4webapi"} {
		if _, err := os.Stat(filepath.Join("node_modules", pkg, "package.json")); err != nil {
			skip(t, "%s is not installed: run `npm ci` in examples/browsertest to run the browser test", pkg)
		}
	}
	node, err := exec.LookPath("node")
	if err != nil {
		skip(t, "node is not on PATH: install Node.js (20 or later) to run the browser test")
	}

	bin := e2etest.Build(t, "nethttp")
	dir := t.TempDir()
	db := filepath.Join(dir, "demo.db")

	// The client's assertion key: the public half is its JWK Set, the
	// private JWK goes to the script.
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pubJWK, kid := ecJWK(t, key)
	jwksFile := filepath.Join(dir, "client-jwks.json")
	writeJSON(t, jwksFile, map[string]any{"keys": []any{pubJWK}})
	d, err := key.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	privJWK := map[string]string{"d": base64.RawURLEncoding.EncodeToString(d)}
	for k, v := range pubJWK {
		privJWK[k] = v
	}
	keyFile := filepath.Join(dir, "client-key.json")
	writeJSON(t, keyFile, privJWK)

	// The redirect URI's listener: bound here, handed to node as fd 3, so
	// its port stays taken from registration to callback.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lnFile, err := ln.(*net.TCPListener).File()
	ln.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer lnFile.Close()
	redirect := "http://" + ln.Addr().String() + "/callback"

	stdout, stderr, code := e2etest.Run(t, bin, "client", "add", "-db", db, "-name", fapiClientName, "-redirect-uri", redirect,
		"-auth-method", "private_key_jwt", "-jwks", jwksFile, "-require-dpop", "-scope", fapiScope)
	if code != 0 {
		t.Fatalf("client add: exit %d: %s", code, stderr)
	}
	var added struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	if err := json.Unmarshal([]byte(stdout), &added); err != nil || added.ClientID == "" {
		t.Fatalf("client add printed %q (%v)", stdout, err)
	}
	if added.ClientSecret != "" {
		t.Errorf("client add gave a private_key_jwt client a secret")
	}
	clientID := added.ClientID

	s := e2etest.Start(t, bin, "-addr", "127.0.0.1:0", "-db", db, "-dpop-nonce")

	ctx, cancel := context.WithTimeout(t.Context(), fapiNodeDeadline)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "fapi.mjs", s.Issuer, clientID, redirect, keyFile)
	cmd.ExtraFiles = []*os.File{lnFile}
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	var r fapiResult
	var report []string
	got := false
	for line := range strings.Lines(string(out)) {
		if j, ok := strings.CutPrefix(line, "RESULT "); ok {
			if jerr := json.Unmarshal([]byte(j), &r); jerr != nil {
				t.Errorf("fapi.mjs RESULT line: %v", jerr)
			}
			got = true
			continue
		}
		report = append(report, line)
	}
	if err != nil {
		t.Fatalf("node fapi.mjs failed (%v):\n%s", err, strings.Join(report, ""))
	}
	t.Logf("node fapi.mjs:\n%s", strings.Join(report, ""))
	if !got {
		t.Fatal("fapi.mjs printed no RESULT line")
	}
	var log []string
	for _, q := range r.Requests {
		log = append(log, "  "+q.String())
	}
	t.Logf("requests oauth4webapi made:\n%s", strings.Join(log, "\n"))
	t.Logf("nonce retries per step: %v", r.NonceRetries)

	// Discovery: what a FAPI client needs is advertised.
	m := r.Metadata
	if m.Issuer != s.Issuer || !slices.Contains(m.AuthMethods, "private_key_jwt") || !slices.Contains(m.AuthSigningAlgs, "ES256") ||
		!slices.Contains(m.CodeChallengeMethods, "S256") || !m.IssParameterSupported {
		t.Errorf("metadata %+v: want issuer %s, private_key_jwt with ES256, S256 and the iss parameter", m, s.Issuer)
	}
	// RFC 9449 §5.1: the DPoP algorithms, with the one this client uses.
	if !slices.Contains(m.DPoPAlgs, "ES256") {
		t.Errorf("metadata dpop_signing_alg_values_supported %v: want ES256", m.DPoPAlgs)
	}

	// The DPoP key is not the client's assertion key.
	if r.DPoPJKT == "" || r.DPoPJKT == kid {
		t.Errorf("DPoP key thumbprint %q: want one, other than the client key's %s", r.DPoPJKT, kid)
	}
	au, err := url.Parse(r.AuthorizeURL)
	if err != nil {
		t.Fatal(err)
	}
	if q := au.Query(); q.Get("code_challenge_method") != "S256" || q.Get("dpop_jkt") != r.DPoPJKT || q.Get("scope") != fapiScope || q.Get("nonce") == "" {
		t.Errorf("authorize URL %s: want S256, dpop_jkt, scope %q and a nonce", r.AuthorizeURL, fapiScope)
	}
	if c := r.Callback; c.Iss != s.Issuer || !c.StateMatches || !c.Code || c.Error != "" {
		t.Errorf("callback %+v: want iss %s, the state sent and a code", c, s.Issuer)
	}
	if !r.ConsentPage {
		t.Error("no consent page on a fresh database")
	}

	// Every token request: private_key_jwt with the registered key, and a
	// DPoP proof of another key, for the token endpoint.
	var codeReqs []fapiRequest
	for _, q := range r.Requests {
		if q.GrantType == "" {
			continue
		}
		if q.GrantType == grantAuthCode {
			codeReqs = append(codeReqs, q)
		}
		a := q.ClientAssertion
		if q.ClientAssertionType != jwtBearerType || a == nil || q.ClientSecret || q.AuthorizationScheme != "" {
			t.Errorf("token request %s: want a jwt-bearer client assertion only", q)
			continue
		}
		if a.Alg != "ES256" || a.Kid != kid || a.Iss != clientID || a.Sub != clientID || a.Aud != s.Issuer || !a.JTI || a.ExpMinusIat <= 0 || a.ExpMinusIat > 300 {
			t.Errorf("token request %s: client assertion %+v: want ES256, kid %s, iss = sub = %s, aud %s, a jti and a short life", q, *a, kid, clientID, s.Issuer)
		}
		if q.Status == 200 && (q.Error != "" || !q.DPoPNonce) {
			t.Errorf("token request %s: want a fresh DPoP-Nonce with the success", q)
		}
		if p := q.Proof; p != nil && (p.Typ != "dpop+jwt" || p.Alg != "ES256" || p.JWKKty != "EC" || p.JWKPrivate || p.Htm != "POST" || p.Htu != m.TokenEndpoint || p.Ath) {
			t.Errorf("token request %s: proof %+v", q, *p)
		}
	}

	// The code redemption: refused for want of a nonce, with one; then
	// redeemed with it (the code was not spent by the first try).
	if len(codeReqs) != 2 || r.NonceRetries[grantAuthCode] != 1 {
		t.Fatalf("%d authorization_code requests, %d nonce retries: want the use_dpop_nonce refusal and one retry", len(codeReqs), r.NonceRetries[grantAuthCode])
	}
	if q := codeReqs[0]; q.Status != 400 || q.Error != errUseDPoPNonce || !q.DPoPNonce || q.Proof == nil || q.Proof.Nonce {
		t.Errorf("first code redemption %s: want 400 use_dpop_nonce with a DPoP-Nonce, to a proof without one", q)
	}
	if q := codeReqs[1]; q.Status != 200 || q.Proof == nil || !q.Proof.Nonce || !strings.EqualFold(q.TokenType, "DPoP") {
		t.Errorf("second code redemption %s: want 200 token_type DPoP to a proof with the nonce", q)
	}
	if tk := r.Token; !strings.EqualFold(tk.TokenType, "DPoP") || !tk.RefreshToken || !tk.IDToken || tk.ExpiresIn <= 0 ||
		!slices.Contains(strings.Fields(tk.Scope), "openid") || !slices.Contains(strings.Fields(tk.Scope), "read") {
		t.Errorf("token response %+v: want token_type DPoP, refresh and ID tokens, scope %q", tk, fapiScope)
	}
	if it := r.IDToken; it.Iss != s.Issuer || it.Sub != "demo" || !it.NonceMatches || !audIs(it.Aud, clientID) || !it.AuthTime {
		t.Errorf("id_token %+v: want iss %s, sub demo, aud %s, the nonce and auth_time", it, s.Issuer, clientID)
	}

	// The API: the DPoP-bound token with a proof; as Bearer it is refused.
	if me := r.Me; me.Status != 200 || me.Body["sub"] != "demo" || me.Body["client_id"] != clientID {
		t.Errorf("/api/me with DPoP: %+v, want 200 sub demo client_id %s", me, clientID)
	}
	for _, q := range r.Requests {
		if q.URL == s.Issuer+"/api/me" && q.Proof != nil {
			if p := q.Proof; q.AuthorizationScheme != "DPoP" || p.Htm != "GET" || p.Htu != s.Issuer+"/api/me" || !p.Ath {
				t.Errorf("resource request %s: proof %+v, want the DPoP scheme, htm GET, htu %s/api/me and ath", q, *p, s.Issuer)
			}
		}
	}
	if b := r.Bearer; b.Status != 401 || !strings.Contains(b.WWWAuthenticate, "invalid_token") {
		t.Errorf("/api/me with the bound token as Bearer: %+v, want 401 invalid_token", b)
	}
	if p := r.ResourceNonceProbe; p.Status != 200 || p.Body["sub"] != "demo" {
		t.Errorf("/api/me from a DPoP handle without a cached nonce: %+v, want 200", p)
	}
	t.Logf("/api/me from a DPoP handle with no nonce cached: %d use_dpop_nonce retries", r.NonceRetries["api_me_fresh_handle"])

	// UserInfo with the DPoP-bound token.
	if r.UserinfoError != "" || r.Userinfo["sub"] != "demo" {
		t.Errorf("userinfo with DPoP: %v (error %s), want sub demo", r.Userinfo, r.UserinfoError)
	}

	// The refresh: a new DPoP-bound token, which works at the API.
	if rf := r.Refresh; !strings.EqualFold(rf.TokenType, "DPoP") || !rf.NewAccessToken || rf.Me.Status != 200 || rf.Me.Body["sub"] != "demo" {
		t.Errorf("refresh with DPoP: %+v, want a new DPoP token that /api/me accepts", rf)
	}
	if rp := r.RefreshNoProof; rp.Accepted || rp.Error != errInvalidDPoP {
		t.Errorf("refresh without a proof: %+v, want invalid_dpop_proof (the client requires DPoP)", rp)
	}

	// Replays: the last accepted proof at the token endpoint, with a fresh
	// client assertion, and the last one at the API, are refused.
	plain := &http.Client{Timeout: 15 * time.Second}
	post := func(proof string) (int, map[string]string) {
		t.Helper()
		form := url.Values{
			"grant_type":            {grantRefresh},
			"refresh_token":         {r.Replay["refresh_token"]},
			"client_assertion_type": {jwtBearerType},
			"client_assertion":      {clientAssertion(t, key, kid, clientID, s.Issuer)},
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.TokenEndpoint, strings.NewReader(form.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if proof != "" {
			req.Header.Set("DPoP", proof)
		}
		res, err := plain.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		var e map[string]string
		_ = json.Unmarshal(b, &e)
		return res.StatusCode, e
	}
	if r.Replay["token_proof"] == "" || r.Replay["resource_proof"] == "" {
		t.Fatal("fapi.mjs captured no proofs to replay")
	}
	// The control: the same request without a proof authenticates (this
	// client's refusal is about DPoP, not the assertion).
	if st, e := post(""); st != 400 || e["error"] != errInvalidDPoP {
		t.Errorf("refresh with a fresh assertion and no proof: %d %v, want 400 invalid_dpop_proof", st, e)
	}
	if st, e := post(r.Replay["token_proof"]); st != 400 || e["error"] != errInvalidDPoP {
		t.Errorf("refresh replaying a used proof: %d %v, want 400 invalid_dpop_proof", st, e)
	} else {
		t.Logf("token request replaying a proof: %d %v", st, e)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.Issuer+"/api/me", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "DPoP "+r.Replay["access_token"])
	req.Header.Set("DPoP", r.Replay["resource_proof"])
	res, err := plain.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if wa := res.Header.Get("WWW-Authenticate"); res.StatusCode != 401 || !strings.Contains(wa, errInvalidDPoP) {
		t.Errorf("/api/me replaying a used proof: %d (WWW-Authenticate: %s), want 401 invalid_dpop_proof", res.StatusCode, wa)
	} else {
		t.Logf("/api/me replaying a proof: %d (WWW-Authenticate: %s)", res.StatusCode, wa)
	}
}

// ecJWK is key's public JWK (with alg, use and its RFC 7638 thumbprint
// as kid) and that kid.
func ecJWK(t *testing.T, key *ecdsa.PrivateKey) (map[string]string, string) {
	t.Helper()
	pt, err := key.PublicKey.Bytes() // 0x04 || X || Y
	if err != nil {
		t.Fatal(err)
	}
	x := base64.RawURLEncoding.EncodeToString(pt[1:33])
	y := base64.RawURLEncoding.EncodeToString(pt[33:])
	sum := sha256.Sum256([]byte(`{"crv":"P-256","kty":"EC","x":"` + x + `","y":"` + y + `"}`))
	kid := base64.RawURLEncoding.EncodeToString(sum[:])
	return map[string]string{"kty": "EC", "crv": "P-256", "x": x, "y": y, "kid": kid, "alg": "ES256", "use": "sig"}, kid
}

// clientAssertion is a fresh private_key_jwt assertion (RFC 7523) of
// clientID for issuer, signed ES256 by key.
func clientAssertion(t *testing.T, key *ecdsa.PrivateKey, kid, clientID, issuer string) string {
	t.Helper()
	jti := make([]byte, 16)
	_, _ = rand.Read(jti)
	now := time.Now().Unix()
	h, _ := json.Marshal(map[string]string{"alg": "ES256", "typ": "JWT", "kid": kid})
	p, _ := json.Marshal(map[string]any{"iss": clientID, "sub": clientID, "aud": issuer, "iat": now, "exp": now + 60,
		"jti": base64.RawURLEncoding.EncodeToString(jti)})
	input := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(p)
	digest := sha256.Sum256([]byte(input))
	rr, ss, err := ecdsa.Sign(rand.Reader, key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	rr.FillBytes(sig[:32])
	ss.FillBytes(sig[32:])
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// audIs reports whether an aud claim (a string or an array) is exactly want.
func audIs(aud any, want string) bool {
	switch a := aud.(type) {
	case string:
		return a == want
	case []any:
		return len(a) == 1 && a[0] == want
	}
	return false
}

func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
