package core_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"testing"

	"github.com/oauth2kit/oauth2kit/core"
)

// Bad input never panics and never reaches the wire as a 500 or with
// internals: every refusal is the documented status, a JSON body with the
// exact error code, and an error_description of allowed characters only.

// robustDescOK: error_description = *( %x20-21 / %x23-5B / %x5D-7E ).
func robustDescOK(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// robustLeaks reports text that only an internal failure would put in a
// body: a panic, a stack trace, a Go error string of the standard library.
func robustLeaks(body []byte) bool {
	for _, s := range []string{"goroutine ", "panic", ".go:", "runtime error", "oauth2kit: ", "invalid URL escape", "illegal base64", "sql", "memstore"} {
		if bytes.Contains(bytes.ToLower(body), []byte(strings.ToLower(s))) {
			return true
		}
	}
	return false
}

// robustWantError checks a JSON error answer of the token, revocation or
// introspection endpoint.
func robustWantError(t testing.TB, what string, w *fakeResp, status int, code string) {
	t.Helper()
	if w.status != status {
		t.Errorf("%s: status %d, want %d (body %.200q)", what, w.status, status, w.body)
		return
	}
	if ct := w.hdr.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s: Content-Type %q", what, ct)
	}
	if cc := w.hdr.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("%s: Cache-Control %q", what, cc)
	}
	var m map[string]any
	if err := json.Unmarshal(w.body, &m); err != nil {
		t.Errorf("%s: body %.200q is not a JSON object: %v", what, w.body, err)
		return
	}
	if m["error"] != code {
		t.Errorf("%s: error %v, want %q (body %s)", what, m["error"], code, w.body)
	}
	for k, v := range m {
		s, ok := v.(string)
		switch {
		case k != "error" && k != "error_description":
			t.Errorf("%s: unexpected member %q in %s", what, k, w.body)
		case !ok:
			t.Errorf("%s: %s is not a string: %s", what, k, w.body)
		case !robustDescOK(s):
			t.Errorf("%s: %s %q has characters outside %%x20-21 / %%x23-5B / %%x5D-7E", what, k, s)
		}
	}
	if robustLeaks(w.body) {
		t.Errorf("%s: body leaks internals: %s", what, w.body)
	}
	if status == 401 && !strings.HasPrefix(w.hdr.Get("WWW-Authenticate"), "Basic ") {
		t.Errorf("%s: 401 without a Basic challenge: %q", what, w.hdr.Get("WWW-Authenticate"))
	}
}

// robustWantPage checks an HTML error page of the authorization or login
// endpoint: a 4xx page that never redirects.
func robustWantPage(t *testing.T, what string, w *fakeResp, status int) {
	t.Helper()
	if w.status != status {
		t.Errorf("%s: status %d, want %d (Location %q, body %.200q)", what, w.status, status, w.hdr.Get("Location"), w.body)
		return
	}
	if loc := w.hdr.Get("Location"); loc != "" {
		t.Errorf("%s: error page redirects to %q", what, loc)
	}
	if ct := w.hdr.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("%s: Content-Type %q", what, ct)
	}
	if w.hdr.Get("X-Frame-Options") != "DENY" {
		t.Errorf("%s: page without X-Frame-Options", what)
	}
	if robustLeaks(w.body) {
		t.Errorf("%s: page leaks internals: %s", what, w.body)
	}
}

func formHdr(extra http.Header) http.Header {
	h := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	for k, v := range extra {
		h[k] = v
	}
	return h
}

var jsonEndpoints = []string{"/oauth2/token", "/oauth2/revoke", "/oauth2/introspect"}

