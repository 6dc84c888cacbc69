package e2etest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	cryptorand "crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
	"golang.org/x/oauth2"

	"github.com/oauth2kit/oauth2kit/examples/internal/demo"
)

// The MCP example with client ID metadata documents (EXAMPLES.md,
// "Dynamic client registration … and Client ID Metadata Documents"): the
// SDK's client names itself by an https URL instead of registering, the
// kit fetches the document there (from loopback only with
// -cimd-allow-loopback, trusting a throwaway CA through SSL_CERT_FILE),
// and nothing is stored. TestMCPStepUp: the SDK's client holding a token
// without the mcp scope is answered 403 insufficient_scope and authorizes
// again for it.

const (
	// cimdRedirect is the documents' redirect URI: a loopback port nobody
	// listens on (the test reads the redirect), not the demo client's.
	cimdRedirect   = "http://127.0.0.1:9123/callback"
	cimdRedirectAt = "127.0.0.1:9123"
	cimdClientName = "E2E CIMD Client"
	cimdDocPath    = "/oauth/client.json"
)

func TestMCPClientIDMetadataDocument(t *testing.T) {
	bin := Build(t, "mcp")
	ca := newCIMDCA(t)
	docs := newCIMDDocServer(t, ca)
	good := docs.URL + cimdDocPath
	docs.serve(cimdDocPath, cimdDocument(good))
	// A document that names another client_id than its URL.
	bad := docs.URL + "/oauth/other.json"
	docs.serve("/oauth/other.json", cimdDocument(good))

	env := []string{"SSL_CERT_FILE=" + ca.file}
	db := filepath.Join(t.TempDir(), "demo.db")
	s := StartEnv(t, bin, env, "-addr", "127.0.0.1:0", "-db", db, "-cimd-allow-loopback")

	t.Run("SDKClient", func(t *testing.T) { testCIMDClient(t, s, docs, good) })

	t.Run("ClientIDNotTheURL", func(t *testing.T) {
		p := newBrowser(t).get(t, cimdAuthorizeURL(s, bad, mcpScope))
		if p.status != http.StatusBadRequest || p.header.Get("Location") != "" || !strings.Contains(p.body, "client metadata document") {
			t.Errorf("authorize with client_id %s (its document names %s): HTTP %d, Location %q, want a 400 page about the client metadata document:\n%s",
				bad, good, p.status, p.header.Get("Location"), p.body)
		}
		checkPageHeaders(t, "error page", p)
		if n := docs.hits("/oauth/other.json"); n < 1 {
			t.Errorf("the document at %s was fetched %d times, want at least once", bad, n)
		}
		// Nothing is stored: neither the refused document's client nor
		// the good one the SDK used.
		ids := cimdListClients(t, bin, db)
		for _, id := range []string{bad, good} {
			if slices.Contains(ids, id) {
				t.Errorf("client list shows %s: a client metadata document's client was stored (%v)", id, ids)
			}
		}
		if !slices.Contains(ids, s.ClientID) {
			t.Errorf("client list %v lacks the demo client %s (is this the server's database?)", ids, s.ClientID)
		}
	})

	t.Run("LoopbackRefused", func(t *testing.T) {
		// Without -cimd-allow-loopback the fetcher connects to port 443
		// of public addresses only. On 127.0.0.1:443 (when this process
		// may listen there) only the address rule can refuse; elsewhere
		// the port rule refuses first.
		const path = "/oauth/loopback.json"
		d, err := listenCIMDDocServer(t, ca, "127.0.0.1:443")
		docURL := "https://127.0.0.1" + path
		if err != nil {
			t.Logf("cannot listen on 127.0.0.1:443 (%v): the refusal checked is the port rule's, not the loopback address's", err)
			d = docs
			docURL = docs.URL + path
		}
		d.serve(path, cimdDocument(docURL))
		s2 := StartEnv(t, bin, env, "-addr", "127.0.0.1:0", "-db", filepath.Join(t.TempDir(), "demo.db"))
		p := newBrowser(t).get(t, cimdAuthorizeURL(s2, docURL, mcpScope))
		if p.status != http.StatusBadRequest || p.header.Get("Location") != "" || !strings.Contains(p.body, "client metadata document") {
			t.Errorf("authorize with the loopback client_id %s without -cimd-allow-loopback: HTTP %d, Location %q, want a 400 page about the client metadata document:\n%s",
				docURL, p.status, p.header.Get("Location"), p.body)
		}
		if n := d.hits(path); n != 0 {
			t.Errorf("the server without -cimd-allow-loopback fetched %s %d times, want 0", docURL, n)
		}
		// The same document is good: the server with the flag takes it.
		p = newBrowser(t).get(t, cimdAuthorizeURL(s, docURL, mcpScope))
		if p.status != http.StatusOK || !strings.Contains(p.body, `name="password"`) || d.hits(path) < 1 {
			t.Errorf("authorize with %s with -cimd-allow-loopback: HTTP %d, document fetched %d times; want the login page after a fetch:\n%s",
				docURL, p.status, d.hits(path), p.body)
		}
	})
}

