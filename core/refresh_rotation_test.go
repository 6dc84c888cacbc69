package core_test

import (
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/oauth2kit/oauth2kit/core"
)

// fapiRefreshToken runs the conforming FAPI 2.0 flow for "pk" and returns
// its refresh token and the DPoP key its tokens are bound to.
func fapiRefreshToken(t *testing.T, p *pkEnv) (string, *dpopKey) {
	t.Helper()
	ru, _ := p.fapiPush(nil).json(t)["request_uri"].(string)
	page := p.authorize(url.Values{"client_id": {"pk"}, "request_uri": {ru}})
	code := wantCodeRedirect(t, p.login(page, "alice", "pw"), pkCB, "fs").Get("code")
	key := newDPoPKey(t)
	form := assertForm(pkCodeForm(code, pkCB), p.es.assertion(t, "pk", p.now, nil))
	w := p.post("/oauth2/token", form, http.Header{"Dpop": {key.proof(p.now, "POST", tokenURL)}})
	rt, _ := w.json(t)["refresh_token"].(string)
	if w.status != 200 || rt == "" {
		t.Fatalf("exchange: %d %s", w.status, w.body)
	}
	return rt, key
}

func (p *pkEnv) refreshWith(rt string, key *dpopKey) *fakeResp {
	p.t.Helper()
	form := assertForm(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, p.es.assertion(p.t, "pk", p.now, nil))
	return p.post("/oauth2/token", form, http.Header{"Dpop": {key.proof(p.now, "POST", tokenURL)}})
}

// A FAPI 2.0 client's refresh token does not rotate (FAPI 2.0 §5.3.2.1):
// every refresh answers with the same token, which stays valid in the
// store, concurrent refreshes all succeed, and revocation still ends it.
func TestFAPI2RefreshTokenKept(t *testing.T) {
	p := fapiEnv(t)
	rt, key := fapiRefreshToken(t, p)
	for i := range 3 {
		w := p.refreshWith(rt, key)
		m := w.json(t)
		if w.status != 200 || m["refresh_token"] != rt || m["token_type"] != "DPoP" || m["access_token"] == nil {
			t.Fatalf("refresh %d: %d %s", i, w.status, w.body)
		}
	}
	var wg sync.WaitGroup
	status := make([]int, 8)
	for i := range status {
		wg.Go(func() { status[i] = p.refreshWith(rt, key).status })
	}
	wg.Wait()
	for i, st := range status {
		if st != 200 {
			t.Errorf("concurrent refresh %d: %d, want 200 (the token is not consumed)", i, st)
		}
	}
	stored, err := p.store.GetRefreshToken(t.Context(), rtSig(t, rt))
	if err != nil || stored.RotatedAt != nil {
		t.Fatalf("stored token %+v, %v: want it unrotated", stored, err)
	}
	// The profile still applies to refreshes: no proof, no token.
	form := assertForm(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, p.es.assertion(t, "pk", p.now, nil))
	if w := p.post("/oauth2/token", form, nil); w.status != 400 || w.json(t)["error"] != core.ErrInvalidDPoPProof {
		t.Errorf("refresh without a proof: %d %s", w.status, w.body)
	}
	if w := p.post("/oauth2/revoke", assertForm(url.Values{"token": {rt}}, p.es.assertion(t, "pk", p.now, nil)), nil); w.status != 200 {
		t.Fatalf("revoke: %d %s", w.status, w.body)
	}
	if w := p.refreshWith(rt, key); w.status != 400 || w.json(t)["error"] != core.ErrInvalidGrant {
		t.Errorf("refresh after revocation: %d %s", w.status, w.body)
	}
}

// RotationAlways makes a FAPI 2.0 client rotate, reuse detection
// included; a token rotated out while the client rotated stays dead when
// its policy changes to RotationNever.
func TestRefreshRotationPolicy(t *testing.T) {
	p := fapiEnv(t)
	c, _ := p.store.GetClient(t.Context(), "pk")
	c.RefreshRotation = core.RotationAlways
	_ = p.store.SaveClient(t.Context(), c)
	rt, key := fapiRefreshToken(t, p)
	w := p.refreshWith(rt, key)
	next, _ := w.json(t)["refresh_token"].(string)
	if w.status != 200 || next == "" || next == rt {
		t.Fatalf("rotating refresh: %d %s", w.status, w.body)
	}
	c.RefreshRotation = core.RotationNever
	_ = p.store.SaveClient(t.Context(), c)
	if w := p.refreshWith(rt, key); w.status != 400 || w.json(t)["error"] != core.ErrInvalidGrant {
		t.Fatalf("rotated-out token under RotationNever: %d %s", w.status, w.body)
	}
	// That was a reuse: the family is revoked, the current token too.
	if revoked, err := p.store.IsFamilyRevoked(t.Context(), familyOf(t, p, next)); err != nil || !revoked {
		t.Errorf("family revoked %v, %v: want revoked after the reuse", revoked, err)
	}
	if w := p.refreshWith(next, key); w.status != 400 {
		t.Errorf("the family's current token after the reuse: %d %s", w.status, w.body)
	}
}

