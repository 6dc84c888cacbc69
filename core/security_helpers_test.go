package core_test

// Helpers shared by the security_*_test.go and draft10_test.go files. They
// build on harness_test.go (env, fakeReq, fakeResp) without changing it.

import (
	"bytes"
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oauth2kit/oauth2kit/core"
)

// signKey is the SignKey newEnv configures.
var signKey = []byte("fedcba9876543210fedcba9876543210")

// rtSig is the signature under which the store keeps a refresh token: the
// HMAC-SHA256 of the token under the key HKDF derives from SignKey with the
// label SECURITY.md §3 names. Tests use it only to look the token up in the
// store; a mismatch shows up as ErrNotFound, never as a false pass.
func rtSig(t *testing.T, tok string) string {
	t.Helper()
	k, err := hkdf.Key(sha256.New, signKey, nil, "oauth2kit/v1/rt/hmac", 32)
	if err != nil {
		t.Fatal(err)
	}
	m := hmac.New(sha256.New, k)
	m.Write([]byte(tok))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// rebuild replaces e.srv by a server with the same effective configuration
// (changed by mod) over store; the authenticator reaches the new server
// through &e.srv, as newEnv's does.
func (e *env) rebuild(consent bool, store core.Storage, mod ...func(*core.Config)) {
	e.t.Helper()
	cfg := e.srv.Config()
	for _, m := range mod {
		m(&cfg)
	}
	srv, err := core.New(cfg, store, authFor(e, consent))
	if err != nil {
		e.t.Fatal(err)
	}
	e.srv = srv
}

func authFor(e *env, consent bool) core.Authenticator {
	ta := testAuth{srv: &e.srv}
	if consent {
		return &consentAuth{ta}
	}
	return &ta
}

// addClient registers a client built from spec and returns its secret.
func (e *env) addClient(spec core.ClientSpec) string {
	e.t.Helper()
	c, secret, err := core.NewClient(spec)
	if err != nil {
		e.t.Fatalf("NewClient(%s): %v", spec.ID, err)
	}
	e.store.AddClient(c)
	return secret
}

// locQuery parses the Location header of w: the part before '?' and the
// query.
func locQuery(t *testing.T, w *fakeResp) (string, url.Values) {
	t.Helper()
	l := w.hdr.Get("Location")
	if l == "" {
		t.Fatalf("no Location (status %d, body %s)", w.status, w.body)
	}
	base, q, _ := strings.Cut(l, "?")
	v, err := url.ParseQuery(q)
	if err != nil {
		t.Fatalf("Location %q: %v", l, err)
	}
	return base, v
}

// descRe is the error / error_description character set of RFC 6749
// (%x20-21 / %x23-5B / %x5D-7E).
var descRe = regexp.MustCompile(`^[\x20\x21\x23-\x5B\x5D-\x7E]*$`)

// wantRedirectError asserts a 303 error redirect to base carrying error,
// state and iss, with the headers of every authorization response.
func wantRedirectError(t *testing.T, w *fakeResp, base, code, state string) url.Values {
	t.Helper()
	if w.status != 303 {
		t.Fatalf("status %d, want 303 (body %s, Location %q)", w.status, w.body, w.hdr.Get("Location"))
	}
	b, q := locQuery(t, w)
	if b != base {
		t.Errorf("redirected to %q, want %q", b, base)
	}
	if got := q.Get("error"); got != code {
		t.Errorf("error=%q, want %q (description %q)", got, code, q.Get("error_description"))
	}
	if !descRe.MatchString(q.Get("error_description")) || !descRe.MatchString(q.Get("error")) {
		t.Errorf("error/error_description has characters outside the RFC 6749 set: %q", q.Get("error_description"))
	}
	if len(q["state"]) > 1 || q.Get("state") != state {
		t.Errorf("state=%q, want %q", q["state"], state)
	}
	if _, ok := q["state"]; state == "" && ok {
		t.Errorf("state present though none was sent")
	}
	if q.Get("iss") != issuer {
		t.Errorf("iss=%q, want %q", q.Get("iss"), issuer)
	}
	if _, ok := q["code"]; ok {
		t.Errorf("an error redirect carries a code")
	}
	if w.hdr.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control=%q", w.hdr.Get("Cache-Control"))
	}
	wantNoCORS(t, w)
	return q
}

