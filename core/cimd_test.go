package core_test

// Client ID metadata documents (draft-ietf-oauth-client-id-metadata-document,
// SECURITY.md R65–R66): documents are served by an httptest TLS server on
// loopback, which the fetcher reaches only with AllowLoopbackForTests.
// Every test checks the wire and that nothing was stored: a CIMD client
// is never a row of the client table, and a refusal leaves no grant.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"html"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oauth2kit/oauth2kit/core"
	"github.com/oauth2kit/oauth2kit/core/memstore"
)

// cimdRedirect is the redirect URI of the test documents: the Go MCP
// SDK's loopback callback.
const cimdRedirect = "http://127.0.0.1:33418/callback"

// cimdStart is the env clock's start (newEnv's), for headers computed in
// a handler without reading e.now from another goroutine.
var cimdStart = time.Unix(1_800_000_000, 0)

// cimdServer serves client metadata documents over TLS on loopback and
// counts requests and connections.
type cimdServer struct {
	*httptest.Server
	hits  atomic.Int64 // requests that reached a handler
	conns atomic.Int64 // TCP connections accepted
}

func newCIMDServer(t *testing.T, h func(s *cimdServer, w http.ResponseWriter, r *http.Request)) *cimdServer {
	t.Helper()
	s := &cimdServer{}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		h(s, w, r)
	}))
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.conns.Add(1)
		}
	}
	s.StartTLS()
	t.Cleanup(s.Close)
	if id := s.id(); len(id) > 128 {
		t.Fatalf("client id %q longer than 128 bytes", id)
	}
	return s
}

// id is the client_id naming the server's document.
func (s *cimdServer) id() string { return s.URL + "/client.json" }

// tls trusts the test server's certificate only.
func (s *cimdServer) tls() *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(s.Certificate())
	return &tls.Config{RootCAs: pool}
}

