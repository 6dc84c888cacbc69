package core_test

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/oauth2kit/oauth2kit/core"
	"github.com/oauth2kit/oauth2kit/core/memstore"
)

// consentingSessions is appSessions with a consent page that records
// what it was asked.
type consentingSessions struct {
	appSessions
	asked []*core.AuthorizationRequest
}

func (a *consentingSessions) Consent(w core.Responder, _ core.Request, ar *core.AuthorizationRequest) {
	a.asked = append(a.asked, ar)
	w.SetHeader("Content-Type", "text/html; charset=utf-8")
	_ = w.Send(200, []byte("<p>consent</p>"))
}

// A client that registered itself (here: Client.Dynamic) names its own
// redirect URI: no error is redirected there before the user has seen a
// page, a stored consent never skips its consent page (also on the SSO and
// prompt=none paths), and RP-initiated logout asks before sending the
// browser to its post-logout URI (RFC 9700 §4.11.2; SECURITY.md R65).
func TestUnverifiedClientNeverRedirectsUnasked(t *testing.T) {
	var srv *core.Server
	now := time.Unix(1_800_000_000, 0)
	app := &consentingSessions{appSessions: appSessions{srv: &srv, user: "bob", at: now.Add(-time.Minute)}}
	cfg := oidcConfig(t, oidcKeys(t))
	cfg.Scopes, cfg.Now = []string{core.ScopeOpenID, "read"}, func() time.Time { return now }
	cfg.OIDC.SSO = true
	store := memstore.New()
	s, err := core.New(cfg, store, app)
	if err != nil {
		t.Fatal(err)
	}
	srv = s
	const evil = "https://evil.example/phish"
	store.AddClient(&core.Client{ID: "dyn", Name: "Google Drive", RedirectURIs: []string{evil}, Public: true, Dynamic: true,
		PostLogoutRedirectURIs: []string{evil + "/out"}})
	static, _, _ := core.NewClient(core.ClientSpec{ID: "static", RedirectURIs: []string{confCB}, Public: true})
	store.AddClient(static)
	ctx := context.Background()
	if err := store.SaveConsent(ctx, "bob", "dyn", "openid read"); err != nil {
		t.Fatal(err)
	}
	authorize := func(client, redirect string, q url.Values) *fakeResp {
		v := codeQuery(client, redirect, "openid", "st")
		for k, vs := range q {
			v[k] = vs
		}
		w := newResp()
		s.Authorize(w, &fakeReq{method: "GET", path: "/oauth2/authorize", query: v.Encode()})
		return w
	}
	for name, q := range map[string]url.Values{
		"unsupported response_type": {"response_type": {"token"}},
		"bad scope":                 {"scope": {"nope"}},
		"prompt=none":               {"prompt": {"none"}},
		"bad PKCE method":           {"code_challenge_method": {"plain"}},
	} {
		w := authorize("dyn", evil, q)
		if w.status != 400 || w.hdr.Get("Location") != "" || !strings.Contains(w.hdr.Get("Content-Type"), "text/html") {
			t.Errorf("%s: %d %v, want an error page", name, w.status, w.hdr)
		}
		// The same mistake of a registered client goes back to it.
		if w := authorize("static", confCB, q); w.status != 303 || !strings.HasPrefix(w.hdr.Get("Location"), confCB) {
			t.Errorf("%s, static client: %d %v", name, w.status, w.hdr)
		}
	}

	// SSO: a live session and a stored consent still show the page,
	// marked unverified with the host the code would go to.
	app.asked = nil
	if w := authorize("dyn", evil, nil); w.status != 200 || len(app.asked) != 1 {
		t.Fatalf("SSO for a dynamic client: %d %v %s", w.status, w.hdr, w.body)
	}
	if ar := app.asked[0]; !ar.Unverified || ar.RedirectHost != "evil.example" || ar.ClientName != "Google Drive" {
		t.Fatalf("consent request: %+v", ar)
	}

	// Logout with a valid hint for the session's user: a page, no 303.
	hint := idTokenFor(t, s, store, app)
	w := newResp()
	s.EndSession(w, &fakeReq{method: "GET", path: "/oauth2/logout", query: url.Values{"id_token_hint": {hint},
		"post_logout_redirect_uri": {evil + "/out"}}.Encode()})
	if w.status != 200 || w.hdr.Get("Location") != "" {
		t.Fatalf("logout to a dynamic client's URI: %d %v", w.status, w.hdr)
	}
}

