package core_test

// PROTOCOL.md §6: the draft-10 compatibility profile. Requests are shaped
// as a client of draft-ietf-oauth-v2-10 (and of the original
// oauth2_server_node library) sends them.

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/oauth2kit/oauth2kit/core"
)

const legacyCB = "https://legacy.example.com/cb"

// draft10Enc is how the draft's examples encode the redirect URI: every
// reserved character and the dots escaped
// (redirect_uri=https%3A%2F%2Fclient%2Eexample%2Ecom%2Fcb).
func draft10Enc(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), ".", "%2E")
}

// newDraft10Env registers "legacy", a draft-10 profile client that may send
// its raw secret as the Basic credential, with default PKCE policy (the
// profile makes PKCE optional), and "legacy2" without LegacyBasicSecret.
func newDraft10Env(t *testing.T, mod ...func(*core.Config)) (*env, string, string) {
	t.Helper()
	e := newEnv(t, false, mod...)
	sec := e.addClient(core.ClientSpec{ID: "legacy", Name: "Legacy App", RedirectURIs: []string{legacyCB},
		Profile: core.ProfileDraft10, LegacyBasicSecret: true, GrantTypes: []string{"authorization_code", "refresh_token"}})
	sec2 := e.addClient(core.ClientSpec{ID: "legacy2", RedirectURIs: []string{legacyCB}, Profile: core.ProfileDraft10})
	return e, sec, sec2
}

var draft10CodeRe = regexp.MustCompile(`^([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{43})$`)

// draft10Code runs the draft-10 authorization request (no PKCE) and login,
// and returns the code.
func draft10Code(t *testing.T, e *env, client, state string) string {
	t.Helper()
	q := "response_type=code&client_id=" + client + "&redirect_uri=" + draft10Enc(legacyCB)
	if state != "" {
		q += "&state=" + url.QueryEscape(state)
	}
	page := e.do(&fakeReq{method: "GET", path: "/oauth2/authorize", query: q})
	if page.status != 200 {
		t.Fatalf("authorize: %d %q %s", page.status, page.hdr.Get("Location"), page.body)
	}
	w := e.login(page, "alice", "pw")
	v := wantCodeRedirect(t, w, legacyCB, state)
	return v.Get("code")
}

// draft10Token posts a token request body verbatim.
func draft10Token(e *env, body string, hdr http.Header) *fakeResp {
	return e.do(&fakeReq{method: "POST", path: "/oauth2/token", body: body, hdr: withForm(hdr)})
}

func bodyCreds(secret, code string) string {
	return "grant_type=authorization_code&client_id=legacy&client_secret=" + url.QueryEscape(secret) +
		"&code=" + url.QueryEscape(code) + "&redirect_uri=" + draft10Enc(legacyCB)
}

func wantTokens(t *testing.T, w *fakeResp) (at, rt string) {
	t.Helper()
	if w.status != 200 {
		t.Fatalf("token: %d %s", w.status, w.body)
	}
	wantJSONHeaders(t, w)
	m := w.json(t)
	at, _ = m["access_token"].(string)
	rt, _ = m["refresh_token"].(string)
	if at == "" || m["token_type"] != "Bearer" || m["expires_in"] != float64(3600) {
		t.Fatalf("token response %s", w.body)
	}
	return at, rt
}

