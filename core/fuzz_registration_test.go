package core_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/oauth2kit/oauth2kit/core"
	"github.com/oauth2kit/oauth2kit/core/memstore"
)

// Fuzz targets of client metadata: dynamic registration bodies (RFC 7591)
// and client ID metadata documents. Run one at a time:
//
//	go test -run='^$' -fuzz='^FuzzRegistrationMetadata$' -fuzztime=30s ./core/
//	go test -run='^$' -fuzz='^FuzzCIMDDocument$' -fuzztime=30s ./core/

// newMetadataServer is a server whose metadata validation the targets
// drive: the scopes of newEnv plus openid, two id_token algorithms
// (ES256, EdDSA), CIMD on, and registration open when the store can hold
// registrations. Validation reads nothing else of the server.
func newMetadataServer(tb testing.TB) *core.Server {
	tb.Helper()
	store := memstore.New()
	cfg := core.Config{
		Issuer: issuer,
		Keys:   core.Keys{CryptKey: []byte("0123456789abcdef0123456789abcdef"), SignKey: []byte("fedcba9876543210fedcba9876543210")},
		Scopes: []string{"read", "write", "admin", core.ScopeOpenID},
		OIDC:   core.OIDC{SigningKeys: oidcKeys(tb)},
		CIMD:   core.CIMD{Enabled: true},
		Logger: slog.New(slog.DiscardHandler),
	}
	if _, ok := any(store).(core.RegistrationStore); ok {
		cfg.Registration.Policy = core.RegistrationOpen
	}
	var srv *core.Server
	srv, err := core.New(cfg, store, &consentAuth{testAuth{srv: &srv}})
	if err != nil {
		tb.Fatal(err)
	}
	return srv
}

// fuzzValidSeeds is how many of fuzzRegistrationSeeds, first, are valid.
const fuzzValidSeeds = 9

