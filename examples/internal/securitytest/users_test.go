package securitytest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/oauth2kit/oauth2kit/core"
	"github.com/oauth2kit/oauth2kit/examples/internal/demo"
)

// User-wide grant management over HTTP, with the demo's pages and API, on
// every database: Server.RevokeUser run on one instance ends the user's
// tokens on both (introspection and refresh at once, /api/me within
// Config.Caches.Revocation), and Server.ForgetConsent brings the consent
// page back.

// TestUserRevocationAcrossInstances: the demo user holds tokens of two
// clients; a client_credentials token (no user) is live too. RevokeUser on
// instance B: introspection at A says {"active":false} for each access
// and refresh token, refreshing at A fails with invalid_grant, B's /api/me
// refuses at once and A's (which had cached "not revoked") once the TTL
// has passed; the client_credentials token keeps working on both.
func TestUserRevocationAcrossInstances(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, d *database) {
		ttl := 30 * time.Second
		e := newEnv(t, setup{db: d, config: func(c *core.Config) { c.Caches.Revocation = ttl }})
		hb, srvB := e.build(e.cfg)
		tsB := httptest.NewServer(hb)
		t.Cleanup(tsB.Close)
		b := tsB.URL

		conf := e.tokens(confID, "", "read")
		other := e.tokens(otherID, "", "read")
		cc := wantTokenResponse(t, e.token(confID, url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}), false)["access_token"].(string)
		bearer := func(at string) http.Header { return http.Header{"Authorization": {"Bearer " + at}} }
		for _, ts := range []struct {
			client string
			set    tokenSet
		}{{confID, conf}, {otherID, other}} {
			wantMe(t, e.resource("/api/me", ts.set.at), demo.DemoUser, ts.client, "read")                          // cached at A
			wantMe(t, e.doAt(b, e.api, "GET", "/api/me", "", bearer(ts.set.at)), demo.DemoUser, ts.client, "read") // cached at B
		}

		n, err := srvB.RevokeUser(context.Background(), demo.DemoUser)
		if err != nil || n != 2 {
			t.Fatalf("RevokeUser at B: %d, %v; want 2 families", n, err)
		}
		for _, f := range []string{conf.family, other.family} {
			if !e.isRevoked(f) {
				t.Errorf("family %s has no revocation row", f)
			}
		}
		for _, ts := range []struct {
			client string
			set    tokenSet
		}{{confID, conf}, {otherID, other}} {
			e.wantInactive(t, e.introspect(ts.client, ts.set.at))
			e.wantInactive(t, e.introspect(ts.client, ts.set.rt))
			e.wantTokenError(t, e.refresh(ts.client, ts.set.rt, ""), 400, "invalid_grant")
			e.wantInvalidToken(t, e.doAt(b, e.api, "GET", "/api/me", "", bearer(ts.set.at))) // B forgot its cache
			if r := e.resource("/api/me", ts.set.at); r.status != 200 {
				t.Logf("A refused before the TTL (allowed, not required): %d", r.status)
			}
		}
		e.clock.advance(ttl)
		for _, at := range []string{conf.at, other.at} {
			e.wantInvalidToken(t, e.resource("/api/me", at))
		}
		// No user, no revocation.
		for _, base := range []string{e.base, b} {
			if r := e.doAt(base, e.api, "GET", "/api/me", "", bearer(cc)); r.status != 200 {
				t.Errorf("the client_credentials token after RevokeUser: %v", r)
			}
		}
		// A new authorization of the user works (consent is remembered).
		fresh := e.tokens(confID, "", "read")
		wantMe(t, e.doAt(b, e.api, "GET", "/api/me", "", bearer(fresh.at)), demo.DemoUser, confID, "read")
	})
}

// TestForgetConsentShowsConsentAgain: once the demo user approved a
// client, signing in for it again redirects with a code at once; after
// ForgetConsent the consent page comes back, and the consent row is gone.
func TestForgetConsentShowsConsentAgain(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, d *database) {
		e := newEnv(t, setup{db: d})
		e.newCode(confID, "", "read") // logs in and approves
		login := func() *response {
			t.Helper()
			br := e.browser()
			return br.login(br.get("/oauth2/authorize?" + authzQuery(confID, "", "read", "st", newVerifier(t))))
		}
		if r := login(); r.status != 303 {
			t.Fatalf("sign-in with a remembered consent: %v, want a 303 with a code", r)
		}
		consents := func() int64 {
			var n int64
			if err := e.db.Table("oauth2_consents").Where("user_id = ? AND client_id = ?", demo.DemoUser, confID).Count(&n).Error; err != nil {
				t.Fatal(err)
			}
			return n
		}
		if consents() != 1 {
			t.Fatalf("no consent row after approval")
		}
		if err := e.srv.ForgetConsent(context.Background(), demo.DemoUser, confID); err != nil {
			t.Fatalf("ForgetConsent: %v", err)
		}
		if n := consents(); n != 0 {
			t.Errorf("%d consent rows after ForgetConsent, want 0", n)
		}
		r := login()
		if r.status != 200 || r.header.Get("Location") != "" || !strings.Contains(string(r.body), `value="approve"`) {
			t.Fatalf("sign-in after ForgetConsent: %v, want the consent page", r)
		}
		wantPageHeaders(t, r)
	})
}

// TestConsentFormUsableOnceAcrossInstances: the demo's consent form, posted
// to instance A and then again (same fields, same session cookie) to
// instance B on the same database, issues exactly one code: B answers an
// HTML error page (400, no Location). The code still redeems once.
func TestConsentFormUsableOnceAcrossInstances(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, d *database) {
		e := newEnv(t, setup{db: d})
		b := e.replica(e.cfg)
		br := e.browser()
		v := newVerifier(t)
		e.remember("code verifier", v)
		consent := br.login(br.get("/oauth2/authorize?" + authzQuery(confID, "", "read", "st", v)))
		f := e.hidden(consent)
		f.Set(core.FieldDecision, "approve")
		code := e.wantCodeRedirect(t, br.post("/oauth2/login", f.Encode()), confRedirect, "st")
		before := e.counts()
		again := e.doAt(b, br.c, "POST", "/oauth2/login", f.Encode(), formHeader)
		wantErrorPage(t, again, 400, "invalid_request")
		e.wantCounts(t, before, "the consent form posted again to the other instance")
		wantErrorPage(t, br.post("/oauth2/login", f.Encode()), 400, "invalid_request")
		wantTokenResponse(t, e.redeem(authCode{client: confID, code: code, verifier: v}), true)
	})
}