// cimdDoc is a valid document for id (as the Go MCP SDK publishes one),
// changed by mod.
func cimdDoc(id string, mod func(m map[string]any)) []byte {
	m := map[string]any{
		"client_id":                  id,
		"client_name":                "MCP Test",
		"redirect_uris":              []string{cimdRedirect},
		"token_endpoint_auth_method": "none",
		"grant_types":                []string{"authorization_code", "refresh_token"},
		"response_types":             []string{"code"},
	}
	if mod != nil {
		mod(m)
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

// serveDoc answers with the valid document for the URL requested, with
// the given header lines ("Cache-Control", "max-age=60", ...).
func serveDoc(hdr ...string) func(s *cimdServer, w http.ResponseWriter, r *http.Request) {
	return func(s *cimdServer, w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(hdr); i += 2 {
			w.Header().Set(hdr[i], hdr[i+1])
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(cimdDoc("https://"+r.Host+r.URL.RequestURI(), nil))
	}
}

// withCIMD turns CIMD on for the documents of s.
func withCIMD(s *cimdServer) func(*core.Config) {
	return func(c *core.Config) {
		c.CIMD = core.CIMD{Enabled: true, AllowLoopbackForTests: true, TLS: s.tls()}
	}
}

// consentSeen is what the consent page was given.
type consentSeen struct {
	clientID, clientName, redirectHost string
	unverified                         bool
}

// cimdAuth is consentAuth recording every consent step.
type cimdAuth struct {
	consentAuth
	mu   sync.Mutex
	seen []consentSeen
}

func (a *cimdAuth) Consent(w core.Responder, r core.Request, ar *core.AuthorizationRequest) {
	a.mu.Lock()
	a.seen = append(a.seen, consentSeen{ar.ClientID, ar.ClientName, ar.RedirectHost, ar.Unverified})
	a.mu.Unlock()
	a.consentAuth.Consent(w, r, ar)
}

func (a *cimdAuth) consents() []consentSeen {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.seen)
}

// newCIMDEnv is newEnv with CIMD on for the documents of s (and mod), its
// Authenticator a cimdAuth.
func newCIMDEnv(t *testing.T, s *cimdServer, mod ...func(*core.Config)) (*env, *cimdAuth) {
	t.Helper()
	e := newEnv(t, true, append([]func(*core.Config){withCIMD(s)}, mod...)...)
	a := &cimdAuth{consentAuth: consentAuth{testAuth{srv: &e.srv}}}
	srv, err := core.New(e.srv.Config(), e.store, a)
	if err != nil {
		t.Fatal(err)
	}
	e.srv = srv
	return e, a
}

// wantNothingStored asserts that the client table still holds newEnv's two
// clients only, and that no code or refresh token was stored.
func (e *env) wantNothingStored() {
	e.t.Helper()
	cs, err := e.store.ListClients(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	var ids []string
	for _, c := range cs {
		ids = append(ids, c.ID)
	}
	if !slices.Equal(ids, []string{"conf", "pub"}) {
		e.t.Errorf("clients stored: %q, want [conf pub]", ids)
	}
	if n := e.grantsCount(); n != 0 {
		e.t.Errorf("%d codes stored", n)
	}
	if n := e.refreshCount(); n != 0 {
		e.t.Errorf("%d refresh tokens stored", n)
	}
}

// wantCIMDRefusal asserts the authorize answer to an unusable document:
// a 400 error page with invalid_client naming the metadata document (and
// reason, when given), no redirect.
func wantCIMDRefusal(t *testing.T, w *fakeResp, reason string) {
	t.Helper()
	wantErrorPage(t, w, 400)
	text := html.UnescapeString(string(w.body))
	if !strings.Contains(text, core.ErrInvalidClient) {
		t.Errorf("error page lacks %s: %s", core.ErrInvalidClient, text)
	}
	if !strings.Contains(text, "client metadata document") {
		t.Errorf("error page does not name the client metadata document: %s", text)
	}
	if !strings.Contains(text, reason) {
		t.Errorf("error page lacks %q: %s", reason, text)
	}
}

// cimdCode runs authorize, login and (when asked) consent for client id
// and returns the code; consent reports whether a consent page came.
func (e *env) cimdCode(id string) (code string, consent bool) {
	e.t.Helper()
	page := e.authorize(codeQuery(id, cimdRedirect, "read", "st"))
	if page.status != 200 {
		e.t.Fatalf("authorize: %d %s", page.status, page.body)
	}
	w := e.login(page, "alice", "pw")
	if w.status == 200 {
		consent = true
		wantPageHeaders(e.t, w)
		f := hidden(e.t, w.body)
		f.Set("decision", "approve")
		w = e.post("/oauth2/login", f, nil)
	}
	q := wantCodeRedirect(e.t, w, cimdRedirect, "st")
	return q.Get("code"), consent
}

func cimdTokenForm(code string) url.Values {
	return url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {cimdRedirect}, "code_verifier": {verifier}}
}

// TestCIMDFlow: the whole flow for a client named by its metadata
// document, as the Go MCP SDK runs it (Basic with the URL-encoded client_id
// and an empty secret). The consent page is told the client is unverified
// and where the code goes; consent is asked at every authorization unless
// CIMD.RememberConsent; the client is never stored; the document is
// fetched once for the whole flow (cached 5 minutes without headers).
func TestCIMDFlow(t *testing.T) {
	for _, remember := range []bool{false, true} {
		t.Run("RememberConsent="+strconv.FormatBool(remember), func(t *testing.T) {
			s := newCIMDServer(t, serveDoc())
			e, a := newCIMDEnv(t, s, func(c *core.Config) { c.CIMD.RememberConsent = remember })
			id := s.id()

			page := e.authorize(codeQuery(id, cimdRedirect, "read", "st"))
			if page.status != 200 {
				t.Fatalf("authorize: %d %s", page.status, page.body)
			}
			w := e.login(page, "alice", "pw")
			if w.status != 200 {
				t.Fatalf("login: %d %s, want the consent page", w.status, w.body)
			}
			want := consentSeen{clientID: id, clientName: "MCP Test", redirectHost: "127.0.0.1:33418", unverified: true}
			if got := a.consents(); len(got) != 1 || got[0] != want {
				t.Fatalf("consent steps %+v, want [%+v]", got, want)
			}
			f := hidden(t, w.body)
			f.Set("decision", "approve")
			q := wantCodeRedirect(t, e.post("/oauth2/login", f, nil), cimdRedirect, "st")

			tw := e.token(cimdTokenForm(q.Get("code")), http.Header{"Authorization": {core.EncodeBasic(id, "")}})
			if tw.status != 200 {
				t.Fatalf("token: %d %s", tw.status, tw.body)
			}
			m := tw.json(t)
			at, _ := m["access_token"].(string)
			rt, _ := m["refresh_token"].(string)
			info, err := e.srv.CheckToken(context.Background(), at)
			if err != nil || info.ClientID != id || info.UserID != "alice" || info.Scope != "read" {
				t.Fatalf("CheckToken: %+v %v", info, err)
			}
			rw := e.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, http.Header{"Authorization": {core.EncodeBasic(id, "")}})
			if rw.status != 200 {
				t.Fatalf("refresh: %d %s", rw.status, rw.body)
			}

			// The second authorization.
			_, consent := e.cimdCode(id)
			if consent == remember {
				t.Errorf("second authorization: consent page %v with RememberConsent %v", consent, remember)
			}
			saved, err := e.store.GetConsent(context.Background(), "alice", id)
			if remember && (err != nil || saved != "read") {
				t.Errorf("RememberConsent: consent %q %v, want read", saved, err)
			}
			if !remember && saved != "" {
				t.Errorf("consent %q remembered for a CIMD client", saved)
			}

			cs, _ := e.store.ListClients(context.Background())
			if len(cs) != 2 {
				t.Errorf("%d clients stored, want newEnv's 2", len(cs))
			}
			if n := s.hits.Load(); n != 1 {
				t.Errorf("document fetched %d times, want 1 (cached)", n)
			}
		})
	}
}

// TestCIMDRefusedClientAuthKeepsCode: a token request whose client
// authentication fails (a secret for a client that has none) is refused
// with 401 invalid_client before the code is looked at: the right request
// still redeems it.
func TestCIMDRefusedClientAuthKeepsCode(t *testing.T) {
	s := newCIMDServer(t, serveDoc())
	e, _ := newCIMDEnv(t, s)
	id := s.id()
	code, _ := e.cimdCode(id)

	for _, c := range []struct {
		form   url.Values
		hdr    http.Header
		status int
	}{
		{nil, http.Header{"Authorization": {core.EncodeBasic(id, "wrongsecret")}}, 401},
		{url.Values{"client_id": {id}, "client_secret": {"wrongsecret"}}, nil, 400},
		// The original library's "Basic <raw secret>" with client_id in
		// the body: never for a public client.
		{url.Values{"client_id": {id}}, http.Header{"Authorization": {"Basic c2VjcmV0"}}, 401},
	} {
		f := cimdTokenForm(code)
		for k, v := range c.form {
			f[k] = v
		}
		w := e.token(f, c.hdr)
		wantTokenError(t, w, c.status, core.ErrInvalidClient)
		if c.status == 401 && !strings.HasPrefix(w.hdr.Get("WWW-Authenticate"), "Basic ") {
			t.Errorf("WWW-Authenticate %q", w.hdr.Get("WWW-Authenticate"))
		}
	}
	if n := e.grantsCount(); n != 1 {
		t.Fatalf("%d pending codes after the refusals, want 1", n)
	}
	w := e.token(cimdTokenForm(code), http.Header{"Authorization": {core.EncodeBasic(id, "")}})
	if w.status != 200 {
		t.Fatalf("token after the refusals: %d %s", w.status, w.body)
	}
	// Used now: a replay is invalid_grant.
	wantTokenError(t, e.token(cimdTokenForm(code), http.Header{"Authorization": {core.EncodeBasic(id, "")}}), 400, core.ErrInvalidGrant)
}

// TestCIMDDocumentRefusals: every unusable document (or answer) is a 400
// error page with invalid_client naming the metadata document, never a
// redirect to the redirect URI it claims; nothing is stored.
func TestCIMDDocumentRefusals(t *testing.T) {
	serve := func(mod func(id string, m map[string]any)) func(*cimdServer, http.ResponseWriter, *http.Request) {
		return func(s *cimdServer, w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(cimdDoc(s.id(), func(m map[string]any) { mod(s.id(), m) }))
		}
	}
	padded := func(n int) func(string, map[string]any) {
		return func(_ string, m map[string]any) { m["padding"] = strings.Repeat("x", n) }
	}
	var realHits atomic.Int64
	for _, c := range []struct {
		name   string
		h      func(*cimdServer, http.ResponseWriter, *http.Request)
		reason string // in the error page
		log    string // in the server log
		slow   bool
	}{
		{name: "client_id differs", h: serve(func(id string, m map[string]any) {
			m["client_id"] = strings.TrimSuffix(id, "client.json") + "other.json"
		}),
			reason: "client_id is not its URL"},
		{name: "client_id missing", h: serve(func(_ string, m map[string]any) { delete(m, "client_id") }), reason: "client_id is not its URL"},
		{name: "client_id with a trailing slash", h: serve(func(id string, m map[string]any) { m["client_id"] = id + "/" }), reason: "client_id is not its URL"},
		{name: "oversized with Content-Length", reason: "larger than 5120 bytes", log: "announced", h: func(s *cimdServer, w http.ResponseWriter, r *http.Request) {
			body := cimdDoc(s.id(), func(m map[string]any) { m["padding"] = strings.Repeat("x", 6000) })
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			_, _ = w.Write(body)
		}},
		{name: "oversized chunked", reason: "larger than 5120 bytes", log: "over 5120 bytes", h: func(s *cimdServer, w http.ResponseWriter, r *http.Request) {
			body := cimdDoc(s.id(), func(m map[string]any) { m["padding"] = strings.Repeat("x", 6000) })
			for len(body) > 0 {
				n := min(len(body), 1000)
				_, _ = w.Write(body[:n])
				w.(http.Flusher).Flush() // no Content-Length: chunked
				body = body[n:]
			}
		}},
		{name: "302 to a valid document", reason: "did not answer 200", log: "302", h: func(s *cimdServer, w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/real.json" {
				realHits.Add(1)
				_, _ = w.Write(cimdDoc(s.id(), nil))
				return
			}
			http.Redirect(w, r, "/real.json", http.StatusFound)
		}},
		{name: "404", reason: "did not answer 200", log: "404", h: func(s *cimdServer, w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }},
		{name: "500", reason: "did not answer 200", log: "500", h: func(s *cimdServer, w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(500)
			_, _ = w.Write(cimdDoc(s.id(), nil))
		}},
		{name: "slow", slow: true, reason: "could not be fetched", h: func(s *cimdServer, w http.ResponseWriter, r *http.Request) {
			select {
			case <-time.After(time.Second):
				_, _ = w.Write(cimdDoc(s.id(), nil))
			case <-r.Context().Done():
				// The fetcher gave up and closed the connection. Any answer
				// now, even the empty 200 of a handler that returns, can
				// still win the race with the close and be read (net/http
				// delivers a response that arrives as the request is
				// cancelled): abort without one.
				panic(http.ErrAbortHandler)
			}
		}},
		{name: "not JSON", reason: "not a JSON object", h: func(s *cimdServer, w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			_, _ = w.Write([]byte("<html>client</html>"))
		}},
		{name: "JSON array", reason: "not a JSON object", h: func(s *cimdServer, w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte(`[` + string(cimdDoc(s.id(), nil)) + `]`))
		}},
		{name: "member of the wrong type", reason: "not a JSON object", h: serve(func(_ string, m map[string]any) { m["redirect_uris"] = cimdRedirect })},
		{name: "client_secret", reason: "client secret", h: serve(func(_ string, m map[string]any) { m["client_secret"] = "s3cret" })},
		{name: "client_secret empty", reason: "client secret", h: serve(func(_ string, m map[string]any) { m["client_secret"] = "" })},
		{name: "client_secret_expires_at", reason: "client secret", h: serve(func(_ string, m map[string]any) { m["client_secret_expires_at"] = 0 })},
		{name: "client_secret_basic", reason: "cannot use a shared secret", h: serve(func(_ string, m map[string]any) { m["token_endpoint_auth_method"] = "client_secret_basic" })},
		{name: "client_secret_post", reason: "cannot use a shared secret", h: serve(func(_ string, m map[string]any) { m["token_endpoint_auth_method"] = "client_secret_post" })},
		{name: "private_key_jwt without keys", reason: "private_key_jwt", h: serve(func(_ string, m map[string]any) { m["token_endpoint_auth_method"] = "private_key_jwt" })},
		{name: "no redirect_uris", reason: "no redirect_uris", h: serve(func(_ string, m map[string]any) { delete(m, "redirect_uris") })},
		{name: "empty redirect_uris", reason: "no redirect_uris", h: serve(func(_ string, m map[string]any) { m["redirect_uris"] = []string{} })},
		{name: "redirect URI with a fragment", reason: "fragment", h: serve(func(_ string, m map[string]any) {
			m["redirect_uris"] = []string{cimdRedirect, cimdRedirect + "#x"}
		})},
		{name: "private-use scheme, application_type web", reason: "web client", h: serve(func(_ string, m map[string]any) {
			m["redirect_uris"] = []string{cimdRedirect, "com.example.app:/cb"}
			m["application_type"] = "web"
		})},
		{name: "private-use scheme, no application_type", reason: "web client", h: serve(func(_ string, m map[string]any) {
			m["redirect_uris"] = []string{cimdRedirect, "com.example.app:/cb"}
		})},
		{name: "http redirect URI off loopback", reason: "loopback", h: serve(func(_ string, m map[string]any) {
			m["redirect_uris"] = []string{cimdRedirect, "http://evil.example/cb"}
		})},
		{name: "client_credentials", reason: "confidential", h: serve(func(_ string, m map[string]any) {
			m["grant_types"] = []string{"authorization_code", "client_credentials"}
		})},
		{name: "client_name with a bidi override", reason: "client_name", h: serve(func(_ string, m map[string]any) { m["client_name"] = "MCP \u202eTest" })},
		{name: "padding just over the cap", reason: "larger than 5120 bytes", h: serve(padded(5120))},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.slow {
				defer core.SetCIMDTimeout(200 * time.Millisecond)()
			}
			realHits.Store(0)
			var logs logBuf
			s := newCIMDServer(t, c.h)
			e, a := newCIMDEnv(t, s, withLog(&logs))
			start := time.Now()
			w := e.authorize(codeQuery(s.id(), cimdRedirect, "read", "st"))
			if c.slow && time.Since(start) >= time.Second {
				t.Errorf("a slow document took %v: the fetch timeout did not apply", time.Since(start))
			}
			wantCIMDRefusal(t, w, c.reason)
			if n := s.hits.Load(); n != 1 {
				t.Errorf("%d requests to the document server, want 1", n)
			}
			if n := realHits.Load(); n != 0 {
				t.Errorf("the redirect was followed (%d fetches of its target)", n)
			}
			if !strings.Contains(logs.String(), "client metadata document") || !strings.Contains(logs.String(), c.log) {
				t.Errorf("log lacks %q:\n%s", c.log, logs.String())
			}
			if len(a.consents()) != 0 {
				t.Errorf("consent was asked")
			}
			e.wantNothingStored()
		})
	}
}

