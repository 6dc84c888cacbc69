package core_test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	gojose "github.com/go-jose/go-jose/v4"

	"github.com/oauth2kit/oauth2kit/core"
	"github.com/oauth2kit/oauth2kit/core/memstore"
)

const backchannelEvent = "http://schemas.openid.net/event/backchannel-logout"

// testRP is the back-channel logout endpoint of relying parties, one path
// per client, on an httptest TLS server.
type testRP struct {
	*httptest.Server
	mu    sync.Mutex
	posts []rpPost
	// answers are the statuses a path answers its successive posts with
	// (the last one repeating); 200 without.
	answers map[string][]int
	// hold, when set before the first post, makes every post wait for it
	// to be closed; arrived receives once per post (buffered).
	hold    chan struct{}
	arrived chan string
}

type rpPost struct {
	path, contentType string
	form              url.Values
}

func newRP(t *testing.T) *testRP {
	t.Helper()
	rp := &testRP{answers: map[string][]int{}, arrived: make(chan string, 64)}
	rp.Server = httptest.NewTLSServer(rp)
	t.Cleanup(rp.Close)
	return rp
}

func (rp *testRP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	form, _ := url.ParseQuery(string(body))
	rp.mu.Lock()
	n := 0
	for _, p := range rp.posts {
		if p.path == r.URL.Path {
			n++
		}
	}
	rp.posts = append(rp.posts, rpPost{path: r.URL.Path, contentType: r.Header.Get("Content-Type"), form: form})
	status := 200
	if a := rp.answers[r.URL.Path]; len(a) > 0 {
		status = a[min(n, len(a)-1)]
	}
	hold := rp.hold
	rp.mu.Unlock()
	rp.arrived <- r.URL.Path
	if hold != nil {
		select {
		case <-hold:
		case <-r.Context().Done():
		}
	}
	w.WriteHeader(status)
}

// tls is the TLS configuration that trusts the RP's certificate.
func (rp *testRP) tls() *tls.Config { return rp.Client().Transport.(*http.Transport).TLSClientConfig }

// got returns the posts so far to path ("" for all).
func (rp *testRP) got(path string) []rpPost {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	var out []rpPost
	for _, p := range rp.posts {
		if path == "" || p.path == path {
			out = append(out, p)
		}
	}
	return out
}

var (
	bcKeysOnce sync.Once
	bcKeys     []core.SigningKey
)

// backchannelKeys are an RS256 and an ES256 key, made once.
func backchannelKeys(t *testing.T) []core.SigningKey {
	bcKeysOnce.Do(func() {
		rk, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		bcKeys = []core.SigningKey{{ID: "rs-1", Alg: core.AlgRS256, Signer: rk}, {ID: "es-1", Alg: core.AlgES256, Signer: ek}}
	})
	return bcKeys
}

// withBackchannel turns OIDC (with SSO) and back-channel logout on, the
// deliveries allowed to reach rp, retrying after a millisecond.
func withBackchannel(t *testing.T, rp *testRP) func(*core.Config) {
	return func(c *core.Config) {
		c.Scopes = append(c.Scopes, core.ScopeOpenID)
		c.OIDC.SigningKeys = backchannelKeys(t)
		c.OIDC.SSO = true
		c.BackchannelLogout = core.BackchannelLogout{Enabled: true, Backoff: time.Millisecond, AllowLoopbackForTests: true}
		if rp != nil {
			c.BackchannelLogout.TLS = rp.tls()
		}
	}
}

// rpClient registers a confidential client whose back-channel logout URI
// is path on rp ("" for none) and returns its secret.
func (e *env) rpClient(id string, rp *testRP, path string, mod ...func(*core.ClientSpec)) string {
	e.t.Helper()
	spec := core.ClientSpec{ID: id, Name: id, RedirectURIs: []string{confCB}}
	if path != "" {
		spec.BackchannelLogoutURI = rp.URL + path
	}
	for _, m := range mod {
		m(&spec)
	}
	return e.addClient(spec)
}

// signIn runs an OpenID authorization for client in the browser (its
// login session: the login page when it has none, SSO otherwise) and
// returns the code.
func (e *env) signIn(client string, extra url.Values) string {
	e.t.Helper()
	q := codeQuery(client, confCB, "openid", "st")
	for k, v := range extra {
		q[k] = v
	}
	w := e.authorize(q)
	if w.status == 200 {
		w = e.login(w, "alice", "pw")
	}
	_, v := locQuery(e.t, w)
	if v.Get("code") == "" {
		e.t.Fatalf("sign-in to %s: %d %v", client, w.status, v)
	}
	return v.Get("code")
}

