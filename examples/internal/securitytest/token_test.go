package securitytest

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oauth2kit/oauth2kit/core"
	"github.com/oauth2kit/oauth2kit/examples/internal/demo"
)

func basicHdr(id, sec string) http.Header {
	return http.Header{"Authorization": {core.EncodeBasic(id, sec)}}
}

func (e *env) basic(id string) http.Header { return basicHdr(id, e.secret(id)) }

// wantUnused checks that a code was neither consumed nor issued from.
func (e *env) wantUnused(t testing.TB, code string) {
	t.Helper()
	g := e.grantOfCode(code)
	if g == nil {
		t.Fatal("no row for the code")
	}
	if g.UsedAt != nil || len(e.familyRows(g.GrantID)) != 0 {
		t.Errorf("the code was consumed (used_at %v) or issued from", g.UsedAt)
	}
}

// wantBurned checks that a code was consumed without issuing anything.
func (e *env) wantBurned(t testing.TB, code string) {
	t.Helper()
	g := e.grantOfCode(code)
	if g == nil || g.UsedAt == nil {
		t.Errorf("the code was not consumed: %+v", g)
		return
	}
	if rows := e.familyRows(g.GrantID); len(rows) != 0 {
		t.Errorf("%d refresh tokens issued from a refused code", len(rows))
	}
}

// breakTable renames a table away, so every statement on it fails as a
// real storage failure would; the returned function puts it back.
func (e *env) breakTable(t testing.TB, name string) func() {
	t.Helper()
	if err := e.db.Exec("ALTER TABLE " + name + " RENAME TO " + name + "_broken").Error; err != nil {
		t.Fatalf("breaking %s: %v", name, err)
	}
	done := false
	restore := func() {
		if done {
			return
		}
		done = true
		if err := e.db.Exec("ALTER TABLE " + name + "_broken RENAME TO " + name).Error; err != nil {
			t.Fatalf("restoring %s: %v", name, err)
		}
	}
	t.Cleanup(restore)
	return restore
}

// wantNoInternals: no driver or SQL text on the wire.
func wantNoInternals(t testing.TB, r *response) {
	t.Helper()
	low := strings.ToLower(string(r.body))
	for _, s := range []string{"oauth2_", "table", "sql", "relation", "gorm", "exist"} {
		if strings.Contains(low, s) {
			t.Errorf("internal detail %q on the wire: %s", s, r.body)
		}
	}
}

func TestR22_TokenEndpointPostFormOnly(t *testing.T) {
	t.Parallel()
	e := newEnv(t, setup{})
	ac := e.newCode(confID, "", "read")
	form := e.redeemForm(ac).Encode()
	for _, path := range []string{"/oauth2/token", "/oauth2/revoke", "/oauth2/introspect"} {
		for _, m := range []string{"GET", "PUT", "DELETE", "PATCH"} {
			r := e.do(e.api, m, path+"?"+form, form, http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Authorization": e.basic(confID)["Authorization"]})
			e.wantTokenError(t, r, 405, "invalid_request")
			if r.header.Get("Allow") != "POST" {
				t.Errorf("%s %s: Allow %q", m, path, r.header.Get("Allow"))
			}
		}
		for _, ct := range []string{"", "application/json", "text/plain", "multipart/form-data; boundary=x",
			"application/x-www-form-urlencoded; charset=iso-8859-1", "application/x-www-form-urlencodedx", "application/x-www-form-urlencoded;;", "form"} {
			hdr := e.basic(confID)
			if ct != "" {
				hdr.Set("Content-Type", ct)
			}
			body := form
			if ct == "application/json" {
				body = `{"grant_type":"authorization_code","code":"` + ac.code + `"}`
			}
			e.wantTokenError(t, e.do(e.api, "POST", path, body, hdr), 400, "invalid_request")
		}
	}
	// None of that touched the code; a proper request (UTF-8 named or not)
	// redeems it.
	e.wantUnused(t, ac.code)
	hdr := e.basic(confID)
	hdr.Set("Content-Type", "application/x-www-form-urlencoded; charset=UTF-8")
	wantTokenResponse(t, e.do(e.api, "POST", "/oauth2/token", form, hdr), true)
}

func TestR23_ClientAuthenticationFailures(t *testing.T) {
	t.Parallel()
	e := newEnv(t, setup{})
	ac := e.newCode(confID, "", "read")
	form := e.redeemForm(ac)
	withID := func(id, sec string) string {
		f := url.Values{}
		for k, v := range form {
			f[k] = v
		}
		f.Set("client_id", id)
		if sec != "" {
			f.Set("client_secret", sec)
		}
		return f.Encode()
	}
	cases := []struct {
		name   string
		body   string
		hdr    http.Header
		status int
	}{
		{"Basic, wrong secret", form.Encode(), basicHdr(confID, "wrong"), 401},
		{"Basic, unknown client", form.Encode(), basicHdr("nobody", "x"), 401},
		{"Basic, not base64", form.Encode(), http.Header{"Authorization": {"Basic !!!"}}, 401},
		{"Basic, no colon", form.Encode(), http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte(confID))}}, 401},
		{"Basic, empty secret", form.Encode(), basicHdr(confID, ""), 401},
		{"another scheme", form.Encode(), http.Header{"Authorization": {"Bearer " + e.secret(confID)}}, 401},
		{"body, wrong secret", withID(confID, "wrong"), nil, 400},
		{"body, unknown client", withID("nobody", "x"), nil, 400},
		{"body, confidential without secret", withID(confID, ""), nil, 400},
		{"no credentials", form.Encode(), nil, 401},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e.wantTokenError(t, e.tokenRaw(c.body, c.hdr), c.status, "invalid_client")
			e.wantUnused(t, ac.code)
		})
	}
	// Authentication runs before the code is looked at: the code is intact.
	wantTokenResponse(t, e.tokenRaw(withID(confID, e.secret(confID)), nil), true)
}