// TestCIMDSizeLimit: a document of exactly 5 KiB is accepted, one byte
// more is refused (R66), whether announced or not.
func TestCIMDSizeLimit(t *testing.T) {
	for _, c := range []struct {
		extra   int
		chunked bool
		ok      bool
	}{{0, false, true}, {0, true, true}, {1, false, false}, {1, true, false}} {
		t.Run(strconv.Itoa(5120+c.extra)+" chunked="+strconv.FormatBool(c.chunked), func(t *testing.T) {
			s := newCIMDServer(t, func(s *cimdServer, w http.ResponseWriter, r *http.Request) {
				base := cimdDoc(s.id(), func(m map[string]any) { m["padding"] = "" })
				body := cimdDoc(s.id(), func(m map[string]any) { m["padding"] = strings.Repeat("x", 5120+c.extra-len(base)) })
				if len(body) != 5120+c.extra {
					t.Errorf("document of %d bytes", len(body))
				}
				if !c.chunked {
					w.Header().Set("Content-Length", strconv.Itoa(len(body)))
				}
				_, _ = w.Write(body[:100])
				w.(http.Flusher).Flush()
				_, _ = w.Write(body[100:])
			})
			e, _ := newCIMDEnv(t, s)
			w := e.authorize(codeQuery(s.id(), cimdRedirect, "read", "st"))
			if c.ok {
				if w.status != 200 {
					t.Fatalf("authorize: %d %s", w.status, w.body)
				}
			} else {
				wantCIMDRefusal(t, w, "larger than 5120 bytes")
			}
			e.wantNothingStored()
		})
	}
}

