package abuse

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
)

// Defaults of core.Config the examples keep.
const (
	maxBodyBytes   = 64 << 10
	maxParams      = 64
	maxValueLength = 4096
	maxHandleLen   = 16384 // the login form's fields may be this long (the sealed request)
)

// expectStatus fails unless r has one of the statuses.
func expectStatus(t *testing.T, what string, r *resp, want ...int) {
	t.Helper()
	for _, w := range want {
		if r.status == w {
			return
		}
	}
	t.Errorf("%s: HTTP %d, want %v:\n%.600s", what, r.status, want, r.body)
}

// expectErrorPage checks an HTML error page of the authorization
// endpoint: the status, no redirect, the page headers.
func expectErrorPage(t *testing.T, what string, r *resp, status ...int) {
	t.Helper()
	expectStatus(t, what, r, status...)
	if loc := r.header.Get("Location"); loc != "" {
		t.Errorf("%s: redirects to %s, want an error page", what, loc)
	}
	if r.status == 400 {
		checkPageHeaders(t, what, r)
	}
}

func expectJSONError(t *testing.T, what string, r *resp, status int, code string) {
	t.Helper()
	if r.status != status {
		t.Errorf("%s: HTTP %d, want %d %s:\n%.600s", what, r.status, status, code, r.body)
		return
	}
	if e := oauthError(t, r); e != code {
		t.Errorf("%s: error %q, want %q", what, e, code)
	}
	checkNoStore(t, what, r)
}

// manyParams is n parameters p0=x&p1=x&... .
func manyParams(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte('&')
		}
		fmt.Fprintf(&b, "p%d=x", i)
	}
	return b.String()
}

func testBodyLimits(t *testing.T, tg *target) {
	base, auth := tg.s.Base, basic(tg.s.ClientID, tg.s.ClientSecret)
	c := client(tg.ip())
	big := ccForm() + "&pad=" + strings.Repeat("a", maxBodyBytes)
	// A body of exactly 64 KiB is read (its one value is too long, so the
	// answer is a 400 about that, not a 413).
	under := ccForm() + "&pad=" + strings.Repeat("a", maxBodyBytes-len(ccForm())-len("&pad="))
	r := post(t, c, base, "/oauth2/token", under, "Authorization", auth)
	expectJSONError(t, "token request of exactly 64 KiB", r, 400, "invalid_request")

	ip := tg.ip()
	for _, ep := range []string{"/oauth2/token", "/oauth2/revoke", "/oauth2/introspect"} {
		for _, chunked := range []bool{false, true} {
			head := "POST " + ep + " HTTP/1.1\r\nHost: " + tg.s.Addr + "\r\nAuthorization: " + auth +
				"\r\nContent-Type: application/x-www-form-urlencoded\r\nConnection: close\r\n"
			body := fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(big), big)
			if chunked {
				body = fmt.Sprintf("Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", len(big), big)
			}
			code, err := rawExchange(ip, tg.s.Addr, head+body)
			if err != nil || code != 413 {
				t.Errorf("%s with a body over 64 KiB (chunked: %t): HTTP %d %v, want 413", ep, chunked, code, err)
			}
		}
	}
	// Form endpoints of the browser flow: a clear 4xx.
	b := newBrowser(tg)
	page := b.loginPage(t, authQuery(tg.s.ClientID, redirectURI))
	form := withFields(hidden(t, page), "username", "demo", "password", strings.Repeat("p", maxBodyBytes)).Encode()
	for what, req := range map[string]string{
		"login form over 64 KiB": "POST /oauth2/login HTTP/1.1\r\nHost: " + tg.s.Addr + "\r\nCookie: " + b.cookie.Name + "=" + b.cookie.Value +
			"\r\nContent-Type: application/x-www-form-urlencoded\r\nConnection: close\r\n" +
			fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(form), form),
		"authorization request POST over 64 KiB": "POST /oauth2/authorize HTTP/1.1\r\nHost: " + tg.s.Addr +
			"\r\nContent-Type: application/x-www-form-urlencoded\r\nConnection: close\r\n" +
			fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(big), big),
	} {
		code, err := rawExchange(ip, tg.s.Addr, req)
		if err != nil || (code != 400 && code != 413) {
			t.Errorf("%s: HTTP %d %v, want 400 or 413", what, code, err)
		}
	}
}

