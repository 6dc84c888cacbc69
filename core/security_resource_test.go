package core_test

// SECURITY.md §1.3 (resource access, revocation, introspection, R42–R49)
// and §1.4 (storage and crypto, R50–R55, as far as the core is concerned).

import (
	"context"
	"encoding/base64"
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
		c.CryptKey = []byte("another crypt key, 32 bytes long")
		c.SignKey = []byte("another sign key, 32 bytes long!")
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
	cfg.RevocationCacheTTL = 30 * time.Second
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
		t.Errorf("B accepts a revoked token past RevocationCacheTTL")
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

func TestR45_NoTokensInLogs(t *testing.T) {
	var logs logBuf
	e, h := newHookedEnv(t, true, withLog(&logs))
	var secrets []string
	code := e.code("read")
	// (The harness password "pw" is too short to search for: random ids in
	// the log contain it by chance. The password is never handed to the
	// kit's logger anyway: only the app sees it.)
	secrets = append(secrets, code, e.secret, verifier)
	at, rt := e.redeem(code)
	secrets = append(secrets, at, rt)
	// Provoke every logged event: replay, refresh reuse, failed client
	// authentication (with a secret that must not be logged either), storage
	// failures, a failed resource check.
	w := e.refreshConf(rt, "")
	rt2 := w.json(t)["refresh_token"].(string)
	secrets = append(secrets, rt2)
	e.refreshConf(rt, "")
	e.token(codeForm(code), basic("conf", e.secret))
	wrong := "wrong-secret-" + strings.Repeat("x", 30)
	e.token(url.Values{"grant_type": {"client_credentials"}}, basic("conf", wrong))
	e.token(url.Values{"grant_type": {"client_credentials"}, "client_id": {"conf"}, "client_secret": {wrong}}, nil)
	secrets = append(secrets, wrong)
	at3, rt3 := e.tokens("read")
	secrets = append(secrets, at3, rt3)
	h.failing("IsFamilyRevoked", errStorageFailure)
	if _, w := e.resource(&fakeReq{hdr: bearer(at3)}); w == nil || w.status != 503 {
		t.Errorf("storage failure at the resource check: %v", w)
	}
	h.failing("IsFamilyRevoked", nil)
	h.failing("RevokeFamily", errStorageFailure)
	e.post("/oauth2/revoke", url.Values{"token": {rt3}}, basic("conf", e.secret))
	h.failing("RevokeFamily", nil)
	h.failing("GetRefreshToken", errStorageFailure)
	e.post("/oauth2/introspect", url.Values{"token": {rt3}}, basic("conf", e.secret))
	h.failing("GetRefreshToken", nil)
	e.resource(&fakeReq{hdr: bearer(at3 + "x")})
	page := e.authorize(codeQuery("conf", confCB, "read", "s"))
	handle := hidden(t, page.body)
	secrets = append(secrets, handle.Get(core.FieldRequest), handle.Get(core.FieldCSRF), strings.TrimPrefix(e.cookie, core.SecureSessionCookie+"="))

	out := logs.String()
	for _, want := range []string{"replayed", "reused", "authentication failed", "revocation"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks a %q event: the test provoked nothing", want)
		}
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(out, s) {
			t.Errorf("log contains a credential %.12s…", s)
		}
		// Nor a long piece of one.
		if len(s) > 40 && strings.Contains(out, s[len(s)-24:]) {
			t.Errorf("log contains part of a credential")
		}
	}
}

