package core_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/oauth2kit/oauth2kit/core"
	"github.com/oauth2kit/oauth2kit/core/memstore"
)

func openRegistration(c *core.Config) { c.Registration.Policy = core.RegistrationOpen }

// withCCRegistration also lets clients register client_credentials, which
// the kit refuses by default.
func withCCRegistration(c *core.Config) {
	c.Registration.GrantTypes = []string{core.GrantAuthorizationCode, core.GrantRefreshToken, core.GrantClientCredentials}
}

// register POSTs a JSON registration from addr.
func (e *env) register(body string, hdr http.Header, addr string) *fakeResp {
	if hdr == nil {
		hdr = http.Header{}
	}
	if hdr.Get("Content-Type") == "" {
		hdr.Set("Content-Type", "application/json")
	}
	return e.do(&fakeReq{method: "POST", path: "/register", body: body, hdr: hdr, remote: addr})
}

func (e *env) clientCount() int {
	e.t.Helper()
	cs, err := e.store.ListClients(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return len(cs)
}

const mcpRegistration = `{"redirect_uris":["http://localhost:6274/oauth/callback"],"token_endpoint_auth_method":"none",
	"grant_types":["authorization_code","refresh_token"],"response_types":["code"],"client_name":"MCP Inspector",
	"client_uri":"https://github.com/modelcontextprotocol/inspector","scope":"read"}`

func TestRegistrationOffByDefault(t *testing.T) {
	e := newEnv(t, true)
	if e.srv.Handle(newResp(), &fakeReq{method: "POST", path: "/register", hdr: http.Header{}}) {
		t.Fatal("the registration endpoint is served with registration off")
	}
	md := e.do(&fakeReq{method: "GET", path: "/.well-known/oauth-authorization-server"}).json(t)
	if _, ok := md["registration_endpoint"]; ok {
		t.Fatal("registration_endpoint advertised with registration off")
	}
}

func TestRegistrationNeedsConsentAndStore(t *testing.T) {
	cfg := core.Config{Issuer: issuer, Keys: core.Keys{CryptKey: make([]byte, 32), SignKey: make([]byte, 32)}}
	openRegistration(&cfg)
	var srv *core.Server
	if _, err := core.New(cfg, memstore.New(), &testAuth{srv: &srv}); err == nil || !strings.Contains(err.Error(), "ConsentPrompter") {
		t.Fatalf("New without a consent prompter: %v", err)
	}
	cfg.Registration.Policy = core.RegistrationInitialToken
	if _, err := core.New(cfg, memstore.New(), &consentAuth{testAuth{srv: &srv}}); err == nil || !strings.Contains(err.Error(), "InitialAccessToken") {
		t.Fatalf("initial-token policy without a checker: %v", err)
	}
	cfg.Registration.Policy = core.RegistrationHook
	if _, err := core.New(cfg, memstore.New(), &consentAuth{testAuth{srv: &srv}}); err == nil || !strings.Contains(err.Error(), "Approve") {
		t.Fatalf("hook policy without a hook: %v", err)
	}
	cfg.Registration.Policy = core.RegistrationOpen
	if _, err := core.New(cfg, baseOnlyStore{memstore.New()}, &consentAuth{testAuth{srv: &srv}}); !errors.Is(err, core.ErrNoCapability) {
		t.Fatalf("a store without RegistrationStore: %v", err)
	}
}

// baseOnlyStore hides every capability of the store it wraps.
type baseOnlyStore struct{ core.Storage }

func TestRegisterPublicClientThenAuthorize(t *testing.T) {
	e := newEnv(t, true, openRegistration)
	md := e.do(&fakeReq{method: "GET", path: "/.well-known/oauth-authorization-server"}).json(t)
	if md["registration_endpoint"] != issuer+"/register" {
		t.Fatalf("registration_endpoint = %v", md["registration_endpoint"])
	}
	before := e.clientCount()
	w := e.register(mcpRegistration, nil, "192.0.2.1:1234")
	if w.status != 201 || w.hdr.Get("Cache-Control") != "no-store" {
		t.Fatalf("register: %d %v %s", w.status, w.hdr, w.body)
	}
	got := w.json(t)
	id, _ := got["client_id"].(string)
	regToken, _ := got["registration_access_token"].(string)
	if id == "" || len(regToken) < 43 {
		t.Fatalf("response lacks client_id or registration_access_token: %s", w.body)
	}
	if _, ok := got["client_secret"]; ok {
		t.Fatal("a public client got a secret")
	}
	for k, want := range map[string]any{
		"registration_client_uri": issuer + "/register?client_id=" + url.QueryEscape(id),
		"application_type":        "web", "token_endpoint_auth_method": "none", "client_name": "MCP Inspector",
		"client_id_issued_at": float64(e.now.Unix()), "scope": "read",
	} {
		if got[k] != want {
			t.Errorf("%s = %v, want %v", k, got[k], want)
		}
	}
	if e.clientCount() != before+1 {
		t.Fatal("no client stored")
	}
	c, err := e.store.GetClient(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(regToken))
	if !c.Dynamic || !c.Public || c.RegistrationTokenHash != hex.EncodeToString(sum[:]) || strings.Contains(c.Metadata, regToken) ||
		c.RedirectURIs[0] != "http://localhost:6274/oauth/callback" || !c.UsedAt.IsZero() {
		t.Fatalf("stored client: %+v", c)
	}

	// The user is asked every time: consent to a self-named client is not
	// remembered.
	cb := "http://localhost:6274/oauth/callback"
	for round := range 2 {
		page := e.authorize(codeQuery(id, cb, "read", "s1"))
		w = e.login(page, "alice", "pw")
		if w.status != 200 || !strings.Contains(string(w.body), "MCP Inspector wants read") {
			t.Fatalf("round %d: no consent page: %d %s", round, w.status, w.body)
		}
		f := hidden(t, w.body)
		f.Set("decision", "approve")
		w = e.post("/oauth2/login", f, nil)
		q := wantCodeRedirect(t, w, cb, "s1")
		if round == 1 {
			tok := e.post("/oauth2/token", url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")},
				"redirect_uri": {cb}, "code_verifier": {verifier}}, basic(id, ""))
			if tok.status != 200 {
				t.Fatalf("token: %d %s", tok.status, tok.body)
			}
		}
	}
	if _, err := e.store.GetConsent(context.Background(), "alice", id); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("consent remembered for a dynamic client: %v", err)
	}
	if c, _ = e.store.GetClient(context.Background(), id); !c.UsedAt.Equal(e.now) {
		t.Fatalf("UsedAt = %v after the first token", c.UsedAt)
	}
}

