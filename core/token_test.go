package core_test

// SECURITY.md §1.2: the token endpoint (R22–R41).

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/oauth2kit/oauth2kit/core"
	"github.com/oauth2kit/oauth2kit/core/memstore"
)

func codeForm(code string) url.Values {
	return url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {confCB}, "code_verifier": {verifier}}
}

func TestR22_TokenEndpointPostFormOnly(t *testing.T) {
	e := newEnv(t, false)
	code := e.code("")
	body := codeForm(code).Encode()
	auth := core.EncodeBasic("conf", e.secret)
	for _, path := range []string{"/oauth2/token", "/oauth2/revoke", "/oauth2/introspect"} {
		for _, m := range []string{"GET", "PUT", "DELETE", "HEAD", "OPTIONS"} {
			w := e.do(&fakeReq{method: m, path: path, query: body, hdr: http.Header{"Authorization": {auth}}})
			wantTokenError(t, w, 405, "invalid_request")
			if w.hdr.Get("Allow") != "POST" {
				t.Errorf("%s %s: Allow=%q", m, path, w.hdr.Get("Allow"))
			}
		}
		for _, ct := range []string{"", "application/json", "text/plain", "multipart/form-data; boundary=x",
			"application/x-www-form-urlencoded; charset=iso-8859-1", "application/x-www-form-urlencodedx", "application/x-www-form-urlencoded; charset"} {
			hdr := http.Header{"Authorization": {auth}}
			if ct != "" {
				hdr.Set("Content-Type", ct)
			}
			w := e.do(&fakeReq{method: "POST", path: path, body: body, hdr: hdr})
			wantTokenError(t, w, 400, "invalid_request")
		}
	}
	// An oversized body.
	w := e.do(&fakeReq{method: "POST", path: "/oauth2/token", body: body + "&x=" + strings.Repeat("a", 70<<10),
		hdr: http.Header{"Authorization": {auth}, "Content-Type": {"application/x-www-form-urlencoded"}}})
	if w.status != 400 && w.status != 413 {
		t.Errorf("oversized body: %d", w.status)
	}
	// None of that touched the code; UTF-8 (any case) is fine.
	w = e.do(&fakeReq{method: "POST", path: "/oauth2/token", body: body,
		hdr: http.Header{"Authorization": {auth}, "Content-Type": {"application/x-www-form-urlencoded; charset=UTF-8"}}})
	if w.status != 200 {
		t.Errorf("form with charset=UTF-8: %d %s", w.status, w.body)
	}
}

func TestR23_ClientAuthenticationFailures(t *testing.T) {
	e := newEnv(t, false)
	code := e.code("")
	challenge := `Basic realm="` + issuer + `", charset="UTF-8"`
	cases := []struct {
		name      string
		form      url.Values
		hdr       http.Header
		status    int
		challenge bool
	}{
		{"wrong secret, Basic", url.Values{}, basic("conf", e.secret+"x"), 401, true},
		{"unknown client, Basic", url.Values{}, basic("nobody", e.secret), 401, true},
		{"empty secret, Basic", url.Values{}, basic("conf", ""), 401, true},
		{"undecodable Basic", url.Values{}, http.Header{"Authorization": {"Basic !!!"}}, 401, true},
		{"Basic without colon", url.Values{}, http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte("conf"))}}, 401, true},
		{"other scheme", url.Values{}, http.Header{"Authorization": {"Bearer " + e.secret}}, 401, true},
		{"wrong secret, body", url.Values{"client_id": {"conf"}, "client_secret": {e.secret + "x"}}, nil, 400, false},
		{"unknown client, body", url.Values{"client_id": {"nobody"}, "client_secret": {e.secret}}, nil, 400, false},
		{"confidential client without secret", url.Values{"client_id": {"conf"}}, nil, 400, false},
		{"no client at all", url.Values{}, nil, 401, true},
		{"secret without client_id", url.Values{"client_secret": {e.secret}}, nil, 401, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := codeForm(code)
			for k, v := range c.form {
				f[k] = v
			}
			w := e.token(f, c.hdr)
			wantTokenError(t, w, c.status, "invalid_client")
			if got := w.hdr.Get("WWW-Authenticate"); c.challenge && got != challenge || !c.challenge && got != "" {
				t.Errorf("WWW-Authenticate=%q", got)
			}
		})
	}
	if e.refreshCount() != 0 {
		t.Fatalf("a failed authentication issued a refresh token")
	}
	// Authentication ran before the code was touched: it is still good.
	e.redeem(code)
}

func TestR24_OneAuthenticationMethod(t *testing.T) {
	e := newEnv(t, false)
	code := e.code("")
	cases := []struct {
		name string
		form url.Values
		hdr  http.Header
	}{
		{"Basic and client_secret", url.Values{"client_secret": {e.secret}}, basic("conf", e.secret)},
		{"Basic and client_id of another client", url.Values{"client_id": {"pub"}}, basic("conf", e.secret)},
		{"two Authorization headers", url.Values{}, http.Header{"Authorization": {core.EncodeBasic("conf", e.secret), core.EncodeBasic("conf", e.secret)}}},
	}
	for _, c := range cases {
		f := codeForm(code)
		for k, v := range c.form {
			f[k] = v
		}
		wantTokenError(t, e.token(f, c.hdr), 400, "invalid_request")
	}
	if e.refreshCount() != 0 {
		t.Fatalf("token issued")
	}
	// client_id naming the same client as Basic is not a second method.
	f := codeForm(code)
	f.Set("client_id", "conf")
	if w := e.token(f, basic("conf", e.secret)); w.status != 200 {
		t.Errorf("Basic plus the same client_id: %d %s", w.status, w.body)
	}
}