// testCIMDClient connects the SDK's client, configured with the document
// URL and no registration, to s/mcp.
func testCIMDClient(t *testing.T, s *Server, docs *cimdDocServer, docURL string) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	rec := &cimdRecorder{}
	httpc := &http.Client{Transport: rec, Timeout: 30 * time.Second}
	user := newCIMDUser()
	handler, err := auth.NewAuthorizationCodeHandler(&auth.AuthorizationCodeHandlerConfig{
		ClientIDMetadataDocumentConfig: &auth.ClientIDMetadataDocumentConfig{URL: docURL},
		RedirectURL:                    cimdRedirect,
		AuthorizationCodeFetcher:       user.fetch,
		Client:                         httpc,
	})
	if err != nil {
		t.Fatal(err)
	}

	var (
		authURLs []string
		consent  string
		redirect *url.URL
		cs       *mcp.ClientSession
	)
	err = user.serve(t, ctx, func() error {
		var err error
		cs, err = mcp.NewClient(&mcp.Implementation{Name: "oauth2kit-e2e", Version: "1.0.0"}, nil).Connect(ctx,
			&mcp.StreamableClientTransport{Endpoint: s.Base + "/mcp", HTTPClient: httpc, OAuthHandler: handler, MaxRetries: -1}, nil)
		return err
	}, func(u string) *auth.AuthorizationResult {
		authURLs = append(authURLs, u)
		redirect, consent = cimdApprove(t, u, cimdRedirect)
		q := redirect.Query()
		return &auth.AuthorizationResult{Code: q.Get("code"), State: q.Get("state"), Iss: q.Get("iss")}
	})
	if err != nil {
		t.Fatalf("the SDK's client (client ID metadata document %s) could not connect: %v\nrequests:\n%s", docURL, err, rec.log())
	}
	defer cs.Close()

	// No registration: the document is the client.
	for _, x := range rec.all() {
		if x.method == http.MethodPost && strings.HasSuffix(x.path, "/register") {
			t.Errorf("the SDK registered (%s %s) although it has a client ID metadata document", x.method, x.path)
		}
	}
	if len(authURLs) != 1 {
		t.Fatalf("%d authorizations, want 1: %q", len(authURLs), authURLs)
	}
	au, err := url.Parse(authURLs[0])
	if err != nil {
		t.Fatal(err)
	}
	q := au.Query()
	if q.Get("client_id") != docURL || q.Get("redirect_uri") != cimdRedirect || q.Get("resource") != s.Issuer+"/mcp" ||
		!slices.Contains(strings.Fields(q.Get("scope")), mcpScope) || q.Get("code_challenge_method") != "S256" {
		t.Errorf("the SDK authorizes with client_id %q, redirect_uri %q, resource %q, scope %q, code_challenge_method %q; "+
			"want %s, %s, %s/mcp, %s, S256", q.Get("client_id"), q.Get("redirect_uri"), q.Get("resource"), q.Get("scope"),
			q.Get("code_challenge_method"), docURL, cimdRedirect, s.Issuer, mcpScope)
	}

	// The consent page: the document's name, marked unverified, and where
	// the code goes.
	if consent == "" {
		t.Error("no consent page for a client metadata document's client (its name is its own claim)")
	}
	for _, want := range []string{cimdClientName, "(unverified, at " + cimdRedirectAt + ")"} {
		if consent != "" && !strings.Contains(consent, want) {
			t.Errorf("the consent page lacks %q:\n%s", want, consent)
		}
	}

	// RFC 9207: the redirect carries iss, the metadata's issuer, which the
	// SDK requires since the metadata advertises it.
	md := cimdMetadata(t, s)
	if md.Issuer != s.Issuer || !md.AuthorizationResponseIssParameterSupported || !md.ClientIDMetadataDocumentSupported {
		t.Errorf("metadata: issuer %q, authorization_response_iss_parameter_supported %t, client_id_metadata_document_supported %t; want %q, true, true",
			md.Issuer, md.AuthorizationResponseIssParameterSupported, md.ClientIDMetadataDocumentSupported, s.Issuer)
	}
	if got := redirect.Query()["iss"]; len(got) != 1 || got[0] != md.Issuer {
		t.Errorf("the redirect %s carries iss %q, want exactly the metadata's issuer %q", redirect, got, md.Issuer)
	}

	// The token request: the SDK has no auth method for a document
	// client (oauth2.AuthStyleAutoDetect), so it sends HTTP Basic with
	// the URL-encoded client_id and an empty password first; the kit
	// takes that as the public client it is.
	tokens := rec.tokenRequests()
	if len(tokens) == 0 {
		t.Fatalf("no token request; requests:\n%s", rec.log())
	}
	first := tokens[0]
	wantBasic := "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(docURL)+":"))
	if first.authorization != wantBasic {
		t.Errorf("the first token request's Authorization is %q, want %q (Basic urlenc(client_id) + \":\")", first.authorization, wantBasic)
	}
	if first.status != http.StatusOK || first.form.Get("grant_type") != "authorization_code" || first.form.Get("resource") != s.Issuer+"/mcp" {
		t.Errorf("the first token request: HTTP %d (error %q), grant_type %q, resource %q; want 200, authorization_code, %s/mcp",
			first.status, first.tokenError, first.form.Get("grant_type"), first.form.Get("resource"), s.Issuer)
	}
	if len(tokens) != 1 {
		t.Errorf("%d token requests, want 1 (the first one succeeds); requests:\n%s", len(tokens), rec.log())
	}

	who := mcpWhoami(t, cs)
	if who["sub"] != demo.DemoUser || who["client_id"] != docURL || !slices.Contains(strings.Fields(who["scope"]), mcpScope) {
		t.Errorf("whoami = %v, want sub %q, client_id %q and scope with %q", who, demo.DemoUser, docURL, mcpScope)
	}
	mcpWantEcho(t, cs)

	// Fetched, and cached (5 minutes without caching headers): authorize,
	// sign-in, consent and token request do not fetch it each.
	if n := docs.hits(cimdDocPath); n < 1 || n > 2 {
		t.Errorf("the document was fetched %d times for one authorization and its token request, want 1 or 2", n)
	}
}