func TestRegisterConfidentialClient(t *testing.T) {
	e := newEnv(t, true, openRegistration, withCCRegistration)
	w := e.register(`{"grant_types":["client_credentials"],"client_name":"Worker","scope":"read write"}`, nil, "")
	if w.status != 201 {
		t.Fatalf("register: %d %s", w.status, w.body)
	}
	got := w.json(t)
	id, secret := got["client_id"].(string), got["client_secret"].(string)
	if secret == "" || got["client_secret_expires_at"] != float64(0) || got["token_endpoint_auth_method"] != "client_secret_basic" {
		t.Fatalf("confidential registration: %s", w.body)
	}
	if _, ok := got["response_types"]; ok {
		t.Fatalf("response_types for a client without the code grant: %s", w.body)
	}
	c, _ := e.store.GetClient(context.Background(), id)
	if strings.Contains(c.SecretHash, secret) || !core.VerifySecret(c.SecretHash, secret) {
		t.Fatal("secret not stored hashed")
	}
	tok := e.post("/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"write"}}, basic(id, secret))
	if tok.status != 200 {
		t.Fatalf("client_credentials: %d %s", tok.status, tok.body)
	}
	if tok = e.post("/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, basic(id, secret+"x")); tok.status != 401 {
		t.Fatalf("wrong secret: %d", tok.status)
	}
}

func TestRegistrationRefusals(t *testing.T) {
	cases := []struct {
		name, body, code string
		ct               string
	}{
		{"no redirect_uris", `{"token_endpoint_auth_method":"none"}`, core.ErrInvalidRedirectURI, ""},
		{"http non-loopback", `{"redirect_uris":["http://app.example.com/cb"]}`, core.ErrInvalidRedirectURI, ""},
		{"fragment", `{"redirect_uris":["https://app.example.com/cb#x"]}`, core.ErrInvalidRedirectURI, ""},
		{"userinfo", `{"redirect_uris":["https://u@app.example.com/cb"]}`, core.ErrInvalidRedirectURI, ""},
		{"relative", `{"redirect_uris":["/cb"]}`, core.ErrInvalidRedirectURI, ""},
		{"custom scheme for web", `{"redirect_uris":["com.example.app:/cb"]}`, core.ErrInvalidRedirectURI, ""},
		{"native scheme without a dot", `{"application_type":"native","redirect_uris":["myapp:/cb"]}`, core.ErrInvalidRedirectURI, ""},
		{"javascript scheme", `{"application_type":"native","redirect_uris":["javascript:alert(1)"]}`, core.ErrInvalidRedirectURI, ""},
		{"bad post-logout URI", `{"redirect_uris":["https://a.example/cb"],"post_logout_redirect_uris":["http://a.example/"]}`, core.ErrInvalidRedirectURI, ""},
		{"too many redirect URIs", `{"redirect_uris":[` + strings.Repeat(`"https://a.example/cb",`, 20) + `"https://a.example/cb"]}`, core.ErrInvalidRedirectURI, ""},
		{"unknown application_type", `{"application_type":"desktop","redirect_uris":["https://a.example/cb"]}`, core.ErrInvalidClientMetadata, ""},
		{"client_secret_jwt", `{"token_endpoint_auth_method":"client_secret_jwt","redirect_uris":["https://a.example/cb"]}`, core.ErrInvalidClientMetadata, ""},
		{"implicit", `{"grant_types":["implicit"],"response_types":["token"],"redirect_uris":["https://a.example/cb"]}`, core.ErrInvalidClientMetadata, ""},
		{"token response type", `{"response_types":["code","token"],"redirect_uris":["https://a.example/cb"]}`, core.ErrInvalidClientMetadata, ""},
		{"code without the grant", `{"grant_types":["client_credentials"],"response_types":["code"]}`, core.ErrInvalidClientMetadata, ""},
		{"public client_credentials", `{"grant_types":["client_credentials"],"token_endpoint_auth_method":"none"}`, core.ErrInvalidClientMetadata, ""},
		{"client_credentials by default", `{"grant_types":["client_credentials"]}`, core.ErrInvalidClientMetadata, ""},
		{"unknown scope", `{"redirect_uris":["https://a.example/cb"],"scope":"read root"}`, core.ErrInvalidClientMetadata, ""},
		{"bidi name", `{"redirect_uris":["https://a.example/cb"],"client_name":"Good\u202eApp"}`, core.ErrInvalidClientMetadata, ""},
		{"long name", `{"redirect_uris":["https://a.example/cb"],"client_name":"` + strings.Repeat("n", 201) + `"}`, core.ErrInvalidClientMetadata, ""},
		{"javascript logo", `{"redirect_uris":["https://a.example/cb"],"logo_uri":"javascript:alert(1)"}`, core.ErrInvalidClientMetadata, ""},
		{"http policy", `{"redirect_uris":["https://a.example/cb"],"policy_uri":"http://a.example/p"}`, core.ErrInvalidClientMetadata, ""},
		{"jwks and jwks_uri", `{"redirect_uris":["https://a.example/cb"],"jwks_uri":"https://a.example/jwks","jwks":{"keys":[]}}`, core.ErrInvalidClientMetadata, ""},
		{"http jwks_uri", `{"redirect_uris":["https://a.example/cb"],"jwks_uri":"http://a.example/jwks"}`, core.ErrInvalidClientMetadata, ""},
		{"private jwk", `{"redirect_uris":["https://a.example/cb"],"jwks":{"keys":[{"kty":"EC","crv":"P-256","x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4","y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM","d":"870MB6gfuTJ4HtUnUvYMyJpr5eUZNP4Bk43bVdj3eAE"}]}}`, core.ErrInvalidClientMetadata, ""},
		{"symmetric jwk", `{"redirect_uris":["https://a.example/cb"],"jwks":{"keys":[{"kty":"oct","k":"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"}]}}`, core.ErrInvalidClientMetadata, ""},
		{"wrong type", `{"redirect_uris":"https://a.example/cb"}`, core.ErrInvalidClientMetadata, ""},
		{"not JSON", `redirect_uris=https://a.example/cb`, core.ErrInvalidClientMetadata, ""},
		{"a JSON array", `[]`, core.ErrInvalidClientMetadata, ""},
		{"client_id chosen by the client", `{"client_id":"mine","redirect_uris":["https://a.example/cb"]}`, core.ErrInvalidClientMetadata, ""},
		{"software statement", `{"redirect_uris":["https://a.example/cb"],"software_statement":"eyJhbGciOiJub25lIn0.e30."}`, core.ErrUnapprovedSoftwareStatement, ""},
		{"id_token alg without OIDC", `{"redirect_uris":["https://a.example/cb"],"id_token_signed_response_alg":"RS256"}`, core.ErrInvalidClientMetadata, ""},
		{"form body", `redirect_uris=x`, core.ErrInvalidRequest, "application/x-www-form-urlencoded"},
		{"oversized", `{"client_name":"` + strings.Repeat("a", 40<<10) + `"}`, core.ErrInvalidRequest, ""},
	}
	e := newEnv(t, true, openRegistration, func(c *core.Config) { c.Registration.PerAddress = 1000 })
	before := e.clientCount()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hdr := http.Header{}
			if tc.ct != "" {
				hdr.Set("Content-Type", tc.ct)
			}
			w := e.register(tc.body, hdr, "")
			if w.status != 400 || w.json(t)["error"] != tc.code {
				t.Fatalf("%d %s, want 400 %s", w.status, w.body, tc.code)
			}
		})
	}
	if e.clientCount() != before {
		t.Fatal("a refused registration stored a client")
	}
	// The good forms of the refused shapes are accepted.
	for _, body := range []string{
		`{"application_type":"native","redirect_uris":["com.example.app:/cb","http://127.0.0.1:5000/cb","http://[::1]/cb"]}`,
		`{"redirect_uris":["http://127.0.0.1:8976/cb"]}`, // web with loopback, as the TypeScript SDK registers
		`{"redirect_uris":["https://a.example/cb"],"jwks":{"keys":[{"kty":"EC","crv":"P-256","x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4","y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"}]}}`,
		`{"redirect_uris":["https://a.example/cb"],"unknown_member":{"x":1}}`,
	} {
		if w := e.register(body, nil, ""); w.status != 201 {
			t.Errorf("%s: %d %s", body, w.status, w.body)
		}
	}
}