func TestR46_RevocationReachesTheGrant(t *testing.T) {
	for _, c := range []struct{ name, which, hint string }{
		{"refresh token", "rt", ""},
		{"refresh token, hint", "rt", "refresh_token"},
		{"refresh token, wrong hint", "rt", "access_token"},
		{"access token", "at", ""},
		{"access token, wrong hint", "at", "refresh_token"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, false)
			at, rt := e.tokens("read")
			// A second access token of the same grant.
			w := e.refreshConf(rt, "")
			at2, rt2 := w.json(t)["access_token"].(string), w.json(t)["refresh_token"].(string)
			fam := e.family(at)
			otherAT, otherRT := e.tokens("read")
			tok := rt2
			if c.which == "at" {
				tok = at
			}
			form := url.Values{"token": {tok}}
			if c.hint != "" {
				form.Set("token_type_hint", c.hint)
			}
			w = e.post("/oauth2/revoke", form, basic("conf", e.secret))
			if w.status != 200 || len(w.body) != 0 {
				t.Fatalf("revoke: %d %s", w.status, w.body)
			}
			if !e.revoked(fam) {
				t.Fatalf("family not revoked")
			}
			for _, a := range []string{at, at2} {
				if _, err := e.srv.CheckToken(t.Context(), a); err == nil {
					t.Errorf("access token of the revoked grant still valid")
				}
			}
			wantTokenError(t, e.refreshConf(rt2, ""), 400, "invalid_grant")
			// Other grants are untouched.
			if _, err := e.srv.CheckToken(t.Context(), otherAT); err != nil {
				t.Errorf("other grant's access token lost: %v", err)
			}
			if w := e.refreshConf(otherRT, ""); w.status != 200 {
				t.Errorf("other grant's refresh token lost: %d", w.status)
			}
		})
	}
	// A public client revokes its own token with its client_id.
	e := newEnv(t, false)
	code := wantCodeRedirect(t, e.codeFor(codeQuery("pub", publicCB, "read", "s")), publicCB, "s").Get("code")
	m := e.token(url.Values{"grant_type": {"authorization_code"}, "client_id": {"pub"}, "code": {code}, "redirect_uri": {publicCB}, "code_verifier": {verifier}}, nil).json(t)
	if w := e.post("/oauth2/revoke", url.Values{"token": {m["refresh_token"].(string)}, "client_id": {"pub"}}, nil); w.status != 200 {
		t.Fatalf("public revoke: %d %s", w.status, w.body)
	}
	if _, err := e.srv.CheckToken(t.Context(), m["access_token"].(string)); err == nil {
		t.Errorf("public client's access token survived")
	}
}

func TestR47_RevocationAuthAndOwnership(t *testing.T) {
	e := newEnv(t, false, quietLog)
	sec2 := strings.Repeat("2", 40)
	e.addClient(core.ClientSpec{ID: "conf2", RedirectURIs: []string{confCB}, Secret: sec2})
	at, rt := e.tokens("read")
	fam := e.family(at)
	// Client authentication is required.
	wantTokenError(t, e.post("/oauth2/revoke", url.Values{"token": {rt}}, nil), 401, "invalid_client")
	wantTokenError(t, e.post("/oauth2/revoke", url.Values{"token": {rt}}, basic("conf", "bad")), 401, "invalid_client")
	wantTokenError(t, e.post("/oauth2/revoke", url.Values{"token": {rt}, "client_id": {"conf"}}, nil), 400, "invalid_client")
	// Another client's tokens are refused and stay valid.
	for _, tok := range []string{rt, at} {
		wantTokenError(t, e.post("/oauth2/revoke", url.Values{"token": {tok}}, basic("conf2", sec2)), 400, "unauthorized_client")
		wantTokenError(t, e.post("/oauth2/revoke", url.Values{"token": {tok}, "client_id": {"pub"}}, nil), 400, "unauthorized_client")
	}
	if e.revoked(fam) {
		t.Fatalf("another client revoked the grant")
	}
	// Unknown, malformed, expired or already revoked: 200 with no body.
	expiredAT, _ := e.tokens("read")
	e.now = e.now.Add(time.Hour)
	for name, tok := range map[string]string{
		"unknown refresh": "rt2.x." + strings.Repeat("A", 43),
		"malformed":       "not a token",
		"code-shaped":     "ac2.x." + strings.Repeat("A", 43),
		"expired access":  expiredAT,
		"forged access":   "at2.x." + strings.Repeat("A", 80),
		"unknown, hinted": "zzz",
	} {
		w := e.post("/oauth2/revoke", url.Values{"token": {tok}}, basic("conf2", sec2))
		if w.status != 200 || len(w.body) != 0 {
			t.Errorf("%s: %d %s", name, w.status, w.body)
		}
	}
	if w := e.post("/oauth2/revoke", url.Values{"token": {rt}}, basic("conf", e.secret)); w.status != 200 {
		t.Fatalf("revoke: %d", w.status)
	}
	if w := e.post("/oauth2/revoke", url.Values{"token": {rt}}, basic("conf", e.secret)); w.status != 200 || len(w.body) != 0 {
		t.Errorf("revoking twice: %d %s", w.status, w.body)
	}
	// A token is required; an unknown hint is refused.
	wantTokenError(t, e.post("/oauth2/revoke", url.Values{}, basic("conf", e.secret)), 400, "invalid_request")
	wantTokenError(t, e.post("/oauth2/revoke", url.Values{"token": {rt}, "token_type_hint": {"id_token"}}, basic("conf", e.secret)), 400, "unsupported_token_type")
}