func TestR25_NoSecretInURI(t *testing.T) {
	e := newEnv(t, false)
	code := e.code("")
	for _, path := range []string{"/oauth2/token", "/oauth2/revoke", "/oauth2/introspect"} {
		for _, hdr := range []http.Header{basic("conf", e.secret), {}} {
			form := codeForm(code)
			form.Set("token", "x")
			if len(hdr) == 0 {
				form.Set("client_id", "conf")
				form.Set("client_secret", e.secret)
			}
			w := e.do(&fakeReq{method: "POST", path: path, query: "client_id=conf&client_secret=" + url.QueryEscape(e.secret),
				body: form.Encode(), hdr: withForm(hdr)})
			wantTokenError(t, w, 400, "invalid_request")
		}
	}
	// Secret only in the URI, nothing in the body.
	w := e.do(&fakeReq{method: "POST", path: "/oauth2/token", query: "client_id=conf&client_secret=" + url.QueryEscape(e.secret),
		body: url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {confCB}, "code_verifier": {verifier}}.Encode(),
		hdr:  withForm(nil)})
	if w.status < 400 || w.status == 200 {
		t.Errorf("secret in URI accepted: %d", w.status)
	}
	if e.refreshCount() != 0 {
		t.Fatalf("token issued")
	}
	e.redeem(code)
}

func TestR26_BasicCredentialsFormDecoded(t *testing.T) {
	e := newEnv(t, false)
	// An id and a secret full of characters form-urlencoding changes.
	const id2 = "my%client+1 x/e"
	secret := "s3cr%t+ &=:/?#" + strings.Repeat("k", 24)
	e.addClient(core.ClientSpec{ID: id2, RedirectURIs: []string{confCB}, Secret: secret, GrantTypes: []string{"client_credentials"}})
	manual := func(user, pass string) http.Header {
		return http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))}}
	}
	cases := []struct {
		name string
		hdr  http.Header
		ok   bool
	}{
		{"EncodeBasic", basic(id2, secret), true},
		{"hand-encoded, %20 for space", manual("my%25client%2B1%20x%2Fe", url.QueryEscape(secret)), true},
		{"hand-encoded, + for space", manual("my%25client%2B1+x%2Fe", strings.ReplaceAll(url.PathEscape(secret), "+", "%2B")), true},
		{"colon in secret encoded", manual(url.QueryEscape(id2), strings.ReplaceAll(url.QueryEscape(secret), "%3A", ":")), true},
		{"raw, not form-encoded", manual(id2, secret), false},
		{"malformed escape in id", manual("my%zzclient", url.QueryEscape(secret)), false},
		{"truncated escape in secret", manual(url.QueryEscape(id2), url.QueryEscape(secret)+"%2"), false},
		{"secret with + meaning space", manual(url.QueryEscape(id2), strings.ReplaceAll(url.QueryEscape(secret), "%2B", "+")), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := e.token(url.Values{"grant_type": {"client_credentials"}}, c.hdr)
			if c.ok {
				if w.status != 200 {
					t.Errorf("status %d %s", w.status, w.body)
				}
				return
			}
			wantTokenError(t, w, 401, "invalid_client")
		})
	}
	// my%3Aclient is "my:client", not user "my" with password "client...".
	e.addClient(core.ClientSpec{ID: "my", RedirectURIs: []string{confCB}, Secret: "client:" + strings.Repeat("z", 30), GrantTypes: []string{"client_credentials"}})
	w := e.token(url.Values{"grant_type": {"client_credentials"}}, manual("my%3Aclient", strings.Repeat("z", 30)))
	wantTokenError(t, w, 401, "invalid_client")
	// ids with ':' cannot be registered at all.
	if _, _, err := core.NewClient(core.ClientSpec{ID: "my:client", RedirectURIs: []string{confCB}}); err == nil {
		t.Errorf("client id with ':' accepted")
	}
	// EncodeBasic round-trips through the server for awkward secrets.
	for i, s := range []string{"%", "+", " ", "%2B", "a:b:c", "é"} {
		sec := s + strings.Repeat("q", 32)
		cid := fmt.Sprintf("c%d", i)
		e.addClient(core.ClientSpec{ID: cid, RedirectURIs: []string{confCB}, Secret: sec, GrantTypes: []string{"client_credentials"}})
		if w := e.token(url.Values{"grant_type": {"client_credentials"}}, basic(cid, sec)); w.status != 200 {
			t.Errorf("secret %q: %d %s", sec, w.status, w.body)
		}
	}
}