func TestRegistrationThrottledPerAddress(t *testing.T) {
	e := newEnv(t, true, openRegistration, func(c *core.Config) { c.Registration.PerAddress = 3 })
	for i := range 3 {
		body := mcpRegistration
		if i == 1 {
			body = `{}` // refused attempts count too
		}
		e.register(body, nil, "198.51.100.7:1000")
	}
	before := e.clientCount()
	w := e.register(mcpRegistration, nil, "198.51.100.7:2000")
	if w.status != 429 || w.hdr.Get("Retry-After") == "" || e.clientCount() != before {
		t.Fatalf("4th registration from one address: %d %v", w.status, w.hdr)
	}
	if w := e.register(mcpRegistration, nil, "198.51.100.8:1000"); w.status != 201 {
		t.Fatalf("another address: %d %s", w.status, w.body)
	}
	e.now = e.now.Add(time.Hour + time.Second)
	if w := e.register(mcpRegistration, nil, "198.51.100.7:1000"); w.status != 201 {
		t.Fatalf("after the window: %d %s", w.status, w.body)
	}
}

func TestRegistrationQuota(t *testing.T) {
	e := newEnv(t, true, openRegistration, func(c *core.Config) { c.Registration.Quota = 2 })
	for range 2 {
		if w := e.register(mcpRegistration, nil, ""); w.status != 201 {
			t.Fatal(w.status)
		}
	}
	before := e.clientCount()
	if w := e.register(mcpRegistration, nil, ""); w.status != 403 || w.json(t)["error"] != core.ErrAccessDenied || e.clientCount() != before {
		t.Fatalf("over the quota: %d %s", w.status, w.body)
	}
}