func TestR24_OneAuthenticationMethod(t *testing.T) {
	t.Parallel()
	e := newEnv(t, setup{})
	ac := e.newCode(confID, "", "read")
	form := e.redeemForm(ac).Encode()
	sec := e.secret(confID)
	for name, c := range map[string]struct {
		body string
		hdr  http.Header
	}{
		"Basic and client_secret":       {form + "&client_secret=" + url.QueryEscape(sec), e.basic(confID)},
		"Basic and another client_id":   {form + "&client_id=" + otherID, e.basic(confID)},
		"two Authorization headers":     {form, http.Header{"Authorization": {core.EncodeBasic(confID, sec), core.EncodeBasic(confID, sec)}}},
		"Basic for one, body for other": {form + "&client_id=" + otherID + "&client_secret=" + url.QueryEscape(e.secret(otherID)), e.basic(confID)},
	} {
		t.Run(name, func(t *testing.T) {
			e.wantTokenError(t, e.tokenRaw(c.body, c.hdr), 400, "invalid_request")
			e.wantUnused(t, ac.code)
		})
	}
	// Basic with the same client_id in the body is one method.
	wantTokenResponse(t, e.tokenRaw(form+"&client_id="+confID, e.basic(confID)), true)
}

func TestR25_NoSecretInURI(t *testing.T) {
	t.Parallel()
	e := newEnv(t, setup{})
	ac := e.newCode(confID, "", "read")
	ts := e.tokens(confID, "", "read")
	sec := url.QueryEscape(e.secret(confID))
	body := e.redeemForm(ac).Encode()
	for _, c := range []struct {
		path, body string
		hdr        http.Header
	}{
		{"/oauth2/token", body, e.basic(confID)},
		{"/oauth2/token", body + "&client_id=" + confID + "&client_secret=" + sec, nil},
		{"/oauth2/token", body + "&client_id=" + confID, nil},
		{"/oauth2/revoke", "token=" + ts.rt, e.basic(confID)},
		{"/oauth2/introspect", "token=" + ts.at, e.basic(confID)},
	} {
		r := e.post(e.api, c.path+"?client_secret="+sec, c.body, c.hdr)
		e.wantTokenError(t, r, 400, "invalid_request")
	}
	e.wantUnused(t, ac.code)
	if e.isRevoked(ts.family) {
		t.Error("revoked although the request was refused")
	}
	wantMe(t, e.resource("/api/me", ts.at), demo.DemoUser, confID, "read")
}

func TestR26_BasicCredentialsFormDecoded(t *testing.T) {
	t.Parallel()
	e := newEnv(t, setup{})
	cc := []string{core.GrantClientCredentials}
	id := "app id/+&=?#%"
	sec := "se:cr et+/&=?#%" + strings.Repeat("x", 30)
	e.addClient(core.ClientSpec{ID: id, Name: "odd", Secret: sec, GrantTypes: cc})
	// A naive decoder (unescape first, split at ':' after) would read
	// "my%3Aclient:rest" as client "my" with secret "client:rest".
	rest := strings.Repeat("r", 40)
	e.addClient(core.ClientSpec{ID: "my", Name: "my", Secret: "client:" + rest, GrantTypes: cc})
	ccForm := "grant_type=client_credentials"
	raw := func(s string) http.Header {
		return http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte(s))}}
	}
	accepted := map[string]http.Header{
		"form-encoded":          basicHdr(id, sec),
		"space as %20":          raw(strings.ReplaceAll(url.QueryEscape(id), "+", "%20") + ":" + strings.ReplaceAll(url.QueryEscape(sec), "+", "%20")),
		"raw colon in secret":   raw(url.QueryEscape(id) + ":" + strings.Replace(url.QueryEscape(sec), "%3A", ":", 1)),
		"lower-case hex escape": raw(strings.ToLower(url.QueryEscape(id)) + ":" + url.QueryEscape(sec)),
	}
	for name, h := range accepted {
		t.Run("accepted/"+name, func(t *testing.T) {
			r := e.tokenRaw(ccForm, h)
			m := wantTokenResponse(t, r, false)
			if got := e.introspectAs(confID, m["access_token"].(string))["client_id"]; got != id {
				t.Errorf("token issued to %v", got)
			}
		})
	}
	refused := map[string]http.Header{
		"not encoded":              raw(id + ":" + sec),
		"plus for a plus":          raw(strings.ReplaceAll(url.QueryEscape(id), "%2B", "+") + ":" + url.QueryEscape(sec)),
		"malformed escape":         raw("app%zzid:" + url.QueryEscape(sec)),
		"truncated escape":         raw(url.QueryEscape(id) + ":" + url.QueryEscape(sec) + "%2"),
		"my%3Aclient is my:client": raw("my%3Aclient:" + rest),
	}
	for name, h := range refused {
		t.Run("refused/"+name, func(t *testing.T) {
			e.wantTokenError(t, e.tokenRaw(ccForm, h), 401, "invalid_client")
		})
	}
	// The id "my" itself works with its secret.
	wantTokenResponse(t, e.tokenRaw(ccForm, basicHdr("my", "client:"+rest)), false)
	// Ids containing ':' cannot be registered.
	if _, _, err := core.NewClient(core.ClientSpec{ID: "my:client", Name: "x", GrantTypes: cc}); err == nil {
		t.Error("NewClient accepted an id with ':'")
	}
}