// TestCIMDURLShape: the client_id URL rules (https, a path, no query,
// fragment, userinfo or dot segments, at most 128 bytes), through
// CheckCIMDURL and through authorize, where a refused URL is never
// fetched, though the server would answer every URL with a valid
// document.
func TestCIMDURLShape(t *testing.T) {
	s := newCIMDServer(t, serveDoc())
	e, _ := newCIMDEnv(t, s)
	base := s.URL
	hostport := strings.TrimPrefix(base, "https://")
	long := func(n int) string { return base + "/" + strings.Repeat("a", n-len(base)-1) }
	for _, c := range []struct {
		id string
		ok bool
	}{
		{base + "/client.json", true},
		{base + "/a/b/client.json", true},
		{base + "/a..b/c.json", true},
		{base + "/.well-known/client", true},
		{long(128), true},
		{"https://app.example.com/oauth/client-metadata.json", true},

		{base + "/client.json?x=1", false},
		{base + "/client.json?", false},
		{base + "/", false},
		{base, false},
		{base + "/a/../client.json", false},
		{base + "/../client.json", false},
		{base + "/./client.json", false},
		{base + "/a/.", false},
		{base + "/a/%2e%2e/client.json", false},
		{base + "/a/%2E%2E/client.json", false},
		{base + "/%2e/client.json", false},
		{base + "/a/.%2e/client.json", false},
		{base + "/a/%2e./client.json", false},
		{"https://user@" + hostport + "/client.json", false},
		{"https://user:pw@" + hostport + "/client.json", false},
		{base + "/client.json#f", false},
		{base + "/client.json#", false},
		{long(129), false},
		{"https:///client.json", false},
		{"https://" + hostport + "\x00/client.json", false},
	} {
		err := core.CheckCIMDURL(c.id)
		if (err == nil) != c.ok {
			t.Errorf("CheckCIMDURL(%q) = %v, want ok=%v", c.id, err, c.ok)
		}
		if c.ok || !strings.Contains(c.id, hostport) || strings.ContainsRune(c.id, 0) {
			continue // not served here, or refused as a parameter first
		}
		w := e.authorize(codeQuery(c.id, cimdRedirect, "read", "st"))
		if w.status != 400 || !strings.Contains(html.UnescapeString(string(w.body)), "client metadata document") {
			t.Errorf("authorize with client_id %q: %d %s", c.id, w.status, w.body)
		}
		wantErrorPage(t, w, 400)
	}
	if n := s.hits.Load(); n != 0 {
		t.Errorf("%d refused URLs were fetched", n)
	}
	e.wantNothingStored()
}

