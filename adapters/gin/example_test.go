package ginadapter_test

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"

	"github.com/gin-gonic/gin"

	ginadapter "github.com/oauth2kit/oauth2kit/adapters/gin"
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
	// ginadapter.Unwrap(r) is the *gin.Context, for the app's own session.
	if ar.Form.Get("username") != "alice" || ar.Form.Get("password") != "wonderland" { // check your user store here
		l.Login(w, r, ar)
		return
	}
	l.srv.SendGrant(w, r, ar, "alice", "")
}

func randomKey() []byte {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		log.Fatal(err)
	}
	return k
}

// Mount the authorization server on a gin engine next to an API group
// that only answers requests carrying a valid access token with scope
// "read".
func Example() {
	// The issuer is the URL clients reach the server at: an https URL in
	// production, a loopback test server here.
	ts := httptest.NewUnstartedServer(nil)
	issuer := "http://" + ts.Listener.Addr().String()

	store := memstore.New()
	login := &exampleLogin{}
	srv, err := core.New(core.Config{
		Issuer:   issuer,
		CryptKey: randomKey(), // load both from your secret store, keep them stable
		SignKey:  randomKey(),
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

	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(gin.Recovery())
	ginadapter.Mount(r, srv) // /oauth2/authorize, /oauth2/token, ... and the metadata
	api := r.Group("/api", ginadapter.Middleware(srv, "read"))
	api.GET("/report", func(c *gin.Context) {
		info, _ := ginadapter.TokenInfo(c)
		c.String(http.StatusOK, "report for %s (scope %q)\n", info.ClientID, info.Scope)
	})
	ts.Config.Handler = r
	ts.Start()
	defer ts.Close()

	// Without a token: 401 and a Bearer challenge.
	res, err := http.Get(ts.URL + "/api/report")
	if err != nil {
		log.Fatal(err)
	}
	res.Body.Close()
	fmt.Println(res.StatusCode, strings.HasPrefix(res.Header.Get("WWW-Authenticate"), "Bearer realm="))

	// With a token from the token endpoint.
	req, _ := http.NewRequest("POST", issuer+"/oauth2/token", strings.NewReader(url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("reporting", secret)
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.NewDecoder(res.Body).Decode(&tok)
	res.Body.Close()

	req, _ = http.NewRequest("GET", ts.URL+"/api/report", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	fmt.Print(res.StatusCode, " ", string(body))

	// Output:
	// 401 true
	// 200 report for reporting (scope "read")
}
