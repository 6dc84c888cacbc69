package gormstore_test

import (
	"fmt"
	"html"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/oauth2kit/oauth2kit/core"
	gormstore "github.com/oauth2kit/oauth2kit/storage/gorm"
)

// User-wide grant management through core.Server on every database, with
// two instances (two pools, the same keys) as two processes behind a load
// balancer: Server.RevokeUser, RevokeUserClient, UserClients and
// ForgetConsent, and a consent form that is usable once across instances.

// testClock is the servers' clock (Config.Now), moved only by the test.
type testClock struct {
	start time.Time
	off   atomic.Int64
}

func (c *testClock) now() time.Time          { return c.start.Add(time.Duration(c.off.Load())) }
func (c *testClock) advance(d time.Duration) { c.off.Add(int64(d)) }

// consentAuth is an Authenticator with a consent page: the user is the
// request's X-Test-User header (a signed-in session of the app), and the
// consent page is the kit's hidden fields.
type consentAuth struct{ srv *core.Server }

var _ core.ConsentPrompter = (*consentAuth)(nil)

func (a *consentAuth) Login(w core.Responder, r core.Request, ar *core.AuthorizationRequest) {
	u := r.Header("X-Test-User")
	if len(u) != 1 {
		w.SetHeader("Content-Type", "text/plain")
		_ = w.Send(401, []byte("sign in first"))
		return
	}
	a.srv.SendGrant(w, r, ar, u[0], "")
}

func (a *consentAuth) ProcessLogin(w core.Responder, r core.Request, ar *core.AuthorizationRequest) {
	a.Login(w, r, ar)
}

func (a *consentAuth) Consent(w core.Responder, r core.Request, ar *core.AuthorizationRequest) {
	w.SetHeader("Content-Type", "text/html; charset=utf-8")
	_ = w.Send(200, []byte(`<form method="post" action="`+html.EscapeString(ar.ProcessLoginURL)+`">`+ar.HiddenFields()+
		`<button name="decision" value="approve">Allow</button></form>`))
}

const revocationTTL = 30 * time.Second

// userDeployment is two instances on one database, the clients "conf"
// and "other", and the database for reading the tables.
type userDeployment struct {
	t       *testing.T
	a, b    *instance
	clock   *testClock
	db      *gorm.DB
	secrets map[string]string
}

func newUserDeployment(t *testing.T, d *testDB) *userDeployment {
	t.Helper()
	storeA, db := newStore(t, d)
	storeB := gormstore.New(d.connect(t))
	dep := &userDeployment{t: t, clock: &testClock{start: time.Now().Truncate(time.Second)}, db: db, secrets: map[string]string{}}
	for _, id := range []string{"conf", "other"} {
		c, secret, err := core.NewClient(core.ClientSpec{ID: id, Name: id, RedirectURIs: []string{testCallback}})
		if err != nil {
			t.Fatal(err)
		}
		if err := storeA.SaveClient(bg, c); err != nil {
			t.Fatal(err)
		}
		dep.secrets[id] = secret
	}
	build := func(st core.Storage) *instance {
		auth := &consentAuth{}
		srv, err := core.New(core.Config{
			Issuer: testIssuer,
			Keys:   core.Keys{CryptKey: []byte("0123456789abcdef0123456789abcdef"), SignKey: []byte("fedcba9876543210fedcba9876543210")},

			Scopes: []string{"read", "write"},
			Caches: core.Caches{Revocation: revocationTTL},
			Now:    dep.clock.now,
			Logger: slog.New(slog.DiscardHandler),
		}, st, auth)
		if err != nil {
			t.Fatal(err)
		}
		auth.srv = srv
		return &instance{tb: t, srv: srv, secret: dep.secrets["conf"]}
	}
	dep.a, dep.b = build(storeA), build(storeB)
	return dep
}

// browser is one user agent: its session cookie and its user.
type browser struct {
	user    string
	cookies map[string]string
}