// TestCIMDLoopbackRefusedWithoutTestSwitch: the fetcher's SSRF guard
// refuses the loopback test server (and its port) before connecting:
// no connection, no request, the refusal logged.
func TestCIMDLoopbackRefusedWithoutTestSwitch(t *testing.T) {
	s := newCIMDServer(t, serveDoc())
	var logs logBuf
	e, _ := newCIMDEnv(t, s, withLog(&logs), func(c *core.Config) { c.CIMD.AllowLoopbackForTests = false })
	for _, id := range []string{s.id(), strings.Replace(s.id(), "127.0.0.1", "localhost", 1)} {
		w := e.authorize(codeQuery(id, cimdRedirect, "read", "st"))
		wantCIMDRefusal(t, w, "could not be fetched")
	}
	if h, c := s.hits.Load(), s.conns.Load(); h != 0 || c != 0 {
		t.Errorf("%d requests, %d connections reached the loopback server", h, c)
	}
	if !strings.Contains(logs.String(), "prohibited") {
		t.Errorf("log does not show the SSRF guard's refusal:\n%s", logs.String())
	}
	e.wantNothingStored()
}

// TestCIMDHTTPClientIDIsUnknown: an http URL is an ordinary client_id,
// unknown here: never fetched.
func TestCIMDHTTPClientIDIsUnknown(t *testing.T) {
	s := newCIMDServer(t, serveDoc())
	e, _ := newCIMDEnv(t, s)
	for _, id := range []string{"http://" + strings.TrimPrefix(s.id(), "https://"), "HTTPS://" + strings.TrimPrefix(s.id(), "https://")} {
		w := e.authorize(codeQuery(id, cimdRedirect, "read", "st"))
		wantErrorPage(t, w, 400)
		text := html.UnescapeString(string(w.body))
		if !strings.Contains(text, core.ErrInvalidClient) || !strings.Contains(text, "unknown client") {
			t.Errorf("%s: %s", id, text)
		}
		tw := e.token(cimdTokenForm("x"), http.Header{"Authorization": {core.EncodeBasic(id, "")}})
		wantTokenError(t, tw, 401, core.ErrInvalidClient)
	}
	if n := s.hits.Load(); n != 0 {
		t.Errorf("an http client_id was fetched %d times", n)
	}
	e.wantNothingStored()
}