// robustMalformedForms are bodies no endpoint may parse.
func robustMalformedForms() []struct{ name, body string } {
	many := strings.Repeat("x=1&", 1000)
	distinct := make([]string, 1000)
	for i := range distinct {
		distinct[i] = "p" + strings.Repeat("a", i%7) + string(rune('a'+i%26)) + string(rune('a'+i/26%26)) + "=1"
	}
	return []struct{ name, body string }{
		{"bad escape in value", "grant_type=client_credentials&token=%zz"},
		{"bad escape in key", "%zz=1&grant_type=client_credentials"},
		{"truncated escape", "grant_type=client_credentials&token=abc%4"},
		{"lone percent", "%"},
		{"percent at end of key", "token%=x"},
		{"huge value", "grant_type=client_credentials&token=" + strings.Repeat("a", 4097)},
		{"huge escaped value", "grant_type=client_credentials&token=" + strings.Repeat("%41", 4097)},
		{"huge key", strings.Repeat("k", 300) + "=1&grant_type=client_credentials"},
		{"1000 repeated params", many},
		{"1000 distinct params", strings.Join(distinct, "&")},
		{"repeated grant_type", "grant_type=client_credentials&grant_type=client_credentials&token=x"},
		{"repeated token", "grant_type=client_credentials&token=a&token=b"},
		{"empty then repeated", "grant_type=&grant_type=client_credentials&token=&token=x"},
		{"repeated via escaped name", "token=a&t%6Fken=b&grant_type=client_credentials"},
	}
}

func TestRobustMalformedForms(t *testing.T) {
	k := newRKit(t)
	for _, ep := range jsonEndpoints {
		for _, c := range robustMalformedForms() {
			w := k.post(ep, c.body, formHdr(k.basic()))
			robustWantError(t, ep+" "+c.name, w, 400, core.ErrInvalidRequest)
		}
	}
}

