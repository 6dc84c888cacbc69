package core_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/oauth2kit/oauth2kit/core"
)

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
	e2 := newEnv(t, false, func(c *core.Config) { c.Lifetimes.RefreshToken = 2 * time.Hour })
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
