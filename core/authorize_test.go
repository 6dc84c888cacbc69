package core_test

// SECURITY.md §1.1: the authorization endpoint, login and consent (R01–R21).

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/oauth2kit/oauth2kit/core"
	"github.com/oauth2kit/oauth2kit/core/memstore"
)

// redirectCases: a client registered with regURIs, and what each sent
// redirect_uri must give. Matching is byte for byte, except the port of
// http://127.0.0.1 and http://[::1] (RFC 8252 §7.3).
var regURIs = []string{
	"https://client.example.com/cb",
	"https://client.example.com/a/b?x=1",
	"http://127.0.0.1/cb",
	"http://[::1]:3000/cb",
	"http://localhost/cb",
	"https://127.0.0.1/cb",
	"com.example.app:/oauth%20cb",
}

var redirectCases = []struct {
	sent string
	ok   bool
}{
	{"https://client.example.com/cb", true},
	{"https://CLIENT.example.com/cb", false},
	{"HTTPS://client.example.com/cb", false},
	{"https://client.example.com/CB", false},
	{"https://client.example.com/cb/", false},
	{"https://client.example.com/c%62", false},
	{"https://client.example.com/%63b", false},
	{"https://client.example.com/./cb", false},
	{"https://client.example.com/x/../cb", false},
	{"https://client.example.com//cb", false},
	{"https://client.example.com:443/cb", false},
	{"https://client.example.com/cb?", false},
	{"https://client.example.com/cb?x=1", false},
	{"https://client.example.com/cbx", false},
	{"https://client.example.com.evil.example/cb", false},
	{"https://client.example.com@evil.example/cb", false},
	{"https://evil.example/cb", false},
	{"http://client.example.com/cb", false},
	{"https://client.example.com/a/b?x=1", true},
	{"https://client.example.com/a/b?x=1&y=2", false},
	{"https://client.example.com/a/b?x=2", false},
	{"https://client.example.com/a/b", false},
	// loopback IPv4: any port
	{"http://127.0.0.1/cb", true},
	{"http://127.0.0.1:51234/cb", true},
	{"http://127.0.0.1:1/cb", true},
	{"http://127.0.0.1:51234/cb/", false},
	{"http://127.0.0.1:51234/CB", false},
	{"http://127.0.0.1:51234/other", false},
	{"http://127.0.0.1:51234/cb?x=1", false},
	{"http://127.0.0.1:/cb", false},
	{"http://127.0.0.1:http/cb", false},
	{"http://127.0.0.1.evil.example/cb", false},
	{"http://127.0.0.1@evil.example/cb", false},
	{"http://127.0.0.1:80@evil.example/cb", false},
	{"http://127.0.0.2:5000/cb", false},
	{"http://2130706433:5000/cb", false},
	// loopback IPv6: any port
	{"http://[::1]:3000/cb", true},
	{"http://[::1]:4000/cb", true},
	{"http://[::1]/cb", true},
	{"http://[::1]:4000/cb2", false},
	{"http://[0:0:0:0:0:0:0:1]:3000/cb", false},
	{"http://[::1%25lo]:3000/cb", false},
	// localhost and https loopback: exact only
	{"http://localhost/cb", true},
	{"http://localhost:8080/cb", false},
	{"https://127.0.0.1/cb", true},
	{"https://127.0.0.1:8443/cb", false},
	// custom scheme: exact, no decoding
	{"com.example.app:/oauth%20cb", true},
	{"com.example.app:/oauth cb", false},
	{"com.example.app:/OAUTH%20cb", false},
	{"com.example.app:/oauth%2520cb", false},
	{"com.example.app://oauth%20cb", false},
}

func TestR01_MatchRedirectURI(t *testing.T) {
	for _, c := range redirectCases {
		ok := false
		for _, reg := range regURIs {
			if core.MatchRedirectURI(reg, c.sent) {
				ok = true
			}
		}
		if ok != c.ok {
			t.Errorf("MatchRedirectURI(registered, %q) = %v, want %v", c.sent, ok, c.ok)
		}
	}
}

func TestR01_RedirectExactMatch(t *testing.T) {
	e := newEnv(t, false)
	e.addClient(core.ClientSpec{ID: "rx", RedirectURIs: regURIs, Public: true})
	for _, c := range redirectCases {
		t.Run(c.sent, func(t *testing.T) {
			e.cookie = ""
			q := codeQuery("rx", c.sent, "", "st")
			w := e.authorize(q)
			if !c.ok {
				wantErrorPage(t, w, 400)
				if w.hdr.Get("Set-Cookie") != "" {
					t.Errorf("a refused request started a session")
				}
				return
			}
			if w.status != 200 {
				t.Fatalf("status %d, body %s", w.status, w.body)
			}
			// The code goes to the URI as sent (its port included).
			got := e.login(w, "alice", "pw")
			q2 := wantCodeRedirect(t, got, strings.SplitN(c.sent, "?", 2)[0], "st")
			if strings.Contains(c.sent, "?x=1") && q2.Get("x") != "1" {
				t.Errorf("registered query lost: %v", q2)
			}
		})
	}
	if n := e.grantsCount(); n != countOK() {
		t.Errorf("%d codes stored, want %d", n, countOK())
	}
}

func countOK() int {
	n := 0
	for _, c := range redirectCases {
		if c.ok {
			n++
		}
	}
	return n
}

func TestR02_NoRedirectForUntrustedRedirectURI(t *testing.T) {
	e := newEnv(t, false)
	cases := []struct {
		name, query string
	}{
		{"missing client_id", "response_type=code&redirect_uri=https%3A%2F%2Fevil.example%2Fcb"},
		{"empty client_id", "response_type=code&client_id=&redirect_uri=https%3A%2F%2Fevil.example%2Fcb"},
		{"unknown client", "response_type=code&client_id=nobody&redirect_uri=https%3A%2F%2Fevil.example%2Fcb&state=s"},
		{"unknown client, registered URI of another", "response_type=code&client_id=nobody&redirect_uri=" + url.QueryEscape(confCB)},
		{"mismatched redirect", "response_type=code&client_id=conf&redirect_uri=https%3A%2F%2Fevil.example%2Fcb&state=s"},
		{"malformed redirect", "response_type=code&client_id=conf&redirect_uri=%ZZ"},
		{"not a URI", "response_type=code&client_id=conf&redirect_uri=not+a+uri"},
		{"missing, several registered", "response_type=code&client_id=pub&code_challenge=" + core.S256Challenge(verifier) + "&code_challenge_method=S256"},
		{"repeated client_id", "response_type=code&client_id=conf&client_id=pub&redirect_uri=" + url.QueryEscape(confCB)},
		{"repeated redirect_uri", "response_type=code&client_id=conf&redirect_uri=" + url.QueryEscape(confCB) + "&redirect_uri=https%3A%2F%2Fevil.example%2Fcb"},
		{"unknown client, bad response_type", "response_type=token&client_id=nobody&redirect_uri=https%3A%2F%2Fevil.example%2Fcb"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := e.do(&fakeReq{method: "GET", path: "/oauth2/authorize", query: c.query})
			wantErrorPage(t, w, 400)
			if strings.Contains(string(w.body), "evil.example") {
				t.Errorf("error page shows the untrusted URI: %s", w.body)
			}
		})
	}
	// POST form: same rule.
	w := e.post("/oauth2/authorize", url.Values{"response_type": {"code"}, "client_id": {"nobody"}, "redirect_uri": {"https://evil.example/cb"}}, nil)
	wantErrorPage(t, w, 400)
	if e.grantsCount() != 0 {
		t.Errorf("a refused request stored a grant")
	}
}

func TestR03_RedirectURIRequiredOnlyWithSeveral(t *testing.T) {
	e := newEnv(t, false)
	// One registered URI: optional; the code goes to it.
	// The token request may then omit it, or send the registered one.
	for _, redirect := range []string{"", confCB} {
		q := wantCodeRedirect(t, e.codeFor(codeQuery("conf", "", "", "s1")), confCB, "s1")
		f := url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "code_verifier": {verifier}}
		if redirect != "" {
			f.Set("redirect_uri", redirect)
		}
		if r := e.token(f, basic("conf", e.secret)); r.status != 200 {
			t.Errorf("token with redirect_uri %q: %d %s", redirect, r.status, r.body)
		}
	}
	// Several registered URIs: required, never guessed.
	wantErrorPage(t, e.authorize(codeQuery("pub", "", "", "s2")), 400)
	// An explicit choice works.
	wantCodeRedirect(t, e.codeFor(codeQuery("pub", "com.example.app:/cb", "", "s3")), "com.example.app:/cb", "s3")
}