// idToken redeems a code of a confidential client and returns its
// id_token, with its claims.
func (e *env) idToken(client, secret, code string) (string, map[string]any) {
	e.t.Helper()
	w := e.token(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {confCB}, "code_verifier": {verifier}}, basic(client, secret))
	raw, _ := w.json(e.t)["id_token"].(string)
	if w.status != 200 || raw == "" {
		e.t.Fatalf("token for %s: %d %s", client, w.status, w.body)
	}
	return raw, jwtClaims(e.t, raw)
}

func (e *env) logout(hint string) *fakeResp {
	return e.do(&fakeReq{method: "GET", path: "/oauth2/logout", query: url.Values{"id_token_hint": {hint}}.Encode()})
}

// silent is prompt=none for client: the code, or the error.
func (e *env) silent(client string) url.Values {
	e.t.Helper()
	q := codeQuery(client, confCB, "openid", "st")
	q.Set("prompt", "none")
	_, v := locQuery(e.t, e.authorize(q))
	return v
}

// idle waits until the server has nothing left to deliver.
func (e *env) idle() {
	e.t.Helper()
	select {
	case <-core.BackchannelIdle(e.srv):
	case <-time.After(30 * time.Second):
		e.t.Fatal("back-channel deliveries still pending after 30 s")
	}
}

func jwtClaims(t *testing.T, raw string) map[string]any {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWS: %q", raw)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	var m map[string]any
	if err == nil {
		err = json.Unmarshal(b, &m)
	}
	if err != nil {
		t.Fatalf("JWT payload: %v", err)
	}
	return m
}

// verifyLogoutToken checks a post as the relying party must (Back-Channel
// Logout §2.6): a form with logout_token alone, a JWS with typ logout+jwt
// verified with go-jose against the server's JWKS under alg, iss, aud,
// iat, exp, jti, the event, sub and sid (absent when sid is ""), and no
// nonce. It returns the claims.
func (e *env) verifyLogoutToken(p rpPost, alg gojose.SignatureAlgorithm, aud, sub, sid string) map[string]any {
	t := e.t
	t.Helper()
	if p.contentType != "application/x-www-form-urlencoded" || len(p.form) != 1 || len(p.form["logout_token"]) != 1 {
		t.Fatalf("post to %s: %q %v", p.path, p.contentType, p.form)
	}
	raw := p.form.Get("logout_token")
	jwks := e.do(&fakeReq{method: "GET", path: "/oauth2/jwks"})
	var set gojose.JSONWebKeySet
	if err := json.Unmarshal(jwks.body, &set); err != nil {
		t.Fatalf("JWKS: %v", err)
	}
	jws, err := gojose.ParseSignedCompact(raw, []gojose.SignatureAlgorithm{alg})
	if err != nil {
		t.Fatalf("logout token for %s is not a JWS signed with %s: %v", aud, alg, err)
	}
	h := jws.Signatures[0].Protected
	if h.ExtraHeaders[gojose.HeaderType] != "logout+jwt" {
		t.Errorf("typ %v, want logout+jwt", h.ExtraHeaders[gojose.HeaderType])
	}
	keys := set.Key(h.KeyID)
	if len(keys) != 1 {
		t.Fatalf("kid %q is not in the JWKS once", h.KeyID)
	}
	payload, err := jws.Verify(keys[0])
	if err != nil {
		t.Fatalf("logout token signature: %v", err)
	}
	var c map[string]any
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	iat, _ := c["iat"].(float64)
	exp, _ := c["exp"].(float64)
	events, _ := c["events"].(map[string]any)
	ev, isObj := events[backchannelEvent].(map[string]any)
	switch {
	case c["iss"] != issuer || c["aud"] != aud || c["sub"] != sub:
		t.Errorf("iss/aud/sub: %v", c)
	case int64(iat) != e.now.Unix() || exp-iat != 120:
		t.Errorf("iat %v exp %v, want iat now and exp two minutes later", iat, exp)
	case len(events) != 1 || !isObj || len(ev) != 0:
		t.Errorf("events %v", c["events"])
	case c["jti"] == nil || c["jti"] == "":
		t.Errorf("no jti: %v", c)
	}
	if _, ok := c["nonce"]; ok {
		t.Errorf("a logout token carries a nonce: %v", c)
	}
	if got, ok := c["sid"]; sid == "" && ok || sid != "" && got != sid {
		t.Errorf("sid %v, want %q", got, sid)
	}
	return c
}