func newBrowser(user string) *browser { return &browser{user: user, cookies: map[string]string{}} }

func (br *browser) send(in *instance, r *fakeReq) *fakeResp {
	if r.hdr == nil {
		r.hdr = http.Header{}
	}
	r.hdr.Set("X-Test-User", br.user)
	var parts []string
	for k, v := range br.cookies {
		parts = append(parts, k+"="+v)
	}
	if len(parts) > 0 {
		r.hdr.Set("Cookie", strings.Join(parts, "; "))
	}
	w := in.do(r)
	for _, line := range w.hdr.Values("Set-Cookie") {
		if ck, err := http.ParseSetCookie(line); err == nil {
			br.cookies[ck.Name] = ck.Value
		}
	}
	return w
}

// authorize starts an authorization of client at in.
func (br *browser) authorize(in *instance, client string) *fakeResp {
	q := url.Values{"response_type": {"code"}, "client_id": {client}, "redirect_uri": {testCallback},
		"scope": {"read"}, "state": {"st"}, "code_challenge": {core.S256Challenge(testVerifier)}, "code_challenge_method": {"S256"}}
	return br.send(in, &fakeReq{method: "GET", path: "/oauth2/authorize", query: q.Encode()})
}

var hiddenField = regexp.MustCompile(`<input type="hidden" name="([a-z_0-9]+)" value="([^"]*)">`)

// consentForm returns the approval a consent page posts, or fails.
func consentForm(t *testing.T, page *fakeResp) url.Values {
	t.Helper()
	if page.status != 200 || !strings.Contains(string(page.body), `name="decision"`) {
		t.Fatalf("want the consent page, got %d %v %s", page.status, page.hdr, page.body)
	}
	f := url.Values{"decision": {"approve"}}
	for _, m := range hiddenField.FindAllStringSubmatch(string(page.body), -1) {
		f.Set(m[1], html.UnescapeString(m[2]))
	}
	return f
}

func (br *browser) postForm(in *instance, f url.Values) *fakeResp {
	return br.send(in, &fakeReq{method: "POST", path: "/oauth2/login", body: f.Encode(),
		hdr: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}})
}

// codeOf returns the code a 303 to the client carries, or fails.
func codeOf(t *testing.T, w *fakeResp) string {
	t.Helper()
	if w.status != 303 {
		t.Fatalf("want a redirect with a code, got %d %s", w.status, w.body)
	}
	loc, err := url.Parse(w.hdr.Get("Location"))
	if err != nil || loc.Query().Get("code") == "" || !strings.HasPrefix(w.hdr.Get("Location"), testCallback+"?") {
		t.Fatalf("redirect to %q carries no code", w.hdr.Get("Location"))
	}
	return loc.Query().Get("code")
}

// code runs an authorization of client at in for the browser's user,
// approving consent if asked, and returns the code.
func (br *browser) code(t *testing.T, in *instance, client string) string {
	t.Helper()
	w := br.authorize(in, client)
	if w.status == 200 {
		w = br.postForm(in, consentForm(t, w))
	}
	return codeOf(t, w)
}

// tokenSet is one family's tokens.
type tokenSet struct{ client, at, rt string }

func (dep *userDeployment) post(in *instance, client, path string, form url.Values) *fakeResp {
	return in.do(&fakeReq{method: "POST", path: path, body: form.Encode(), hdr: http.Header{
		"Content-Type":  {"application/x-www-form-urlencoded"},
		"Authorization": {core.EncodeBasic(client, dep.secrets[client])},
	}})
}

func (dep *userDeployment) exchange(in *instance, client, code string) tokenSet {
	dep.t.Helper()
	at, rt := tokens(dep.t, "exchange", dep.post(in, client, "/oauth2/token", url.Values{"grant_type": {"authorization_code"},
		"code": {code}, "redirect_uri": {testCallback}, "code_verifier": {testVerifier}}))
	return tokenSet{client, at, rt}
}