func TestR04_RegistrationRejectsBadRedirectURIs(t *testing.T) {
	cases := []struct {
		uri string
		ok  bool
	}{
		{"https://client.example.com/cb", true},
		{"https://client.example.com/cb?x=1", true},
		{"http://127.0.0.1/cb", true},
		{"http://127.0.0.1:8080/cb", true},
		{"http://[::1]/cb", true},
		{"com.example.app:/cb", true},
		{"/cb", false},
		{"cb", false},
		{"//client.example.com/cb", false},
		{"https://client.example.com/cb#frag", false},
		{"https://client.example.com/cb#", false},
		{"http://client.example.com/cb", false},
		{"http://127.0.0.1.evil.example/cb", false},
		{"http://10.0.0.1/cb", false},
		{"https://user:pw@client.example.com/cb", false},
		{"https:///cb", false},
		{"https://client.example.com/c b", false},
		{"https://client.example.com/c\\b", false},
		{"https://client.example.com/c\nb", false},
		{"javascript:alert(1)", false},
		{"JavaScript:alert(1)", false},
		{"data:text/html,x", false},
		{"file:///etc/passwd", false},
		{"", false},
	}
	for _, c := range cases {
		err := core.ValidateRedirectURI(c.uri)
		if (err == nil) != c.ok {
			t.Errorf("ValidateRedirectURI(%q) = %v, want ok=%v", c.uri, err, c.ok)
		}
		_, _, err = core.NewClient(core.ClientSpec{ID: "x", RedirectURIs: []string{"https://ok.example/cb", c.uri}})
		if (err == nil) != c.ok {
			t.Errorf("NewClient with %q = %v, want ok=%v", c.uri, err, c.ok)
		}
	}
	// A code-flow client needs a redirect URI at all.
	if _, _, err := core.NewClient(core.ClientSpec{ID: "x"}); err == nil {
		t.Errorf("NewClient accepted a client without redirect URIs")
	}
}

func TestR05_PKCERequired(t *testing.T) {
	e := newEnv(t, false)
	e.addClient(core.ClientSpec{ID: "opt", RedirectURIs: []string{confCB}, PKCE: core.PKCEOptional})
	noPKCE := func(client, redirect string) url.Values {
		q := codeQuery(client, redirect, "", "st&1")
		q.Del("code_challenge")
		q.Del("code_challenge_method")
		return q
	}
	// Public client: always.
	wantRedirectError(t, e.authorize(noPKCE("pub", publicCB)), publicCB, "invalid_request", "st&1")
	// Confidential, default policy: also.
	wantRedirectError(t, e.authorize(noPKCE("conf", confCB)), confCB, "invalid_request", "st&1")
	// An empty challenge is an absent one.
	q := noPKCE("pub", publicCB)
	q.Set("code_challenge", "")
	wantRedirectError(t, e.authorize(q), publicCB, "invalid_request", "st&1")
	if e.grantsCount() != 0 {
		t.Errorf("grant stored")
	}
	// Explicitly optional for one confidential client only.
	if w := e.authorize(noPKCE("opt", confCB)); w.status != 200 {
		t.Errorf("PKCE-optional client refused: %d %s", w.status, w.hdr.Get("Location"))
	}
	// Public clients cannot opt out.
	e.addClient(core.ClientSpec{ID: "pubopt", RedirectURIs: []string{publicCB}, Public: true, PKCE: core.PKCEOptional})
	wantRedirectError(t, e.authorize(noPKCE("pubopt", publicCB)), publicCB, "invalid_request", "st&1")
}

func TestR06_ChallengeMethod(t *testing.T) {
	e := newEnv(t, false)
	challenge := core.S256Challenge(verifier)
	for _, m := range []string{"plain", "", "s256", "S512", "none", "S256 "} {
		q := codeQuery("pub", publicCB, "", "s")
		q.Set("code_challenge", challenge)
		if m == "" {
			q.Del("code_challenge_method") // defaults to plain (RFC 7636 §4.3), disabled
		} else {
			q.Set("code_challenge_method", m)
		}
		t.Run("method="+m, func(t *testing.T) {
			wantRedirectError(t, e.authorize(q), publicCB, "invalid_request", "s")
		})
	}
	// A method without a challenge.
	q := codeQuery("pub", publicCB, "", "s")
	q.Del("code_challenge")
	wantRedirectError(t, e.authorize(q), publicCB, "invalid_request", "s")
	// S256 works.
	if w := e.authorize(codeQuery("pub", publicCB, "", "s")); w.status != 200 {
		t.Errorf("S256 refused: %d", w.status)
	}
	md := metadata(t, e)
	if got := md["code_challenge_methods_supported"]; !sameList(got, "S256") {
		t.Errorf("code_challenge_methods_supported = %v", got)
	}

	// plain only when configured, and then advertised.
	e2 := newEnv(t, false, func(c *core.Config) { c.AllowPlainPKCE = true })
	q = codeQuery("pub", publicCB, "", "s")
	q.Set("code_challenge", verifier)
	q.Set("code_challenge_method", "plain")
	w := e2.codeFor(q)
	code := wantCodeRedirect(t, w, publicCB, "s").Get("code")
	r := e2.token(url.Values{"grant_type": {"authorization_code"}, "client_id": {"pub"}, "code": {code},
		"redirect_uri": {publicCB}, "code_verifier": {verifier}}, nil)
	if r.status != 200 {
		t.Errorf("plain PKCE redemption: %d %s", r.status, r.body)
	}
	if got := metadata(t, e2)["code_challenge_methods_supported"]; !sameList(got, "S256", "plain") {
		t.Errorf("code_challenge_methods_supported = %v", got)
	}
}

func metadata(t *testing.T, e *env) map[string]any {
	t.Helper()
	w := e.do(&fakeReq{method: "GET", path: "/.well-known/oauth-authorization-server"})
	if w.status != 200 || w.hdr.Get("Content-Type") != "application/json" {
		t.Fatalf("metadata: %d %v", w.status, w.hdr)
	}
	return w.json(t)
}

func sameList(v any, want ...string) bool {
	l, ok := v.([]any)
	if !ok || len(l) != len(want) {
		return false
	}
	for i := range l {
		if l[i] != want[i] {
			return false
		}
	}
	return true
}

func TestR07_ChallengeSyntax(t *testing.T) {
	e := newEnv(t, false)
	cases := []struct {
		challenge string
		ok        bool
	}{
		{strings.Repeat("a", 42), false},
		{strings.Repeat("a", 43), true},
		{strings.Repeat("a", 128), true},
		{strings.Repeat("a", 129), false},
		{strings.Repeat("a", 42) + "+", false},
		{strings.Repeat("a", 42) + "/", false},
		{strings.Repeat("a", 42) + "=", false},
		{strings.Repeat("a", 42) + " ", false},
		{strings.Repeat("a", 42) + "%", false},
		{strings.Repeat("a", 42) + "é", false},
		{strings.Repeat("-._~", 11), true},
	}
	for _, c := range cases {
		q := codeQuery("pub", publicCB, "", "s")
		q.Set("code_challenge", c.challenge)
		w := e.authorize(q)
		if c.ok {
			if w.status != 200 {
				t.Errorf("challenge %q refused: %d %s", c.challenge, w.status, w.hdr.Get("Location"))
			}
			continue
		}
		wantRedirectError(t, w, publicCB, "invalid_request", "s")
	}
	// VerifyPKCE applies the same syntax to verifiers.
	long := strings.Repeat("a", 129)
	if core.VerifyPKCE(long, core.S256Challenge(long), "S256") {
		t.Errorf("a 129-character verifier verified")
	}
	short := strings.Repeat("a", 42)
	if core.VerifyPKCE(short, core.S256Challenge(short), "S256") {
		t.Errorf("a 42-character verifier verified")
	}
	if !core.VerifyPKCE(verifier, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "S256") {
		t.Errorf("the RFC 7636 Appendix B example does not verify")
	}
}

func TestR08_ChallengeBoundServerSideAndNeverEchoed(t *testing.T) {
	e := newEnv(t, true) // with consent: one more page to inspect
	challenge := core.S256Challenge(verifier)
	var seen [][]byte
	keep := func(w *fakeResp) {
		seen = append(seen, w.body)
		for k, vs := range w.hdr {
			for _, v := range vs {
				seen = append(seen, []byte(k+": "+v))
			}
		}
	}
	page := e.authorize(codeQuery("conf", confCB, "read", "s"))
	keep(page)
	consent := e.login(page, "alice", "pw")
	keep(consent)
	f := hidden(t, consent.body)
	f.Set("decision", "approve")
	w := e.post("/oauth2/login", f, nil)
	keep(w)
	code := wantCodeRedirect(t, w, confCB, "s").Get("code")
	tok := e.token(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {confCB}, "code_verifier": {verifier}}, basic("conf", e.secret))
	keep(tok)
	if tok.status != 200 {
		t.Fatalf("token: %d %s", tok.status, tok.body)
	}
	// The hidden handle is sealed: neither it nor its base64 decoding holds
	// the challenge.
	for _, h := range []string{hidden(t, page.body).Get(core.FieldRequest), f.Get(core.FieldRequest)} {
		parts := strings.Split(h, ".")
		raw, err := base64.RawURLEncoding.DecodeString(parts[len(parts)-1])
		if err != nil {
			t.Fatalf("handle %q: %v", h, err)
		}
		seen = append(seen, raw)
	}
	rawChallenge, _ := base64.RawURLEncoding.DecodeString(challenge)
	for _, b := range seen {
		if strings.Contains(string(b), challenge) || strings.Contains(string(b), "S256") || strings.Contains(string(b), string(rawChallenge)) {
			t.Errorf("the challenge or its method is visible in a response: %.200s", b)
		}
	}

	// The binding holds: client, redirect URI and verifier are checked.
	e2 := newEnv(t, false)
	e2.addClient(core.ClientSpec{ID: "conf2", RedirectURIs: []string{confCB}, Secret: strings.Repeat("s", 40)})
	for _, c := range []struct {
		name string
		form url.Values
		hdr  http.Header
	}{
		{"other client", url.Values{"redirect_uri": {confCB}, "code_verifier": {verifier}}, basic("conf2", strings.Repeat("s", 40))},
		{"other redirect", url.Values{"redirect_uri": {confCB + "/"}, "code_verifier": {verifier}}, basic("conf", e2.secret)},
		{"other verifier", url.Values{"redirect_uri": {confCB}, "code_verifier": {verifier[1:] + "A"}}, basic("conf", e2.secret)},
	} {
		code := e2.code("")
		c.form.Set("grant_type", "authorization_code")
		c.form.Set("code", code)
		wantTokenError(t, e2.token(c.form, c.hdr), 400, "invalid_grant")
	}
	// A tampered handle is refused (the pending request cannot be altered).
	page = e2.authorize(codeQuery("conf", confCB, "", "s"))
	hf := hidden(t, page.body)
	h := []byte(hf.Get(core.FieldRequest))
	h[len(h)-5] ^= 1
	hf.Set(core.FieldRequest, string(h))
	hf.Set("username", "alice")
	hf.Set("password", "pw")
	wantErrorPage(t, e2.post("/oauth2/login", hf, nil), 400)
}