// A relying party receives a logout token it can verify against the JWKS
// for every client that signed in during the session and registered a
// back-channel URI, signed with the client's id_token algorithm; a client
// without one gets nothing; the session is gone; a second session's token
// has a fresh jti and its own sid.
func TestBackchannelLogoutToken(t *testing.T) {
	rp := newRP(t)
	e := newEnv(t, false, withBackchannel(t, rp))
	secret := e.rpClient("rp1", rp, "/rp1")
	e.rpClient("rp2", rp, "/rp2", func(s *core.ClientSpec) {
		s.IDTokenSignedResponseAlg, s.BackchannelLogoutSessionRequired = core.AlgES256, true
	})
	e.rpClient("rp3", nil, "")
	code := e.signIn("rp1", url.Values{"nonce": {"n-0S6_WzA2Mj"}})
	e.signIn("rp2", nil) // SSO: the same session
	e.signIn("rp3", nil)
	e.signIn("rp1", nil) // again: still one notification for rp1
	hint, id := e.idToken("rp1", secret, code)
	sid, _ := id["sid"].(string)
	if sid == "" || id["nonce"] != "n-0S6_WzA2Mj" {
		t.Fatalf("id_token %v", id)
	}
	if got := rp.got(""); len(got) != 0 {
		t.Fatalf("posts before the logout: %v", got)
	}
	w := e.logout(hint)
	if w.status != 200 || !strings.Contains(string(w.body), "Signed out") {
		t.Fatalf("logout: %d %s", w.status, w.body)
	}
	e.idle()
	if got := rp.got(""); len(got) != 2 {
		t.Fatalf("%d posts, want one for rp1 and one for rp2: %v", len(got), got)
	}
	first := e.verifyLogoutToken(rp.got("/rp1")[0], gojose.RS256, "rp1", "alice", sid)
	e.verifyLogoutToken(rp.got("/rp2")[0], gojose.ES256, "rp2", "alice", sid)
	if v := e.silent("rp1"); v.Get("error") != "login_required" {
		t.Errorf("prompt=none after the logout: %v", v)
	}

	// A second session, a second logout: a new token.
	code = e.signIn("rp1", nil)
	hint, id = e.idToken("rp1", secret, code)
	if id["sid"] == sid {
		t.Fatal("the new session has the old sid")
	}
	if w := e.logout(hint); w.status != 200 {
		t.Fatalf("second logout: %d", w.status)
	}
	e.idle()
	posts := rp.got("/rp1")
	if len(posts) != 2 || len(rp.got("")) != 3 {
		t.Fatalf("after the second logout: %v", rp.got(""))
	}
	second := e.verifyLogoutToken(posts[1], gojose.RS256, "rp1", "alice", id["sid"].(string))
	if first["jti"] == second["jti"] {
		t.Errorf("two logout tokens share jti %v", first["jti"])
	}
	md := e.do(&fakeReq{method: "GET", path: "/.well-known/openid-configuration"}).json(t)
	if md["backchannel_logout_supported"] != true || md["backchannel_logout_session_supported"] != true {
		t.Errorf("metadata: %v %v", md["backchannel_logout_supported"], md["backchannel_logout_session_supported"])
	}
}

// A new login in the browser replaces its session: the clients of the
// replaced one are told it ended.
func TestBackchannelLogoutSessionReplaced(t *testing.T) {
	rp := newRP(t)
	e := newEnv(t, false, withBackchannel(t, rp))
	secret := e.rpClient("rp1", rp, "/rp1")
	_, old := e.idToken("rp1", secret, e.signIn("rp1", nil))
	// The same user signing in again (prompt=login, a step-up): the
	// session goes on, same sid, nobody is signed out.
	code := e.signIn("rp1", url.Values{"prompt": {"login"}})
	e.idle()
	if posts := rp.got(""); len(posts) != 0 {
		t.Fatalf("%d posts after the same user signed in again, want 0", len(posts))
	}
	hint, id := e.idToken("rp1", secret, code)
	if id["sid"] != old["sid"] || id["auth_time"] == nil {
		t.Errorf("re-authentication: sid %v (was %v)", id["sid"], old["sid"])
	}
	// The session kept its clients: its end still reaches rp1.
	if w := e.logout(hint); w.status != 200 {
		t.Fatalf("logout: %d %s", w.status, w.body)
	}
	e.idle()
	posts := rp.got("")
	if len(posts) != 1 {
		t.Fatalf("%d posts after the logout, want 1", len(posts))
	}
	e.verifyLogoutToken(posts[0], gojose.RS256, "rp1", "alice", old["sid"].(string))
}