// fuzzRegistrationSeeds are registrations as clients send them, and
// hostile ones.
var fuzzRegistrationSeeds = []string{
	// MCP TypeScript SDK (the Inspector).
	`{"redirect_uris":["http://localhost:6274/oauth/callback"],"token_endpoint_auth_method":"none","grant_types":["authorization_code","refresh_token"],"response_types":["code"],"client_name":"MCP Inspector","client_uri":"https://github.com/modelcontextprotocol/inspector"}`,
	// MCP Go SDK, Claude Code, VS Code style loopback clients.
	`{"redirect_uris":["http://127.0.0.1:33418/callback"],"token_endpoint_auth_method":"none","grant_types":["authorization_code","refresh_token"],"response_types":["code"],"client_name":"MCP Go client"}`,
	`{"client_name":"Claude Code (fs)","redirect_uris":["http://localhost:54212/callback"],"grant_types":["authorization_code","refresh_token"],"response_types":["code"],"token_endpoint_auth_method":"none"}`,
	`{"client_name":"Visual Studio Code","redirect_uris":["http://127.0.0.1:33418","https://vscode.dev/redirect"],"grant_types":["authorization_code","refresh_token"],"token_endpoint_auth_method":"none","software_id":"vscode","software_version":"1.101.0"}`,
	// A confidential web client with everything.
	`{"redirect_uris":["https://client.example.org/callback","https://client.example.org/callback2"],"client_name":"My Example","logo_uri":"https://client.example.org/logo.png","tos_uri":"https://client.example.org/tos","policy_uri":"https://client.example.org/policy","scope":"read write","contacts":["ve7jtb@example.org","mary@example.org"],"token_endpoint_auth_method":"client_secret_basic","post_logout_redirect_uris":["https://client.example.org/bye"],"id_token_signed_response_alg":"ES256"}`,
	`{"redirect_uris":["https://client.example.org/cb"],"token_endpoint_auth_method":"client_secret_post","jwks":{"keys":[{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}}`,
	`{"grant_types":["client_credentials"],"response_types":[],"token_endpoint_auth_method":"client_secret_basic","client_name":"batch"}`,
	`{"grant_types":["client_credentials"],"token_endpoint_auth_method":"client_secret_basic"}`,
	// Native clients.
	`{"application_type":"native","redirect_uris":["com.example.app:/oauth2redirect","http://[::1]/cb"],"token_endpoint_auth_method":"none"}`,
	// Hostile (from here on).
	`{"application_type":"native","redirect_uris":["myapp:/cb"],"token_endpoint_auth_method":"none"}`,
	`{"redirect_uris":["javascript:alert(1)"],"token_endpoint_auth_method":"none"}`,
	`{"redirect_uris":["http://evil.example/cb"]}`,
	`{"redirect_uris":["https://client.example.org/cb#frag"]}`,
	`{"redirect_uris":["https://user:pw@client.example.org/cb"]}`,
	`{"redirect_uris":["https://client.example.org/cb\\@evil.example"]}`,
	`{"redirect_uris":["http://127.0.0.1.evil.example/cb"]}`,
	`{"redirect_uris":["com.example.app:/cb"],"application_type":"web"}`,
	`{"redirect_uris":["https://a.example/cb"],"token_endpoint_auth_method":"none","grant_types":["client_credentials"]}`,
	`{"redirect_uris":["https://a.example/cb"],"response_types":["token"]}`,
	`{"redirect_uris":["https://a.example/cb"],"response_types":["code","code"],"grant_types":["authorization_code","authorization_code"]}`,
	`{"redirect_uris":["https://a.example/cb"],"client_name":"Bank \u202eevil"}`,
	`{"redirect_uris":["https://a.example/cb"],"client_name":"a\u0000b"}`,
	`{"redirect_uris":["https://a.example/cb"],"logo_uri":"javascript:alert(1)"}`,
	`{"redirect_uris":["https://a.example/cb"],"scope":"read  write\tadmin"}`,
	`{"redirect_uris":["https://a.example/cb"],"scope":"superuser"}`,
	`{"redirect_uris":["https://a.example/cb"],"jwks_uri":"https://a.example/jwks","jwks":{"keys":[]}}`,
	`{"redirect_uris":["https://a.example/cb"],"jwks":{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}}`,
	`{"redirect_uris":["https://a.example/cb"],"id_token_signed_response_alg":"none"}`,
	`{"redirect_uris":["https://a.example/cb"],"application_type":"desktop"}`,
	`{"redirect_uris":"https://a.example/cb"}`,
	`{"redirect_uris":[1]}`,
	`{"client_id":"x","client_secret":"y","redirect_uris":["https://a.example/cb"]}`,
	`{"software_statement":"eyJhbGciOiJub25lIn0.e30.","redirect_uris":["https://a.example/cb"]}`,
	`{"REDIRECT_URIS":["https://a.example/cb"],"Token_Endpoint_Auth_Method":"none"}`,
	`{"redirect_uris":["https://a.example/cb"],"redirect_uris":["http://evil.example/cb"]}`,
	`{}`, `[]`, `null`, `"x"`, ``, `{"redirect_uris":null}`, `{"contacts":[null]}`,
}

