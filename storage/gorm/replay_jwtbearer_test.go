package gormstore_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/oauth2kit/oauth2kit/core"
	gormstore "github.com/oauth2kit/oauth2kit/storage/gorm"
)

// ---- ID-JAGs in the jwt-bearer grant (RFC 7523 §2.1) ----

const replayIdP = "https://idp.example.com"

// newJWTBearerDeployment is newReplayDeployment whose instances trust
// replayIdP, with the key set jwks, for ID-JAGs.
func newJWTBearerDeployment(t *testing.T, d *testDB, jwks string) *replayDeployment {
	t.Helper()
	storeA, db := newStore(t, d)
	storeB := gormstore.New(d.connect(t))
	dep := &replayDeployment{name: d.name, store: storeA, db: db}
	for _, p := range []struct {
		srv   **core.Server
		store *gormstore.Store
	}{{&dep.a, storeA}, {&dep.b, storeB}} {
		cfg := replayConfig()
		cfg.JWTBearer = core.JWTBearer{Issuers: []core.TrustedIssuer{{Issuer: replayIdP, JWKS: jwks}}}
		auth := &signedIn{}
		srv, err := core.New(cfg, p.store, auth)
		if err != nil {
			t.Fatal(err)
		}
		auth.srv = srv
		*p.srv = srv
	}
	return dep
}

// TestIDJAGOnceAcrossInstances: one ID-JAG presented at the token
// endpoints of two instances over one database, concurrently or one after
// the other, gets an access token once in all; every other copy is
// refused with 400 invalid_grant, and the replay table holds one record
// per accepted assertion.
func TestIDJAGOnceAcrossInstances(t *testing.T) {
	forEachDB(t, func(t *testing.T, d *testDB) {
		priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		key := &replayAssertionKey{kid: "idp", priv: priv}
		dep := newJWTBearerDeployment(t, d, key.jwks(t))
		c, secret, err := core.NewClient(core.ClientSpec{ID: "agent", Name: "Agent", GrantTypes: []string{core.GrantJWTBearer}})
		if err != nil {
			t.Fatal(err)
		}
		if err := dep.store.SaveClient(bg, c); err != nil {
			t.Fatal(err)
		}
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: priv},
			(&jose.SignerOptions{}).WithType(core.IDJAGType).WithHeader("kid", key.kid))
		if err != nil {
			t.Fatal(err)
		}
		fresh := func() string {
			now := time.Now()
			return replaySign(t, signer, map[string]any{"iss": replayIdP, "sub": "alice", "aud": testIssuer, "client_id": c.ID,
				"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "jti": rand.Text(), "scope": "read"})
		}
		send := func(srv *core.Server, assertion string) *fakeResp {
			hdr := http.Header{}
			hdr.Set("Authorization", core.EncodeBasic(c.ID, secret))
			return tokenRequest(srv, hdr, url.Values{"grant_type": {core.GrantJWTBearer}, "assertion": {assertion}})
		}
		checkUser := func(what, at string) {
			t.Helper()
			for i, srv := range dep.instances() {
				if info, err := srv.CheckToken(bg, at); err != nil || info.UserID != "alice" || info.ClientID != c.ID || info.Scope != "read" {
					t.Errorf("%s: CheckToken at instance %d: %+v, %v; want alice's token of %s", what, i, info, err, c.ID)
				}
			}
		}
		dep.onceInAll(t, onceCase{
			what: "ID-JAG", fresh: fresh, send: send,
			tokenType: "Bearer", refusedCode: core.ErrInvalidGrant, check: checkUser,
		})
	})
}