func TestR27_ClientAuthThrottling(t *testing.T) {
	t.Run("per client and address", func(t *testing.T) {
		e := newEnv(t, false, quietLog)
		for range 10 {
			w := e.do(&fakeReq{method: "POST", path: "/oauth2/token", remote: "198.51.100.1:1",
				body: "grant_type=client_credentials", hdr: withForm(basic("conf", "wrong"))})
			wantTokenError(t, w, 401, "invalid_client")
		}
		// Now even the right secret, from that address, waits.
		w := e.do(&fakeReq{method: "POST", path: "/oauth2/token", remote: "198.51.100.1:2",
			body: "grant_type=client_credentials", hdr: withForm(basic("conf", e.secret))})
		wantThrottled(t, w)
		// Revocation and introspection share the limit.
		for _, path := range []string{"/oauth2/revoke", "/oauth2/introspect"} {
			wantThrottled(t, e.do(&fakeReq{method: "POST", path: path, remote: "198.51.100.1:3",
				body: "token=x", hdr: withForm(basic("conf", e.secret))}))
		}
		// The client itself is not locked out: from another address its
		// right secret works (client ids are public; a global per-client
		// counter would let anyone lock any client out).
		if w := e.token(url.Values{"grant_type": {"client_credentials"}}, basic("conf", e.secret)); w.status != 200 {
			t.Errorf("client locked out everywhere: %d %s", w.status, w.body)
		}
		// Failures spread over many addresses do not lock the client out.
		for i := range 20 {
			e.do(&fakeReq{method: "POST", path: "/oauth2/token", remote: fmt.Sprintf("203.0.113.%d:1", i),
				body: "grant_type=client_credentials", hdr: withForm(basic("conf", "wrong"))})
		}
		if w := e.token(url.Values{"grant_type": {"client_credentials"}}, basic("conf", e.secret)); w.status != 200 {
			t.Errorf("distributed failures locked the client out: %d %s", w.status, w.body)
		}
		// A public client's failures count against the address only.
		for range 10 {
			e.do(&fakeReq{method: "POST", path: "/oauth2/token", remote: "198.51.100.99:1",
				body: "grant_type=authorization_code&code=x&client_id=pub&client_secret=zzz", hdr: withForm(nil)})
		}
		if w := e.do(&fakeReq{method: "POST", path: "/oauth2/token", remote: "198.51.100.98:1",
			body: "grant_type=authorization_code&code=x&client_id=pub", hdr: withForm(nil)}); w.status == 429 {
			t.Errorf("public client throttled by another address's failures")
		}
		// The window ends.
		e.now = e.now.Add(61 * time.Second)
		w = e.do(&fakeReq{method: "POST", path: "/oauth2/token", remote: "198.51.100.1:4",
			body: "grant_type=client_credentials", hdr: withForm(basic("conf", e.secret))})
		if w.status != 200 {
			t.Errorf("after the window: %d %s", w.status, w.body)
		}
	})
	t.Run("per address", func(t *testing.T) {
		e := newEnv(t, false, quietLog, func(c *core.Config) { c.AuthThrottle.PerAddr = 20 })
		for i := range 20 {
			w := e.do(&fakeReq{method: "POST", path: "/oauth2/token", remote: "198.51.100.7:" + strconv.Itoa(1000+i),
				body: "grant_type=client_credentials", hdr: withForm(basic(fmt.Sprintf("guess%d", i), "x"))})
			wantTokenError(t, w, 401, "invalid_client")
		}
		w := e.do(&fakeReq{method: "POST", path: "/oauth2/token", remote: "198.51.100.7:9",
			body: "grant_type=client_credentials", hdr: withForm(basic("conf", e.secret))})
		wantThrottled(t, w)
		// Body authentication is counted the same way.
		w = e.do(&fakeReq{method: "POST", path: "/oauth2/token", remote: "198.51.100.7:9",
			body: "grant_type=client_credentials&client_id=conf&client_secret=" + url.QueryEscape(e.secret), hdr: withForm(nil)})
		wantThrottled(t, w)
		// Another address is not.
		w = e.do(&fakeReq{method: "POST", path: "/oauth2/token", remote: "198.51.100.8:9",
			body: "grant_type=client_credentials", hdr: withForm(basic("conf", e.secret))})
		if w.status != 200 {
			t.Errorf("other address: %d %s", w.status, w.body)
		}
	})
	t.Run("IPv6 /64 counts as one address", func(t *testing.T) {
		e := newEnv(t, false, quietLog, func(c *core.Config) { c.AuthThrottle.PerAddr = 3; c.AuthThrottle.PerAccount = 100 })
		for i := range 3 {
			e.do(&fakeReq{method: "POST", path: "/oauth2/token", remote: fmt.Sprintf("[2001:db8:1:2::%x]:443", i+1),
				body: "grant_type=client_credentials", hdr: withForm(basic("conf", "wrong"))})
		}
		w := e.do(&fakeReq{method: "POST", path: "/oauth2/token", remote: "[2001:db8:1:2:ffff::1]:443",
			body: "grant_type=client_credentials", hdr: withForm(basic("conf", e.secret))})
		wantThrottled(t, w)
		w = e.do(&fakeReq{method: "POST", path: "/oauth2/token", remote: "[2001:db8:1:3::1]:443",
			body: "grant_type=client_credentials", hdr: withForm(basic("conf", e.secret))})
		if w.status != 200 {
			t.Errorf("other /64: %d", w.status)
		}
	})
}

func wantThrottled(t *testing.T, w *fakeResp) {
	t.Helper()
	wantTokenError(t, w, 429, "invalid_client")
	ra, err := strconv.Atoi(w.hdr.Get("Retry-After"))
	if err != nil || ra < 1 || ra > 61 {
		t.Errorf("Retry-After=%q", w.hdr.Get("Retry-After"))
	}
}

func TestR28_CodeBoundToClient(t *testing.T) {
	e := newEnv(t, false, quietLog)
	sec2 := strings.Repeat("2", 40)
	e.addClient(core.ClientSpec{ID: "conf2", RedirectURIs: []string{confCB}, Secret: sec2})
	code := e.code("")
	wantTokenError(t, e.token(codeForm(code), basic("conf2", sec2)), 400, "invalid_grant")
	if e.refreshCount() != 0 {
		t.Fatalf("token issued to the wrong client")
	}
	// A public client's code redeemed by a confidential one, and the other
	// way round.
	pq := wantCodeRedirect(t, e.codeFor(codeQuery("pub", publicCB, "", "s")), publicCB, "s")
	f := url.Values{"grant_type": {"authorization_code"}, "code": {pq.Get("code")}, "redirect_uri": {publicCB}, "code_verifier": {verifier}}
	wantTokenError(t, e.token(f, basic("conf", e.secret)), 400, "invalid_grant")
	code = e.code("")
	wantTokenError(t, e.token(url.Values{"grant_type": {"authorization_code"}, "client_id": {"pub"}, "code": {code},
		"redirect_uri": {confCB}, "code_verifier": {verifier}}, nil), 400, "invalid_grant")
	if e.refreshCount() != 0 {
		t.Fatalf("token issued to the wrong client")
	}
}

func TestR29_PKCEVerifierIffChallenge(t *testing.T) {
	e := newEnv(t, false)
	e.addClient(core.ClientSpec{ID: "opt", RedirectURIs: []string{confCB}, PKCE: core.PKCEOptional, Secret: strings.Repeat("o", 40)})
	optAuth := basic("opt", strings.Repeat("o", 40))
	cases := []struct {
		name     string
		verifier string
		code     string
	}{
		{"missing", "", "invalid_grant"},
		{"wrong", strings.Repeat("A", 43), "invalid_grant"},
		{"challenge itself", core.S256Challenge(verifier), "invalid_grant"},
		{"too short", verifier[:42], "invalid_grant"},
		{"illegal characters", verifier[:42] + "+", "invalid_grant"},
	}
	for _, c := range cases {
		code := e.code("")
		f := codeForm(code)
		f.Set("code_verifier", c.verifier)
		if c.verifier == "" {
			f.Del("code_verifier")
		}
		wantTokenError(t, e.token(f, basic("conf", e.secret)), 400, c.code)
	}
	if e.refreshCount() != 0 {
		t.Fatalf("token issued")
	}
	// A verifier for a code that has no challenge.
	q := codeQuery("opt", confCB, "", "s")
	q.Del("code_challenge")
	q.Del("code_challenge_method")
	code := wantCodeRedirect(t, e.codeFor(q), confCB, "s").Get("code")
	wantTokenError(t, e.token(codeForm(code), optAuth), 400, "invalid_request")
	// Without one it works (a fresh code: the failed attempt burned the first).
	code = wantCodeRedirect(t, e.codeFor(q), confCB, "s").Get("code")
	f := codeForm(code)
	f.Del("code_verifier")
	if w := e.token(f, optAuth); w.status != 200 {
		t.Errorf("no challenge, no verifier: %d %s", w.status, w.body)
	}
	// The matching verifier works: BASE64URL(SHA256(verifier)) == challenge.
	e.redeem(e.code(""))
}