// The logout response never waits for a relying party: one that holds
// the request, one that accepts connections and never answers, and one
// that is not listening. The first is answered once the logout is done;
// the silent one is given up after the retries, with a log line that
// names the client and never the token.
func TestBackchannelLogoutDoesNotWait(t *testing.T) {
	rp := newRP(t)
	rp.hold = make(chan struct{})
	released := false
	release := func() {
		if !released {
			released = true
			close(rp.hold)
		}
	}
	t.Cleanup(release) // before rp.Close, which waits for the held request

	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	requests := make(chan string, 8)
	var connsMu sync.Mutex
	var conns []net.Conn
	hangUp := func() {
		_ = silent.Close()
		connsMu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		connsMu.Unlock()
	}
	t.Cleanup(hangUp)
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			connsMu.Lock()
			conns = append(conns, c)
			connsMu.Unlock()
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				b, _ := io.ReadAll(req.Body)
				requests <- string(b)
				_, _ = io.Copy(io.Discard, br) // never answers; ends when the client gives up
			}()
		}
	}()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedURL := "http://" + closed.Addr().String() + "/bc"
	_ = closed.Close()

	var logs logBuf
	e := newEnv(t, false, withBackchannel(t, rp), withLog(&logs), func(c *core.Config) { c.BackchannelLogout.Timeout = 30 * time.Second })
	secret := e.rpClient("held", rp, "/held")
	e.rpClient("silent", nil, "", func(s *core.ClientSpec) { s.BackchannelLogoutURI = "http://" + silent.Addr().String() + "/bc" })
	e.rpClient("gone", nil, "", func(s *core.ClientSpec) { s.BackchannelLogoutURI = closedURL })
	code := e.signIn("held", nil)
	e.signIn("silent", nil)
	e.signIn("gone", nil)
	hint, _ := e.idToken("held", secret, code)

	done := make(chan *fakeResp, 1)
	go func() { done <- e.logout(hint) }()
	var w *fakeResp
	select {
	case w = <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("the logout response waited for the relying parties")
	}
	if w.status != 200 {
		t.Fatalf("logout: %d %s", w.status, w.body)
	}
	// The held relying party has the request and is still holding it:
	// the response above did not wait for its answer.
	select {
	case p := <-rp.arrived:
		if p != "/held" {
			t.Fatalf("post to %s", p)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the held relying party got no post")
	}
	var token string
	select {
	case body := <-requests:
		f, _ := url.ParseQuery(body)
		token = f.Get("logout_token")
	case <-time.After(20 * time.Second):
		t.Fatal("the silent relying party got no post")
	}
	if token == "" {
		t.Fatal("no logout token posted to the silent relying party")
	}
	release()
	// The silent one would time out (30 s per attempt here): rather than
	// wait, hang up, so that this attempt and the next ones fail at once.
	hangUp()
	e.idle()
	if got := rp.got("/held"); len(got) != 1 {
		t.Errorf("the held relying party got %d posts, want 1 (it answered 200)", len(got))
	}
	out := logs.String()
	for _, c := range []string{"client_id=silent", "client_id=gone"} {
		if !strings.Contains(out, "giving up") || !strings.Contains(out, c) {
			t.Errorf("no give-up log line for %s:\n%s", c, out)
		}
	}
	if strings.Contains(out, token) || strings.Contains(out, hint) {
		t.Error("the log holds a token")
	}
}