// wantCodeRedirect asserts a 303 success redirect to base and returns its
// query.
func wantCodeRedirect(t *testing.T, w *fakeResp, base, state string) url.Values {
	t.Helper()
	if w.status != 303 {
		t.Fatalf("status %d, want 303 (body %s)", w.status, w.body)
	}
	b, q := locQuery(t, w)
	if b != base {
		t.Errorf("redirected to %q, want %q", b, base)
	}
	if q.Get("code") == "" || q.Get("error") != "" {
		t.Errorf("no code / an error in %v", q)
	}
	if q.Get("state") != state {
		t.Errorf("state=%q, want %q", q.Get("state"), state)
	}
	if q.Get("iss") != issuer {
		t.Errorf("iss=%q, want %q", q.Get("iss"), issuer)
	}
	wantNoCORS(t, w)
	return q
}

func wantNoCORS(t *testing.T, w *fakeResp) {
	t.Helper()
	for k := range w.hdr {
		if strings.HasPrefix(http.CanonicalHeaderKey(k), "Access-Control-") {
			t.Errorf("response carries %s: %q", k, w.hdr.Get(k))
		}
	}
}

// wantPageHeaders asserts the protections every HTML page of the flow
// carries (R18, R19).
func wantPageHeaders(t *testing.T, w *fakeResp) {
	t.Helper()
	csp := w.hdr.Get("Content-Security-Policy")
	if !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("CSP %q lacks frame-ancestors 'none'", csp)
	}
	if !strings.Contains(csp, "default-src 'self'") {
		t.Errorf("CSP %q does not restrict resources to the origin", csp)
	}
	if strings.Contains(csp, "form-action") {
		t.Errorf("CSP %q has form-action, which breaks the redirect after the form POST", csp)
	}
	for _, h := range [][2]string{
		{"X-Frame-Options", "DENY"},
		{"Referrer-Policy", "no-referrer"},
		{"Cache-Control", "no-store"},
		{"X-Content-Type-Options", "nosniff"},
	} {
		if got := w.hdr.Get(h[0]); got != h[1] {
			t.Errorf("%s=%q, want %q", h[0], got, h[1])
		}
	}
	wantNoCORS(t, w)
}

// wantErrorPage asserts an HTML error page: status, no redirect, the page
// protections.
func wantErrorPage(t *testing.T, w *fakeResp, status int) {
	t.Helper()
	if w.status != status {
		t.Errorf("status %d, want %d (body %s)", w.status, status, w.body)
	}
	if l := w.hdr.Get("Location"); l != "" {
		t.Errorf("error page redirects to %q", l)
	}
	if ct := w.hdr.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("Content-Type=%q", ct)
	}
	wantPageHeaders(t, w)
}

// wantTokenError asserts a JSON error of the token, revocation or
// introspection endpoint.
func wantTokenError(t *testing.T, w *fakeResp, status int, code string) map[string]any {
	t.Helper()
	if w.status != status {
		t.Errorf("status %d, want %d (body %s)", w.status, status, w.body)
	}
	wantJSONHeaders(t, w)
	m := w.json(t)
	if m["error"] != code {
		t.Errorf("error=%v, want %s (body %s)", m["error"], code, w.body)
	}
	for _, k := range []string{"error", "error_description"} {
		if s, ok := m[k].(string); ok && !descRe.MatchString(s) {
			t.Errorf("%s %q has characters outside the RFC 6749 set", k, s)
		}
	}
	for k := range m {
		if k != "error" && k != "error_description" {
			t.Errorf("unexpected field %q in error body %s", k, w.body)
		}
	}
	if _, ok := m["access_token"]; ok {
		t.Errorf("an error carries a token")
	}
	return m
}