// TestRobustOddValues sends values that parse but are nonsense: no '=',
// NUL bytes, non-UTF-8, control characters.
func TestRobustOddValues(t *testing.T) {
	k := newRKit(t)
	type want struct {
		status int
		code   string // "" with 200: the endpoint's success for an unusable token
	}
	cases := []struct {
		name, body         string
		token, rev, intros want
	}{
		{"no equals sign", "grant_type&token", want{400, core.ErrInvalidRequest}, want{400, core.ErrInvalidRequest}, want{400, core.ErrInvalidRequest}},
		{"only separators", "&&&", want{400, core.ErrInvalidRequest}, want{400, core.ErrInvalidRequest}, want{400, core.ErrInvalidRequest}},
		{"empty body", "", want{400, core.ErrInvalidRequest}, want{400, core.ErrInvalidRequest}, want{400, core.ErrInvalidRequest}},
		{"escaped NUL", "grant_type=client_credentials%00&token=%00", want{400, core.ErrUnsupportedGrantType}, want{200, ""}, want{200, ""}},
		{"raw NUL", "grant_type=client_credentials\x00&token=\x00at2.x.y", want{400, core.ErrUnsupportedGrantType}, want{200, ""}, want{200, ""}},
		{"escaped non-UTF-8", "grant_type=%ff%fe&token=at2.%ff.%fe", want{400, core.ErrUnsupportedGrantType}, want{200, ""}, want{200, ""}},
		{"raw non-UTF-8", "grant_type=\xff\xfe&token=rt2.\xc3\x28.x", want{400, core.ErrUnsupportedGrantType}, want{200, ""}, want{200, ""}},
		{"control characters", "grant_type=%0d%0aX-Injected:%201&token=%1b[31m", want{400, core.ErrUnsupportedGrantType}, want{200, ""}, want{200, ""}},
		{"plus and spaces", "grant_type=client+credentials&token=+++", want{400, core.ErrUnsupportedGrantType}, want{200, ""}, want{200, ""}},
	}
	for _, c := range cases {
		for i, ep := range jsonEndpoints {
			wt := []want{c.token, c.rev, c.intros}[i]
			w := k.post(ep, c.body, formHdr(k.basic()))
			what := ep + " " + c.name
			switch {
			case wt.status != 200:
				robustWantError(t, what, w, wt.status, wt.code)
			case ep == "/oauth2/revoke":
				if w.status != 200 || len(w.body) != 0 {
					t.Errorf("%s: %d %q, want 200 with an empty body", what, w.status, w.body)
				}
			default:
				if w.status != 200 || string(w.body) != `{"active":false}` {
					t.Errorf("%s: %d %s, want exactly {\"active\":false}", what, w.status, w.body)
				}
			}
		}
	}

	// Token endpoint values that reach the grant handlers.
	tokenCases := []struct {
		name, body string
		status     int
		code       string
	}{
		{"scope with NUL", "grant_type=client_credentials&scope=read%00", 400, core.ErrInvalidScope},
		{"scope non-UTF-8", "grant_type=client_credentials&scope=%c3%28", 400, core.ErrInvalidScope},
		{"scope double space", "grant_type=client_credentials&scope=read%20%20write", 400, core.ErrInvalidScope},
		{"scope quote", "grant_type=client_credentials&scope=%22read%22", 400, core.ErrInvalidScope},
		{"scope huge token", "grant_type=client_credentials&scope=" + strings.Repeat("r", 300), 400, core.ErrInvalidScope},
		{"code non-UTF-8", "grant_type=authorization_code&code=%ff%fe&redirect_uri=" + url.QueryEscape(confCB) + "&code_verifier=" + verifier, 400, core.ErrInvalidGrant},
		{"code NUL", "grant_type=authorization_code&code=ac2.x.%00&code_verifier=" + verifier, 400, core.ErrInvalidGrant},
		{"code huge", "grant_type=authorization_code&code=" + strings.Repeat("a", 4096), 400, core.ErrInvalidGrant},
		{"code missing", "grant_type=authorization_code&code_verifier=" + verifier, 400, core.ErrInvalidRequest},
		{"refresh token garbage", "grant_type=refresh_token&refresh_token=rt2..", 400, core.ErrInvalidGrant},
		{"refresh token NUL", "grant_type=refresh_token&refresh_token=%00", 400, core.ErrInvalidGrant},
		{"refresh token missing", "grant_type=refresh_token", 400, core.ErrInvalidRequest},
		{"password grant", "grant_type=password&username=a&password=b", 400, core.ErrUnsupportedGrantType},
		{"implicit grant", "grant_type=implicit", 400, core.ErrUnsupportedGrantType},
		{"draft-10 assertion", "grant_type=assertion&assertion_type=x&assertion=y", 400, core.ErrUnsupportedGrantType},
		{"draft-10 none", "grant_type=none", 400, core.ErrUnsupportedGrantType},
	}
	for _, c := range tokenCases {
		w := k.post("/oauth2/token", c.body, formHdr(k.basic()))
		robustWantError(t, "token "+c.name, w, c.status, c.code)
	}
	// A repeated unknown parameter is ignored (R12), a defined one is not.
	if w := k.post("/oauth2/token", "grant_type=client_credentials&foo=1&foo=2&resource=a&resource=b", formHdr(k.basic())); w.status != 200 {
		t.Errorf("repeated unknown parameters: %d %s, want them ignored", w.status, w.body)
	}
	// The revocation hint is checked.
	w := k.post("/oauth2/revoke", "token=x&token_type_hint=%00", formHdr(k.basic()))
	robustWantError(t, "revoke with a NUL hint", w, 400, "unsupported_token_type")
}

