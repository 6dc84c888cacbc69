package nethttp_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/oauth2kit/oauth2kit/adapters/nethttp"
	"github.com/oauth2kit/oauth2kit/core"
	"github.com/oauth2kit/oauth2kit/core/memstore"
)

// End-to-end: the unmodified golang.org/x/oauth2 client against the
// net/http mount. The browser part (login form, consent) is an http.Client
// with a cookie jar that submits the forms it is shown.

const (
	e2eUser     = "alice"
	e2ePassword = "s3cret-passw0rd"
	webID       = "web"
	webRedirect = "https://app.example.test/callback"
	nativeID    = "native"
	// The native client registers the loopback URI without a port and
	// listens on whatever port it got (RFC 8252 §7.3).
	nativeRegistered = "http://127.0.0.1/callback"
	nativeRedirect   = "http://127.0.0.1:53124/callback"
)

// e2eApp renders the login and consent pages.
type e2eApp struct{ srv *core.Server }

func (a *e2eApp) Login(w core.Responder, _ core.Request, ar *core.AuthorizationRequest) {
	a.page(w, "Sign in", ar, `<input name="username"><input type="password" name="password"><button>Sign in</button>`)
}

func (a *e2eApp) ProcessLogin(w core.Responder, r core.Request, ar *core.AuthorizationRequest) {
	if ar.Form.Get("username") != e2eUser || ar.Form.Get("password") != e2ePassword {
		a.page(w, "Sign in", ar, `<p>Wrong username or password.</p><input name="username"><input type="password" name="password"><button>Sign in</button>`)
		return
	}
	a.srv.SendGrant(w, r, ar, e2eUser, "")
}

func (a *e2eApp) Consent(w core.Responder, _ core.Request, ar *core.AuthorizationRequest) {
	a.page(w, "Allow "+ar.ClientName+"?", ar, `<p>Scope: `+html.EscapeString(ar.Scope)+`</p>`+
		`<button name="decision" value="approve">Allow</button><button name="decision" value="deny">Deny</button>`)
}

func (a *e2eApp) page(w core.Responder, title string, ar *core.AuthorizationRequest, fields string) {
	w.SetHeader("Content-Type", "text/html; charset=utf-8")
	_ = w.Send(200, []byte(`<!doctype html><title>`+html.EscapeString(title)+`</title><h1>`+html.EscapeString(title)+`</h1>`+
		`<form method="post" action="`+html.EscapeString(ar.ProcessLoginURL)+`">`+ar.HiddenFields()+fields+`</form>`))
}

type e2eServer struct {
	base      string
	webSecret string
	plain     *http.Client // for the client library and API calls
}

func startE2E(t *testing.T) *e2eServer {
	t.Helper()
	ts := httptest.NewUnstartedServer(nil)
	base := "http://" + ts.Listener.Addr().String()
	key := func() []byte {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			t.Fatal(err)
		}
		return b
	}
	store := memstore.New()
	app := &e2eApp{}
	srv, err := core.New(core.Config{
		Issuer: base,
		Keys:   core.Keys{CryptKey: key(), SignKey: key()},

		Scopes: []string{"read", "write"},
		Logger: slog.New(slog.DiscardHandler),
	}, store, app)
	if err != nil {
		t.Fatal(err)
	}
	app.srv = srv
	web, secret, err := core.NewClient(core.ClientSpec{ID: webID, Name: "Web App", RedirectURIs: []string{webRedirect}})
	if err != nil {
		t.Fatal(err)
	}
	store.AddClient(web)
	native, _, err := core.NewClient(core.ClientSpec{ID: nativeID, Name: "Native App", RedirectURIs: []string{nativeRegistered}, Public: true})
	if err != nil {
		t.Fatal(err)
	}
	store.AddClient(native)

	mux := http.NewServeMux()
	nethttp.Mount(mux, srv)
	mux.Handle("GET /api/me", nethttp.Middleware(srv)(http.HandlerFunc(protectedHandler)))
	ts.Config.Handler = mux
	ts.Start()
	t.Cleanup(ts.Close)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &e2eServer{base: base, webSecret: secret, plain: &http.Client{Transport: tr, Timeout: 15 * time.Second}}
}

