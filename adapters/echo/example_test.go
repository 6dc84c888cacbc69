package echoadapter_test

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"html"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	echoadapter "github.com/oauth2kit/oauth2kit/adapters/echo"
	"github.com/oauth2kit/oauth2kit/core"
	"github.com/oauth2kit/oauth2kit/core/memstore"
)

// exampleLogin is the application's login step: it renders a sign-in form
// and, once the password checks out, hands the user to the server.
type exampleLogin struct{ srv *core.Server }

func (l *exampleLogin) Login(w core.Responder, _ core.Request, ar *core.AuthorizationRequest) {
	w.SetHeader("Content-Type", "text/html; charset=utf-8")
	_ = w.Send(200, []byte(`<form method="post" action="`+html.EscapeString(ar.ProcessLoginURL)+`">`+
		ar.HiddenFields()+`<input name="username"><input type="password" name="password"><button>Sign in</button></form>`))
}

func (l *exampleLogin) ProcessLogin(w core.Responder, r core.Request, ar *core.AuthorizationRequest) {
	if ar.Form.Get("username") != "alice" || ar.Form.Get("password") != "wonderland" { // check your user store here
		l.Login(w, r, ar)
		return
	}
	l.srv.SendGrant(w, r, ar, "alice", "")
}

func exampleKey() []byte {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		log.Fatal(err)
	}
	return k
}

// Mount the authorization server on echo next to an API group that only
// answers requests carrying a valid access token with scope "read".
func Example() {
	store := memstore.New()
	login := &exampleLogin{}
	srv, err := core.New(core.Config{
		Issuer:   "https://auth.example.com", // the URL clients reach the server at
		CryptKey: exampleKey(),               // load both from your secret store, keep them stable
		SignKey:  exampleKey(),
		Scopes:   []string{"read", "write"},
	}, store, login)
	if err != nil {
		log.Fatal(err)
	}
	login.srv = srv

	// A back-end job authenticating as itself (client_credentials). The
	// secret is shown once and stored only hashed.
	client, secret, err := core.NewClient(core.ClientSpec{
		ID:         "reporting",
		GrantTypes: []string{core.GrantClientCredentials},
		Scopes:     []string{"read"},
	})
	if err != nil {
		log.Fatal(err)
	}
	store.AddClient(client)

	e := echo.New()
	e.Use(middleware.Recover())
	echoadapter.Mount(e, srv) // /oauth2/authorize, /oauth2/token, ... and the metadata
	api := e.Group("/api", echoadapter.Middleware(srv, "read"))
	api.GET("/report", func(c echo.Context) error {
		info, _ := echoadapter.TokenInfo(c)
		return c.String(http.StatusOK, fmt.Sprintf("report for %s (scope %q)\n", info.ClientID, info.Scope))
	})
	// In production: e.Start(":8443") behind TLS. Here the requests are
	// served in process.

	// Without a token: 401 and a Bearer challenge.
	w := httptest.NewRecorder()
	e.ServeHTTP(w, httptest.NewRequest("GET", "/api/report", nil))
	fmt.Println(w.Code, w.Header().Get("WWW-Authenticate"))

	// A token from the token endpoint, then the report with it.
	r := httptest.NewRequest("POST", "/oauth2/token", strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.SetBasicAuth("reporting", secret)
	w = httptest.NewRecorder()
	e.ServeHTTP(w, r)
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &tok); err != nil {
		log.Fatal(err)
	}
	r = httptest.NewRequest("GET", "/api/report", nil)
	r.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	w = httptest.NewRecorder()
	e.ServeHTTP(w, r)
	fmt.Print(w.Code, " ", w.Body)

	// Output:
	// 401 Bearer realm="https://auth.example.com"
	// 200 report for reporting (scope "read")
}