func TestRegistrationInitialAccessToken(t *testing.T) {
	e := newEnv(t, true, func(c *core.Config) {
		c.Registration.Policy = core.RegistrationInitialToken
		c.Registration.InitialAccessToken = func(_ context.Context, tok string) (bool, error) {
			if tok == "broken" {
				return false, errors.New("token store down")
			}
			return tok == "let-me-in", nil
		}
	})
	for _, tc := range []struct {
		auth   string
		status int
	}{{"", 401}, {"Bearer nope", 401}, {"Basic bGV0LW1lLWluOg==", 401}, {"Bearer broken", 500}, {"Bearer let-me-in", 201}} {
		hdr := http.Header{}
		if tc.auth != "" {
			hdr.Set("Authorization", tc.auth)
		}
		w := e.register(mcpRegistration, hdr, "")
		if w.status != tc.status {
			t.Fatalf("%q: %d %s", tc.auth, w.status, w.body)
		}
		if tc.status == 401 && (w.json(t)["error"] != core.ErrInvalidToken || !strings.HasPrefix(w.hdr.Get("WWW-Authenticate"), "Bearer ")) {
			t.Fatalf("%q: %v %s", tc.auth, w.hdr, w.body)
		}
		if tc.status == 500 && strings.Contains(string(w.body), "down") {
			t.Fatal("internal error text on the wire")
		}
	}
}

