package gormstore_test

import (
	"log/slog"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/oauth2kit/oauth2kit/core"
	gormstore "github.com/oauth2kit/oauth2kit/storage/gorm"
)

// Token exchange (RFC 8693) on every database, two instances: an
// exchanged token is a family of its own, stored as a grant born used of
// the exchanging client, so that revoking it leaves the subject's grant
// alone, RevokeUserClient(user, exchanger) reaches it, and UserClients
// lists the exchanging client; revoking the subject's grant still kills
// it (SECURITY.md R71).

func newExchangeDeployment(t *testing.T, d *testDB) *userDeployment {
	t.Helper()
	storeA, db := newStore(t, d)
	storeB := gormstore.New(d.connect(t))
	dep := &userDeployment{t: t, clock: &testClock{start: time.Now().Truncate(time.Second)}, db: db, secrets: map[string]string{}}
	for _, spec := range []core.ClientSpec{
		{ID: "conf", Name: "conf", RedirectURIs: []string{testCallback}},
		{ID: "svc", Name: "svc", GrantTypes: []string{core.GrantTokenExchange}},
	} {
		c, secret, err := core.NewClient(spec)
		if err != nil {
			t.Fatal(err)
		}
		if err := storeA.SaveClient(bg, c); err != nil {
			t.Fatal(err)
		}
		dep.secrets[spec.ID] = secret
	}
	build := func(st core.Storage) *instance {
		auth := &consentAuth{}
		srv, err := core.New(core.Config{
			Issuer:        testIssuer,
			Keys:          core.Keys{CryptKey: []byte("0123456789abcdef0123456789abcdef"), SignKey: []byte("fedcba9876543210fedcba9876543210")},
			Scopes:        []string{"read", "write"},
			TokenExchange: core.TokenExchange{Enabled: true},
			Now:           dep.clock.now,
			Logger:        slog.New(slog.DiscardHandler),
		}, st, auth)
		if err != nil {
			t.Fatal(err)
		}
		auth.srv = srv
		return &instance{tb: t, srv: srv, secret: dep.secrets["conf"]}
	}
	dep.a, dep.b = build(storeA), build(storeB)
	return dep
}

func (dep *userDeployment) tokenExchange(in *instance, subject string) string {
	dep.t.Helper()
	w := dep.post(in, "svc", "/oauth2/token", url.Values{"grant_type": {core.GrantTokenExchange},
		"subject_token": {subject}, "subject_token_type": {core.TokenTypeAccessToken}})
	if w.status != 200 {
		dep.t.Fatalf("token exchange: %d %s", w.status, w.body)
	}
	at, _ := w.json(dep.t)["access_token"].(string)
	return at
}

func TestServerExchangeFamilies(t *testing.T) {
	forEachDB(t, func(t *testing.T, d *testDB) {
		dep := newExchangeDeployment(t, d)
		a, b := dep.a, dep.b
		alice := newBrowser("alice")
		conf := dep.exchange(a, "conf", alice.code(t, a, "conf"))
		ex := dep.tokenExchange(b, conf.at)
		info, err := a.srv.CheckToken(bg, ex)
		if err != nil {
			t.Fatal(err)
		}
		root, err := a.srv.CheckToken(bg, conf.at)
		if err != nil {
			t.Fatal(err)
		}
		if info.GrantID == root.GrantID || !slices.Equal(info.ParentGrantIDs, []string{root.GrantID}) {
			t.Fatalf("exchanged family %q parents %q, subject's %q", info.GrantID, info.ParentGrantIDs, root.GrantID)
		}
		// The record: svc's grant of alice, born used, kept while the token lives.
		var row struct {
			ClientID  string
			UserID    string
			UsedAt    *time.Time
			KeepUntil *time.Time
		}
		if err := dep.db.Table("oauth2_grants").Select("client_id, user_id, used_at, keep_until").
			Where("grant_id = ?", info.GrantID).Take(&row).Error; err != nil {
			t.Fatalf("no grant row for the exchanged family: %v", err)
		}
		if row.ClientID != "svc" || row.UserID != "alice" || row.UsedAt == nil || row.KeepUntil == nil || row.KeepUntil.Before(info.ExpiresAt) {
			t.Errorf("grant row %+v for a token expiring %v", row, info.ExpiresAt)
		}
		wantUserClients(t, a, "alice", []core.UserClient{
			{ClientID: "conf", ConsentScope: "read", Active: true},
			{ClientID: "svc", Active: true},
		})

		// svc revokes its token on A: its family alone.
		if w := dep.post(a, "svc", "/oauth2/revoke", url.Values{"token": {ex}}); w.status != 200 {
			t.Fatalf("revoke: %d %s", w.status, w.body)
		}
		for _, in := range []*instance{a, b} {
			wantActive(t, "the revoked exchanged token", dep.introspect(in, "conf", ex), false)
			wantActive(t, "the subject after the exchanged token's revocation", dep.introspect(in, "conf", conf.at), true)
		}
		conf.at, conf.rt = tokens(t, "refresh after the exchanged token's revocation", dep.refresh(b, conf))

		// RevokeUserClient(alice, svc) ends svc's family only.
		ex2 := dep.tokenExchange(a, conf.at)
		if n, err := b.srv.RevokeUserClient(bg, "alice", "svc"); err != nil || n != 2 {
			t.Fatalf("RevokeUserClient(alice, svc) = %d, %v; want svc's 2 families", n, err)
		}
		for _, in := range []*instance{a, b} {
			wantActive(t, "svc's token after RevokeUserClient", dep.introspect(in, "conf", ex2), false)
			wantRefused(t, "svc's token after RevokeUserClient", resource(in, ex2))
			wantActive(t, "conf's token after RevokeUserClient(svc)", dep.introspect(in, "conf", conf.at), true)
		}

		// Revoking the subject's grant kills what was exchanged from it.
		ex3 := dep.tokenExchange(b, conf.at)
		if w := dep.post(b, "conf", "/oauth2/revoke", url.Values{"token": {conf.rt}}); w.status != 200 {
			t.Fatalf("revoke: %d %s", w.status, w.body)
		}
		for _, in := range []*instance{a, b} {
			wantActive(t, "exchanged from a revoked grant", dep.introspect(in, "conf", ex3), false)
			wantRefused(t, "exchanged from a revoked grant", resource(in, ex3))
		}
	})
}
