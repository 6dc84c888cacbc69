package core_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/oauth2kit/oauth2kit/core"
	"github.com/oauth2kit/oauth2kit/core/memstore"
)

// A minimal Request/Responder pair: what an in-house HTTP stack
// implements to call the server without any adapter.
type exampleRequest struct {
	method, path, query, body string
	header                    http.Header
}

func (r exampleRequest) Context() context.Context    { return context.Background() }
func (r exampleRequest) Method() string              { return r.method }
func (r exampleRequest) Path() string                { return r.path }
func (r exampleRequest) RawQuery() string            { return r.query }
func (r exampleRequest) Header(name string) []string { return r.header.Values(name) }
func (r exampleRequest) Body() io.Reader             { return strings.NewReader(r.body) }
func (r exampleRequest) RemoteAddr() string          { return "127.0.0.1:50000" }
func (r exampleRequest) TLS() bool                   { return false }

type exampleResponse struct {
	status int
	header http.Header
	body   []byte
}

func (w *exampleResponse) SetHeader(k, v string) { w.header.Set(k, v) }
func (w *exampleResponse) AddHeader(k, v string) { w.header.Add(k, v) }
func (w *exampleResponse) Send(status int, body []byte) error {
	w.status, w.body = status, body
	return nil
}

// loginPage is an Authenticator that renders a bare login form.
type loginPage struct{ srv *core.Server }

func (a *loginPage) Login(w core.Responder, r core.Request, ar *core.AuthorizationRequest) {
	w.SetHeader("Content-Type", "text/html; charset=utf-8")
	_ = w.Send(200, []byte(`<form method="post" action="`+ar.ProcessLoginURL+`">`+ar.HiddenFields()+
		`<input name="username"><input name="password" type="password"><button>Sign in</button></form>`))
}

func (a *loginPage) ProcessLogin(w core.Responder, r core.Request, ar *core.AuthorizationRequest) {
	if ar.Form.Get("username") == "demo" && ar.Form.Get("password") == "demo" {
		a.srv.SendGrant(w, r, ar, "demo", "")
		return
	}
	a.Login(w, r, ar)
}

// Build a server, register a client, and call the token endpoint and the
// resource check directly through the Request/Responder seam.
func Example() {
	store := memstore.New()
	auth := &loginPage{}
	srv, err := core.New(core.Config{
		Issuer: "https://auth.example.com",
		Keys:   core.Keys{CryptKey: []byte("an example crypt key, 32+ bytes!"), SignKey: []byte("an example sign key, 32+ bytes!!")}, // use crypto/rand in production

		Scopes: []string{"read", "write"},
	}, store, auth)
	if err != nil {
		panic(err)
	}
	auth.srv = srv

	client, secret, err := core.NewClient(core.ClientSpec{
		ID:         "reporting",
		GrantTypes: []string{core.GrantClientCredentials},
		Scopes:     []string{"read"},
	})
	if err != nil {
		panic(err)
	}
	store.AddClient(client)

	w := &exampleResponse{header: http.Header{}}
	srv.Handle(w, exampleRequest{
		method: "POST", path: "/oauth2/token", body: "grant_type=client_credentials",
		header: http.Header{
			"Content-Type":  {"application/x-www-form-urlencoded"},
			"Authorization": {core.EncodeBasic("reporting", secret)},
		},
	})
	var tok struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int    `json:"expires_in"`
		Scope       string `json:"scope"`
	}
	_ = json.Unmarshal(w.body, &tok)
	fmt.Println(w.status, w.header.Get("Cache-Control"), tok.TokenType, tok.ExpiresIn, tok.Scope)

	info, rerr := srv.CheckRequest(exampleRequest{method: "GET", path: "/api/report",
		header: http.Header{"Authorization": {"Bearer " + tok.AccessToken}}}, "read")
	fmt.Println(rerr == nil, info.ClientID, info.Scope)
	// Output:
	// 200 no-store Bearer 3600 read
	// true reporting read
}

func ExampleNewClient() {
	c, secret, err := core.NewClient(core.ClientSpec{
		Name:         "Example App",
		RedirectURIs: []string{"https://app.example/callback"},
	})
	fmt.Println(err, len(secret) >= 43, strings.HasPrefix(c.SecretHash, "sha256$"), c.SecretHash != secret)

	_, _, err = core.NewClient(core.ClientSpec{RedirectURIs: []string{"http://app.example/callback"}})
	fmt.Println(err)
	// Output:
	// <nil> true true true
	// redirect URI "http://app.example/callback": http redirect URIs are allowed only for loopback hosts; use https
}
