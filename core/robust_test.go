package core_test

import (
	"bytes"
	"encoding/json"
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

func TestRobustOversizedBodies(t *testing.T) {
	k := newRKit(t)
	limit := k.srv.Config().Limits.MaxBodyBytes
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
	other := newRKit(t, func(c *core.Config) { c.Keys.CryptKey = []byte("another crypt key, 32 bytes long!") })
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

// TestRobustTokenFormAllocs bounds what a hostile body costs: a request the
// server refuses allocates in proportion to the body limit, not to what the
// client sends.
func TestRobustTokenFormAllocs(t *testing.T) {
	k := newRKit(t)
	limit := int(k.srv.Config().Limits.MaxBodyBytes)
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
