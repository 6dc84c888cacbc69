package abuse

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/oauth2kit/oauth2kit/examples/internal/demo"
	"github.com/oauth2kit/oauth2kit/examples/internal/e2etest"
)

// testPageHeaders: anti-framing, no-referrer and no-store on every page of
// the flow, no-store on every token and introspection answer.
func testPageHeaders(t *testing.T, tg *target) {
	id := tg.s.ClientID
	b := newBrowser(tg)
	// Scope write: no other test has the demo user approve it, so the
	// consent page comes.
	page := b.loginPage(t, authQuery(id, redirectURI, "scope", "write"))
	checkPageHeaders(t, "login page", page)
	r := b.submit(t, withFields(hidden(t, page), "username", "page-headers-nobody", "password", "x"))
	checkPageHeaders(t, "failed login page", r)
	r = b.submit(t, withFields(hidden(t, r), "username", demo.DemoUser, "password", demo.DemoPassword))
	if r.status != 200 || !strings.Contains(r.body, `value="approve"`) {
		t.Fatalf("after sign-in: HTTP %d, want the consent page:\n%s", r.status, r.body)
	}
	checkPageHeaders(t, "consent page", r)
	r = b.submit(t, withFields(hidden(t, r), "decision", "approve"))
	if r.status != 303 {
		t.Fatalf("approve: HTTP %d, want 303:\n%s", r.status, r.body)
	}
	checkNoStore(t, "redirect with the code", r)
	if v := r.header.Get("Referrer-Policy"); v != "no-referrer" {
		t.Errorf("redirect with the code: Referrer-Policy %q, want no-referrer", v)
	}
	loc, err := url.Parse(r.header.Get("Location"))
	if err != nil || loc.Query().Get("code") == "" {
		t.Fatalf("approve: Location %q has no code", r.header.Get("Location"))
	}

	// Error pages of the authorization endpoint.
	c := client(tg.ip())
	for what, u := range map[string]string{
		"unknown client":         "/oauth2/authorize?" + authQuery("no-such-client", redirectURI).Encode(),
		"unregistered redirect":  "/oauth2/authorize?" + authQuery(id, "http://evil.example/cb").Encode(),
		"no client_id":           "/oauth2/authorize?response_type=code",
		"login GET":              "/oauth2/login",
		"expired or forged form": "",
	} {
		var r *resp
		if u == "" {
			r = post(t, c, tg.s.Base, "/oauth2/login", "oauth2kit_request=forged&csrf_token=x&username=a&password=b")
		} else {
			r = get(t, c, tg.s.Base+u)
		}
		if r.status < 400 || r.status > 499 {
			t.Errorf("%s: HTTP %d, want an error page", what, r.status)
		}
		checkPageHeaders(t, what+" error page", r)
	}

	// Token, introspection, revocation answers.
	auth := basic(id, tg.s.ClientSecret)
	form := url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")},
		"redirect_uri": {redirectURI}, "code_verifier": {codeVerifier}}
	r = post(t, c, tg.s.Base, "/oauth2/token", form.Encode(), "Authorization", auth)
	if r.status != 200 {
		t.Fatalf("redeeming the code: HTTP %d:\n%s", r.status, r.body)
	}
	checkTokenHeaders(t, "token answer (authorization_code)", r)
	var tok struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
	}
	if err := json.Unmarshal([]byte(r.body), &tok); err != nil || tok.AccessToken == "" || tok.RefreshToken == "" {
		t.Fatalf("token answer: %v\n%s", err, r.body)
	}
	r = post(t, c, tg.s.Base, "/oauth2/token", "grant_type=refresh_token&refresh_token="+url.QueryEscape(tok.RefreshToken), "Authorization", auth)
	checkTokenHeaders(t, "token answer (refresh_token)", r)
	r = post(t, c, tg.s.Base, "/oauth2/token", ccForm(), "Authorization", auth)
	checkTokenHeaders(t, "token answer (client_credentials)", r)
	r = post(t, c, tg.s.Base, "/oauth2/token", "grant_type=authorization_code&code=nope", "Authorization", auth)
	checkTokenHeaders(t, "token error answer", r)
	r = post(t, c, tg.s.Base, "/oauth2/introspect", "token="+url.QueryEscape(tok.AccessToken), "Authorization", auth)
	if r.status != 200 || !strings.Contains(r.body, `"active":true`) {
		t.Errorf("introspection: HTTP %d, want an active token:\n%s", r.status, r.body)
	}
	checkTokenHeaders(t, "introspection answer (active)", r)
	r = post(t, c, tg.s.Base, "/oauth2/introspect", "token=unknown", "Authorization", auth)
	checkTokenHeaders(t, "introspection answer (inactive)", r)
	r = get(t, c, tg.s.Base+"/api/me", "Authorization", "Bearer "+tok.AccessToken)
	if r.status != 200 {
		t.Errorf("/api/me: HTTP %d", r.status)
	}
	checkNoStore(t, "/api/me answer", r)
}

