package fiberadapter_test

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"log"
	"net/http/httptest"
	"net/url"
	"strings"

	"github.com/gofiber/fiber/v2"

	fiberadapter "github.com/oauth2kit/oauth2kit/adapters/fiber"
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
	// fiberadapter.Unwrap(r) gives the *fiber.Ctx, for the app's own cookies.
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

// Mount the authorization server on a fiber app next to an API that only
// answers requests carrying a valid access token with scope "read".
func Example() {
	// The issuer is the URL clients reach the server at: an https URL in
	// production.
	const issuer = "http://127.0.0.1:8080"
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

	app := fiber.New()
	fiberadapter.Mount(app, srv) // /oauth2/authorize, /oauth2/token, ... and the metadata
	app.Get("/api/report", fiberadapter.Middleware(srv, "read"), func(c *fiber.Ctx) error {
		info, _ := fiberadapter.TokenInfo(c)
		return c.SendString(fmt.Sprintf("report for %s (scope %q)\n", info.ClientID, info.Scope))
	})

	// app.Test serves a request in memory; app.Listen(":8080") in production.
	call := func(method, path, auth, form string) (int, string) {
		req := httptest.NewRequest(method, path, strings.NewReader(form))
		if form != "" {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		res, err := app.Test(req)
		if err != nil {
			log.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(body)
	}

	// Without a token: 401 and a Bearer challenge.
	status, _ := call("GET", "/api/report", "", "")
	fmt.Println(status)

	// With a token from the token endpoint.
	_, body := call("POST", "/oauth2/token", "", url.Values{"grant_type": {"client_credentials"},
		"client_id": {"reporting"}, "client_secret": {secret}, "scope": {"read"}}.Encode())
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal([]byte(body), &tok); err != nil {
		log.Fatal(err)
	}
	status, body = call("GET", "/api/report", "Bearer "+tok.AccessToken, "")
	fmt.Print(status, " ", body)

	// Output:
	// 401
	// 200 report for reporting (scope "read")
}