func testParamLimits(t *testing.T, tg *target) {
	base, auth := tg.s.Base, basic(tg.s.ClientID, tg.s.ClientSecret)
	c := client(tg.ip())
	// 64 parameters are fine, 65 are not.
	r := post(t, c, base, "/oauth2/token", ccForm()+"&"+manyParams(maxParams-2), "Authorization", auth)
	if r.status != 200 {
		t.Errorf("token request with 64 parameters: HTTP %d, want 200:\n%s", r.status, r.body)
	}
	tooMany := manyParams(maxParams + 1)
	r = post(t, c, base, "/oauth2/token", ccForm()+"&"+tooMany, "Authorization", auth)
	expectJSONError(t, "token request with 67 parameters", r, 400, "invalid_request")
	for _, ep := range []string{"/oauth2/revoke", "/oauth2/introspect"} {
		r := post(t, c, base, ep, "token=abc&"+tooMany, "Authorization", auth)
		expectJSONError(t, ep+" with 66 parameters", r, 400, "invalid_request")
	}
	q := authQuery(tg.s.ClientID, redirectURI).Encode() + "&" + tooMany
	r = get(t, c, base+"/oauth2/authorize?"+q)
	expectErrorPage(t, "authorization request with 72 parameters", r, 400)
	r = post(t, c, base, "/oauth2/authorize", q)
	expectErrorPage(t, "authorization request POST with 72 parameters", r, 400)

	b := newBrowser(tg)
	page := b.loginPage(t, authQuery(tg.s.ClientID, redirectURI))
	form := withFields(hidden(t, page), "username", "demo", "password", "wrong").Encode() + "&" + tooMany
	r = b.send(t, newReq(t, "POST", base+"/oauth2/login", form))
	expectErrorPage(t, "login form with 69 fields", r, 400)
}

func testFieldLengths(t *testing.T, tg *target) {
	base, id, auth := tg.s.Base, tg.s.ClientID, basic(tg.s.ClientID, tg.s.ClientSecret)
	c := client(tg.ip())
	long := strings.Repeat("a", maxValueLength+1)

	// Token endpoint: a value of 4096 bytes is accepted (an unknown
	// parameter is ignored), 4097 is not, whether sent plain or
	// percent-encoded.
	r := post(t, c, base, "/oauth2/token", ccForm()+"&pad="+strings.Repeat("a", maxValueLength), "Authorization", auth)
	if r.status != 200 {
		t.Errorf("token request with a 4096-byte value: HTTP %d, want 200:\n%s", r.status, r.body)
	}
	for _, f := range []string{"pad=" + long, "scope=" + long, "pad=" + strings.Repeat("%41", maxValueLength+1)} {
		r := post(t, c, base, "/oauth2/token", "grant_type=client_credentials&"+f, "Authorization", auth)
		expectJSONError(t, "token request with a 4097-byte value", r, 400, "invalid_request")
	}
	r = post(t, c, base, "/oauth2/token", "grant_type=authorization_code&redirect_uri="+url.QueryEscape(redirectURI)+"&code="+long, "Authorization", auth)
	expectJSONError(t, "token request with a 4097-byte code", r, 400, "invalid_request")
	r = post(t, c, base, "/oauth2/token", "grant_type=refresh_token&refresh_token="+long, "Authorization", auth)
	expectJSONError(t, "token request with a 4097-byte refresh token", r, 400, "invalid_request")
	// Over-long credentials are a failed authentication, not a crash.
	// (A separate address: these count as failures.)
	cc := client(tg.ip())
	r = post(t, cc, base, "/oauth2/token", ccForm(), "Authorization", basic(strings.Repeat("c", 200), "x"))
	expectJSONError(t, "client id of 200 bytes", r, 401, "invalid_client")
	r = post(t, cc, base, "/oauth2/token", ccForm(), "Authorization", basic(id, strings.Repeat("s", 1000)))
	expectJSONError(t, "client secret of 1000 bytes", r, 401, "invalid_client")

	// Revocation and introspection.
	for _, ep := range []string{"/oauth2/revoke", "/oauth2/introspect"} {
		r := post(t, c, base, ep, "token="+long, "Authorization", auth)
		expectJSONError(t, ep+" with a 4097-byte token", r, 400, "invalid_request")
		r = post(t, c, base, ep, "token=abc&token_type_hint="+long, "Authorization", auth)
		expectJSONError(t, ep+" with a 4097-byte hint", r, 400, "invalid_request")
	}

	// Authorization endpoint: any 4097-byte value is an error page (the
	// request cannot be trusted enough to redirect).
	for _, name := range []string{"client_id", "redirect_uri", "state", "scope", "code_challenge", "nonce"} {
		q := authQuery(id, redirectURI).Encode() + "&" + name + "=" + long
		if name != "nonce" {
			q = authQuery(id, redirectURI, name, long).Encode()
		}
		// fasthttp (fiber) reads request line and headers into a 4 KiB
		// buffer: a longer URL is refused (431) before the kit sees it,
		// and the connection closed, which may reset the client's write.
		r, err := tryDo(c, newReq(t, "GET", base+"/oauth2/authorize?"+q, ""))
		if err != nil && tg.example == "fiber" {
			t.Logf("authorization request with a 4097-byte %s: connection closed (%v)", name, err)
			continue
		} else if err != nil {
			t.Fatal(err)
		}
		expectErrorPage(t, "authorization request with a 4097-byte "+name, r, 400, 431)
	}
	// A state within the value limit but over the state limit (2048) is
	// an error redirect without the state.
	r = get(t, c, base+"/oauth2/authorize?"+authQuery(id, redirectURI, "state", strings.Repeat("s", 3000)).Encode())
	if r.status != 303 {
		t.Errorf("state of 3000 bytes: HTTP %d, want 303 with invalid_request:\n%.600s", r.status, r.body)
	} else if loc, err := url.Parse(r.header.Get("Location")); err != nil || loc.Query().Get("error") != "invalid_request" || loc.Query().Has("state") {
		t.Errorf("state of 3000 bytes: Location %q, want error=invalid_request without state", r.header.Get("Location"))
	}
	// A bearer token of 5000 bytes at the API is an invalid token.
	r = get(t, c, base+"/api/me", "Authorization", "Bearer "+strings.Repeat("t", 5000))
	if tg.example == "fiber" && r.status == 431 {
		// fasthttp's 4 KiB header buffer refuses it first.
	} else if r.status != 401 || !strings.Contains(r.header.Get("WWW-Authenticate"), "invalid_token") {
		t.Errorf("/api/me with a 5000-byte token: HTTP %d %q, want 401 invalid_token", r.status, r.header.Get("WWW-Authenticate"))
	}

	// Login form: its fields may be as long as the sealed request (16
	// KiB); a longer user name or password is refused, a long one within
	// that is just a failed login.
	b := newBrowser(tg)
	page := b.loginPage(t, authQuery(id, redirectURI))
	for _, f := range []string{"username", "password"} {
		r := b.submit(t, withFields(hidden(t, page), "username", "someone", "password", "pw", f, strings.Repeat("x", maxHandleLen+1)))
		expectErrorPage(t, "login form with a 16385-byte "+f, r, 400)
		r = b.submit(t, withFields(hidden(t, page), "username", "someone", "password", "pw", f, strings.Repeat("x", 5000)))
		if r.status != 200 || !strings.Contains(r.body, loginFailMsg) {
			t.Errorf("login form with a 5000-byte %s: HTTP %d, want the login page with %q:\n%.600s", f, r.status, loginFailMsg, r.body)
		}
	}
}