func TestR48_RevocationStorageErrorIs503(t *testing.T) {
	for _, method := range []string{"RevokeFamily", "GetRefreshToken", "GetClient"} {
		for _, transient := range []bool{false, true} {
			for _, which := range []string{"rt", "at"} {
				if method == "GetRefreshToken" && which == "at" {
					continue // access tokens are opened, not looked up
				}
				t.Run(fmt.Sprintf("%s/%s/transient=%v", method, which, transient), func(t *testing.T) {
					e, h := newHookedEnv(t, false, quietLog)
					at, rt := e.tokens("read")
					fam := e.family(at)
					err := errStorageFailure
					if transient {
						err = fmt.Errorf("%w: %w", core.ErrUnavailable, errStorageFailure)
					}
					h.failing(method, err)
					tok := rt
					if which == "at" {
						tok = at
					}
					w := e.post("/oauth2/revoke", url.Values{"token": {tok}}, basic("conf", e.secret))
					wantTokenError(t, w, 503, "temporarily_unavailable")
					if w.hdr.Get("Retry-After") == "" {
						t.Errorf("no Retry-After")
					}
					if strings.Contains(string(w.body), "pq") || strings.Contains(string(w.body), "SELECT") {
						t.Errorf("internal error on the wire: %s", w.body)
					}
					h.failing(method, nil)
					if e.revoked(fam) {
						t.Fatalf("family revoked though the store failed")
					}
					// The retry succeeds.
					if w := e.post("/oauth2/revoke", url.Values{"token": {tok}}, basic("conf", e.secret)); w.status != 200 {
						t.Errorf("retry: %d %s", w.status, w.body)
					}
					if !e.revoked(fam) {
						t.Errorf("retry did not revoke")
					}
				})
			}
		}
	}
}