// codeRe: the random part (256 bits, 43 characters) then the 16-byte
// self-check tag (the code is 48 bytes of base64url in all).
var codeRe = regexp.MustCompile(`^ac2\.[A-Za-z0-9_-]{1,32}\.([A-Za-z0-9_-]{43})[A-Za-z0-9_-]{21}$`)

func TestR09_CodeLifetimeSingleUseEntropy(t *testing.T) {
	t.Run("expires after the default 60 s", func(t *testing.T) {
		e := newEnv(t, false)
		code := e.code("")
		e.now = e.now.Add(60 * time.Second)
		w := e.token(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {confCB}, "code_verifier": {verifier}}, basic("conf", e.secret))
		wantTokenError(t, w, 400, "invalid_grant")
		if e.refreshCount() != 0 {
			t.Errorf("expired code issued a refresh token")
		}
		// 59 s is still fine.
		code = e.code("")
		e.now = e.now.Add(59 * time.Second)
		e.redeem(code)
	})
	t.Run("the server checks expiry even when the store does not", func(t *testing.T) {
		e, h := newHookedEnv(t, false)
		h.lag = time.Hour
		code := e.code("")
		e.now = e.now.Add(60 * time.Second)
		w := e.token(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {confCB}, "code_verifier": {verifier}}, basic("conf", e.secret))
		wantTokenError(t, w, 400, "invalid_grant")
		if e.refreshCount() != 0 {
			t.Errorf("expired code issued a refresh token")
		}
	})
	t.Run("configured lifetime is capped at 10 min", func(t *testing.T) {
		e := newEnv(t, false, func(c *core.Config) { c.Lifetimes.Code = 10 * time.Minute })
		code := e.code("")
		e.now = e.now.Add(10 * time.Minute)
		w := e.token(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {confCB}, "code_verifier": {verifier}}, basic("conf", e.secret))
		wantTokenError(t, w, 400, "invalid_grant")
		_, err := core.New(core.Config{Issuer: issuer, Keys: core.Keys{CryptKey: signKey, SignKey: signKey}, Lifetimes: core.Lifetimes{Code: 10*time.Minute + time.Second}}, e.store, authFor(e, false))
		if err == nil {
			t.Errorf("a code lifetime over 10 minutes was accepted")
		}
	})
	t.Run("single use", func(t *testing.T) {
		e := newEnv(t, false)
		code := e.code("")
		e.redeem(code)
		_, rts, _ := e.store.Len()
		w := e.token(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {confCB}, "code_verifier": {verifier}}, basic("conf", e.secret))
		wantTokenError(t, w, 400, "invalid_grant")
		if _, n, _ := e.store.Len(); n != rts {
			t.Errorf("second redemption stored a refresh token")
		}
	})
	t.Run("256 random bits", func(t *testing.T) {
		e := newEnv(t, false)
		seen := map[string]bool{}
		for range 50 {
			code := e.code("")
			m := codeRe.FindStringSubmatch(code)
			if m == nil {
				t.Fatalf("code %q does not have the form ac2.<kid>.<64 base64url chars>", code)
			}
			raw, err := base64.RawURLEncoding.DecodeString(m[1])
			if err != nil || len(raw) != 32 {
				t.Fatalf("random part of %q is not 32 bytes", code)
			}
			if seen[m[1]] {
				t.Fatalf("code repeated")
			}
			seen[m[1]] = true
		}
		if bitsSet(seen) < 0.45 || bitsSet(seen) > 0.55 {
			t.Errorf("random parts are biased: %.3f of bits set", bitsSet(seen))
		}
	})
}

// bitsSet is the fraction of one bits over base64url values: a gross bias
// check (a counter or timestamp would fail it), not a randomness test.
func bitsSet(vals map[string]bool) float64 {
	ones, total := 0, 0
	for v := range vals {
		raw, _ := base64.RawURLEncoding.DecodeString(v)
		for _, b := range raw {
			for i := range 8 {
				ones += int(b >> i & 1)
			}
			total += 8
		}
	}
	return float64(ones) / float64(total)
}

// oddStates are values a client may use as state; each must come back
// byte-identical.
var oddStates = []string{
	"xyz",
	"a b",
	"a+b",
	"a%20b",
	"a&code=evil&iss=https://evil.example",
	"x#frag",
	`<script>alert("x")</script>`,
	"'\"`;,/?:@=$!*()[]{}|\\^",
	"ünï©ødé 日本",
	"\t\x01",
	strings.Repeat("s", 2000),
}

func TestR10_StateByteIdentical(t *testing.T) {
	e := newEnv(t, true)
	for _, st := range oddStates {
		t.Run("", func(t *testing.T) {
			// Success.
			w := e.codeFor(codeQuery("conf", confCB, "", st))
			wantCodeRedirect(t, w, confCB, st)
			// Error after validation (unsupported response type).
			q := codeQuery("conf", confCB, "", st)
			q.Set("response_type", "token")
			wantRedirectError(t, e.authorize(q), confCB, "unsupported_response_type", st)
			// Denied consent.
			page := e.authorize(codeQuery("pub", publicCB, "write", st))
			c := e.login(page, "alice", "pw")
			f := hidden(t, c.body)
			f.Set("decision", "deny")
			wantRedirectError(t, e.post("/oauth2/login", f, nil), publicCB, "access_denied", st)
		})
	}
	// No state sent: none returned.
	q := codeQuery("conf", confCB, "", "")
	q.Del("state")
	_, v := locQuery(t, e.codeFor(q))
	if _, ok := v["state"]; ok {
		t.Errorf("state returned though none was sent")
	}
}

func TestR11_IssEverywhere(t *testing.T) {
	// A configured trailing slash must not make iss and issuer differ.
	for _, iss := range []string{issuer, issuer + "/"} {
		e := newEnv(t, true, func(c *core.Config) { c.Issuer = iss })
		md := metadata(t, e)
		if md["issuer"] != issuer {
			t.Fatalf("metadata issuer %v", md["issuer"])
		}
		if md["authorization_response_iss_parameter_supported"] != true {
			t.Errorf("authorization_response_iss_parameter_supported = %v", md["authorization_response_iss_parameter_supported"])
		}
		for _, k := range []string{"authorization_endpoint", "token_endpoint", "revocation_endpoint", "introspection_endpoint"} {
			if s, _ := md[k].(string); !strings.HasPrefix(s, issuer+"/") {
				t.Errorf("%s = %v", k, md[k])
			}
		}
		for _, k := range []string{"response_types_supported", "grant_types_supported", "token_endpoint_auth_methods_supported", "scopes_supported"} {
			if _, ok := md[k].([]any); !ok {
				t.Errorf("metadata lacks %s", k)
			}
		}
		if !sameList(md["response_types_supported"], "code") {
			t.Errorf("response_types_supported = %v", md["response_types_supported"])
		}
		if gts, _ := md["grant_types_supported"].([]any); len(gts) == 0 || strings.Contains(strings.ToLower(strings.Join(anyStrings(gts), " ")), "password") || strings.Contains(strings.Join(anyStrings(gts), " "), "implicit") {
			t.Errorf("grant_types_supported = %v", md["grant_types_supported"])
		}
		// Every kind of authorization response.
		wantCodeRedirect(t, e.codeFor(codeQuery("conf", confCB, "", "s")), confCB, "s")
		errs := []func() *fakeResp{
			func() *fakeResp {
				q := codeQuery("conf", confCB, "", "s")
				q.Set("response_type", "token")
				return e.authorize(q)
			},
			func() *fakeResp {
				q := codeQuery("conf", confCB, "", "s")
				q.Del("response_type")
				return e.authorize(q)
			},
			func() *fakeResp { return e.authorize(codeQuery("conf", confCB, "nope", "s")) },
			func() *fakeResp {
				q := codeQuery("conf", confCB, "", "s")
				q.Del("code_challenge")
				q.Del("code_challenge_method")
				return e.authorize(q)
			},
			func() *fakeResp {
				page := e.authorize(codeQuery("pub", publicCB, "admin", "s"))
				f := hidden(t, e.login(page, "alice", "pw").body)
				f.Set("decision", "deny")
				return e.post("/oauth2/login", f, nil)
			},
		}
		for _, f := range errs {
			w := f()
			b, _ := locQuery(t, w)
			q := wantRedirectError(t, w, b, w.hdrQuery(t).Get("error"), "s")
			if q.Get("iss") != md["issuer"] {
				t.Errorf("iss %q != metadata issuer %q", q.Get("iss"), md["issuer"])
			}
		}
	}
}