func TestDraft10_AuthorizationRequestWithoutPKCE(t *testing.T) {
	e, sec, _ := newDraft10Env(t)
	code := draft10Code(t, e, "legacy", "abc")
	m := draft10CodeRe.FindStringSubmatch(code)
	if m == nil {
		t.Fatalf("code %q is not <grant id>.<secret>", code)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(m[2])
	if len(raw) != 32 {
		t.Errorf("code secret has %d bytes", len(raw))
	}
	// Without state too (draft 10: OPTIONAL).
	draft10Code(t, e, "legacy", "")
	// The default-profile client of the same server still needs PKCE.
	w := e.do(&fakeReq{method: "GET", path: "/oauth2/authorize", query: "response_type=code&client_id=conf&redirect_uri=" + draft10Enc(confCB) + "&state=abc"})
	wantRedirectError(t, w, confCB, "invalid_request", "abc")
	// Draft 10's other response types are refused.
	for _, rt := range []string{"token", "code_and_token"} {
		w := e.do(&fakeReq{method: "GET", path: "/oauth2/authorize", query: "response_type=" + rt + "&client_id=legacy&redirect_uri=" + draft10Enc(legacyCB) + "&state=abc"})
		wantRedirectError(t, w, legacyCB, "unsupported_response_type", "abc")
	}
	// Exact redirect matching stays on.
	for _, r := range []string{legacyCB + "/", "https://LEGACY.example.com/cb", "https://legacy.example.com/cb?x=1"} {
		w := e.do(&fakeReq{method: "GET", path: "/oauth2/authorize", query: "response_type=code&client_id=legacy&redirect_uri=" + url.QueryEscape(r)})
		wantErrorPage(t, w, 400)
	}
	// A draft-10 client that does send a challenge gets it enforced.
	q := codeQuery("legacy", legacyCB, "", "s")
	code = wantCodeRedirect(t, e.codeFor(q), legacyCB, "s").Get("code")
	w = draft10Token(e, bodyCreds(sec, code), nil)
	wantTokenError(t, w, 400, "invalid_grant")
	w = draft10Token(e, bodyCreds(sec, code)+"&code_verifier="+verifier, nil)
	wantTokenError(t, w, 400, "invalid_grant") // burned by the failed attempt
}

func TestDraft10_TokenRequestSecretInBody(t *testing.T) {
	e, sec, _ := newDraft10Env(t)
	code := draft10Code(t, e, "legacy", "abc")
	at, rt := wantTokens(t, draft10Token(e, bodyCreds(sec, code), nil))
	if rt == "" {
		t.Errorf("no refresh token")
	}
	info, err := e.srv.CheckToken(t.Context(), at)
	if err != nil || !info.Draft10 || info.ClientID != "legacy" || info.UserID != "alice" {
		t.Fatalf("info %+v %v", info, err)
	}
	// The code's first part is the grant id.
	if m := draft10CodeRe.FindStringSubmatch(code); m[1] != info.GrantID {
		t.Errorf("code grant id %q, token grant id %q", m[1], info.GrantID)
	}
	// Single use, and a valid replay revokes (the profile keeps this).
	wantTokenError(t, draft10Token(e, bodyCreds(sec, code), nil), 400, "invalid_grant")
	if !e.revoked(info.GrantID) {
		t.Errorf("replay did not revoke")
	}
	// Wrong secret.
	code = draft10Code(t, e, "legacy", "abc")
	wantTokenError(t, draft10Token(e, bodyCreds(sec+"x", code), nil), 400, "invalid_client")
	// Redirect URI must be the one sent at authorize.
	wantTokenError(t, draft10Token(e, strings.Replace(bodyCreds(sec, code), "%2Fcb", "%2Fcb%2F", 1), nil), 400, "invalid_grant")
}

func TestDraft10_TokenRequestBasicPlusClientID(t *testing.T) {
	e, sec, _ := newDraft10Env(t)
	code := draft10Code(t, e, "legacy", "abc")
	// Draft 10 §2.1: Basic (RFC 2617) and client_id in the body.
	hdr := http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte("legacy:"+sec))}}
	body := "grant_type=authorization_code&client_id=legacy&code=" + url.QueryEscape(code) + "&redirect_uri=" + draft10Enc(legacyCB)
	wantTokens(t, draft10Token(e, body, hdr))
	// client_id naming someone else is refused.
	code = draft10Code(t, e, "legacy", "abc")
	wantTokenError(t, draft10Token(e, "grant_type=authorization_code&client_id=conf&code="+url.QueryEscape(code)+"&redirect_uri="+draft10Enc(legacyCB), hdr), 400, "invalid_request")
	// Basic plus client_secret is still two methods.
	wantTokenError(t, draft10Token(e, bodyCreds(sec, code), hdr), 400, "invalid_request")
}

