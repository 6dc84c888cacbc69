package adaptertest

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/oauth2kit/oauth2kit/core"
)

// codeForm is the token request redeeming code for confRedirect.
func codeForm(code string) url.Values {
	return url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {confRedirect}, "code_verifier": {verifier}}
}

func tokenTests() []test {
	tests := []test{
		{"CodeWithBasicAuth", func(t *testing.T, e *env) {
			code := e.code(confID, confRedirect, "read write")
			tk := e.wantTokens(e.tokenRequest(confID, authBasic, codeForm(code)), true)
			if tk.scope != "read write" {
				t.Errorf("scope = %q, want %q", tk.scope, "read write")
			}
			e.wantMe(tk.access, userName, confID, "read write")
		}},
		{"CodeWithSecretInBody", func(t *testing.T, e *env) {
			code := e.code(confID, confRedirect, "read")
			tk := e.wantTokens(e.tokenRequest(confID, authBody, codeForm(code)), true)
			e.wantMe(tk.access, userName, confID, "read")
		}},
		{"PublicClientWithPKCE", func(t *testing.T, e *env) {
			code := e.code(pubID, pubRedirect, "read")
			form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {pubRedirect}, "code_verifier": {verifier}}
			tk := e.wantTokens(e.tokenRequest(pubID, authNone, form), true)
			e.wantMe(tk.access, userName, pubID, "read")
		}},
		{"PublicClientWithSecretIsRefused", func(t *testing.T, e *env) {
			code := e.code(pubID, pubRedirect, "read")
			form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {pubRedirect},
				"code_verifier": {verifier}, "client_id": {pubID}, "client_secret": {"guess"}}
			r := e.post(e.api, "/oauth2/token", form.Encode(), nil)
			if r.status != 400 && r.status != 401 {
				t.Fatalf("status %d, want 400 or 401", r.status)
			}
			wantOAuthError(t, r, r.status, "invalid_client")
		}},
		{"WrongVerifierBurnsCode", func(t *testing.T, e *env) {
			code := e.code(confID, confRedirect, "read")
			bad := codeForm(code)
			bad.Set("code_verifier", strings.Repeat("x", 43))
			wantOAuthError(t, e.tokenRequest(confID, authBasic, bad), 400, "invalid_grant")
			// The right verifier no longer helps.
			wantOAuthError(t, e.tokenRequest(confID, authBasic, codeForm(code)), 400, "invalid_grant")
		}},
		{"MissingVerifier", func(t *testing.T, e *env) {
			code := e.code(confID, confRedirect, "read")
			form := codeForm(code)
			form.Del("code_verifier")
			wantOAuthError(t, e.tokenRequest(confID, authBasic, form), 400, "invalid_grant")
			wantOAuthError(t, e.tokenRequest(confID, authBasic, codeForm(code)), 400, "invalid_grant")
		}},
		{"VerifierWithoutChallenge", func(t *testing.T, e *env) {
			q := url.Values{"response_type": {"code"}, "client_id": {optID}, "redirect_uri": {optRedirect}, "state": {"o"}}
			code := e.location(e.loginAndApprove(q)).Query().Get("code")
			form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {optRedirect}, "code_verifier": {verifier}}
			r := e.tokenRequest(optID, authBasic, form)
			if r.status != 400 {
				t.Fatalf("status %d, want 400", r.status)
			}
			m := decodeJSON(t, r)
			if m["error"] != "invalid_request" && m["error"] != "invalid_grant" {
				t.Errorf("error = %v, want invalid_request (or invalid_grant)", m["error"])
			}
		}},
		{"OptionalPKCEWithoutVerifier", func(t *testing.T, e *env) {
			q := url.Values{"response_type": {"code"}, "client_id": {optID}, "redirect_uri": {optRedirect}, "state": {"o"}}
			code := e.location(e.loginAndApprove(q)).Query().Get("code")
			form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {optRedirect}}
			tk := e.wantTokens(e.tokenRequest(optID, authBasic, form), true)
			e.wantMe(tk.access, userName, optID, "read")
		}},
		{"CodeReplayRevokesTokens", func(t *testing.T, e *env) {
			code := e.code(confID, confRedirect, "read")
			tk := e.wantTokens(e.tokenRequest(confID, authBasic, codeForm(code)), true)
			e.wantMe(tk.access, userName, confID, "read")
			wantOAuthError(t, e.tokenRequest(confID, authBasic, codeForm(code)), 400, "invalid_grant")
			e.wantDead(tk.access)
			wantOAuthError(t, e.refresh(tk.refresh, ""), 400, "invalid_grant")
		}},
		{"InvalidReplayDoesNotRevoke", func(t *testing.T, e *env) {
			code := e.code(confID, confRedirect, "read")
			tk := e.wantTokens(e.tokenRequest(confID, authBasic, codeForm(code)), true)
			bad := codeForm(code)
			bad.Set("code_verifier", strings.Repeat("y", 43))
			wantOAuthError(t, e.tokenRequest(confID, authBasic, bad), 400, "invalid_grant")
			wantOAuthError(t, e.tokenRequest(otherID, authBasic, codeForm(code)), 400, "invalid_grant")
			e.wantMe(tk.access, userName, confID, "read")
		}},
		{"CodeOfAnotherClient", func(t *testing.T, e *env) {
			code := e.code(confID, confRedirect, "read")
			wantOAuthError(t, e.tokenRequest(otherID, authBasic, codeForm(code)), 400, "invalid_grant")
		}},
		{"RedirectURIMismatch", func(t *testing.T, e *env) {
			code := e.code(confID, confRedirect, "read")
			form := codeForm(code)
			form.Set("redirect_uri", confRedirect+"/other")
			wantOAuthError(t, e.tokenRequest(confID, authBasic, form), 400, "invalid_grant")
		}},
		{"RedirectURIOmittedButSent", func(t *testing.T, e *env) {
			code := e.code(confID, confRedirect, "read")
			form := codeForm(code)
			form.Del("redirect_uri")
			wantOAuthError(t, e.tokenRequest(confID, authBasic, form), 400, "invalid_grant")
		}},
		{"UnknownCode", func(t *testing.T, e *env) {
			wantOAuthError(t, e.tokenRequest(confID, authBasic, codeForm("ac2.bogus.code")), 400, "invalid_grant")
			wantOAuthError(t, e.tokenRequest(confID, authBasic, codeForm("garbage")), 400, "invalid_grant")
		}},
		{"ExpiredCode", func(t *testing.T, e *env) {
			code := e.code(confID, confRedirect, "read")
			e.clock.advance(61 * time.Second)
			wantOAuthError(t, e.tokenRequest(confID, authBasic, codeForm(code)), 400, "invalid_grant")
		}},
		{"MissingCode", func(t *testing.T, e *env) {
			form := codeForm("")
			form.Del("code")
			wantOAuthError(t, e.tokenRequest(confID, authBasic, form), 400, "invalid_request")
		}},
		{"RepeatedParameter", func(t *testing.T, e *env) {
			code := e.code(confID, confRedirect, "read")
			body := codeForm(code).Encode() + "&code=" + url.QueryEscape(code)
			wantOAuthError(t, e.post(e.api, "/oauth2/token", body, e.basic(confID)), 400, "invalid_request")
		}},
		{"BasicAndSecretInBody", func(t *testing.T, e *env) {
			code := e.code(confID, confRedirect, "read")
			form := codeForm(code)
			form.Set("client_secret", e.secrets[confID])
			wantOAuthError(t, e.post(e.api, "/oauth2/token", form.Encode(), e.basic(confID)), 400, "invalid_request")
			// The code was not touched: it still works.
			e.wantTokens(e.tokenRequest(confID, authBasic, codeForm(code)), true)
		}},
		{"TwoAuthorizationHeaders", func(t *testing.T, e *env) {
			hdr := e.basic(confID)
			hdr.Add("Authorization", core.EncodeBasic(otherID, e.secrets[otherID]))
			r := e.post(e.api, "/oauth2/token", url.Values{"grant_type": {"client_credentials"}}.Encode(), hdr)
			wantOAuthError(t, r, 400, "invalid_request")
		}},
		{"BadSecretBasic", func(t *testing.T, e *env) {
			code := e.code(confID, confRedirect, "read")
			hdr := http.Header{"Authorization": {core.EncodeBasic(confID, "not-the-secret")}}
			r := e.post(e.api, "/oauth2/token", codeForm(code).Encode(), hdr)
			wantOAuthError(t, r, 401, "invalid_client")
			wantBasicChallenge(t, r)
			// Client authentication comes before the code: it still works.
			e.wantTokens(e.tokenRequest(confID, authBasic, codeForm(code)), true)
		}},
		{"UnknownClientBasic", func(t *testing.T, e *env) {
			hdr := http.Header{"Authorization": {core.EncodeBasic("nobody", "whatever")}}
			r := e.post(e.api, "/oauth2/token", url.Values{"grant_type": {"client_credentials"}}.Encode(), hdr)
			wantOAuthError(t, r, 401, "invalid_client")
			wantBasicChallenge(t, r)
		}},
		{"MalformedBasic", func(t *testing.T, e *env) {
			hdr := http.Header{"Authorization": {"Basic %%%not-base64"}}
			r := e.post(e.api, "/oauth2/token", url.Values{"grant_type": {"client_credentials"}}.Encode(), hdr)
			wantOAuthError(t, r, 401, "invalid_client")
			wantBasicChallenge(t, r)
		}},
		{"BadSecretInBody", func(t *testing.T, e *env) {
			form := url.Values{"grant_type": {"client_credentials"}, "client_id": {confID}, "client_secret": {"not-the-secret"}}
			r := e.post(e.api, "/oauth2/token", form.Encode(), nil)
			if r.status != 400 && r.status != 401 {
				t.Fatalf("status %d, want 400 or 401", r.status)
			}
			wantOAuthError(t, r, r.status, "invalid_client")
		}},
		{"NoClientAuthentication", func(t *testing.T, e *env) {
			r := e.post(e.api, "/oauth2/token", url.Values{"grant_type": {"client_credentials"}}.Encode(), nil)
			if r.status != 400 && r.status != 401 {
				t.Fatalf("status %d, want 400 or 401", r.status)
			}
			wantOAuthError(t, r, r.status, "invalid_client")
		}},
		{"BasicCredentialsAreFormDecoded", func(t *testing.T, e *env) {
			// Both parts are form-urlencoded before base64 (RFC 6749
			// §2.3.1): "+" is "%2B", " " is "+".
			const secret = "a secret with spaces, + plus, % percent & ampersand"
			c, _, err := core.NewClient(core.ClientSpec{ID: "my client+%", Secret: secret, GrantTypes: []string{core.GrantClientCredentials}})
			if err != nil {
				t.Fatal(err)
			}
			e.store.AddClient(c)
			hdr := http.Header{"Authorization": {core.EncodeBasic("my client+%", secret)}}
			r := e.post(e.api, "/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}.Encode(), hdr)
			tk := e.wantTokens(r, false)
			// A client_credentials token has no user: sub stays empty.
			e.wantMe(tk.access, "", "my client+%", "read")
		}},
		{"SecretInQueryIsRefused", func(t *testing.T, e *env) {
			path := "/oauth2/token?client_secret=" + url.QueryEscape(e.secrets[confID])
			r := e.post(e.api, path, url.Values{"grant_type": {"client_credentials"}}.Encode(), e.basic(confID))
			wantOAuthError(t, r, 400, "invalid_request")
		}},
		{"GetIs405", func(t *testing.T, e *env) {
			r := e.get(e.api, "/oauth2/token?grant_type=client_credentials", e.basic(confID))
			wantOAuthError(t, r, 405, "invalid_request")
			wantHeader(t, r, "Allow", "POST")
		}},
		{"JSONBodyIsRefused", func(t *testing.T, e *env) {
			hdr := e.basic(confID)
			hdr.Set("Content-Type", "application/json")
			r := e.post(e.api, "/oauth2/token", `{"grant_type":"client_credentials"}`, hdr)
			wantOAuthError(t, r, 400, "invalid_request")
		}},
		{"NonUTF8CharsetIsRefused", func(t *testing.T, e *env) {
			hdr := e.basic(confID)
			hdr.Set("Content-Type", "application/x-www-form-urlencoded; charset=iso-8859-1")
			r := e.post(e.api, "/oauth2/token", "grant_type=client_credentials", hdr)
			wantOAuthError(t, r, 400, "invalid_request")
		}},
		{"OversizedBody", func(t *testing.T, e *env) {
			body := "grant_type=client_credentials&pad=" + strings.Repeat("a", 70<<10)
			r := e.post(e.api, "/oauth2/token", body, e.basic(confID))
			wantOAuthError(t, r, 413, "invalid_request")
		}},
		{"MissingGrantType", func(t *testing.T, e *env) {
			wantOAuthError(t, e.tokenRequest(confID, authBasic, url.Values{"scope": {"read"}}), 400, "invalid_request")
		}},
		{"ClientCredentials", func(t *testing.T, e *env) {
			r := e.tokenRequest(confID, authBasic, url.Values{"grant_type": {"client_credentials"}, "scope": {"write read"}})
			tk := e.wantTokens(r, false)
			if tk.scope != "read write" {
				t.Errorf("scope = %q, want %q", tk.scope, "read write")
			}
			// No user is involved, so the handler sees none (a client
			// named like a user must not pass for that user).
			e.wantMe(tk.access, "", confID, "read write")
		}},
		{"ClientCredentialsSecretInBody", func(t *testing.T, e *env) {
			tk := e.wantTokens(e.tokenRequest(confID, authBody, url.Values{"grant_type": {"client_credentials"}}), false)
			if tk.scope != "read" {
				t.Errorf("scope = %q, want the default %q", tk.scope, "read")
			}
		}},
		{"ClientCredentialsUnknownScope", func(t *testing.T, e *env) {
			r := e.tokenRequest(confID, authBasic, url.Values{"grant_type": {"client_credentials"}, "scope": {"read root"}})
			wantOAuthError(t, r, 400, "invalid_scope")
		}},
		{"ClientCredentialsPublicClient", func(t *testing.T, e *env) {
			r := e.tokenRequest(pubID, authNone, url.Values{"grant_type": {"client_credentials"}})
			if r.status != 400 && r.status != 401 {
				t.Fatalf("status %d, want 400 or 401", r.status)
			}
			wantOAuthError(t, r, r.status, "invalid_client")
		}},
		{"ClientCredentialsNotAllowed", func(t *testing.T, e *env) {
			r := e.tokenRequest(optID, authBasic, url.Values{"grant_type": {"client_credentials"}})
			wantOAuthError(t, r, 400, "unauthorized_client")
		}},
	}
	for _, gt := range []string{"password", "implicit", "token", "assertion", "none", "urn:ietf:params:oauth:grant-type:device_code"} {
		tests = append(tests, test{"UnsupportedGrantType/" + gt, func(t *testing.T, e *env) {
			form := url.Values{"grant_type": {gt}, "username": {userName}, "password": {userPassword}}
			wantOAuthError(t, e.tokenRequest(confID, authBasic, form), 400, "unsupported_grant_type")
		}})
	}
	return tests
}