func TestR30_FailedVerificationBurnsCode(t *testing.T) {
	e := newEnv(t, false)
	for _, first := range []url.Values{
		{"code_verifier": {strings.Repeat("A", 43)}},
		{"code_verifier": {""}},
		{"redirect_uri": {confCB + "/x"}},
	} {
		code := e.code("")
		f := codeForm(code)
		for k, v := range first {
			f[k] = v
		}
		wantTokenError(t, e.token(f, basic("conf", e.secret)), 400, "invalid_grant")
		// Every later attempt fails, the right verifier included.
		for range 2 {
			wantTokenError(t, e.token(codeForm(code), basic("conf", e.secret)), 400, "invalid_grant")
		}
	}
	if e.refreshCount() != 0 {
		t.Fatalf("token issued")
	}
}

func TestR31_CodeReplayRevokes(t *testing.T) {
	t.Run("valid replay revokes", func(t *testing.T) {
		e := newEnv(t, false, quietLog)
		code := e.code("read")
		at, rt := e.redeem(code)
		fam := e.family(at)
		wantTokenError(t, e.token(codeForm(code), basic("conf", e.secret)), 400, "invalid_grant")
		if !e.revoked(fam) {
			t.Fatalf("family not revoked after a valid replay")
		}
		if _, err := e.srv.CheckToken(t.Context(), at); err == nil {
			t.Errorf("access token of the replayed code still valid")
		}
		wantTokenError(t, e.refreshConf(rt, ""), 400, "invalid_grant")
		if _, w := e.resource(&fakeReq{hdr: bearer(at)}); w == nil || w.status != 401 {
			t.Errorf("resource accepted the revoked token")
		}
	})
	invalid := []struct {
		name string
		form url.Values
		hdr  func(e *env) http.Header
		code string
		st   int
	}{
		{"wrong verifier", url.Values{"code_verifier": {strings.Repeat("B", 43)}}, nil, "invalid_grant", 400},
		{"no verifier", url.Values{"code_verifier": {""}}, nil, "invalid_grant", 400},
		{"wrong redirect", url.Values{"redirect_uri": {"https://evil.example/cb"}}, nil, "invalid_grant", 400},
		{"wrong client secret", nil, func(e *env) http.Header { return basic("conf", "nope") }, "invalid_client", 401},
		{"no client auth", url.Values{"client_id": {"conf"}}, func(*env) http.Header { return nil }, "invalid_client", 400},
		{"another client", nil, func(*env) http.Header { return basic("conf2", strings.Repeat("2", 40)) }, "invalid_grant", 400},
		{"public client id", url.Values{"client_id": {"pub"}}, func(*env) http.Header { return nil }, "invalid_grant", 400},
	}
	for _, c := range invalid {
		t.Run("invalid replay does not revoke: "+c.name, func(t *testing.T) {
			e := newEnv(t, false, quietLog)
			e.addClient(core.ClientSpec{ID: "conf2", RedirectURIs: []string{confCB}, Secret: strings.Repeat("2", 40)})
			code := e.code("read")
			at, rt := e.redeem(code)
			fam := e.family(at)
			f := codeForm(code)
			for k, v := range c.form {
				f[k] = v
			}
			hdr := basic("conf", e.secret)
			if c.hdr != nil {
				hdr = c.hdr(e)
			}
			wantTokenError(t, e.token(f, hdr), c.st, c.code)
			if e.revoked(fam) {
				t.Fatalf("an invalid replay revoked the legitimate tokens")
			}
			if _, err := e.srv.CheckToken(t.Context(), at); err != nil {
				t.Errorf("access token lost: %v", err)
			}
			if w := e.refreshConf(rt, ""); w.status != 200 {
				t.Errorf("refresh token lost: %d %s", w.status, w.body)
			}
		})
	}
}

func TestR32_RedirectURIAtTokenEndpoint(t *testing.T) {
	e := newEnv(t, false)
	// Sent at authorize: required and identical.
	for _, r := range []string{"", confCB + "/", "https://CLIENT.example.com/cb", confCB + "?", "https://client.example.com/%63b"} {
		f := codeForm(e.code(""))
		f.Set("redirect_uri", r)
		wantTokenError(t, e.token(f, basic("conf", e.secret)), 400, "invalid_grant")
	}
	e.redeem(e.code(""))
	// Loopback with a port: the token request repeats the port.
	pq := func(redirect string) string {
		return wantCodeRedirect(t, e.codeFor(codeQuery("pub", redirect, "", "s")), redirect, "s").Get("code")
	}
	for _, c := range []struct {
		auth, token string
		ok          bool
	}{
		{"http://127.0.0.1:5555/cb", "http://127.0.0.1:5555/cb", true},
		{"http://127.0.0.1:5555/cb", "http://127.0.0.1/cb", false},
		{"http://127.0.0.1:5555/cb", "http://127.0.0.1:5556/cb", false},
		{"http://127.0.0.1:5555/cb", "", false},
	} {
		f := url.Values{"grant_type": {"authorization_code"}, "client_id": {"pub"}, "code": {pq(c.auth)}, "code_verifier": {verifier}}
		if c.token != "" {
			f.Set("redirect_uri", c.token)
		}
		w := e.token(f, nil)
		if c.ok {
			if w.status != 200 {
				t.Errorf("%s: %d %s", c.token, w.status, w.body)
			}
			continue
		}
		wantTokenError(t, w, 400, "invalid_grant")
	}
	// Omitted at authorize (one registered URI): the token request may
	// omit it or send the registered one, nothing else.
	q := codeQuery("conf", "", "", "s")
	f := codeForm(wantCodeRedirect(t, e.codeFor(q), confCB, "s").Get("code"))
	f.Set("redirect_uri", "https://client.example.com/other")
	wantTokenError(t, e.token(f, basic("conf", e.secret)), 400, "invalid_grant")
}