func TestR49_Introspection(t *testing.T) {
	e := newEnv(t, false, quietLog)
	sec2 := strings.Repeat("2", 40)
	e.addClient(core.ClientSpec{ID: "rs", RedirectURIs: []string{confCB}, Secret: sec2})
	code := e.code("read")
	at, rt := e.tokens("read write")
	introspect := func(tok string, hdr http.Header) *fakeResp {
		return e.post("/oauth2/introspect", url.Values{"token": {tok}}, hdr)
	}
	// Authorization is required; public clients cannot introspect.
	wantTokenError(t, introspect(at, nil), 401, "invalid_client")
	wantTokenError(t, introspect(at, basic("conf", "bad")), 401, "invalid_client")
	// A client_id alone (a public client, or a confidential one without
	// its secret) is no client authentication: 401 with the Basic
	// challenge (RFC 7662 §2.1, §2.3), never 400.
	for _, f := range []url.Values{{"token": {at}, "client_id": {"pub"}}, {"token": {at}, "client_id": {"conf"}},
		{"token": {at}, "client_id": {"conf"}, "client_secret": {"wrong"}}, {"token": {at}, "client_id": {"nobody"}}} {
		w := e.post("/oauth2/introspect", f, nil)
		wantTokenError(t, w, 401, "invalid_client")
		if got := w.hdr.Get("WWW-Authenticate"); !strings.HasPrefix(got, `Basic realm="`) {
			t.Errorf("%v: WWW-Authenticate %q", f, got)
		}
	}
	wantTokenError(t, introspect(at, bearer(at)), 401, "invalid_client")
	wantTokenError(t, introspect("", basic("conf", e.secret)), 400, "invalid_request")

	// Active access token, for any confidential client (resource servers).
	for _, hdr := range []http.Header{basic("conf", e.secret), basic("rs", sec2)} {
		w := introspect(at, hdr)
		if w.status != 200 {
			t.Fatalf("introspect: %d %s", w.status, w.body)
		}
		wantJSONHeaders(t, w)
		m := w.json(t)
		want := map[string]any{"active": true, "scope": "read write", "client_id": "conf", "sub": "alice", "username": "alice",
			"token_type": "Bearer", "iss": issuer, "exp": float64(e.now.Add(time.Hour).Unix()), "iat": float64(e.now.Unix())}
		for k, v := range want {
			if m[k] != v {
				t.Errorf("%s=%v, want %v", k, m[k], v)
			}
		}
	}
	// Active refresh token, to its own client only.
	w := introspect(rt, basic("conf", e.secret))
	if m := w.json(t); m["active"] != true || m["token_type"] != "refresh_token" || m["client_id"] != "conf" || m["scope"] != "read write" {
		t.Errorf("refresh token: %s", w.body)
	}

	// Exactly {"active":false} for everything unusable.
	inactive := map[string]func() (string, http.Header){
		"unknown":           func() (string, http.Header) { return "rt2.x." + strings.Repeat("A", 43), basic("conf", e.secret) },
		"garbage":           func() (string, http.Header) { return "hello", basic("conf", e.secret) },
		"code":              func() (string, http.Header) { return code, basic("conf", e.secret) },
		"other client's rt": func() (string, http.Header) { return rt, basic("rs", sec2) },
		"tampered at": func() (string, http.Header) {
			b := []byte(at)
			b[len(b)/2] ^= 1
			return string(b), basic("conf", e.secret)
		},
		"pending handle": func() (string, http.Header) {
			return hidden(t, e.authorize(codeQuery("conf", confCB, "", "s")).body).Get(core.FieldRequest), basic("conf", e.secret)
		},
		"rotated rt": func() (string, http.Header) {
			_, r := e.tokens("read")
			e.refreshConf(r, "")
			return r, basic("conf", e.secret)
		},
		"revoked at": func() (string, http.Header) {
			a, _ := e.tokens("read")
			e.post("/oauth2/revoke", url.Values{"token": {a}}, basic("conf", e.secret))
			return a, basic("rs", sec2)
		},
		"rt of revoked grant": func() (string, http.Header) {
			a, r := e.tokens("read")
			e.post("/oauth2/revoke", url.Values{"token": {a}}, basic("conf", e.secret))
			return r, basic("conf", e.secret)
		},
	}
	for name, f := range inactive {
		tok, hdr := f()
		w := introspect(tok, hdr)
		if w.status != 200 || string(w.body) != `{"active":false}` {
			t.Errorf("%s: %d %s", name, w.status, w.body)
		}
		wantJSONHeaders(t, w)
	}
	// Expired access and refresh tokens.
	e2 := newEnv(t, false, func(c *core.Config) { c.RefreshTokenLifetime = 2 * time.Hour })
	at2, rt2 := e2.tokens("read")
	e2.now = e2.now.Add(time.Hour)
	if w := e2.post("/oauth2/introspect", url.Values{"token": {at2}}, basic("conf", e2.secret)); string(w.body) != `{"active":false}` {
		t.Errorf("expired access token: %s", w.body)
	}
	e2.now = e2.now.Add(time.Hour)
	if w := e2.post("/oauth2/introspect", url.Values{"token": {rt2}}, basic("conf", e2.secret)); string(w.body) != `{"active":false}` {
		t.Errorf("expired refresh token: %s", w.body)
	}
}

func TestR49_IntrospectionStorageFailure(t *testing.T) {
	for _, method := range []string{"IsFamilyRevoked", "GetRefreshToken"} {
		e, h := newHookedEnv(t, false, quietLog)
		at, rt := e.tokens("read")
		tok := at
		if method == "GetRefreshToken" {
			tok = rt
		}
		h.failing(method, errStorageFailure)
		w := e.post("/oauth2/introspect", url.Values{"token": {tok}}, basic("conf", e.secret))
		if w.status < 500 || strings.Contains(string(w.body), "active") {
			t.Errorf("%s failing: %d %s", method, w.status, w.body)
		}
		wantTokenError(t, w, 500, "server_error")
	}
}

