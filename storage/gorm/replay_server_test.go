package gormstore_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"gorm.io/gorm"

	"github.com/oauth2kit/oauth2kit/core"
	gormstore "github.com/oauth2kit/oauth2kit/storage/gorm"
)

// The DPoP proofs and client assertions of these tests are spent in the
// store's ReplayCache (oauth2_replay). Two servers, each with its own
// connection pool, stand for two processes behind a load balancer: only
// the database can tell them a proof was used at the other.

const (
	replayRounds = 20
	replayRacers = 8 // per round, split over the two instances
	replayToken  = testIssuer + "/oauth2/token"
)

// replayConfig is the one Config of every instance of the deployment:
// the same Issuer and Keys, DPoP on. The authentication throttle, per
// instance and in memory, is relaxed: every refused copy of an assertion
// counts as a failed authentication of its client, and the rounds refuse
// well over the default 10 a minute.
func replayConfig() core.Config {
	return core.Config{
		Issuer:       testIssuer,
		Keys:         core.Keys{CryptKey: []byte("0123456789abcdef0123456789abcdef"), SignKey: []byte("fedcba9876543210fedcba9876543210")},
		Scopes:       []string{"read", "write"},
		Logger:       slog.New(slog.DiscardHandler),
		DPoP:         core.DPoP{Enabled: true},
		AuthThrottle: core.Throttle{PerAccount: 1 << 30, PerAddr: 1 << 30},
	}
}

// replayDeployment is two servers over one database, each with its own
// pool; db is a third pool for counting rows.
type replayDeployment struct {
	name  string
	store *gormstore.Store
	db    *gorm.DB
	a, b  *core.Server
}

func newReplayDeployment(t *testing.T, d *testDB) *replayDeployment {
	t.Helper()
	storeA, db := newStore(t, d)
	storeB := gormstore.New(d.connect(t))
	dep := &replayDeployment{name: d.name, store: storeA, db: db}
	for _, p := range []struct {
		srv   **core.Server
		store *gormstore.Store
	}{{&dep.a, storeA}, {&dep.b, storeB}} {
		auth := &signedIn{}
		srv, err := core.New(replayConfig(), p.store, auth)
		if err != nil {
			t.Fatal(err)
		}
		auth.srv = srv
		*p.srv = srv
	}
	return dep
}

func (dep *replayDeployment) instances() []*core.Server { return []*core.Server{dep.a, dep.b} }

func (dep *replayDeployment) replayRows(t *testing.T) int64 {
	t.Helper()
	return countRows(t, dep.db, "oauth2_replay", "")
}

// tokenRequest posts form to srv's token endpoint with the headers hdr.
// It may run on any goroutine: it reports, never fails the test.
func tokenRequest(srv *core.Server, hdr http.Header, form url.Values) *fakeResp {
	h := hdr.Clone()
	h.Set("Content-Type", "application/x-www-form-urlencoded")
	w := &fakeResp{hdr: http.Header{}}
	if !srv.Handle(w, &fakeReq{method: "POST", path: "/oauth2/token", body: form.Encode(), hdr: h}) {
		w.status, w.body = -1, []byte("not handled")
	}
	return w
}

// race sends one request per racer (racer i at instance i%2), all
// released at once, and returns the answers by racer.
func (dep *replayDeployment) race(send func(srv *core.Server) *fakeResp) []*fakeResp {
	resps := make([]*fakeResp, replayRacers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range replayRacers {
		srv := dep.instances()[i%2]
		wg.Go(func() {
			<-start
			resps[i] = send(srv)
		})
	}
	close(start)
	wg.Wait()
	return resps
}

// wantReplayRefused checks a 400 with the error code and a description saying
// the proof or assertion was used before.
func wantReplayRefused(t *testing.T, what string, w *fakeResp, code string) {
	t.Helper()
	if w.status != 400 {
		t.Errorf("%s: %d %s, want 400 %s", what, w.status, w.body, code)
		return
	}
	m := w.json(t)
	if d, _ := m["error_description"].(string); m["error"] != code || !strings.Contains(d, "used before") {
		t.Errorf("%s: %s, want error %s saying it was used before", what, w.body, code)
	}
}

// wantAccessToken checks a 200 token response of tokenType and returns
// its access token.
func wantAccessToken(t *testing.T, what string, w *fakeResp, tokenType string) string {
	t.Helper()
	if w.status != 200 {
		t.Errorf("%s: %d %s, want 200", what, w.status, w.body)
		return ""
	}
	m := w.json(t)
	at, _ := m["access_token"].(string)
	if at == "" || m["token_type"] != tokenType {
		t.Errorf("%s: %s, want a %s access token", what, w.body, tokenType)
	}
	return at
}

// ---- DPoP proofs (RFC 9449) ----

// replayDPoPKey is a client's DPoP key pair (as core's dpop_test.go
// makes proofs).
type replayDPoPKey struct{ priv *ecdsa.PrivateKey }

func newReplayDPoPKey(t *testing.T) *replayDPoPKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &replayDPoPKey{priv: k}
}

