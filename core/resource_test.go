package core_test

// SECURITY.md §1.3 (resource access, revocation, introspection, R42–R49)
// and §1.4 (storage and crypto, R50–R55, as far as the core is concerned).

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/oauth2kit/oauth2kit/core"
)

const realmChallenge = `Bearer realm="` + issuer + `"`

func TestR42_BearerHeaderAndMethods(t *testing.T) {
	e := newEnv(t, false)
	at, _ := e.tokens("read")
	for _, h := range []string{"Bearer " + at, "bearer " + at, "BEARER " + at, "bEaReR " + at, "Bearer   " + at} {
		if info, w := e.resource(&fakeReq{hdr: http.Header{"Authorization": {h}}}); info == nil {
			t.Errorf("%.12s…: refused %d %s", h, w.status, w.body)
		} else if info.UserID != "alice" || info.ClientID != "conf" || info.Scope != "read" || info.AdditionalInfo != `{"plan":"gold"}` {
			t.Errorf("info %+v", info)
		}
	}
	// A query access_token is ignored: as if no token was sent ...
	_, w := e.resource(&fakeReq{query: "access_token=" + at})
	wantNoTokenChallenge(t, w)
	// ... also when the query has an (empty) draft-10 oauth_token.
	_, w = e.resource(&fakeReq{query: "access_token=" + at + "&oauth_token="})
	wantNoTokenChallenge(t, w)
	// ... also next to a header (so it is not a second method either).
	if info, w := e.resource(&fakeReq{query: "access_token=" + at, hdr: bearer(at)}); info == nil {
		t.Errorf("header with an ignored query token refused: %d %s", w.status, w.body)
	}
	// The form body on POST, PUT, PATCH and DELETE.
	for _, m := range []string{"POST", "PUT", "PATCH", "DELETE"} {
		if info, w := e.resource(&fakeReq{method: m, body: "x=1&access_token=" + at, hdr: withForm(nil)}); info == nil {
			t.Errorf("%s form token refused: %d %s", m, w.status, w.body)
		}
	}
	// Not on GET, not in a body of another type.
	_, w = e.resource(&fakeReq{method: "GET", body: "access_token=" + at, hdr: withForm(nil)})
	wantNoTokenChallenge(t, w)
	_, w = e.resource(&fakeReq{method: "POST", body: `{"access_token":"` + at + `"}`, hdr: http.Header{"Content-Type": {"application/json"}}})
	wantNoTokenChallenge(t, w)
	// More than one method: 400 invalid_request.
	for name, r := range map[string]*fakeReq{
		"header and body":  {method: "POST", body: "access_token=" + at, hdr: withForm(bearer(at))},
		"two headers":      {hdr: http.Header{"Authorization": {"Bearer " + at, "Bearer " + at}}},
		"repeated in body": {method: "POST", body: "access_token=" + at + "&access_token=" + at, hdr: withForm(nil)},
	} {
		_, w := e.resource(r)
		if w == nil || w.status != 400 {
			t.Errorf("%s: %v", name, w)
			continue
		}
		if m := w.json(t); m["error"] != "invalid_request" {
			t.Errorf("%s: %s", name, w.body)
		}
	}
}

// wantNoTokenChallenge asserts the answer to a request without a token:
// 401 and a challenge without an error code (RFC 6750 §3.1).
func wantNoTokenChallenge(t *testing.T, w *fakeResp) {
	t.Helper()
	if w == nil {
		t.Fatalf("request accepted")
	}
	if w.status != 401 || w.hdr.Get("WWW-Authenticate") != realmChallenge {
		t.Errorf("status %d, WWW-Authenticate %q", w.status, w.hdr.Get("WWW-Authenticate"))
	}
	if strings.Contains(w.hdr.Get("WWW-Authenticate"), "error") {
		t.Errorf("challenge carries an error code")
	}
	if w.hdr.Get("Content-Type") != "application/json" || w.hdr.Get("Cache-Control") != "no-store" {
		t.Errorf("headers %v", w.hdr)
	}
	if strings.Contains(string(w.body), "invalid_") {
		t.Errorf("body %s names an RFC 6750 error", w.body)
	}
}