// introspectAs introspects tok as client and returns the answer.
func (e *env) introspectAs(client, tok string) map[string]any {
	e.t.Helper()
	r := e.introspect(client, tok)
	if r.status != 200 {
		e.t.Fatalf("introspection: %v", r)
	}
	return decodeJSON(e.t, r)
}

func TestR27_ClientAuthThrottling(t *testing.T) {
	t.Parallel()
	e := newEnv(t, setup{})
	ts := e.tokens(confID, "", "read")
	before := e.counts()
	cc := "grant_type=client_credentials"
	for range 10 {
		e.wantTokenError(t, e.tokenRaw(cc, basicHdr(confID, "wrong")), 401, "invalid_client")
	}
	// Now even the right secret waits, at every endpoint that takes it.
	for _, p := range []struct{ path, body string }{{"/oauth2/token", cc}, {"/oauth2/revoke", "token=" + ts.rt}, {"/oauth2/introspect", "token=" + ts.at}} {
		r := e.post(e.api, p.path, p.body, e.basic(confID))
		e.wantTokenError(t, r, 429, "invalid_client")
		if n, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || n < 1 || n > 61 {
			t.Errorf("Retry-After %q", r.header.Get("Retry-After"))
		}
	}
	if e.isRevoked(ts.family) {
		t.Error("a throttled revocation revoked")
	}
	e.wantCounts(t, before, "failed authentication")
	// Another client from the same address is not affected.
	wantTokenResponse(t, e.tokenRaw(cc, e.basic(otherID)), false)
	// The window ends.
	e.clock.advance(61 * time.Second)
	wantTokenResponse(t, e.tokenRaw(cc, e.basic(confID)), false)

	// Per address: unknown client ids count too (50 by default).
	for i := range 50 {
		e.wantTokenError(t, e.tokenRaw(cc, basicHdr("guess-"+strconv.Itoa(i), "x")), 401, "invalid_client")
	}
	e.wantTokenError(t, e.tokenRaw(cc, e.basic(otherID)), 429, "invalid_client")
	e.wantTokenError(t, e.tokenRaw(cc+"&client_id="+otherID+"&client_secret="+url.QueryEscape(e.secret(otherID)), nil), 429, "invalid_client")
	e.clock.advance(61 * time.Second)
	wantTokenResponse(t, e.tokenRaw(cc, e.basic(otherID)), false)
}

func TestR28_CodeBoundToClient(t *testing.T) {
	t.Parallel()
	e := newEnv(t, setup{})
	for _, c := range []struct{ owner, thief string }{{confID, otherID}, {confID, pubID}, {pubID, confID}} {
		redirect := ""
		if c.owner == pubID {
			redirect = pubRedirect
		}
		ac := e.newCode(c.owner, redirect, "read")
		stolen := ac
		stolen.client = c.thief
		e.wantTokenError(t, e.redeem(stolen), 400, "invalid_grant")
		e.wantBurned(t, ac.code)
	}
	if n := e.count("oauth2_refresh_tokens"); n != 0 {
		t.Errorf("%d refresh tokens", n)
	}
}

func TestR29_PKCEVerifierIffChallenge(t *testing.T) {
	t.Parallel()
	e := newEnv(t, setup{})
	for name, mutate := range map[string]func(*authCode){
		"missing":              func(c *authCode) { c.verifier = "" },
		"wrong":                func(c *authCode) { c.verifier = newVerifier(t) },
		"the challenge itself": func(c *authCode) { c.verifier = challengeOf(c.verifier) },
		"42 characters":        func(c *authCode) { c.verifier = c.verifier[:42] },
		"129 characters":       func(c *authCode) { c.verifier = strings.Repeat(c.verifier, 3)[:129] },
		"illegal character":    func(c *authCode) { c.verifier = c.verifier[:42] + "+" },
	} {
		t.Run(name, func(t *testing.T) {
			ac := e.newCode(confID, "", "read")
			mutate(&ac)
			e.wantTokenError(t, e.redeem(ac), 400, "invalid_grant")
			e.wantBurned(t, ac.code)
		})
	}
	// A verifier for a code without a challenge.
	b := e.browser()
	code := e.wantCodeRedirect(t, b.approve(b.get("/oauth2/authorize?"+authzQuery(optID, "", "read", "st", ""))), optRedirect, "st")
	f := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {fixedVerifier}}
	e.wantTokenError(t, e.token(optID, f), 400, "invalid_request")
	e.wantBurned(t, code)
	// The right verifier works.
	wantTokenResponse(t, e.redeem(e.newCode(confID, "", "read")), true)
}

