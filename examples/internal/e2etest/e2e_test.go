package e2etest

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/oauth2kit/oauth2kit/examples/internal/demo"
)

// examples are the example servers under test, by directory: one body of
// tests runs against each. A new example is one more name here.
var examples = []string{"nethttp", "custom", "gin", "echo", "fiber"}

const (
	// redirectURI is the demo client's first redirect URI; nothing
	// listens there, the tests only read the redirect.
	redirectURI    = "http://127.0.0.1:9000/callback"
	demoClientName = "Demo Client"
	postgresEnv    = "OAUTH2KIT_TEST_POSTGRES_DSN"
)

func TestExamples(t *testing.T) {
	for _, name := range examples {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			bin := Build(t, name)
			t.Run("SQLite", func(t *testing.T) { testSQLite(t, bin) })
			t.Run("PostgreSQL", func(t *testing.T) { testPostgres(t, bin) })
		})
	}
}

func testSQLite(t *testing.T, bin string) {
	db := filepath.Join(t.TempDir(), "demo.db")
	s := Start(t, bin, "-addr", "127.0.0.1:0", "-db", db)
	t.Run("Metadata", func(t *testing.T) { testMetadata(t, s) })
	t.Run("NoToken", func(t *testing.T) { testNoToken(t, s) })
	t.Run("OAuth2Client", func(t *testing.T) { testFlow(t, s) })
	t.Run("RememberedConsent", func(t *testing.T) { testRememberedConsent(t, s) })
	t.Run("OpenIDProvider", func(t *testing.T) { testOIDC(t, s, bin, db) })
	t.Run("ClientCommands", func(t *testing.T) { testClientCommands(t, s, bin, db) })
	t.Run("DeviceGrant", func(t *testing.T) { testDevice(t, s, bin, db) })
	if filepath.Base(bin) == "nethttp" { // the same against every example
		t.Run("DeviceCLI", func(t *testing.T) { testDeviceCLI(t, s, bin, db) })
		t.Run("DeviceExpiry", func(t *testing.T) { testDeviceExpiry(t, bin) })
	}
	t.Run("TokenExchange", func(t *testing.T) { testExchange(t, s, bin, db) })
	// Last: it stops s.
	t.Run("GracefulStop", func(t *testing.T) { testGracefulStop(t, s, bin, db) })
}

func testPostgres(t *testing.T, bin string) {
	dsn := os.Getenv(postgresEnv)
	if dsn == "" {
		t.Skipf("%s is not set: set it to a PostgreSQL URL (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable) "+
			"to also run the examples against PostgreSQL, and two instances sharing it", postgresEnv)
	}
	if !strings.HasPrefix(dsn, "postgres://") && !strings.HasPrefix(dsn, "postgresql://") {
		t.Fatalf("%s must be a postgres:// URL for the examples' -db flag (got another form)", postgresEnv)
	}
	pg := freshSchema(t, dsn)
	keys := filepath.Join(t.TempDir(), "demo.keys")
	a := Start(t, bin, "-addr", "127.0.0.1:0", "-db", pg, "-keys", keys)
	t.Run("OAuth2Client", func(t *testing.T) { testFlow(t, a) })
	t.Run("TwoInstances", func(t *testing.T) {
		b := Start(t, bin, "-addr", "127.0.0.1:0", "-db", pg, "-keys", keys, "-issuer", a.Issuer)
		testTwoInstances(t, a, b)
		t.Run("DeviceGrant", func(t *testing.T) { testDeviceTwoInstances(t, a, b, bin, pg) })
	})
}

// freshSchema creates a PostgreSQL schema of its own for the test (the
// store's table names are fixed, and other tests may use the database at
// the same time), drops it at the end, and returns dsn with that schema as
// search_path.
func freshSchema(t *testing.T, dsn string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("%s: %v", postgresEnv, err)
	}
	db, err := demo.OpenDB(dsn)
	if err != nil {
		t.Fatalf("opening %s: %v", postgresEnv, err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		t.Fatal(err)
	}
	schema := "oauth2kit_e2e_" + randomHex(t, 6)
	if err := db.Exec("CREATE SCHEMA " + schema).Error; err != nil {
		sqlDB.Close()
		t.Fatalf("creating schema %s: %v", schema, err)
	}
	t.Cleanup(func() {
		if err := db.Exec("DROP SCHEMA " + schema + " CASCADE").Error; err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
		}
		sqlDB.Close()
	})
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// ---- helpers: the client side ----