func familyOf(t *testing.T, p *pkEnv, rt string) string {
	t.Helper()
	stored, err := p.store.GetRefreshToken(t.Context(), rtSig(t, rt))
	if err != nil {
		t.Fatal(err)
	}
	return stored.FamilyID
}

// A confidential client outside FAPI may keep its refresh tokens; a
// public client may not (OAuth 2.1 §4.3.1), and a value out of range is
// refused.
func TestRefreshRotationSpec(t *testing.T) {
	if _, _, err := core.NewClient(core.ClientSpec{Name: "cli", Public: true, RedirectURIs: []string{"http://127.0.0.1/cb"}, RefreshRotation: core.RotationNever}); err == nil {
		t.Error("NewClient accepted RotationNever for a public client")
	}
	if _, _, err := core.NewClient(core.ClientSpec{Name: "x", RedirectURIs: []string{"https://x.example/cb"}, RefreshRotation: 7}); err == nil {
		t.Error("NewClient accepted RefreshRotation 7")
	}
	c, _, err := core.NewClient(core.ClientSpec{Name: "web", RedirectURIs: []string{"https://x.example/cb"}, RefreshRotation: core.RotationNever})
	if err != nil || c.RefreshRotation != core.RotationNever {
		t.Fatalf("NewClient: %+v, %v", c, err)
	}

	e := newEnv(t, false, quietLog)
	conf, _ := e.store.GetClient(t.Context(), "conf")
	conf.RefreshRotation = core.RotationNever
	_ = e.store.SaveClient(t.Context(), conf)
	_, rt := e.tokens("read")
	for i := range 2 {
		w := e.refreshConf(rt, "")
		if w.status != 200 || w.json(t)["refresh_token"] != rt {
			t.Fatalf("refresh %d: %d %s", i, w.status, w.body)
		}
	}
	// A public client whose stored policy says never rotates anyway.
	pub, _ := e.store.GetClient(t.Context(), "pub")
	pub.RefreshRotation = core.RotationNever
	_ = e.store.SaveClient(t.Context(), pub)
	page := e.authorize(codeQuery("pub", publicCB, "read", "s"))
	code := wantCodeRedirect(t, e.login(page, "alice", "pw"), publicCB, "s").Get("code")
	w := e.post("/oauth2/token", url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {publicCB}, "code_verifier": {verifier}, "client_id": {"pub"}}, nil)
	prt, _ := w.json(t)["refresh_token"].(string)
	w = e.post("/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {prt}, "client_id": {"pub"}}, nil)
	if next, _ := w.json(t)["refresh_token"].(string); w.status != 200 || next == "" || next == prt {
		t.Errorf("public refresh: %d %s, want a new token", w.status, w.body)
	}
}

// At a resource, a FAPI 2.0 client's token accepts proofs in FAPI
// algorithms only (§5.4.1): the RSA key it is bound to may not switch to
// RS256 there, while another client's token may.
func TestFAPI2ResourceProofAlgs(t *testing.T) {
	p := fapiEnv(t)
	rsa := rsaTestKey(t)
	ps := &dpopKey{t: t, priv: rsa, alg: "PS256"}
	rs := &dpopKey{t: t, priv: rsa, alg: "RS256"}
	form := assertForm(url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}, p.es.assertion(t, "pk", p.now, nil))
	w := p.post("/oauth2/token", form, http.Header{"Dpop": {ps.proof(p.now, "POST", tokenURL)}})
	tok, _ := w.json(t)["access_token"].(string)
	if w.status != 200 || tok == "" {
		t.Fatalf("token: %d %s", w.status, w.body)
	}
	api := issuer + "/api"
	if _, rerr := p.srv.CheckRequest(resourceReq("DPoP "+tok, ps.proof(p.now, "GET", api, withATH(tok)))); rerr != nil {
		t.Fatalf("PS256 proof: %d %s", rerr.Status, rerr.Body)
	}
	_, rerr := p.srv.CheckRequest(resourceReq("DPoP "+tok, rs.proof(p.now, "GET", api, withATH(tok))))
	if rerr == nil || rerr.Status != 401 || !strings.Contains(string(rerr.Body), core.ErrInvalidDPoPProof) {
		t.Fatalf("RS256 proof on a FAPI token: %+v", rerr)
	}
	// The same key and algorithm on a token of a client outside FAPI.
	c, _ := p.store.GetClient(t.Context(), "pk")
	c.Profile = core.ProfileDefault
	_ = p.store.SaveClient(t.Context(), c)
	p.srv.ForgetClient("pk")
	if _, rerr := p.srv.CheckRequest(resourceReq("DPoP "+tok, rs.proof(p.now, "GET", api, withATH(tok)))); rerr != nil {
		t.Errorf("RS256 proof outside FAPI: %d %s", rerr.Status, rerr.Body)
	}
}