func TestR30_FailedVerificationBurnsCode(t *testing.T) {
	t.Parallel()
	e := newEnv(t, setup{})
	for name, mutate := range map[string]func(*authCode){
		"wrong verifier":   func(c *authCode) { c.verifier = newVerifier(t) },
		"missing verifier": func(c *authCode) { c.verifier = "" },
		"wrong redirect":   func(c *authCode) { c.redirect = confRedirect + "/x" },
	} {
		t.Run(name, func(t *testing.T) {
			ac := e.newCode(confID, confRedirect, "read")
			bad := ac
			mutate(&bad)
			e.wantTokenError(t, e.redeem(bad), 400, "invalid_grant")
			e.wantBurned(t, ac.code)
			// Every later attempt fails, the right one included.
			for range 3 {
				e.wantTokenError(t, e.redeem(ac), 400, "invalid_grant")
			}
			e.wantBurned(t, ac.code)
		})
	}
}

func TestR31_CodeReplayRevokes(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, d *database) {
		e := newEnv(t, setup{db: d})
		// A valid replay revokes what the first redemption issued.
		ac := e.newCode(confID, "", "read")
		m := wantTokenResponse(t, e.redeem(ac), true)
		at, rt := m["access_token"].(string), m["refresh_token"].(string)
		fam := e.grantOfCode(ac.code).GrantID
		wantMe(t, e.resource("/api/me", at), demo.DemoUser, confID, "read")
		before := e.count("oauth2_refresh_tokens")
		e.wantTokenError(t, e.redeem(ac), 400, "invalid_grant")
		if !e.isRevoked(fam) {
			t.Fatalf("the replay did not revoke the grant: %v", e.revokedFamilies())
		}
		e.wantInvalidToken(t, e.resource("/api/me", at))
		e.wantInactive(t, e.introspect(confID, at))
		e.wantInactive(t, e.introspect(confID, rt))
		e.wantTokenError(t, e.refresh(confID, rt, ""), 400, "invalid_grant")
		e.wantRTState(t, rt, false)
		if n := e.count("oauth2_refresh_tokens"); n != before {
			t.Errorf("refresh tokens %d -> %d", before, n)
		}

		// Replays that prove nothing revoke nothing.
		for name, c := range map[string]struct {
			mutate func(*authCode, url.Values) http.Header
			status int
			code   string
		}{
			"wrong verifier": {func(c *authCode, f url.Values) http.Header {
				f.Set("code_verifier", newVerifier(t))
				return e.basic(confID)
			}, 400, "invalid_grant"},
			"missing verifier": {func(c *authCode, f url.Values) http.Header { f.Del("code_verifier"); return e.basic(confID) }, 400, "invalid_grant"},
			"wrong redirect": {func(c *authCode, f url.Values) http.Header {
				f.Set("redirect_uri", "https://evil.test/cb")
				return e.basic(confID)
			}, 400, "invalid_grant"},
			"wrong secret":         {func(c *authCode, f url.Values) http.Header { return basicHdr(confID, "wrong") }, 401, "invalid_client"},
			"no client auth":       {func(c *authCode, f url.Values) http.Header { return nil }, 401, "invalid_client"},
			"another client":       {func(c *authCode, f url.Values) http.Header { return e.basic(otherID) }, 400, "invalid_grant"},
			"a public client's id": {func(c *authCode, f url.Values) http.Header { f.Set("client_id", pubID); return nil }, 400, "invalid_grant"},
		} {
			t.Run(name, func(t *testing.T) {
				ac := e.newCode(confID, "", "read")
				m := wantTokenResponse(t, e.redeem(ac), true)
				fam := e.grantOfCode(ac.code).GrantID
				f := e.redeemForm(ac)
				hdr := c.mutate(&ac, f)
				e.wantTokenError(t, e.tokenRaw(f.Encode(), hdr), c.status, c.code)
				if e.isRevoked(fam) {
					t.Errorf("revoked by a replay that proves nothing")
				}
				wantMe(t, e.resource("/api/me", m["access_token"].(string)), demo.DemoUser, confID, "read")
				wantTokenResponse(t, e.refresh(confID, m["refresh_token"].(string), ""), true)
			})
		}
	})
}