func anyStrings(l []any) []string {
	var s []string
	for _, v := range l {
		s = append(s, v.(string))
	}
	return s
}

func (w *fakeResp) hdrQuery(t *testing.T) url.Values {
	_, q := locQuery(t, w)
	return q
}

func TestR12_RepeatedEmptyUnknownParameters(t *testing.T) {
	e := newEnv(t, false, func(c *core.Config) { c.DefaultScope = "read" })
	base := "response_type=code&client_id=conf&redirect_uri=" + url.QueryEscape(confCB) +
		"&code_challenge=" + core.S256Challenge(verifier) + "&code_challenge_method=S256"
	for _, dup := range []string{"response_type=code", "state=t", "scope=read", "code_challenge=" + core.S256Challenge(verifier), "code_challenge_method=S256", "scope=", "state=s"} {
		t.Run("repeated "+dup, func(t *testing.T) {
			w := e.do(&fakeReq{method: "GET", path: "/oauth2/authorize", query: base + "&state=s&scope=read&" + dup})
			wantRedirectError(t, w, confCB, "invalid_request", "s")
		})
	}
	if e.grantsCount() != 0 {
		t.Fatalf("grant stored")
	}
	// Empty values are absent; unknown parameters are ignored.
	w := e.do(&fakeReq{method: "GET", path: "/oauth2/authorize", query: base + "&state=&scope=&foo=bar&nonce=1&prompt=none"})
	if w.status != 200 {
		t.Fatalf("empty/unknown parameters refused: %d %s", w.status, w.hdr.Get("Location"))
	}
	_, q := locQuery(t, e.login(w, "alice", "pw"))
	if _, ok := q["state"]; ok {
		t.Errorf("empty state echoed")
	}
	at, _ := e.redeem(q.Get("code"))
	info, _ := e.srv.CheckToken(t.Context(), at)
	if info == nil || info.Scope != "read" {
		t.Errorf("empty scope not treated as absent: %+v", info)
	}
	// Empty redirect_uri with one registered URI is absent too.
	w = e.do(&fakeReq{method: "GET", path: "/oauth2/authorize", query: base[:strings.Index(base, "&redirect_uri")] + "&redirect_uri=" + base[strings.Index(base, "&code_challenge"):]})
	if w.status != 200 {
		t.Errorf("empty redirect_uri refused: %d", w.status)
	}

	// Token endpoint: repeated parameters are invalid_request; empty ones absent.
	code := e.code("")
	for _, body := range []string{
		"grant_type=authorization_code&grant_type=authorization_code&code=" + code + "&redirect_uri=" + url.QueryEscape(confCB) + "&code_verifier=" + verifier,
		"grant_type=authorization_code&code=" + code + "&code=x&redirect_uri=" + url.QueryEscape(confCB) + "&code_verifier=" + verifier,
		"grant_type=authorization_code&code=" + code + "&redirect_uri=" + url.QueryEscape(confCB) + "&code_verifier=" + verifier + "&code_verifier=",
	} {
		w := e.do(&fakeReq{method: "POST", path: "/oauth2/token", body: body, hdr: withForm(basic("conf", e.secret))})
		wantTokenError(t, w, 400, "invalid_request")
	}
	// The code survived those (the request was refused before touching it),
	// and empty or unknown parameters do not hurt.
	w = e.do(&fakeReq{method: "POST", path: "/oauth2/token", hdr: withForm(basic("conf", e.secret)),
		body: "grant_type=authorization_code&code=" + code + "&redirect_uri=" + url.QueryEscape(confCB) + "&code_verifier=" + verifier + "&scope=&client_secret=&foo=bar&resource="})
	if w.status != 200 {
		t.Errorf("token with empty/unknown parameters: %d %s", w.status, w.body)
	}
}

func withForm(h http.Header) http.Header {
	h = h.Clone()
	if h == nil {
		h = http.Header{}
	}
	h.Set("Content-Type", "application/x-www-form-urlencoded")
	return h
}

func TestR13_ImplicitRefused(t *testing.T) {
	e := newEnv(t, false)
	for _, rt := range []string{"token", "code_and_token", "code token", "id_token", "token code", "CODE", "code "} {
		q := codeQuery("conf", confCB, "", "s")
		q.Set("response_type", rt)
		wantRedirectError(t, e.authorize(q), confCB, "unsupported_response_type", "s")
	}
	q := codeQuery("conf", confCB, "", "s")
	q.Del("response_type")
	wantRedirectError(t, e.authorize(q), confCB, "invalid_request", "s")
	if e.grantsCount() != 0 {
		t.Errorf("grant stored")
	}
}

func TestR14_NoCORSAtAuthorize(t *testing.T) {
	e := newEnv(t, true)
	origin := http.Header{"Origin": {"https://evil.example"}}
	reqs := []*fakeReq{
		{method: "GET", path: "/oauth2/authorize", query: codeQuery("conf", confCB, "", "s").Encode(), hdr: origin},
		{method: "GET", path: "/oauth2/authorize", query: "client_id=nobody", hdr: origin},
		{method: "OPTIONS", path: "/oauth2/authorize", hdr: http.Header{"Origin": {"https://evil.example"}, "Access-Control-Request-Method": {"GET"}}},
		{method: "POST", path: "/oauth2/authorize", body: codeQuery("conf", confCB, "", "s").Encode(), hdr: http.Header{"Origin": {"https://evil.example"}, "Content-Type": {"application/x-www-form-urlencoded"}}},
		{method: "GET", path: "/oauth2/authorize", query: "response_type=token&client_id=conf", hdr: origin},
	}
	for _, r := range reqs {
		w := e.do(r)
		wantNoCORS(t, w)
	}
	// The rest of the flow too.
	page := e.authorize(codeQuery("conf", confCB, "", "s"))
	c := e.login(page, "alice", "pw")
	wantNoCORS(t, c)
	f := hidden(t, c.body)
	f.Set("decision", "approve")
	wantNoCORS(t, e.post("/oauth2/login", f, http.Header{"Origin": {"https://evil.example"}}))
	w := e.do(&fakeReq{method: "OPTIONS", path: "/oauth2/authorize"})
	if w.status != 405 || !strings.Contains(w.hdr.Get("Allow"), "GET") {
		t.Errorf("OPTIONS: %d Allow=%q", w.status, w.hdr.Get("Allow"))
	}
}

func TestR15_LoginAndConsentBeforeCode(t *testing.T) {
	e := newEnv(t, true)
	// The authorize request alone: a login page, no code, no grant.
	page := e.authorize(codeQuery("conf", confCB, "read", "s"))
	if page.status != 200 || page.hdr.Get("Location") != "" {
		t.Fatalf("authorize: %d %q", page.status, page.hdr.Get("Location"))
	}
	if e.grantsCount() != 0 {
		t.Fatalf("grant stored before login")
	}
	// Wrong password: the login page again, no code.
	w := e.login(page, "alice", "wrong")
	if w.status != 200 || w.hdr.Get("Location") != "" || e.grantsCount() != 0 {
		t.Fatalf("failed login: %d %q, %d grants", w.status, w.hdr.Get("Location"), e.grantsCount())
	}
	// Right password: the consent page, still no code.
	c := e.login(page, "alice", "pw")
	if c.status != 200 || c.hdr.Get("Location") != "" || !strings.Contains(string(c.body), "Conf App wants read") {
		t.Fatalf("consent page: %d %q %s", c.status, c.hdr.Get("Location"), c.body)
	}
	if e.grantsCount() != 0 {
		t.Fatalf("grant stored before consent")
	}
	if s, err := e.store.GetConsent(t.Context(), "alice", "conf"); err == nil {
		t.Fatalf("consent %q saved before the user approved", s)
	}
	// The consent form without a decision is not an approval.
	f := hidden(t, c.body)
	wantErrorPage(t, e.post("/oauth2/login", f, nil), 400)
	f.Set("decision", "yes")
	wantErrorPage(t, e.post("/oauth2/login", f, nil), 400)
	if e.grantsCount() != 0 {
		t.Fatalf("grant stored without approval")
	}
	// Deny: access_denied, nothing stored.
	f.Set("decision", "deny")
	wantRedirectError(t, e.post("/oauth2/login", f, nil), confCB, "access_denied", "s")
	if e.grantsCount() != 0 {
		t.Fatalf("grant stored on deny")
	}
	if _, err := e.store.GetConsent(t.Context(), "alice", "conf"); err == nil {
		t.Fatalf("consent saved on deny")
	}
	// Approve (a fresh flow): a code, and the consent is remembered for
	// that scope ...
	f = hidden(t, e.login(e.authorize(codeQuery("conf", confCB, "read", "s")), "alice", "pw").body)
	f.Set("decision", "approve")
	wantCodeRedirect(t, e.post("/oauth2/login", f, nil), confCB, "s")
	if s, _ := e.store.GetConsent(t.Context(), "alice", "conf"); s != "read" {
		t.Errorf("saved consent %q", s)
	}
	// ... so the next login for the same scope skips it; a wider scope asks again.
	w = e.login(e.authorize(codeQuery("conf", confCB, "read", "s2")), "alice", "pw")
	wantCodeRedirect(t, w, confCB, "s2")
	w = e.login(e.authorize(codeQuery("conf", confCB, "read write", "s3")), "alice", "pw")
	if w.status != 200 || !strings.Contains(string(w.body), "wants read write") {
		t.Errorf("wider scope skipped consent: %d %s", w.status, w.body)
	}
	// Consent is per client.
	w = e.login(e.authorize(codeQuery("pub", publicCB, "read", "s4")), "alice", "pw")
	if w.status != 200 || !strings.Contains(string(w.body), "Public App wants read") {
		t.Errorf("another client skipped consent: %d %s", w.status, w.body)
	}
}