func TestR33_TokenResponseHeaders(t *testing.T) {
	e := newEnv(t, false)
	check := func(name string, w *fakeResp, wantRefresh bool, scope string) map[string]any {
		t.Helper()
		if w.status != 200 {
			t.Fatalf("%s: %d %s", name, w.status, w.body)
		}
		wantJSONHeaders(t, w)
		m := w.json(t)
		if s, _ := m["access_token"].(string); s == "" {
			t.Errorf("%s: no access_token", name)
		}
		if m["token_type"] != "Bearer" || m["expires_in"] != float64(3600) || m["scope"] != scope {
			t.Errorf("%s: %s", name, w.body)
		}
		if _, ok := m["refresh_token"]; ok != wantRefresh {
			t.Errorf("%s: refresh_token present=%v", name, ok)
		}
		for k := range m {
			switch k {
			case "access_token", "token_type", "expires_in", "refresh_token", "scope":
			default:
				t.Errorf("%s: unexpected field %q", name, k)
			}
		}
		return m
	}
	m := check("code", e.token(codeForm(e.code("read write")), basic("conf", e.secret)), true, "read write")
	m = check("refresh", e.refreshConf(m["refresh_token"].(string), "read"), true, "read")
	check("refresh again", e.refreshConf(m["refresh_token"].(string), ""), true, "read write")
	check("client_credentials", e.token(url.Values{"grant_type": {"client_credentials"}, "scope": {"admin"}}, basic("conf", e.secret)), false, "admin")
}

func TestR34_ErrorBodies(t *testing.T) {
	e := newEnv(t, false, quietLog)
	code := e.code("")
	cases := []struct {
		name   string
		form   url.Values
		hdr    http.Header
		status int
		code   string
	}{
		{"no grant_type", url.Values{}, basic("conf", e.secret), 400, "invalid_request"},
		{"unknown grant_type", url.Values{"grant_type": {"urn:x\"<>"}}, basic("conf", e.secret), 400, "unsupported_grant_type"},
		{"no code", url.Values{"grant_type": {"authorization_code"}}, basic("conf", e.secret), 400, "invalid_request"},
		{"bad code", url.Values{"grant_type": {"authorization_code"}, "code": {"ac2.x.\"<script>"}}, basic("conf", e.secret), 400, "invalid_grant"},
		{"bad refresh", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"\\\"é"}}, basic("conf", e.secret), 400, "invalid_grant"},
		{"bad scope", url.Values{"grant_type": {"client_credentials"}, "scope": {"\"evil\\"}}, basic("conf", e.secret), 400, "invalid_scope"},
		{"unknown scope", url.Values{"grant_type": {"client_credentials"}, "scope": {"<b>x</b>"}}, basic("conf", e.secret), 400, "invalid_scope"},
		{"bad client", url.Values{"grant_type": {"client_credentials"}}, basic("\"é\\", "x"), 401, "invalid_client"},
		{"not allowed grant", url.Values{"grant_type": {"client_credentials"}, "client_id": {"pub"}}, nil, 400, "invalid_client"},
		{"code", codeForm(code), basic("conf", e.secret+"x"), 401, "invalid_client"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := e.token(c.form, c.hdr)
			m := wantTokenError(t, w, c.status, c.code)
			d, _ := m["error_description"].(string)
			for _, bad := range []string{"\"", "\\", "é"} {
				if strings.Contains(d, bad) {
					t.Errorf("error_description %q reflects %q", d, bad)
				}
			}
		})
	}
}

// errStorageFailure is a driver-like error whose text must never reach the
// wire.
var errStorageFailure = errors.New(`pq: relation "oauth_secret_table" does not exist at SELECT secret_hash FROM clients`)

func TestR34_StorageFailureNeverIssues(t *testing.T) {
	for _, method := range []string{"GetClient", "RedeemCode", "RotateRefreshToken"} {
		for _, transient := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s transient=%v", method, transient), func(t *testing.T) {
				e, h := newHookedEnv(t, false, quietLog)
				code := e.code("read")
				_, rt := e.redeem(e.code("read"))
				before := e.refreshCount()
				err := errStorageFailure
				if transient {
					err = fmt.Errorf("busy: %w (%w)", core.ErrUnavailable, errStorageFailure)
				}
				h.failing(method, err)
				var w *fakeResp
				if method == "RotateRefreshToken" {
					w = e.refreshConf(rt, "")
				} else {
					w = e.token(codeForm(code), basic("conf", e.secret))
				}
				status, ecode := 500, "server_error"
				if transient {
					status, ecode = 503, "temporarily_unavailable"
				}
				wantTokenError(t, w, status, ecode)
				if transient && w.hdr.Get("Retry-After") == "" {
					t.Errorf("503 without Retry-After")
				}
				if strings.Contains(string(w.body), "pq:") || strings.Contains(string(w.body), "SELECT") || strings.Contains(string(w.body), "busy") {
					t.Errorf("internal error on the wire: %s", w.body)
				}
				if e.refreshCount() != before {
					t.Errorf("a failed request stored a refresh token")
				}
				// Once the store is back, the code / refresh token still works.
				h.failing(method, nil)
				if method == "RotateRefreshToken" {
					if w := e.refreshConf(rt, ""); w.status != 200 {
						t.Errorf("refresh after recovery: %d %s", w.status, w.body)
					}
				} else {
					e.redeem(code)
				}
			})
		}
	}
}

func TestR35_UnsupportedGrantTypes(t *testing.T) {
	e := newEnv(t, false)
	for _, gt := range []string{"password", "implicit", "assertion", "none", "urn:ietf:params:oauth:grant-type:jwt-bearer", "urn:ietf:params:oauth:grant-type:device_code", "token", "Authorization_Code", "refresh_token "} {
		form := url.Values{"grant_type": {gt}, "username": {"alice"}, "password": {"pw"}, "assertion": {"x"}}
		wantTokenError(t, e.token(form, basic("conf", e.secret)), 400, "unsupported_grant_type")
	}
	if e.refreshCount() != 0 {
		t.Fatalf("token issued")
	}
	gts, _ := metadata(t, e)["grant_types_supported"].([]any)
	for _, g := range gts {
		if g == "password" || g == "implicit" {
			t.Errorf("metadata advertises %v", g)
		}
	}
}