func TestRobustClientAuthentication(t *testing.T) {
	k := newRKit(t)
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	cc := "grant_type=client_credentials"
	cases := []struct {
		name   string
		body   string
		auth   []string
		status int
		code   string
	}{
		{"no authentication", cc, nil, 401, core.ErrInvalidClient},
		{"unknown client basic", cc, []string{core.EncodeBasic("nobody", "secret")}, 401, core.ErrInvalidClient},
		{"unknown client body", cc + "&client_id=nobody&client_secret=x", nil, 400, core.ErrInvalidClient},
		{"unknown client NUL", cc, []string{core.EncodeBasic("conf\x00", k.secret)}, 401, core.ErrInvalidClient},
		{"unknown client non-UTF-8", cc + "&client_id=%ff&client_secret=x", nil, 400, core.ErrInvalidClient},
		{"wrong secret", cc, []string{core.EncodeBasic("conf", k.secret+"x")}, 401, core.ErrInvalidClient},
		{"secret prefix", cc, []string{core.EncodeBasic("conf", k.secret[:10])}, 401, core.ErrInvalidClient},
		{"empty secret", cc, []string{core.EncodeBasic("conf", "")}, 401, core.ErrInvalidClient},
		{"empty secret body", cc + "&client_id=conf", nil, 400, core.ErrInvalidClient},
		{"public client for client_credentials", cc + "&client_id=pub", nil, 400, core.ErrInvalidClient},
		{"public client with a secret", "grant_type=refresh_token&refresh_token=x&client_id=pub&client_secret=x", nil, 400, core.ErrInvalidClient},
		{"huge client id", cc, []string{core.EncodeBasic(strings.Repeat("c", 200), "x")}, 401, core.ErrInvalidClient},
		{"huge basic", cc, []string{"Basic " + strings.Repeat("QUFB", 1000)}, 401, core.ErrInvalidClient},
		{"basic not base64", cc, []string{"Basic %%%"}, 401, core.ErrInvalidClient},
		{"basic without colon", cc, []string{"Basic " + b64("conf")}, 401, core.ErrInvalidClient},
		{"basic bad escape", cc, []string{"Basic " + b64("conf:%zz")}, 401, core.ErrInvalidClient},
		{"basic empty id", cc, []string{"Basic " + b64(":"+k.secret)}, 401, core.ErrInvalidClient},
		{"basic scheme only", cc, []string{"Basic"}, 401, core.ErrInvalidClient},
		{"other scheme", cc, []string{"Bearer abc"}, 401, core.ErrInvalidClient},
		{"basic raw secret for a default client", cc + "&client_id=conf", []string{"Basic " + k.secret}, 401, core.ErrInvalidClient},
		{"two Authorization headers", cc, []string{core.EncodeBasic("conf", k.secret), core.EncodeBasic("conf", k.secret)}, 400, core.ErrInvalidRequest},
		{"basic and body secret", cc + "&client_secret=" + k.secret, []string{core.EncodeBasic("conf", k.secret)}, 400, core.ErrInvalidRequest},
		{"basic and other body client_id", cc + "&client_id=pub", []string{core.EncodeBasic("conf", k.secret)}, 400, core.ErrInvalidRequest},
	}
	for _, c := range cases {
		h := formHdr(nil)
		if c.auth != nil {
			h["Authorization"] = c.auth
		}
		robustWantError(t, c.name, k.post("/oauth2/token", c.body, h), c.status, c.code)
	}
	// A secret in the query is refused even with proper authentication.
	w := k.do(&fakeReq{method: "POST", path: "/oauth2/token", query: "client_secret=" + k.secret, body: cc, hdr: formHdr(k.basic())})
	robustWantError(t, "client_secret in the query", w, 400, core.ErrInvalidRequest)
	w = k.do(&fakeReq{method: "POST", path: "/oauth2/token", query: "%zz", body: cc, hdr: formHdr(k.basic())})
	robustWantError(t, "malformed query", w, 400, core.ErrInvalidRequest)
	// Sanity: the proper request works, so the refusals above are about
	// what they change.
	if w := k.post("/oauth2/token", cc, formHdr(k.basic())); w.status != 200 {
		t.Fatalf("client_credentials: %d %s", w.status, w.body)
	}
}