func (dep *userDeployment) refresh(in *instance, ts tokenSet) *fakeResp {
	return dep.post(in, ts.client, "/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {ts.rt}})
}

// introspect returns the introspection of tok by its own client at in.
func (dep *userDeployment) introspect(in *instance, client, tok string) map[string]any {
	dep.t.Helper()
	w := dep.post(in, client, "/oauth2/introspect", url.Values{"token": {tok}})
	if w.status != 200 || w.hdr.Get("Content-Type") != "application/json" {
		dep.t.Fatalf("introspection: %d %v %s", w.status, w.hdr, w.body)
	}
	return w.json(dep.t)
}

// resource runs the resource check of in on a request with the token.
func resource(in *instance, at string) *core.ResourceError {
	_, rerr := in.srv.CheckRequest(&fakeReq{method: "GET", path: "/api/me", hdr: http.Header{"Authorization": {"Bearer " + at}}})
	return rerr
}

func wantActive(t *testing.T, what string, m map[string]any, active bool) {
	t.Helper()
	if active {
		if m["active"] != true {
			t.Errorf("%s: introspection %v, want active", what, m)
		}
		return
	}
	if len(m) != 1 || m["active"] != false {
		t.Errorf(`%s: introspection %v, want exactly {"active":false}`, what, m)
	}
}

func wantRefused(t *testing.T, what string, rerr *core.ResourceError) {
	t.Helper()
	if rerr == nil {
		t.Errorf("%s: the resource check accepted the token", what)
		return
	}
	if rerr.Status != 401 || !strings.Contains(rerr.WWWAuthenticate, `error="invalid_token"`) {
		t.Errorf("%s: refused with %d %q, want 401 invalid_token", what, rerr.Status, rerr.WWWAuthenticate)
	}
}

// families reads the distinct grant ids of the user's codes.
func (dep *userDeployment) families(user string) []string {
	dep.t.Helper()
	var ids []string
	if err := dep.db.Table("oauth2_grants").Distinct("grant_id").Where("user_id = ?", user).Order("grant_id").Pluck("grant_id", &ids).Error; err != nil {
		dep.t.Fatal(err)
	}
	return ids
}

func (dep *userDeployment) revoked(fams []string) []string {
	dep.t.Helper()
	var ids []string
	if err := dep.db.Table("oauth2_revoked_families").Where("family_id IN ?", fams).Order("family_id").Pluck("family_id", &ids).Error; err != nil {
		dep.t.Fatal(err)
	}
	return ids
}

func showUserClients(l []core.UserClient) string {
	var parts []string
	for _, uc := range l {
		parts = append(parts, fmt.Sprintf("{%s %q active=%v}", uc.ClientID, uc.ConsentScope, uc.Active))
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func wantUserClients(t *testing.T, in *instance, user string, want []core.UserClient) {
	t.Helper()
	got, err := in.srv.UserClients(bg, user)
	if err != nil {
		t.Fatalf("UserClients: %v", err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("UserClients(%s) = %s, want %s", user, showUserClients(got), showUserClients(want))
	}
}

// TestServerRevokeUser: after Server.RevokeUser on instance A, every access
// and refresh token of the user (several clients, several families, a
// rotated one) introspects as {"active":false} on A and B, refreshing
// fails with invalid_grant on both, A's resource check refuses at once and
// B's within Config.Caches.Revocation (B had cached "not revoked"), the
// database holds a revocation for exactly the user's families, and another
// user's tokens keep working. A family made after the revocation works.
func TestServerRevokeUser(t *testing.T) {
	forEachDB(t, func(t *testing.T, d *testDB) {
		dep := newUserDeployment(t, d)
		a, b := dep.a, dep.b
		alice, bob := newBrowser("alice"), newBrowser("bob")

		// alice: two families at conf (the second without a consent page),
		// one at other, refreshed once on B (a rotated-out token and its
		// successor); bob: one at conf.
		mine := []tokenSet{
			dep.exchange(a, "conf", alice.code(t, a, "conf")),
			dep.exchange(b, "conf", alice.code(t, b, "conf")),
		}
		o := dep.exchange(a, "other", alice.code(t, b, "other"))
		at2, rt2 := tokens(t, "refresh at B", dep.refresh(b, o))
		mine = append(mine, tokenSet{"other", at2, rt2})
		rotatedOut := o
		theirs := dep.exchange(b, "conf", bob.code(t, a, "conf"))

		for _, ts := range append(slices.Clone(mine), theirs) {
			for _, in := range []*instance{a, b} {
				wantActive(t, "access token before the revocation", dep.introspect(in, ts.client, ts.at), true)
				// Fills both instances' "not revoked" cache.
				if rerr := resource(in, ts.at); rerr != nil {
					t.Fatalf("resource check before the revocation: %d %s", rerr.Status, rerr.Body)
				}
			}
			wantActive(t, "refresh token before the revocation", dep.introspect(a, ts.client, ts.rt), true)
		}
		wantUserClients(t, b, "alice", []core.UserClient{
			{ClientID: "conf", ConsentScope: "read", Active: true},
			{ClientID: "other", ConsentScope: "read", Active: true},
		})

		fams := dep.families("alice")
		if len(fams) != 3 {
			t.Fatalf("alice's codes name %d families, want 3: %q", len(fams), fams)
		}
		n, err := a.srv.RevokeUser(bg, "alice")
		if err != nil || n != 3 {
			t.Fatalf("RevokeUser: %d, %v; want 3 families", n, err)
		}
		if got := dep.revoked(fams); !slices.Equal(got, fams) {
			t.Errorf("revocations recorded for %q, want alice's families %q", got, fams)
		}
		if got := dep.revoked(dep.families("bob")); len(got) != 0 {
			t.Errorf("bob's families revoked: %q", got)
		}

		for i, ts := range mine {
			for _, in := range []*instance{a, b} {
				name := fmt.Sprintf("alice's family %d on %s", i, map[*instance]string{a: "A", b: "B"}[in])
				wantActive(t, name+", access token", dep.introspect(in, ts.client, ts.at), false)
				wantActive(t, name+", refresh token", dep.introspect(in, ts.client, ts.rt), false)
				if w := dep.refresh(in, ts); w.status != 400 || w.json(t)["error"] != "invalid_grant" {
					t.Errorf("%s: refresh %d %s, want 400 invalid_grant", name, w.status, w.body)
				}
			}
			wantRefused(t, fmt.Sprintf("alice's family %d on A, at once", i), resource(a, ts.at))
			if rerr := resource(b, ts.at); rerr != nil {
				t.Logf("B refused alice's family %d before its cache expired (allowed)", i)
			}
		}
		if w := dep.refresh(a, rotatedOut); w.status != 400 || w.json(t)["error"] != "invalid_grant" {
			t.Errorf("refresh with the rotated-out token: %d %s", w.status, w.body)
		}
		// B's cached "not revoked" answers expire within the TTL.
		dep.clock.advance(revocationTTL + time.Second)
		for i, ts := range mine {
			wantRefused(t, fmt.Sprintf("alice's family %d on B after Caches.Revocation", i), resource(b, ts.at))
		}

		// bob is untouched, on both instances.
		for _, in := range []*instance{a, b} {
			wantActive(t, "bob's access token", dep.introspect(in, "conf", theirs.at), true)
			if rerr := resource(in, theirs.at); rerr != nil {
				t.Errorf("bob's access token refused: %d %s", rerr.Status, rerr.Body)
			}
		}
		tokens(t, "bob's refresh at B", dep.refresh(b, theirs))

		// alice keeps her consents; her clients are no longer active.
		wantUserClients(t, a, "alice", []core.UserClient{
			{ClientID: "conf", ConsentScope: "read"},
			{ClientID: "other", ConsentScope: "read"},
		})
		// Removing an app bob never used revokes nothing of his.
		if n, err := b.srv.RevokeUserClient(bg, "bob", "other"); err != nil || n != 0 {
			t.Errorf("RevokeUserClient(bob, other): %d, %v; want 0", n, err)
		}
		wantActive(t, "bob's access token after RevokeUserClient of another app", dep.introspect(a, "conf", theirs.at), true)

		// A family made after the revocation works (consent remembered:
		// no consent page).
		w := alice.authorize(b, "conf")
		fresh := dep.exchange(a, "conf", codeOf(t, w))
		wantActive(t, "alice's new access token", dep.introspect(b, "conf", fresh.at), true)
		if rerr := resource(b, fresh.at); rerr != nil {
			t.Errorf("alice's new access token refused: %d %s", rerr.Status, rerr.Body)
		}
		tokens(t, "alice's new refresh", dep.refresh(b, fresh))
	})
}

// TestServerRevokeUserClient: removing one app ends the user's tokens of
// that client on both instances, not those of another client.
func TestServerRevokeUserClient(t *testing.T) {
	forEachDB(t, func(t *testing.T, d *testDB) {
		dep := newUserDeployment(t, d)
		a, b := dep.a, dep.b
		alice := newBrowser("alice")
		conf := dep.exchange(a, "conf", alice.code(t, a, "conf"))
		other := dep.exchange(b, "other", alice.code(t, b, "other"))
		if n, err := b.srv.RevokeUserClient(bg, "alice", "other"); err != nil || n != 1 {
			t.Fatalf("RevokeUserClient: %d, %v; want 1", n, err)
		}
		for _, in := range []*instance{a, b} {
			wantActive(t, "the removed app's access token", dep.introspect(in, "other", other.at), false)
			wantActive(t, "the other app's access token", dep.introspect(in, "conf", conf.at), true)
		}
		if w := dep.refresh(a, other); w.status != 400 || w.json(t)["error"] != "invalid_grant" {
			t.Errorf("refresh of the removed app: %d %s", w.status, w.body)
		}
		tokens(t, "refresh of the other app", dep.refresh(a, conf))
		wantUserClients(t, a, "alice", []core.UserClient{
			{ClientID: "conf", ConsentScope: "read", Active: true},
			{ClientID: "other", ConsentScope: "read"},
		})
	})
}

// TestServerForgetConsent: once the user approved a client, authorizing it
// again issues a code at once; after ForgetConsent (on either instance) the
// next authorization shows the consent page again, on both, and the
// consent row is gone. Tokens already issued stay valid.
func TestServerForgetConsent(t *testing.T) {
	forEachDB(t, func(t *testing.T, d *testDB) {
		dep := newUserDeployment(t, d)
		a, b := dep.a, dep.b
		alice := newBrowser("alice")
		ts := dep.exchange(a, "conf", alice.code(t, a, "conf"))
		if w := alice.authorize(b, "conf"); w.status != 303 {
			t.Fatalf("authorization with a remembered consent: %d %s, want a 303 with a code", w.status, w.body)
		}
		if n := countRows(t, dep.db, "oauth2_consents", "user_id = ? AND client_id = ?", "alice", "conf"); n != 1 {
			t.Fatalf("%d consent rows, want 1", n)
		}
		if err := b.srv.ForgetConsent(bg, "alice", "conf"); err != nil {
			t.Fatalf("ForgetConsent: %v", err)
		}
		if n := countRows(t, dep.db, "oauth2_consents", "user_id = ? AND client_id = ?", "alice", "conf"); n != 0 {
			t.Errorf("%d consent rows after ForgetConsent, want 0", n)
		}
		for _, in := range []*instance{a, b} {
			w := alice.authorize(in, "conf")
			if w.status != 200 || w.hdr.Get("Location") != "" {
				t.Fatalf("authorization after ForgetConsent: %d %v, want the consent page", w.status, w.hdr)
			}
			consentForm(t, w)
		}
		wantActive(t, "a token issued before ForgetConsent", dep.introspect(b, "conf", ts.at), true)
		wantUserClients(t, a, "alice", []core.UserClient{{ClientID: "conf", Active: true}})
		// Approving again remembers it again.
		codeOf(t, alice.postForm(b, consentForm(t, alice.authorize(b, "conf"))))
		if w := alice.authorize(a, "conf"); w.status != 303 {
			t.Errorf("authorization after approving again: %d, want 303", w.status)
		}
	})
}

// wantFormRefused checks the answer to a consent form posted again: an
// HTML error page (400), no redirect, no code.
func wantFormRefused(t *testing.T, what string, w *fakeResp) {
	t.Helper()
	if w.status != 400 || w.hdr.Get("Location") != "" || !strings.HasPrefix(w.hdr.Get("Content-Type"), "text/html") {
		t.Errorf("%s: %d %v %s, want a 400 HTML error page without Location", what, w.status, w.hdr, w.body)
	}
	if strings.Contains(string(w.body), "code=") {
		t.Errorf("%s: the page carries a code: %s", what, w.body)
	}
}

// TestConsentFormUsableOnce: the same consent form (same hidden fields,
// same session cookie) POSTed twice, the second time to the other instance,
// issues exactly one code; the second gets an error page. Then 8
// submissions of one form racing over both instances: exactly one code.
func TestConsentFormUsableOnce(t *testing.T) {
	forEachDB(t, func(t *testing.T, d *testDB) {
		dep := newUserDeployment(t, d)
		a, b := dep.a, dep.b
		codes := func() int64 {
			// Codes the server issued and nobody redeemed: the used-form
			// markers are born used.
			return countRows(t, dep.db, "oauth2_grants", "user_id = ? AND used_at IS NULL", "alice")
		}

		alice := newBrowser("alice")
		f := consentForm(t, alice.authorize(a, "conf"))
		code := codeOf(t, alice.postForm(a, f))
		wantFormRefused(t, "the same form posted again to B", alice.postForm(b, f))
		wantFormRefused(t, "the same form posted again to A", alice.postForm(a, f))
		if n := codes(); n != 1 {
			t.Errorf("%d unredeemed codes for one consent form, want 1", n)
		}
		dep.exchange(b, "conf", code)
		if err := a.srv.ForgetConsent(bg, "alice", "conf"); err != nil {
			t.Fatal(err)
		}

		// Racing submissions of one form.
		f = consentForm(t, alice.authorize(b, "conf"))
		const racers = 8
		resps := make([]*fakeResp, racers)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range racers {
			in := []*instance{a, b}[i%2]
			wg.Go(func() {
				<-start
				resps[i] = alice.postFormCopy(in, f)
			})
		}
		close(start)
		wg.Wait()
		won := 0
		for i, w := range resps {
			if w.status == 303 {
				won++
				codeOf(t, w)
				continue
			}
			wantFormRefused(t, fmt.Sprintf("racer %d", i), w)
		}
		if won != 1 {
			t.Errorf("%d of %d racing submissions of one form got a code, want exactly 1", won, racers)
		}
		if n := codes(); n != 1 {
			t.Errorf("%d unredeemed codes after the race, want 1", n)
		}
	})
}

// postFormCopy is postForm for concurrent use: the cookies are read, not
// written.
func (br *browser) postFormCopy(in *instance, f url.Values) *fakeResp {
	var parts []string
	for k, v := range br.cookies {
		parts = append(parts, k+"="+v)
	}
	return in.do(&fakeReq{method: "POST", path: "/oauth2/login", body: f.Encode(), hdr: http.Header{
		"Content-Type": {"application/x-www-form-urlencoded"},
		"Cookie":       {strings.Join(parts, "; ")},
		"X-Test-User":  {br.user},
	}})
}