func TestDraft10_RawSecretBasic(t *testing.T) {
	e, sec, sec2 := newDraft10Env(t, quietLog)
	body := func(client, code string) string {
		return "grant_type=authorization_code&client_id=" + client + "&code=" + url.QueryEscape(code) + "&redirect_uri=" + draft10Enc(legacyCB)
	}
	raw := func(s string) http.Header { return http.Header{"Authorization": {"Basic " + s}} }
	// The original library's "Authorization: Basic <raw secret>".
	code := draft10Code(t, e, "legacy", "abc")
	wantTokens(t, draft10Token(e, body("legacy", code), raw(sec)))
	// Wrong raw secret: 401 with a Basic challenge.
	code = draft10Code(t, e, "legacy", "abc")
	w := draft10Token(e, body("legacy", code), raw(sec[1:]+"A"))
	wantTokenError(t, w, 401, "invalid_client")
	if !strings.HasPrefix(w.hdr.Get("WWW-Authenticate"), "Basic realm=") {
		t.Errorf("WWW-Authenticate %q", w.hdr.Get("WWW-Authenticate"))
	}
	// Without client_id the raw secret names no client.
	wantTokenError(t, draft10Token(e, "grant_type=authorization_code&code="+url.QueryEscape(code)+"&redirect_uri="+draft10Enc(legacyCB), raw(sec)), 401, "invalid_client")
	// Only for clients that opted in.
	code2 := draft10Code(t, e, "legacy2", "abc")
	wantTokenError(t, draft10Token(e, body("legacy2", code2), raw(sec2)), 401, "invalid_client")
	wantTokens(t, draft10Token(e, body("legacy2", code2), basic("legacy2", sec2)))
	// Never for a default-profile client, even with the flag set.
	cs := strings.Repeat("d", 43)
	e.addClient(core.ClientSpec{ID: "modern", RedirectURIs: []string{confCB}, Secret: cs, LegacyBasicSecret: true, GrantTypes: []string{"client_credentials"}})
	wantTokenError(t, draft10Token(e, "grant_type=client_credentials&client_id=modern", raw(cs)), 401, "invalid_client")
	wantTokenError(t, draft10Token(e, "grant_type=client_credentials&client_id=conf", raw(e.secret)), 401, "invalid_client")
	if w := draft10Token(e, "grant_type=client_credentials", basic("modern", cs)); w.status != 200 {
		t.Errorf("modern client with proper Basic: %d", w.status)
	}
}

func TestDraft10_CodeLifetime60s(t *testing.T) {
	e, sec, _ := newDraft10Env(t)
	code := draft10Code(t, e, "legacy", "abc")
	e.now = e.now.Add(60 * time.Second)
	wantTokenError(t, draft10Token(e, bodyCreds(sec, code), nil), 400, "invalid_grant")
	code = draft10Code(t, e, "legacy", "abc")
	e.now = e.now.Add(59 * time.Second)
	wantTokens(t, draft10Token(e, bodyCreds(sec, code), nil))
	// A draft-10 code is no code for a default-profile client.
	code = draft10Code(t, e, "legacy", "abc")
	wantTokenError(t, e.token(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {legacyCB}}, basic("conf", e.secret)), 400, "invalid_grant")
}

func TestDraft10_ResourceAccess(t *testing.T) {
	e, sec, _ := newDraft10Env(t)
	at, _ := wantTokens(t, draft10Token(e, bodyCreds(sec, draft10Code(t, e, "legacy", "abc")), nil))
	oauthHdr := http.Header{"Authorization": {"OAuth " + at}}
	for name, r := range map[string]*fakeReq{
		"OAuth header":         {hdr: oauthHdr},
		"oauth header lower":   {hdr: http.Header{"Authorization": {"oauth " + at}}},
		"query oauth_token":    {query: "x=y&oauth_token=" + url.QueryEscape(at)},
		"form oauth_token":     {method: "POST", body: "x=y&oauth_token=" + url.QueryEscape(at), hdr: withForm(nil)},
		"form oauth_token PUT": {method: "PUT", body: "oauth_token=" + url.QueryEscape(at), hdr: withForm(nil)},
		"Bearer":               {hdr: bearer(at)},
	} {
		info, w := e.resource(r)
		if info == nil {
			t.Errorf("%s: %d %s %q", name, w.status, w.body, w.hdr.Get("WWW-Authenticate"))
		} else if info.ClientID != "legacy" || info.UserID != "alice" {
			t.Errorf("%s: %+v", name, info)
		}
	}
	// More than one method.
	_, w := e.resource(&fakeReq{query: "oauth_token=" + url.QueryEscape(at), hdr: oauthHdr})
	if w == nil || w.status != 400 || w.json(t)["error"] != "invalid_request" {
		t.Errorf("two methods: %v", w)
	}
	// Invalid token, OAuth scheme, on a server whose profile is the
	// default: nothing shows the token is a draft-10 client's, so the
	// scheme is one the server does not support — no credentials.
	tampered := http.Header{"Authorization": {"OAuth " + at[:len(at)-2] + "AA"}}
	_, w = e.resource(&fakeReq{hdr: tampered})
	wantNoTokenChallenge(t, w)
	// On a draft-10 server: the draft-10 challenge.
	d, _, _ := newDraft10Env(t, func(c *core.Config) { c.Profile = core.ProfileDraft10 })
	_, w = d.resource(&fakeReq{hdr: tampered})
	if w == nil || w.status != 401 || !strings.HasPrefix(w.hdr.Get("WWW-Authenticate"), `OAuth realm="`+issuer+`", error="invalid_token"`) {
		t.Errorf("invalid token: %v", w)
	}
	// Insufficient scope, OAuth scheme.
	_, w = e.resource(&fakeReq{hdr: oauthHdr}, "admin")
	if w == nil || w.status != 403 || !strings.HasPrefix(w.hdr.Get("WWW-Authenticate"), `OAuth realm="`+issuer+`", error="insufficient_scope"`) {
		t.Errorf("insufficient scope: %v", w)
	}
	// Expired: expired_token (draft 10 §5.2.1), 401, in the OAuth scheme.
	e.now = e.now.Add(time.Hour)
	for name, r := range map[string]*fakeReq{
		"header": {hdr: oauthHdr},
		"query":  {query: "oauth_token=" + url.QueryEscape(at)},
		"form":   {method: "POST", body: "oauth_token=" + url.QueryEscape(at), hdr: withForm(nil)},
	} {
		_, w := e.resource(r)
		if w == nil {
			t.Fatalf("%s: expired token accepted", name)
		}
		if w.status != 401 || !strings.HasPrefix(w.hdr.Get("WWW-Authenticate"), `OAuth realm="`+issuer+`", error="expired_token"`) {
			t.Errorf("%s: %d %q", name, w.status, w.hdr.Get("WWW-Authenticate"))
		}
		if w.json(t)["error"] != "expired_token" {
			t.Errorf("%s: body %s", name, w.body)
		}
	}
	// The standard scheme keeps the standard answer.
	_, w = e.resource(&fakeReq{hdr: bearer(at)})
	if w == nil || w.status != 401 || !strings.HasPrefix(w.hdr.Get("WWW-Authenticate"), realmChallenge+`, error="invalid_token"`) {
		t.Errorf("expired via Bearer: %v", w)
	}
}

