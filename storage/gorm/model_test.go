package gormstore_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/oauth2kit/oauth2kit/core"
	"github.com/oauth2kit/oauth2kit/core/storagetest"
	gormstore "github.com/oauth2kit/oauth2kit/storage/gorm"
)

// TestModel runs the model-based lifecycle test of core/storagetest (the
// same model core runs on the memory store: random sequences of issue,
// redeem, replay, wrong-verifier redemption, refresh, refresh-token reuse,
// revocation and clock steps through a core.Server, checked after every
// step) on every database.
func TestModel(t *testing.T) {
	forEachDB(t, func(t *testing.T, d *testDB) {
		s, _ := newStore(t, d)
		cfg := storagetest.ModelConfig{Sequences: 200, Steps: 50}
		if testing.Short() {
			cfg.Sequences = 20
		}
		storagetest.RunModel(t, s, cfg)
	})
}

// FuzzClientRowDecode: the row decoders never panic and never hand out
// anything but what the row holds. A client row whose JSON list columns
// (redirect_uris, grant_types, scopes) were written by someone else (raw
// SQL here) either fails to load with an error or loads with exactly the
// lists encoding/json reads from them, under the id asked for, and saves
// back unchanged. A grant row whose expires_at text was written by someone
// else either fails RedeemCode with an error or hands issue a grant with
// exactly the stored client id. Plain `go test` runs the seeds on SQLite.
func FuzzClientRowDecode(f *testing.F) {
	s, db := newStore(f, sqliteDB(f))
	for _, v := range [][4]string{
		{`["https://client.example/cb"]`, `["authorization_code","refresh_token"]`, `["read","write"]`, "2099-01-01 00:00:00+00:00"},
		{`[]`, `[]`, `[]`, "2000-01-01 00:00:00+00:00"},
		{``, ``, ``, ``},
		{`null`, `[null]`, `[1]`, "2099-01-01T00:00:00Z"},
		{`["a"`, `{"a":1}`, `"x"`, "not a time"},
		{`["\u0000","\ud800"]`, `[""]`, `["a","a"]`, "9999-12-31 23:59:59.999999999"},
		{`[] x`, ` ["a"] `, `["é"]`, "2099-01-01 00:00:00"},
	} {
		f.Add(v[0], v[1], v[2], v[3])
	}
	n := 0
	f.Fuzz(func(t *testing.T, redirects, grants, scopes, expires string) {
		n++
		id := fmt.Sprintf("fz-%d", n)
		if err := db.Exec("INSERT INTO oauth2_clients (id, name, secret_hash, redirect_uris, is_public, grant_types, scopes, profile, pkce, legacy_basic_secret) VALUES (?, '', '', ?, false, ?, ?, 0, 0, false)",
			id, redirects, grants, scopes).Error; err != nil {
			t.Fatal(err)
		}
		defer db.Exec("DELETE FROM oauth2_clients WHERE id = ?", id)
		want := func(col string) ([]string, bool) {
			var l []string
			if col == "" {
				return nil, true
			}
			if err := json.Unmarshal([]byte(col), &l); err != nil {
				return nil, false
			}
			if len(l) == 0 {
				return nil, true
			}
			return l, true
		}
		r, okR := want(redirects)
		g, okG := want(grants)
		sc, okS := want(scopes)
		c, err := s.GetClient(bg, id)
		if !(okR && okG && okS) {
			if err == nil {
				t.Fatalf("lists %q %q %q loaded as %+v", redirects, grants, scopes, c)
			}
		} else {
			if err != nil {
				t.Fatalf("lists %q %q %q: %v", redirects, grants, scopes, err)
			}
			if c.ID != id || !slices.Equal(c.RedirectURIs, r) || !slices.Equal(c.GrantTypes, g) || !slices.Equal(c.Scopes, sc) {
				t.Fatalf("lists %q %q %q loaded as %+v", redirects, grants, scopes, c)
			}
			if err := s.SaveClient(bg, c); err != nil {
				t.Fatalf("SaveClient: %v", err)
			}
			if c2, err := s.GetClient(bg, id); err != nil || !slices.Equal(c2.RedirectURIs, r) || !slices.Equal(c2.GrantTypes, g) || !slices.Equal(c2.Scopes, sc) {
				t.Fatalf("round trip of %+v: %+v, %v", c, c2, err)
			}
		}
		// A grant row with a foreign expires_at.
		sig := fmt.Sprintf("sig-%d", n)
		if err := db.Exec("INSERT INTO oauth2_grants (code_sig, grant_id, client_id, user_id, redirect_uri, scope, code_challenge, code_challenge_method, additional_info, expires_at) VALUES (?, 'g', ?, 'u', '', '', '', '', '', ?)",
			sig, id, expires).Error; err != nil {
			t.Fatal(err)
		}
		defer db.Exec("DELETE FROM oauth2_grants WHERE code_sig = ?", sig)
		called := false
		got, err := s.RedeemCode(bg, sig, time.Now(), func(gr *core.Grant) (*core.RefreshToken, error) {
			called = true
			if gr.ClientID != id || gr.ID != "g" {
				t.Errorf("issue got %+v", gr)
			}
			return nil, nil
		})
		if err == nil && (!called || got == nil || got.ClientID != id) {
			t.Fatalf("expires_at %q: RedeemCode = %+v without issue (called %v)", expires, got, called)
		}
		if err != nil && called {
			t.Fatalf("expires_at %q: issue ran, then %v", expires, err)
		}
	})
}