func TestRegistrationHook(t *testing.T) {
	e := newEnv(t, true, func(c *core.Config) {
		c.Registration.Policy = core.RegistrationHook
		c.Registration.Approve = func(_ context.Context, reg *core.ClientRegistration) error {
			switch {
			case strings.Contains(reg.Metadata.ClientName, "Evil"):
				return &core.RegistrationError{Code: core.ErrInvalidClientMetadata, Description: "not this name"}
			case strings.Contains(reg.Metadata.ClientName, "Secret"):
				return errors.New("internal policy text")
			case reg.Metadata.ClientName == "Break":
				reg.Metadata.RedirectURIs = []string{"http://evil.example/cb"} // revalidated
			}
			reg.Metadata.ClientName += " (approved)"
			reg.Metadata.Scope = "read"
			return nil
		}
	})
	w := e.register(`{"redirect_uris":["https://a.example/cb"],"client_name":"Good","scope":"read write"}`, nil, "")
	if w.status != 201 || w.json(t)["client_name"] != "Good (approved)" || w.json(t)["scope"] != "read" {
		t.Fatalf("%d %s", w.status, w.body)
	}
	c, _ := e.store.GetClient(context.Background(), w.json(t)["client_id"].(string))
	if c.Name != "Good (approved)" || len(c.Scopes) != 1 || c.Scopes[0] != "read" {
		t.Fatalf("hook edits not stored: %+v", c)
	}
	before := e.clientCount()
	for name, want := range map[string]string{"Evil": "not this name", "Secret": "was not approved", "Break": "http"} {
		w := e.register(`{"redirect_uris":["https://a.example/cb"],"client_name":"`+name+`"}`, nil, "")
		if w.status != 400 || !strings.Contains(string(w.body), want) || strings.Contains(string(w.body), "internal policy") {
			t.Fatalf("%s: %d %s", name, w.status, w.body)
		}
	}
	if e.clientCount() != before {
		t.Fatal("a refused registration was stored")
	}
}