func TestR36_RefreshBoundToClientAndScope(t *testing.T) {
	e := newEnv(t, false, quietLog)
	sec2 := strings.Repeat("2", 40)
	e.addClient(core.ClientSpec{ID: "conf2", RedirectURIs: []string{confCB}, Secret: sec2})
	_, rt := e.tokens("read write")
	sig := rtSig(t, rt)
	// Another client: refused, the token survives, nothing revoked.
	w := e.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, basic("conf2", sec2))
	wantTokenError(t, w, 400, "invalid_grant")
	// The owner without authentication.
	wantTokenError(t, e.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {"conf"}}, nil), 400, "invalid_client")
	wantTokenError(t, e.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, basic("conf", "bad")), 401, "invalid_client")
	// Wider scopes.
	for _, s := range []string{"admin", "read admin", "read write admin", "read  write", "read\twrite"} {
		wantTokenError(t, e.refreshConf(rt, s), 400, "invalid_scope")
	}
	stored, err := e.store.GetRefreshToken(t.Context(), sig)
	if err != nil || stored.RotatedAt != nil || stored.Scope != "read write" {
		t.Fatalf("refused requests changed the token: %+v %v", stored, err)
	}
	if e.revoked(stored.FamilyID) {
		t.Fatalf("refused requests revoked the family")
	}
	// Narrowing is allowed; the rotated token keeps the full scope.
	w = e.refreshConf(rt, "write")
	if w.status != 200 || w.json(t)["scope"] != "write" {
		t.Fatalf("narrowing: %d %s", w.status, w.body)
	}
	rt2 := w.json(t)["refresh_token"].(string)
	st2, err := e.store.GetRefreshToken(t.Context(), rtSig(t, rt2))
	if err != nil || st2.Scope != "read write" || st2.FamilyID != stored.FamilyID || st2.ClientID != "conf" {
		t.Fatalf("rotated token: %+v %v", st2, err)
	}
	if old, _ := e.store.GetRefreshToken(t.Context(), sig); old.RotatedAt == nil {
		t.Errorf("old token not marked rotated")
	}
	// Omitted scope means the original.
	w = e.refreshConf(rt2, "")
	if w.status != 200 || w.json(t)["scope"] != "read write" {
		t.Fatalf("omitted scope: %d %s", w.status, w.body)
	}
	at := w.json(t)["access_token"].(string)
	if info, _ := e.srv.CheckToken(t.Context(), at); info == nil || info.Scope != "read write" {
		t.Errorf("access token scope %+v", info)
	}
}

func TestR37_RefreshRotationAndReuse(t *testing.T) {
	for _, public := range []bool{false, true} {
		t.Run(fmt.Sprintf("public=%v", public), func(t *testing.T) {
			e := newEnv(t, false, quietLog)
			var at, rt string
			refresh := func(tok string) *fakeResp {
				if public {
					return e.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok}, "client_id": {"pub"}}, nil)
				}
				return e.refreshConf(tok, "")
			}
			if public {
				code := wantCodeRedirect(t, e.codeFor(codeQuery("pub", publicCB, "read", "s")), publicCB, "s").Get("code")
				w := e.token(url.Values{"grant_type": {"authorization_code"}, "client_id": {"pub"}, "code": {code}, "redirect_uri": {publicCB}, "code_verifier": {verifier}}, nil)
				m := w.json(t)
				at, rt = m["access_token"].(string), m["refresh_token"].(string)
			} else {
				at, rt = e.tokens("read")
			}
			fam := e.family(at)
			w := refresh(rt)
			if w.status != 200 {
				t.Fatalf("refresh: %d %s", w.status, w.body)
			}
			rt2 := w.json(t)["refresh_token"].(string)
			at2 := w.json(t)["access_token"].(string)
			if rt2 == rt {
				t.Fatalf("refresh token not rotated")
			}
			// The rotated-out token comes back: the family dies.
			wantTokenError(t, refresh(rt), 400, "invalid_grant")
			if !e.revoked(fam) {
				t.Fatalf("family not revoked on reuse")
			}
			wantTokenError(t, refresh(rt2), 400, "invalid_grant")
			for _, a := range []string{at, at2} {
				if _, err := e.srv.CheckToken(t.Context(), a); err == nil {
					t.Errorf("access token survived reuse detection")
				}
			}
		})
	}
	t.Run("stale token from another client does not revoke", func(t *testing.T) {
		e := newEnv(t, false, quietLog)
		sec2 := strings.Repeat("2", 40)
		e.addClient(core.ClientSpec{ID: "conf2", RedirectURIs: []string{confCB}, Secret: sec2})
		at, rt := e.tokens("read")
		w := e.refreshConf(rt, "")
		rt2 := w.json(t)["refresh_token"].(string)
		wantTokenError(t, e.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, basic("conf2", sec2)), 400, "invalid_grant")
		if e.revoked(e.family(at)) {
			t.Fatalf("another client's presentation revoked the family")
		}
		if w := e.refreshConf(rt2, ""); w.status != 200 {
			t.Errorf("current token lost: %d", w.status)
		}
	})
}

func TestR38_RefreshLifetimeAndInactivity(t *testing.T) {
	e := newEnv(t, false, func(c *core.Config) { c.Lifetimes.RefreshToken = 48 * time.Hour })
	_, rt := e.tokens("read")
	// Used within the window, it rotates and the window restarts.
	e.now = e.now.Add(47 * time.Hour)
	w := e.refreshConf(rt, "")
	if w.status != 200 {
		t.Fatalf("refresh: %d", w.status)
	}
	rt2 := w.json(t)["refresh_token"].(string)
	st, _ := e.store.GetRefreshToken(t.Context(), rtSig(t, rt2))
	if st == nil || !st.ExpiresAt.Equal(e.now.Add(48*time.Hour)) {
		t.Fatalf("rotated token expiry %+v", st)
	}
	e.now = e.now.Add(47 * time.Hour)
	w = e.refreshConf(rt2, "")
	if w.status != 200 {
		t.Fatalf("refresh: %d", w.status)
	}
	// Left unused for the whole window, it expires.
	rt3 := w.json(t)["refresh_token"].(string)
	e.now = e.now.Add(48 * time.Hour)
	wantTokenError(t, e.refreshConf(rt3, ""), 400, "invalid_grant")
	// Bound to the consented scope: see TestR36; revocable: see TestR46.
}