// plain is the HTTP client of the client library and the API calls.
var plain = &http.Client{Timeout: 15 * time.Second}

func clientCtx(t *testing.T) context.Context {
	return context.WithValue(t.Context(), oauth2.HTTPClient, plain)
}

// oauthConfig is the demo client's configuration, authorizing at authBase
// and redeeming at tokenBase (two instances in TestTwoInstances).
func oauthConfig(s *Server, authBase, tokenBase string, scopes ...string) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     s.ClientID,
		ClientSecret: s.ClientSecret,
		RedirectURL:  redirectURI,
		Scopes:       scopes,
		Endpoint: oauth2.Endpoint{
			AuthURL:   authBase + "/oauth2/authorize",
			TokenURL:  tokenBase + "/oauth2/token",
			AuthStyle: oauth2.AuthStyleInHeader,
		},
	}
}

// authorize plays the user at authURL (served by s): it checks the login
// page, signs in as the demo user and, if the consent page comes, checks
// that it names the client and scopes and answers it with decision. It
// checks the redirect to redirectURI (303, state, iss) and returns its
// query and whether the consent page was shown.
func authorize(t *testing.T, s *Server, authURL, state string, scopes []string, decision string) (url.Values, bool) {
	t.Helper()
	return authorizeNamed(t, s, authURL, state, scopes, decision, demoClientName)
}

// authorizeAs approves authURL for the client named name.
func authorizeAs(t *testing.T, s *Server, authURL, state string, scopes []string, name string) (url.Values, bool) {
	t.Helper()
	return authorizeNamed(t, s, authURL, state, scopes, "approve", name)
}

func authorizeNamed(t *testing.T, s *Server, authURL, state string, scopes []string, decision, clientName string) (url.Values, bool) {
	t.Helper()
	b := newBrowser(t)
	p := b.get(t, authURL)
	if p.status != http.StatusOK {
		t.Fatalf("authorize: HTTP %d, want the login page:\n%s", p.status, p.body)
	}
	checkPageHeaders(t, "login page", p)
	f := p.form(t)
	if f.input("username") == nil {
		t.Fatalf("login page: no input named username:\n%s", p.body)
	}
	if pw := f.input("password"); pw == nil || pw["type"] != "password" {
		t.Fatalf("login page: no password input named password:\n%s", p.body)
	}
	if len(f.buttons) == 0 {
		t.Fatalf("login page: no submit button:\n%s", p.body)
	}
	p = b.submit(t, p, f, url.Values{"username": {demo.DemoUser}, "password": {demo.DemoPassword}})
	consent := false
	if p.status == http.StatusOK {
		consent = true
		checkPageHeaders(t, "consent page", p)
		if !strings.Contains(p.body, clientName) {
			t.Errorf("consent page does not name the client %q:\n%s", clientName, p.body)
		}
		for _, sc := range scopes {
			if !regexp.MustCompile(`\b` + regexp.QuoteMeta(sc) + `\b`).MatchString(p.body) {
				t.Errorf("consent page does not name the scope %q:\n%s", sc, p.body)
			}
		}
		f = p.form(t)
		if !f.hasButton("decision", "approve") || !f.hasButton("decision", "deny") {
			t.Fatalf("consent page: want buttons decision=approve and decision=deny:\n%s", p.body)
		}
		p = b.submit(t, p, f, url.Values{"decision": {decision}})
	}
	if p.status != http.StatusSeeOther {
		t.Fatalf("after sign-in (consent page shown: %t): HTTP %d, want 303 to the redirect URI:\n%s", consent, p.status, p.body)
	}
	loc := p.location(t)
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != redirectURI {
		t.Fatalf("redirected to %s, want %s", loc, redirectURI)
	}
	q := loc.Query()
	if q.Get("state") != state {
		t.Errorf("state = %q, want %q", q.Get("state"), state)
	}
	if q.Get("iss") != s.Issuer {
		t.Errorf("iss = %q, want the issuer %q", q.Get("iss"), s.Issuer)
	}
	return q, consent
}