// jkt is the key's RFC 7638 thumbprint.
func (k *replayDPoPKey) jkt(t *testing.T) string {
	t.Helper()
	tp, err := (&jose.JSONWebKey{Key: k.priv.Public()}).Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(tp)
}

// proof is an ES256 proof for POST at the token endpoint, now, with a
// fresh jti.
func (k *replayDPoPKey) proof(t *testing.T) string {
	t.Helper()
	claims := map[string]any{"jti": rand.Text(), "htm": "POST", "htu": replayToken, "iat": time.Now().Unix()}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k.priv},
		(&jose.SignerOptions{EmbedJWK: true}).WithType("dpop+jwt"))
	if err != nil {
		t.Fatal(err)
	}
	return replaySign(t, signer, claims)
}

func replaySign(t *testing.T, signer jose.Signer, claims map[string]any) string {
	t.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestDPoPProofOnceAcrossInstances: one DPoP proof sent to the token
// endpoints of two instances over one database, concurrently or one
// after the other, gets a token once in all; every other copy is refused
// with 400 invalid_dpop_proof, and the replay table holds one record per
// accepted proof.
func TestDPoPProofOnceAcrossInstances(t *testing.T) {
	forEachDB(t, func(t *testing.T, d *testDB) {
		dep := newReplayDeployment(t, d)
		c, secret, err := core.NewClient(core.ClientSpec{ID: "dpop-conf", Name: "DPoP Conf", GrantTypes: []string{"client_credentials"}})
		if err != nil {
			t.Fatal(err)
		}
		if err := dep.store.SaveClient(bg, c); err != nil {
			t.Fatal(err)
		}
		key := newReplayDPoPKey(t)
		jkt := key.jkt(t)
		form := url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}
		send := func(srv *core.Server, proof string) *fakeResp {
			hdr := http.Header{}
			hdr.Set("Authorization", core.EncodeBasic(c.ID, secret))
			hdr.Set("DPoP", proof) // canonical key "Dpop", which Header("DPoP") reads
			return tokenRequest(srv, hdr, form)
		}
		// checkBound checks that an access token is bound to key, at
		// both instances.
		checkBound := func(what, at string) {
			t.Helper()
			for i, srv := range dep.instances() {
				info, err := srv.CheckToken(bg, at)
				if err != nil || info.ClientID != c.ID || info.JKT != jkt {
					t.Errorf("%s: CheckToken at instance %d: %+v, %v; want client %s bound to %s", what, i, info, err, c.ID, jkt)
				}
			}
		}
		dep.onceInAll(t, onceCase{
			what: "proof", fresh: func() string { return key.proof(t) }, send: send,
			tokenType: "DPoP", refusedCode: core.ErrInvalidDPoPProof, check: checkBound,
		})
	})
}

// onceCase is one credential that must be accepted once in all: fresh
// makes a new one, send presents it at an instance, check inspects the
// token the winner got.
type onceCase struct {
	what                   string
	fresh                  func() string
	send                   func(srv *core.Server, cred string) *fakeResp
	tokenType, refusedCode string
	check                  func(what, accessToken string)
}