func TestDraft10_ErrorEnvelope(t *testing.T) {
	e, sec, _ := newDraft10Env(t, quietLog, func(c *core.Config) { c.Draft10ErrorEnvelope = true })
	code := draft10Code(t, e, "legacy", "abc")
	for name, c := range map[string]struct {
		body, code string
	}{
		"bad code":      {strings.Replace(bodyCreds(sec, code), "code="+url.QueryEscape(code), "code=nope.nope", 1), "invalid_grant"},
		"bad redirect":  {strings.Replace(bodyCreds(sec, code), "%2Fcb", "%2Fother", 1), "invalid_grant"},
		"not its grant": {"grant_type=client_credentials&client_id=legacy&client_secret=" + url.QueryEscape(sec), "unauthorized_client"},
		"bad refresh":   {"grant_type=refresh_token&client_id=legacy&client_secret=" + url.QueryEscape(sec) + "&refresh_token=x", "invalid_grant"},
		"missing code":  {"grant_type=authorization_code&client_id=legacy&client_secret=" + url.QueryEscape(sec), "invalid_request"},
	} {
		w := draft10Token(e, c.body, nil)
		if w.status != 400 {
			t.Errorf("%s: status %d", name, w.status)
		}
		wantJSONHeaders(t, w)
		m := w.json(t)
		inner, ok := m["error"].(map[string]any)
		if !ok || len(m) != 1 || len(inner) != 2 || inner["type"] != "OAuthException" {
			t.Errorf("%s: body %s", name, w.body)
			continue
		}
		msg, _ := inner["message"].(string)
		if !strings.HasPrefix(msg, c.code+": ") || len(msg) <= len(c.code)+2 || !descRe.MatchString(msg) {
			t.Errorf("%s: message %q", name, msg)
		}
	}
	// The default-profile client on the same server: standard errors.
	wantTokenError(t, e.token(url.Values{"grant_type": {"authorization_code"}, "code": {"nope"}}, basic("conf", e.secret)), 400, "invalid_grant")
	// Without the option, draft-10 clients get standard errors too.
	e2, sec2, _ := newDraft10Env(t)
	wantTokenError(t, draft10Token(e2, strings.Replace(bodyCreds(sec2, "x"), "code=x", "code=nope.nope", 1), nil), 400, "invalid_grant")
}

func TestDraft10_UnsupportedGrantTypes(t *testing.T) {
	e, sec, _ := newDraft10Env(t)
	for _, gt := range []string{"none", "assertion", "password"} {
		w := draft10Token(e, "grant_type="+gt+"&client_id=legacy&client_secret="+url.QueryEscape(sec)+"&username=a&password=b&assertion_type=urn%3Ax&assertion=y", nil)
		wantTokenError(t, w, 400, "unsupported_grant_type")
	}
}