func TestR39_TokensCannotBeForged(t *testing.T) {
	e := newEnv(t, false, quietLog)
	code := e.code("read")
	at, rt := e.redeem(e.code("read"))
	other := newEnv(t, false, func(c *core.Config) {
		c.Keys.CryptKey = []byte("another crypt key, 32 bytes long")
		c.Keys.SignKey = []byte("another sign key, 32 bytes long!")
	})
	foreignAT, foreignRT := other.tokens("read")
	foreignCode := other.code("read")

	// Refresh tokens: modified, foreign, of another type.
	flipped := []byte(rt)
	flipped[len(flipped)-3] ^= 0x01
	for name, tok := range map[string]string{
		"modified": string(flipped), "foreign key": foreignRT, "access token": at, "code": code,
		"kid swapped":    strings.Replace(rt, strings.Split(rt, ".")[1], strings.Split(foreignRT, ".")[1], 1),
		"prefix swapped": "ac2" + rt[3:], "truncated": rt[:len(rt)-1], "empty random": "rt2." + strings.Split(rt, ".")[1] + ".",
	} {
		t.Run(name, func(t *testing.T) { wantTokenError(t, e.refreshConf(tok, ""), 400, "invalid_grant") })
	}
	// Codes: modified, foreign, another type.
	cflip := []byte(code)
	cflip[len(cflip)-3] ^= 0x01
	for _, c := range []string{string(cflip), foreignCode, rt, "ac2" + rt[3:], code + "A"} {
		wantTokenError(t, e.token(codeForm(c), basic("conf", e.secret)), 400, "invalid_grant")
	}
	if e.refreshCount() != 1 {
		t.Fatalf("forged input issued a token (%d refresh tokens)", e.refreshCount())
	}
	// The untouched code still works (a forged attempt did not burn it).
	e.redeem(code)
	// Access tokens: foreign, another type (details in TestR53).
	for _, tok := range []string{foreignAT, rt, code, "at2" + rt[3:]} {
		if _, err := e.srv.CheckToken(t.Context(), tok); err == nil {
			t.Errorf("CheckToken accepted %.20s…", tok)
		}
	}
	// A pending-request handle is not an access token.
	page := e.authorize(codeQuery("conf", confCB, "", "s"))
	if _, err := e.srv.CheckToken(t.Context(), hidden(t, page.body).Get(core.FieldRequest)); err == nil {
		t.Errorf("a login handle passed as an access token")
	}
}

func TestR40_AccessTokensShortLivedAudienceRestricted(t *testing.T) {
	e := newEnv(t, false, func(c *core.Config) { c.Lifetimes.AccessToken = 5 * time.Minute })
	w := e.token(codeForm(e.code("read")), basic("conf", e.secret))
	m := w.json(t)
	if m["expires_in"] != float64(300) {
		t.Errorf("expires_in=%v", m["expires_in"])
	}
	at := m["access_token"].(string)
	info, err := e.srv.CheckToken(t.Context(), at)
	if err != nil || info.Audience != issuer || !info.ExpiresAt.Equal(e.now.Add(5*time.Minute)) {
		t.Fatalf("info %+v %v", info, err)
	}
	e.now = e.now.Add(5*time.Minute - time.Second)
	if _, err := e.srv.CheckToken(t.Context(), at); err != nil {
		t.Errorf("token refused before expiry: %v", err)
	}
	e.now = e.now.Add(time.Second)
	if _, err := e.srv.CheckToken(t.Context(), at); err == nil {
		t.Errorf("token accepted at expiry")
	}
	// Default lifetime one hour.
	d := newEnv(t, false)
	if m := d.token(codeForm(d.code("")), basic("conf", d.secret)).json(t); m["expires_in"] != float64(3600) {
		t.Errorf("default expires_in=%v", m["expires_in"])
	}
	// Another audience (same keys) does not accept it.
	at2, _ := d.tokens("read")
	d.rebuild(false, d.store, func(c *core.Config) { c.Audience = "https://api.other.example" })
	if _, err := d.srv.CheckToken(t.Context(), at2); err == nil {
		t.Errorf("token accepted by a server with another audience")
	}
	// Nor another issuer sharing the keys by mistake.
	d.rebuild(false, d.store, func(c *core.Config) { c.Issuer = "https://as2.example.com"; c.Audience = issuer })
	if _, err := d.srv.CheckToken(t.Context(), at2); err == nil {
		t.Errorf("token accepted by another issuer")
	}
}

func TestR41_ClientCredentialsConfidentialOnly(t *testing.T) {
	e := newEnv(t, false)
	w := e.token(url.Values{"grant_type": {"client_credentials"}, "client_id": {"pub"}}, nil)
	wantTokenError(t, w, 400, "invalid_client")
	w = e.token(url.Values{"grant_type": {"client_credentials"}}, basic("pub", ""))
	if w.status == 200 {
		t.Fatalf("public client got client_credentials via Basic")
	}
	// A confidential client without the grant.
	sec := strings.Repeat("n", 40)
	e.addClient(core.ClientSpec{ID: "nocc", RedirectURIs: []string{confCB}, Secret: sec})
	wantTokenError(t, e.token(url.Values{"grant_type": {"client_credentials"}}, basic("nocc", sec)), 400, "unauthorized_client")
	// Registration refuses it for public clients.
	if _, _, err := core.NewClient(core.ClientSpec{ID: "p", RedirectURIs: []string{publicCB}, Public: true, GrantTypes: []string{"client_credentials"}}); err == nil {
		t.Errorf("public client registered with client_credentials")
	}
	// The confidential client gets an access token and no refresh token.
	w = e.token(url.Values{"grant_type": {"client_credentials"}}, basic("conf", e.secret))
	if w.status != 200 {
		t.Fatalf("client_credentials: %d %s", w.status, w.body)
	}
	m := w.json(t)
	if _, ok := m["refresh_token"]; ok {
		t.Errorf("client_credentials issued a refresh token")
	}
	info, err := e.srv.CheckToken(context.Background(), m["access_token"].(string))
	if err != nil || info.ClientID != "conf" || info.UserID != "" {
		t.Errorf("info %+v %v", info, err)
	}
}