func TestR32_RedirectURIAtTokenEndpoint(t *testing.T) {
	t.Parallel()
	e := newEnv(t, setup{})
	for _, c := range []struct {
		client, sent, atToken string
		ok                    bool
	}{
		{confID, confRedirect, "", false},
		{confID, confRedirect, confRedirect + "/", false},
		{confID, confRedirect, "https://CLIENT.example.test/cb", false},
		{confID, confRedirect, confRedirect, true},
		{pubID, "http://127.0.0.1:5555/callback", "http://127.0.0.1:6666/callback", false},
		{pubID, "http://127.0.0.1:5555/callback", pubRedirect, false},
		{pubID, "http://127.0.0.1:5555/callback", "", false},
		{pubID, "http://127.0.0.1:5555/callback", "http://127.0.0.1:5555/callback", true},
		{otherID, otherRedirect, "https://other.example.test/cb", false},
		{otherID, otherRedirect, otherRedirect, true},
	} {
		ac := e.newCode(c.client, c.sent, "read")
		ac.redirect = c.atToken
		r := e.redeem(ac)
		if c.ok {
			wantTokenResponse(t, r, true)
			continue
		}
		e.wantTokenError(t, r, 400, "invalid_grant")
		e.wantBurned(t, ac.code)
	}
}

func TestR33_TokenResponseHeaders(t *testing.T) {
	t.Parallel()
	e := newEnv(t, setup{})
	r := e.redeem(e.newCode(confID, "", "read write"))
	m := wantTokenResponse(t, r, true)
	if m["expires_in"] != float64(3600) || m["scope"] != "read write" {
		t.Errorf("authorization_code: %v", m)
	}
	r = e.refresh(confID, m["refresh_token"].(string), "read")
	m = wantTokenResponse(t, r, true)
	if m["expires_in"] != float64(3600) || m["scope"] != "read" {
		t.Errorf("refresh: %v", m)
	}
	before := e.counts()
	r = e.tokenRaw("grant_type=client_credentials&scope=admin", e.basic(confID))
	m = wantTokenResponse(t, r, false)
	if m["expires_in"] != float64(3600) || m["scope"] != "admin" {
		t.Errorf("client_credentials: %v", m)
	}
	e.wantCounts(t, before, "client_credentials")
}

func TestR34_ErrorBodies(t *testing.T) {
	t.Parallel()
	e := newEnv(t, setup{})
	ac := e.newCode(confID, "", "read")
	// A spread of refusals: every one is a JSON error body in the RFC
	// character set with no-store (wantTokenError).
	for _, c := range []struct {
		body   string
		hdr    http.Header
		status int
		code   string
	}{
		{"grant_type=authorization_code&code=%FF%FE", e.basic(confID), 400, "invalid_grant"},
		{"grant_type=authorization_code", e.basic(confID), 400, "invalid_request"},
		{"grant_type=refresh_token", e.basic(confID), 400, "invalid_request"},
		{"grant_type=client_credentials&scope=%22%5C%01", e.basic(confID), 400, "invalid_scope"},
		{"grant_type=client_credentials&scope=" + url.QueryEscape(`delete"<x>`), e.basic(confID), 400, "invalid_scope"},
		{"grant_type=client_credentials&scope=unknown", e.basic(confID), 400, "invalid_scope"},
		{"grant_type=x%00y", e.basic(confID), 400, "unsupported_grant_type"},
		{"grant_type=client_credentials", basicHdr(confID, "\"\\"), 401, "invalid_client"},
		{"grant_type=client_credentials", e.basic(optID), 400, "unauthorized_client"},
		{"%zz", e.basic(confID), 400, "invalid_request"},
		{strings.Repeat("a=b&", 100), e.basic(confID), 400, "invalid_request"},
		{"grant_type=client_credentials&scope=" + strings.Repeat("x", 5000), e.basic(confID), 400, "invalid_request"},
	} {
		e.wantTokenError(t, e.tokenRaw(c.body, c.hdr), c.status, c.code)
	}
	r := e.tokenRaw("grant_type=client_credentials&x="+strings.Repeat("y", 70<<10), e.basic(confID))
	e.wantTokenError(t, r, 413, "invalid_request")
	e.wantUnused(t, ac.code)
}

func TestR34_StorageFailureNeverIssues(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, d *database) {
		e := newEnv(t, setup{db: d})
		ac := e.newCode(confID, "", "read")
		ts := e.tokens(confID, "", "read")
		// The refresh token table fails: the redemption is rolled back, the
		// refresh refused, nothing issued.
		restore := e.breakTable(t, "oauth2_refresh_tokens")
		for _, r := range []*response{e.redeem(ac), e.refresh(confID, ts.rt, "")} {
			e.wantTokenError(t, r, 500, "server_error")
			wantNoInternals(t, r)
		}
		restore()
		e.wantUnused(t, ac.code)
		e.wantRTState(t, ts.rt, false)
		if rows := e.familyRows(ts.family); len(rows) != 1 {
			t.Errorf("%d refresh tokens in the family", len(rows))
		}
		// The client table fails: no authentication, no token.
		restore = e.breakTable(t, "oauth2_clients")
		r := e.redeem(ac)
		e.wantTokenError(t, r, 500, "server_error")
		wantNoInternals(t, r)
		restore()
		e.wantUnused(t, ac.code)
		// Once the store is back, the same requests work.
		wantTokenResponse(t, e.redeem(ac), true)
		wantTokenResponse(t, e.refresh(confID, ts.rt, ""), true)
	})
}