func TestR16_SeeOtherAfterPost(t *testing.T) {
	e := newEnv(t, true)
	page := e.authorize(codeQuery("conf", confCB, "", "s"))
	c := e.login(page, "alice", "pw")
	f := hidden(t, c.body)
	f.Set("decision", "approve")
	if w := e.post("/oauth2/login", f, nil); w.status != 303 {
		t.Errorf("approve: %d, want 303", w.status)
	}
	page = e.authorize(codeQuery("conf", confCB, "write", "s"))
	f = hidden(t, e.login(page, "alice", "pw").body)
	f.Set("decision", "deny")
	if w := e.post("/oauth2/login", f, nil); w.status != 303 {
		t.Errorf("deny: %d, want 303", w.status)
	}
	// Without consent, the login POST itself redirects with 303.
	e2 := newEnv(t, false)
	if w := e2.login(e2.authorize(codeQuery("conf", confCB, "", "s")), "alice", "pw"); w.status != 303 {
		t.Errorf("login: %d, want 303", w.status)
	}
	// An authorization request POSTed (it may carry anything) that fails
	// after validation also answers 303.
	q := codeQuery("conf", confCB, "", "s")
	q.Set("response_type", "token")
	if w := e2.post("/oauth2/authorize", q, nil); w.status != 303 {
		t.Errorf("POST authorize error: %d, want 303", w.status)
	}
}

func TestR17_LoginAndConsentCSRF(t *testing.T) {
	e := newEnv(t, true)
	page := e.authorize(codeQuery("conf", confCB, "", "s"))
	victim := e.cookie
	login := hidden(t, page.body)
	login.Set("username", "alice")
	login.Set("password", "pw")

	// Another browser's session (the attacker's own flow).
	e.cookie = ""
	attackerPage := e.authorize(codeQuery("conf", confCB, "", "s"))
	attacker := e.cookie
	if attacker == victim || attacker == "" {
		t.Fatalf("sessions not distinct")
	}
	e.cookie = victim

	cases := []struct {
		name   string
		form   func() url.Values
		cookie string
	}{
		{"no session cookie", func() url.Values { return login }, "-"},
		{"another session", func() url.Values { return login }, attacker},
		{"forged session", func() url.Values { return login }, core.SecureSessionCookie + "=" + strings.Repeat("A", 43)},
		{"no csrf token", func() url.Values { f := cloneV(login); f.Del(core.FieldCSRF); return f }, victim},
		{"wrong csrf token", func() url.Values { f := cloneV(login); f.Set(core.FieldCSRF, strings.Repeat("A", 43)); return f }, victim},
		{"attacker's form in victim's browser", func() url.Values {
			f := hidden(t, attackerPage.body)
			f.Set("username", "alice")
			f.Set("password", "pw")
			return f
		}, victim},
		{"attacker's csrf token with victim's request", func() url.Values {
			f := cloneV(login)
			f.Set(core.FieldCSRF, hidden(t, attackerPage.body).Get(core.FieldCSRF))
			return f
		}, victim},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			hdr := http.Header{}
			if c.cookie == "-" {
				hdr.Set("Cookie", "other=1")
			} else {
				hdr.Set("Cookie", c.cookie)
			}
			w := e.post("/oauth2/login", c.form(), hdr)
			wantErrorPage(t, w, 403)
		})
	}
	// The real form in the real browser works and leads to consent.
	cons := e.post("/oauth2/login", login, nil)
	if cons.status != 200 {
		t.Fatalf("login: %d %s", cons.status, cons.body)
	}
	approve := hidden(t, cons.body)
	approve.Set("decision", "approve")
	// The consent approval is protected the same way.
	for name, hdr := range map[string]http.Header{
		"no cookie":       {"Cookie": {"other=1"}},
		"another session": {"Cookie": {attacker}},
	} {
		if w := e.post("/oauth2/login", approve, hdr); w.status != 403 || w.hdr.Get("Location") != "" {
			t.Errorf("approval with %s: %d %q", name, w.status, w.hdr.Get("Location"))
		}
	}
	bad := cloneV(approve)
	bad.Set(core.FieldCSRF, login.Get(core.FieldCSRF)) // the login step's token
	wantErrorPage(t, e.post("/oauth2/login", bad, nil), 403)
	if e.grantsCount() != 0 {
		t.Fatalf("grant stored by a forged approval")
	}
	// The login-step handle cannot be turned into an approval.
	early := cloneV(login)
	early.Set("decision", "approve")
	early.Set("password", "wrong")
	if w := e.post("/oauth2/login", early, nil); w.status == 303 || e.grantsCount() != 0 {
		t.Fatalf("login-step handle approved: %d", w.status)
	}
	// The login page expires.
	e.now = e.now.Add(16 * time.Minute)
	wantErrorPage(t, e.post("/oauth2/login", approve, nil), 400)
	if e.grantsCount() != 0 {
		t.Fatalf("grant stored after expiry")
	}
	// GET on the login endpoint does nothing.
	w := e.do(&fakeReq{method: "GET", path: "/oauth2/login", query: approve.Encode()})
	wantErrorPage(t, w, 405)
}

func cloneV(v url.Values) url.Values {
	c := url.Values{}
	for k, vs := range v {
		c[k] = append([]string(nil), vs...)
	}
	return c
}

func TestR18_R19_PageHeaders(t *testing.T) {
	e := newEnv(t, true)
	check := func(name string, w *fakeResp, status int) {
		t.Helper()
		if w.status != status {
			t.Errorf("%s: status %d, want %d", name, w.status, status)
		}
		wantPageHeaders(t, w)
		// Pages the kit renders itself load nothing from elsewhere.
		if regexp.MustCompile(`(?i)(src|href)\s*=`).Match(w.body) {
			t.Errorf("%s: page loads a resource: %s", name, w.body)
		}
	}
	page := e.authorize(codeQuery("conf", confCB, "", "s"))
	check("login page", page, 200)
	check("failed login page", e.login(page, "alice", "wrong"), 200)
	c := e.login(page, "alice", "pw")
	check("consent page", c, 200)
	check("unknown client", e.authorize(codeQuery("nobody", confCB, "", "s")), 400)
	check("bad redirect", e.authorize(codeQuery("conf", "https://evil.example/", "", "s")), 400)
	check("login GET", e.do(&fakeReq{method: "GET", path: "/oauth2/login"}), 405)
	check("authorize PUT", e.do(&fakeReq{method: "PUT", path: "/oauth2/authorize"}), 405)
	check("bad login form", e.post("/oauth2/login", url.Values{"x": {"y"}}, nil), 400)
	check("foreign session", e.post("/oauth2/login", hidden(t, c.body), http.Header{"Cookie": {core.SecureSessionCookie + "=" + strings.Repeat("B", 43)}}), 403)
	// Redirects suppress the Referer too.
	f := hidden(t, c.body)
	f.Set("decision", "approve")
	w := e.post("/oauth2/login", f, nil)
	if w.hdr.Get("Referrer-Policy") != "no-referrer" || w.hdr.Get("Cache-Control") != "no-store" {
		t.Errorf("code redirect headers: %v", w.hdr)
	}
	q := codeQuery("conf", confCB, "", "s")
	q.Set("response_type", "token")
	w = e.authorize(q)
	if w.hdr.Get("Referrer-Policy") != "no-referrer" || w.hdr.Get("Cache-Control") != "no-store" {
		t.Errorf("error redirect headers: %v", w.hdr)
	}
}

// errorPager renders the kit's error pages itself.
type errorPager struct {
	consentAuth
	got []string
}

func (p *errorPager) ErrorPage(w core.Responder, r core.Request, status int, code, desc string) {
	p.got = append(p.got, code+"|"+desc)
	_ = w.Send(status, []byte("custom"))
}

func TestR18_ErrorPagerGetsHeaders(t *testing.T) {
	e := newEnv(t, false)
	ep := &errorPager{consentAuth: consentAuth{testAuth{srv: &e.srv}}}
	srv, err := core.New(e.srv.Config(), e.store, ep)
	if err != nil {
		t.Fatal(err)
	}
	e.srv = srv
	w := e.authorize(codeQuery("nobody", "https://evil.example/<x>", "", "s"))
	if w.status != 400 || string(w.body) != "custom" || w.hdr.Get("Location") != "" {
		t.Fatalf("ErrorPager not used: %d %s", w.status, w.body)
	}
	wantPageHeaders(t, w)
	if len(ep.got) != 1 || !descRe.MatchString(ep.got[0]) || strings.Contains(ep.got[0], "evil") {
		t.Errorf("ErrorPager got %q", ep.got)
	}
}