// testHeaderLimits sends headers and URLs over the servers' header limits
// (net/http: MaxHeaderBytes 32 KiB; fasthttp: its 4 KiB read buffer). The
// server answers 4xx (431) or, having refused to read on, closes the
// connection; either way it serves others afterwards.
func testHeaderLimits(t *testing.T, tg *target) {
	ip := tg.ip()
	for what, req := range map[string]string{
		"a 64 KiB header":       "GET /api/me HTTP/1.1\r\nHost: " + tg.s.Addr + "\r\nX-Pad: " + strings.Repeat("h", 64<<10) + "\r\n\r\n",
		"a 64 KiB bearer token": "GET /api/me HTTP/1.1\r\nHost: " + tg.s.Addr + "\r\nAuthorization: Bearer " + strings.Repeat("t", 64<<10) + "\r\n\r\n",
		"2000 headers":          "GET /api/me HTTP/1.1\r\nHost: " + tg.s.Addr + "\r\n" + strings.Repeat("X-A: b\r\n", 2000) + "\r\n",
		"a 100 KiB authorization URL": "GET /oauth2/authorize?" + authQuery(tg.s.ClientID, redirectURI, "state", strings.Repeat("s", 100<<10)).Encode() +
			" HTTP/1.1\r\nHost: " + tg.s.Addr + "\r\n\r\n",
	} {
		code, err := rawExchange(ip, tg.s.Addr, req)
		switch {
		case err != nil && tg.example == "fiber":
			// fasthttp may close before the client has written it all,
			// and the reset can beat its 431.
			t.Logf("%s: no answer, the connection was closed (%v)", what, err)
		case err != nil:
			t.Errorf("%s: %v, want a 4xx answer", what, err)
		case code < 400 || code > 499:
			t.Errorf("%s: HTTP %d, want 4xx", what, code)
		}
	}
	// The server still answers.
	if r := get(t, client(tg.ip()), tg.s.Base+"/.well-known/oauth-authorization-server"); r.status != 200 {
		t.Errorf("metadata after the oversized requests: HTTP %d", r.status)
	}
}