func TestR50_NoCleartextCredentialsInStore(t *testing.T) {
	e, h := newHookedEnv(t, false)
	var creds []string
	for range 3 {
		code := e.code("read")
		at, rt := e.redeem(code)
		w := e.refreshConf(rt, "")
		rt2 := w.json(t)["refresh_token"].(string)
		creds = append(creds, code, at, rt, rt2, w.json(t)["access_token"].(string))
	}
	creds = append(creds, e.secret, verifier)
	// Three codes, each with its login form's used-marker (which must
	// carry no credential either).
	if len(h.grants) != 6 || len(h.rts) != 6 {
		t.Fatalf("recorded %d grants, %d refresh tokens", len(h.grants), len(h.rts))
	}
	var stored []string
	for _, g := range h.grants {
		stored = append(stored, g.ID, g.CodeSig, g.ClientID, g.UserID, g.RedirectURI, g.Scope, g.CodeChallenge, g.CodeChallengeMethod, g.AdditionalInfo)
	}
	for _, rt := range h.rts {
		stored = append(stored, rt.Sig, rt.FamilyID, rt.ClientID, rt.UserID, rt.Scope, rt.AdditionalInfo)
	}
	stored = append(stored, h.args...)
	c, _ := e.store.GetClient(t.Context(), "conf")
	stored = append(stored, c.SecretHash)
	for _, s := range stored {
		for _, cr := range creds {
			// Neither the credential nor its random part (the last 43 chars).
			if strings.Contains(s, cr) || len(cr) >= 43 && strings.Contains(s, cr[len(cr)-43:]) {
				t.Errorf("store received %.16s… which holds a credential", s)
			}
		}
	}
	// Signatures are HMACs: 32 bytes, base64url.
	sigRe := regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)
	for _, g := range h.grants {
		if !sigRe.MatchString(g.CodeSig) {
			t.Errorf("code signature %q", g.CodeSig)
		}
	}
	for _, rt := range h.rts {
		if !sigRe.MatchString(rt.Sig) {
			t.Errorf("refresh signature %q", rt.Sig)
		}
	}
	// Secrets are hashed: SHA-256 for generated (high-entropy) ones, bcrypt
	// for short imported ones; both verify, neither holds the secret.
	if !strings.HasPrefix(c.SecretHash, "sha256$") || !core.VerifySecret(c.SecretHash, e.secret) || core.VerifySecret(c.SecretHash, e.secret+"x") {
		t.Errorf("generated secret hash %q", c.SecretHash)
	}
	short, _, err := core.NewClient(core.ClientSpec{ID: "imp", RedirectURIs: []string{confCB}, Secret: "hunter2"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(short.SecretHash, "bcrypt$") || strings.Contains(short.SecretHash, "hunter2") || !core.VerifySecret(short.SecretHash, "hunter2") || core.VerifySecret(short.SecretHash, "hunter3") {
		t.Errorf("imported secret hash %q", short.SecretHash)
	}
}

var b64Re = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

func TestR52_Entropy(t *testing.T) {
	e := newEnv(t, false)
	rnd := map[string]bool{}
	add := func(what, v string, bytes int) {
		t.Helper()
		raw, err := base64.RawURLEncoding.DecodeString(v)
		if err != nil || len(raw) != bytes || !b64Re.MatchString(v) {
			t.Fatalf("%s %q: not %d random bytes in base64url", what, v, bytes)
		}
		if rnd[v] {
			t.Fatalf("%s repeated", what)
		}
		rnd[v] = true
	}
	for range 40 {
		s, err := core.GenerateSecret()
		if err != nil {
			t.Fatal(err)
		}
		add("secret", s, 32)
		c, sec, err := core.NewClient(core.ClientSpec{RedirectURIs: []string{confCB}})
		if err != nil {
			t.Fatal(err)
		}
		add("generated client secret", sec, 32)
		add("generated client id", c.ID, 16)
	}
	for range 20 {
		e.cookie = ""
		page := e.authorize(codeQuery("conf", confCB, "", "s"))
		add("session cookie", strings.TrimPrefix(e.cookie, core.SecureSessionCookie+"="), 32)
		add("CSRF token", hidden(t, page.body).Get(core.FieldCSRF), 32)
		code := codeRe.FindStringSubmatch(wantCodeRedirect(t, e.login(page, "alice", "pw"), confCB, "s").Get("code"))
		if code == nil {
			t.Fatalf("code format")
		}
		add("code", code[1], 32)
		at, rt := e.redeem(code[0])
		parts := strings.Split(rt, ".")
		if len(parts) != 3 || parts[0] != "rt2" {
			t.Fatalf("refresh token format %q", rt)
		}
		if len(parts[2]) != 64 {
			t.Fatalf("refresh token body %q is not 48 bytes of base64url", parts[2])
		}
		add("refresh token", parts[2][:43], 32)
		add("grant id", e.family(at), 16)
	}
	if f := bitsSet(rnd); f < 0.47 || f > 0.53 {
		t.Errorf("random values are biased: %.3f of bits set", f)
	}
}

func TestR53_AccessTokensSealed(t *testing.T) {
	e := newEnv(t, false, func(c *core.Config) { c.Scopes = append(c.Scopes, "x") })
	// Tokens of several lengths, so that every base64 tail shape (body
	// length 0, 2 or 3 mod 4) is exercised.
	residues := map[int]bool{}
	for _, scope := range []string{"x", "read x", "read", "write", "read write", "admin write", "admin read write"} {
		at, _ := e.tokens(scope)
		residues[len(at[strings.LastIndexByte(at, '.')+1:])%4] = true
		tamperChecks(t, e, at)
	}
	if len(residues) != 3 {
		t.Errorf("token body lengths cover residues %v mod 4 only", residues)
	}
	// Sealed with a random nonce: two tokens of the same grant share
	// nothing beyond the header.
	at, rt := e.tokens("read")
	at2 := e.refreshConf(rt, "").json(t)["access_token"].(string)
	h := strings.LastIndexByte(at, '.') + 1
	if at2[:h+8] == at[:h+8] {
		t.Errorf("two tokens share a prefix beyond the header")
	}
}

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

func TestR54_AbuseRevokesOnlyTheAffectedGrant(t *testing.T) {
	e := newEnv(t, false, quietLog)
	// Two grants of the same user and client.
	code := e.code("read")
	at1, rt1 := e.redeem(code)
	at2, rt2 := e.tokens("read")
	// Code reuse kills grant 1 only.
	e.token(codeForm(code), basic("conf", e.secret))
	if !e.revoked(e.familyOf(t, rt1)) || e.revoked(e.family(at2)) {
		t.Fatalf("code replay: wrong families revoked")
	}
	if _, err := e.srv.CheckToken(t.Context(), at1); err == nil {
		t.Errorf("grant 1 access token survived")
	}
	// Refresh reuse kills grant 2 only.
	at3, rt3 := e.tokens("read")
	w := e.refreshConf(rt2, "")
	if w.status != 200 {
		t.Fatal(w.status)
	}
	e.refreshConf(rt2, "")
	if !e.revoked(e.familyOf(t, rt2)) {
		t.Fatalf("refresh reuse did not revoke")
	}
	if _, err := e.srv.CheckToken(t.Context(), at3); err != nil {
		t.Errorf("an unrelated grant was revoked: %v", err)
	}
	if w := e.refreshConf(rt3, ""); w.status != 200 {
		t.Errorf("unrelated refresh token lost")
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

func TestR55_TransportSecurity(t *testing.T) {
	// An https issuer marks the session cookie Secure even behind a TLS
	// terminating proxy (r.TLS() false).
	e := newEnv(t, false)
	e.authorize(codeQuery("conf", confCB, "", "s"))
	ck, err := http.ParseSetCookie(lastSetCookie(t, e))
	if err != nil {
		t.Fatal(err)
	}
	if !ck.Secure || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" || ck.Name != core.SecureSessionCookie {
		t.Errorf("session cookie %+v", ck)
	}
	// A loopback http issuer (development): Secure only when the request
	// came over TLS.
	for _, tls := range []bool{false, true} {
		d := newEnv(t, false, func(c *core.Config) { c.Issuer = "http://127.0.0.1:8080" })
		w := newResp()
		d.srv.Authorize(w, &fakeReq{method: "GET", path: "/oauth2/authorize", query: codeQuery("conf", confCB, "", "s").Encode(), hdr: http.Header{}, tls: tls})
		ck, err := http.ParseSetCookie(w.hdr.Get("Set-Cookie"))
		if err != nil {
			t.Fatal(err)
		}
		if ck.Secure != tls {
			t.Errorf("tls=%v: Secure=%v", tls, ck.Secure)
		}
	}
	// The issuer itself must be https (http only for loopback).
	for _, iss := range []string{"http://as.example.com", "http://10.0.0.1", "ftp://as.example.com", "https://as.example.com?x=1", "https://as.example.com#f", "as.example.com"} {
		if _, err := core.New(core.Config{Issuer: iss, CryptKey: signKey, SignKey: signKey}, e.store, authFor(e, false)); err == nil {
			t.Errorf("issuer %q accepted", iss)
		}
	}
	// Authorization responses go over http only to loopback: registration
	// (R04) and matching (R01) keep every other http redirect URI out.
	if _, _, err := core.NewClient(core.ClientSpec{ID: "h", RedirectURIs: []string{"http://client.example.com/cb"}}); err == nil {
		t.Errorf("http redirect URI registered")
	}
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