func TestR20_NoOpenRedirect(t *testing.T) {
	e := newEnv(t, true)
	evil := "https://evil.example/steal"
	reqs := []*fakeReq{
		{method: "GET", path: "/oauth2/authorize", query: codeQuery("nobody", evil, "", "s").Encode()},
		{method: "GET", path: "/oauth2/authorize", query: codeQuery("conf", evil, "", "s").Encode()},
		{method: "GET", path: "/oauth2/authorize", query: codeQuery("conf", confCB+"/../../evil", "", "s").Encode()},
		{method: "GET", path: "/oauth2/authorize", query: "client_id=conf&redirect_uri=" + url.QueryEscape(evil) + "&response_type=token"},
		{method: "GET", path: "/oauth2/authorize", query: "client_id=pub&response_type=code&return_to=" + url.QueryEscape(evil)},
		{method: "GET", path: "/oauth2/login", query: "return_to=" + url.QueryEscape(evil)},
		{method: "POST", path: "/oauth2/login", body: "return_to=" + url.QueryEscape(evil) + "&next=" + url.QueryEscape(evil), hdr: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}},
	}
	for _, r := range reqs {
		w := e.do(r)
		if l := w.hdr.Get("Location"); l != "" {
			t.Errorf("%s %s?%s redirected to %q", r.method, r.path, r.query, l)
		}
		if strings.Contains(string(w.body), "evil") {
			t.Errorf("page mentions the untrusted URL: %s", w.body)
		}
	}
	// A pending request cannot be re-aimed: a handle of one client with a
	// forged redirect is impossible (sealed), and a valid flow goes only to
	// the registered URI even when the login form carries a return_to.
	page := e.authorize(codeQuery("conf", confCB, "", "s"))
	f := hidden(t, page.body)
	f.Set("username", "alice")
	f.Set("password", "pw")
	f.Set("redirect_uri", evil)
	f.Set("return_to", evil)
	c := e.post("/oauth2/login", f, nil)
	f = hidden(t, c.body)
	f.Set("decision", "approve")
	f.Set("redirect_uri", evil)
	wantCodeRedirect(t, e.post("/oauth2/login", f, nil), confCB, "s")
}

func TestR21_EscapingOfUntrustedValues(t *testing.T) {
	e := newEnv(t, false)
	nasty := `<script>alert(1)</script> & x#y "q" 'r'`
	// In Location: the state is percent-encoded and cannot add parameters,
	// a fragment or break out of the query.
	for _, w := range []*fakeResp{
		e.codeFor(codeQuery("conf", confCB, "", nasty+"&code=evil&iss=https://evil.example#frag")),
		func() *fakeResp {
			q := codeQuery("conf", confCB, "", nasty+"&error=none")
			q.Set("response_type", "token")
			return e.authorize(q)
		}(),
	} {
		l := w.hdr.Get("Location")
		if strings.ContainsAny(l, " <>\"'#\\") {
			t.Errorf("Location %q has raw special characters", l)
		}
		_, q := locQuery(t, w)
		for k, v := range q {
			if len(v) != 1 {
				t.Errorf("parameter %s appears %d times in %q", k, len(v), l)
			}
		}
		if q.Get("iss") != issuer || !strings.HasPrefix(q.Get("state"), nasty) {
			t.Errorf("state/iss altered: %v", q)
		}
	}
	// A repeated parameter with a hostile name is unknown, so it is ignored
	// (R12) and never reflected anywhere.
	w := e.do(&fakeReq{method: "GET", path: "/oauth2/authorize",
		query: codeQuery("conf", confCB, "", "s").Encode() + "&%22%5C%0A%3Cb%3E=1&%22%5C%0A%3Cb%3E=2"})
	if w.status != 200 || w.hdr.Get("Location") != "" || strings.Contains(string(w.body), "<b>") {
		t.Errorf("repeated unknown parameter: %d %q", w.status, w.hdr.Get("Location"))
	}
	// In HTML: nothing the request carries reaches the error page unescaped.
	for _, query := range []string{
		"response_type=code&client_id=" + url.QueryEscape(nasty) + "&redirect_uri=" + url.QueryEscape(nasty),
		"response_type=code&client_id=conf&redirect_uri=" + url.QueryEscape("https://x/"+nasty),
	} {
		w := e.do(&fakeReq{method: "GET", path: "/oauth2/authorize", query: query})
		wantErrorPage(t, w, 400)
		if strings.Contains(string(w.body), "<script>") || strings.Contains(string(w.body), "alert") {
			t.Errorf("request content reflected into the page: %s", w.body)
		}
	}
	// HiddenFields writes only sealed values (base64url, nothing to escape)
	// into attributes; an AuthorizationRequest the app made itself has no
	// sealed request and yields empty fields, never a panic.
	hf := (&core.AuthorizationRequest{}).HiddenFields()
	if hf != `<input type="hidden" name="oauth2kit_request" value=""><input type="hidden" name="csrf_token" value="">` {
		t.Errorf("HiddenFields of an empty request: %s", hf)
	}
	page := e.authorize(codeQuery("conf", confCB, "", nasty))
	for _, m := range regexp.MustCompile(`name="(oauth2kit_request|csrf_token)" value="([^"]*)"`).FindAllStringSubmatch(string(page.body), -1) {
		if !regexp.MustCompile(`^[A-Za-z0-9_.-]+$`).MatchString(m[2]) {
			t.Errorf("hidden field %s holds %q", m[1], m[2])
		}
	}
	// SafeDescription keeps only %x20-21 / %x23-5B / %x5D-7E.
	for _, s := range []string{"a\"b", "a\\b", "a\nb", "é", "\x7f", "ok <b>&"} {
		if got := core.SafeDescription(s); !descRe.MatchString(got) || len(got) != len(s) {
			t.Errorf("SafeDescription(%q) = %q", s, got)
		}
	}
	if core.SafeDescription("ok <b>&") != "ok <b>&" {
		t.Errorf("SafeDescription altered allowed characters")
	}
}

// Exact redirect matching: byte for byte, except the port of a loopback
// IP literal (RFC 8252 §7.3); "localhost" is not loopback here.
func TestMatchRedirectURI_Cases(t *testing.T) {
	for _, c := range []struct {
		reg, req string
		want     bool
	}{
		{"https://app.example/cb", "https://app.example/cb", true},
		{"https://app.example/cb", "https://APP.example/cb", false},
		{"http://127.0.0.1/cb", "http://127.0.0.1:53127/cb", true},
		{"http://localhost/cb", "http://localhost:53127/cb", false},
	} {
		if got := core.MatchRedirectURI(c.reg, c.req); got != c.want {
			t.Errorf("MatchRedirectURI(%q, %q) = %v", c.reg, c.req, got)
		}
	}
	if s, ok := core.NarrowScope("read", "write read"); s != "read" || !ok {
		t.Errorf("narrow read: %q %v", s, ok)
	}
	if s, ok := core.NarrowScope("", "write read"); s != "read write" || !ok {
		t.Errorf("narrow empty: %q %v", s, ok)
	}
	if _, ok := core.NarrowScope("admin", "write read"); ok {
		t.Errorf("narrow admin allowed")
	}
}

// state and scope are bounded so every handle and token the server mints
// is one it accepts back; within the bounds, the flow completes.
func TestLongStateAndScope(t *testing.T) {
	e := newEnv(t, false)
	long := strings.Repeat("s", 2048)
	page := e.authorize(codeQuery("conf", confCB, "read", long))
	if page.status != 200 {
		t.Fatalf("authorize with a 2048-byte state: %d %s", page.status, page.hdr.Get("Location"))
	}
	w := e.login(page, "alice", "pw")
	if w.status != 303 {
		t.Fatalf("login with a 2048-byte state: %d %s", w.status, w.body)
	}
	loc, _ := url.Parse(w.hdr.Get("Location"))
	if loc.Query().Get("state") != long || loc.Query().Get("code") == "" {
		t.Fatalf("state not returned intact")
	}
	// One byte more: refused by redirect, without echoing the state.
	w = e.authorize(codeQuery("conf", confCB, "read", long+"s"))
	q := wantRedirectError(t, w, confCB, "invalid_request", "")
	if q.Has("state") {
		t.Errorf("overlong state echoed")
	}
	// A scope over 1024 bytes is invalid_scope at the token endpoint too,
	// even with no server scope list.
	open := newEnv(t, false, func(c *core.Config) { c.Scopes = nil })
	big := strings.TrimSpace(strings.Repeat("abcdefghi ", 103))
	w = open.token(url.Values{"grant_type": {"client_credentials"}, "scope": {big}}, basic("conf", open.secret))
	wantTokenError(t, w, 400, "invalid_scope")
	ok := strings.TrimSpace(strings.Repeat("abcdefghi ", 100))
	w = open.token(url.Values{"grant_type": {"client_credentials"}, "scope": {ok}}, basic("conf", open.secret))
	if w.status != 200 {
		t.Fatalf("1000-byte scope: %d %s", w.status, w.body)
	}
	if _, err := open.srv.CheckToken(t.Context(), w.json(t)["access_token"].(string)); err != nil {
		t.Fatalf("minted token not accepted back: %v", err)
	}
}