var (
	formRe   = regexp.MustCompile(`<form method="post" action="([^"]*)">`)
	hiddenRe = regexp.MustCompile(`<input type="hidden" name="([^"]*)" value="([^"]*)">`)
)

// submit posts the form of page with the hidden fields plus extra, as a
// browser would.
func submit(t *testing.T, browser *http.Client, base string, page []byte, extra url.Values) *http.Response {
	t.Helper()
	m := formRe.FindSubmatch(page)
	if m == nil {
		t.Fatalf("no form on the page:\n%s", page)
	}
	f := url.Values{}
	for _, h := range hiddenRe.FindAllSubmatch(page, -1) {
		f.Set(html.UnescapeString(string(h[1])), html.UnescapeString(string(h[2])))
	}
	for k, v := range extra {
		f[k] = v
	}
	action, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	action, err = action.Parse(html.UnescapeString(string(m[1])))
	if err != nil {
		t.Fatal(err)
	}
	res, err := browser.PostForm(action.String(), f)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func readAll(t *testing.T, res *http.Response) []byte {
	t.Helper()
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// browse plays the user: it opens authURL, signs in, approves, and returns
// the code from the redirect after checking state and iss (RFC 9207).
func (e *e2eServer) browse(t *testing.T, authURL, redirect, state string) string {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	browser := &http.Client{
		Transport: e.plain.Transport, Jar: jar, Timeout: 15 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	res, err := browser.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	page := readAll(t, res)
	if res.StatusCode != 200 || !strings.Contains(string(page), "<h1>Sign in</h1>") {
		t.Fatalf("authorize: %d\n%s", res.StatusCode, page)
	}
	res = submit(t, browser, e.base, page, url.Values{"username": {e2eUser}, "password": {e2ePassword}})
	page = readAll(t, res)
	if res.StatusCode != 200 || !strings.Contains(string(page), "<h1>Allow ") {
		t.Fatalf("login: want the consent page, got %d\n%s", res.StatusCode, page)
	}
	res = submit(t, browser, e.base, page, url.Values{core.FieldDecision: {"approve"}})
	readAll(t, res)
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("consent: status %d, want 303", res.StatusCode)
	}
	loc, err := url.Parse(res.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != redirect {
		t.Fatalf("redirected to %s, want %s", got, redirect)
	}
	q := loc.Query()
	if q.Get("state") != state {
		t.Errorf("state = %q, want %q", q.Get("state"), state)
	}
	if iss := q.Get("iss"); iss != e.metadataIssuer(t) {
		t.Errorf("iss = %q, want the metadata issuer", iss)
	}
	if q.Get("code") == "" {
		t.Fatalf("no code in %s", loc)
	}
	return q.Get("code")
}

func (e *e2eServer) metadataIssuer(t *testing.T) string {
	t.Helper()
	res, err := e.plain.Get(e.base + "/.well-known/oauth-authorization-server")
	if err != nil {
		t.Fatal(err)
	}
	var md struct {
		Issuer string `json:"issuer"`
	}
	if err := json.Unmarshal(readAll(t, res), &md); err != nil {
		t.Fatal(err)
	}
	return md.Issuer
}

// me calls the protected API with client (which adds the token).
func (e *e2eServer) me(t *testing.T, client *http.Client) (int, map[string]string, http.Header) {
	t.Helper()
	res, err := client.Get(e.base + "/api/me")
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(t, res)
	var m map[string]string
	if res.StatusCode == 200 {
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatalf("/api/me: %s: %v", body, err)
		}
	}
	return res.StatusCode, m, res.Header
}

// clientPost posts form to an endpoint authenticating as the web client
// in the given style, as oauth2 does for the token endpoint.
func (e *e2eServer) clientPost(t *testing.T, path string, style oauth2.AuthStyle, form url.Values) (int, []byte) {
	t.Helper()
	f := url.Values{}
	for k, v := range form {
		f[k] = v
	}
	if style == oauth2.AuthStyleInParams {
		f.Set("client_id", webID)
		f.Set("client_secret", e.webSecret)
	}
	req, err := http.NewRequest("POST", e.base+path, strings.NewReader(f.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if style == oauth2.AuthStyleInHeader {
		req.SetBasicAuth(url.QueryEscape(webID), url.QueryEscape(e.webSecret))
	}
	res, err := e.plain.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, readAll(t, res)
}

func wantRetrieveError(t *testing.T, err error, code string) {
	t.Helper()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		t.Fatalf("err = %v, want an *oauth2.RetrieveError", err)
	}
	if re.ErrorCode != code {
		t.Errorf("error code %q, want %q (HTTP %d)", re.ErrorCode, code, re.Response.StatusCode)
	}
}

func TestOAuth2Client(t *testing.T) {
	styles := []struct {
		name  string
		style oauth2.AuthStyle
	}{
		{"AuthStyleInHeader", oauth2.AuthStyleInHeader},
		{"AuthStyleInParams", oauth2.AuthStyleInParams},
	}
	for _, st := range styles {
		t.Run(st.name, func(t *testing.T) {
			e := startE2E(t)
			conf := &oauth2.Config{
				ClientID:     webID,
				ClientSecret: e.webSecret,
				RedirectURL:  webRedirect,
				Scopes:       []string{"read", "write"},
				Endpoint: oauth2.Endpoint{
					AuthURL:   e.base + "/oauth2/authorize",
					TokenURL:  e.base + "/oauth2/token",
					AuthStyle: st.style,
				},
			}
			ctx := context.WithValue(t.Context(), oauth2.HTTPClient, e.plain)
			var tok, fresh *oauth2.Token

			ok := t.Run("CodeFlowWithPKCE", func(t *testing.T) {
				verifier := oauth2.GenerateVerifier()
				state := "state-" + st.name
				code := e.browse(t, conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier)), webRedirect, state)
				var err error
				tok, err = conf.Exchange(ctx, code, oauth2.VerifierOption(verifier))
				if err != nil {
					t.Fatalf("Exchange: %v", err)
				}
				if tok.TokenType != "Bearer" || tok.AccessToken == "" || tok.RefreshToken == "" {
					t.Fatalf("token: type %q, access %t, refresh %t", tok.TokenType, tok.AccessToken != "", tok.RefreshToken != "")
				}
				if d := time.Until(tok.Expiry); d < 59*time.Minute || d > 61*time.Minute {
					t.Errorf("expires in %v, want about 1h", d)
				}
				if s, _ := tok.Extra("scope").(string); s != "read write" {
					t.Errorf("scope = %q, want %q", s, "read write")
				}
				status, me, _ := e.me(t, conf.Client(ctx, tok))
				if status != 200 || me["sub"] != e2eUser || me["client_id"] != webID || me["scope"] != "read write" {
					t.Errorf("/api/me: %d %v", status, me)
				}
				// A verifier other than the one bound fails, and the code is
				// gone either way.
				if _, err := conf.Exchange(ctx, code, oauth2.VerifierOption(oauth2.GenerateVerifier())); err == nil {
					t.Error("a second exchange with another verifier succeeded")
				} else {
					wantRetrieveError(t, err, "invalid_grant")
				}
			})
			if !ok {
				return
			}

			ok = t.Run("RefreshExpiredToken", func(t *testing.T) {
				expired := &oauth2.Token{AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, TokenType: "Bearer", Expiry: time.Now().Add(-time.Minute)}
				src := conf.TokenSource(ctx, expired)
				var err error
				fresh, err = src.Token()
				if err != nil {
					t.Fatalf("refresh: %v", err)
				}
				if fresh.AccessToken == tok.AccessToken || fresh.RefreshToken == tok.RefreshToken || fresh.RefreshToken == "" {
					t.Fatal("the refresh did not rotate both tokens")
				}
				if s, _ := fresh.Extra("scope").(string); s != "read write" {
					t.Errorf("scope = %q, want %q", s, "read write")
				}
				// The source now serves the fresh token without asking again.
				again, err := src.Token()
				if err != nil || again.AccessToken != fresh.AccessToken {
					t.Errorf("the token source refreshed a valid token again (%v)", err)
				}
				status, me, _ := e.me(t, oauth2.NewClient(ctx, src))
				if status != 200 || me["sub"] != e2eUser {
					t.Errorf("/api/me with the refreshed token: %d %v", status, me)
				}
			})
			if !ok {
				return
			}

			ok = t.Run("Introspect", func(t *testing.T) {
				status, body := e.clientPost(t, "/oauth2/introspect", st.style, url.Values{"token": {fresh.AccessToken}})
				var m map[string]any
				if err := json.Unmarshal(body, &m); status != 200 || err != nil {
					t.Fatalf("introspect: %d %s", status, body)
				}
				want := map[string]any{"active": true, "sub": e2eUser, "client_id": webID, "scope": "read write", "token_type": "Bearer", "iss": e.base}
				for k, v := range want {
					if m[k] != v {
						t.Errorf("%s = %v, want %v", k, m[k], v)
					}
				}
				if exp, _ := m["exp"].(float64); int64(exp)-fresh.Expiry.Unix() < -2 || int64(exp)-fresh.Expiry.Unix() > 2 {
					t.Errorf("exp = %v, want about %d", m["exp"], fresh.Expiry.Unix())
				}
			})
			if !ok {
				return
			}

			t.Run("Revoke", func(t *testing.T) {
				status, body := e.clientPost(t, "/oauth2/revoke", st.style, url.Values{"token": {fresh.RefreshToken}, "token_type_hint": {"refresh_token"}})
				if status != 200 || len(body) != 0 {
					t.Fatalf("revoke: %d %q, want 200 and no body", status, body)
				}
				status, body = e.clientPost(t, "/oauth2/introspect", st.style, url.Values{"token": {fresh.AccessToken}})
				if status != 200 || string(body) != `{"active":false}` {
					t.Errorf("introspect after revocation: %d %s", status, body)
				}
				status, _, hdr := e.me(t, oauth2.NewClient(ctx, oauth2.StaticTokenSource(fresh)))
				if status != 401 || !strings.Contains(hdr.Get("WWW-Authenticate"), `error="invalid_token"`) {
					t.Errorf("/api/me after revocation: %d %q", status, hdr.Get("WWW-Authenticate"))
				}
				_, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: fresh.RefreshToken, Expiry: time.Now().Add(-time.Minute)}).Token()
				wantRetrieveError(t, err, "invalid_grant")
			})
		})
	}
}