// FuzzRegistrationMetadata: the registration body parser never panics;
// metadata the server validates never panics it either, and what it
// accepts is what the server can enforce — every redirect URI valid
// (https or loopback http, private-use schemes only for native clients),
// a known token_endpoint_auth_method, response_types ⊆ {code} and
// matching grant_types, no confidential-only grant for a public client,
// scopes among the server's — and validating it again (after a JSON
// round trip, as storing and loading does) accepts it unchanged.
func FuzzRegistrationMetadata(f *testing.F) {
	srv := newMetadataServer(f)
	for _, s := range fuzzRegistrationSeeds {
		f.Add([]byte(s))
	}
	for i, s := range fuzzRegistrationSeeds {
		var md core.ClientMetadata
		err := json.Unmarshal([]byte(s), &md)
		if err == nil {
			err = srv.ValidateMetadata(&md)
		}
		if i < fuzzValidSeeds && err != nil {
			f.Fatalf("seed %d, a valid registration, is refused: %v", i, err)
		}
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		perr := core.ParseRegistration(raw)
		var md core.ClientMetadata
		uerr := json.Unmarshal(raw, &md)
		if perr == nil && uerr != nil {
			t.Fatalf("ParseRegistration accepted %q, which is not ClientMetadata: %v", raw, uerr)
		}
		if uerr != nil {
			return
		}
		if err := srv.ValidateMetadata(&md); err != nil {
			return
		}
		checkValidatedMetadata(t, srv, &md, raw)
		b1, err := json.Marshal(&md)
		if err != nil {
			t.Fatalf("validated metadata does not marshal: %v", err)
		}
		var again core.ClientMetadata
		if err := json.Unmarshal(b1, &again); err != nil {
			t.Fatalf("validated metadata %s does not unmarshal: %v", b1, err)
		}
		if err := srv.ValidateMetadata(&again); err != nil {
			t.Fatalf("%q: validated metadata refused after a round trip: %v", raw, err)
		}
		b2, _ := json.Marshal(&again)
		if !bytes.Equal(b1, b2) {
			t.Fatalf("validation is not idempotent:\n%s\n%s", b1, b2)
		}
	})
}

// checkValidatedMetadata asserts the invariants of metadata the server
// accepted.
func checkValidatedMetadata(t *testing.T, srv *core.Server, md *core.ClientMetadata, raw []byte) {
	t.Helper()
	if md.ApplicationType != "web" && md.ApplicationType != "native" {
		t.Fatalf("%q: application_type %q", raw, md.ApplicationType)
	}
	switch md.TokenEndpointAuthMethod {
	case "none", "client_secret_basic", "client_secret_post":
	default:
		t.Fatalf("%q: token_endpoint_auth_method %q accepted", raw, md.TokenEndpointAuthMethod)
	}
	public := md.TokenEndpointAuthMethod == "none"
	for _, rt := range md.ResponseTypes {
		if rt != "code" {
			t.Fatalf("%q: response type %q accepted", raw, rt)
		}
	}
	if len(md.GrantTypes) == 0 {
		t.Fatalf("%q: no grant_types after validation", raw)
	}
	code := slices.Contains(md.GrantTypes, "authorization_code")
	if code != slices.Equal(md.ResponseTypes, []string{"code"}) {
		t.Fatalf("%q: grant_types %q with response_types %q", raw, md.GrantTypes, md.ResponseTypes)
	}
	if code && len(md.RedirectURIs) == 0 {
		t.Fatalf("%q: authorization_code without redirect_uris", raw)
	}
	if public && slices.Contains(md.GrantTypes, "client_credentials") {
		t.Fatalf("%q: a public client with client_credentials", raw)
	}
	for _, list := range [][]string{md.RedirectURIs, md.PostLogoutRedirectURIs} {
		if len(list) > 20 {
			t.Fatalf("%q: %d redirect URIs", raw, len(list))
		}
		for _, u := range list {
			checkAcceptedRedirect(t, u, md.ApplicationType == "native", raw)
		}
	}
	if len(md.ClientName) > 200 || !utf8.ValidString(md.ClientName) || strings.ContainsAny(md.ClientName, "\x00\n\r\u202e\u2028") {
		t.Fatalf("%q: client_name %q accepted", raw, md.ClientName)
	}
	for _, u := range []string{md.ClientURI, md.LogoURI, md.TOSURI, md.PolicyURI} {
		if u == "" {
			continue
		}
		p, err := url.Parse(u)
		if err != nil || p.Scheme != "https" || p.Host == "" || p.User != nil {
			t.Fatalf("%q: URI %q accepted", raw, u)
		}
	}
	scopes := srv.Config().Scopes
	for _, sc := range strings.Fields(md.Scope) {
		if !slices.Contains(scopes, sc) {
			t.Fatalf("%q: scope %q accepted", raw, sc)
		}
	}
	if strings.Join(strings.Fields(md.Scope), " ") != md.Scope {
		t.Fatalf("%q: scope %q not canonical", raw, md.Scope)
	}
	switch md.IDTokenSignedResponseAlg {
	case "", core.AlgES256, core.AlgEdDSA:
	default:
		t.Fatalf("%q: id_token_signed_response_alg %q accepted", raw, md.IDTokenSignedResponseAlg)
	}
	if md.JWKS != nil && md.JWKSURI != "" {
		t.Fatalf("%q: jwks and jwks_uri", raw)
	}
}

