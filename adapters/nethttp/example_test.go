package nethttp_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"html"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"

	"golang.org/x/oauth2/clientcredentials"

	"github.com/oauth2kit/oauth2kit/adapters/nethttp"
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

func randomKey() []byte {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		log.Fatal(err)
	}
	return k
}

// Mount the authorization server on an http.ServeMux next to an API that
// only answers requests carrying a valid access token with scope "read".
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
		Name:       "Reporting job",
		GrantTypes: []string{core.GrantClientCredentials},
		Scopes:     []string{"read"},
	})
	if err != nil {
		log.Fatal(err)
	}
	store.AddClient(client)

	mux := http.NewServeMux()
	nethttp.Mount(mux, srv) // /oauth2/authorize, /oauth2/token, ... and the metadata
	report := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info, _ := nethttp.TokenInfo(r.Context())
		fmt.Fprintf(w, "report for %s (scope %q)\n", info.ClientID, info.Scope)
	})
	mux.Handle("GET /api/report", nethttp.Middleware(srv, "read")(report))
	ts.Config.Handler = mux
	ts.Start()
	defer ts.Close()

	// Without a token: 401 and a Bearer challenge.
	res, err := http.Get(ts.URL + "/api/report")
	if err != nil {
		log.Fatal(err)
	}
	res.Body.Close()
	fmt.Println(res.StatusCode, strings.HasPrefix(res.Header.Get("WWW-Authenticate"), "Bearer realm="))

	// With a token from the token endpoint, through golang.org/x/oauth2.
	cc := clientcredentials.Config{ClientID: "reporting", ClientSecret: secret, TokenURL: issuer + "/oauth2/token", Scopes: []string{"read"}}
	res, err = cc.Client(context.Background()).Get(ts.URL + "/api/report")
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