// dbFaults fails the statements of one kind (create, update, query) on one
// table of a connection pool, while armed: a database error at that step
// of the store's write paths, inside its transactions.
type dbFaults struct {
	mu          sync.Mutex
	table, kind string
	hits        int
}

func installFaults(t *testing.T, db *gorm.DB) *dbFaults {
	t.Helper()
	f := &dbFaults{}
	cb := db.Callback()
	hook := func(kind string) func(*gorm.DB) {
		return func(tx *gorm.DB) {
			f.mu.Lock()
			defer f.mu.Unlock()
			if f.kind == kind && tx.Statement.Table == f.table {
				f.hits++
				_ = tx.AddError(errInjected)
			}
		}
	}
	for _, err := range []error{
		cb.Create().Before("gorm:create").Register("test:fault_create", hook("create")),
		cb.Update().Before("gorm:update").Register("test:fault_update", hook("update")),
		cb.Query().Before("gorm:query").Register("test:fault_query", hook("query")),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// inject runs req with the fault armed and reports whether it was reached.
func (f *dbFaults) inject(t *testing.T, table, kind string, req func() *fakeResp) *fakeResp {
	t.Helper()
	f.mu.Lock()
	f.table, f.kind, f.hits = table, kind, 0
	f.mu.Unlock()
	w := req()
	f.mu.Lock()
	hits := f.hits
	f.table, f.kind = "", ""
	f.mu.Unlock()
	if hits == 0 {
		t.Fatalf("the fault %s %s was never reached (%d %s)", kind, table, w.status, w.body)
	}
	return w
}

// wantServerError: a failed write issues nothing.
func wantServerError(t *testing.T, what string, w *fakeResp) {
	t.Helper()
	m := w.json(t)
	if w.status != 500 || m["error"] != "server_error" || m["access_token"] != nil || m["refresh_token"] != nil {
		t.Errorf("%s: %d %s, want 500 server_error without tokens", what, w.status, w.body)
	}
}

// TestServerFaults is core's fault-injection test on SQLite with real
// rollbacks: a database error at each step of each write path (the grant
// insert, the code consumption, the refresh-token insert after it, the
// rotation mark, the new token's insert, the revocation insert, the
// revocation lookup) issues no token, revocation answers 503, and once the
// fault clears the code redeems exactly once and the token still rotates.
func TestServerFaults(t *testing.T) {
	d := sqliteDB(t)
	s, _ := newStore(t, d)
	secret := registerClient(t, s)
	faultyDB := d.connect(t)
	f := installFaults(t, faultyDB)
	in := newInstance(t, gormstore.New(faultyDB), secret)

	t.Run("CreateGrant", func(t *testing.T) {
		q := url.Values{"response_type": {"code"}, "client_id": {"conf"}, "redirect_uri": {testCallback},
			"scope": {"read"}, "state": {"s"}, "code_challenge": {core.S256Challenge(testVerifier)}, "code_challenge_method": {"S256"}}
		w := f.inject(t, "oauth2_grants", "create", func() *fakeResp {
			return in.do(&fakeReq{method: "GET", path: "/oauth2/authorize", query: q.Encode()})
		})
		loc, _ := url.Parse(w.hdr.Get("Location"))
		if w.status != 303 || loc == nil || loc.Query().Get("error") != "server_error" || loc.Query().Get("code") != "" {
			t.Errorf("authorize with a failing grant insert: %d %q", w.status, w.hdr.Get("Location"))
		}
		tokens(t, "a new code after the fault", in.exchange(in.code()))
	})
	for _, c := range []struct{ name, table, kind string }{
		{"RedeemCode/consume", "oauth2_grants", "update"},
		{"RedeemCode/refresh-write", "oauth2_refresh_tokens", "create"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code := in.code()
			wantServerError(t, "exchange", f.inject(t, c.table, c.kind, func() *fakeResp { return in.exchange(code) }))
			at, _ := tokens(t, "exchange after the fault", in.exchange(code))
			if w := in.exchange(code); w.status != 400 {
				t.Errorf("second exchange: %d %s", w.status, w.body)
			}
			if _, err := in.srv.CheckToken(bg, at); err == nil {
				t.Error("the replay did not revoke the grant")
			}
		})
	}
	for _, c := range []struct{ name, table, kind string }{
		{"RotateRefreshToken/mark", "oauth2_refresh_tokens", "update"},
		{"RotateRefreshToken/write", "oauth2_refresh_tokens", "create"},
	} {
		t.Run(c.name, func(t *testing.T) {
			at, rt := tokens(t, "exchange", in.exchange(in.code()))
			wantServerError(t, "refresh", f.inject(t, c.table, c.kind, func() *fakeResp { return in.refresh(rt) }))
			if _, err := in.srv.CheckToken(bg, at); err != nil {
				t.Errorf("a failed refresh revoked the grant: %v", err)
			}
			_, next := tokens(t, "refresh after the fault", in.refresh(rt))
			tokens(t, "refresh with the new token", in.refresh(next))
		})
	}
	t.Run("RevokeFamily", func(t *testing.T) {
		at, rt := tokens(t, "exchange", in.exchange(in.code()))
		for _, tok := range []string{at, rt} {
			w := f.inject(t, "oauth2_revoked_families", "create", func() *fakeResp { return in.revoke(tok) })
			if w.status != 503 || w.json(t)["error"] != "temporarily_unavailable" {
				t.Errorf("revoke with a failing insert: %d %s, want 503", w.status, w.body)
			}
			if _, err := in.srv.CheckToken(bg, at); err != nil {
				t.Errorf("a failed revocation revoked: %v", err)
			}
		}
		if w := in.revoke(rt); w.status != 200 {
			t.Fatalf("revoke after the fault: %d %s", w.status, w.body)
		}
		if _, err := in.srv.CheckToken(bg, at); err == nil {
			t.Error("the revocation after the fault did not revoke")
		}
	})
	t.Run("IsFamilyRevoked", func(t *testing.T) {
		at, _ := tokens(t, "exchange", in.exchange(in.code()))
		var err error
		f.inject(t, "oauth2_revoked_families", "query", func() *fakeResp {
			_, err = in.srv.CheckToken(bg, at)
			return &fakeResp{}
		})
		if err == nil {
			t.Error("CheckToken passed while the revocation lookup failed")
		}
		if _, err := in.srv.CheckToken(bg, at); err != nil {
			t.Errorf("CheckToken after the fault: %v", err)
		}
	})
}