// codeFlow runs the authorization code flow with PKCE: authorization at
// conf's AuthURL (served by s), redemption with the client library.
func codeFlow(t *testing.T, s *Server, conf *oauth2.Config) (tok *oauth2.Token, consent bool) {
	t.Helper()
	verifier := oauth2.GenerateVerifier()
	// A state that needs escaping, so a re-encoding would show.
	state := "st/a+te ü&x=" + randomHex(t, 8)
	q, consent := authorize(t, s, conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier)), state, conf.Scopes, "approve")
	if q.Get("code") == "" {
		t.Fatalf("no code in the redirect: %v", q)
	}
	tok, err := conf.Exchange(clientCtx(t), q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	if tok.TokenType != "Bearer" || tok.AccessToken == "" || tok.RefreshToken == "" {
		t.Fatalf("token: type %q, access token %t, refresh token %t", tok.TokenType, tok.AccessToken != "", tok.RefreshToken != "")
	}
	if sc, _ := tok.Extra("scope").(string); !sameScope(sc, strings.Join(conf.Scopes, " ")) {
		t.Errorf("token scope %q, want %q", sc, strings.Join(conf.Scopes, " "))
	}
	return tok, consent
}

// api calls GET base+path with the access token (none if "").
func api(t *testing.T, base, path, token string) (int, map[string]any, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := plain.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if res.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatalf("GET %s: %v: %s", path, err, body)
		}
	}
	return res.StatusCode, m, res.Header
}

// wantMe checks a 200 /api/me (or /api/admin) answer.
func wantMe(t *testing.T, what string, status int, m map[string]any, clientID, scope string) {
	t.Helper()
	want := map[string]any{"sub": demo.DemoUser, "client_id": clientID, "scope": scope}
	if status != http.StatusOK {
		t.Errorf("%s: HTTP %d, want 200", what, status)
		return
	}
	for k, v := range want {
		if got, _ := m[k].(string); k == "scope" && !sameScope(got, scope) || k != "scope" && got != v {
			t.Errorf("%s: %s = %v, want %v (%v)", what, k, m[k], v, m)
		}
	}
}

// sameScope compares two scope strings as sets (RFC 6749 §3.3: the order
// does not matter).
func sameScope(a, b string) bool {
	x, y := strings.Fields(a), strings.Fields(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(slices.Compact(x), slices.Compact(y))
}

// clientPost posts form to base+path authenticated with HTTP Basic.
func clientPost(t *testing.T, base, path, id, secret string, form url.Values) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	res, err := plain.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, body
}

func introspect(t *testing.T, base string, s *Server, token string) map[string]any {
	t.Helper()
	status, body := clientPost(t, base, "/oauth2/introspect", s.ClientID, s.ClientSecret, url.Values{"token": {token}})
	var m map[string]any
	if err := json.Unmarshal(body, &m); status != http.StatusOK || err != nil {
		t.Fatalf("introspect: HTTP %d %s", status, body)
	}
	return m
}

func wantInactive(t *testing.T, what string, m map[string]any) {
	t.Helper()
	if len(m) != 1 || m["active"] != false {
		t.Errorf("%s: introspection %v, want exactly {\"active\":false}", what, m)
	}
}

func wantRetrieveError(t *testing.T, what string, err error, code string) {
	t.Helper()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		t.Errorf("%s: err = %v, want an OAuth error %s", what, err, code)
		return
	}
	if re.ErrorCode != code {
		t.Errorf("%s: error %q (HTTP %d), want %q", what, re.ErrorCode, re.Response.StatusCode, code)
	}
}

func refresh(ctx context.Context, conf *oauth2.Config, refreshToken string) (*oauth2.Token, error) {
	return conf.TokenSource(ctx, &oauth2.Token{RefreshToken: refreshToken, Expiry: time.Now().Add(-time.Minute)}).Token()
}

// ---- the tests ----