// TestMCPStepUp: the SDK's client holds a token for <issuer>/mcp without
// the mcp scope; the MCP server answers 403 insufficient_scope with
// scope="mcp", and the SDK authorizes again for the scopes it holds plus
// mcp, and its request is retried with the new token.
//
// How the client comes to hold that token: the SDK always sends resource
// (the protected resource metadata's) at authorize, and the kit allows
// only mcp, openid and offline_access with <issuer>/mcp (read is
// invalid_scope, checked below). So the ScopeFilter asks for openid
// instead of the discovered mcp the first time; that first authorization
// is the SDK's own Authorize of the 401 the MCP endpoint answers without a
// token (what the transport calls on a 401), before Connect. Inside
// Connect it would work too, but less plainly: the transport authorizes
// once per request, so the retried server/discover would fail on the 403
// and the step-up would come on the legacy initialize Connect falls back
// to. Primed, the 403 is the answer to Connect's first request.
func TestMCPStepUp(t *testing.T) {
	bin := Build(t, "mcp")
	ca := newCIMDCA(t)
	docs := newCIMDDocServer(t, ca)
	docURL := docs.URL + cimdDocPath
	docs.serve(cimdDocPath, cimdDocument(docURL))
	s := StartEnv(t, bin, []string{"SSL_CERT_FILE=" + ca.file},
		"-addr", "127.0.0.1:0", "-db", filepath.Join(t.TempDir(), "demo.db"), "-cimd-allow-loopback")
	resource := s.Issuer + "/mcp"
	prm := s.Issuer + mcpPRMPath

	t.Run("ReadNotForTheMCPResource", func(t *testing.T) {
		// A client described by a metadata document is unverified: its
		// errors are pages, never redirects to its URI (RFC 9700 §4.11.2).
		p := newBrowser(t).get(t, cimdAuthorizeURL(s, docURL, "read"))
		if p.status != http.StatusBadRequest || p.header.Get("Location") != "" || !strings.Contains(string(p.body), "invalid_scope") {
			t.Errorf("authorize with scope read for %s: HTTP %d, want a 400 page with invalid_scope:\n%s", resource, p.status, p.body)
		}
	})

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	rec := &cimdRecorder{}
	httpc := &http.Client{Transport: rec, Timeout: 30 * time.Second}
	user := newCIMDUser()
	var (
		filterMu   sync.Mutex
		discovered [][]string
	)
	handler, err := auth.NewAuthorizationCodeHandler(&auth.AuthorizationCodeHandlerConfig{
		ClientIDMetadataDocumentConfig: &auth.ClientIDMetadataDocumentConfig{URL: docURL},
		RedirectURL:                    cimdRedirect,
		AuthorizationCodeFetcher:       user.fetch,
		Client:                         httpc,
		ScopeFilter: func(scopes []string) []string {
			filterMu.Lock()
			defer filterMu.Unlock()
			discovered = append(discovered, slices.Clone(scopes))
			if len(discovered) == 1 {
				return []string{"openid"} // not mcp: the token the server will refuse
			}
			return scopes
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	var authURLs []string
	approve := func(u string) *auth.AuthorizationResult {
		authURLs = append(authURLs, u)
		redirect, _ := cimdApprove(t, u, cimdRedirect)
		q := redirect.Query()
		return &auth.AuthorizationResult{Code: q.Get("code"), State: q.Get("state"), Iss: q.Get("iss")}
	}

	// 1. The 401 without a token, and the SDK's authorization for it.
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.Base+"/mcp", strings.NewReader(mcpInitialize))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	res, err := httpc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusUnauthorized {
		res.Body.Close()
		t.Fatalf("POST /mcp without a token: %s, want 401", res.Status)
	}
	if err := user.serve(t, ctx, func() error { return handler.Authorize(ctx, req, res) }, approve); err != nil {
		t.Fatalf("the SDK's authorization for the 401: %v\nrequests:\n%s", err, rec.log())
	}
	ts, err := handler.TokenSource(ctx)
	if err != nil || ts == nil {
		t.Fatalf("no token source after the authorization (%v)", err)
	}
	tok, err := ts.Token()
	if err != nil {
		t.Fatal(err)
	}
	if sc, _ := tok.Extra("scope").(string); !sameScope(sc, "openid") {
		t.Fatalf("the first token's scope is %q, want openid", sc)
	}
	// That token is refused at /mcp with the step-up challenge.
	status, h, _ := mcpRequest(t, http.MethodPost, s.Base+"/mcp", tok.AccessToken)
	cimdWantStepUp(t, "POST /mcp with the openid token", status, h.Values("WWW-Authenticate"), prm)

	// 2. Connect: the initialize is refused 403, the SDK steps up and
	// retries.
	var cs *mcp.ClientSession
	err = user.serve(t, ctx, func() error {
		var err error
		cs, err = mcp.NewClient(&mcp.Implementation{Name: "oauth2kit-e2e", Version: "1.0.0"}, nil).Connect(ctx,
			&mcp.StreamableClientTransport{Endpoint: s.Base + "/mcp", HTTPClient: httpc, OAuthHandler: handler, MaxRetries: -1}, nil)
		return err
	}, approve)
	if err != nil {
		t.Fatalf("the SDK's client did not step up: %v\nrequests:\n%s", err, rec.log())
	}
	defer cs.Close()

	// The wire: POST /mcp 401, then (the transport's first request) 403
	// with the challenge, then the retry 200.
	var mcpPosts []cimdExchange
	for _, x := range rec.all() {
		if x.method == http.MethodPost && x.path == "/mcp" {
			mcpPosts = append(mcpPosts, x)
		}
	}
	if len(mcpPosts) < 3 || mcpPosts[0].status != http.StatusUnauthorized || mcpPosts[2].status != http.StatusOK {
		t.Fatalf("POST /mcp answers %v, want 401, 403, 200, …; requests:\n%s", cimdStatuses(mcpPosts), rec.log())
	}
	cimdWantStepUp(t, "the SDK's POST /mcp with the openid token", mcpPosts[1].status, mcpPosts[1].wwwAuthenticate, prm)

	// What the SDK asked for: the discovered scopes (the metadata's, then
	// the challenge's), and at authorize openid, then openid plus mcp
	// (SEP-2350: what it holds and what the challenge names).
	filterMu.Lock()
	got := slices.Clone(discovered)
	filterMu.Unlock()
	if len(got) != 2 || !slices.Equal(got[0], []string{mcpScope}) || !slices.Equal(got[1], []string{mcpScope}) {
		t.Errorf("ScopeFilter saw %q, want [mcp] (protected resource metadata) and [mcp] (the 403's scope)", got)
	}
	if len(authURLs) != 2 {
		t.Fatalf("%d authorizations, want 2: %q", len(authURLs), authURLs)
	}
	for i, want := range []string{"openid", "openid mcp"} {
		au, err := url.Parse(authURLs[i])
		if err != nil {
			t.Fatal(err)
		}
		q := au.Query()
		if !sameScope(q.Get("scope"), want) || q.Get("resource") != resource || q.Get("client_id") != docURL {
			t.Errorf("authorization %d: scope %q, resource %q, client_id %q; want %q, %s, %s", i+1, q.Get("scope"), q.Get("resource"), q.Get("client_id"), want, resource, docURL)
		}
	}
	tokens := rec.tokenRequests()
	if len(tokens) != 2 || tokens[0].status != http.StatusOK || tokens[1].status != http.StatusOK ||
		!sameScope(tokens[0].tokenScope, "openid") || !sameScope(tokens[1].tokenScope, "openid mcp") {
		t.Errorf("token requests: want two answered 200 with scope openid, then openid mcp; requests:\n%s", rec.log())
	}

	who := mcpWhoami(t, cs)
	if who["sub"] != demo.DemoUser || who["client_id"] != docURL || !sameScope(who["scope"], "openid mcp") {
		t.Errorf("whoami = %v, want sub %q, client_id %q, scope openid mcp", who, demo.DemoUser, docURL)
	}
}

// cimdWantStepUp checks a 403 insufficient_scope for scope mcp with the
// resource metadata URL, as the SDK parses it and on the wire.
func cimdWantStepUp(t *testing.T, what string, status int, www []string, prm string) {
	t.Helper()
	cs, err := oauthex.ParseWWWAuthenticate(www)
	if status != http.StatusForbidden || err != nil || len(cs) != 1 || cs[0].Scheme != "bearer" ||
		cs[0].Params["error"] != "insufficient_scope" || cs[0].Params["scope"] != mcpScope || cs[0].Params["resource_metadata"] != prm {
		t.Errorf("%s: HTTP %d, WWW-Authenticate %q (%v); want 403 Bearer error=\"insufficient_scope\", scope=\"mcp\", resource_metadata=%q",
			what, status, www, err, prm)
	}
	for _, p := range []string{`error="insufficient_scope"`, `scope="mcp"`, `resource_metadata="` + prm + `"`} {
		if len(www) == 1 && !strings.Contains(www[0], p) {
			t.Errorf("%s: WWW-Authenticate %q lacks %s", what, www[0], p)
		}
	}
}

func cimdStatuses(xs []cimdExchange) []int {
	var out []int
	for _, x := range xs {
		out = append(out, x.status)
	}
	return out
}

// ---- helpers ----

// cimdDocument is a client metadata document of a public client at id.
func cimdDocument(id string) string {
	b, err := json.Marshal(map[string]any{
		"client_id":                  id,
		"client_name":                cimdClientName,
		"redirect_uris":              []string{cimdRedirect},
		"token_endpoint_auth_method": "none",
		"grant_types":                []string{"authorization_code", "refresh_token"},
		"response_types":             []string{"code"},
	})
	if err != nil {
		panic(err)
	}
	return string(b)
}

// cimdAuthorizeURL is an authorization request of client id at s, for
// the MCP resource.
func cimdAuthorizeURL(s *Server, id, scope string) string {
	return s.Base + "/oauth2/authorize?" + url.Values{
		"response_type": {"code"}, "client_id": {id}, "redirect_uri": {cimdRedirect}, "scope": {scope}, "state": {"st"},
		"code_challenge": {oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())}, "code_challenge_method": {"S256"},
		"resource": {s.Issuer + "/mcp"},
	}.Encode()
}

// cimdApprove plays the demo user at authURL: signs in, approves the
// consent page if one comes, and returns the redirect to redirect and
// the consent page's HTML ("" if none was shown).
func cimdApprove(t *testing.T, authURL, redirect string) (*url.URL, string) {
	t.Helper()
	b := newBrowser(t)
	p := b.get(t, authURL)
	if p.status != http.StatusOK {
		t.Fatalf("authorize %s: HTTP %d, want the login page:\n%s", authURL, p.status, p.body)
	}
	p = b.submit(t, p, p.form(t), url.Values{"username": {demo.DemoUser}, "password": {demo.DemoPassword}})
	consent := ""
	if p.status == http.StatusOK {
		consent = p.body
		checkPageHeaders(t, "consent page", p)
		f := p.form(t)
		if !f.hasButton("decision", "approve") {
			t.Fatalf("consent page without an approve button:\n%s", p.body)
		}
		p = b.submit(t, p, f, url.Values{"decision": {"approve"}})
	}
	if p.status != http.StatusSeeOther {
		t.Fatalf("after sign-in (consent page shown: %t): HTTP %d, want 303 to %s:\n%s", consent != "", p.status, redirect, p.body)
	}
	loc := p.location(t)
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != redirect || loc.Query().Get("code") == "" {
		t.Fatalf("redirected to %s, want %s with a code", loc, redirect)
	}
	return loc, consent
}

func cimdMetadata(t *testing.T, s *Server) *oauthex.AuthServerMeta {
	t.Helper()
	res, err := plain.Get(s.Base + MetadataPath)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var md oauthex.AuthServerMeta
	if err := json.NewDecoder(res.Body).Decode(&md); res.StatusCode != http.StatusOK || err != nil {
		t.Fatalf("metadata: %s (%v)", res.Status, err)
	}
	return &md
}

// cimdListClients is the client_ids the example's client list shows for
// db.
func cimdListClients(t *testing.T, bin, db string) []string {
	t.Helper()
	out, errOut, code := Run(t, bin, "client", "list", "-db", db)
	var rows []map[string]any
	if err := json.Unmarshal([]byte(out), &rows); code != 0 || err != nil {
		t.Fatalf("client list: exit %d, %v\n%s%s", code, err, out, errOut)
	}
	var ids []string
	for _, r := range rows {
		ids = append(ids, fmt.Sprint(r["client_id"]))
	}
	return ids
}

// cimdUser is the SDK's AuthorizationCodeFetcher played by the test: the
// SDK calls fetch from inside Connect or Authorize, and the browser
// checks call t.Fatal, which only the test goroutine may, so fetch hands
// the URL to serve and waits for its answer.
type cimdUser struct {
	urls    chan string
	results chan *auth.AuthorizationResult
}

func newCIMDUser() *cimdUser {
	return &cimdUser{urls: make(chan string), results: make(chan *auth.AuthorizationResult)}
}

func (u *cimdUser) fetch(ctx context.Context, args *auth.AuthorizationArgs) (*auth.AuthorizationResult, error) {
	select {
	case u.urls <- args.URL:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case r := <-u.results:
		return r, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// serve runs fn in a goroutine and answers, on the test goroutine, each
// authorization it asks for with approve; it returns fn's error. Should
// approve fail the test, ctx's cancellation releases fn.
func (u *cimdUser) serve(t *testing.T, ctx context.Context, fn func() error, approve func(authURL string) *auth.AuthorizationResult) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- fn() }()
	for {
		select {
		case au := <-u.urls:
			r := approve(au)
			select {
			case u.results <- r:
			case <-ctx.Done():
				t.Fatal("the SDK stopped waiting for the authorization")
			}
		case err := <-done:
			return err
		case <-ctx.Done():
			t.Fatal("the SDK did not finish within the deadline")
		}
	}
}

// cimdExchange is one request of the SDK's HTTP client and its answer.
type cimdExchange struct {
	method, path    string
	status          int
	err             error
	wwwAuthenticate []string
	// Token requests only: the Authorization header (a public client's,
	// without a secret; a secret is shown as such), the form without code,
	// code_verifier or refresh_token, and the answer's scope or error.
	authorization          string
	form                   url.Values
	tokenScope, tokenError string
}

// cimdRecorder is the SDK's HTTP client transport: it records every
// request (the MCP endpoint's too) for assertions and failure messages.
type cimdRecorder struct {
	mu sync.Mutex
	xs []cimdExchange
}

func (r *cimdRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	x := cimdExchange{method: req.Method, path: req.URL.Path}
	isToken := req.Method == http.MethodPost && strings.HasSuffix(req.URL.Path, "/oauth2/token")
	if isToken {
		var body []byte
		if req.Body != nil {
			var err error
			if body, err = io.ReadAll(req.Body); err != nil {
				return nil, err
			}
			req.Body.Close()
			req.Body = io.NopCloser(bytes.NewReader(body))
		}
		form, _ := url.ParseQuery(string(body))
		for _, k := range []string{"code", "code_verifier", "refresh_token", "client_secret"} {
			if form.Has(k) {
				form.Set(k, "…")
			}
		}
		x.form = form
		x.authorization = req.Header.Get("Authorization")
		if id, secret, ok := req.BasicAuth(); ok && secret != "" {
			x.authorization = "Basic (" + id + " with a secret)"
		}
	}
	res, err := http.DefaultTransport.RoundTrip(req)
	x.err = err
	if err == nil {
		x.status = res.StatusCode
		x.wwwAuthenticate = res.Header.Values("WWW-Authenticate")
		if isToken {
			b, rerr := io.ReadAll(res.Body)
			res.Body.Close()
			res.Body = io.NopCloser(bytes.NewReader(b))
			if rerr != nil {
				return nil, rerr
			}
			var tr struct {
				Scope string `json:"scope"`
				Error string `json:"error"`
			}
			_ = json.Unmarshal(b, &tr)
			x.tokenScope, x.tokenError = tr.Scope, tr.Error
		}
	}
	r.mu.Lock()
	r.xs = append(r.xs, x)
	r.mu.Unlock()
	return res, err
}

func (r *cimdRecorder) all() []cimdExchange {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.xs)
}

