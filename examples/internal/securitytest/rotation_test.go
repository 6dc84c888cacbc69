package securitytest

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/oauth2kit/oauth2kit/core"
	"github.com/oauth2kit/oauth2kit/examples/internal/demo"
)

// kidOf is the key id in a token's header ("" for none).
func kidOf(tok string) string {
	p := strings.SplitN(tok, ".", 3)
	if len(p) != 3 {
		return ""
	}
	return p[1]
}

func wantKid(t testing.TB, kid string, toks ...string) {
	t.Helper()
	for _, tok := range toks {
		if got := kidOf(tok); got != kid {
			t.Errorf("%s… minted with key %q, want %q", tok[:min(len(tok), 4)], got, kid)
		}
	}
}

// TestKeyRotation rotates the token keys end to end, as an operator does:
// generation K1 issues tokens; a restart makes K2 current and keeps K1 for
// verification only; a later restart retires K1.
func TestKeyRotation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, setup{config: func(c *core.Config) {
		c.Lifetimes.AccessToken = 30 * time.Minute
		c.Lifetimes.RefreshToken = 2 * time.Hour
	}})
	k1 := e.keys["k1"]
	base := e.cfg
	q := func(client string) string {
		return "/oauth2/authorize?" + authzQuery(client, "", "read", "st", fixedVerifier)
	}

	// ---- K1 is current.
	a := e.tokens(confID, "", "read")
	b := e.tokens(confID, "", "read") // left unused until K1 is retired
	pub := e.tokens(pubID, pubRedirect, "read")
	inFlight := e.newCode(confID, "", "read") // redeemed under K2
	lateCode := e.newCode(confID, "", "read") // redeemed after K1 is retired
	loginB := e.browser()                     // a login page open across the restart
	loginPage := loginB.get(q(otherID))       // (other-app has no remembered consent)
	consentB := e.browser()                   // a consent page open across the restart
	consentPage := consentB.login(consentB.get(q(otherID)))
	lateB := e.browser()
	lateLogin := lateB.get(q(otherID)) // a login page left open until K1 is retired
	wantKid(t, "k1", a.at, a.rt, b.at, b.rt, pub.at, pub.rt, inFlight.code, lateCode.code,
		e.hidden(loginPage).Get(core.FieldRequest), e.hidden(consentPage).Get(core.FieldRequest))

	// ---- Rotation: K2 current, K1 verify-only. A restart: a new server
	// on the same database.
	k2 := e.newKeys("k2")
	rotated := base
	rotated.Keys.ID, rotated.Keys.CryptKey, rotated.Keys.SignKey = k2.ID, k2.CryptKey, k2.SignKey
	rotated.VerifyKeys = []core.Keys{k1}
	e.start(rotated)

	t.Run("old tokens keep working", func(t *testing.T) {
		wantMe(t, e.resource("/api/me", a.at), demo.DemoUser, confID, "read")
		if m := e.introspectAs(confID, a.at); m["active"] != true {
			t.Errorf("introspection of a K1 access token: %v", m)
		}
		if m := e.introspectAs(confID, b.rt); m["active"] != true {
			t.Errorf("introspection of a K1 refresh token: %v", m)
		}
		// A K1 refresh token rotates into a K2 one, in the same family.
		m := wantTokenResponse(t, e.refresh(confID, a.rt, ""), true)
		a2 := tokenSet{at: m["access_token"].(string), rt: m["refresh_token"].(string), family: a.family}
		wantKid(t, "k2", a2.at, a2.rt)
		e.wantRTState(t, a.rt, true)
		if row := e.wantRTState(t, a2.rt, false); row.FamilyID != a.family {
			t.Errorf("rotated into family %s, want %s", row.FamilyID, a.family)
		}
		wantMe(t, e.resource("/api/me", a2.at), demo.DemoUser, confID, "read")
		a = a2
		// Reuse detection spans the rotation: the K1 token again revokes.
		pm := wantTokenResponse(t, e.refresh(pubID, pub.rt, ""), true)
		wantKid(t, "k2", pm["refresh_token"].(string))
		e.wantTokenError(t, e.refresh(pubID, pub.rt, ""), 400, "invalid_grant")
		if !e.isRevoked(pub.family) {
			t.Error("reuse of a K1 refresh token after the rotation did not revoke")
		}
		e.wantInvalidToken(t, e.resource("/api/me", pm["access_token"].(string)))
	})
	t.Run("codes and logins in flight", func(t *testing.T) {
		m := wantTokenResponse(t, e.redeem(inFlight), true)
		wantKid(t, "k2", m["access_token"].(string), m["refresh_token"].(string))
		// The login page opened under K1: login, consent, code, all K2.
		consent := loginB.login(loginPage)
		wantKid(t, "k2", e.hidden(consent).Get(core.FieldRequest))
		code := e.wantCodeRedirect(t, loginB.decide(consent, "approve"), otherRedirect, "st")
		wantKid(t, "k2", code)
		m = wantTokenResponse(t, e.token(otherID, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {fixedVerifier}}), true)
		wantKid(t, "k2", m["access_token"].(string), m["refresh_token"].(string))
		// The consent page opened under K1.
		code = e.wantCodeRedirect(t, consentB.decide(consentPage, "approve"), otherRedirect, "st")
		wantKid(t, "k2", code)
	})
	t.Run("new tokens carry K2", func(t *testing.T) {
		ts := e.tokens(confID, "", "read")
		wantKid(t, "k2", ts.at, ts.rt)
		ac := e.newCode(confID, "", "read")
		wantKid(t, "k2", ac.code)
		if g := e.grantOfCode(ac.code); g == nil {
			t.Error("a K2 code's row is not keyed by its K2 signature")
		}
	})
	md := e.metadata()

	// ---- K1 retired (removed from VerifyKeys): its tokens are refused
	// everywhere, K2's work.
	retired := rotated
	retired.VerifyKeys = nil
	e.start(retired)
	t.Run("K1 retired", func(t *testing.T) {
		before := e.counts()
		e.wantInvalidToken(t, e.resource("/api/me", b.at))
		e.wantInactive(t, e.introspect(confID, b.at))
		e.wantInactive(t, e.introspect(confID, b.rt))
		e.wantTokenError(t, e.refresh(confID, b.rt, ""), 400, "invalid_grant")
		e.wantTokenError(t, e.redeem(lateCode), 400, "invalid_grant")
		f := e.hidden(lateLogin)
		f.Set("username", demo.DemoUser)
		f.Set("password", demo.DemoPassword)
		wantErrorPage(t, lateB.post("/oauth2/login", f.Encode()), 400, "invalid_request")
		// A K1 token is now unknown: revoking it does nothing.
		if r := e.revoke(confID, b.rt, ""); r.status != 200 || len(r.body) != 0 {
			t.Errorf("revoking a retired token: %v", r)
		}
		e.wantCounts(t, before, "requests with retired tokens")
		if e.isRevoked(b.family) {
			t.Error("a retired token's grant was revoked")
		}
		e.wantUnused(t, lateCode.code)
		e.wantRTState(t, b.rt, false)
		// K2 tokens work.
		wantMe(t, e.resource("/api/me", a.at), demo.DemoUser, confID, "read")
		if m := e.introspectAs(confID, a.at); m["active"] != true {
			t.Errorf("introspection of a K2 token: %v", m)
		}
		m := wantTokenResponse(t, e.refresh(confID, a.rt, ""), true)
		wantKid(t, "k2", m["access_token"].(string), m["refresh_token"].(string))
		a.rt = m["refresh_token"].(string)
		if got := e.metadata(); got["issuer"] != md["issuer"] || got["token_endpoint"] != md["token_endpoint"] {
			t.Errorf("metadata changed: %v", got)
		}
	})

	// ---- Retiring too early is undone by putting K1 back (nothing was
	// deleted); once the longest refresh-token lifetime has passed since
	// the rotation, no K1 token is valid any more, with or without K1.
	e.start(rotated)
	t.Run("safe retirement", func(t *testing.T) {
		wantMe(t, e.resource("/api/me", b.at), demo.DemoUser, confID, "read")
		e.clock.advance(2 * time.Hour)
		e.wantTokenError(t, e.refresh(confID, b.rt, ""), 400, "invalid_grant")
		e.wantInvalidToken(t, e.resource("/api/me", b.at))
		e.wantInactive(t, e.introspect(confID, b.rt))
		e.start(retired)
		e.wantTokenError(t, e.refresh(confID, b.rt, ""), 400, "invalid_grant")
	})
}
