package core

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// oneClientStore is a Storage holding one client.
type oneClientStore struct {
	nopStore
	c *Client
}

func (s oneClientStore) GetClient(_ context.Context, id string) (*Client, error) {
	if s.c != nil && id == s.c.ID {
		cp := *s.c
		return &cp, nil
	}
	return nil, ErrNotFound
}

type stubReq struct {
	method, path, body string
	hdr                http.Header
}

func (r *stubReq) Context() context.Context    { return context.Background() }
func (r *stubReq) Method() string              { return r.method }
func (r *stubReq) Path() string                { return r.path }
func (r *stubReq) RawQuery() string            { return "" }
func (r *stubReq) Header(name string) []string { return r.hdr.Values(name) }
func (r *stubReq) Body() io.Reader             { return strings.NewReader(r.body) }
func (r *stubReq) RemoteAddr() string          { return "192.0.2.7:1" }
func (r *stubReq) TLS() bool                   { return false }

type stubResp struct {
	status int
	hdr    http.Header
	body   []byte
}

func (w *stubResp) SetHeader(k, v string) { w.hdr.Set(k, v) }
func (w *stubResp) AddHeader(k, v string) { w.hdr.Add(k, v) }
func (w *stubResp) Send(status int, b []byte) error {
	w.status, w.body = status, b
	return nil
}

// Adding a grant type is one row in the grant registry and adding an
// endpoint one row in the endpoint table: a test server with an extra row
// of each finds them in dispatch, client validation, Paths and metadata.
func TestRegistryExtraGrantAndEndpoint(t *testing.T) {
	const gtName = "urn:example:grant-type:test"
	var ran []string
	extraGrant := &grantType{
		name:     gtName,
		required: []string{"ticket"},
		public:   false,
		handle: func(s *Server, _ context.Context, c *Client, f *params) (*tokenResult, *oauthError) {
			ran = append(ran, c.ID+":"+f.get("ticket"))
			if f.get("ticket") != "good" {
				return nil, badGrant("bad ticket")
			}
			at, e := s.mintFor(c, TokenInfo{Scope: "read", GrantID: "fam"}, s.now())
			if e != nil {
				return nil, e
			}
			return &tokenResult{access: at, scope: "read"}, nil
		},
	}
	statusPath := "/oauth2/status"
	extraEP := &endpoint{
		field: "StatusURL", path: func(*Config) *string { return &statusPath }, def: "/oauth2/status",
		methods: []string{"GET"}, allow: header("Allow", "GET"), meta: "status_endpoint",
		serve: func(_ *Server, w Responder, _ Request) { _ = w.Send(204, nil) },
	}
	grants := builtinGrants.with(extraGrant)

	// Client validation: the server's registry knows the grant (and that
	// it is for confidential clients); the built-in one does not.
	if _, _, err := NewClient(ClientSpec{ID: "x", GrantTypes: []string{gtName}}); err == nil {
		t.Fatalf("NewClient accepted a grant type the kit does not have")
	}
	if _, _, err := newClient(ClientSpec{ID: "x", Public: true, GrantTypes: []string{gtName}}, grants); err == nil {
		t.Fatalf("a public client got a confidential-only grant")
	}
	c, secret, err := newClient(ClientSpec{ID: "svc", GrantTypes: []string{gtName}}, grants)
	if err != nil {
		t.Fatalf("newClient: %v (no redirect URI is needed for this grant)", err)
	}
	srv, err := newServer(Config{
		Issuer: "https://as.example.com", Keys: Keys{CryptKey: []byte(strings.Repeat("k", 32)), SignKey: []byte(strings.Repeat("s", 32))},
	}, oneClientStore{c: c}, nopAuth{}, grants, append(slices.Clone(builtinEndpoints), extraEP))
	if err != nil {
		t.Fatal(err)
	}

	// Paths and dispatch.
	if p := srv.Paths(); len(p) != len(builtinEndpoints)+1 || p[len(p)-1] != statusPath {
		t.Fatalf("Paths %v", p)
	}
	do := func(method, path, body string, hdr http.Header) *stubResp {
		w := &stubResp{hdr: http.Header{}}
		if !srv.Handle(w, &stubReq{method: method, path: path, body: body, hdr: hdr}) {
			t.Fatalf("%s not handled", path)
		}
		return w
	}
	if w := do("GET", statusPath, "", nil); w.status != 204 {
		t.Errorf("status endpoint: %d", w.status)
	}
	if w := do("POST", statusPath, "", nil); w.status != 405 || w.hdr.Get("Allow") != "GET" || !strings.Contains(string(w.body), "use GET") {
		t.Errorf("method check from the row: %d %v %s", w.status, w.hdr, w.body)
	}

	// Metadata: the endpoint's member and the grant type.
	w := do("GET", "/.well-known/oauth-authorization-server", "", nil)
	var md map[string]any
	if err := json.Unmarshal(w.body, &md); err != nil {
		t.Fatal(err)
	}
	if md["status_endpoint"] != "https://as.example.com"+statusPath {
		t.Errorf("status_endpoint %v", md["status_endpoint"])
	}
	var gts []string
	for _, g := range md["grant_types_supported"].([]any) {
		gts = append(gts, g.(string))
	}
	if !slices.Equal(gts, []string{GrantAuthorizationCode, GrantRefreshToken, GrantClientCredentials, gtName}) {
		t.Errorf("grant_types_supported %v", gts)
	}

	// Dispatch at the token endpoint: the required parameter, then the
	// handler, with the client authenticated.
	form := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Authorization": {EncodeBasic("svc", secret)}}
	if w := do("POST", "/oauth2/token", "grant_type="+gtName, form); w.status != 400 || !strings.Contains(string(w.body), "ticket is required") {
		t.Errorf("missing parameter: %d %s", w.status, w.body)
	}
	if w := do("POST", "/oauth2/token", "grant_type="+gtName+"&ticket=good", form); w.status != 200 || !strings.Contains(string(w.body), `"access_token":"at2.`) {
		t.Errorf("grant: %d %s", w.status, w.body)
	}
	if !slices.Equal(ran, []string{"svc:good"}) {
		t.Errorf("handler runs %v", ran)
	}
	// The client may not use the default grants it did not list.
	if w := do("POST", "/oauth2/token", "grant_type=refresh_token&refresh_token=x", form); w.status != 400 || !strings.Contains(string(w.body), "unauthorized_client") {
		t.Errorf("unlisted grant: %d %s", w.status, w.body)
	}
	// A server without the row does not know the grant.
	plain, err := New(srv.Config(), oneClientStore{c: c}, nopAuth{})
	if err != nil {
		t.Fatal(err)
	}
	w = &stubResp{hdr: http.Header{}}
	plain.Handle(w, &stubReq{method: "POST", path: "/oauth2/token", body: "grant_type=" + gtName + "&ticket=good", hdr: form})
	if w.status != 400 || !strings.Contains(string(w.body), "unsupported_grant_type") {
		t.Errorf("server without the grant: %d %s", w.status, w.body)
	}
	if plain.Handle(&stubResp{hdr: http.Header{}}, &stubReq{method: "GET", path: statusPath}) {
		t.Errorf("server without the row answered its path")
	}
}