// checkAcceptedRedirect: an accepted redirect URI passes the redirect URI
// rules, and is https, loopback http (ValidateRedirectURI refuses other
// http), or — for a native client only — a private-use scheme with a dot.
func checkAcceptedRedirect(t *testing.T, u string, native bool, raw []byte) {
	t.Helper()
	if err := core.ValidateRedirectURI(u); err != nil {
		t.Fatalf("%q: redirect URI %q accepted: %v", raw, u, err)
	}
	p, err := url.Parse(u)
	if err != nil {
		t.Fatalf("%q: redirect URI %q does not parse", raw, u)
	}
	switch p.Scheme {
	case "https", "http":
	default:
		if !native || !strings.Contains(p.Scheme, ".") {
			t.Fatalf("%q: redirect URI %q accepted (native %v)", raw, u, native)
		}
	}
}

// FuzzCIMDDocument: the client ID metadata document parser never panics,
// and a document it accepts is a public client whose ID is the URL it was
// fetched from, whose document says so, that carries no secret, and whose
// redirect URIs are valid web (https or loopback http) redirects.
func FuzzCIMDDocument(f *testing.F) {
	srv := newMetadataServer(f)
	const id = "https://app.example.com/oauth/client.json"
	doc := func(mod string) []byte {
		return []byte(`{"client_id":"` + id + `","client_name":"MCP Test","redirect_uris":["http://127.0.0.1:33418/callback"],` +
			`"token_endpoint_auth_method":"none","grant_types":["authorization_code","refresh_token"],"response_types":["code"]` + mod + `}`)
	}
	for _, b := range [][]byte{
		doc(""),
		doc(`,"client_uri":"https://app.example.com","logo_uri":"https://app.example.com/logo.png","scope":"read write"`),
		doc(`,"application_type":"native","redirect_uris":["com.example.app:/cb"]`),
		doc(`,"application_type":"web","redirect_uris":["com.example.app:/cb"]`),
		doc(`,"client_secret":"s"`),
		doc(`,"client_secret":null`),
		doc(`,"Client_Secret":"s"`),
		doc(`,"client_secret_expires_at":0`),
		doc(`,"token_endpoint_auth_method":"client_secret_basic"`),
		doc(`,"token_endpoint_auth_method":"private_key_jwt"`),
		doc(`,"token_endpoint_auth_method":""`),
		doc(`,"client_id":"https://evil.example/client.json"`),
		doc(`,"CLIENT_ID":"https://evil.example/client.json"`),
		doc(`,"redirect_uris":[]`),
		doc(`,"redirect_uris":["http://127.0.0.1:33418/callback#x"]`),
		doc(`,"redirect_uris":["http://evil.example/cb"]`),
		doc(`,"grant_types":["client_credentials"],"response_types":[]`),
		doc(`,"id_token_signed_response_alg":"EdDSA"`),
		[]byte(`{"client_id":"` + id + `","redirect_uris":["https://app.example.com/cb"]}`),
		[]byte(`{"client_id":"` + id + `"}`),
		[]byte(`[]`), []byte(`null`), []byte(``), []byte(`{"client_id":null}`),
	} {
		f.Add(id, b)
	}
	for i, b := range [][]byte{doc(""), doc(`,"client_uri":"https://app.example.com","scope":"read write"`), doc(`,"application_type":"native","redirect_uris":["com.example.app:/cb"]`)} {
		if _, err := srv.ParseCIMD(id, b); err != nil {
			f.Fatalf("valid document %d refused: %v", i, err)
		}
	}
	f.Add("https://other.example/c", doc(""))
	f.Add("", []byte(`{"redirect_uris":["https://a.example/cb"],"token_endpoint_auth_method":"none"}`))
	for _, u := range []string{"https://app.example.com/a/.%2e/c", "https://app.example.com/%2E", "https://u@app.example.com/c",
		"https://app.example.com", "https://app.example.com/c?", "https://app.example.com/c#", "https://[::1]:8443/c.json", "HTTPS://app.example.com/c"} {
		f.Add(u, doc(""))
	}
	f.Fuzz(func(t *testing.T, id string, body []byte) {
		checkCIMDURLShape(t, id)
		c, err := srv.ParseCIMD(id, body)
		if err != nil {
			if c != nil {
				t.Fatalf("ParseCIMD returned a client and an error: %v", err)
			}
			if !strings.HasPrefix(err.Error(), "client metadata document: ") {
				t.Fatalf("refusal %q does not name the metadata document", err)
			}
			return
		}
		if c.ID != id || !c.Public || c.SecretHash != "" || c.Dynamic {
			t.Fatalf("%q: client %q public=%v secret=%q dynamic=%v, want %q public", body, c.ID, c.Public, c.SecretHash, c.Dynamic, id)
		}
		if c.Metadata != string(body) {
			t.Fatalf("Metadata %q is not the document %q", c.Metadata, body)
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatalf("accepted document %q is not a JSON object: %v", body, err)
		}
		for k, v := range m {
			if (strings.EqualFold(k, "client_secret") || strings.EqualFold(k, "client_secret_expires_at")) && string(v) != "null" {
				t.Fatalf("accepted document %q carries %s", body, k)
			}
		}
		var md struct {
			ClientID string `json:"client_id"`
			Method   string `json:"token_endpoint_auth_method"`
			AppType  string `json:"application_type"`
		}
		if err := json.Unmarshal(body, &md); err != nil || md.ClientID != id {
			t.Fatalf("accepted document %q names client_id %q, fetched from %q (%v)", body, md.ClientID, id, err)
		}
		if md.Method != "" && md.Method != "none" {
			t.Fatalf("accepted document %q with token_endpoint_auth_method %q", body, md.Method)
		}
		if len(c.RedirectURIs) == 0 {
			t.Fatalf("accepted document %q without redirect URIs", body)
		}
		for _, list := range [][]string{c.RedirectURIs, c.PostLogoutRedirectURIs} {
			for _, u := range list {
				checkAcceptedRedirect(t, u, md.AppType == "native", body)
			}
		}
		if slices.Contains(c.GrantTypes, "client_credentials") {
			t.Fatalf("accepted document %q grants client_credentials to a public client", body)
		}
		if len(c.Name) > 200 || !utf8.ValidString(c.Name) {
			t.Fatalf("accepted document %q with client_name %q", body, c.Name)
		}
	})
}