// TestCIMDCaching: a document is kept for its max-age (or until Expires),
// by the server's clock, never longer than CIMD.MaxCacheAge, 5 minutes
// without caching headers, and not at all with no-store / no-cache.
func TestCIMDCaching(t *testing.T) {
	type step struct {
		advance time.Duration
		hits    int64
	}
	for _, c := range []struct {
		name     string
		hdr      []string
		maxCache time.Duration
		steps    []step
	}{
		{"max-age=60", []string{"Cache-Control", "max-age=60"}, 0, []step{{0, 1}, {0, 1}, {59 * time.Second, 1}, {2 * time.Second, 2}, {0, 2}}},
		{"public, max-age=60", []string{"Cache-Control", "public, max-age=60"}, 0, []step{{0, 1}, {59 * time.Second, 1}, {2 * time.Second, 2}}},
		{"no-store", []string{"Cache-Control", "no-store"}, 0, []step{{0, 1}, {0, 2}, {0, 3}}},
		{"no-cache", []string{"Cache-Control", "no-cache"}, 0, []step{{0, 1}, {0, 2}}},
		{"max-age=0", []string{"Cache-Control", "max-age=0"}, 0, []step{{0, 1}, {0, 2}}},
		{"no headers", nil, 0, []step{{0, 1}, {4*time.Minute + 59*time.Second, 1}, {2 * time.Second, 2}}},
		{"Expires", []string{"Expires", cimdStart.Add(2 * time.Minute).UTC().Format(http.TimeFormat)}, 0,
			[]step{{0, 1}, {time.Minute + 59*time.Second, 1}, {2 * time.Second, 2}, {0, 3}}},
		{"Expires in the past", []string{"Expires", cimdStart.Add(-time.Minute).UTC().Format(http.TimeFormat)}, 0, []step{{0, 1}, {0, 2}}},
		{"MaxCacheAge caps max-age", []string{"Cache-Control", "max-age=31536000"}, 10 * time.Minute,
			[]step{{0, 1}, {9*time.Minute + 59*time.Second, 1}, {2 * time.Second, 2}}},
		{"default MaxCacheAge is 1 h", []string{"Cache-Control", "max-age=31536000"}, 0,
			[]step{{0, 1}, {59 * time.Minute, 1}, {2 * time.Minute, 2}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newCIMDServer(t, serveDoc(c.hdr...))
			e, _ := newCIMDEnv(t, s, func(cfg *core.Config) { cfg.CIMD.MaxCacheAge = c.maxCache })
			for i, st := range c.steps {
				e.now = e.now.Add(st.advance)
				w := e.authorize(codeQuery(s.id(), cimdRedirect, "read", "st"))
				if w.status != 200 {
					t.Fatalf("step %d: authorize %d %s", i, w.status, w.body)
				}
				if n := s.hits.Load(); n != st.hits {
					t.Errorf("step %d (+%v): %d fetches, want %d", i, st.advance, n, st.hits)
				}
			}
			e.wantNothingStored()
		})
	}
	t.Run("two whole flows, max-age=60", func(t *testing.T) {
		s := newCIMDServer(t, serveDoc("Cache-Control", "max-age=60"))
		e, _ := newCIMDEnv(t, s)
		for range 2 {
			code, _ := e.cimdCode(s.id())
			if w := e.token(cimdTokenForm(code), http.Header{"Authorization": {core.EncodeBasic(s.id(), "")}}); w.status != 200 {
				t.Fatalf("token: %d %s", w.status, w.body)
			}
		}
		if n := s.hits.Load(); n != 1 {
			t.Errorf("%d fetches for two flows within max-age, want 1", n)
		}
	})
}