// onceInAll races each fresh credential over both instances (exactly one
// winner per round, one replay row added), presents one at each instance
// in turn (the other refuses it), and checks that the replay table holds
// one row per accepted credential.
func (dep *replayDeployment) onceInAll(t *testing.T, oc onceCase) {
	t.Helper()
	accepted := int64(0)
	startRows := dep.replayRows(t)

	t.Run("Concurrent", func(t *testing.T) {
		winners := make([]int, replayRounds)
		refused := 0
		for round := range replayRounds {
			cred := oc.fresh()
			before := dep.replayRows(t)
			for i, w := range dep.race(func(srv *core.Server) *fakeResp { return oc.send(srv, cred) }) {
				if w.status == 200 {
					winners[round]++
					oc.check("round winner", wantAccessToken(t, "round winner", w, oc.tokenType))
					continue
				}
				refused++
				wantReplayRefused(t, fmt.Sprintf("round %d racer %d", round, i), w, oc.refusedCode)
			}
			if winners[round] != 1 {
				t.Errorf("round %d: %d racers were accepted with one %s, want exactly 1", round, winners[round], oc.what)
			}
			if n := dep.replayRows(t) - before; n != 1 {
				t.Errorf("round %d: %d replay records added, want 1", round, n)
			}
			accepted += int64(winners[round])
		}
		t.Logf("%s: %d rounds × %d racers over 2 instances; winners per round %v; %d refused %s",
			dep.name, replayRounds, replayRacers, winners, refused, oc.refusedCode)
	})

	t.Run("Sequential", func(t *testing.T) {
		for _, order := range [][2]int{{0, 1}, {1, 0}} {
			first, second := dep.instances()[order[0]], dep.instances()[order[1]]
			what := fmt.Sprintf("instance %d then %d", order[0], order[1])
			cred := oc.fresh()
			before := dep.replayRows(t)
			if at := wantAccessToken(t, what+": first use", oc.send(first, cred), oc.tokenType); at != "" {
				accepted++
				oc.check(what, at)
			}
			wantReplayRefused(t, what+": the copy at the other instance", oc.send(second, cred), oc.refusedCode)
			wantReplayRefused(t, what+": the copy again at the first instance", oc.send(first, cred), oc.refusedCode)
			if n := dep.replayRows(t) - before; n != 1 {
				t.Errorf("%s: %d replay records added, want 1", what, n)
			}
		}
	})

	if n := dep.replayRows(t) - startRows; n != accepted {
		t.Errorf("%d replay records for %d accepted %ss, want one each", n, accepted, oc.what)
	}
}

// ---- private_key_jwt client assertions (RFC 7523) ----

// replayAssertionKey is a private_key_jwt client's ES256 key (as core's
// clientassert_test.go makes assertions).
type replayAssertionKey struct {
	kid  string
	priv *ecdsa.PrivateKey
}

// jwks is the client's JWK Set: the public key, with kid and use.
func (k *replayAssertionKey) jwks(t *testing.T) string {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: k.priv.Public(), KeyID: k.kid, Use: "sig"}}})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// assertion is client id's assertion for the issuer, now, expiring in a
// minute, with a fresh jti.
func (k *replayAssertionKey) assertion(t *testing.T, id string) string {
	t.Helper()
	now := time.Now()
	claims := map[string]any{"iss": id, "sub": id, "aud": testIssuer, "iat": now.Unix(),
		"exp": now.Add(60 * time.Second).Unix(), "jti": "jti-" + rand.Text()}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k.priv},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", k.kid))
	if err != nil {
		t.Fatal(err)
	}
	return replaySign(t, signer, claims)
}

// TestClientAssertionOnceAcrossInstances: one private_key_jwt client
// assertion used at the token endpoints of two instances over one
// database, concurrently or one after the other, authenticates its client
// once in all; every other copy is refused with 400 invalid_client, and
// the replay table holds one record per accepted assertion.
func TestClientAssertionOnceAcrossInstances(t *testing.T) {
	forEachDB(t, func(t *testing.T, d *testDB) {
		dep := newReplayDeployment(t, d)
		priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		key := &replayAssertionKey{kid: "es", priv: priv}
		c, secret, err := core.NewClient(core.ClientSpec{ID: "pk-conf", Name: "PK Conf", GrantTypes: []string{"client_credentials"},
			AuthMethod: core.AuthPrivateKeyJWT, JWKS: key.jwks(t)})
		if err != nil || secret != "" {
			t.Fatalf("NewClient: secret %q, %v", secret, err)
		}
		if err := dep.store.SaveClient(bg, c); err != nil {
			t.Fatal(err)
		}
		send := func(srv *core.Server, assertion string) *fakeResp {
			return tokenRequest(srv, http.Header{}, url.Values{"grant_type": {"client_credentials"}, "scope": {"read"},
				"client_assertion_type": {core.ClientAssertionType}, "client_assertion": {assertion}})
		}
		checkClient := func(what, at string) {
			t.Helper()
			for i, srv := range dep.instances() {
				if info, err := srv.CheckToken(bg, at); err != nil || info.ClientID != c.ID {
					t.Errorf("%s: CheckToken at instance %d: %+v, %v; want a token of %s", what, i, info, err, c.ID)
				}
			}
		}
		dep.onceInAll(t, onceCase{
			what: "assertion", fresh: func() string { return key.assertion(t, c.ID) }, send: send,
			tokenType: "Bearer", refusedCode: core.ErrInvalidClient, check: checkClient,
		})
	})
}