func TestRobustAuthorizeMalformed(t *testing.T) {
	k := newRKit(t)
	good := codeQuery("conf", confCB, "read", "st")
	enc := good.Encode()
	pages := []struct{ name, query string }{
		{"bad escape", enc + "&x=%zz"},
		{"bad escape in client_id", "client_id=%zz&response_type=code"},
		{"1000 params", enc + strings.Repeat("&x=1", 1000)},
		{"huge value", enc + "&x=" + strings.Repeat("a", 5000)},
		{"huge key", enc + "&" + strings.Repeat("k", 300) + "=1"},
		{"repeated client_id", enc + "&client_id=conf"},
		{"repeated redirect_uri", enc + "&redirect_uri=" + url.QueryEscape(confCB)},
		{"no client_id", "response_type=code"},
		{"client_id without =", "client_id&response_type=code"},
		{"NUL client_id", "client_id=conf%00&response_type=code"},
		{"non-UTF-8 client_id", "client_id=%ff&response_type=code"},
		{"unknown client", strings.Replace(enc, "client_id=conf", "client_id=nobody", 1)},
		{"non-UTF-8 redirect_uri", strings.Replace(enc, "redirect_uri=", "redirect_uri=%ff", 1)},
		{"redirect_uri with NUL", strings.Replace(enc, "redirect_uri="+url.QueryEscape(confCB), "redirect_uri="+url.QueryEscape(confCB)+"%00", 1)},
		{"redirect_uri prefix", strings.Replace(enc, "redirect_uri="+url.QueryEscape(confCB), "redirect_uri="+url.QueryEscape(confCB[:len(confCB)-1]), 1)},
		{"redirect_uri backslash", strings.Replace(enc, "redirect_uri="+url.QueryEscape(confCB), "redirect_uri="+url.QueryEscape(`https://client.example.com\@evil.example/cb`), 1)},
	}
	for _, c := range pages {
		robustWantPage(t, "authorize "+c.name, k.do(&fakeReq{method: "GET", path: "/oauth2/authorize", query: c.query}), 400)
	}
	// With a trusted redirect URI, errors go back to the client.
	redirects := []struct{ name, query, code string }{
		{"repeated state", enc + "&state=other", core.ErrInvalidRequest},
		{"repeated scope", enc + "&scope=write", core.ErrInvalidRequest},
		{"NUL response_type", strings.Replace(enc, "response_type=code", "response_type=code%00", 1), core.ErrUnsupportedResponseType},
		{"non-UTF-8 scope", strings.Replace(enc, "scope=read", "scope=%ff", 1), core.ErrInvalidScope},
		{"huge challenge", strings.Replace(enc, "code_challenge=", "code_challenge="+strings.Repeat("a", 200), 1), core.ErrInvalidRequest},
		{"challenge with NUL", strings.Replace(enc, "code_challenge=", "code_challenge=%00", 1), core.ErrInvalidRequest},
	}
	for _, c := range redirects {
		w := k.do(&fakeReq{method: "GET", path: "/oauth2/authorize", query: c.query})
		loc, err := url.Parse(w.hdr.Get("Location"))
		if w.status != 303 || err != nil || !strings.HasPrefix(w.hdr.Get("Location"), confCB+"?") {
			t.Errorf("authorize %s: %d %q, want a 303 to the client", c.name, w.status, w.hdr.Get("Location"))
			continue
		}
		q := loc.Query()
		if q.Get("error") != c.code || !robustDescOK(q.Get("error_description")) || q.Get("state") != "st" || q.Get("iss") != issuer {
			t.Errorf("authorize %s: redirect %q, want error=%s, state, iss and a clean description", c.name, loc, c.code)
		}
	}
	// Odd but legal: state is opaque, any bytes come back intact.
	odd := "\xff\x00<script>\"'&=%"
	q := codeQuery("conf", confCB, "read", odd)
	q.Set("response_type", "token")
	w := k.do(&fakeReq{method: "GET", path: "/oauth2/authorize", query: q.Encode()})
	if loc, err := url.Parse(w.hdr.Get("Location")); err != nil || loc.Query().Get("state") != odd {
		t.Errorf("odd state did not come back intact: %q", w.hdr.Get("Location"))
	}
}

func TestRobustLoginMalformed(t *testing.T) {
	k := newRKit(t)
	f := k.hiddenFields(k.loginPage("read").body)
	handle := f.Get(core.FieldRequest)
	cases := []struct{ name, body string }{
		{"empty", ""},
		{"bad escape", "oauth2kit_request=%zz"},
		{"garbage handle", "oauth2kit_request=pr2.x.y&csrf_token=z"},
		{"handle with a flipped char", "oauth2kit_request=" + url.QueryEscape(handle[:20]+string(handle[20]^1)+handle[21:]) + "&csrf_token=" + url.QueryEscape(f.Get(core.FieldCSRF))},
		{"access token as handle", "oauth2kit_request=at2.x." + strings.Repeat("A", 100)},
		{"repeated handle", "oauth2kit_request=" + url.QueryEscape(handle) + "&oauth2kit_request=" + url.QueryEscape(handle)},
		{"1000 params", strings.Repeat("a=1&", 1000)},
		{"NUL and non-UTF-8", "oauth2kit_request=%00%ff&csrf_token=%00"},
	}
	for _, c := range cases {
		robustWantPage(t, "login "+c.name, k.post("/oauth2/login", c.body, nil), 400)
	}
	// Right handle, wrong CSRF token, or no session cookie: 403.
	bad := url.Values{core.FieldRequest: {handle}, core.FieldCSRF: {"x"}, "username": {"alice"}, "password": {"pw"}}
	robustWantPage(t, "login with a wrong CSRF token", k.post("/oauth2/login", bad.Encode(), nil), 403)
	f.Set("username", "alice")
	f.Set("password", "pw")
	robustWantPage(t, "login without the session cookie", k.post("/oauth2/login", f.Encode(), http.Header{"Cookie": {"other=1"}}), 403)
}

