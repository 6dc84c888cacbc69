package adaptertest

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/oauth2kit/oauth2kit/core"
)

// revoke posts a revocation request as client id.
func (e *env) revoke(id string, how clientAuth, token, hint string) *response {
	e.t.Helper()
	form := url.Values{"token": {token}}
	if hint != "" {
		form.Set("token_type_hint", hint)
	}
	return e.clientPost("/oauth2/revoke", id, how, form)
}

// wantRevoked checks the RFC 7009 success answer: 200, empty body.
func wantRevoked(t *testing.T, r *response) {
	t.Helper()
	wantStatus(t, r, 200)
	if len(r.body) != 0 {
		t.Errorf("%s: revocation answered with a body %q, want none", r.what, r.body)
	}
}

func revokeTests() []test {
	return []test{
		{"UnknownTokenIs200", func(t *testing.T, e *env) {
			for _, tok := range []string{"garbage", "rt2.nope.nope", "at2.nope.nope"} {
				wantRevoked(t, e.revoke(confID, authBasic, tok, ""))
			}
		}},
		{"RefreshTokenKillsItsAccessTokens", func(t *testing.T, e *env) {
			tk := e.userTokens("read")
			e.wantMe(tk.access, userName, confID, "read")
			wantRevoked(t, e.revoke(confID, authBasic, tk.refresh, "refresh_token"))
			e.wantDead(tk.access)
			wantOAuthError(t, e.refresh(tk.refresh, ""), 400, "invalid_grant")
			// Revoking again is still a success.
			wantRevoked(t, e.revoke(confID, authBasic, tk.refresh, ""))
		}},
		{"RefreshTokenKillsRotatedFamily", func(t *testing.T, e *env) {
			tk := e.userTokens("read")
			next := e.wantTokens(e.refresh(tk.refresh, ""), true)
			wantRevoked(t, e.revoke(confID, authBasic, next.refresh, ""))
			e.wantDead(tk.access)
			e.wantDead(next.access)
		}},
		{"AccessToken", func(t *testing.T, e *env) {
			tk := e.userTokens("read")
			wantRevoked(t, e.revoke(confID, authBody, tk.access, "access_token"))
			e.wantDead(tk.access)
			// The kit revokes the whole grant (RFC 7009 §2.1 allows it).
			wantOAuthError(t, e.refresh(tk.refresh, ""), 400, "invalid_grant")
		}},
		{"WrongHintStillRevokes", func(t *testing.T, e *env) {
			tk := e.userTokens("read")
			wantRevoked(t, e.revoke(confID, authBasic, tk.refresh, "access_token"))
			e.wantDead(tk.access)
		}},
		{"UnsupportedHint", func(t *testing.T, e *env) {
			tk := e.userTokens("read")
			r := e.revoke(confID, authBasic, tk.refresh, "id_token")
			wantOAuthError(t, r, 400, "unsupported_token_type")
			e.wantMe(tk.access, userName, confID, "read")
		}},
		{"OtherClientsTokenIsRefused", func(t *testing.T, e *env) {
			tk := e.userTokens("read")
			for _, tok := range []string{tk.refresh, tk.access} {
				r := e.revoke(otherID, authBasic, tok, "")
				wantOAuthError(t, r, 400, "unauthorized_client")
			}
			e.wantMe(tk.access, userName, confID, "read")
			e.wantTokens(e.refresh(tk.refresh, ""), true)
		}},
		{"RequiresClientAuthentication", func(t *testing.T, e *env) {
			tk := e.userTokens("read")
			r := e.post(e.api, "/oauth2/revoke", url.Values{"token": {tk.refresh}}.Encode(), nil)
			if r.status != 400 && r.status != 401 {
				t.Fatalf("status %d, want 400 or 401", r.status)
			}
			wantOAuthError(t, r, r.status, "invalid_client")
			hdr := http.Header{"Authorization": {core.EncodeBasic(confID, "wrong")}}
			r = e.post(e.api, "/oauth2/revoke", url.Values{"token": {tk.refresh}}.Encode(), hdr)
			wantOAuthError(t, r, 401, "invalid_client")
			wantBasicChallenge(t, r)
			e.wantMe(tk.access, userName, confID, "read")
		}},
		{"PublicClient", func(t *testing.T, e *env) {
			tk := e.exchange(pubID, e.code(pubID, pubRedirect, "read"), pubRedirect)
			wantRevoked(t, e.revoke(pubID, authNone, tk.refresh, ""))
			e.wantDead(tk.access)
		}},
		{"MissingToken", func(t *testing.T, e *env) {
			wantOAuthError(t, e.clientPost("/oauth2/revoke", confID, authBasic, url.Values{}), 400, "invalid_request")
		}},
		{"GetIs405", func(t *testing.T, e *env) {
			r := e.get(e.api, "/oauth2/revoke?token=x", e.basic(confID))
			wantOAuthError(t, r, 405, "invalid_request")
		}},
	}
}