// A 5xx or a network failure is retried with the same token until it is
// accepted or the attempts are used up; a 4xx is not retried.
func TestBackchannelLogoutRetries(t *testing.T) {
	rp := newRP(t)
	rp.answers["/flaky"] = []int{503, 502, 200}
	rp.answers["/refuses"] = []int{400}
	rp.answers["/down"] = []int{500}
	e := newEnv(t, false, withBackchannel(t, rp), quietLog)
	secret := e.rpClient("flaky", rp, "/flaky")
	e.rpClient("refuses", rp, "/refuses")
	e.rpClient("down", rp, "/down")
	code := e.signIn("flaky", nil)
	e.signIn("refuses", nil)
	e.signIn("down", nil)
	hint, id := e.idToken("flaky", secret, code)
	if w := e.logout(hint); w.status != 200 {
		t.Fatalf("logout: %d", w.status)
	}
	e.idle()
	flaky, refuses, down := rp.got("/flaky"), rp.got("/refuses"), rp.got("/down")
	if len(flaky) != 3 || len(refuses) != 1 || len(down) != 3 {
		t.Fatalf("attempts: flaky %d (want 3), refuses %d (want 1), down %d (want 3: Attempts)", len(flaky), len(refuses), len(down))
	}
	for _, p := range flaky[1:] {
		if p.form.Get("logout_token") != flaky[0].form.Get("logout_token") {
			t.Error("a retry sent another token")
		}
	}
	e.verifyLogoutToken(flaky[2], gojose.RS256, "flaky", "alice", id["sid"].(string))
}

// EndUserSessions ends every session of the user, in every browser, and
// notifies the clients of each with its own sid; another user's session
// stays. A session without sid reaches only clients that do not require
// one, with a token without sid.
func TestBackchannelEndUserSessions(t *testing.T) {
	rp := newRP(t)
	e := newEnv(t, false, withBackchannel(t, rp))
	s1 := e.rpClient("rp1", rp, "/rp1")
	s2 := e.rpClient("rp2", rp, "/rp2", func(s *core.ClientSpec) { s.BackchannelLogoutSessionRequired = true })
	_, a := e.idToken("rp1", s1, e.signIn("rp1", nil))
	browserA := e.cookie
	e.cookie = ""
	_, b := e.idToken("rp2", s2, e.signIn("rp2", nil))
	browserB := e.cookie
	if a["sid"] == b["sid"] {
		t.Fatal("two browsers share a session")
	}
	ctx := context.Background()
	far := e.now.Add(time.Hour)
	for _, ls := range []*core.LoginSession{
		{ID: "bob-session", SID: "bob-sid", UserID: "bob", ClientIDs: []string{"rp1"}, CreatedAt: e.now, ExpiresAt: far},
		{ID: "carol-session", UserID: "carol", ClientIDs: []string{"rp1", "rp2"}, CreatedAt: e.now, ExpiresAt: far}, // no SID
	} {
		if err := e.store.CreateLoginSession(ctx, ls); err != nil {
			t.Fatal(err)
		}
	}
	n, err := e.srv.EndUserSessions(ctx, "alice")
	if err != nil || n != 2 {
		t.Fatalf("EndUserSessions: %d, %v; want 2", n, err)
	}
	e.idle()
	if len(rp.got("")) != 2 {
		t.Fatalf("posts: %v", rp.got(""))
	}
	e.verifyLogoutToken(rp.got("/rp1")[0], gojose.RS256, "rp1", "alice", a["sid"].(string))
	e.verifyLogoutToken(rp.got("/rp2")[0], gojose.RS256, "rp2", "alice", b["sid"].(string))
	for _, c := range []string{browserA, browserB} {
		e.cookie = c
		if v := e.silent("rp1"); v.Get("error") != "login_required" {
			t.Errorf("prompt=none in a browser whose session was ended: %v", v)
		}
	}
	if _, err := e.store.GetLoginSession(ctx, "bob-session", e.now); err != nil {
		t.Errorf("bob's session: %v", err)
	}
	if n, err := e.srv.EndUserSessions(ctx, "alice"); n != 0 || err != nil {
		t.Errorf("EndUserSessions again: %d, %v", n, err)
	}

	if n, err := e.srv.EndUserSessions(ctx, "carol"); n != 1 || err != nil {
		t.Fatalf("EndUserSessions(carol): %d, %v", n, err)
	}
	e.idle()
	if got := rp.got(""); len(got) != 3 || len(rp.got("/rp2")) != 1 {
		t.Fatalf("a session without sid reached a client requiring one: %v", got)
	}
	e.verifyLogoutToken(rp.got("/rp1")[1], gojose.RS256, "rp1", "carol", "")

	if _, err := e.srv.EndUserSessions(ctx, ""); err == nil {
		t.Error("EndUserSessions without a user id")
	}
	e.rebuild(false, sessionsOnly{e.store, e.store}, func(c *core.Config) { c.BackchannelLogout = core.BackchannelLogout{} })
	if _, err := e.srv.EndUserSessions(ctx, "alice"); !errors.Is(err, core.ErrNoCapability) {
		t.Errorf("EndUserSessions without the capability: %v", err)
	}
}