func testMetadata(t *testing.T, s *Server) {
	res, err := plain.Get(s.Base + MetadataPath)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("metadata: HTTP %d, Content-Type %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	var md map[string]any
	if err := json.NewDecoder(res.Body).Decode(&md); err != nil {
		t.Fatal(err)
	}
	if md["issuer"] != s.Issuer {
		t.Errorf("issuer %v, want the printed issuer %q", md["issuer"], s.Issuer)
	}
	for field, path := range map[string]string{
		"authorization_endpoint": "/oauth2/authorize",
		"token_endpoint":         "/oauth2/token",
		"revocation_endpoint":    "/oauth2/revoke",
		"introspection_endpoint": "/oauth2/introspect",
	} {
		if md[field] != s.Issuer+path {
			t.Errorf("%s = %v, want %s", field, md[field], s.Issuer+path)
		}
	}
	if md["authorization_response_iss_parameter_supported"] != true {
		t.Errorf("authorization_response_iss_parameter_supported = %v, want true", md["authorization_response_iss_parameter_supported"])
	}
	for field, want := range map[string][]string{
		"response_types_supported":              {"code"},
		"grant_types_supported":                 {"authorization_code", "refresh_token", "client_credentials"},
		"code_challenge_methods_supported":      {"S256"},
		"token_endpoint_auth_methods_supported": {"client_secret_basic", "client_secret_post"},
		"scopes_supported":                      {"read", "write", "admin"},
	} {
		list, _ := md[field].([]any)
		for _, w := range want {
			if !slices.Contains(list, any(w)) {
				t.Errorf("%s = %v, lacks %q", field, md[field], w)
			}
		}
	}
	if list, _ := md["response_types_supported"].([]any); slices.Contains(list, any("token")) {
		t.Errorf("response_types_supported lists the implicit grant: %v", list)
	}

	// Each listed endpoint is served (answers a bad request, not 404).
	for _, ep := range []string{"token_endpoint", "revocation_endpoint", "introspection_endpoint"} {
		u, err := url.Parse(fmt.Sprint(md[ep]))
		if err != nil {
			t.Errorf("%s: %v", ep, err)
			continue
		}
		status, body := clientPost(t, s.Base, u.Path, "no-such-client", "x", url.Values{"token": {"x"}, "grant_type": {"client_credentials"}})
		if status != http.StatusBadRequest && status != http.StatusUnauthorized {
			t.Errorf("%s: POST with an unknown client: HTTP %d %s, want 400/401", ep, status, body)
		}
	}
	p := newBrowser(t).get(t, s.Base+"/oauth2/authorize")
	if p.status != http.StatusBadRequest || p.header.Get("Location") != "" {
		t.Errorf("authorize without parameters: HTTP %d, Location %q, want a 400 page", p.status, p.header.Get("Location"))
	}
}

func testNoToken(t *testing.T, s *Server) {
	// Bearer first; a DPoP challenge (RFC 9449 §7.1) may follow.
	realm := regexp.MustCompile(`^Bearer realm="[^"]+"(, DPoP algs="[A-Za-z0-9 ]+")?$`)
	for _, path := range []string{"/api/me", "/api/admin"} {
		status, _, h := api(t, s.Base, path, "")
		if status != http.StatusUnauthorized {
			t.Errorf("%s without a token: HTTP %d, want 401", path, status)
		}
		if got := h.Get("WWW-Authenticate"); !realm.MatchString(got) {
			t.Errorf("%s without a token: WWW-Authenticate %q, want Bearer realm=\"…\" and no error", path, got)
		}
	}
	status, _, h := api(t, s.Base, "/api/me", "not-a-token")
	if status != http.StatusUnauthorized || !strings.Contains(h.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Errorf("/api/me with a made-up token: HTTP %d, WWW-Authenticate %q, want 401 invalid_token", status, h.Get("WWW-Authenticate"))
	}
}

// testFlow is the golang.org/x/oauth2 client against s: code flow with
// PKCE, the protected API, scopes, refresh, introspection, revocation.
func testFlow(t *testing.T, s *Server) {
	ctx := clientCtx(t)
	conf := oauthConfig(s, s.Base, s.Base, "read", "write")
	tok, _ := codeFlow(t, s, conf)

	status, m, _ := api(t, s.Base, "/api/me", tok.AccessToken)
	wantMe(t, "/api/me", status, m, s.ClientID, "read write")
	status, _, h := api(t, s.Base, "/api/admin", tok.AccessToken)
	if status != http.StatusForbidden || !strings.Contains(h.Get("WWW-Authenticate"), `error="insufficient_scope"`) {
		t.Errorf("/api/admin without the admin scope: HTTP %d, WWW-Authenticate %q, want 403 insufficient_scope", status, h.Get("WWW-Authenticate"))
	}

	// Refresh: both tokens rotate, the new access token works.
	fresh, err := refresh(ctx, conf, tok.RefreshToken)
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if fresh.AccessToken == tok.AccessToken || fresh.RefreshToken == "" || fresh.RefreshToken == tok.RefreshToken {
		t.Fatal("the refresh did not rotate the access and refresh tokens")
	}
	status, m, _ = api(t, s.Base, "/api/me", fresh.AccessToken)
	wantMe(t, "/api/me with the refreshed token", status, m, s.ClientID, "read write")

	// Introspection of the live token.
	m = introspect(t, s.Base, s, fresh.AccessToken)
	if sc, _ := m["scope"].(string); !sameScope(sc, "read write") {
		t.Errorf("introspection: scope = %v, want read write", m["scope"])
	}
	for k, v := range map[string]any{"active": true, "client_id": s.ClientID, "iss": s.Issuer} {
		if m[k] != v {
			t.Errorf("introspection: %s = %v, want %v", k, m[k], v)
		}
	}
	if m["sub"] != demo.DemoUser && m["username"] != demo.DemoUser {
		t.Errorf("introspection names neither sub nor username %q: %v", demo.DemoUser, m)
	}

	// Revocation of the refresh token takes its family's access tokens.
	status, body := clientPost(t, s.Base, "/oauth2/revoke", s.ClientID, s.ClientSecret,
		url.Values{"token": {fresh.RefreshToken}, "token_type_hint": {"refresh_token"}})
	if status != http.StatusOK {
		t.Fatalf("revoke: HTTP %d %s", status, body)
	}
	status, _, h = api(t, s.Base, "/api/me", fresh.AccessToken)
	if status != http.StatusUnauthorized || !strings.Contains(h.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Errorf("/api/me after revocation: HTTP %d, WWW-Authenticate %q, want 401 invalid_token", status, h.Get("WWW-Authenticate"))
	}
	wantInactive(t, "after revocation", introspect(t, s.Base, s, fresh.AccessToken))
	_, err = refresh(ctx, conf, fresh.RefreshToken)
	wantRetrieveError(t, "refresh with the revoked refresh token", err, "invalid_grant")

	// With the admin scope, /api/admin answers.
	admin := oauthConfig(s, s.Base, s.Base, "read", "admin")
	tok, _ = codeFlow(t, s, admin)
	status, m, _ = api(t, s.Base, "/api/admin", tok.AccessToken)
	wantMe(t, "/api/admin with the admin scope", status, m, s.ClientID, "read admin")
	// A rotated-out refresh token presented again is refused.
	if _, err := refresh(ctx, admin, tok.RefreshToken); err != nil {
		t.Fatalf("refresh: %v", err)
	}
	_, err = refresh(ctx, admin, tok.RefreshToken)
	wantRetrieveError(t, "refresh with a rotated-out refresh token", err, "invalid_grant")
}

func testRememberedConsent(t *testing.T, s *Server) {
	conf := oauthConfig(s, s.Base, s.Base, "read", "write")
	codeFlow(t, s, conf) // consent shown or remembered from before
	if _, consent := codeFlow(t, s, conf); consent {
		t.Error("the consent page was shown again for a scope the user approved before")
	}
}

func testClientCommands(t *testing.T, s *Server, bin, db string) {
	const appRedirect = "https://app.example/cb"
	run := func(args ...string) string {
		t.Helper()
		out, errOut, code := Run(t, bin, append([]string{"client"}, args...)...)
		if code != 0 {
			t.Fatalf("client %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
		}
		return out
	}
	decode := func(what, out string, v any) {
		t.Helper()
		if err := json.Unmarshal([]byte(out), v); err != nil {
			t.Fatalf("client %s: output is not the JSON expected: %v\n%s", what, err, out)
		}
	}

	var conf map[string]string
	decode("add", run("add", "-db", db, "-name", "E2E App", "-redirect-uri", appRedirect, "-scope", "read"), &conf)
	if len(conf) != 2 || conf["client_id"] == "" || conf["client_secret"] == "" {
		t.Fatalf("client add: %v, want {client_id, client_secret}", conf)
	}
	id, secret := conf["client_id"], conf["client_secret"]

	var pub map[string]string
	decode("add -public", run("add", "-db", db, "-name", "E2E Native", "-redirect-uri", appRedirect, "-public"), &pub)
	if _, has := pub["client_secret"]; has || pub["client_id"] == "" {
		t.Errorf("client add -public: %v, want a client_id and no secret", pub)
	}

	listed := func() []string {
		t.Helper()
		var rows []map[string]any
		decode("list", run("list", "-db", db), &rows)
		var ids []string
		for _, r := range rows {
			ids = append(ids, fmt.Sprint(r["client_id"]))
		}
		return ids
	}
	ids := listed()
	for _, want := range []string{s.ClientID, id, pub["client_id"]} {
		if !slices.Contains(ids, want) {
			t.Errorf("client list: %v lacks %s", ids, want)
		}
	}

	// The token endpoint tells a failed client authentication (401
	// invalid_client) from a made-up code of an authenticated client (400
	// invalid_grant).
	tokenWith := func(secret string) (int, string) {
		t.Helper()
		status, body := clientPost(t, s.Base, "/oauth2/token", id, secret,
			url.Values{"grant_type": {"authorization_code"}, "code": {"made-up"}, "redirect_uri": {appRedirect}})
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(body, &e)
		return status, e.Error
	}
	if status, code := tokenWith(secret); status != http.StatusBadRequest || code != "invalid_grant" {
		t.Errorf("token endpoint with the new client's secret: HTTP %d %q, want 400 invalid_grant", status, code)
	}
	authURL := s.Base + "/oauth2/authorize?" + url.Values{
		"response_type": {"code"}, "client_id": {id}, "redirect_uri": {appRedirect}, "scope": {"read"},
		"state": {"s"}, "code_challenge": {oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())}, "code_challenge_method": {"S256"},
	}.Encode()
	if p := newBrowser(t).get(t, authURL); p.status != http.StatusOK || !strings.Contains(p.body, `name="password"`) {
		t.Errorf("authorize for the new client: HTTP %d, want the login page:\n%s", p.status, p.body)
	}

	var rot map[string]string
	decode("rotate-secret", run("rotate-secret", id, "-db", db), &rot)
	if rot["client_secret"] == "" || rot["client_secret"] == secret {
		t.Fatalf("client rotate-secret: want a new secret, got %d chars (same: %t)", len(rot["client_secret"]), rot["client_secret"] == secret)
	}
	if status, code := tokenWith(secret); status != http.StatusUnauthorized || code != "invalid_client" {
		t.Errorf("token endpoint with the old secret: HTTP %d %q, want 401 invalid_client", status, code)
	}
	if status, code := tokenWith(rot["client_secret"]); status != http.StatusBadRequest || code != "invalid_grant" {
		t.Errorf("token endpoint with the rotated secret: HTTP %d %q, want 400 invalid_grant", status, code)
	}

	run("remove", "-db", db, "--", id) // "--": ids may start with '-' when imported
	p := newBrowser(t).get(t, authURL)
	if p.status != http.StatusBadRequest || p.header.Get("Location") != "" {
		t.Errorf("authorize for a removed client: HTTP %d, Location %q, want a 400 error page and no redirect", p.status, p.header.Get("Location"))
	}
	checkPageHeaders(t, "error page", p)
	if ids := listed(); slices.Contains(ids, id) {
		t.Errorf("client list after remove still lists %s", id)
	}
	if _, _, code := Run(t, bin, "client", "remove", "-db", db); code == 0 {
		t.Error("client remove without an id exited 0")
	}
}

// testGracefulStop stops s with SIGTERM while a token request is half sent,
// checks that the request is answered and the process exits 0, then starts
// the example again on the same database and key file.
func testGracefulStop(t *testing.T, s *Server, bin, db string) {
	conf := oauthConfig(s, s.Base, s.Base, "read", "write")
	tok, _ := codeFlow(t, s, conf)

	conn, err := net.DialTimeout("tcp", s.Addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}.Encode()
	basic := base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(s.ClientID) + ":" + url.QueryEscape(s.ClientSecret)))
	head := fmt.Sprintf("POST /oauth2/token HTTP/1.1\r\nHost: %s\r\nAuthorization: Basic %s\r\n"+
		"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n", s.Addr, basic, len(body))
	if _, err := io.WriteString(conn, head+body[:5]); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // the server reads the headers: the request is in flight
	if err := s.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// Shutting down: the listener closes, the process waits for the request.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.Addr, time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("the server still accepts connections 10s after SIGTERM")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if s.Exited() {
		t.Fatal("the server exited with a request in flight")
	}
	if _, err := io.WriteString(conn, body[5:]); err != nil {
		t.Fatalf("finishing the in-flight request: %v", err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("the in-flight request got no answer: %v", err)
	}
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	err = json.NewDecoder(res.Body).Decode(&tr)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || err != nil || tr.AccessToken == "" {
		t.Errorf("the in-flight token request: HTTP %d (%v), want 200 with a token", res.StatusCode, err)
	}
	if code := s.Wait(t, 20*time.Second); code != 0 {
		t.Fatalf("exit code %d after SIGTERM, want 0; log:\n%s", code, s.Log())
	}

	// Again on the same address, database and key file.
	s2 := Start(t, bin, "-addr", s.Addr, "-db", db)
	if s2.ClientSecret != s.ClientSecret || s2.Issuer != s.Issuer {
		t.Errorf("after a restart: the demo client secret changed (%t), issuer %q (was %q)", s2.ClientSecret != s.ClientSecret, s2.Issuer, s.Issuer)
	}
	status, m, _ := api(t, s2.Base, "/api/me", tok.AccessToken)
	wantMe(t, "/api/me after a restart with a token issued before", status, m, s.ClientID, "read write")
	if _, err := refresh(clientCtx(t), conf, tok.RefreshToken); err != nil {
		t.Errorf("refresh after a restart: %v", err)
	}
	if _, consent := codeFlow(t, s2, oauthConfig(s2, s2.Base, s2.Base, "read", "write")); consent {
		t.Error("after a restart the remembered consent was forgotten")
	}
}

