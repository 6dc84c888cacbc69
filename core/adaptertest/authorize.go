package adaptertest

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/oauth2kit/oauth2kit/core"
)

func metadataTests() []test {
	return []test{
		{"Document", func(t *testing.T, e *env) {
			r := e.get(e.api, "/.well-known/oauth-authorization-server", nil)
			wantStatus(t, r, 200)
			wantHeader(t, r, "Content-Type", "application/json")
			m := decodeJSON(t, r)
			wantStr := map[string]string{
				"issuer":                 e.base,
				"authorization_endpoint": e.path("/oauth2/authorize"),
				"token_endpoint":         e.path("/oauth2/token"),
				"revocation_endpoint":    e.path("/oauth2/revoke"),
				"introspection_endpoint": e.path("/oauth2/introspect"),
			}
			for k, v := range wantStr {
				if m[k] != v {
					t.Errorf("%s = %v, want %q", k, m[k], v)
				}
			}
			if m["authorization_response_iss_parameter_supported"] != true {
				t.Errorf("authorization_response_iss_parameter_supported = %v, want true", m["authorization_response_iss_parameter_supported"])
			}
			list := func(k string) []string {
				raw, ok := m[k].([]any)
				if !ok {
					t.Errorf("%s = %v, want a list", k, m[k])
					return nil
				}
				var out []string
				for _, v := range raw {
					s, _ := v.(string)
					out = append(out, s)
				}
				return out
			}
			exact := map[string][]string{
				"code_challenge_methods_supported": {"S256"},
				"response_types_supported":         {"code"},
				"scopes_supported":                 serverScopes,
			}
			for k, want := range exact {
				if got := list(k); !slices.Equal(got, want) {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
			atLeast := map[string][]string{
				"grant_types_supported":                 {"authorization_code", "refresh_token", "client_credentials"},
				"token_endpoint_auth_methods_supported": {"client_secret_basic", "client_secret_post", "none"},
			}
			for k, want := range atLeast {
				got := list(k)
				for _, w := range want {
					if !slices.Contains(got, w) {
						t.Errorf("%s = %q, want it to contain %q", k, got, w)
					}
				}
				for _, bad := range []string{"password", "implicit", "token"} {
					if slices.Contains(got, bad) {
						t.Errorf("%s = %q advertises %q", k, got, bad)
					}
				}
			}
		}},
		{"IssuerMatchesRedirectIss", func(t *testing.T, e *env) {
			r := e.get(e.api, "/.well-known/oauth-authorization-server", nil)
			issuer, _ := decodeJSON(t, r)["issuer"].(string)
			red := e.loginAndApprove(authzQuery(confID, confRedirect, "read", "st"))
			if iss := e.location(red).Query().Get("iss"); iss != issuer {
				t.Errorf("iss in the redirect %q differs from the metadata issuer %q", iss, issuer)
			}
			bad := e.authorize(e.browser, authzQuery(confID, confRedirect, "nope", "st").Encode())
			if iss := e.location(bad).Query().Get("iss"); iss != issuer {
				t.Errorf("iss in the error redirect %q differs from the metadata issuer %q", iss, issuer)
			}
		}},
		{"EveryEndpointIsMounted", func(t *testing.T, e *env) {
			m := decodeJSON(t, e.get(e.api, "/.well-known/oauth-authorization-server", nil))
			// GET on the POST-only endpoints reaches the kit (405 JSON,
			// not the router's 404); GET authorize without parameters is
			// the kit's error page.
			for _, k := range []string{"token_endpoint", "revocation_endpoint", "introspection_endpoint"} {
				u, _ := m[k].(string)
				r := e.get(e.api, strings.TrimPrefix(u, e.base), nil)
				wantOAuthError(t, r, 405, "invalid_request")
				wantHeader(t, r, "Allow", "POST")
			}
			u, _ := m["authorization_endpoint"].(string)
			wantPage(t, e.get(e.api, strings.TrimPrefix(u, e.base), nil), 400)
			r := e.get(e.api, "/oauth2/login", nil)
			wantPage(t, r, 405)
			wantHeader(t, r, "Allow", "POST")
		}},
		{"PostIs405", func(t *testing.T, e *env) {
			r := e.post(e.api, "/.well-known/oauth-authorization-server", "", nil)
			wantOAuthError(t, r, 405, "invalid_request")
		}},
	}
}

func authorizeFlowTests() []test {
	return []test{
		{"LoginPage", func(t *testing.T, e *env) {
			r := e.authorize(e.browser, authzQuery(confID, confRedirect, "read", "xyz").Encode())
			wantPage(t, r, 200)
			if !isLoginPage(r) {
				t.Fatalf("not the login page:\n%s", r.body)
			}
			if !strings.Contains(string(r.body), "Web &lt;App&gt; &amp; Co") {
				t.Errorf("the client name is not HTML-escaped on the page:\n%s", r.body)
			}
			if a := e.formAction(r.body); a != "/oauth2/login" {
				t.Errorf("the form posts to %q, want /oauth2/login", a)
			}
			hiddenFields(t, r.body)
			cookies := r.header.Values("Set-Cookie")
			var session *http.Cookie
			for _, line := range cookies {
				ck, err := http.ParseSetCookie(line)
				if err != nil {
					t.Fatalf("Set-Cookie %q: %v", line, err)
				}
				if ck.Name == core.SessionCookie {
					session = ck
					lower := strings.ToLower(line)
					if !strings.Contains(lower, "httponly") {
						t.Errorf("session cookie %q is not HttpOnly", line)
					}
					if !strings.Contains(lower, "samesite=lax") && !strings.Contains(lower, "samesite=strict") {
						t.Errorf("session cookie %q has no SameSite=Lax/Strict", line)
					}
				}
			}
			if session == nil {
				t.Fatalf("no %s cookie in %q", core.SessionCookie, cookies)
			}
			if session.Path != "/" {
				t.Errorf("session cookie path %q, want /", session.Path)
			}
			if len(session.Value) < 43 {
				t.Errorf("session cookie value has %d characters, want at least 43 (256 bits)", len(session.Value))
			}
			// The same browser keeps its session: no second cookie.
			again := e.authorize(e.browser, authzQuery(confID, confRedirect, "read", "xyz").Encode())
			wantPage(t, again, 200)
			for _, line := range again.header.Values("Set-Cookie") {
				if strings.HasPrefix(line, core.SessionCookie+"=") {
					t.Errorf("a browser with a session got a new session cookie %q", line)
				}
			}
		}},
		{"WrongPasswordShowsError", func(t *testing.T, e *env) {
			page := e.authorize(e.browser, authzQuery(confID, confRedirect, "read", "xyz").Encode())
			wantPage(t, page, 200)
			r := e.submitLogin(e.browser, page, userName, "wrong")
			wantPage(t, r, 200)
			if !isLoginPage(r) || !strings.Contains(string(r.body), "wrong username or password") {
				t.Fatalf("want the login page with an error, got:\n%s", r.body)
			}
			// The page carries fresh hidden fields that work.
			r = e.submitLogin(e.browser, r, userName, userPassword)
			wantPage(t, r, 200)
			if !isConsentPage(r) {
				t.Fatalf("want the consent page after a good login, got:\n%s", r.body)
			}
		}},
		{"ApproveRedirectsWithCodeStateIss", func(t *testing.T, e *env) {
			state := "st@te/ü &x=1+2%20"
			page := e.authorize(e.browser, authzQuery(confID, confRedirect, "read write", state).Encode())
			wantPage(t, page, 200)
			consent := e.submitLogin(e.browser, page, userName, userPassword)
			wantPage(t, consent, 200)
			if !isConsentPage(consent) || !strings.Contains(string(consent.body), `<span id="scope">read write</span>`) {
				t.Fatalf("want the consent page for %q, got:\n%s", "read write", consent.body)
			}
			r := e.decide(e.browser, consent, "approve")
			q := e.wantRedirect(r, confRedirect, "code", "state", "iss")
			if q.Get("state") != state {
				t.Errorf("state = %q, want %q byte for byte", q.Get("state"), state)
			}
			if len(q.Get("code")) < 22 {
				t.Errorf("code %q is too short to carry 128 bits", q.Get("code"))
			}
			tk := e.exchange(confID, q.Get("code"), confRedirect)
			if tk.scope != "read write" {
				t.Errorf("granted scope %q, want %q", tk.scope, "read write")
			}
			e.wantMe(tk.access, userName, confID, "read write")
		}},
		{"DenyRedirectsAccessDenied", func(t *testing.T, e *env) {
			page := e.authorize(e.browser, authzQuery(confID, confRedirect, "read", "deny-state").Encode())
			consent := e.submitLogin(e.browser, page, userName, userPassword)
			if !isConsentPage(consent) {
				t.Fatalf("want the consent page, got %d:\n%s", consent.status, consent.body)
			}
			r := e.decide(e.browser, consent, "deny")
			e.wantRedirectError(r, confRedirect, "access_denied", "deny-state")
			// Denial is not remembered as consent.
			page = e.authorize(e.browser, authzQuery(confID, confRedirect, "read", "again").Encode())
			if r := e.submitLogin(e.browser, page, userName, userPassword); !isConsentPage(r) {
				t.Errorf("after a denial the consent page must come again, got %d:\n%s", r.status, r.body)
			}
		}},
		{"BadDecisionIsRefused", func(t *testing.T, e *env) {
			page := e.authorize(e.browser, authzQuery(confID, confRedirect, "read", "s").Encode())
			consent := e.submitLogin(e.browser, page, userName, userPassword)
			r := e.decide(e.browser, consent, "yes please")
			wantPage(t, r, 400)
		}},
		{"RememberedConsentSkipsConsentPage", func(t *testing.T, e *env) {
			e.loginAndApprove(authzQuery(confID, confRedirect, "read write", "one"))
			page := e.authorize(e.browser, authzQuery(confID, confRedirect, "read write", "two").Encode())
			r := e.submitLogin(e.browser, page, userName, userPassword)
			q := e.wantRedirect(r, confRedirect, "code", "state", "iss")
			if q.Get("state") != "two" {
				t.Errorf("state = %q, want two", q.Get("state"))
			}
			// A narrower scope is covered too.
			page = e.authorize(e.browser, authzQuery(confID, confRedirect, "read", "three").Encode())
			e.wantRedirect(e.submitLogin(e.browser, page, userName, userPassword), confRedirect, "code", "state", "iss")
			// A wider one asks again.
			page = e.authorize(e.browser, authzQuery(confID, confRedirect, "read write admin", "four").Encode())
			if r := e.submitLogin(e.browser, page, userName, userPassword); !isConsentPage(r) {
				t.Errorf("a wider scope must ask for consent again, got %d:\n%s", r.status, r.body)
			}
		}},
		{"RegisteredQueryIsKept", func(t *testing.T, e *env) {
			r := e.loginAndApprove(authzQuery(otherID, otherRedirect, "read", "q"))
			q := e.wantRedirect(r, otherRedirect, "code", "state", "iss")
			e.exchange(otherID, q.Get("code"), otherRedirect)
		}},
		{"SingleRedirectURIMayBeOmitted", func(t *testing.T, e *env) {
			r := e.loginAndApprove(authzQuery(confID, "", "read", "q"))
			q := e.wantRedirect(r, confRedirect, "code", "state", "iss")
			e.exchange(confID, q.Get("code"), "")
		}},
		{"DefaultScope", func(t *testing.T, e *env) {
			tk := e.exchange(confID, e.code(confID, confRedirect, ""), confRedirect)
			if tk.scope != "read" {
				t.Errorf("scope = %q, want the default %q", tk.scope, "read")
			}
		}},
		{"LoopbackPortMayDiffer", func(t *testing.T, e *env) {
			redirect := "http://127.0.0.1:49152/callback"
			r := e.loginAndApprove(authzQuery(pubID, redirect, "read", "native"))
			q := e.wantRedirect(r, redirect, "code", "state", "iss")
			if u := e.location(r); u.Host != "127.0.0.1:49152" {
				t.Errorf("redirected to %s, want the requested port", u.Host)
			}
			e.exchange(pubID, q.Get("code"), redirect)
		}},
		{"PostAuthorizationRequest", func(t *testing.T, e *env) {
			r := e.post(e.browser, "/oauth2/authorize", authzQuery(confID, confRedirect, "read", "p").Encode(), nil)
			wantPage(t, r, 200)
			if !isLoginPage(r) {
				t.Fatalf("POST authorize: want the login page, got:\n%s", r.body)
			}
		}},
	}
}

func authorizeErrorTests() []test {
	pkce := "&code_challenge=" + core.S256Challenge(verifier) + "&code_challenge_method=S256"
	pageErrors := []struct {
		name  string
		query string
	}{
		{"UnknownClient", "response_type=code&client_id=nobody&redirect_uri=" + url.QueryEscape(confRedirect) + "&state=s" + pkce},
		{"MissingClientID", "response_type=code&redirect_uri=" + url.QueryEscape(confRedirect) + "&state=s" + pkce},
		{"UnregisteredRedirectURI", "response_type=code&client_id=" + confID + "&redirect_uri=" + url.QueryEscape("https://evil.example.test/callback") + "&state=s" + pkce},
		{"RedirectURIPrefixOnly", "response_type=code&client_id=" + confID + "&redirect_uri=" + url.QueryEscape(confRedirect+"/more") + "&state=s" + pkce},
		{"RedirectURICaseDiffers", "response_type=code&client_id=" + confID + "&redirect_uri=" + url.QueryEscape(strings.ToUpper(confRedirect)) + "&state=s" + pkce},
		{"RedirectURITrailingSlash", "response_type=code&client_id=" + confID + "&redirect_uri=" + url.QueryEscape(confRedirect+"/") + "&state=s" + pkce},
		{"OtherClientsRedirectURI", "response_type=code&client_id=" + confID + "&redirect_uri=" + url.QueryEscape(otherRedirect) + "&state=s" + pkce},
		{"LoopbackHostnameNotIP", "response_type=code&client_id=" + pubID + "&redirect_uri=" + url.QueryEscape("http://localhost:8080/callback") + "&state=s" + pkce},
		{"RedirectURIMissingWithSeveral", "response_type=code&client_id=" + pubID + "&state=s" + pkce},
		{"MalformedRedirectURI", "response_type=code&client_id=" + confID + "&redirect_uri=%zz&state=s" + pkce},
		{"RepeatedClientID", "response_type=code&client_id=" + confID + "&client_id=" + otherID + "&redirect_uri=" + url.QueryEscape(confRedirect) + "&state=s" + pkce},
		{"RepeatedRedirectURI", "response_type=code&client_id=" + confID + "&redirect_uri=" + url.QueryEscape(confRedirect) + "&redirect_uri=" + url.QueryEscape(confRedirect) + "&state=s" + pkce},
	}
	var tests []test
	for _, pe := range pageErrors {
		tests = append(tests, test{"ErrorPage/" + pe.name, func(t *testing.T, e *env) {
			r := e.authorize(e.browser, pe.query)
			if r.status < 400 || r.status > 499 {
				t.Fatalf("status %d, want a 4xx error page (never a redirect)\n%v\n%s", r.status, r.header, r.body)
			}
			wantPage(t, r, r.status)
		}})
	}

	redirectErrors := []struct {
		name     string
		redirect string // where the error goes
		query    url.Values
		code     string
	}{
		{"PublicClientWithoutPKCE", pubRedirect, url.Values{"response_type": {"code"}, "client_id": {pubID}, "redirect_uri": {pubRedirect}, "state": {"s-1"}}, "invalid_request"},
		{"ConfidentialClientWithoutPKCE", confRedirect, url.Values{"response_type": {"code"}, "client_id": {confID}, "redirect_uri": {confRedirect}, "state": {"s-2"}}, "invalid_request"},
		{"ResponseTypeToken", confRedirect, with(authzQuery(confID, confRedirect, "read", "s-3"), "response_type", "token"), "unsupported_response_type"},
		{"ResponseTypeCodeAndToken", confRedirect, with(authzQuery(confID, confRedirect, "read", "s-4"), "response_type", "code_and_token"), "unsupported_response_type"},
		{"ResponseTypeMissing", confRedirect, with(authzQuery(confID, confRedirect, "read", "s-5"), "response_type", ""), "invalid_request"},
		{"PlainChallengeMethod", confRedirect, with(with(authzQuery(confID, confRedirect, "read", "s-6"), "code_challenge", verifier), "code_challenge_method", "plain"), "invalid_request"},
		{"UnknownChallengeMethod", confRedirect, with(authzQuery(confID, confRedirect, "read", "s-7"), "code_challenge_method", "S512"), "invalid_request"},
		{"ShortChallenge", confRedirect, with(authzQuery(confID, confRedirect, "read", "s-8"), "code_challenge", "abc"), "invalid_request"},
		{"ChallengeWithBadCharacters", confRedirect, with(authzQuery(confID, confRedirect, "read", "s-9"), "code_challenge", strings.Repeat("a", 42)+"+"), "invalid_request"},
		{"UnknownScope", confRedirect, authzQuery(confID, confRedirect, "read delete", "s-10"), "invalid_scope"},
		{"MalformedScope", confRedirect, authzQuery(confID, confRedirect, "read\"x", "s-11"), "invalid_scope"},
	}
	for _, re := range redirectErrors {
		tests = append(tests, test{"Redirect/" + re.name, func(t *testing.T, e *env) {
			r := e.authorize(e.browser, re.query.Encode())
			e.wantRedirectError(r, re.redirect, re.code, re.query.Get("state"))
		}})
	}

	// A repeated parameter other than client_id/redirect_uri: the redirect
	// URI is trustworthy, so the error goes back to the client.
	repeated := []struct{ name, extra string }{
		{"RepeatedScope", "&scope=write"},
		{"RepeatedResponseType", "&response_type=code"},
		{"RepeatedCodeChallenge", "&code_challenge=" + core.S256Challenge("another-verifier-another-verifier-another-verifier")},
		{"RepeatedEmptyValueStillRepeated", "&scope="},
	}
	for _, rp := range repeated {
		tests = append(tests, test{"Redirect/" + rp.name, func(t *testing.T, e *env) {
			q := authzQuery(confID, confRedirect, "read", "rep").Encode() + rp.extra
			e.wantRedirectError(e.authorize(e.browser, q), confRedirect, "invalid_request", "rep")
		}})
	}
	tests = append(tests, test{"Redirect/UnknownParameterIgnored", func(t *testing.T, e *env) {
		q := authzQuery(confID, confRedirect, "read", "u").Encode() + "&nonsense=1&foo="
		r := e.authorize(e.browser, q)
		wantPage(t, r, 200)
		if !isLoginPage(r) {
			t.Errorf("an unknown parameter must be ignored; got:\n%s", r.body)
		}
	}})
	tests = append(tests, test{"Redirect/EmptyValueIsAbsent", func(t *testing.T, e *env) {
		// An empty state is no state: the error redirect has none.
		q := url.Values{"response_type": {"token"}, "client_id": {confID}, "redirect_uri": {confRedirect}, "state": {""}}
		e.wantRedirectError(e.authorize(e.browser, q.Encode()), confRedirect, "unsupported_response_type", "")
	}})
	return tests
}

// with returns a copy of q with k set to v (deleted when v is empty).
func with(q url.Values, k, v string) url.Values {
	out := url.Values{}
	for kk, vv := range q {
		out[kk] = slices.Clone(vv)
	}
	if v == "" {
		out.Del(k)
	} else {
		out.Set(k, v)
	}
	return out
}

func loginCSRFTests() []test {
	// loginPage starts a flow in the env's browser and returns the page.
	loginPage := func(e *env) *response {
		e.t.Helper()
		page := e.authorize(e.browser, authzQuery(confID, confRedirect, "read", "csrf").Encode())
		wantPage(e.t, page, 200)
		return page
	}
	refused := func(t *testing.T, r *response) {
		t.Helper()
		wantPage(t, r, 403)
		if strings.Contains(string(r.body), "code=") {
			t.Errorf("a refused form leaked a code:\n%s", r.body)
		}
	}
	return []test{
		{"NoSessionCookie", func(t *testing.T, e *env) {
			page := loginPage(e)
			f := hiddenFields(t, page.body)
			f.Set("username", userName)
			f.Set("password", userPassword)
			// The form, replayed from another user agent without the
			// cookie (a login CSRF or a stolen page).
			refused(t, e.post(e.api, "/oauth2/login", f.Encode(), nil))
		}},
		{"OtherBrowsersSession", func(t *testing.T, e *env) {
			page := loginPage(e)
			f := hiddenFields(t, page.body)
			f.Set("username", userName)
			f.Set("password", userPassword)
			other := e.newBrowser()
			// The other browser has its own session.
			e.authorize(other, authzQuery(confID, confRedirect, "read", "x").Encode())
			refused(t, e.post(other, "/oauth2/login", f.Encode(), nil))
		}},
		{"WrongCSRFToken", func(t *testing.T, e *env) {
			page := loginPage(e)
			f := hiddenFields(t, page.body)
			f.Set("username", userName)
			f.Set("password", userPassword)
			f.Set(core.FieldCSRF, changeFirst(f.Get(core.FieldCSRF)))
			refused(t, e.post(e.browser, "/oauth2/login", f.Encode(), nil))
		}},
		{"MissingCSRFToken", func(t *testing.T, e *env) {
			page := loginPage(e)
			f := hiddenFields(t, page.body)
			f.Set("username", userName)
			f.Set("password", userPassword)
			f.Del(core.FieldCSRF)
			refused(t, e.post(e.browser, "/oauth2/login", f.Encode(), nil))
		}},
		{"TamperedRequestHandle", func(t *testing.T, e *env) {
			page := loginPage(e)
			f := hiddenFields(t, page.body)
			f.Set("username", userName)
			f.Set("password", userPassword)
			h := []byte(f.Get(core.FieldRequest))
			h[len(h)/2] ^= 1
			f.Set(core.FieldRequest, string(h))
			r := e.post(e.browser, "/oauth2/login", f.Encode(), nil)
			if r.status != 400 && r.status != 403 {
				t.Fatalf("status %d, want 400 or 403", r.status)
			}
			wantPage(t, r, r.status)
		}},
		{"ConsentWithWrongCSRFToken", func(t *testing.T, e *env) {
			consent := e.submitLogin(e.browser, loginPage(e), userName, userPassword)
			if !isConsentPage(consent) {
				t.Fatalf("want the consent page, got %d:\n%s", consent.status, consent.body)
			}
			f := hiddenFields(t, consent.body)
			f.Set(core.FieldDecision, "approve")
			f.Set(core.FieldCSRF, changeFirst(f.Get(core.FieldCSRF)))
			refused(t, e.post(e.browser, "/oauth2/login", f.Encode(), nil))
			// Nor without the cookie.
			f = hiddenFields(t, consent.body)
			f.Set(core.FieldDecision, "approve")
			refused(t, e.post(e.api, "/oauth2/login", f.Encode(), nil))
		}},
		{"LoginFormCannotApprove", func(t *testing.T, e *env) {
			// The login step's fields with decision=approve must not skip
			// the login.
			page := loginPage(e)
			f := hiddenFields(t, page.body)
			f.Set(core.FieldDecision, "approve")
			r := e.post(e.browser, "/oauth2/login", f.Encode(), nil)
			if r.status == 303 || r.header.Get("Location") != "" {
				t.Fatalf("approving without a login redirected to %q", r.header.Get("Location"))
			}
		}},
	}
}

// changeFirst returns s with its first character replaced by a different
// one (a forged token that is never, by chance, the real one).
func changeFirst(s string) string {
	if s == "" {
		return "A"
	}
	if s[0] == 'A' {
		return "B" + s[1:]
	}
	return "A" + s[1:]
}