func wantJSONHeaders(t *testing.T, w *fakeResp) {
	t.Helper()
	for _, h := range [][2]string{
		{"Content-Type", "application/json"},
		{"Cache-Control", "no-store"},
		{"Pragma", "no-cache"},
	} {
		if got := w.hdr.Get(h[0]); got != h[1] {
			t.Errorf("%s=%q, want %q", h[0], got, h[1])
		}
	}
}

// token posts to the token endpoint.
func (e *env) token(form url.Values, hdr http.Header) *fakeResp {
	return e.post("/oauth2/token", form, hdr)
}

// redeem exchanges a code of the confidential client (default flow) and
// returns access and refresh token.
func (e *env) redeem(code string) (at, rt string) {
	e.t.Helper()
	w := e.token(url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {confCB}, "code_verifier": {verifier}}, basic("conf", e.secret))
	if w.status != 200 {
		e.t.Fatalf("token: %d %s", w.status, w.body)
	}
	m := w.json(e.t)
	at, _ = m["access_token"].(string)
	rt, _ = m["refresh_token"].(string)
	if at == "" || rt == "" {
		e.t.Fatalf("token response %s", w.body)
	}
	return at, rt
}

// tokens runs the whole flow for "conf" and returns its tokens.
func (e *env) tokens(scope string) (at, rt string) {
	e.t.Helper()
	return e.redeem(e.code(scope))
}

// refreshConf refreshes a token of "conf".
func (e *env) refreshConf(rt, scope string) *fakeResp {
	f := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
	if scope != "" {
		f.Set("scope", scope)
	}
	return e.token(f, basic("conf", e.secret))
}

// codeFor runs authorize + login for any client with the given query and
// returns the 303 answer.
func (e *env) codeFor(q url.Values) *fakeResp {
	e.t.Helper()
	page := e.authorize(q)
	if page.status != 200 {
		e.t.Fatalf("authorize: %d %s %v", page.status, page.body, page.hdr)
	}
	w := e.login(page, "alice", "pw")
	if w.status == 200 {
		f := hidden(e.t, w.body)
		f.Set("decision", "approve")
		w = e.post("/oauth2/login", f, nil)
	}
	if w.status != 303 {
		e.t.Fatalf("login: %d %s", w.status, w.body)
	}
	return w
}

// resource runs the resource check on a request.
func (e *env) resource(r *fakeReq, scopes ...string) (*core.TokenInfo, *fakeResp) {
	if r.hdr == nil {
		r.hdr = http.Header{}
	}
	if r.method == "" {
		r.method = "GET"
	}
	if r.path == "" {
		r.path = "/api/me"
	}
	info, rerr := e.srv.CheckRequest(r, scopes...)
	if rerr == nil {
		return info, nil
	}
	w := newResp()
	rerr.Write(w)
	return nil, w
}