func checkTokenHeaders(t *testing.T, what string, r *resp) {
	t.Helper()
	checkNoStore(t, what, r)
	if p := r.header.Get("Pragma"); p != "no-cache" {
		t.Errorf("%s (HTTP %d): Pragma %q, want no-cache", what, r.status, p)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s (HTTP %d): Content-Type %q, want application/json", what, r.status, ct)
	}
}

// testCSRF: the login and consent forms are refused (403) without their
// CSRF token, with another session's, or from another browser.
func testCSRF(t *testing.T, tg *target) {
	q := authQuery(tg.s.ClientID, redirectURI)
	victim, attacker := newBrowser(tg), newBrowser(tg)
	vPage, aPage := victim.loginPage(t, q), attacker.loginPage(t, q)
	vHidden, aHidden := hidden(t, vPage), hidden(t, aPage)
	creds := []string{"username", demo.DemoUser, "password", demo.DemoPassword}

	expect403 := func(what string, r *resp) {
		t.Helper()
		if r.status != 403 {
			t.Errorf("%s: HTTP %d, want 403:\n%.500s", what, r.status, r.body)
			return
		}
		checkPageHeaders(t, what, r)
	}
	noCSRF := withFields(vHidden, creds...)
	noCSRF.Del("csrf_token")
	expect403("login form without csrf_token", victim.submit(t, noCSRF))
	expect403("login form with an empty csrf_token", victim.submit(t, withFields(vHidden, append(creds, "csrf_token", "")...)))
	expect403("login form with a forged csrf_token", victim.submit(t, withFields(vHidden, append(creds, "csrf_token", strings.Repeat("A", 43))...)))
	expect403("login form with another session's csrf_token", victim.submit(t, withFields(vHidden, append(creds, "csrf_token", aHidden.Get("csrf_token"))...)))
	// The attacker's whole form, posted from the victim's browser (login
	// CSRF), and the victim's form posted without its cookie.
	expect403("another session's form", victim.submit(t, withFields(aHidden, creds...)))
	noCookie := &browser{c: client(tg.ip()), base: tg.s.Base}
	expect403("the form without the session cookie", noCookie.submit(t, withFields(vHidden, creds...)))

	// The consent form alike.
	consent := victim.submit(t, withFields(vHidden, creds...))
	if consent.status != 200 || !strings.Contains(consent.body, `value="approve"`) {
		t.Fatalf("sign-in with the form's own token: HTTP %d, want the consent page:\n%s", consent.status, consent.body)
	}
	cHidden := hidden(t, consent)
	noCSRF = withFields(cHidden, "decision", "approve")
	noCSRF.Del("csrf_token")
	expect403("consent without csrf_token", victim.submit(t, noCSRF))
	expect403("consent with the login form's csrf_token", victim.submit(t, withFields(cHidden, "decision", "approve", "csrf_token", vHidden.Get("csrf_token"))))
	expect403("consent posted from another browser", attacker.submit(t, withFields(cHidden, "decision", "approve")))
	noCookie = &browser{c: client(tg.ip()), base: tg.s.Base}
	expect403("consent without the session cookie", noCookie.submit(t, withFields(cHidden, "decision", "approve")))
	// With everything in place it works (so the 403s were the CSRF checks).
	r := victim.submit(t, withFields(cHidden, "decision", "approve"))
	if r.status != 303 || !strings.Contains(r.header.Get("Location"), "code=") {
		t.Errorf("consent with its own token: HTTP %d Location %q, want 303 with a code", r.status, r.header.Get("Location"))
	}
}