func TestR35_UnsupportedGrantTypes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, setup{})
	for _, gt := range []string{"password", "implicit", "token", "none", "assertion", "PASSWORD", "Authorization_Code", "authorization_code ",
		"urn:ietf:params:oauth:grant-type:jwt-bearer", "urn:ietf:params:oauth:grant-type:device_code", "urn:ietf:params:oauth:grant-type:token-exchange"} {
		f := url.Values{"grant_type": {gt}, "username": {demo.DemoUser}, "password": {demo.DemoPassword}}
		e.wantTokenError(t, e.tokenRaw(f.Encode(), e.basic(confID)), 400, "unsupported_grant_type")
	}
	e.wantTokenError(t, e.tokenRaw("username=demo&password=demo", e.basic(confID)), 400, "invalid_request")
	got := e.metadata()["grant_types_supported"].([]any)
	if len(got) != 3 || got[0] != "authorization_code" || got[1] != "refresh_token" || got[2] != "client_credentials" {
		t.Errorf("grant_types_supported %v", got)
	}
	if n := e.count("oauth2_refresh_tokens"); n != 0 {
		t.Errorf("%d refresh tokens", n)
	}
}

func TestR36_RefreshBoundToClientAndScope(t *testing.T) {
	t.Parallel()
	e := newEnv(t, setup{})
	ts := e.tokens(confID, "", "read write")
	pub := e.tokens(pubID, pubRedirect, "read")
	refused := []struct {
		name   string
		r      *response
		status int
		code   string
	}{
		{"another client", e.refresh(otherID, ts.rt, ""), 400, "invalid_grant"},
		{"a public client", e.refresh(pubID, ts.rt, ""), 400, "invalid_grant"},
		{"no client auth", e.refresh("", ts.rt, ""), 401, "invalid_client"},
		{"wrong secret", e.tokenRaw("grant_type=refresh_token&refresh_token="+ts.rt, basicHdr(confID, "wrong")), 401, "invalid_client"},
		{"wider scope", e.refresh(confID, ts.rt, "read write admin"), 400, "invalid_scope"},
		{"other scope", e.refresh(confID, ts.rt, "admin"), 400, "invalid_scope"},
		{"malformed scope", e.refresh(confID, ts.rt, "read  write"), 400, "invalid_scope"},
		{"public token, confidential client", e.refresh(confID, pub.rt, ""), 400, "invalid_grant"},
	}
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) { e.wantTokenError(t, c.r, c.status, c.code) })
	}
	// Nothing moved: not rotated, not revoked, no new token.
	e.wantRTState(t, ts.rt, false)
	e.wantRTState(t, pub.rt, false)
	if len(e.familyRows(ts.family)) != 1 || len(e.revokedFamilies()) != 0 {
		t.Fatalf("refused refreshes changed the store: %d rows, revoked %v", len(e.familyRows(ts.family)), e.revokedFamilies())
	}
	// Narrowing: the access token gets less, the rotated refresh token
	// keeps the whole grant.
	m := wantTokenResponse(t, e.refresh(confID, ts.rt, "read"), true)
	if m["scope"] != "read" {
		t.Errorf("narrowed scope %v", m["scope"])
	}
	wantMe(t, e.resource("/api/me", m["access_token"].(string)), demo.DemoUser, confID, "read")
	e.wantInsufficientScope(t, e.resource("/api/write", m["access_token"].(string)), "write")
	rt2 := m["refresh_token"].(string)
	if row := e.wantRTState(t, rt2, false); row.Scope != "read write" || row.FamilyID != ts.family {
		t.Errorf("rotated token row %+v", row)
	}
	e.wantRTState(t, ts.rt, true)
	// Omitted: the original scope.
	m = wantTokenResponse(t, e.refresh(confID, rt2, ""), true)
	if m["scope"] != "read write" {
		t.Errorf("omitted scope gave %v", m["scope"])
	}
	// A public client refreshes its own token with its client_id.
	wantTokenResponse(t, e.refresh(pubID, pub.rt, ""), true)
}