func bearer(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

// family returns the grant id of an access token.
func (e *env) family(at string) string {
	e.t.Helper()
	info, err := e.srv.CheckToken(context.Background(), at)
	if err != nil {
		e.t.Fatalf("CheckToken: %v", err)
	}
	return info.GrantID
}

func (e *env) revoked(family string) bool {
	e.t.Helper()
	r, err := e.store.IsFamilyRevoked(context.Background(), family)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

// grantsCount counts the codes stored and never redeemed (a used form's
// record is not one).
func (e *env) grantsCount() int { return e.store.PendingCodes() }

func (e *env) refreshCount() int {
	_, r, _ := e.store.Len()
	return r
}

// hookStore wraps a Storage: it can fail any method, and records what the
// server hands to the store.
type hookStore struct {
	core.Storage
	mu     sync.Mutex
	fail   map[string]error
	grants []core.Grant
	rts    []core.RefreshToken
	args   []string // every string argument the store received
	// lag makes RedeemCode pass the store an earlier "now": a lax store
	// that would hand out an expired code.
	lag time.Duration
}

func newHookStore(s core.Storage) *hookStore {
	return &hookStore{Storage: s, fail: map[string]error{}}
}

func (h *hookStore) failing(method string, err error) {
	h.mu.Lock()
	h.fail[method] = err
	h.mu.Unlock()
}

func (h *hookStore) err(method string, args ...string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.args = append(h.args, args...)
	return h.fail[method]
}

func (h *hookStore) recordRT(rt *core.RefreshToken) {
	if rt == nil {
		return
	}
	h.mu.Lock()
	h.rts = append(h.rts, *rt)
	h.mu.Unlock()
}

func (h *hookStore) GetClient(ctx context.Context, id string) (*core.Client, error) {
	if err := h.err("GetClient", id); err != nil {
		return nil, err
	}
	return h.Storage.GetClient(ctx, id)
}

func (h *hookStore) CreateGrant(ctx context.Context, g *core.Grant) error {
	if err := h.err("CreateGrant"); err != nil {
		return err
	}
	h.mu.Lock()
	h.grants = append(h.grants, *g)
	h.mu.Unlock()
	return h.Storage.CreateGrant(ctx, g)
}

func (h *hookStore) RedeemCode(ctx context.Context, sig string, now time.Time, issue func(*core.Grant) (*core.RefreshToken, error)) (*core.Grant, error) {
	if err := h.err("RedeemCode", sig); err != nil {
		return nil, err
	}
	return h.Storage.RedeemCode(ctx, sig, now.Add(-h.lag), func(g *core.Grant) (*core.RefreshToken, error) {
		rt, err := issue(g)
		if err == nil {
			h.recordRT(rt)
		}
		return rt, err
	})
}

func (h *hookStore) RotateRefreshToken(ctx context.Context, sig string, now time.Time, issue func(*core.RefreshToken) (*core.RefreshToken, error)) (*core.RefreshToken, error) {
	if err := h.err("RotateRefreshToken", sig); err != nil {
		return nil, err
	}
	return h.Storage.RotateRefreshToken(ctx, sig, now, func(old *core.RefreshToken) (*core.RefreshToken, error) {
		rt, err := issue(old)
		if err == nil {
			h.recordRT(rt)
		}
		return rt, err
	})
}

func (h *hookStore) GetRefreshToken(ctx context.Context, sig string) (*core.RefreshToken, error) {
	if err := h.err("GetRefreshToken", sig); err != nil {
		return nil, err
	}
	return h.Storage.GetRefreshToken(ctx, sig)
}

func (h *hookStore) RevokeFamily(ctx context.Context, id string, keep time.Time) error {
	if err := h.err("RevokeFamily", id); err != nil {
		return err
	}
	return h.Storage.RevokeFamily(ctx, id, keep)
}

func (h *hookStore) IsFamilyRevoked(ctx context.Context, id string) (bool, error) {
	if err := h.err("IsFamilyRevoked", id); err != nil {
		return false, err
	}
	return h.Storage.IsFamilyRevoked(ctx, id)
}

func (h *hookStore) GetConsent(ctx context.Context, user, client string) (string, error) {
	if err := h.err("GetConsent", user, client); err != nil {
		return "", err
	}
	return h.Storage.GetConsent(ctx, user, client)
}

func (h *hookStore) SaveConsent(ctx context.Context, user, client, scope string) error {
	if err := h.err("SaveConsent", user, client, scope); err != nil {
		return err
	}
	return h.Storage.SaveConsent(ctx, user, client, scope)
}

// newHookedEnv is newEnv over a hookStore wrapping its memstore.
func newHookedEnv(t *testing.T, consent bool, mod ...func(*core.Config)) (*env, *hookStore) {
	t.Helper()
	e := newEnv(t, consent, mod...)
	h := newHookStore(e.store)
	e.rebuild(consent, h)
	return e, h
}

// logBuf collects the server's log output.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func withLog(l *logBuf) func(*core.Config) {
	return func(c *core.Config) {
		c.Logger = slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
}

// quietLog discards the server's log output (tests that provoke failures
// on purpose).
func quietLog(c *core.Config) {
	c.Logger = slog.New(slog.NewTextHandler(discard{}, nil))
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
