package core_test

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/oauth2kit/oauth2kit/core"
	"github.com/oauth2kit/oauth2kit/core/memstore"
)

// client_credentials tokens say so, and introspection names no user.
func TestClientCredentialsTokensAreMarked(t *testing.T) {
	e := newEnv(t, false)
	w := e.token(url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}, basic("conf", e.secret))
	if w.status != 200 {
		t.Fatalf("token: %d %s", w.status, w.body)
	}
	at := w.json(t)["access_token"].(string)
	info, err := e.srv.CheckToken(t.Context(), at)
	// No user: UserID stays empty, so a handler taking UserID as "the
	// user" cannot mistake the client for one; Subject names the client.
	if err != nil || !info.ClientCredentials || info.UserID != "" || info.Subject() != "conf" {
		t.Fatalf("info %+v %v", info, err)
	}
	m := e.post("/oauth2/introspect", url.Values{"token": {at}}, basic("conf", e.secret)).json(t)
	if m["active"] != true || m["sub"] != "conf" {
		t.Fatalf("introspection %v", m)
	}
	if _, ok := m["username"]; ok {
		t.Errorf("client_credentials token introspected with a username: %v", m)
	}
	// A user's token is not marked.
	uat, _ := e.tokens("read")
	if info, _ := e.srv.CheckToken(t.Context(), uat); info == nil || info.ClientCredentials || info.UserID != "alice" || info.Subject() != "alice" {
		t.Errorf("user token marked as client_credentials: %+v", info)
	}
}

// A client whose id is a user's name gets a token that names no user: the
// resource check hands the app an empty UserID, never "alice".
func TestClientCredentialsClientNamedLikeAUser(t *testing.T) {
	e := newEnv(t, false)
	sec := e.addClient(core.ClientSpec{ID: "alice", GrantTypes: []string{"client_credentials"}})
	w := e.token(url.Values{"grant_type": {"client_credentials"}}, basic("alice", sec))
	if w.status != 200 {
		t.Fatalf("token: %d %s", w.status, w.body)
	}
	info, rw := e.resource(&fakeReq{hdr: bearer(w.json(t)["access_token"].(string))})
	if info == nil {
		t.Fatalf("refused: %v", rw)
	}
	if info.UserID != "" || info.ClientID != "alice" || !info.ClientCredentials {
		t.Errorf("client_credentials token names a user: %+v", info)
	}
}

// Revoking an expired access token still revokes its grant for its owner.
func TestRevokeExpiredAccessTokenRevokesGrant(t *testing.T) {
	e := newEnv(t, false)
	at, rt := e.tokens("read")
	e.now = e.now.Add(2 * time.Hour)
	if w := e.post("/oauth2/revoke", url.Values{"token": {at}}, basic("conf", e.secret)); w.status != 200 || len(w.body) != 0 {
		t.Fatalf("revoke: %d %s", w.status, w.body)
	}
	w := e.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, basic("conf", e.secret))
	wantTokenError(t, w, 400, "invalid_grant")
}

// state and scope are bounded so every handle and token the server mints
// is one it accepts back; within the bounds, the flow completes.
func TestLongStateAndScope(t *testing.T) {
	e := newEnv(t, false)
	long := strings.Repeat("s", 2048)
	page := e.authorize(codeQuery("conf", confCB, "read", long))
	if page.status != 200 {
		t.Fatalf("authorize with a 2048-byte state: %d %s", page.status, page.hdr.Get("Location"))
	}
	w := e.login(page, "alice", "pw")
	if w.status != 303 {
		t.Fatalf("login with a 2048-byte state: %d %s", w.status, w.body)
	}
	loc, _ := url.Parse(w.hdr.Get("Location"))
	if loc.Query().Get("state") != long || loc.Query().Get("code") == "" {
		t.Fatalf("state not returned intact")
	}
	// One byte more: refused by redirect, without echoing the state.
	w = e.authorize(codeQuery("conf", confCB, "read", long+"s"))
	q := wantRedirectError(t, w, confCB, "invalid_request", "")
	if q.Has("state") {
		t.Errorf("overlong state echoed")
	}
	// A scope over 1024 bytes is invalid_scope at the token endpoint too,
	// even with no server scope list.
	open := newEnv(t, false, func(c *core.Config) { c.Scopes = nil })
	big := strings.TrimSpace(strings.Repeat("abcdefghi ", 103))
	w = open.token(url.Values{"grant_type": {"client_credentials"}, "scope": {big}}, basic("conf", open.secret))
	wantTokenError(t, w, 400, "invalid_scope")
	ok := strings.TrimSpace(strings.Repeat("abcdefghi ", 100))
	w = open.token(url.Values{"grant_type": {"client_credentials"}, "scope": {ok}}, basic("conf", open.secret))
	if w.status != 200 {
		t.Fatalf("1000-byte scope: %d %s", w.status, w.body)
	}
	if _, err := open.srv.CheckToken(t.Context(), w.json(t)["access_token"].(string)); err != nil {
		t.Fatalf("minted token not accepted back: %v", err)
	}
}