func TestOAuth2ClientPublic(t *testing.T) {
	e := startE2E(t)
	conf := &oauth2.Config{
		ClientID:    nativeID,
		RedirectURL: nativeRedirect,
		Scopes:      []string{"read"},
		Endpoint: oauth2.Endpoint{
			AuthURL:   e.base + "/oauth2/authorize",
			TokenURL:  e.base + "/oauth2/token",
			AuthStyle: oauth2.AuthStyleInParams,
		},
	}
	ctx := context.WithValue(t.Context(), oauth2.HTTPClient, e.plain)

	if _, err := conf.Exchange(ctx, "no-such-code", oauth2.VerifierOption(oauth2.GenerateVerifier())); err == nil {
		t.Error("exchanging a made-up code succeeded")
	} else {
		wantRetrieveError(t, err, "invalid_grant")
	}

	verifier := oauth2.GenerateVerifier()
	code := e.browse(t, conf.AuthCodeURL("native-state", oauth2.S256ChallengeOption(verifier)), nativeRedirect, "native-state")
	tok, err := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	status, me, _ := e.me(t, conf.Client(ctx, tok))
	if status != 200 || me["client_id"] != nativeID || me["scope"] != "read" {
		t.Errorf("/api/me: %d %v", status, me)
	}
	old := tok.RefreshToken
	fresh, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: old, Expiry: time.Now().Add(-time.Minute)}).Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if fresh.RefreshToken == old {
		t.Error("the refresh token was not rotated")
	}
	// Replaying the rotated-out refresh token kills the family.
	_, err = conf.TokenSource(ctx, &oauth2.Token{RefreshToken: old, Expiry: time.Now().Add(-time.Minute)}).Token()
	wantRetrieveError(t, err, "invalid_grant")
	_, err = conf.TokenSource(ctx, &oauth2.Token{RefreshToken: fresh.RefreshToken, Expiry: time.Now().Add(-time.Minute)}).Token()
	wantRetrieveError(t, err, "invalid_grant")
	if status, _, _ := e.me(t, conf.Client(ctx, fresh)); status != 401 {
		t.Errorf("/api/me with a token of a revoked family: %d, want 401", status)
	}
}