// The session cookie exists to bind a form to the browser: an authorization
// answered at once with a redirect sets none, a page with a form sets it,
// and the form then works with it.
func TestSessionCookieOnlyWithAForm(t *testing.T) {
	t.Run("redirect at once", func(t *testing.T) {
		srv := newSessionServer(t, &signedIn{})
		w := &exampleResponse{header: http.Header{}}
		srv.Handle(w, exampleRequest{method: "GET", path: "/oauth2/authorize", query: authorizeQuery()})
		if w.status != 303 || !strings.Contains(w.header.Get("Location"), "code=") {
			t.Fatalf("status %d, Location %q", w.status, w.header.Get("Location"))
		}
		if c := w.header.Values("Set-Cookie"); len(c) != 0 {
			t.Fatalf("Set-Cookie on a bare redirect: %q", c)
		}
		if w.header.Get("X-Frame-Options") != "DENY" || w.header.Get("Cache-Control") != "no-store" {
			t.Fatalf("headers %v", w.header)
		}
	})
	t.Run("consent page", func(t *testing.T) {
		srv := newSessionServer(t, &signedInConsent{})
		w := &exampleResponse{header: http.Header{}}
		srv.Handle(w, exampleRequest{method: "GET", path: "/oauth2/authorize", query: authorizeQuery()})
		if w.status != 200 {
			t.Fatalf("status %d", w.status)
		}
		cookies := w.header.Values("Set-Cookie")
		if len(cookies) != 1 || !strings.HasPrefix(cookies[0], core.SecureSessionCookie+"=") {
			t.Fatalf("Set-Cookie = %q", cookies)
		}
		form := url.Values{"decision": {"approve"}}
		for _, m := range regexp.MustCompile(`name="([^"]+)" value="([^"]*)"`).FindAllStringSubmatch(string(w.body), -1) {
			form.Set(m[1], m[2])
		}
		cookie := strings.SplitN(cookies[0], ";", 2)[0]
		post := func(cookie string) *exampleResponse {
			w := &exampleResponse{header: http.Header{}}
			srv.Handle(w, exampleRequest{method: "POST", path: "/oauth2/login", body: form.Encode(),
				header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Cookie": {cookie}}})
			return w
		}
		if w := post(""); w.status != 403 {
			t.Fatalf("without the cookie: status %d", w.status)
		}
		if w := post(cookie); w.status != 303 || !strings.Contains(w.header.Get("Location"), "code=") {
			t.Fatalf("with the cookie: status %d, Location %q", w.status, w.header.Get("Location"))
		}
	})
}

// After the handler returned, the request no longer reaches the response
// (frameworks recycle it): a late Handle is "" and sets no cookie.
func TestLateHandleSetsNoCookie(t *testing.T) {
	a := &keeper{}
	srv := newSessionServer(t, a)
	w := &exampleResponse{header: http.Header{}}
	srv.Handle(w, exampleRequest{method: "GET", path: "/oauth2/authorize", query: authorizeQuery()})
	if w.status != 200 || a.kept == nil {
		t.Fatalf("status %d", w.status)
	}
	if h := a.kept.Handle(); h != "" {
		t.Fatalf("late Handle = %q", h)
	}
	if c := w.header.Values("Set-Cookie"); len(c) != 0 {
		t.Fatalf("Set-Cookie after the handler returned: %q", c)
	}
}

func TestLoginThrottling(t *testing.T) {
	e := newEnv(t, false, func(c *core.Config) { c.LoginThrottle.PerAccount = 3; c.LoginThrottle.PerAddr = 5 })
	// Rebuild the server with the throttling authenticator.
	cfg := e.srv.Config()
	srv, err := core.New(cfg, e.store, &throttledAuth{testAuth{srv: &e.srv}})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = srv
	page := e.authorize(codeQuery("conf", confCB, "read", "s"))
	attempt := func(user, pw, remote string) *fakeResp {
		f := hidden(t, page.body)
		f.Set("username", user)
		f.Set("password", pw)
		r := &fakeReq{method: "POST", path: "/oauth2/login", body: f.Encode(), remote: remote}
		r.hdr = withForm(nil)
		return e.do(r)
	}
	for i := range 3 {
		if w := attempt("Alice", "nope", "198.51.100.1:1"); w.status != 200 || !strings.Contains(string(w.body), "wrong") {
			t.Fatalf("failure %d: %d %s", i, w.status, w.body)
		}
	}
	// The account is throttled now, from any address, even with the right
	// password (case-insensitive user name); the page says nothing about
	// whether the user exists.
	w := attempt("alice", "pw", "203.0.113.7:1")
	if w.status != 429 || w.hdr.Get("Retry-After") == "" || w.hdr.Get("Location") != "" {
		t.Fatalf("throttled login: %d %v", w.status, w.hdr)
	}
	if w.hdr.Get("X-Frame-Options") != "DENY" {
		t.Errorf("429 page without anti-framing headers: %v", w.hdr)
	}
	// An unknown user name behaves the same.
	for range 3 {
		attempt("nobody", "x", "198.51.100.2:1")
	}
	if w := attempt("nobody", "x", "203.0.113.8:1"); w.status != 429 {
		t.Errorf("unknown user not throttled alike: %d", w.status)
	}
	// Per address: 5 failures over different user names block the address.
	for i := range 5 {
		attempt("user"+string(rune('a'+i)), "x", "192.0.2.50:1")
	}
	if w := attempt("bob", "x", "192.0.2.50:2"); w.status != 429 {
		t.Errorf("address not throttled: %d", w.status)
	}
	// The window ends.
	e.now = e.now.Add(5*time.Minute + time.Second)
	if w := attempt("alice", "pw", "203.0.113.7:1"); w.status != 303 {
		t.Errorf("after the window: %d %s", w.status, w.body)
	}
}

// signedIn knows the user already: Login calls SendGrant at once.
// signedInConsent also asks for consent (a page, hence a form and a
// session).
type signedIn struct{ srv *core.Server }

func (a *signedIn) Login(w core.Responder, r core.Request, ar *core.AuthorizationRequest) {
	a.srv.SendGrant(w, r, ar, "alice", "")
}

func (a *signedIn) ProcessLogin(w core.Responder, r core.Request, ar *core.AuthorizationRequest) {
	a.srv.SendGrant(w, r, ar, "alice", "")
}

type signedInConsent struct{ signedIn }

var _ core.ConsentPrompter = (*signedInConsent)(nil)

func (a *signedInConsent) Consent(w core.Responder, _ core.Request, ar *core.AuthorizationRequest) {
	w.SetHeader("Content-Type", "text/html; charset=utf-8")
	_ = w.Send(200, []byte(`<form method="post" action="`+ar.ProcessLoginURL+`">`+ar.HiddenFields()+
		`<button name="decision" value="approve">Allow</button></form>`))
}

func newSessionServer(t *testing.T, auth interface {
	core.Authenticator
	setSrv(*core.Server)
}) *core.Server {
	t.Helper()
	store := memstore.New()
	srv, err := core.New(core.Config{
		Issuer: "https://auth.example.com",
		Keys:   core.Keys{CryptKey: []byte("a test crypt key of 32+ bytes!!!"), SignKey: []byte("a test sign key of 32+ bytes!!!!")},

		Scopes: []string{"read"},
	}, store, auth)
	if err != nil {
		t.Fatal(err)
	}
	auth.setSrv(srv)
	c, _, err := core.NewClient(core.ClientSpec{ID: "app", RedirectURIs: []string{"https://app.example.com/cb"}, Public: true})
	if err != nil {
		t.Fatal(err)
	}
	store.AddClient(c)
	return srv
}

func (a *signedIn) setSrv(s *core.Server) { a.srv = s }

func authorizeQuery() string {
	sum := sha256.Sum256([]byte(strings.Repeat("v", 43)))
	return url.Values{
		"response_type": {"code"}, "client_id": {"app"}, "redirect_uri": {"https://app.example.com/cb"},
		"state": {"s"}, "code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
	}.Encode()
}

// keeper answers the login with its own page and keeps the request, as an
// app that wrongly holds on to it past the handler might.
type keeper struct {
	signedIn
	kept *core.AuthorizationRequest
}

func (a *keeper) Login(w core.Responder, _ core.Request, ar *core.AuthorizationRequest) {
	a.kept = ar
	_ = w.Send(200, []byte("a page without a form"))
}

// throttledAuth reports failures to the server and asks it first, as the
// docs of LoginAllowed say an app should.
type throttledAuth struct{ testAuth }

func (a *throttledAuth) ProcessLogin(w core.Responder, r core.Request, ar *core.AuthorizationRequest) {
	srv := *a.srv
	user := ar.Form.Get("username")
	if !srv.LoginAllowed(w, r, user) {
		return
	}
	if user != "alice" || ar.Form.Get("password") != "pw" {
		srv.LoginFailed(r, user)
		_ = w.Send(200, []byte("wrong username or password"))
		return
	}
	srv.SendGrant(w, r, ar, user, "")
}

// A pending login or consent request is usable once: the same form posted
// again (same hidden fields, same session cookie) gets an error page and no
// code — also when the second post reaches another instance sharing the
// store.
func TestR17_FormUsableOnce(t *testing.T) {
	for _, tc := range []struct {
		name          string
		consent, peer bool
	}{
		{"consent form", true, false},
		{"consent form, second instance", true, true},
		{"login form", false, false},
		{"login form, second instance", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.consent, quietLog)
			page := e.authorize(codeQuery("conf", confCB, "read", "st"))
			form := hidden(t, page.body)
			form.Set("username", "alice")
			form.Set("password", "pw")
			if tc.consent {
				w := e.post("/oauth2/login", form, nil)
				if w.status != 200 {
					t.Fatalf("login: %d %s", w.status, w.body)
				}
				form = hidden(t, w.body)
				form.Set("decision", "approve")
			}
			wantCodeRedirect(t, e.post("/oauth2/login", form, nil), confCB, "st")
			n := e.grantsCount()
			if tc.peer {
				// Another instance: same keys and configuration, same store.
				e.rebuild(tc.consent, e.store)
			}
			w := e.post("/oauth2/login", form, nil)
			wantErrorPage(t, w, 400)
			if !strings.Contains(string(w.body), "already") {
				t.Errorf("page %s", w.body)
			}
			if e.grantsCount() != n {
				t.Errorf("grants %d -> %d: a second code was stored", n, e.grantsCount())
			}
			// A fresh request of the same browser still works.
			if code := e.code("read"); code == "" {
				t.Errorf("no code for a fresh request")
			}
		})
	}
}

// A failed login leaves the form usable: only a form that completed is
// used up.
func TestR17_FailedLoginKeepsFormUsable(t *testing.T) {
	e := newEnv(t, false, quietLog)
	page := e.authorize(codeQuery("conf", confCB, "read", "st"))
	if w := e.login(page, "alice", "wrong"); w.status != 200 || w.hdr.Get("Location") != "" {
		t.Fatalf("failed login: %d %q", w.status, w.hdr.Get("Location"))
	}
	wantCodeRedirect(t, e.login(page, "alice", "pw"), confCB, "st")
}

// The login form that led to the consent page is used up by it: posted
// again (before or after the approval) it shows no second consent page and
// issues no code; and a denied consent form cannot be approved afterwards.
func TestR17_LoginFormBeforeConsentAndDeniedForm(t *testing.T) {
	e := newEnv(t, true, quietLog)
	page := e.authorize(codeQuery("conf", confCB, "read", "st"))
	login := hidden(t, page.body)
	login.Set("username", "alice")
	login.Set("password", "pw")
	consent := e.post("/oauth2/login", login, nil)
	if consent.status != 200 {
		t.Fatalf("login: %d %s", consent.status, consent.body)
	}
	wantErrorPage(t, e.post("/oauth2/login", login, nil), 400)
	form := hidden(t, consent.body)
	form.Set("decision", "deny")
	wantRedirectError(t, e.post("/oauth2/login", form, nil), confCB, "access_denied", "st")
	form.Set("decision", "approve")
	wantErrorPage(t, e.post("/oauth2/login", form, nil), 400)
	if n := e.grantsCount(); n != 0 {
		t.Errorf("%d codes issued", n)
	}
	// A fresh consent, approved: then the old login form still issues
	// nothing (consent is remembered now, so it would go straight to a code).
	e.code("read")
	n := e.grantsCount()
	wantErrorPage(t, e.post("/oauth2/login", login, nil), 400)
	if e.grantsCount() != n {
		t.Errorf("the old login form issued a code")
	}
}