func (r *cimdRecorder) tokenRequests() []cimdExchange {
	var out []cimdExchange
	for _, x := range r.all() {
		if x.form != nil {
			out = append(out, x)
		}
	}
	return out
}

func (r *cimdRecorder) log() string {
	var lines []string
	for _, x := range r.all() {
		line := x.method + " " + x.path + ": "
		if x.err != nil {
			line += x.err.Error()
		} else {
			line += fmt.Sprint(x.status)
		}
		if len(x.wwwAuthenticate) > 0 {
			line += fmt.Sprintf(" WWW-Authenticate %q", x.wwwAuthenticate)
		}
		if x.form != nil {
			line += fmt.Sprintf(" Authorization %q form %v scope %q error %q", x.authorization, x.form, x.tokenScope, x.tokenError)
		}
		lines = append(lines, line)
	}
	return "  " + strings.Join(lines, "\n  ")
}

// cimdDocServer serves client metadata documents over https on
// 127.0.0.1 with a certificate of a throwaway CA and counts the requests
// of each path.
type cimdDocServer struct {
	*httptest.Server

	mu    sync.Mutex
	docs  map[string]string
	count map[string]int
}

// newCIMDDocServer is a document server on a port of its own.
func newCIMDDocServer(t *testing.T, ca *cimdCA) *cimdDocServer {
	t.Helper()
	d, err := listenCIMDDocServer(t, ca, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// listenCIMDDocServer is a document server listening at addr.
func listenCIMDDocServer(t *testing.T, ca *cimdCA, addr string) (*cimdDocServer, error) {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	d := &cimdDocServer{docs: map[string]string{}, count: map[string]int{}}
	d.Server = &httptest.Server{Listener: l, Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.mu.Lock()
		d.count[r.URL.Path]++
		doc, ok := d.docs[r.URL.Path]
		d.mu.Unlock()
		if !ok || r.Method != http.MethodGet {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, doc)
	}), ReadHeaderTimeout: 10 * time.Second}}
	d.TLS = &tls.Config{Certificates: []tls.Certificate{ca.leaf}, MinVersion: tls.VersionTLS12}
	d.StartTLS()
	t.Cleanup(d.Close)
	if !strings.HasPrefix(d.URL, "https://127.0.0.1:") {
		t.Fatalf("the document server listens at %s, want https://127.0.0.1:…", d.URL)
	}
	// The chain is good: a client trusting only the CA accepts it (a
	// path without a document, not counted as any document's hit).
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool}}
	defer tr.CloseIdleConnections()
	res, err := (&http.Client{Timeout: 10 * time.Second, Transport: tr}).Get(d.URL + "/probe")
	if err != nil {
		t.Fatalf("the throwaway CA's certificate is not accepted: %v", err)
	}
	res.Body.Close()
	return d, nil
}

func (d *cimdDocServer) serve(path, doc string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.docs[path] = doc
}

func (d *cimdDocServer) hits(path string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.count[path]
}

// cimdCA is a throwaway CA (ECDSA P-256) and a server certificate for
// 127.0.0.1 it signs; file holds the CA's certificate (PEM) for
// SSL_CERT_FILE.
type cimdCA struct {
	file string
	leaf tls.Certificate
	pool *x509.CertPool
}

func newCIMDCA(t *testing.T) *cimdCA {
	t.Helper()
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), cryptorand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "oauth2kit e2e throwaway CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, MaxPathLenZero: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(cryptorand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), cryptorand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(cryptorand.Reader, leafTmpl, ca, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	c := &cimdCA{
		file: filepath.Join(t.TempDir(), "ca.pem"),
		leaf: tls.Certificate{Certificate: [][]byte{leafDER}, PrivateKey: leafKey},
		pool: x509.NewCertPool(),
	}
	c.pool.AddCert(ca)
	if err := os.WriteFile(c.file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return c
}
