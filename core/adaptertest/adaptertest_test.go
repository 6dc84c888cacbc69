package adaptertest_test

import (
	"crypto/rand"
	"html"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/oauth2kit/oauth2kit/core"
	"github.com/oauth2kit/oauth2kit/core/adaptertest"
	"github.com/oauth2kit/oauth2kit/core/memstore"
)

// The suites run against PlainHandler, so the root module exercises them
// without depending on an adapter module.

// serve is a Mount over h(s), wrapped in around when set.
func serve(around func(http.Handler) http.Handler) adaptertest.Mount {
	return func(t *testing.T, newServer func(string) *core.Server) string {
		ts := httptest.NewUnstartedServer(nil)
		base := "http://" + ts.Listener.Addr().String()
		h := adaptertest.PlainHandler(newServer(base))
		if around != nil {
			h = around(h)
		}
		ts.Config.Handler = h
		ts.Start()
		t.Cleanup(ts.Close)
		return ts.URL
	}
}

func TestSuiteAgainstPlainBinding(t *testing.T) {
	adaptertest.Run(t, serve(nil))
}

// loopbackProxy takes the client address from X-Forwarded-For when the
// peer is a loopback address, the simplest binding that passes
// RunClientAddress: the rightmost hop that is not loopback.
func loopbackProxy(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
			hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
			for i := len(hops) - 1; i >= 0; i-- {
				if ip := net.ParseIP(strings.TrimSpace(hops[i])); ip != nil && !ip.IsLoopback() {
					r.RemoteAddr = ip.String()
					break
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

func TestClientAddressAgainstPlainBinding(t *testing.T) {
	adaptertest.RunClientAddress(t, serve(loopbackProxy), serve(nil))
}

func TestProtectedResponse(t *testing.T) {
	got := string(adaptertest.ProtectedResponse(&core.TokenInfo{UserID: "u<1>", ClientID: "c", Scope: "a b"}, []byte("x=1&y=2")))
	want := `{"sub":"u\u003c1\u003e","client_id":"c","scope":"a b","body":"x=1\u0026y=2"}`
	if got != want {
		t.Errorf("ProtectedResponse = %s, want %s", got, want)
	}
}

// login is an app's login step: a form, then a password check.
type login struct{ srv *core.Server }

func (l *login) Login(w core.Responder, _ core.Request, ar *core.AuthorizationRequest) {
	w.SetHeader("Content-Type", "text/html; charset=utf-8")
	_ = w.Send(200, []byte(`<form method="post" action="`+html.EscapeString(ar.ProcessLoginURL)+`">`+
		ar.HiddenFields()+`<input name="username"><input type="password" name="password"><button>Sign in</button></form>`))
}

func (l *login) ProcessLogin(w core.Responder, r core.Request, ar *core.AuthorizationRequest) {
	if ar.Form.Get("username") != "alice" || ar.Form.Get("password") != "wonderland" {
		l.Login(w, r, ar)
		return
	}
	l.srv.SendGrant(w, r, ar, "alice", "")
}

// flowServer serves a server with the login step and a public client "web"
// through PlainHandler, and returns its issuer and how to stop it.
func flowServer() (issuer string, stop func()) {
	ts := httptest.NewUnstartedServer(nil)
	issuer = "http://" + ts.Listener.Addr().String()
	store := memstore.New()
	l := &login{}
	cryptKey, signKey := make([]byte, 32), make([]byte, 32)
	_, _ = rand.Read(cryptKey)
	_, _ = rand.Read(signKey)
	srv, err := core.New(core.Config{Issuer: issuer, Keys: core.Keys{CryptKey: cryptKey, SignKey: signKey}, Scopes: []string{"read"}}, store, l)
	if err != nil {
		log.Fatal(err)
	}
	l.srv = srv
	c, _, err := core.NewClient(core.ClientSpec{ID: "web", Public: true, RedirectURIs: []string{"https://app.example.com/callback"}})
	if err != nil {
		log.Fatal(err)
	}
	store.AddClient(c)
	ts.Config.Handler = adaptertest.PlainHandler(srv)
	ts.Start()
	return issuer, ts.Close
}

// A Flow walks the authorization code flow against a serving server, here
// one behind PlainHandler (whose protected route answers
// ProtectedResponse).
func ExampleFlow() {
	issuer, stop := flowServer()
	defer stop()
	err := adaptertest.Flow{
		Issuer:      issuer,
		ClientID:    "web",
		RedirectURI: "https://app.example.com/callback",
		Scope:       "read",
		Login:       url.Values{"username": {"alice"}, "password": {"wonderland"}},
		API:         issuer + adaptertest.PathMe,
	}.Run(os.Stdout)
	if err != nil {
		log.Fatal(err)
	}
	// Output:
	// GET /api/me without a token: 401, Bearer challenge
	// GET /oauth2/authorize: 200, a form posting to /oauth2/login
	// POST /oauth2/login: 303 to https://app.example.com/callback with a code
	// POST /oauth2/token: 200, a Bearer token with scope "read"
	// GET /api/me with the token: 200, {"sub":"alice","client_id":"web","scope":"read","body":""}
}

func TestFlowStopsAtTheFirstWrongAnswer(t *testing.T) {
	issuer, stop := flowServer()
	t.Cleanup(stop)
	base := adaptertest.Flow{
		Issuer: issuer, ClientID: "web", RedirectURI: "https://app.example.com/callback", Scope: "read",
		Login: url.Values{"username": {"alice"}, "password": {"wonderland"}}, API: issuer + adaptertest.PathMe,
	}
	tests := []struct {
		name  string
		edit  func(*adaptertest.Flow)
		lines int    // the steps printed before the error
		want  string // in the error
	}{
		{"WrongPassword", func(f *adaptertest.Flow) { f.Login.Set("password", "guess") }, 2, "did the login fail"},
		{"UnregisteredRedirect", func(f *adaptertest.Flow) { f.RedirectURI = "https://evil.example/cb" }, 1, "want 200 with the app's login form"},
		{"UnprotectedAPI", func(f *adaptertest.Flow) { f.API = issuer + "/.well-known/oauth-authorization-server" }, 0, "want 401 with a Bearer challenge"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := base
			f.Login = url.Values{"username": {"alice"}, "password": {"wonderland"}}
			tc.edit(&f)
			var out strings.Builder
			err := f.Run(&out)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Run = %v, want an error with %q", err, tc.want)
			}
			if n := strings.Count(out.String(), "\n"); n != tc.lines {
				t.Errorf("printed %d lines before the error, want %d:\n%s", n, tc.lines, out.String())
			}
			if strings.Contains(err.Error(), "code=") || strings.Contains(err.Error(), "code_verifier") {
				t.Errorf("the error shows a query: %v", err)
			}
		})
	}
}

func TestWellKnownAgainstPlainBinding(t *testing.T) {
	adaptertest.RunWellKnown(t, func(t *testing.T, newServer func(string) *core.Server) string {
		ts := httptest.NewUnstartedServer(nil)
		s := newServer("http://" + ts.Listener.Addr().String())
		ts.Config.Handler = adaptertest.PlainWellKnown(s)
		ts.Start()
		t.Cleanup(ts.Close)
		return ts.URL
	})
}
