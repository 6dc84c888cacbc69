package core_test

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/oauth2kit/oauth2kit/core"
	"github.com/oauth2kit/oauth2kit/core/memstore"
)

// exampleServer builds a server on a memory store with one public client
// ("app", redirect http://127.0.0.1/cb) and returns the pieces.
func exampleServer(auth core.Authenticator, mod ...func(*core.Config)) (*core.Server, *memstore.Store) {
	cfg := core.Config{
		Issuer: "https://auth.example.com",
		Keys:   core.Keys{CryptKey: []byte("an example crypt key, 32+ bytes!"), SignKey: []byte("an example sign key, 32+ bytes!!")}, // use crypto/rand in production

		Scopes: []string{"read", "write"},
	}
	for _, m := range mod {
		m(&cfg)
	}
	store := memstore.New()
	srv, err := core.New(cfg, store, auth)
	if err != nil {
		panic(err)
	}
	c, _, err := core.NewClient(core.ClientSpec{ID: "app", Name: "Example App", Public: true, RedirectURIs: []string{"http://127.0.0.1/cb"}})
	if err != nil {
		panic(err)
	}
	store.AddClient(c)
	return srv, store
}

// exampleBrowser carries a cookie jar of one between requests.
type exampleBrowser struct {
	srv    *core.Server
	cookie string
}