// testCookies: the session cookie is HttpOnly and SameSite=Lax; with an
// https issuer it is Secure and named with the __Host- prefix, and the
// unprefixed name is not honoured.
func testCookies(t *testing.T, tg *target) {
	check := func(t *testing.T, tg *target, name string, secure bool) {
		b := newBrowser(tg)
		page := b.loginPage(t, authQuery(tg.s.ClientID, redirectURI))
		lines := page.header.Values("Set-Cookie")
		if len(lines) != 1 {
			t.Fatalf("authorize: %d Set-Cookie headers, want 1: %q", len(lines), lines)
		}
		ck, err := http.ParseSetCookie(lines[0])
		if err != nil {
			t.Fatal(err)
		}
		if ck.Name != name || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Secure != secure || ck.Path != "/" || ck.Domain != "" {
			t.Errorf("Set-Cookie %q: want name %s, HttpOnly, SameSite=Lax, Path=/, no Domain, Secure=%t", lines[0], name, secure)
		}
		if ck.MaxAge > 0 || !ck.Expires.IsZero() {
			t.Errorf("Set-Cookie %q: want a session cookie (no Max-Age or Expires)", lines[0])
		}
		// The cookie under the other name is not a session: the form is
		// refused (no session fixation through a planted plain cookie).
		other := &browser{c: b.c, base: b.base, cookie: &http.Cookie{Name: "oauth2kit_session", Value: ck.Value}}
		if secure {
			r := other.submit(t, withFields(hidden(t, page), "username", "cookie-nobody", "password", "x"))
			if r.status != 403 {
				t.Errorf("https issuer, session under the plain name: HTTP %d, want 403", r.status)
			}
		}
		r := b.submit(t, withFields(hidden(t, page), "username", "cookie-nobody", "password", "x"))
		if r.status != 200 || !strings.Contains(r.body, loginFailMsg) {
			t.Errorf("form with the %s cookie: HTTP %d, want the login page again", name, r.status)
		}
	}
	t.Run("HTTPIssuer", func(t *testing.T) { check(t, tg, "oauth2kit_session", false) })
	t.Run("HTTPSIssuer", func(t *testing.T) {
		// The examples serve plain HTTP; behind a TLS-terminating proxy
		// the issuer is https, and the cookie must be Secure.
		tls := startTarget(t, tg.example, tg.bin, "-issuer", "https://127.0.0.1:8443")
		if tls.s.Issuer != "https://127.0.0.1:8443" {
			t.Fatalf("issuer %q, want https://127.0.0.1:8443", tls.s.Issuer)
		}
		check(t, tls, "__Host-oauth2kit_session", true)
	})
}

const xss = `"><script>alert('x')</script><img src=x onerror=alert(1)>&amp;`