func TestR37_RefreshRotationAndReuse(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, d *database) {
		e := newEnv(t, setup{db: d})
		for _, c := range []struct{ client, redirect string }{{confID, ""}, {pubID, pubRedirect}} {
			t.Run(c.client, func(t *testing.T) {
				ts := e.tokens(c.client, c.redirect, "read")
				m := wantTokenResponse(t, e.refresh(c.client, ts.rt, ""), true)
				at1, rt1 := m["access_token"].(string), m["refresh_token"].(string)
				// Rotated: the old row marked, the new one in the family.
				e.wantRTState(t, ts.rt, true)
				if row := e.wantRTState(t, rt1, false); row.FamilyID != ts.family || row.ClientID != c.client {
					t.Errorf("new row %+v", row)
				}
				wantMe(t, e.resource("/api/me", at1), demo.DemoUser, c.client, "read")
				// The rotated-out token comes back: the grant dies.
				e.wantTokenError(t, e.refresh(c.client, ts.rt, ""), 400, "invalid_grant")
				if !e.isRevoked(ts.family) {
					t.Fatalf("reuse did not revoke the grant")
				}
				e.wantTokenError(t, e.refresh(c.client, rt1, ""), 400, "invalid_grant")
				e.wantRTState(t, rt1, false)
				if n := len(e.familyRows(ts.family)); n != 2 {
					t.Errorf("%d refresh tokens in the family, want 2", n)
				}
				e.wantInvalidToken(t, e.resource("/api/me", ts.at))
				e.wantInvalidToken(t, e.resource("/api/me", at1))
			})
		}
		// A stale token presented by another client revokes nothing.
		ts := e.tokens(confID, "", "read")
		m := wantTokenResponse(t, e.refresh(confID, ts.rt, ""), true)
		e.wantTokenError(t, e.refresh(otherID, ts.rt, ""), 400, "invalid_grant")
		if e.isRevoked(ts.family) {
			t.Error("another client's reuse revoked the grant")
		}
		wantTokenResponse(t, e.refresh(confID, m["refresh_token"].(string), ""), true)

		// Concurrent refreshes of one token: exactly one rotates it; the
		// others are reuses.
		ts = e.tokens(confID, "", "read")
		const n = 8
		var wg sync.WaitGroup
		results := make([]*response, n)
		start := make(chan struct{})
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				f := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {ts.rt}}
				results[i] = e.post(e.api, "/oauth2/token", f.Encode(), e.basic(confID))
			}()
		}
		close(start)
		wg.Wait()
		ok := 0
		for _, r := range results {
			switch r.status {
			case 200:
				ok++
				m := decodeJSON(t, r)
				e.remember("access_token", m["access_token"].(string))
				e.remember("refresh_token", m["refresh_token"].(string))
			case 400:
				e.wantTokenError(t, r, 400, "invalid_grant")
			default:
				t.Errorf("concurrent refresh: %v", r)
			}
		}
		if rows := e.familyRows(ts.family); ok != 1 || len(rows) != 2 {
			t.Errorf("%d of %d concurrent refreshes succeeded, %d rows in the family; want 1 and 2", ok, n, len(rows))
		}
		if !e.isRevoked(ts.family) {
			t.Error("the concurrent reuses did not revoke the grant")
		}
	})
}

func TestR38_RefreshLifetimeAndInactivity(t *testing.T) {
	t.Parallel()
	e := newEnv(t, setup{config: func(c *core.Config) { c.Lifetimes.RefreshToken = time.Hour }})
	ts := e.tokens(confID, "", "read")
	row := e.wantRTState(t, ts.rt, false)
	if row.CreatedAt == nil || row.ExpiresAt.Sub(*row.CreatedAt) != time.Hour {
		t.Fatalf("refresh token lifetime: %+v", row)
	}
	// Each rotation restarts the window, so a token in use outlives the
	// first hour ...
	rt := ts.rt
	for range 3 {
		e.clock.advance(59 * time.Minute)
		m := wantTokenResponse(t, e.refresh(confID, rt, ""), true)
		rt = m["refresh_token"].(string)
		if r := e.wantRTState(t, rt, false); r.ExpiresAt.Sub(*r.CreatedAt) != time.Hour {
			t.Errorf("rotated lifetime %v", r.ExpiresAt.Sub(*r.CreatedAt))
		}
	}
	// ... and one left unused for the window expires.
	e.clock.advance(time.Hour)
	before := e.counts()
	e.wantTokenError(t, e.refresh(confID, rt, ""), 400, "invalid_grant")
	e.wantRTState(t, rt, false)
	e.wantCounts(t, before, "an expired refresh")
	e.wantInactive(t, e.introspect(confID, rt))
	if e.isRevoked(ts.family) {
		t.Error("expiry is not a revocation")
	}
}

