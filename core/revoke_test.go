package core_test

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/oauth2kit/oauth2kit/core"
)

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

// Revoking an expired access token still revokes its grant for its owner.
func TestRevokeExpiredAccessTokenRevokesGrant(t *testing.T) {
	e := newEnv(t, false)
	at, rt := e.tokens("read")
	e.now = e.now.Add(2 * time.Hour)
	if w := e.post("/oauth2/revoke", url.Values{"token": {at}}, basic("conf", e.secret)); w.status != 200 || len(w.body) != 0 {
		t.Fatalf("revoke: %d %s", w.status, w.body)
	}
	w := e.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, basic("conf", e.secret))
	wantTokenError(t, w, 400, "invalid_grant")
}