// TestCIMDErrorNotCached: a failed fetch or a refused document is not
// remembered: once the document is fixed, the next authorization works
// (and that one is cached).
func TestCIMDErrorNotCached(t *testing.T) {
	for _, c := range []struct {
		name, reason string
		bad          func(s *cimdServer, w http.ResponseWriter)
	}{
		{"500", "did not answer 200", func(s *cimdServer, w http.ResponseWriter) { w.WriteHeader(500) }},
		{"invalid document", "client secret", func(s *cimdServer, w http.ResponseWriter) {
			w.Header().Set("Cache-Control", "max-age=3600")
			_, _ = w.Write(cimdDoc(s.id(), func(m map[string]any) { m["client_secret"] = "x" }))
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newCIMDServer(t, func(s *cimdServer, w http.ResponseWriter, r *http.Request) {
				if s.hits.Load() == 1 {
					w.Header().Set("Cache-Control", "max-age=3600")
					c.bad(s, w)
					return
				}
				serveDoc("Cache-Control", "max-age=60")(s, w, r)
			})
			e, _ := newCIMDEnv(t, s)
			wantCIMDRefusal(t, e.authorize(codeQuery(s.id(), cimdRedirect, "read", "st")), c.reason)
			for i := range 2 {
				if w := e.authorize(codeQuery(s.id(), cimdRedirect, "read", "st")); w.status != 200 {
					t.Fatalf("authorization %d after the error: %d %s", i+2, w.status, w.body)
				}
			}
			if n := s.hits.Load(); n != 2 {
				t.Errorf("%d fetches, want 2 (the error, then the cached document)", n)
			}
			e.wantNothingStored()
		})
	}
}

