package core_test

import (
	"strings"
	"testing"
	"time"

	"github.com/oauth2kit/oauth2kit/core"
)

// throttledAuth reports failures to the server and asks it first, as the
// docs of LoginAllowed say an app should.
type throttledAuth struct{ testAuth }

func (a *throttledAuth) ProcessLogin(w core.Responder, r core.Request, ar *core.AuthorizationRequest) {
	srv := *a.srv
	user := ar.Form.Get("username")
	if !srv.LoginAllowed(w, r, user) {
		return
	}
	if user != "alice" || ar.Form.Get("password") != "pw" {
		srv.LoginFailed(r, user)
		_ = w.Send(200, []byte("wrong username or password"))
		return
	}
	srv.SendGrant(w, r, ar, user, "")
}

func TestLoginThrottling(t *testing.T) {
	e := newEnv(t, false, func(c *core.Config) { c.MaxLoginFailures = 3; c.MaxLoginFailuresPerAddr = 5 })
	// Rebuild the server with the throttling authenticator.
	cfg := e.srv.Config()
	srv, err := core.New(cfg, e.store, &throttledAuth{testAuth{srv: &e.srv}})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = srv
	page := e.authorize(codeQuery("conf", confCB, "read", "s"))
	attempt := func(user, pw, remote string) *fakeResp {
		f := hidden(t, page.body)
		f.Set("username", user)
		f.Set("password", pw)
		r := &fakeReq{method: "POST", path: "/oauth2/login", body: f.Encode(), remote: remote}
		r.hdr = withForm(nil)
		return e.do(r)
	}
	for i := range 3 {
		if w := attempt("Alice", "nope", "198.51.100.1:1"); w.status != 200 || !strings.Contains(string(w.body), "wrong") {
			t.Fatalf("failure %d: %d %s", i, w.status, w.body)
		}
	}
	// The account is throttled now, from any address, even with the right
	// password (case-insensitive user name); the page says nothing about
	// whether the user exists.
	w := attempt("alice", "pw", "203.0.113.7:1")
	if w.status != 429 || w.hdr.Get("Retry-After") == "" || w.hdr.Get("Location") != "" {
		t.Fatalf("throttled login: %d %v", w.status, w.hdr)
	}
	if w.hdr.Get("X-Frame-Options") != "DENY" {
		t.Errorf("429 page without anti-framing headers: %v", w.hdr)
	}
	// An unknown user name behaves the same.
	for range 3 {
		attempt("nobody", "x", "198.51.100.2:1")
	}
	if w := attempt("nobody", "x", "203.0.113.8:1"); w.status != 429 {
		t.Errorf("unknown user not throttled alike: %d", w.status)
	}
	// Per address: 5 failures over different user names block the address.
	for i := range 5 {
		attempt("user"+string(rune('a'+i)), "x", "192.0.2.50:1")
	}
	if w := attempt("bob", "x", "192.0.2.50:2"); w.status != 429 {
		t.Errorf("address not throttled: %d", w.status)
	}
	// The window ends.
	e.now = e.now.Add(5*time.Minute + time.Second)
	if w := attempt("alice", "pw", "203.0.113.7:1"); w.status != 303 {
		t.Errorf("after the window: %d %s", w.status, w.body)
	}
}