func (b *exampleBrowser) do(method, path, query, body string) *exampleResponse {
	h := http.Header{}
	if b.cookie != "" {
		h.Set("Cookie", b.cookie)
	}
	if body != "" {
		h.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	w := &exampleResponse{header: http.Header{}}
	b.srv.Handle(w, exampleRequest{method: method, path: path, query: query, body: body, header: h})
	if c := w.header.Get("Set-Cookie"); c != "" {
		b.cookie, _, _ = strings.Cut(c, ";")
	}
	return w
}

var exampleAuthorizeQuery = url.Values{
	"response_type": {"code"}, "client_id": {"app"}, "redirect_uri": {"http://127.0.0.1/cb"}, "scope": {"read"}, "state": {"s1"},
	"code_challenge": {core.S256Challenge("a-code-verifier-of-at-least-43-characters-long")}, "code_challenge_method": {"S256"},
}.Encode()

var exampleHidden = regexp.MustCompile(`name="([a-z_0-9]+)" value="([^"]*)"`)

// submit posts the hidden fields of page plus extra, as a browser would.
func (b *exampleBrowser) submit(page *exampleResponse, extra url.Values) *exampleResponse {
	f := url.Values{}
	for _, m := range exampleHidden.FindAllStringSubmatch(string(page.body), -1) {
		f.Set(m[1], html.UnescapeString(m[2]))
	}
	for k, v := range extra {
		f[k] = v
	}
	return b.do("POST", "/oauth2/login", "", f.Encode())
}

func redirectParams(w *exampleResponse) string {
	u, _ := url.Parse(w.header.Get("Location"))
	q := u.Query()
	return fmt.Sprintf("%d code=%v state=%s iss=%s error=%s", w.status, q.Get("code") != "", q.Get("state"), q.Get("iss"), q.Get("error"))
}

// knownUser is an Authenticator for an app whose users are already signed
// in to it: Login calls SendGrant at once (no page), naming the user from
// the app's own session.
type knownUser struct{ srv *core.Server }

func (a *knownUser) Login(w core.Responder, r core.Request, ar *core.AuthorizationRequest) {
	user := "alice" // from the app's session cookie, in a real app
	a.srv.SendGrant(w, r, ar, user, `{"tenant":"t1"}`)
}

func (a *knownUser) ProcessLogin(w core.Responder, r core.Request, ar *core.AuthorizationRequest) {}

// SendGrant completes the authorization once the app knows the user: the
// browser is redirected (303) back to the client with the code, the state
// and the issuer (RFC 9207). The additional info travels into every token
// of the grant.
func ExampleServer_SendGrant() {
	auth := &knownUser{}
	srv, _ := exampleServer(auth)
	auth.srv = srv
	b := &exampleBrowser{srv: srv}
	fmt.Println(redirectParams(b.do("GET", "/oauth2/authorize", exampleAuthorizeQuery, "")))
	// Output:
	// 303 code=true state=s1 iss=https://auth.example.com error=
}

// withConsent is loginPage plus a consent page: the kit shows it (through
// Consent) when the user has not approved this client and scope before,
// and settles the answer itself.
type withConsent struct{ loginPage }

func (a *withConsent) Consent(w core.Responder, r core.Request, ar *core.AuthorizationRequest) {
	w.SetHeader("Content-Type", "text/html; charset=utf-8")
	_ = w.Send(200, []byte(`<p>`+html.EscapeString(ar.ClientName)+` asks for `+html.EscapeString(ar.Scope)+`</p>`+
		`<form method="post" action="`+ar.ProcessLoginURL+`">`+ar.HiddenFields()+
		`<button name="decision" value="approve">Allow</button><button name="decision" value="deny">Deny</button></form>`))
}

// An Authenticator that also implements ConsentPrompter gets a consent
// step: the first authorization asks, the approval is remembered, and the
// next authorization of the same client and scope goes straight through.
func ExampleConsentPrompter() {
	auth := &withConsent{}
	srv, _ := exampleServer(auth)
	auth.srv = srv
	b := &exampleBrowser{srv: srv}

	login := b.do("GET", "/oauth2/authorize", exampleAuthorizeQuery, "")
	consent := b.submit(login, url.Values{"username": {"demo"}, "password": {"demo"}})
	fmt.Println(consent.status, strings.Contains(string(consent.body), "Example App asks for read"))
	fmt.Println(redirectParams(b.submit(consent, url.Values{"decision": {"approve"}})))

	// Approved before: the login leads straight to a code.
	login = b.do("GET", "/oauth2/authorize", exampleAuthorizeQuery, "")
	fmt.Println(redirectParams(b.submit(login, url.Values{"username": {"demo"}, "password": {"demo"}})))
	// Output:
	// 200 true
	// 303 code=true state=s1 iss=https://auth.example.com error=
	// 303 code=true state=s1 iss=https://auth.example.com error=
}

// throttledLogin asks the kit before it checks a password and reports
// each failure: the kit refuses further attempts for that user name, or
// from that address, with 429 and Retry-After.
type throttledLogin struct{ loginPage }

func (a *throttledLogin) ProcessLogin(w core.Responder, r core.Request, ar *core.AuthorizationRequest) {
	user := ar.Form.Get("username")
	if !a.srv.LoginAllowed(w, r, user) {
		return // the kit has answered 429
	}
	if user == "demo" && ar.Form.Get("password") == "demo" {
		a.srv.SendGrant(w, r, ar, user, "")
		return
	}
	a.srv.LoginFailed(r, user)
	a.Login(w, r, ar)
}

// Login throttling: after Config.LoginThrottle.PerAccount failures for one user
// name, even the right password is refused until the window ends.
func ExampleServer_LoginAllowed() {
	auth := &throttledLogin{}
	srv, _ := exampleServer(auth, func(c *core.Config) { c.LoginThrottle.PerAccount = 3 })
	auth.srv = srv
	b := &exampleBrowser{srv: srv}
	page := b.do("GET", "/oauth2/authorize", exampleAuthorizeQuery, "")
	for range 3 {
		page = b.submit(page, url.Values{"username": {"demo"}, "password": {"guess"}})
		fmt.Print(page.status, " ")
	}
	w := b.submit(page, url.Values{"username": {"demo"}, "password": {"demo"}})
	fmt.Println(w.status, w.header.Get("Retry-After") != "")
	// Output:
	// 200 200 200 429 true
}

// Key rotation: the new generation mints, the old one stays in VerifyKeys
// so that tokens it minted keep working until they expire; a server that
// dropped it refuses them.
func ExampleConfig_keyRotation() {
	oldKeys := core.Keys{ID: "2026-11", CryptKey: []byte(strings.Repeat("o", 32)), SignKey: []byte(strings.Repeat("O", 32))}
	newKeys := core.Keys{ID: "2026-12", CryptKey: []byte(strings.Repeat("n", 32)), SignKey: []byte(strings.Repeat("N", 32))}
	build := func(current core.Keys, verify ...core.Keys) *core.Server {
		srv, store := exampleServer(&knownUser{}, func(c *core.Config) {
			c.Keys.ID, c.Keys.CryptKey, c.Keys.SignKey, c.VerifyKeys = current.ID, current.CryptKey, current.SignKey, verify
		})
		c, _, _ := core.NewClient(core.ClientSpec{ID: "svc", Secret: strings.Repeat("s", 40), GrantTypes: []string{core.GrantClientCredentials}})
		store.AddClient(c)
		return srv
	}
	token := func(srv *core.Server) string {
		w := &exampleResponse{header: http.Header{}}
		srv.Handle(w, exampleRequest{method: "POST", path: "/oauth2/token", body: "grant_type=client_credentials",
			header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Authorization": {core.EncodeBasic("svc", strings.Repeat("s", 40))}}})
		_, rest, _ := strings.Cut(string(w.body), `"access_token":"`)
		tok, _, _ := strings.Cut(rest, `"`)
		return tok
	}
	before := build(oldKeys)
	old := token(before)

	rotated := build(newKeys, oldKeys) // every instance, then…
	_, err := rotated.CheckToken(context.Background(), old)
	fmt.Println(strings.HasPrefix(token(rotated), "at2.2026-12."), err == nil)

	dropped := build(newKeys) // …once the old generation's tokens expired
	_, err = dropped.CheckToken(context.Background(), old)
	fmt.Println(err != nil)
	// Output:
	// true true
	// true
}

// "Sign out of all apps" (or a password change): RevokeUser ends every
// grant of the user — refresh tokens stop rotating and access tokens fail
// the resource check — and ForgetConsent makes the next authorization ask
// again. The Storage must implement core.UserGrantStore (core/memstore and
// storage/gorm do).
func ExampleServer_RevokeUser() {
	auth := &knownUser{}
	srv, _ := exampleServer(auth)
	auth.srv = srv
	b := &exampleBrowser{srv: srv}
	loc := b.do("GET", "/oauth2/authorize", exampleAuthorizeQuery, "").header.Get("Location")
	u, _ := url.Parse(loc)
	w := &exampleResponse{header: http.Header{}}
	srv.Handle(w, exampleRequest{method: "POST", path: "/oauth2/token", header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}},
		body: url.Values{"grant_type": {"authorization_code"}, "client_id": {"app"}, "code": {u.Query().Get("code")},
			"redirect_uri": {"http://127.0.0.1/cb"}, "code_verifier": {"a-code-verifier-of-at-least-43-characters-long"}}.Encode()})
	_, rest, _ := strings.Cut(string(w.body), `"access_token":"`)
	at, _, _ := strings.Cut(rest, `"`)

	apps, _ := srv.UserClients(context.Background(), "alice")
	fmt.Println(len(apps), apps[0].ClientID, apps[0].Active)
	_, err := srv.CheckToken(context.Background(), at)
	fmt.Println("before:", err == nil)

	n, err := srv.RevokeUser(context.Background(), "alice")
	fmt.Println("revoked families:", n, err)
	_, err = srv.CheckToken(context.Background(), at)
	fmt.Println("after:", err == nil)
	// Output:
	// 1 app true
	// before: true
	// revoked families: 1 <nil>
	// after: false
}