// introspect posts an introspection request as client id.
func (e *env) introspect(id string, how clientAuth, token string) *response {
	e.t.Helper()
	return e.clientPost("/oauth2/introspect", id, how, url.Values{"token": {token}})
}

// wantInactive: exactly {"active":false} (RFC 7662 §2.2).
func wantInactive(t *testing.T, r *response) {
	t.Helper()
	wantStatus(t, r, 200)
	wantHeader(t, r, "Content-Type", "application/json")
	wantHeader(t, r, "Cache-Control", "no-store")
	m := decodeJSON(t, r)
	wantKeys(t, m, "active")
	if m["active"] != false {
		t.Errorf("%s: active = %v, want false", r.what, m["active"])
	}
}

// introspection members beyond the required ones that RFC 7662 §2.2
// defines and may appear.
var optionalIntrospection = map[string]bool{"username": true, "aud": true, "jti": true, "nbf": true}

// wantActive checks an active introspection answer and returns it.
func (e *env) wantActive(r *response, want map[string]string) map[string]any {
	t := e.t
	t.Helper()
	wantStatus(t, r, 200)
	wantHeader(t, r, "Content-Type", "application/json")
	wantHeader(t, r, "Cache-Control", "no-store")
	m := decodeJSON(t, r)
	if m["active"] != true {
		t.Fatalf("%s: active = %v, want true (%s)", r.what, m["active"], r.body)
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s: %s = %v, want %q", r.what, k, m[k], v)
		}
	}
	for k := range m {
		_, required := want[k]
		if !required && k != "active" && k != "exp" && k != "iat" && !optionalIntrospection[k] {
			t.Errorf("%s: unexpected member %q", r.what, k)
		}
	}
	return m
}

func unixOf(t *testing.T, m map[string]any, k string) time.Time {
	t.Helper()
	n, ok := m[k].(json.Number)
	if !ok {
		t.Fatalf("%s = %v, want a number", k, m[k])
	}
	v, err := n.Int64()
	if err != nil {
		t.Fatalf("%s = %v: %v", k, n, err)
	}
	return time.Unix(v, 0)
}