// client_credentials tokens say so, and introspection names no user.
func TestClientCredentialsTokensAreMarked(t *testing.T) {
	e := newEnv(t, false)
	w := e.token(url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}, basic("conf", e.secret))
	if w.status != 200 {
		t.Fatalf("token: %d %s", w.status, w.body)
	}
	at := w.json(t)["access_token"].(string)
	info, err := e.srv.CheckToken(t.Context(), at)
	// No user: UserID stays empty, so a handler taking UserID as "the
	// user" cannot mistake the client for one; Subject names the client.
	if err != nil || !info.ClientCredentials || info.UserID != "" || info.Subject() != "conf" {
		t.Fatalf("info %+v %v", info, err)
	}
	m := e.post("/oauth2/introspect", url.Values{"token": {at}}, basic("conf", e.secret)).json(t)
	if m["active"] != true || m["sub"] != "conf" {
		t.Fatalf("introspection %v", m)
	}
	if _, ok := m["username"]; ok {
		t.Errorf("client_credentials token introspected with a username: %v", m)
	}
	// A user's token is not marked.
	uat, _ := e.tokens("read")
	if info, _ := e.srv.CheckToken(t.Context(), uat); info == nil || info.ClientCredentials || info.UserID != "alice" || info.Subject() != "alice" {
		t.Errorf("user token marked as client_credentials: %+v", info)
	}
}

// A client whose id is a user's name gets a token that names no user: the
// resource check hands the app an empty UserID, never "alice".
func TestClientCredentialsClientNamedLikeAUser(t *testing.T) {
	e := newEnv(t, false)
	sec := e.addClient(core.ClientSpec{ID: "alice", GrantTypes: []string{"client_credentials"}})
	w := e.token(url.Values{"grant_type": {"client_credentials"}}, basic("alice", sec))
	if w.status != 200 {
		t.Fatalf("token: %d %s", w.status, w.body)
	}
	info, rw := e.resource(&fakeReq{hdr: bearer(w.json(t)["access_token"].(string))})
	if info == nil {
		t.Fatalf("refused: %v", rw)
	}
	if info.UserID != "" || info.ClientID != "alice" || !info.ClientCredentials {
		t.Errorf("client_credentials token names a user: %+v", info)
	}
}

// Codes and refresh tokens carry a MAC of their random part: a forged or
// altered one is refused without a storage lookup (SECURITY.md §4.2).
func TestForgedOpaqueTokensNeverReachStorage(t *testing.T) {
	e := newEnv(t, false)
	cs := &countingStore{Store: e.store}
	srv, err := core.New(e.srv.Config(), cs, &testAuth{srv: &e.srv})
	if err != nil {
		t.Fatal(err)
	}
	_, rt := e.tokens("read")
	code := e.code("read")
	e.srv = srv
	flip := func(tok string, i int) string {
		b := []byte(tok)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	for _, tok := range []string{flip(rt, len(rt)-30), flip(rt, len(rt)-5)} {
		wantTokenError(t, e.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok}}, basic("conf", e.secret)), 400, "invalid_grant")
	}
	for _, c := range []string{flip(code, len(code)-30), flip(code, len(code)-5)} {
		wantTokenError(t, e.token(url.Values{"grant_type": {"authorization_code"}, "code": {c}, "redirect_uri": {confCB}, "code_verifier": {verifier}}, basic("conf", e.secret)), 400, "invalid_grant")
	}
	if cs.lookups != 0 {
		t.Fatalf("%d forged tokens reached storage", cs.lookups)
	}
	// The genuine ones still work, through storage.
	if w := e.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, basic("conf", e.secret)); w.status != 200 {
		t.Fatalf("genuine refresh: %d %s", w.status, w.body)
	}
	if cs.lookups != 1 {
		t.Fatalf("lookups = %d, want 1", cs.lookups)
	}
}

// The client cache is off by default; with a TTL, lookups are served from
// it until the TTL or ForgetClient.
func TestClientCache(t *testing.T) {
	for _, ttl := range []time.Duration{0, 10 * time.Second} {
		e := newEnv(t, false, func(c *core.Config) { c.Caches.Client = ttl })
		cs := &clientCountingStore{Store: e.store}
		srv, err := core.New(e.srv.Config(), cs, &testAuth{srv: &e.srv})
		if err != nil {
			t.Fatal(err)
		}
		e.srv = srv
		cc := url.Values{"grant_type": {"client_credentials"}}
		for range 3 {
			if w := e.token(cc, basic("conf", e.secret)); w.status != 200 {
				t.Fatalf("ttl %v: %d %s", ttl, w.status, w.body)
			}
		}
		want := 3
		if ttl > 0 {
			want = 1
		}
		if cs.lookups != want {
			t.Fatalf("ttl %v: %d lookups, want %d", ttl, cs.lookups, want)
		}
		if ttl == 0 {
			continue
		}
		// A cached client is a copy: changing it changes nothing.
		e.store.RemoveClient("conf")
		if w := e.token(cc, basic("conf", e.secret)); w.status != 200 {
			t.Fatalf("cached client not served: %d", w.status)
		}
		e.srv.ForgetClient("conf")
		wantTokenError(t, e.token(cc, basic("conf", e.secret)), 401, "invalid_client")
		// Past the TTL the store is asked again.
		before := cs.lookups
		e.now = e.now.Add(ttl + time.Second)
		e.token(cc, basic("conf", e.secret))
		if cs.lookups == before {
			t.Fatalf("expired cache entry served")
		}
	}
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

// countingStore counts the lookups that reach storage.
type countingStore struct {
	*memstore.Store
	lookups int
}

func (c *countingStore) RotateRefreshToken(ctx context.Context, sig string, now time.Time, issue func(*core.RefreshToken) (*core.RefreshToken, error)) (*core.RefreshToken, error) {
	c.lookups++
	return c.Store.RotateRefreshToken(ctx, sig, now, issue)
}

func (c *countingStore) RedeemCode(ctx context.Context, sig string, now time.Time, issue func(*core.Grant) (*core.RefreshToken, error)) (*core.Grant, error) {
	c.lookups++
	return c.Store.RedeemCode(ctx, sig, now, issue)
}

type clientCountingStore struct {
	*memstore.Store
	lookups int
}

func (c *clientCountingStore) GetClient(ctx context.Context, id string) (*core.Client, error) {
	c.lookups++
	return c.Store.GetClient(ctx, id)
}