// testEscaping: the client name, state, scope, user name and error
// descriptions never reach a page unescaped, and are percent-encoded in
// redirects.
func testEscaping(t *testing.T, tg *target) {
	// A client whose name is markup.
	out, errOut, code := e2etest.Run(t, tg.bin, "client", "add", "-db", tg.db, "-name", xss,
		"-redirect-uri", redirectURI, "-scope", "read write")
	if code != 0 {
		t.Fatalf("client add: exit %d\n%s%s", code, out, errOut)
	}
	var reg struct {
		ID     string `json:"client_id"`
		Secret string `json:"client_secret"`
	}
	if err := json.Unmarshal([]byte(out), &reg); err != nil || reg.ID == "" {
		t.Fatalf("client add printed %q: %v", out, err)
	}
	raw := func(what string, r *resp) {
		t.Helper()
		for _, bad := range []string{"<script", "<img"} {
			if strings.Contains(strings.ToLower(r.body), bad) {
				t.Errorf("%s (HTTP %d): %q appears unescaped:\n%s", what, r.status, bad, r.body)
			}
		}
	}
	escapedName := "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"

	b := newBrowser(tg)
	q := authQuery(reg.ID, redirectURI, "state", xss)
	page := b.loginPage(t, q)
	raw("login page of a client named with markup", page)
	if !strings.Contains(page.body, escapedName) {
		t.Errorf("login page: the client name is not shown escaped (%s):\n%s", escapedName, page.body)
	}
	r := b.submit(t, withFields(hidden(t, page), "username", xss, "password", xss))
	raw("failed login with markup as user name", r)
	r = b.submit(t, withFields(hidden(t, r), "username", demo.DemoUser, "password", demo.DemoPassword))
	if r.status != 200 {
		t.Fatalf("sign-in: HTTP %d, want the consent page:\n%s", r.status, r.body)
	}
	raw("consent page", r)
	if !strings.Contains(r.body, escapedName) {
		t.Errorf("consent page: the client name is not shown escaped:\n%s", r.body)
	}
	r = b.submit(t, withFields(hidden(t, r), "decision", "approve"))
	checkRedirect(t, "approval", r, map[string]string{"state": xss})
	if !strings.Contains(r.header.Get("Location"), "code=") {
		t.Errorf("approval: Location %q has no code", r.header.Get("Location"))
	}

	// Error redirects carry state and descriptions percent-encoded.
	c := client(tg.ip())
	r = get(t, c, tg.s.Base+"/oauth2/authorize?"+authQuery(reg.ID, redirectURI, "state", xss, "scope", "read <script>").Encode())
	checkRedirect(t, "malformed scope", r, map[string]string{"state": xss})
	r = get(t, c, tg.s.Base+"/oauth2/authorize?"+authQuery(reg.ID, redirectURI, "state", xss, "response_type", xss).Encode())
	checkRedirect(t, "response_type of markup", r, map[string]string{"state": xss})

	// Error pages with markup in every parameter.
	for _, p := range []string{"client_id", "redirect_uri"} {
		r := get(t, c, tg.s.Base+"/oauth2/authorize?"+authQuery(reg.ID, redirectURI, p, xss, "state", xss).Encode())
		if r.status < 400 || r.status > 499 {
			t.Errorf("%s of markup: HTTP %d, want an error page", p, r.status)
		}
		raw(p+" of markup: error page", r)
	}
	// Token endpoint errors: JSON, descriptions in the allowed charset.
	r = post(t, c, tg.s.Base, "/oauth2/token", "grant_type="+url.QueryEscape(xss), "Authorization", basic(reg.ID, reg.Secret))
	var e struct {
		Error string `json:"error"`
		Desc  string `json:"error_description"`
	}
	if err := json.Unmarshal([]byte(r.body), &e); err != nil || e.Error == "" {
		t.Fatalf("token request with markup as grant type: HTTP %d %v\n%s", r.status, err, r.body)
	}
	for _, ch := range e.Error + e.Desc {
		if ch < 0x20 || ch > 0x7e || ch == '"' || ch == '\\' {
			t.Errorf("token error %q %q: character %q outside RFC 6749 §5.2's set", e.Error, e.Desc, ch)
		}
	}
	if strings.Contains(e.Desc, "<script") {
		t.Errorf("token error description reflects the input: %q", e.Desc)
	}
}

// checkRedirect checks a 303 to redirectURI whose Location is strictly
// percent-encoded and whose query holds want.
func checkRedirect(t *testing.T, what string, r *resp, want map[string]string) {
	t.Helper()
	if r.status != 303 {
		t.Fatalf("%s: HTTP %d, want 303:\n%.500s", what, r.status, r.body)
	}
	raw := r.header.Get("Location")
	if i := strings.IndexAny(raw, "<>\"' {}|\\^`"); i >= 0 {
		t.Errorf("%s: Location %q has %q unencoded", what, raw, raw[i])
	}
	loc, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("%s: Location %q: %v", what, raw, err)
	}
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != redirectURI {
		t.Errorf("%s: redirected to %s, want %s", what, got, redirectURI)
	}
	for k, v := range want {
		if got := loc.Query().Get(k); got != v {
			t.Errorf("%s: %s = %q, want %q", what, k, got, v)
		}
	}
}