func TestR43_ResourceErrors(t *testing.T) {
	e := newEnv(t, false, quietLog)
	code := e.code("read")
	at, rt := e.tokens("read")
	revokedAT, _ := e.tokens("read")
	if w := e.post("/oauth2/revoke", url.Values{"token": {revokedAT}}, basic("conf", e.secret)); w.status != 200 {
		t.Fatalf("revoke: %d", w.status)
	}
	expiredAT, _ := e.tokens("read")
	other := newEnv(t, false, func(c *core.Config) {
		c.Keys.CryptKey = []byte("another crypt key, 32 bytes long")
		c.Keys.SignKey = []byte("another sign key, 32 bytes long!")
	})
	foreign, _ := other.tokens("read")
	tampered := []byte(at)
	tampered[len(tampered)/2] ^= 0x01

	// No credentials, or credentials of another scheme.
	for _, hdr := range []http.Header{{}, {"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte("conf:"+e.secret))}}} {
		_, w := e.resource(&fakeReq{hdr: hdr})
		wantNoTokenChallenge(t, w)
	}

	e.now = e.now.Add(time.Hour) // expiredAT (and at, rt) age...
	freshAT, _ := e.tokens("read")
	_ = at
	invalid := map[string]string{
		"expired":       expiredAT,
		"revoked":       revokedAT,
		"tampered":      string(tampered),
		"foreign key":   foreign,
		"refresh token": rt,
		"code":          code,
		"garbage":       "abc",
		"empty fields":  "at2..",
	}
	var body []byte
	var challenge string
	for name, tok := range invalid {
		_, w := e.resource(&fakeReq{hdr: bearer(tok)})
		if w == nil {
			t.Fatalf("%s: accepted", name)
		}
		if w.status != 401 {
			t.Errorf("%s: status %d", name, w.status)
		}
		if body == nil {
			body, challenge = w.body, w.hdr.Get("WWW-Authenticate")
		}
		// One identical answer for every kind of bad token.
		if string(w.body) != string(body) || w.hdr.Get("WWW-Authenticate") != challenge {
			t.Errorf("%s: answer differs: %s / %q", name, w.body, w.hdr.Get("WWW-Authenticate"))
		}
	}
	if !strings.HasPrefix(challenge, realmChallenge+`, error="invalid_token"`) {
		t.Errorf("challenge %q", challenge)
	}
	if m := (&fakeResp{body: body}).json(t); m["error"] != "invalid_token" {
		t.Errorf("body %s", body)
	}
	// Malformed headers are invalid tokens as well.
	for _, h := range []string{"Bearer", "Bearer ", "Bearer a b", "Bearer !!!", "Bearer " + freshAT + ",x"} {
		_, w := e.resource(&fakeReq{hdr: http.Header{"Authorization": {h}}})
		if w == nil || w.status != 401 || w.hdr.Get("WWW-Authenticate") != challenge {
			t.Errorf("%q: %v", h, w)
		}
	}
	// Missing scope: 403 insufficient_scope naming it.
	_, w := e.resource(&fakeReq{hdr: bearer(freshAT)}, "read", "admin")
	if w == nil || w.status != 403 {
		t.Fatalf("insufficient scope: %v", w)
	}
	if got := w.hdr.Get("WWW-Authenticate"); !strings.HasPrefix(got, realmChallenge+`, error="insufficient_scope"`) || !strings.HasSuffix(got, `scope="read admin"`) {
		t.Errorf("WWW-Authenticate %q", got)
	}
	if m := w.json(t); m["error"] != "insufficient_scope" || m["scope"] != "read admin" {
		t.Errorf("body %s", w.body)
	}
	if info, _ := e.resource(&fakeReq{hdr: bearer(freshAT)}, "read"); info == nil {
		t.Errorf("sufficient scope refused")
	}
}

func TestR44_CheckedOnEveryRequest(t *testing.T) {
	e := newEnv(t, false)
	at, _ := e.tokens("read")
	if info, _ := e.resource(&fakeReq{hdr: bearer(at)}, "read"); info == nil {
		t.Fatalf("fresh token refused")
	}
	// Scope on every request.
	if _, w := e.resource(&fakeReq{hdr: bearer(at)}, "write"); w == nil || w.status != 403 {
		t.Errorf("scope not checked")
	}
	// Revocation takes effect at once (no cache by default).
	if w := e.post("/oauth2/revoke", url.Values{"token": {at}}, basic("conf", e.secret)); w.status != 200 {
		t.Fatalf("revoke %d", w.status)
	}
	if _, w := e.resource(&fakeReq{hdr: bearer(at)}, "read"); w == nil || w.status != 401 {
		t.Errorf("revoked token accepted")
	}
	// Expiry.
	at, _ = e.tokens("read")
	e.now = e.now.Add(time.Hour - time.Second)
	if info, _ := e.resource(&fakeReq{hdr: bearer(at)}); info == nil {
		t.Errorf("token refused before expiry")
	}
	e.now = e.now.Add(time.Second)
	if _, w := e.resource(&fakeReq{hdr: bearer(at)}); w == nil || w.status != 401 {
		t.Errorf("expired token accepted")
	}
	// Audience: a resource server configured for another audience refuses.
	at, _ = e.tokens("read")
	e.rebuild(false, e.store, func(c *core.Config) { c.Audience = "https://other-api.example" })
	if _, w := e.resource(&fakeReq{hdr: bearer(at)}); w == nil || w.status != 401 {
		t.Errorf("token for another audience accepted")
	}
}

func TestR44_R46_RevocationCacheBound(t *testing.T) {
	e := newEnv(t, false)
	// Server B shares store and keys but caches "not revoked" for 30 s.
	cfg := e.srv.Config()
	cfg.Caches.Revocation = 30 * time.Second
	b, err := core.New(cfg, e.store, authFor(e, false))
	if err != nil {
		t.Fatal(err)
	}
	at, _ := e.tokens("read")
	if _, err := b.CheckToken(t.Context(), at); err != nil {
		t.Fatal(err)
	}
	if w := e.post("/oauth2/revoke", url.Values{"token": {at}}, basic("conf", e.secret)); w.status != 200 {
		t.Fatalf("revoke %d", w.status)
	}
	if _, err := e.srv.CheckToken(t.Context(), at); err == nil {
		t.Errorf("the revoking server still accepts the token")
	}
	// Within the documented bound B may still accept it ...
	e.now = e.now.Add(29 * time.Second)
	if _, err := b.CheckToken(t.Context(), at); err != nil {
		t.Logf("B refused within the cache bound (allowed): %v", err)
	}
	// ... never after it.
	e.now = e.now.Add(time.Second)
	if _, err := b.CheckToken(t.Context(), at); err == nil {
		t.Errorf("B accepts a revoked token past Caches.Revocation")
	}
	// Introspection is always exact, cache or not.
	at2, _ := e.tokens("read")
	if _, err := b.CheckToken(t.Context(), at2); err != nil {
		t.Fatal(err)
	}
	e.post("/oauth2/revoke", url.Values{"token": {at2}}, basic("conf", e.secret))
	w := newResp()
	b.Introspect(w, &fakeReq{method: "POST", path: "/oauth2/introspect", body: url.Values{"token": {at2}}.Encode(), hdr: withForm(basic("conf", e.secret))})
	if string(w.body) != `{"active":false}` {
		t.Errorf("B introspects a revoked token as %s", w.body)
	}
}

var b64Re = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

func tamperChecks(t *testing.T, e *env, at string) {
	t.Helper()
	hdr, body, ok := strings.Cut(at[4:], ".")
	if !strings.HasPrefix(at, "at2.") || !ok || !b64Re.MatchString(hdr) {
		t.Fatalf("access token format %q", at)
	}
	raw, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil {
		t.Fatal(err)
	}
	// Encrypted: nothing of the claims is readable.
	for _, s := range []string{"alice", "conf", "read", "write", "gold", issuer, "as.example"} {
		if strings.Contains(string(raw), s) || strings.Contains(at, s) {
			t.Errorf("claim %q readable in the token", s)
		}
	}
	// Integrity: any flipped bit of nonce, ciphertext or tag fails.
	prefix := at[:len(at)-len(body)]
	for i := range raw {
		for _, bit := range []byte{0x01, 0x80} {
			m := append([]byte(nil), raw...)
			m[i] ^= bit
			tok := prefix + base64.RawURLEncoding.EncodeToString(m)
			if _, err := e.srv.CheckToken(t.Context(), tok); err == nil {
				t.Fatalf("byte %d bit %x flipped: accepted", i, bit)
			}
		}
	}
	// Any changed character of the token string fails, header and the
	// last character (whose low bits base64 does not use) included.
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."
	for i := range len(at) {
		for step := 1; step < len(alphabet); step++ {
			c := alphabet[(strings.IndexByte(alphabet, at[i])+step)%len(alphabet)]
			tok := at[:i] + string(c) + at[i+1:]
			if _, err := e.srv.CheckToken(t.Context(), tok); err == nil {
				t.Fatalf("character %d changed from %q to %q: accepted", i, at[i], c)
			}
			if i < len(at)-2 && step > 2 {
				break // the full alphabet only for the tail
			}
		}
	}
	// Inserted CR or LF (base64 decoders skip them): a different string
	// that would decode to the same bytes is not the token either.
	for i := len(prefix); i <= len(at); i++ {
		for _, c := range []string{"\n", "\r", "\r\n"} {
			if _, err := e.srv.CheckToken(t.Context(), at[:i]+c+at[i:]); err == nil {
				t.Fatalf("%q inserted at %d: accepted", c, i)
			}
		}
	}
	// ... also through the form body, where no token68 syntax check runs.
	if info, _ := e.resource(&fakeReq{method: "POST", body: url.Values{"access_token": {at[:len(at)-8] + "\n" + at[len(at)-8:]}}.Encode(), hdr: withForm(nil)}); info != nil {
		t.Errorf("token with an inserted LF accepted from a form body")
	}
	// Truncated, extended, padded, empty, oversized.
	for _, tok := range []string{at[:len(at)-1], at + "A", at + "=", prefix, "", strings.Repeat("a", 5000)} {
		if _, err := e.srv.CheckToken(t.Context(), tok); err == nil {
			t.Errorf("%.20s… (len %d) accepted", tok, len(tok))
		}
	}
}

func (e *env) familyOf(t *testing.T, rt string) string {
	t.Helper()
	st, err := e.store.GetRefreshToken(context.Background(), rtSig(t, rt))
	if err != nil {
		t.Fatalf("refresh token not in store: %v", err)
	}
	return st.FamilyID
}

func lastSetCookie(t *testing.T, e *env) string {
	t.Helper()
	if e.cookie == "" {
		t.Fatalf("no session cookie")
	}
	// e.cookie keeps only name=value; ask again for the full header.
	e.cookie = ""
	w := e.authorize(codeQuery("conf", confCB, "", "s"))
	return w.hdr.Get("Set-Cookie")
}

// Any Authorization scheme but Bearer is unsupported on a default-profile
// server (with no draft-10 client in sight): no credentials, so 401 with
// the bare Bearer challenge and no error code (RFC 6750 §3.1) — also for
// "OAuth <valid token>", which once answered invalid_token.
func TestR43_UnsupportedSchemeIsNoCredentials(t *testing.T) {
	e := newEnv(t, false, quietLog)
	at, _ := e.tokens("read")
	for _, h := range []string{"OAuth " + at, "oauth " + at, "OAuth", "OAuth a b", "MAC " + at, "Token " + at, "Basic " + at, "DPoP " + at} {
		_, w := e.resource(&fakeReq{hdr: http.Header{"Authorization": {h}}})
		wantNoTokenChallenge(t, w)
		if t.Failed() {
			t.Fatalf("Authorization %.10q…: %v", h, w)
		}
	}
}

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
