package adaptertest

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"hash"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/oauth2kit/oauth2kit/core"
)

// conformanceTests are the checks of the OpenID Foundation's OP test plans
// (Basic, Config, Form Post, RP-Initiated Logout) that implementations
// most often fail, one row per test module, named after it. The suite
// itself needs Java and MongoDB; these rows run everywhere the adapter
// suite runs.
func conformanceTests() []test {
	openid := func(state string) url.Values { return authzQuery(confID, confRedirect, "openid", state) }
	rows := []test{
		{"oidcc-discovery-issuer-and-endpoints", func(t *testing.T, e *env) {
			m := decodeJSON(t, e.get(e.api, "/.well-known/openid-configuration", nil))
			if m["issuer"] != e.base {
				t.Fatalf("issuer %v, want %q", m["issuer"], e.base)
			}
			for _, k := range []string{"authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri", "end_session_endpoint"} {
				if v, _ := m[k].(string); !strings.HasPrefix(v, e.base+"/") {
					t.Errorf("%s = %v, not under the issuer", k, m[k])
				}
			}
			for _, k := range []string{"response_types_supported", "subject_types_supported", "id_token_signing_alg_values_supported", "scopes_supported", "claims_supported"} {
				if _, ok := m[k].([]any); !ok {
					t.Errorf("%s missing", k)
				}
			}
		}},
		{"oidcc-discovery-jwks-kid-unique", func(t *testing.T, e *env) {
			seen := map[any]bool{}
			for _, k := range e.jwks(t) {
				if k["kid"] == nil || seen[k["kid"]] {
					t.Errorf("kid %v missing or repeated", k["kid"])
				}
				seen[k["kid"]] = true
			}
		}},
		{"oidcc-server-claims-sane", func(t *testing.T, e *env) {
			before := e.clock.now().Unix()
			c, _ := e.idTokenFor(with(openid("s"), "nonce", "n"))
			iat, exp, at := num(c["iat"]), num(c["exp"]), num(c["auth_time"])
			if iat < before-1 || iat > e.clock.now().Unix()+1 || exp <= iat || at > iat || at < before-1 {
				t.Errorf("iat %d exp %d auth_time %d around %d", iat, exp, at, before)
			}
		}},
		{"oidcc-ensure-request-with-nonce-echoed", func(t *testing.T, e *env) {
			n := `n "é" ` + strings.Repeat("x", 300)
			if c, _ := e.idTokenFor(with(openid("s"), "nonce", n)); c["nonce"] != n {
				t.Errorf("nonce %q", c["nonce"])
			}
		}},
		{"oidcc-ensure-request-without-nonce-succeeds-for-code-flow", func(t *testing.T, e *env) {
			if c, _ := e.idTokenFor(openid("s")); c["sub"] != userName {
				t.Errorf("claims %v", c)
			}
		}},
		{"oidcc-at-hash-per-algorithm", func(t *testing.T, e *env) {
			for alg, h := range map[string]func() hash.Hash{core.AlgRS256: sha256.New, core.AlgPS256: sha256.New, core.AlgES256: sha256.New, core.AlgEdDSA: sha512.New} {
				e.withClientAlg(confID, alg)
				code := e.location(e.loginAndApprove(openid("s"))).Query().Get("code")
				m := decodeJSON(t, e.tokenRequest(confID, authBasic, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {verifier}, "redirect_uri": {confRedirect}}))
				at, _ := m["access_token"].(string)
				raw, _ := m["id_token"].(string)
				d := h()
				d.Write([]byte(at))
				sum := d.Sum(nil)
				if c := jwtClaims(t, raw); c["at_hash"] != base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2]) || jwtHeader(t, raw)["alg"] != alg {
					t.Errorf("%s: at_hash %v", alg, c["at_hash"])
				}
			}
		}},
		{"oidcc-codereuse", func(t *testing.T, e *env) {
			code := e.location(e.loginAndApprove(openid("s"))).Query().Get("code")
			form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {verifier}, "redirect_uri": {confRedirect}}
			first := e.wantTokens(e.tokenRequest(confID, authBasic, form), true)
			wantOAuthError(t, e.tokenRequest(confID, authBasic, form), 400, "invalid_grant")
			e.wantDead(first.access)
		}},
		{"oidcc-prompt-none-not-logged-in", func(t *testing.T, e *env) {
			e.wantRedirectError(e.authorize(e.browser, with(openid("s"), "prompt", "none").Encode()), confRedirect, "login_required", "s")
		}},
		{"oidcc-prompt-none-logged-in", func(t *testing.T, e *env) {
			e.idTokenFor(openid("s"))
			r := e.authorize(e.browser, with(openid("s2"), "prompt", "none").Encode())
			e.wantRedirect(r, confRedirect, "code", "state", "iss")
		}},
		{"oidcc-max-age-1", func(t *testing.T, e *env) {
			first, _ := e.idTokenFor(openid("s"))
			e.clock.advance(2 * time.Second)
			again, _ := e.idTokenFor(with(openid("s"), "max_age", "1"))
			if num(again["auth_time"]) <= num(first["auth_time"]) {
				t.Errorf("auth_time %v not after %v", again["auth_time"], first["auth_time"])
			}
		}},
		{"oidcc-max-age-10000", func(t *testing.T, e *env) {
			e.idTokenFor(openid("s"))
			r := e.authorize(e.browser, with(with(openid("s"), "prompt", "none"), "max_age", "10000").Encode())
			e.wantRedirect(r, confRedirect, "code", "state", "iss")
		}},
		{"oidcc-unsigned-request-object-rejected-as-unsupported", func(t *testing.T, e *env) {
			q := with(openid("s"), "request", "eyJhbGciOiJub25lIn0.eyJub25jZSI6Im4ifQ.")
			e.wantRedirectError(e.authorize(e.browser, q.Encode()), confRedirect, "request_not_supported", "s")
		}},
		{"oidcc-unknown-parameters-ignored", func(t *testing.T, e *env) {
			q := with(with(openid("s"), "extra_parameter", "x"), "vendor_specific", "y")
			if c, _ := e.idTokenFor(q); c["sub"] != userName {
				t.Errorf("claims %v", c)
			}
		}},
		{"oidcc-response-type-missing", func(t *testing.T, e *env) {
			q := openid("s")
			q.Del("response_type")
			e.wantRedirectError(e.authorize(e.browser, q.Encode()), confRedirect, "invalid_request", "s")
		}},
		{"oidcc-userinfo-get-post-header-post-body", func(t *testing.T, e *env) {
			tk := e.userTokens("openid profile")
			for _, r := range []*response{
				e.get(e.api, "/oauth2/userinfo", bearer(tk.access)),
				e.post(e.api, "/oauth2/userinfo", "", bearer(tk.access)),
				e.post(e.api, "/oauth2/userinfo", url.Values{"access_token": {tk.access}}.Encode(), nil),
			} {
				if m := decodeJSON(t, r); r.status != 200 || m["sub"] != userName || m["name"] != "Alice Liddell" {
					t.Errorf("%s: %d %v", r.what, r.status, m)
				}
			}
		}},
		{"oidcc-claims-essential", func(t *testing.T, e *env) {
			claims := `{"userinfo":{"email":{"essential":true}},"id_token":{"name":null,"email_verified":{"essential":true},"sub":{"value":"forged"}}}`
			c, _ := e.idTokenFor(with(openid("s"), "claims", claims))
			if c["name"] != "Alice Liddell" || c["email_verified"] != true || c["sub"] != userName || c["email"] != nil {
				t.Errorf("id_token claims %v: want name and email_verified as requested, the server's sub, no email", c)
			}
			code := e.location(e.loginAndApprove(with(openid("s"), "claims", claims))).Query().Get("code")
			tk := e.wantTokens(e.tokenRequest(confID, authBasic, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {verifier}, "redirect_uri": {confRedirect}}), true)
			if m := decodeJSON(t, e.get(e.api, "/oauth2/userinfo", bearer(tk.access))); m["email"] != "alice@example.test" || m["name"] != nil {
				t.Errorf("userinfo %v: want email as requested (no email scope), no name", m)
			}
			e.wantRedirectError(e.authorize(e.browser, with(openid("s2"), "claims", "{not json").Encode()), confRedirect, "invalid_request", "s2")
		}},
		{"oidcc-form-post-basic", func(t *testing.T, e *env) {
			page := e.authorize(e.browser, with(openid("s"), "response_mode", "form_post").Encode())
			r := e.submitLogin(e.browser, page, userName, userPassword)
			if isConsentPage(r) {
				r = e.decide(e.browser, r, "approve")
			}
			if r.status != 200 || !strings.Contains(string(r.body), `method="post"`) || pageFields(r.body).Get("code") == "" {
				t.Errorf("form_post answer %d %s", r.status, r.body)
			}
		}},
		{"oidcc-rp-initiated-logout", func(t *testing.T, e *env) {
			_, hint := e.idTokenFor(openid("s"))
			r := e.get(e.browser, "/oauth2/logout?"+url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {confLoggedOut}, "state": {"z"}}.Encode(), nil)
			if q := e.location(r).Query(); r.status != 303 || q.Get("state") != "z" {
				t.Fatalf("logout: %d %v", r.status, r.header)
			}
			e.wantRedirectError(e.authorize(e.browser, with(openid("s"), "prompt", "none").Encode()), confRedirect, "login_required", "s")
		}},
		{"oidcc-rp-initiated-logout-bad-or-query-added-post-logout-redirect-uri", func(t *testing.T, e *env) {
			_, hint := e.idTokenFor(openid("s"))
			for _, u := range []string{"https://client.example.test/other", confLoggedOut + "?foo=bar", confLoggedOut + "/", strings.ToUpper(confLoggedOut)} {
				r := e.get(e.browser, "/oauth2/logout?"+url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {u}}.Encode(), nil)
				if r.status != 400 || r.header.Get("Location") != "" {
					t.Errorf("%s: %d %q", u, r.status, r.header.Get("Location"))
				}
			}
		}},
		{"oidcc-rp-initiated-logout-modified-id-token-hint", func(t *testing.T, e *env) {
			_, hint := e.idTokenFor(openid("s"))
			p := strings.Split(hint, ".")
			body, _ := base64.RawURLEncoding.DecodeString(p[1])
			forged := p[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(body), userName, "mallory", 1))) + "." + p[2]
			r := e.get(e.browser, "/oauth2/logout?"+url.Values{"id_token_hint": {forged}, "post_logout_redirect_uri": {confLoggedOut}}.Encode(), nil)
			if r.status != 400 || r.header.Get("Location") != "" {
				t.Errorf("modified hint: %d %q", r.status, r.header.Get("Location"))
			}
		}},
		{"oidcc-rp-initiated-logout-no-id-token-hint", func(t *testing.T, e *env) {
			e.idTokenFor(openid("s"))
			r := e.get(e.browser, "/oauth2/logout?"+url.Values{"client_id": {confID}, "post_logout_redirect_uri": {confLoggedOut}}.Encode(), nil)
			if r.status != 200 || pageFields(r.body).Get(core.FieldLogoutCSRF) == "" {
				t.Errorf("want a confirmation page: %d", r.status)
			}
			wantStatus(t, e.authorize(e.browser, with(openid("s"), "prompt", "none").Encode()), 303)
		}},
		{"oidcc-key-rotation-keeps-old-key-published", func(t *testing.T, e *env) {
			before := len(e.jwks(t))
			if _, err := e.srv.RotateKeys(core.SigningKey{Alg: core.AlgES256, Signer: newEC(t)}); err != nil {
				t.Fatal(err)
			}
			e.clock.advance(time.Hour + time.Second)
			set, err := e.srv.RotateKeys(core.SigningKey{Alg: core.AlgES256, Signer: newEC(t)})
			if err != nil {
				t.Fatal(err)
			}
			states := map[core.KeyState]int{}
			for _, k := range set {
				if k.Alg == core.AlgES256 {
					states[k.State]++
				}
			}
			if len(e.jwks(t)) != before+2 || states[core.KeySigning] != 1 || states[core.KeyRetired] != 1 || states[core.KeyPublished] != 1 {
				t.Errorf("after two rotations: %d keys (from %d), ES256 states %v", len(e.jwks(t)), before, states)
			}
		}},
	}
	return rows
}
