package adaptertest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/oauth2kit/oauth2kit/core"
)

// idTokenFor runs a login in the env's browser for scope (openid ...) and
// redeems the code; it returns the id_token's claims and the raw token.
func (e *env) idTokenFor(q url.Values) (map[string]any, string) {
	e.t.Helper()
	r := e.loginAndApprove(q)
	return e.redeemIDToken(r)
}

func (e *env) redeemIDToken(r *response) (map[string]any, string) {
	e.t.Helper()
	code := e.location(r).Query().Get("code")
	if code == "" {
		e.t.Fatalf("no code in %s", r.header.Get("Location"))
	}
	m := decodeJSON(e.t, e.tokenRequest(confID, authBasic, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {verifier}, "redirect_uri": {confRedirect}}))
	raw, _ := m["id_token"].(string)
	return jwtClaims(e.t, raw), raw
}

func num(v any) int64 {
	switch n := v.(type) {
	case float64:
		return int64(n)
	}
	return -1
}

func sessionTests() []test {
	return []test{
		{"PromptNoneUsesTheSession", func(t *testing.T, e *env) {
			first, _ := e.idTokenFor(authzQuery(confID, confRedirect, "openid read", "s1"))
			if first["sid"] == nil {
				t.Fatalf("id_token without sid after a login: %v", first)
			}
			e.clock.advance(5 * time.Minute)
			q := with(authzQuery(confID, confRedirect, "openid read", "s2"), "prompt", "none")
			r := e.authorize(e.browser, q.Encode())
			wantStatus(t, r, 303)
			again, _ := e.redeemIDToken(r)
			if again["sub"] != userName || again["sid"] != first["sid"] || num(again["auth_time"]) != num(first["auth_time"]) {
				t.Errorf("silent id_token %v; want the session's sub, sid and auth_time of %v", again, first)
			}
			// A scope the user never approved: consent_required.
			q = with(authzQuery(confID, confRedirect, "openid write", "s3"), "prompt", "none")
			e.wantRedirectError(e.authorize(e.browser, q.Encode()), confRedirect, "consent_required", "s3")
			// Another browser has no session.
			q = with(authzQuery(confID, confRedirect, "openid read", "s4"), "prompt", "none")
			e.wantRedirectError(e.authorize(e.newBrowser(), q.Encode()), confRedirect, "login_required", "s4")
		}},
		{"MaxAge", func(t *testing.T, e *env) {
			first, _ := e.idTokenFor(authzQuery(confID, confRedirect, "openid read", "s1"))
			e.clock.advance(2 * time.Minute)
			for _, ma := range []string{"0", "60"} {
				q := with(with(authzQuery(confID, confRedirect, "openid read", "m"), "prompt", "none"), "max_age", ma)
				e.wantRedirectError(e.authorize(e.browser, q.Encode()), confRedirect, "login_required", "m")
			}
			// Without prompt=none, max_age=1 shows the login page and the
			// new login has a later auth_time.
			q := with(authzQuery(confID, confRedirect, "openid read", "m"), "max_age", "1")
			again, _ := e.idTokenFor(q)
			if num(again["auth_time"]) <= num(first["auth_time"]) {
				t.Errorf("auth_time after max_age=1: %v, before %v", again["auth_time"], first["auth_time"])
			}
			q = with(with(authzQuery(confID, confRedirect, "openid read", "m"), "prompt", "none"), "max_age", "600")
			wantStatus(t, e.authorize(e.browser, q.Encode()), 303)
		}},
		{"LogoutWithHint", func(t *testing.T, e *env) {
			_, hint := e.idTokenFor(authzQuery(confID, confRedirect, "openid read", "s1"))
			e.clock.advance(2 * time.Hour) // an expired hint is still a proof
			q := url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {confLoggedOut}, "state": {"bye/+ü"}}
			r := e.get(e.browser, "/oauth2/logout?"+q.Encode(), nil)
			wantStatus(t, r, 303)
			if loc := e.location(r); loc.Scheme+"://"+loc.Host+loc.Path != confLoggedOut || loc.Query().Get("state") != "bye/+ü" {
				t.Errorf("logout redirected to %s", loc)
			}
			q2 := with(authzQuery(confID, confRedirect, "openid read", "s2"), "prompt", "none")
			e.wantRedirectError(e.authorize(e.browser, q2.Encode()), confRedirect, "login_required", "s2")
		}},
		{"LogoutRefusals", func(t *testing.T, e *env) {
			_, hint := e.idTokenFor(authzQuery(confID, confRedirect, "openid read", "s1"))
			parts := strings.Split(hint, ".")
			none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + parts[1] + "."
			other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			kid := ""
			for _, k := range e.jwks(t) {
				if k["alg"] == "ES256" {
					kid, _ = k["kid"].(string) // our ES256 kid, a foreign ES256 key
				}
			}
			foreign := foreignHint(t, other, parts[1], kid)
			for name, q := range map[string]url.Values{
				"unregistered URI":   {"id_token_hint": {hint}, "post_logout_redirect_uri": {"https://evil.example/"}},
				"query-modified URI": {"id_token_hint": {hint}, "post_logout_redirect_uri": {confLoggedOut + "?next=https://evil.example/"}},
				"URI without client": {"post_logout_redirect_uri": {confLoggedOut}},
				"alg none hint":      {"id_token_hint": {none}, "post_logout_redirect_uri": {confLoggedOut}},
				"foreign hint":       {"id_token_hint": {foreign}, "post_logout_redirect_uri": {confLoggedOut}},
				"other client_id":    {"id_token_hint": {hint}, "client_id": {otherID}},
			} {
				r := e.get(e.browser, "/oauth2/logout?"+q.Encode(), nil)
				if r.status != 400 || r.header.Get("Location") != "" {
					t.Errorf("%s: %d Location %q, want a 400 page and no redirect", name, r.status, r.header.Get("Location"))
				}
			}
			// The session survived every refusal.
			q := with(authzQuery(confID, confRedirect, "openid read", "s2"), "prompt", "none")
			wantStatus(t, e.authorize(e.browser, q.Encode()), 303)
		}},
		{"LogoutConfirmation", func(t *testing.T, e *env) {
			e.idTokenFor(authzQuery(confID, confRedirect, "openid read", "s1"))
			q := url.Values{"client_id": {confID}, "post_logout_redirect_uri": {confLoggedOut}, "state": {"x"}}
			page := e.get(e.browser, "/oauth2/logout?"+q.Encode(), nil)
			wantPage(t, page, 200)
			f := pageFields(page.body)
			if f.Get(core.FieldLogoutCSRF) == "" {
				t.Fatalf("confirmation page without a CSRF field:\n%s", page.body)
			}
			// A forged confirmation (no valid CSRF token) ends nothing.
			forged := url.Values{"client_id": {confID}, "post_logout_redirect_uri": {confLoggedOut}, "state": {"x"}, "confirm": {"yes"}, core.FieldLogoutCSRF: {"nope"}}
			wantStatus(t, e.post(e.browser, "/oauth2/logout", forged.Encode(), nil), 200)
			pn := with(authzQuery(confID, confRedirect, "openid read", "s2"), "prompt", "none")
			wantStatus(t, e.authorize(e.browser, pn.Encode()), 303)
			f.Set("confirm", "yes")
			r := e.post(e.browser, "/oauth2/logout", f.Encode(), nil)
			wantStatus(t, r, 303)
			if loc := e.location(r); loc.Query().Get("state") != "x" {
				t.Errorf("after confirmation: %s", loc)
			}
			e.wantRedirectError(e.authorize(e.browser, pn.Encode()), confRedirect, "login_required", "s2")
		}},
	}
}

// foreignHint signs payload (base64url claims) with a key this server
// never published, under a kid it does publish.
func foreignHint(t *testing.T, k *ecdsa.PrivateKey, payload string, kid string) string {
	t.Helper()
	claims, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		t.Fatal(err)
	}
	sg, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
	if err != nil {
		t.Fatal(err)
	}
	o, err := sg.Sign(claims)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := o.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