func TestDraft10_RefreshStillRotates(t *testing.T) {
	e, sec, _ := newDraft10Env(t, quietLog)
	_, rt := wantTokens(t, draft10Token(e, bodyCreds(sec, draft10Code(t, e, "legacy", "abc")), nil))
	body := "grant_type=refresh_token&client_id=legacy&client_secret=" + url.QueryEscape(sec) + "&refresh_token=" + url.QueryEscape(rt)
	at2, rt2 := wantTokens(t, draft10Token(e, body, nil))
	if rt2 == rt || rt2 == "" {
		t.Fatalf("not rotated")
	}
	wantTokenError(t, draft10Token(e, body, nil), 400, "invalid_grant")
	if _, err := e.srv.CheckToken(t.Context(), at2); err == nil {
		t.Errorf("reuse did not revoke the family")
	}
}

func TestDraft10_DefaultProfileGetsNone(t *testing.T) {
	e, _, _ := newDraft10Env(t, quietLog)
	at, _ := e.tokens("read")
	if !codeRe.MatchString(e.code("read")) {
		t.Errorf("default client got a draft-10 style code")
	}
	info, _ := e.srv.CheckToken(t.Context(), at)
	if info == nil || info.Draft10 {
		t.Fatalf("default token flagged draft-10: %+v", info)
	}
	// The OAuth scheme and oauth_token are refused for its token: on a
	// default-profile server they are unsupported carriers, so the request
	// has no credentials (RFC 6750 §3.1: 401, Bearer challenge, no error
	// code), also for a malformed OAuth header.
	draftForms := map[string]*fakeReq{
		"OAuth header":      {hdr: http.Header{"Authorization": {"OAuth " + at}}},
		"oauth header":      {hdr: http.Header{"Authorization": {"oauth " + at}}},
		"OAuth malformed":   {hdr: http.Header{"Authorization": {"OAuth a b"}}},
		"query oauth_token": {query: "oauth_token=" + url.QueryEscape(at)},
		"form oauth_token":  {method: "POST", body: "oauth_token=" + url.QueryEscape(at), hdr: withForm(nil)},
	}
	for name, r := range draftForms {
		_, w := e.resource(r)
		wantNoTokenChallenge(t, w)
		if t.Failed() {
			t.Fatalf("%s: %v", name, w)
		}
	}
	// ... and, expired, the same; in the Bearer scheme it is invalid_token,
	// never the draft-10 expired_token.
	e.now = e.now.Add(time.Hour)
	for name, r := range draftForms {
		_, w := e.resource(r)
		wantNoTokenChallenge(t, w)
		if t.Failed() {
			t.Fatalf("expired, %s: %v", name, w)
		}
	}
	if _, w := e.resource(&fakeReq{hdr: bearer(at)}); w == nil || w.status != 401 || w.json(t)["error"] != "invalid_token" || strings.Contains(w.hdr.Get("WWW-Authenticate"), "expired_token") {
		t.Errorf("Bearer: %v", w)
	}
	// The query access_token stays ignored.
	_, w := e.resource(&fakeReq{query: "access_token=" + url.QueryEscape(at)})
	wantNoTokenChallenge(t, w)
	// PKCE still required.
	q := codeQuery("conf", confCB, "", "s")
	q.Del("code_challenge")
	q.Del("code_challenge_method")
	wantRedirectError(t, e.authorize(q), confCB, "invalid_request", "s")
}

func TestDraft10_ServerWideProfile(t *testing.T) {
	e := newEnv(t, false, func(c *core.Config) { c.Profile = core.ProfileDraft10 })
	// Every client is in: the confidential one needs no PKCE, gets a
	// draft-10 code and may use the OAuth scheme.
	q := codeQuery("conf", confCB, "", "s")
	q.Del("code_challenge")
	q.Del("code_challenge_method")
	code := wantCodeRedirect(t, e.codeFor(q), confCB, "s").Get("code")
	if !draft10CodeRe.MatchString(code) {
		t.Errorf("code %q", code)
	}
	w := e.token(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {confCB}}, basic("conf", e.secret))
	at, _ := wantTokens(t, w)
	if info, w := e.resource(&fakeReq{hdr: http.Header{"Authorization": {"OAuth " + at}}}); info == nil {
		t.Errorf("OAuth scheme refused: %d %s", w.status, w.body)
	}
	// Public clients still need PKCE (nothing else protects their codes).
	q = codeQuery("pub", publicCB, "", "s")
	q.Del("code_challenge")
	q.Del("code_challenge_method")
	wantRedirectError(t, e.authorize(q), publicCB, "invalid_request", "s")
	// Exact redirect matching stays on.
	wantErrorPage(t, e.authorize(codeQuery("conf", confCB+"/", "", "s")), 400)
}