// sessionsOnly is a store with login sessions but not SessionClientStore.
type sessionsOnly struct {
	core.Storage
	core.LoginSessionStore
}

// failingSessions fails chosen SessionClientStore calls.
type failingSessions struct {
	*memstore.Store
	add, take error
}

func (f *failingSessions) AddSessionClient(ctx context.Context, sid, clientID string, now time.Time) error {
	if f.add != nil {
		return f.add
	}
	return f.Store.AddSessionClient(ctx, sid, clientID, now)
}

func (f *failingSessions) TakeLoginSession(ctx context.Context, id string, now time.Time) (*core.LoginSession, error) {
	if f.take != nil {
		return nil, f.take
	}
	return f.Store.TakeLoginSession(ctx, id, now)
}

// A code is issued in a session only once its client is recorded there:
// a failure to record (or a session at MaxSessionClients) issues none. A
// failure to end the session fails the logout, which notifies nobody and
// leaves the session as it was.
func TestBackchannelStorageFailures(t *testing.T) {
	rp := newRP(t)
	e := newEnv(t, false, withBackchannel(t, rp), quietLog)
	secret := e.rpClient("rp1", rp, "/rp1")
	e.rpClient("rp2", rp, "/rp2")
	code := e.signIn("rp1", nil)
	fs := &failingSessions{Store: e.store}
	e.rebuild(false, fs)
	for _, err := range []error{errors.New("database on fire"), core.ErrTooManySessionClients} {
		fs.add = err
		before := e.store.PendingCodes()
		q := codeQuery("rp2", confCB, "openid", "st")
		wantRedirectError(t, e.authorize(q), confCB, core.ErrServerError, "st")
		if e.store.PendingCodes() != before {
			t.Errorf("%v: a code was stored", err)
		}
	}
	fs.add = nil
	fs.take = errors.New("database on fire")
	hint, _ := e.idToken("rp1", secret, code)
	browser := e.cookie
	w := e.logout(hint)
	wantErrorPage(t, w, 500)
	if strings.Contains(string(w.body), "fire") {
		t.Errorf("the error page tells the storage error: %s", w.body)
	}
	e.idle()
	if got := rp.got(""); len(got) != 0 {
		t.Errorf("a failed logout notified: %v", got)
	}
	// The response cleared the cookie all the same; the session is still
	// there for a browser that kept it.
	e.cookie = browser
	if v := e.silent("rp1"); v.Get("code") == "" {
		t.Errorf("the session did not survive the failed logout: %v", v)
	}
}

// New refuses back-channel logout it could not honour, naming what is
// missing; bounds are enforced; metadata advertises it only when on.
func TestBackchannelConfig(t *testing.T) {
	base := func(c *core.Config) {
		*c = core.Config{Issuer: issuer, Keys: core.Keys{CryptKey: []byte("0123456789abcdef0123456789abcdef"), SignKey: []byte("fedcba9876543210fedcba9876543210")},
			Scopes: []string{core.ScopeOpenID}, OIDC: core.OIDC{SigningKeys: backchannelKeys(t)}, BackchannelLogout: core.BackchannelLogout{Enabled: true}}
	}
	var srv *core.Server
	for name, tc := range map[string]struct {
		mod   func(*core.Config)
		store core.Storage
		auth  core.Authenticator
		want  string
	}{
		"no OIDC":          {mod: func(c *core.Config) { c.OIDC = core.OIDC{}; c.Scopes = nil }, want: "OIDC.SigningKeys"},
		"no capability":    {store: sessionsOnly{memstore.New(), memstore.New()}, want: "SessionClientStore"},
		"app sessions":     {auth: &appSessions{srv: &srv}, want: "SessionAuthenticator"},
		"too many tries":   {mod: func(c *core.Config) { c.BackchannelLogout.Attempts = 11 }, want: "Attempts"},
		"too slow":         {mod: func(c *core.Config) { c.BackchannelLogout.Timeout = time.Minute }, want: "Timeout"},
		"too long backoff": {mod: func(c *core.Config) { c.BackchannelLogout.Backoff = time.Hour }, want: "Backoff"},
	} {
		var cfg core.Config
		base(&cfg)
		if tc.mod != nil {
			tc.mod(&cfg)
		}
		store, auth := tc.store, tc.auth
		if store == nil {
			store = memstore.New()
		}
		if auth == nil {
			auth = noAuth{}
		}
		_, err := core.New(cfg, store, auth)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error naming %s", name, err, tc.want)
		}
	}
	var cfg core.Config
	base(&cfg)
	cfg.BackchannelLogout.Enabled = false
	s, err := core.New(cfg, memstore.New(), noAuth{})
	if err != nil {
		t.Fatal(err)
	}
	w := newResp()
	s.Metadata(w, &fakeReq{method: "GET", path: "/.well-known/oauth-authorization-server"})
	if strings.Contains(string(w.body), "backchannel") {
		t.Errorf("metadata without back-channel logout: %s", w.body)
	}
}