func TestR39_TokensCannotBeForged(t *testing.T) {
	t.Parallel()
	e := newEnv(t, setup{})
	ts := e.tokens(confID, "", "read")
	ac := e.newCode(confID, "", "read")
	handle := e.hidden(e.browser().get("/oauth2/authorize?" + authzQuery(confID, "", "read", "st", fixedVerifier))).Get(core.FieldRequest)
	flip := func(s string, i int) string {
		c := byte('A')
		if s[i] == 'A' {
			c = 'B'
		}
		return s[:i] + string(c) + s[i+1:]
	}
	swapKid := func(s, kid string) string {
		p := strings.SplitN(s, ".", 3)
		return p[0] + "." + kid + "." + p[2]
	}
	swapPrefix := func(s, prefix string) string { return prefix + s[3:] }
	before := e.counts()
	logFrom := len(e.log.String())
	// Refresh tokens.
	for name, rt := range map[string]string{
		"flipped random part":    flip(ts.rt, 10),
		"flipped check tag":      flip(ts.rt, len(ts.rt)-3),
		"unknown key id":         swapKid(ts.rt, "k9"),
		"code prefix":            swapPrefix(ts.rt, "ac2"),
		"truncated":              ts.rt[:len(ts.rt)-1],
		"extended":               ts.rt + "A",
		"access token":           ts.at,
		"code":                   ac.code,
		"login handle":           handle,
		"made up, right shape":   "rt2.k1." + strings.Repeat("A", 64),
		"padding":                ts.rt + "==",
		"the stored signature":   e.refreshRow(ts.rt).Sig,
		"signature, right frame": "rt2.k1." + e.refreshRow(ts.rt).Sig,
	} {
		t.Run("refresh/"+name, func(t *testing.T) { e.wantTokenError(t, e.refresh(confID, rt, ""), 400, "invalid_grant") })
	}
	// Codes.
	for _, code := range []string{flip(ac.code, 10), flip(ac.code, len(ac.code)-3), swapKid(ac.code, "k9"), swapPrefix(ac.code, "rt2"),
		ac.code[:len(ac.code)-1], ts.rt, ts.at, handle, "ac2.k1." + strings.Repeat("A", 64), e.grantOfCode(ac.code).CodeSig} {
		f := e.redeemForm(ac)
		f.Set("code", code)
		e.wantTokenError(t, e.token(confID, f), 400, "invalid_grant")
	}
	// Refused on their self-check, before any lookup: no statement on
	// the code or refresh token tables ran (the SQL log shows them all).
	if sql := e.log.String()[logFrom:]; strings.Contains(sql, "oauth2_refresh_tokens") || strings.Contains(sql, "oauth2_grants") {
		t.Errorf("a forged code or refresh token reached the database")
	}
	e.wantCounts(t, before, "forged tokens")
	e.wantUnused(t, ac.code)
	e.wantRTState(t, ts.rt, false)
	if len(e.revokedFamilies()) != 0 {
		t.Error("a forgery revoked something")
	}
	// Access tokens.
	for _, at := range []string{flip(ts.at, 20), flip(ts.at, len(ts.at)-2), swapKid(ts.at, "k9"), swapPrefix(ts.at, "pr2"), ts.at[:len(ts.at)-1], ts.rt, ac.code, handle} {
		e.wantInvalidToken(t, e.resource("/api/me", at))
	}
	// The genuine ones still work.
	wantTokenResponse(t, e.redeem(ac), true)
	wantMe(t, e.resource("/api/me", ts.at), demo.DemoUser, confID, "read")
	wantTokenResponse(t, e.refresh(confID, ts.rt, ""), true)
}

func TestR40_AccessTokensShortLivedAudienceRestricted(t *testing.T) {
	t.Parallel()
	e := newEnv(t, setup{config: func(c *core.Config) { c.Lifetimes.AccessToken = 5 * time.Minute }})
	ts := e.tokens(confID, "", "read")
	m := wantTokenResponse(t, e.refresh(confID, ts.rt, ""), true)
	if m["expires_in"] != float64(300) {
		t.Errorf("expires_in %v", m["expires_in"])
	}
	at := m["access_token"].(string)
	info := e.introspectAs(confID, at)
	if info["exp"].(float64)-info["iat"].(float64) != 300 || info["iss"] != e.cfg.Issuer {
		t.Errorf("introspection %v", info)
	}
	// Audience: a server with the same keys and database but another
	// audience (or issuer) refuses the token.
	cfg := e.cfg
	for _, other := range []func(*core.Config){
		func(c *core.Config) { c.Audience = "https://another-rs.example" },
		func(c *core.Config) { c.Issuer = "http://127.0.0.1:1" },
	} {
		c := cfg
		other(&c)
		e.start(c)
		r := e.resource("/api/me", at)
		if r.status != 401 || !strings.Contains(string(r.body), "invalid_token") {
			t.Errorf("another audience or issuer accepted the token: %v", r)
		}
		e.wantInactive(t, e.introspect(confID, at))
	}
	e.start(cfg)
	// Lifetime, to the second.
	e.clock.advance(299 * time.Second)
	wantMe(t, e.resource("/api/me", at), demo.DemoUser, confID, "read")
	e.clock.advance(time.Second)
	e.wantInvalidToken(t, e.resource("/api/me", at))
	e.wantInactive(t, e.introspect(confID, at))
}

func TestR41_ClientCredentialsConfidentialOnly(t *testing.T) {
	t.Parallel()
	e := newEnv(t, setup{})
	before := e.counts()
	cc := "grant_type=client_credentials"
	e.wantTokenError(t, e.tokenRaw(cc+"&client_id="+pubID, nil), 400, "invalid_client")
	e.wantTokenError(t, e.tokenRaw(cc, basicHdr(pubID, "")), 401, "invalid_client")
	e.wantTokenError(t, e.tokenRaw(cc, e.basic(optID)), 400, "unauthorized_client")
	m := wantTokenResponse(t, e.tokenRaw(cc, e.basic(confID)), false)
	e.wantCounts(t, before, "client_credentials")
	wantMe(t, e.resource("/api/me", m["access_token"].(string)), confID, confID, "read")
	if _, _, err := core.NewClient(core.ClientSpec{Name: "p", Public: true, RedirectURIs: []string{pubRedirect}, GrantTypes: []string{core.GrantClientCredentials}}); err == nil {
		t.Error("a public client registered for client_credentials")
	}
}