// testTwoInstances: a and b share the database, key file and issuer; a
// code obtained through a is redeemed at b, and the tokens work at both.
func testTwoInstances(t *testing.T, a, b *Server) {
	if b.Issuer != a.Issuer || b.ClientSecret != a.ClientSecret {
		t.Fatalf("b: issuer %q (a: %q), same demo secret %t", b.Issuer, a.Issuer, b.ClientSecret == a.ClientSecret)
	}
	res, err := plain.Get(b.Base + MetadataPath)
	if err != nil {
		t.Fatal(err)
	}
	var md struct {
		Issuer string `json:"issuer"`
	}
	err = json.NewDecoder(res.Body).Decode(&md)
	res.Body.Close()
	if err != nil || md.Issuer != a.Issuer {
		t.Errorf("b's metadata issuer %q (%v), want %q", md.Issuer, err, a.Issuer)
	}

	ctx := clientCtx(t)
	conf := oauthConfig(a, a.Base, b.Base, "read", "write")
	tok, _ := codeFlow(t, a, conf) // authorized at a, redeemed at b
	for _, s := range []*Server{a, b} {
		status, m, _ := api(t, s.Base, "/api/me", tok.AccessToken)
		wantMe(t, "/api/me at "+s.Base, status, m, a.ClientID, "read write")
	}
	fresh, err := refresh(ctx, oauthConfig(a, a.Base, a.Base, "read", "write"), tok.RefreshToken) // at a
	if err != nil {
		t.Fatalf("refresh at a of a token issued by b: %v", err)
	}
	if m := introspect(t, b.Base, b, fresh.AccessToken); m["active"] != true {
		t.Errorf("introspection at b of a token refreshed at a: %v", m)
	}
	status, body := clientPost(t, a.Base, "/oauth2/revoke", a.ClientID, a.ClientSecret, url.Values{"token": {fresh.RefreshToken}})
	if status != http.StatusOK {
		t.Fatalf("revoke at a: HTTP %d %s", status, body)
	}
	wantInactive(t, "introspection at b after revocation at a", introspect(t, b.Base, b, fresh.AccessToken))
	_, err = refresh(ctx, conf, fresh.RefreshToken) // at b
	wantRetrieveError(t, "refresh at b after revocation at a", err, "invalid_grant")
}