// ClientSpec.BackchannelLogoutURI: https or loopback http, no fragment or
// userinfo, bounded; session_required needs a URI.
func TestBackchannelClientSpec(t *testing.T) {
	for uri, ok := range map[string]bool{
		"https://rp.example/bc?tenant=1":                  true,
		"http://127.0.0.1:8080/bc":                        true,
		"http://localhost/bc":                             true,
		"http://[::1]:9/bc":                               true,
		"http://rp.example/bc":                            false,
		"https://rp.example/bc#frag":                      false,
		"https://user@rp.example/bc":                      false,
		"/bc":                                             false,
		"javascript:alert(1)":                             false,
		"https://rp.example/" + strings.Repeat("a", 2048): false,
	} {
		c, _, err := core.NewClient(core.ClientSpec{RedirectURIs: []string{confCB}, BackchannelLogoutURI: uri})
		if (err == nil) != ok {
			t.Errorf("%.60q: %v, want ok=%v", uri, err, ok)
		}
		if ok && (c == nil || c.BackchannelLogoutURI != uri) {
			t.Errorf("%q not kept: %+v", uri, c)
		}
	}
	if _, _, err := core.NewClient(core.ClientSpec{RedirectURIs: []string{confCB}, BackchannelLogoutSessionRequired: true}); err == nil {
		t.Error("session required without a URI")
	}
	c, _, err := core.NewClient(core.ClientSpec{RedirectURIs: []string{confCB}, BackchannelLogoutURI: "https://rp.example/bc", BackchannelLogoutSessionRequired: true})
	if err != nil || !c.BackchannelLogoutSessionRequired {
		t.Errorf("%v %+v", err, c)
	}
}

// Dynamic registration takes backchannel_logout_uri and
// backchannel_logout_session_required when back-channel logout is on,
// validated (https; loopback http only with the test switch), stores and
// answers them.
func TestBackchannelRegistration(t *testing.T) {
	reg := func(uri string, session bool) string {
		md := map[string]any{"redirect_uris": []string{"https://rp.example/cb"}, "client_name": "RP", "backchannel_logout_uri": uri}
		if session {
			md["backchannel_logout_session_required"] = true
		}
		b, _ := json.Marshal(md)
		return string(b)
	}
	e := newEnv(t, true, openRegistration, withBackchannel(t, nil), func(c *core.Config) { c.BackchannelLogout.AllowLoopbackForTests = false })
	w := e.register(reg("https://rp.example/bc?x=1", true), nil, "192.0.2.1:1")
	if w.status != 201 {
		t.Fatalf("register: %d %s", w.status, w.body)
	}
	m := w.json(t)
	if m["backchannel_logout_uri"] != "https://rp.example/bc?x=1" || m["backchannel_logout_session_required"] != true {
		t.Errorf("registration response: %s", w.body)
	}
	c, err := e.store.GetClient(context.Background(), m["client_id"].(string))
	if err != nil || c.BackchannelLogoutURI != "https://rp.example/bc?x=1" || !c.BackchannelLogoutSessionRequired {
		t.Errorf("stored client: %v %+v", err, c)
	}
	for name, body := range map[string]string{
		"http":                     reg("http://rp.example/bc", false),
		"loopback http, no switch": reg("http://127.0.0.1:9/bc", false),
		"fragment":                 reg("https://rp.example/bc#x", false),
		"relative":                 reg("/bc", false),
		"session_required alone":   `{"redirect_uris":["https://rp.example/cb"],"backchannel_logout_session_required":true}`,
		"not a string":             `{"redirect_uris":["https://rp.example/cb"],"backchannel_logout_uri":7}`,
		"longer than 2048 bytes":   reg("https://rp.example/"+strings.Repeat("a", 2048), false),
	} {
		w := e.register(body, nil, "192.0.2.2:1")
		if w.status != 400 || w.json(t)["error"] != core.ErrInvalidClientMetadata && w.json(t)["error"] != "invalid_request" {
			t.Errorf("%s: %d %s", name, w.status, w.body)
		}
	}
	e = newEnv(t, true, openRegistration, withBackchannel(t, nil))
	if w := e.register(reg("http://127.0.0.1:9/bc", false), nil, "192.0.2.3:1"); w.status != 201 {
		t.Errorf("loopback http with the test switch: %d %s", w.status, w.body)
	}
	e = newEnv(t, true, openRegistration)
	if w := e.register(reg("https://rp.example/bc", false), nil, "192.0.2.4:1"); w.status != 400 || w.json(t)["error"] != core.ErrInvalidClientMetadata {
		t.Errorf("back-channel logout off: %d %s", w.status, w.body)
	}
}