// checkCIMDURLShape: a client_id URL CheckCIMDURL accepts reads, by an
// independent scan, as the draft requires: https (any case), at most 128 bytes, no
// query, fragment or userinfo, a path other than "/", and no segment that
// is a dot segment once percent-decoded.
func checkCIMDURLShape(t *testing.T, id string) {
	t.Helper()
	if core.CheckCIMDURL(id) != nil {
		return
	}
	// The scheme is case-insensitive here (net/url's reading); only an
	// exact "https://" prefix makes a client_id a CIMD URL at all.
	if len(id) < 8 || !strings.EqualFold(id[:8], "https://") {
		t.Fatalf("CheckCIMDURL accepted %q", id)
	}
	rest := id[8:]
	if len(id) > 128 || strings.ContainsAny(id, "?#") {
		t.Fatalf("CheckCIMDURL accepted %q", id)
	}
	slash := strings.IndexByte(rest, '/')
	if slash <= 0 || strings.Contains(rest[:slash], "@") || rest[slash:] == "/" {
		t.Fatalf("CheckCIMDURL accepted %q: no host, userinfo or no path", id)
	}
	for _, seg := range strings.Split(rest[slash:], "/") {
		if d, err := url.PathUnescape(seg); err != nil || d == "." || d == ".." {
			t.Fatalf("CheckCIMDURL accepted %q with segment %q", id, seg)
		}
	}
}
