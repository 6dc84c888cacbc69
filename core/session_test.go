package core_test

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/oauth2kit/oauth2kit/core"
	"github.com/oauth2kit/oauth2kit/core/memstore"
)

// signedIn knows the user already: Login calls SendGrant at once.
// signedInConsent also asks for consent (a page, hence a form and a
// session).
type signedIn struct{ srv *core.Server }

func (a *signedIn) Login(w core.Responder, r core.Request, ar *core.AuthorizationRequest) {
	a.srv.SendGrant(w, r, ar, "alice", "")
}

func (a *signedIn) ProcessLogin(w core.Responder, r core.Request, ar *core.AuthorizationRequest) {
	a.srv.SendGrant(w, r, ar, "alice", "")
}

type signedInConsent struct{ signedIn }

var _ core.ConsentPrompter = (*signedInConsent)(nil)

func (a *signedInConsent) Consent(w core.Responder, _ core.Request, ar *core.AuthorizationRequest) {
	w.SetHeader("Content-Type", "text/html; charset=utf-8")
	_ = w.Send(200, []byte(`<form method="post" action="`+ar.ProcessLoginURL+`">`+ar.HiddenFields()+
		`<button name="decision" value="approve">Allow</button></form>`))
}

func newSessionServer(t *testing.T, auth interface {
	core.Authenticator
	setSrv(*core.Server)
}) *core.Server {
	t.Helper()
	store := memstore.New()
	srv, err := core.New(core.Config{
		Issuer:   "https://auth.example.com",
		CryptKey: []byte("a test crypt key of 32+ bytes!!!"),
		SignKey:  []byte("a test sign key of 32+ bytes!!!!"),
		Scopes:   []string{"read"},
	}, store, auth)
	if err != nil {
		t.Fatal(err)
	}
	auth.setSrv(srv)
	c, _, err := core.NewClient(core.ClientSpec{ID: "app", RedirectURIs: []string{"https://app.example.com/cb"}, Public: true})
	if err != nil {
		t.Fatal(err)
	}
	store.AddClient(c)
	return srv
}

func (a *signedIn) setSrv(s *core.Server) { a.srv = s }

func authorizeQuery() string {
	sum := sha256.Sum256([]byte(strings.Repeat("v", 43)))
	return url.Values{
		"response_type": {"code"}, "client_id": {"app"}, "redirect_uri": {"https://app.example.com/cb"},
		"state": {"s"}, "code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
	}.Encode()
}

// The session cookie exists to bind a form to the browser: an authorization
// answered at once with a redirect sets none, a page with a form sets it,
// and the form then works with it.
func TestSessionCookieOnlyWithAForm(t *testing.T) {
	t.Run("redirect at once", func(t *testing.T) {
		srv := newSessionServer(t, &signedIn{})
		w := &exampleResponse{header: http.Header{}}
		srv.Handle(w, exampleRequest{method: "GET", path: "/oauth2/authorize", query: authorizeQuery()})
		if w.status != 303 || !strings.Contains(w.header.Get("Location"), "code=") {
			t.Fatalf("status %d, Location %q", w.status, w.header.Get("Location"))
		}
		if c := w.header.Values("Set-Cookie"); len(c) != 0 {
			t.Fatalf("Set-Cookie on a bare redirect: %q", c)
		}
		if w.header.Get("X-Frame-Options") != "DENY" || w.header.Get("Cache-Control") != "no-store" {
			t.Fatalf("headers %v", w.header)
		}
	})
	t.Run("consent page", func(t *testing.T) {
		srv := newSessionServer(t, &signedInConsent{})
		w := &exampleResponse{header: http.Header{}}
		srv.Handle(w, exampleRequest{method: "GET", path: "/oauth2/authorize", query: authorizeQuery()})
		if w.status != 200 {
			t.Fatalf("status %d", w.status)
		}
		cookies := w.header.Values("Set-Cookie")
		if len(cookies) != 1 || !strings.HasPrefix(cookies[0], core.SecureSessionCookie+"=") {
			t.Fatalf("Set-Cookie = %q", cookies)
		}
		form := url.Values{"decision": {"approve"}}
		for _, m := range regexp.MustCompile(`name="([^"]+)" value="([^"]*)"`).FindAllStringSubmatch(string(w.body), -1) {
			form.Set(m[1], m[2])
		}
		cookie := strings.SplitN(cookies[0], ";", 2)[0]
		post := func(cookie string) *exampleResponse {
			w := &exampleResponse{header: http.Header{}}
			srv.Handle(w, exampleRequest{method: "POST", path: "/oauth2/login", body: form.Encode(),
				header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Cookie": {cookie}}})
			return w
		}
		if w := post(""); w.status != 403 {
			t.Fatalf("without the cookie: status %d", w.status)
		}
		if w := post(cookie); w.status != 303 || !strings.Contains(w.header.Get("Location"), "code=") {
			t.Fatalf("with the cookie: status %d, Location %q", w.status, w.header.Get("Location"))
		}
	})
}

// keeper answers the login with its own page and keeps the request, as an
// app that wrongly holds on to it past the handler might.
type keeper struct {
	signedIn
	kept *core.AuthorizationRequest
}

func (a *keeper) Login(w core.Responder, _ core.Request, ar *core.AuthorizationRequest) {
	a.kept = ar
	_ = w.Send(200, []byte("a page without a form"))
}

// After the handler returned, the request no longer reaches the response
// (frameworks recycle it): a late Handle is "" and sets no cookie.
func TestLateHandleSetsNoCookie(t *testing.T) {
	a := &keeper{}
	srv := newSessionServer(t, a)
	w := &exampleResponse{header: http.Header{}}
	srv.Handle(w, exampleRequest{method: "GET", path: "/oauth2/authorize", query: authorizeQuery()})
	if w.status != 200 || a.kept == nil {
		t.Fatalf("status %d", w.status)
	}
	if h := a.kept.Handle(); h != "" {
		t.Fatalf("late Handle = %q", h)
	}
	if c := w.header.Values("Set-Cookie"); len(c) != 0 {
		t.Fatalf("Set-Cookie after the handler returned: %q", c)
	}
}
