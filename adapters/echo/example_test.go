package echoadapter_test

import (
	"crypto/rand"
	"fmt"
	"html"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	echoadapter "github.com/oauth2kit/oauth2kit/adapters/echo"
	"github.com/oauth2kit/oauth2kit/core"
	"github.com/oauth2kit/oauth2kit/core/adaptertest"
	"github.com/oauth2kit/oauth2kit/core/memstore"
)

// login is the application's login step: it renders a sign-in form and,
// once the password checks out, hands the user to the server.
type login struct{ srv *core.Server }

func (l *login) Login(w core.Responder, _ core.Request, ar *core.AuthorizationRequest) {
	w.SetHeader("Content-Type", "text/html; charset=utf-8")
	_ = w.Send(http.StatusOK, []byte(`<form method="post" action="`+html.EscapeString(ar.ProcessLoginURL)+`">`+
		ar.HiddenFields()+`<input name="username"><input type="password" name="password"><button>Sign in</button></form>`))
}

func (l *login) ProcessLogin(w core.Responder, r core.Request, ar *core.AuthorizationRequest) {
	// echoadapter.Unwrap(r) is the echo.Context, for the app's own session.
	if ar.Form.Get("username") != "alice" || ar.Form.Get("password") != "wonderland" { // check your user store here
		l.Login(w, r, ar)
		return
	}
	l.srv.SendGrant(w, r, ar, "alice", "")
}

// Mount the authorization server on echo next to an API group that only
// answers requests carrying a valid access token with scope "read".
func Example() {
	// The issuer is the URL clients reach the server at: an https URL in
	// production, a loopback test server here.
	ts := httptest.NewUnstartedServer(nil)
	issuer := "http://" + ts.Listener.Addr().String()

	// Load both keys from your secret store and keep them stable: tokens
	// and pending logins are sealed with them.
	cryptKey, signKey := make([]byte, 32), make([]byte, 32)
	rand.Read(cryptKey)
	rand.Read(signKey)

	store := memstore.New()
	l := &login{}
	srv, err := core.New(core.Config{Issuer: issuer, Keys: core.Keys{CryptKey: cryptKey, SignKey: signKey}, Scopes: []string{"read", "write"}}, store, l)
	if err != nil {
		log.Fatal(err)
	}
	l.srv = srv

	// A browser app signing its users in (authorization code with PKCE).
	client, _, err := core.NewClient(core.ClientSpec{
		ID:           "web",
		Public:       true,
		RedirectURIs: []string{"https://app.example.com/callback"},
		Scopes:       []string{"read"},
	})
	if err != nil {
		log.Fatal(err)
	}
	store.AddClient(client)

	e := echo.New()
	e.HideBanner = true
	e.Use(middleware.Recover())
	// Behind a reverse proxy, set e.IPExtractor so that the failure
	// throttles count each client apart.
	echoadapter.Mount(e, srv) // /oauth2/authorize, /oauth2/token, ... and the metadata
	api := e.Group("/api", echoadapter.Middleware(srv, "read"))
	api.GET("/report", func(c echo.Context) error {
		info, _ := echoadapter.TokenInfo(c)
		return c.String(http.StatusOK, fmt.Sprintf("report for %s (client %q, scope %q)\n", info.UserID, info.ClientID, info.Scope))
	})
	ts.Config.Handler = e
	ts.Start()
	defer ts.Close()

	// A user's browser and the client app (golang.org/x/oauth2, say) go
	// through the flow; adaptertest.Flow plays both and prints each step.
	err = adaptertest.Flow{
		Issuer:      issuer,
		ClientID:    "web",
		RedirectURI: "https://app.example.com/callback",
		Scope:       "read",
		Login:       url.Values{"username": {"alice"}, "password": {"wonderland"}},
		API:         ts.URL + "/api/report",
	}.Run(os.Stdout)
	if err != nil {
		log.Fatal(err)
	}

	// Output:
	// GET /api/report without a token: 401, Bearer challenge
	// GET /oauth2/authorize: 200, a form posting to /oauth2/login
	// POST /oauth2/login: 303 to https://app.example.com/callback with a code
	// POST /oauth2/token: 200, a Bearer token with scope "read"
	// GET /api/report with the token: 200, report for alice (client "web", scope "read")
}