func TestConfigPrintsNoKeys(t *testing.T) {
	e := newEnv(t, false)
	cfg := e.srv.Config()
	for _, out := range []string{fmt.Sprintf("%v", cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%v", core.Keys{CryptKey: cfg.CryptKey, SignKey: cfg.SignKey})} {
		if strings.Contains(out, string(cfg.CryptKey)) || strings.Contains(out, string(cfg.SignKey)) || strings.Contains(out, fmt.Sprint(cfg.CryptKey)) {
			t.Errorf("key material printed: %s", out)
		}
	}
	if _, err := core.New(core.Config{Issuer: issuer, CryptKey: cfg.CryptKey, SignKey: cfg.SignKey, RevokeURL: "/oauth2/token"}, e.store, &testAuth{}); err == nil {
		t.Errorf("duplicate endpoint paths accepted")
	}
}

// countingStore counts the lookups that reach storage.
type countingStore struct {
	*memstore.Store
	lookups int
}

func (c *countingStore) RotateRefreshToken(ctx context.Context, sig string, now time.Time, issue func(*core.RefreshToken) (*core.RefreshToken, error)) (*core.RefreshToken, error) {
	c.lookups++
	return c.Store.RotateRefreshToken(ctx, sig, now, issue)
}

func (c *countingStore) RedeemCode(ctx context.Context, sig string, now time.Time, issue func(*core.Grant) (*core.RefreshToken, error)) (*core.Grant, error) {
	c.lookups++
	return c.Store.RedeemCode(ctx, sig, now, issue)
}

// Codes and refresh tokens carry a MAC of their random part: a forged or
// altered one is refused without a storage lookup (SECURITY.md §4.2).
func TestForgedOpaqueTokensNeverReachStorage(t *testing.T) {
	e := newEnv(t, false)
	cs := &countingStore{Store: e.store}
	srv, err := core.New(e.srv.Config(), cs, &testAuth{srv: &e.srv})
	if err != nil {
		t.Fatal(err)
	}
	_, rt := e.tokens("read")
	code := e.code("read")
	e.srv = srv
	flip := func(tok string, i int) string {
		b := []byte(tok)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	for _, tok := range []string{flip(rt, len(rt)-30), flip(rt, len(rt)-5)} {
		wantTokenError(t, e.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok}}, basic("conf", e.secret)), 400, "invalid_grant")
	}
	for _, c := range []string{flip(code, len(code)-30), flip(code, len(code)-5)} {
		wantTokenError(t, e.token(url.Values{"grant_type": {"authorization_code"}, "code": {c}, "redirect_uri": {confCB}, "code_verifier": {verifier}}, basic("conf", e.secret)), 400, "invalid_grant")
	}
	if cs.lookups != 0 {
		t.Fatalf("%d forged tokens reached storage", cs.lookups)
	}
	// The genuine ones still work, through storage.
	if w := e.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, basic("conf", e.secret)); w.status != 200 {
		t.Fatalf("genuine refresh: %d %s", w.status, w.body)
	}
	if cs.lookups != 1 {
		t.Fatalf("lookups = %d, want 1", cs.lookups)
	}
}

type clientCountingStore struct {
	*memstore.Store
	lookups int
}

func (c *clientCountingStore) GetClient(ctx context.Context, id string) (*core.Client, error) {
	c.lookups++
	return c.Store.GetClient(ctx, id)
}

// The client cache is off by default; with a TTL, lookups are served from
// it until the TTL or ForgetClient.
func TestClientCache(t *testing.T) {
	for _, ttl := range []time.Duration{0, 10 * time.Second} {
		e := newEnv(t, false, func(c *core.Config) { c.ClientCacheTTL = ttl })
		cs := &clientCountingStore{Store: e.store}
		srv, err := core.New(e.srv.Config(), cs, &testAuth{srv: &e.srv})
		if err != nil {
			t.Fatal(err)
		}
		e.srv = srv
		cc := url.Values{"grant_type": {"client_credentials"}}
		for range 3 {
			if w := e.token(cc, basic("conf", e.secret)); w.status != 200 {
				t.Fatalf("ttl %v: %d %s", ttl, w.status, w.body)
			}
		}
		want := 3
		if ttl > 0 {
			want = 1
		}
		if cs.lookups != want {
			t.Fatalf("ttl %v: %d lookups, want %d", ttl, cs.lookups, want)
		}
		if ttl == 0 {
			continue
		}
		// A cached client is a copy: changing it changes nothing.
		e.store.RemoveClient("conf")
		if w := e.token(cc, basic("conf", e.secret)); w.status != 200 {
			t.Fatalf("cached client not served: %d", w.status)
		}
		e.srv.ForgetClient("conf")
		wantTokenError(t, e.token(cc, basic("conf", e.secret)), 401, "invalid_client")
		// Past the TTL the store is asked again.
		before := cs.lookups
		e.now = e.now.Add(ttl + time.Second)
		e.token(cc, basic("conf", e.secret))
		if cs.lookups == before {
			t.Fatalf("expired cache entry served")
		}
	}
}