// TestCIMDConcurrentFetchMerged: concurrent authorizations of one
// uncached document share one fetch.
func TestCIMDConcurrentFetchMerged(t *testing.T) {
	const n = 8
	var started sync.WaitGroup
	started.Add(n)
	release := make(chan struct{})
	s := newCIMDServer(t, func(s *cimdServer, w http.ResponseWriter, r *http.Request) {
		<-release
		serveDoc("Cache-Control", "max-age=60")(s, w, r)
	})
	e, _ := newCIMDEnv(t, s)
	go func() {
		// Every authorization has started (and, 200 ms on, is waiting on
		// the one fetch) before the document is answered.
		started.Wait()
		time.Sleep(200 * time.Millisecond)
		close(release)
	}()
	var done sync.WaitGroup
	statuses := make([]int, n)
	query := codeQuery(s.id(), cimdRedirect, "read", "st").Encode()
	for i := range n {
		done.Add(1)
		go func() {
			defer done.Done()
			started.Done()
			w := newResp()
			e.srv.Handle(w, &fakeReq{method: "GET", path: "/oauth2/authorize", query: query, hdr: http.Header{}})
			statuses[i] = w.status
		}()
	}
	done.Wait()
	for i, st := range statuses {
		if st != 200 {
			t.Errorf("authorization %d: %d", i, st)
		}
	}
	if h := s.hits.Load(); h != 1 {
		t.Errorf("%d fetches for %d concurrent authorizations, want 1", h, n)
	}
	e.wantNothingStored()
}

// TestCIMDMetadataMember: the authorization server metadata announces
// client_id_metadata_document_supported only with CIMD on.
func TestCIMDMetadataMember(t *testing.T) {
	s := newCIMDServer(t, serveDoc())
	on, _ := newCIMDEnv(t, s)
	if v, ok := metadata(t, on)["client_id_metadata_document_supported"]; !ok || v != true {
		t.Errorf("CIMD on: client_id_metadata_document_supported = %v (present %v)", v, ok)
	}
	off := newEnv(t, true)
	if v, ok := metadata(t, off)["client_id_metadata_document_supported"]; ok {
		t.Errorf("CIMD off: client_id_metadata_document_supported = %v", v)
	}
	if n := s.hits.Load(); n != 0 {
		t.Errorf("metadata fetched a document")
	}
}

// TestCIMDNeedsConsentPrompter: New refuses CIMD with an Authenticator
// that cannot ask for consent (such clients name themselves, R65).
func TestCIMDNeedsConsentPrompter(t *testing.T) {
	cfg := core.Config{
		Issuer: issuer,
		Keys:   core.Keys{CryptKey: []byte("0123456789abcdef0123456789abcdef"), SignKey: []byte("fedcba9876543210fedcba9876543210")},
		CIMD:   core.CIMD{Enabled: true},
	}
	var srv *core.Server
	if _, err := core.New(cfg, memstore.New(), &testAuth{srv: &srv}); err == nil || !strings.Contains(err.Error(), "ConsentPrompter") {
		t.Errorf("New with CIMD and no ConsentPrompter: %v", err)
	}
	if _, err := core.New(cfg, memstore.New(), &consentAuth{testAuth{srv: &srv}}); err != nil {
		t.Errorf("New with CIMD and a ConsentPrompter: %v", err)
	}
	cfg.CIMD.Enabled = false
	if _, err := core.New(cfg, memstore.New(), &testAuth{srv: &srv}); err != nil {
		t.Errorf("New without CIMD: %v", err)
	}
}