func introspectTests() []test {
	return []test{
		{"ActiveAccessToken", func(t *testing.T, e *env) {
			tk := e.userTokens("read write")
			m := e.wantActive(e.introspect(confID, authBasic, tk.access), map[string]string{
				"scope": "read write", "client_id": confID, "sub": userName, "token_type": "Bearer", "iss": e.base,
			})
			iat, exp := unixOf(t, m, "iat"), unixOf(t, m, "exp")
			if d := exp.Sub(iat); d != time.Hour {
				t.Errorf("exp - iat = %v, want 1h", d)
			}
			if d := e.clock.now().Sub(iat); d < -time.Minute || d > time.Minute {
				t.Errorf("iat %v is not now", iat)
			}
		}},
		{"ActiveWithSecretInBody", func(t *testing.T, e *env) {
			tk := e.userTokens("read")
			e.wantActive(e.introspect(confID, authBody, tk.access), map[string]string{
				"scope": "read", "client_id": confID, "sub": userName, "token_type": "Bearer", "iss": e.base,
			})
		}},
		{"ResourceServerMayIntrospectOthersAccessToken", func(t *testing.T, e *env) {
			tk := e.userTokens("read")
			e.wantActive(e.introspect(otherID, authBasic, tk.access), map[string]string{
				"client_id": confID, "sub": userName, "token_type": "Bearer", "iss": e.base, "scope": "read",
			})
		}},
		{"ClientCredentialsToken", func(t *testing.T, e *env) {
			tk := e.wantTokens(e.tokenRequest(confID, authBasic, url.Values{"grant_type": {"client_credentials"}}), false)
			e.wantActive(e.introspect(confID, authBasic, tk.access), map[string]string{
				"scope": "read", "client_id": confID, "sub": confID, "token_type": "Bearer", "iss": e.base,
			})
		}},
		{"RevokedToken", func(t *testing.T, e *env) {
			tk := e.userTokens("read")
			wantRevoked(t, e.revoke(confID, authBasic, tk.refresh, ""))
			wantInactive(t, e.introspect(confID, authBasic, tk.access))
			wantInactive(t, e.introspect(confID, authBasic, tk.refresh))
		}},
		{"GarbageToken", func(t *testing.T, e *env) {
			for _, tok := range []string{"garbage", "at2.x.y", "rt2.x.y", "ac2.x.y"} {
				wantInactive(t, e.introspect(confID, authBasic, tok))
			}
		}},
		{"TamperedToken", func(t *testing.T, e *env) {
			tk := e.userTokens("read")
			wantInactive(t, e.introspect(confID, authBasic, flip(tk.access)))
		}},
		{"ExpiredToken", func(t *testing.T, e *env) {
			tk := e.userTokens("read")
			e.clock.advance(time.Hour + time.Second)
			wantInactive(t, e.introspect(confID, authBasic, tk.access))
		}},
		{"RefreshToken", func(t *testing.T, e *env) {
			tk := e.userTokens("read")
			r := e.introspect(confID, authBasic, tk.refresh)
			wantStatus(t, r, 200)
			m := decodeJSON(t, r)
			if m["active"] != true || m["client_id"] != confID || m["sub"] != userName || m["scope"] != "read" {
				t.Errorf("introspecting the holder's refresh token: %s", r.body)
			}
			// Not to another client, and not once rotated.
			wantInactive(t, e.introspect(otherID, authBasic, tk.refresh))
			e.wantTokens(e.refresh(tk.refresh, ""), true)
			wantInactive(t, e.introspect(confID, authBasic, tk.refresh))
		}},
		{"RequiresConfidentialClient", func(t *testing.T, e *env) {
			tk := e.userTokens("read")
			r := e.introspect(pubID, authNone, tk.access)
			if r.status != 400 && r.status != 401 {
				t.Fatalf("status %d, want 400 or 401", r.status)
			}
			wantOAuthError(t, r, r.status, "invalid_client")
			r = e.post(e.api, "/oauth2/introspect", url.Values{"token": {tk.access}}.Encode(), nil)
			if r.status != 400 && r.status != 401 {
				t.Fatalf("status %d, want 400 or 401", r.status)
			}
			wantOAuthError(t, r, r.status, "invalid_client")
			hdr := http.Header{"Authorization": {core.EncodeBasic(confID, "wrong")}}
			r = e.post(e.api, "/oauth2/introspect", url.Values{"token": {tk.access}}.Encode(), hdr)
			wantOAuthError(t, r, 401, "invalid_client")
			wantBasicChallenge(t, r)
		}},
		{"GetIs405", func(t *testing.T, e *env) {
			r := e.get(e.api, "/oauth2/introspect?token=x", e.basic(confID))
			wantOAuthError(t, r, 405, "invalid_request")
		}},
	}
}

// flip changes one character in the middle of a token, keeping it within
// the token's alphabet.
func flip(tok string) string {
	b := []byte(tok)
	i := len(b) / 2
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}