// wantBasicChallenge: a failed Basic authentication names Basic in
// WWW-Authenticate (RFC 6749 §5.2).
func wantBasicChallenge(t *testing.T, r *response) {
	t.Helper()
	hs := r.header.Values("WWW-Authenticate")
	if len(hs) != 1 || !strings.HasPrefix(hs[0], "Basic ") && hs[0] != "Basic" {
		t.Errorf("%s: WWW-Authenticate = %q, want a Basic challenge", r.what, hs)
	}
}

func refreshTests() []test {
	return []test{
		{"Rotation", func(t *testing.T, e *env) {
			tk := e.userTokens("read write")
			next := e.wantTokens(e.refresh(tk.refresh, ""), true)
			if next.refresh == tk.refresh {
				t.Error("the refresh token was not rotated")
			}
			if next.access == tk.access {
				t.Error("the access token was not renewed")
			}
			if next.scope != "read write" {
				t.Errorf("scope = %q, want the original %q", next.scope, "read write")
			}
			e.wantMe(next.access, userName, confID, "read write")
			// The rotated token keeps working for the next rotation.
			third := e.wantTokens(e.refresh(next.refresh, ""), true)
			e.wantMe(third.access, userName, confID, "read write")
		}},
		{"ReuseRevokesFamily", func(t *testing.T, e *env) {
			tk := e.userTokens("read")
			next := e.wantTokens(e.refresh(tk.refresh, ""), true)
			wantOAuthError(t, e.refresh(tk.refresh, ""), 400, "invalid_grant")
			wantOAuthError(t, e.refresh(next.refresh, ""), 400, "invalid_grant")
			e.wantDead(next.access)
			e.wantDead(tk.access)
		}},
		{"ReuseDoesNotTouchOtherGrants", func(t *testing.T, e *env) {
			a := e.userTokens("read")
			b := e.userTokens("read")
			e.wantTokens(e.refresh(a.refresh, ""), true)
			wantOAuthError(t, e.refresh(a.refresh, ""), 400, "invalid_grant")
			e.wantMe(b.access, userName, confID, "read")
			e.wantTokens(e.refresh(b.refresh, ""), true)
		}},
		{"NarrowScope", func(t *testing.T, e *env) {
			tk := e.userTokens("read admin")
			narrow := e.wantTokens(e.refresh(tk.refresh, "read"), true)
			if narrow.scope != "read" {
				t.Errorf("scope = %q, want %q", narrow.scope, "read")
			}
			e.wantMe(narrow.access, userName, confID, "read")
			wantBearerError(t, e, e.get(e.api, PathAdmin, bearer(narrow.access)), 403, "insufficient_scope", AdminScope)
			// The grant keeps its scope: the next refresh may ask for all
			// of it again.
			full := e.wantTokens(e.refresh(narrow.refresh, ""), true)
			if full.scope != "admin read" {
				t.Errorf("scope after narrowing = %q, want the grant's %q", full.scope, "admin read")
			}
		}},
		{"WidenScopeIsRefused", func(t *testing.T, e *env) {
			tk := e.userTokens("read")
			wantOAuthError(t, e.refresh(tk.refresh, "read write"), 400, "invalid_scope")
			wantOAuthError(t, e.refresh(tk.refresh, "admin"), 400, "invalid_scope")
			// A refused request does not consume the token.
			e.wantTokens(e.refresh(tk.refresh, ""), true)
		}},
		{"OtherClientsRefreshToken", func(t *testing.T, e *env) {
			tk := e.userTokens("read")
			r := e.tokenRequest(otherID, authBasic, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tk.refresh}})
			wantOAuthError(t, r, 400, "invalid_grant")
			e.wantTokens(e.refresh(tk.refresh, ""), true)
		}},
		{"RequiresClientAuthentication", func(t *testing.T, e *env) {
			tk := e.userTokens("read")
			r := e.post(e.api, "/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tk.refresh}, "client_id": {confID}}.Encode(), nil)
			if r.status != 400 && r.status != 401 {
				t.Fatalf("status %d, want 400 or 401", r.status)
			}
			wantOAuthError(t, r, r.status, "invalid_client")
			e.wantTokens(e.refresh(tk.refresh, ""), true)
		}},
		{"PublicClient", func(t *testing.T, e *env) {
			tk := e.exchange(pubID, e.code(pubID, pubRedirect, "read"), pubRedirect)
			next := e.wantTokens(e.tokenRequest(pubID, authNone, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tk.refresh}}), true)
			e.wantMe(next.access, userName, pubID, "read")
		}},
		{"UnknownOrWrongTypeToken", func(t *testing.T, e *env) {
			tk := e.userTokens("read")
			wantOAuthError(t, e.refresh("rt2.bogus.value", ""), 400, "invalid_grant")
			wantOAuthError(t, e.refresh(tk.access, ""), 400, "invalid_grant")
		}},
		{"ExpiredAccessTokenThenRefresh", func(t *testing.T, e *env) {
			tk := e.userTokens("read")
			e.clock.advance(2 * time.Hour)
			e.wantDead(tk.access)
			next := e.wantTokens(e.refresh(tk.refresh, ""), true)
			e.wantMe(next.access, userName, confID, "read")
		}},
	}
}