// idTokenFor gets an id_token of the session's user for a static client
// that may log out to anything the dynamic one registered: the hint is
// valid, only the client is unverified.
func idTokenFor(t *testing.T, s *core.Server, store *memstore.Store, app *consentingSessions) string {
	t.Helper()
	c, secret, _ := core.NewClient(core.ClientSpec{ID: "rp2", RedirectURIs: []string{confCB}})
	store.AddClient(c)
	if err := store.SaveConsent(context.Background(), app.user, "rp2", "openid"); err != nil {
		t.Fatal(err)
	}
	w := newResp()
	s.Authorize(w, &fakeReq{method: "GET", path: "/oauth2/authorize", query: codeQuery("rp2", confCB, "openid", "st").Encode()})
	loc, _ := url.Parse(w.hdr.Get("Location"))
	code := loc.Query().Get("code")
	if code == "" {
		t.Fatalf("authorize rp2: %d %v", w.status, w.hdr)
	}
	w = newResp()
	s.Token(w, &fakeReq{method: "POST", path: "/oauth2/token", body: url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {confCB}, "code_verifier": {verifier}}.Encode(),
		hdr: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Authorization": {core.EncodeBasic("rp2", secret)}}})
	tok, _ := w.json(t)["id_token"].(string)
	if tok == "" {
		t.Fatalf("token rp2: %d %s", w.status, w.body)
	}
	// The hint names rp2; logout must name the dynamic client for its
	// URI, so make the dynamic one an audience by logging out with its
	// client_id: the kit refuses that (client_id not an audience), hence
	// the hint is rp2's and the URI must be rp2's too — give rp2 the
	// evil URI as a registered one, as a dynamic client could.
	c.PostLogoutRedirectURIs = []string{"https://evil.example/phish/out"}
	c.Dynamic = true
	if err := store.SaveClient(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	return tok
}

// With the kit's own login sessions and SSO, a returning user is signed in
// silently — and still asked to consent to a self-registered client.
func TestUnverifiedClientConsentOnSSO(t *testing.T) {
	e := newEnv(t, true, func(c *core.Config) {
		c.OIDC.SigningKeys = oidcKeys(t)
		c.OIDC.SSO = true
		c.Scopes = append(c.Scopes, core.ScopeOpenID)
	})
	const cb = "https://app.example/cb"
	e.store.AddClient(&core.Client{ID: "dyn", Name: "Dyn", RedirectURIs: []string{cb}, Public: true, Dynamic: true})
	page := e.authorize(codeQuery("dyn", cb, "openid read", "s"))
	w := e.login(page, "alice", "pw")
	if w.status != 200 || !strings.Contains(string(w.body), "wants") {
		t.Fatalf("first consent: %d %s", w.status, w.body)
	}
	f := hidden(t, w.body)
	f.Set("decision", "approve")
	wantCodeRedirect(t, e.post("/oauth2/login", f, nil), cb, "s")
	// The session signs alice in; the consent page comes again, even with
	// a consent on record (kept from when RememberConsent was on).
	if err := e.store.SaveConsent(context.Background(), "alice", "dyn", "openid read"); err != nil {
		t.Fatal(err)
	}
	w = e.authorize(codeQuery("dyn", cb, "openid read", "s2"))
	if w.status != 200 || !strings.Contains(string(w.body), "Dyn wants openid read") {
		t.Fatalf("SSO for a dynamic client: %d %v %s", w.status, w.hdr, w.body)
	}
}

// Each unusable client metadata document costs the server a fetch: an
// address that keeps naming them is refused without one for a while.
func TestCIMDFailuresThrottledPerAddress(t *testing.T) {
	s := newCIMDServer(t, func(_ *cimdServer, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(404) })
	e, _ := newCIMDEnv(t, s)
	get := func(addr string, n int) *fakeResp {
		q := codeQuery(s.URL+"/c"+strconv.Itoa(n), cimdRedirect, "read", "st")
		return e.do(&fakeReq{method: "GET", path: "/oauth2/authorize", query: q.Encode(), remote: addr})
	}
	for i := range 20 {
		if w := get("203.0.113.5:1", i); w.status != 400 {
			t.Fatalf("lookup %d: %d", i, w.status)
		}
	}
	hits := s.hits.Load()
	if w := get("203.0.113.5:1", 99); w.status != 429 || w.hdr.Get("Retry-After") == "" || s.hits.Load() != hits {
		t.Fatalf("21st failing lookup: %d %v, %d fetches", w.status, w.hdr, s.hits.Load()-hits)
	}
	if w := get("203.0.113.6:1", 99); w.status != 400 || s.hits.Load() != hits+1 {
		t.Fatalf("another address: %d", w.status)
	}
}