func TestRegistrationManagement(t *testing.T) {
	e := newEnv(t, true, openRegistration)
	reg := e.register(`{"redirect_uris":["https://a.example/cb"],"client_name":"Managed"}`, nil, "").json(t)
	id, tok, secret := reg["client_id"].(string), reg["registration_access_token"].(string), reg["client_secret"].(string)
	other := e.register(mcpRegistration, nil, "").json(t)
	manage := func(method, query, token, body string) *fakeResp {
		hdr := http.Header{"Content-Type": {"application/json"}}
		if token != "" {
			hdr.Set("Authorization", "Bearer "+token)
		}
		return e.do(&fakeReq{method: method, path: "/register", query: query, hdr: hdr, body: body})
	}
	q := "client_id=" + url.QueryEscape(id)

	w := manage("GET", q, tok, "")
	got := w.json(t)
	if w.status != 200 || got["client_id"] != id || got["client_name"] != "Managed" || got["registration_client_uri"] != reg["registration_client_uri"] {
		t.Fatalf("read: %d %s", w.status, w.body)
	}
	if _, ok := got["client_secret"]; ok {
		t.Fatal("read returned a secret the server does not keep")
	}
	for name, r := range map[string]*fakeResp{
		"no token":             manage("GET", q, "", ""),
		"wrong token":          manage("GET", q, tok+"x", ""),
		"another's token":      manage("GET", q, other["registration_access_token"].(string), ""),
		"unknown client":       manage("GET", "client_id=nobody", tok, ""),
		"a static client":      manage("GET", "client_id=conf", tok, ""),
		"delete, wrong token":  manage("DELETE", q, "x", ""),
		"update, wrong token":  manage("PUT", q, "x", `{"client_id":"`+id+`","redirect_uris":["https://b.example/cb"]}`),
		"update another's uri": manage("PUT", "client_id="+url.QueryEscape(other["client_id"].(string)), tok, `{}`),
	} {
		if r.status != 401 || r.json(t)["error"] != core.ErrInvalidToken {
			t.Errorf("%s: %d %s", name, r.status, r.body)
		}
	}
	if w := manage("GET", "", tok, ""); w.status != 400 {
		t.Errorf("no client_id: %d", w.status)
	}

	// Update: the metadata is replaced, the secret stays.
	w = manage("PUT", q, tok, `{"client_id":"`+id+`","client_secret":"`+secret+`","redirect_uris":["https://b.example/cb"],"client_name":"Renamed"}`)
	if w.status != 200 || w.json(t)["client_name"] != "Renamed" {
		t.Fatalf("update: %d %s", w.status, w.body)
	}
	// The update rotated the registration access token.
	old := tok
	if tok, _ = w.json(t)["registration_access_token"].(string); tok == "" || tok == old {
		t.Fatalf("update answered no new registration access token: %s", w.body)
	}
	if w := manage("GET", q, old, ""); w.status != 401 {
		t.Fatalf("the replaced token still works: %d", w.status)
	}
	c, _ := e.store.GetClient(context.Background(), id)
	if c.Name != "Renamed" || c.RedirectURIs[0] != "https://b.example/cb" || !core.VerifySecret(c.SecretHash, secret) || !c.Dynamic {
		t.Fatalf("after update: %+v", c)
	}
	for name, body := range map[string]string{
		"other client_id": `{"client_id":"x","redirect_uris":["https://b.example/cb"]}`,
		"wrong secret":    `{"client_id":"` + id + `","client_secret":"nope","redirect_uris":["https://b.example/cb"]}`,
		"bad metadata":    `{"client_id":"` + id + `","redirect_uris":["http://b.example/cb"]}`,
	} {
		if w := manage("PUT", q, tok, body); w.status != 400 {
			t.Errorf("%s: %d %s", name, w.status, w.body)
		}
	}
	if c2, _ := e.store.GetClient(context.Background(), id); c2.RedirectURIs[0] != "https://b.example/cb" {
		t.Fatal("a refused update changed the client")
	}

	// Delete: gone, and its token no longer works.
	if w := manage("DELETE", q, tok, ""); w.status != 204 {
		t.Fatalf("delete: %d %s", w.status, w.body)
	}
	if _, err := e.store.GetClient(context.Background(), id); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("deleted client still there: %v", err)
	}
	if w := manage("GET", q, tok, ""); w.status != 401 {
		t.Fatalf("read after delete: %d", w.status)
	}
}