// TestRobustThrottle: failures are throttled with 429, still JSON.
func TestRobustThrottle(t *testing.T) {
	e := newEnv(t, false)
	var last *fakeResp
	for i := 0; i < 12; i++ {
		last = e.post("/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, basic("conf", "wrong"))
	}
	robustWantError(t, "12th failed authentication", last, 429, core.ErrInvalidClient)
	if last.hdr.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
}

func TestRobustOversizedBodies(t *testing.T) {
	k := newRKit(t)
	limit := k.srv.Config().MaxBodyBytes
	big := "grant_type=client_credentials&x=" + strings.Repeat("a", int(limit))
	for _, ep := range jsonEndpoints {
		robustWantError(t, ep+" oversized body", k.post(ep, big, formHdr(k.basic())), 413, core.ErrInvalidRequest)
		huge := "grant_type=client_credentials&x=" + strings.Repeat("a", 8<<20)
		robustWantError(t, ep+" 8 MiB body", k.post(ep, huge, formHdr(k.basic())), 413, core.ErrInvalidRequest)
	}
	// Exactly at the limit is not "too large" (it fails for its content).
	atLimit := "grant_type=client_credentials" + strings.Repeat("&", int(limit)-len("grant_type=client_credentials"))
	if w := k.post("/oauth2/token", atLimit, formHdr(k.basic())); w.status != 200 {
		t.Errorf("a body of exactly MaxBodyBytes: %d %s", w.status, w.body)
	}
	w := k.do(&fakeReq{method: "POST", path: "/oauth2/authorize", body: big, hdr: formHdr(nil)})
	robustWantPage(t, "authorize oversized POST", w, 400)
	w = k.post("/oauth2/login", big, nil)
	robustWantPage(t, "login oversized POST", w, 400)
}

func TestRobustContentTypes(t *testing.T) {
	k := newRKit(t)
	bad := [][]string{
		nil,
		{""},
		{"text/plain"},
		{"application/json"},
		{"multipart/form-data; boundary=x"},
		{"application/x-www-form-urlencoded; charset=iso-8859-1"},
		{"application/x-www-form-urlencoded; charset=utf-16"},
		{"application/x-www-form-urlencoded;;"},
		{"application/x-www-form-urlencoded; charset"},
		{"application/x-www-form-urlencodedx"},
		{"application/x-www-form-urlencoded\x00"},
		{"text/plain", "application/x-www-form-urlencoded"},
	}
	body := "grant_type=client_credentials&token=x"
	for _, ep := range jsonEndpoints {
		for _, ct := range bad {
			h := http.Header{"Authorization": k.basic()["Authorization"]}
			if ct != nil {
				h["Content-Type"] = ct
			}
			w := k.do(&fakeReq{method: "POST", path: ep, body: body, hdr: h})
			robustWantError(t, ep+" Content-Type "+strings.Join(ct, ","), w, 400, core.ErrInvalidRequest)
		}
	}
	for _, ct := range []string{"application/x-www-form-urlencoded; charset=UTF-8", "Application/X-WWW-Form-Urlencoded", "application/x-www-form-urlencoded ; charset=\"utf-8\""} {
		h := http.Header{"Authorization": k.basic()["Authorization"], "Content-Type": {ct}}
		if w := k.post("/oauth2/token", "grant_type=client_credentials", h); w.status != 200 {
			t.Errorf("Content-Type %q refused: %d %s", ct, w.status, w.body)
		}
	}
	for _, ct := range bad[:6] {
		// The authorization endpoint checks the media type only (its
		// parameters are ASCII); the login form also the charset.
		if len(ct) == 0 || !strings.Contains(ct[0], "charset") {
			w := k.do(&fakeReq{method: "POST", path: "/oauth2/authorize", body: codeQuery("conf", confCB, "", "s").Encode(), hdr: http.Header{"Content-Type": ct}})
			robustWantPage(t, "authorize POST Content-Type "+strings.Join(ct, ","), w, 400)
		}
		w := k.do(&fakeReq{method: "POST", path: "/oauth2/login", body: "a=b", hdr: http.Header{"Content-Type": ct}})
		robustWantPage(t, "login POST Content-Type "+strings.Join(ct, ","), w, 400)
	}
}

func TestRobustMethods(t *testing.T) {
	k := newRKit(t)
	for _, ep := range jsonEndpoints {
		for _, m := range []string{"GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "post", ""} {
			w := k.do(&fakeReq{method: m, path: ep, body: "grant_type=client_credentials", hdr: formHdr(k.basic())})
			robustWantError(t, m+" "+ep, w, 405, core.ErrInvalidRequest)
			if w.hdr.Get("Allow") != "POST" {
				t.Errorf("%s %s: Allow %q", m, ep, w.hdr.Get("Allow"))
			}
		}
	}
	for _, m := range []string{"PUT", "DELETE", "PATCH", "get"} {
		robustWantPage(t, m+" authorize", k.do(&fakeReq{method: m, path: "/oauth2/authorize", query: codeQuery("conf", confCB, "", "s").Encode()}), 405)
	}
	for _, m := range []string{"GET", "HEAD", "PUT"} {
		robustWantPage(t, m+" login", k.do(&fakeReq{method: m, path: "/oauth2/login"}), 405)
	}
	robustWantError(t, "POST metadata", k.do(&fakeReq{method: "POST", path: "/.well-known/oauth-authorization-server"}), 405, core.ErrInvalidRequest)
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

// robustVariants returns every single-byte substitution (by each byte of
// alphabet), deletion and insertion of s, plus its truncations.
func robustVariants(s string, alphabet string) []string {
	var out []string
	for i := 0; i < len(s); i++ {
		for j := 0; j < len(alphabet); j++ {
			if alphabet[j] != s[i] {
				out = append(out, s[:i]+alphabet[j:j+1]+s[i+1:])
			}
		}
		// Insertions include CR and LF, which Go's base64 decoders skip.
		out = append(out, s[:i]+s[i+1:], s[:i]+"A"+s[i:], s[:i]+"\n"+s[i:], s[:i]+"\r"+s[i:])
		if i > 0 {
			out = append(out, s[:i])
		}
	}
	return append(out, s+"A", s+".", s+"=", " "+s, s+" ")
}

var allBytes = func() string {
	var b [256]byte
	for i := range b {
		b[i] = byte(i)
	}
	return string(b[:])
}()

const b64Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/"

// TestRobustTamperedAccessToken flips every byte of an access token to
// every other value: only the token itself checks.
func TestRobustTamperedAccessToken(t *testing.T) {
	k := newRKit(t)
	for _, at := range k.accessTokens() {
		scope := fmt.Sprintf("len %d", len(at))
		if _, err := k.srv.CheckToken(rctx, at); err != nil {
			t.Fatalf("the untampered token fails: %v", err)
		}
		accepted := 0
		for _, v := range robustVariants(at, allBytes) {
			if _, err := k.srv.CheckToken(rctx, v); err == nil {
				if accepted++; accepted <= 5 {
					t.Errorf("%s: a tampered access token checks: %q (original %q)", scope, v, at)
				}
			}
		}
		if accepted > 0 {
			t.Errorf("%s: %d tampered variants accepted", scope, accepted)
		}
	}
}

// robustInvalidToken is the one body every unusable access token gets.
var robustInvalidToken = `{"error":"invalid_token","error_description":"the access token is invalid, expired or revoked"}`

func robustWantInvalidToken(t *testing.T, what string, k *rkit, tok string) {
	t.Helper()
	r := &fakeReq{method: "GET", path: "/api", hdr: http.Header{"Authorization": {"Bearer " + tok}}}
	info, rerr := k.srv.CheckRequest(r)
	if rerr == nil {
		t.Errorf("%s: accepted as an access token (%+v)", what, info)
		return
	}
	if rerr.Status != 401 || string(rerr.Body) != robustInvalidToken || !strings.Contains(rerr.WWWAuthenticate, `error="invalid_token"`) {
		t.Errorf("%s: %d %s %q, want 401 invalid_token", what, rerr.Status, rerr.Body, rerr.WWWAuthenticate)
	}
}

func TestRobustTamperedOpaqueTokens(t *testing.T) {
	k := newRKit(t)
	_, rt := k.tokens("read")
	code := k.code("read")
	refresh := func(tok string) *fakeResp {
		return k.post("/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok}}.Encode(), formHdr(k.basic()))
	}
	exchange := func(c string) *fakeResp {
		return k.post("/oauth2/token", rExchangeBody(c), formHdr(k.basic()))
	}
	for _, v := range robustVariants(rt, b64Alphabet+"\x00\xff ") {
		robustWantError(t, "tampered refresh token", refresh(v), 400, core.ErrInvalidGrant)
	}
	for _, v := range robustVariants(code, b64Alphabet+"\x00\xff ") {
		robustWantError(t, "tampered code", exchange(v), 400, core.ErrInvalidGrant)
	}
	// None of the failures touched the real ones.
	if w := refresh(rt); w.status != 200 {
		t.Errorf("the refresh token no longer works after tampered attempts: %d %s", w.status, w.body)
	}
	if w := exchange(code); w.status != 200 {
		t.Errorf("the code no longer works after tampered attempts: %d %s", w.status, w.body)
	}
}

// TestRobustTokenTypeConfusion presents each kind of token where another is
// expected: never accepted, never a side effect.
func TestRobustTokenTypeConfusion(t *testing.T) {
	k := newRKit(t)
	at, rt := k.tokens("read")
	code := k.code("read")
	handle := k.hiddenFields(k.loginPage("read").body).Get(core.FieldRequest)
	secret := k.secret

	for name, tok := range map[string]string{"refresh token": rt, "code": code, "pending request": handle, "client secret": secret} {
		robustWantInvalidToken(t, name+" as access token", k, tok)
		if _, err := k.srv.CheckToken(rctx, tok); err == nil {
			t.Errorf("%s passes CheckToken", name)
		}
	}
	for name, tok := range map[string]string{"access token": at, "code": code, "pending request": handle} {
		w := k.post("/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok}}.Encode(), formHdr(k.basic()))
		robustWantError(t, name+" as refresh token", w, 400, core.ErrInvalidGrant)
	}
	for name, tok := range map[string]string{"access token": at, "refresh token": rt, "pending request": handle} {
		robustWantError(t, name+" as code", k.post("/oauth2/token", rExchangeBody(tok), formHdr(k.basic())), 400, core.ErrInvalidGrant)
	}
	for name, tok := range map[string]string{"code": code, "pending request": handle} {
		w := k.post("/oauth2/introspect", url.Values{"token": {tok}}.Encode(), formHdr(k.basic()))
		if w.status != 200 || string(w.body) != `{"active":false}` {
			t.Errorf("introspecting a %s: %d %s", name, w.status, w.body)
		}
	}
	// Tokens minted under other keys do not check either.
	other := newRKit(t, func(c *core.Config) { c.CryptKey = []byte("another crypt key, 32 bytes long!") })
	oat, _ := other.tokens("read")
	robustWantInvalidToken(t, "access token of another key", k, oat)
	// Everything still works: no confusion had a side effect.
	if _, err := k.srv.CheckToken(rctx, at); err != nil {
		t.Errorf("access token: %v", err)
	}
	if w := k.post("/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}.Encode(), formHdr(k.basic())); w.status != 200 {
		t.Errorf("refresh token after confusion attempts: %d %s", w.status, w.body)
	}
	if w := k.post("/oauth2/token", rExchangeBody(code), formHdr(k.basic())); w.status != 200 {
		t.Errorf("code after confusion attempts: %d %s", w.status, w.body)
	}
}

func TestRobustResourceRequests(t *testing.T) {
	k := newRKit(t)
	at, _ := k.tokens("read")
	type want struct {
		status int
		code   string // "" for 401 with no error code
	}
	cases := []struct {
		name string
		r    *fakeReq
		want want
	}{
		{"scheme only", &fakeReq{method: "GET", hdr: http.Header{"Authorization": {"Bearer"}}}, want{401, core.ErrInvalidToken}},
		{"scheme and spaces", &fakeReq{method: "GET", hdr: http.Header{"Authorization": {"Bearer   "}}}, want{401, core.ErrInvalidToken}},
		{"two tokens", &fakeReq{method: "GET", hdr: http.Header{"Authorization": {"Bearer " + at + " " + at}}}, want{401, core.ErrInvalidToken}},
		// Not the Bearer syntax (1*SP), so another scheme: no error code.
		{"tab separator", &fakeReq{method: "GET", hdr: http.Header{"Authorization": {"Bearer\t" + at}}}, want{401, ""}},
		{"NUL in token", &fakeReq{method: "GET", hdr: http.Header{"Authorization": {"Bearer " + at + "\x00"}}}, want{401, core.ErrInvalidToken}},
		{"non-UTF-8 token", &fakeReq{method: "GET", hdr: http.Header{"Authorization": {"Bearer \xff\xfe"}}}, want{401, core.ErrInvalidToken}},
		{"huge token", &fakeReq{method: "GET", hdr: http.Header{"Authorization": {"Bearer " + strings.Repeat("A", 100000)}}}, want{401, core.ErrInvalidToken}},
		{"two headers", &fakeReq{method: "GET", hdr: http.Header{"Authorization": {"Bearer " + at, "Bearer " + at}}}, want{400, core.ErrInvalidRequest}},
		{"header and form", &fakeReq{method: "POST", body: "access_token=" + at, hdr: http.Header{"Authorization": {"Bearer " + at}, "Content-Type": {"application/x-www-form-urlencoded"}}}, want{400, core.ErrInvalidRequest}},
		{"malformed form", &fakeReq{method: "POST", body: "access_token=%zz", hdr: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}}, want{400, core.ErrInvalidRequest}},
		{"repeated form token", &fakeReq{method: "POST", body: "access_token=" + at + "&access_token=" + at, hdr: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}}, want{400, core.ErrInvalidRequest}},
		{"query token ignored", &fakeReq{method: "GET", query: "access_token=" + at}, want{401, ""}},
		{"basic scheme", &fakeReq{method: "GET", hdr: basic("conf", k.secret)}, want{401, ""}},
		{"nothing", &fakeReq{method: "GET"}, want{401, ""}},
	}
	for _, c := range cases {
		c.r.path = "/api"
		if c.r.hdr == nil {
			c.r.hdr = http.Header{}
		}
		_, rerr := k.srv.CheckRequest(c.r, "read")
		if rerr == nil {
			t.Errorf("%s: accepted", c.name)
			continue
		}
		if rerr.Status != c.want.status {
			t.Errorf("%s: status %d, want %d (%s)", c.name, rerr.Status, c.want.status, rerr.Body)
		}
		var m map[string]string
		if err := json.Unmarshal(rerr.Body, &m); err != nil {
			t.Errorf("%s: body %q: %v", c.name, rerr.Body, err)
			continue
		}
		if c.want.code != "" && m["error"] != c.want.code {
			t.Errorf("%s: error %q, want %q", c.name, m["error"], c.want.code)
		}
		if c.want.code == "" && strings.Contains(rerr.WWWAuthenticate, "error=") {
			t.Errorf("%s: challenge %q carries an error code", c.name, rerr.WWWAuthenticate)
		}
		if !robustDescOK(m["error_description"]) || !strings.HasPrefix(rerr.WWWAuthenticate, "Bearer realm=") && c.want.status != 400 {
			t.Errorf("%s: %q / %q", c.name, rerr.Body, rerr.WWWAuthenticate)
		}
	}
	// The valid forms work.
	for _, h := range []string{"Bearer " + at, "bearer " + at, "BEARER   " + at} {
		if _, rerr := k.srv.CheckRequest(&fakeReq{method: "GET", path: "/api", hdr: http.Header{"Authorization": {h}}}, "read"); rerr != nil {
			t.Errorf("%.10q...: %s", h, rerr.Body)
		}
	}
}

// TestRobustTokenFormAllocs bounds what a hostile body costs: a request the
// server refuses allocates in proportion to the body limit, not to what the
// client sends.
func TestRobustTokenFormAllocs(t *testing.T) {
	k := newRKit(t)
	limit := int(k.srv.Config().MaxBodyBytes)
	bodies := map[string]string{
		"64 params":        strings.Repeat("a=1&", 64),
		"many params":      strings.Repeat("a=1&", limit/4),
		"escapes at limit": "x=" + strings.Repeat("%41", (limit-2)/3),
		"8 MiB":            strings.Repeat("a", 8<<20),
	}
	for name, body := range bodies {
		r := &fakeReq{method: "POST", path: "/oauth2/token", body: body, hdr: formHdr(k.basic())}
		var ms0, ms1 runtime.MemStats
		runtime.ReadMemStats(&ms0)
		allocs := testing.AllocsPerRun(20, func() {
			w := newResp()
			k.srv.Handle(w, r)
			if w.status < 400 || w.status >= 500 {
				t.Fatalf("%s: status %d", name, w.status)
			}
		})
		runtime.ReadMemStats(&ms1)
		perReq := (ms1.TotalAlloc - ms0.TotalAlloc) / 21
		t.Logf("%s: %.0f allocs, %d bytes per request", name, allocs, perReq)
		if allocs > 60 {
			t.Errorf("%s: %.0f allocations per request", name, allocs)
		}
		if perReq > uint64(8*limit) {
			t.Errorf("%s: %d bytes allocated per request (limit %d)", name, perReq, limit)
		}
	}
}