// A session that ends while one of its authorizations waits for consent
// (a logout in another tab) gets no code: the client would never hear of
// the session's end.
func TestBackchannelSessionEndedDuringConsent(t *testing.T) {
	rp := newRP(t)
	e := newEnv(t, true, withBackchannel(t, rp))
	e.rpClient("rp1", rp, "/rp1")
	page := e.authorize(codeQuery("rp1", confCB, "openid", "st"))
	w := e.login(page, "alice", "pw")
	if w.status != 200 {
		t.Fatalf("want the consent page: %d %s", w.status, w.body)
	}
	if n, err := e.srv.EndUserSessions(context.Background(), "alice"); n != 1 || err != nil {
		t.Fatalf("EndUserSessions: %d %v", n, err)
	}
	before := e.store.PendingCodes()
	f := hidden(t, w.body)
	f.Set("decision", "approve")
	wantRedirectError(t, e.post("/oauth2/login", f, nil), confCB, core.ErrLoginRequired, "st")
	if e.store.PendingCodes() != before {
		t.Error("a code was stored for the ended session")
	}
	e.idle()
	if got := rp.got(""); len(got) != 0 {
		t.Errorf("a session no client had a code in notified: %v", got)
	}
}

// A relying party that never answers cannot starve the others: its
// pending notifications are capped per client, so with the queue nearly
// full of its jobs another client's notification is still accepted and
// delivered once the tarpit lets go.
func TestBackchannelTarpitCannotStarve(t *testing.T) {
	tarpit, victim := newRP(t), newRP(t)
	tarpit.hold = make(chan struct{})
	released := false
	release := func() {
		if !released {
			released = true
			close(tarpit.hold)
		}
	}
	t.Cleanup(release)
	// httptest servers share one certificate: the tarpit's TLS config
	// trusts both.
	e := newEnv(t, false, withBackchannel(t, tarpit), func(c *core.Config) {
		c.BackchannelLogout.QueueSize, c.BackchannelLogout.MaxConcurrent, c.BackchannelLogout.Attempts = 10, 1, 1
	})
	e.rpClient("tar", tarpit, "/tar")
	secret := e.rpClient("victim", victim, "/victim")
	// Twelve browsers signed in to tar, all signed out at once: 12
	// notifications for a queue of 10.
	for range 12 {
		e.cookie = ""
		e.signIn("tar", nil)
	}
	if _, err := e.srv.EndUserSessions(t.Context(), "alice"); err != nil {
		t.Fatal(err)
	}
	e.cookie = ""
	code := e.signIn("victim", nil)
	hint, _ := e.idToken("victim", secret, code)
	if w := e.logout(hint); w.status != 200 {
		t.Fatalf("logout: %d %s", w.status, w.body)
	}
	release()
	e.idle()
	if got := victim.got("/victim"); len(got) != 1 {
		t.Fatalf("the victim got %d notifications, want 1 (tarpit got %d)", len(got), len(tarpit.got("/tar")))
	}
	if n := len(tarpit.got("/tar")); n > 8 {
		t.Errorf("the tarpit got %d notifications, want at most 8 (its cap)", n)
	}
}