func TestPurgeRegistrations(t *testing.T) {
	e := newEnv(t, true, openRegistration, withCCRegistration)
	used := e.register(`{"grant_types":["client_credentials"]}`, nil, "").json(t)
	unused := e.register(`{"grant_types":["client_credentials"]}`, nil, "").json(t)
	if w := e.post("/oauth2/token", url.Values{"grant_type": {"client_credentials"}},
		basic(used["client_id"].(string), used["client_secret"].(string))); w.status != 200 {
		t.Fatal(w.status)
	}
	ctx := context.Background()
	if n, err := e.srv.PurgeRegistrations(ctx); err != nil || n != 0 {
		t.Fatalf("purge before the lifetime: %d %v", n, err)
	}
	e.now = e.now.Add(25 * time.Hour)
	if n, err := e.srv.PurgeRegistrations(ctx); err != nil || n != 1 {
		t.Fatalf("purge: %d %v", n, err)
	}
	if _, err := e.store.GetClient(ctx, unused["client_id"].(string)); !errors.Is(err, core.ErrNotFound) {
		t.Fatal("the unused client survived")
	}
	for _, id := range []string{used["client_id"].(string), "conf", "pub"} {
		if _, err := e.store.GetClient(ctx, id); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
	}
}

func TestRegistrationCORS(t *testing.T) {
	e := newEnv(t, true, openRegistration, func(c *core.Config) { c.CORS.AllowedOrigins = []string{"http://localhost:6274"} })
	w := e.do(&fakeReq{method: "OPTIONS", path: "/register", hdr: http.Header{"Origin": {"http://localhost:6274"},
		"Access-Control-Request-Method": {"POST"}}})
	if w.status != 204 || w.hdr.Get("Access-Control-Allow-Origin") != "http://localhost:6274" ||
		!strings.Contains(w.hdr.Get("Access-Control-Allow-Methods"), "POST") {
		t.Fatalf("preflight: %d %v", w.status, w.hdr)
	}
	w = e.register(mcpRegistration, http.Header{"Origin": {"https://evil.example"}}, "")
	if w.hdr.Get("Access-Control-Allow-Origin") != "" {
		t.Fatal("CORS for an origin not listed")
	}
}

// The registration response is JSON any RFC 7591 client can read back
// into its metadata.
func TestRegistrationResponseRoundTrips(t *testing.T) {
	e := newEnv(t, true, openRegistration)
	w := e.register(mcpRegistration, nil, "")
	var md core.ClientMetadata
	if err := json.Unmarshal(w.body, &md); err != nil || md.ClientName != "MCP Inspector" || md.RedirectURIs[0] != "http://localhost:6274/oauth/callback" {
		t.Fatalf("%v %+v", err, md)
	}
}
