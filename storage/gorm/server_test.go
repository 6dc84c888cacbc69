package gormstore_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"gorm.io/driver/sqlite"
	"gorm.io/gorm"

	"github.com/oauth2kit/oauth2kit/core"
	gormstore "github.com/oauth2kit/oauth2kit/storage/gorm"
)

// A core.Request / core.Responder pair without any HTTP server: the store
// module has no adapter to lean on.

type fakeReq struct {
	method, path, query, body string
	hdr                       http.Header
}

func (r *fakeReq) Context() context.Context    { return context.Background() }
func (r *fakeReq) Method() string              { return r.method }
func (r *fakeReq) Path() string                { return r.path }
func (r *fakeReq) RawQuery() string            { return r.query }
func (r *fakeReq) Header(name string) []string { return r.hdr.Values(name) }
func (r *fakeReq) Body() io.Reader             { return strings.NewReader(r.body) }
func (r *fakeReq) RemoteAddr() string          { return "192.0.2.10:4000" }
func (r *fakeReq) TLS() bool                   { return true }

type fakeResp struct {
	status int
	hdr    http.Header
	body   []byte
}

func (w *fakeResp) SetHeader(k, v string) { w.hdr.Set(k, v) }
func (w *fakeResp) AddHeader(k, v string) { w.hdr.Add(k, v) }
func (w *fakeResp) Send(status int, b []byte) error {
	w.status, w.body = status, b
	return nil
}

func (w *fakeResp) json(tb testing.TB) map[string]any {
	tb.Helper()
	var m map[string]any
	if err := json.Unmarshal(w.body, &m); err != nil {
		tb.Fatalf("%d: body %q is not JSON", w.status, w.body)
	}
	return m
}

// signedIn is an Authenticator whose user is always signed in already: it
// grants at once.
type signedIn struct{ srv *core.Server }

func (a *signedIn) Login(w core.Responder, r core.Request, ar *core.AuthorizationRequest) {
	a.srv.SendGrant(w, r, ar, "alice", `{"plan":"gold"}`)
}

func (a *signedIn) ProcessLogin(w core.Responder, r core.Request, ar *core.AuthorizationRequest) {
	a.srv.SendGrant(w, r, ar, "alice", `{"plan":"gold"}`)
}

const (
	testIssuer   = "https://as.example.com"
	testCallback = "https://client.example.com/cb"
	testVerifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
)

// instance is one server (one process of a scaled-out deployment).
type instance struct {
	tb     testing.TB
	srv    *core.Server
	secret string
}

// newInstance builds a server on store. Every instance of a deployment
// shares the key material.
func newInstance(tb testing.TB, store core.Storage, secret string) *instance {
	tb.Helper()
	auth := &signedIn{}
	srv, err := core.New(core.Config{
		Issuer: testIssuer,
		Keys:   core.Keys{CryptKey: []byte("0123456789abcdef0123456789abcdef"), SignKey: []byte("fedcba9876543210fedcba9876543210")},

		Scopes: []string{"read", "write"},
		Logger: slog.New(slog.DiscardHandler),
	}, store, auth)
	if err != nil {
		tb.Fatal(err)
	}
	auth.srv = srv
	return &instance{tb: tb, srv: srv, secret: secret}
}

// registerClient stores the confidential client "conf" and returns its
// secret.
func registerClient(tb testing.TB, s *gormstore.Store) string {
	tb.Helper()
	c, secret, err := core.NewClient(core.ClientSpec{ID: "conf", Name: "Conf", RedirectURIs: []string{testCallback}})
	if err != nil {
		tb.Fatal(err)
	}
	if err := s.SaveClient(context.Background(), c); err != nil {
		tb.Fatal(err)
	}
	return secret
}

func (in *instance) do(r *fakeReq) *fakeResp {
	if r.hdr == nil {
		r.hdr = http.Header{}
	}
	w := &fakeResp{hdr: http.Header{}}
	if !in.srv.Handle(w, r) {
		in.tb.Fatalf("%s not handled", r.path)
	}
	return w
}

func (in *instance) post(path string, form url.Values) *fakeResp {
	return in.do(&fakeReq{method: "POST", path: path, body: form.Encode(), hdr: http.Header{
		"Content-Type":  {"application/x-www-form-urlencoded"},
		"Authorization": {core.EncodeBasic("conf", in.secret)},
	}})
}

// code runs the authorization endpoint and returns the code.
func (in *instance) code() string {
	in.tb.Helper()
	q := url.Values{"response_type": {"code"}, "client_id": {"conf"}, "redirect_uri": {testCallback},
		"scope": {"read"}, "state": {"s"}, "code_challenge": {core.S256Challenge(testVerifier)}, "code_challenge_method": {"S256"}}
	w := in.do(&fakeReq{method: "GET", path: "/oauth2/authorize", query: q.Encode()})
	if w.status != 303 {
		in.tb.Fatalf("authorize: %d %s", w.status, w.body)
	}
	loc, err := url.Parse(w.hdr.Get("Location"))
	if err != nil || loc.Query().Get("code") == "" {
		in.tb.Fatalf("authorize redirected to %q", w.hdr.Get("Location"))
	}
	return loc.Query().Get("code")
}

func (in *instance) exchange(code string) *fakeResp {
	return in.post("/oauth2/token", url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {testCallback}, "code_verifier": {testVerifier}})
}

func (in *instance) refresh(rt string) *fakeResp {
	return in.post("/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
}

func (in *instance) revoke(tok string) *fakeResp {
	return in.post("/oauth2/revoke", url.Values{"token": {tok}})
}

// tokens checks a 200 token response and returns its tokens.
func tokens(tb testing.TB, what string, w *fakeResp) (at, rt string) {
	tb.Helper()
	if w.status != 200 {
		tb.Fatalf("%s: %d %s", what, w.status, w.body)
	}
	m := w.json(tb)
	at, _ = m["access_token"].(string)
	rt, _ = m["refresh_token"].(string)
	if at == "" || rt == "" {
		tb.Fatalf("%s: no tokens in %s", what, w.body)
	}
	return at, rt
}

// TestScaleOut runs two servers, each with its own connection pool, on one
// database, as two instances behind a load balancer would.
func TestScaleOut(t *testing.T) {
	forEachDB(t, func(t *testing.T, d *testDB) {
		storeA, dbA := newStore(t, d)
		storeB := gormstore.New(d.connect(t))
		secret := registerClient(t, storeA)
		a, b := newInstance(t, storeA, secret), newInstance(t, storeB, secret)

		t.Run("CodeFromOneRedeemedAtOther", func(t *testing.T) {
			at, rt := tokens(t, "exchange at B of a code from A", b.exchange(a.code()))
			for _, in := range []*instance{a, b} {
				if info, err := in.srv.CheckToken(bg, at); err != nil || info.UserID != "alice" || info.AdditionalInfo != `{"plan":"gold"}` {
					t.Errorf("CheckToken: %+v, %v", info, err)
				}
			}
			tokens(t, "refresh at A of a token from B", a.refresh(rt))
		})

		t.Run("ConcurrentRedemptions", func(t *testing.T) {
			const rounds, racers = 20, 16
			winners := make([]int, rounds)
			var losers [600]int // by status
			for round := range rounds {
				code := []*instance{a, b}[round%2].code()
				before := countRows(t, dbA, "oauth2_refresh_tokens", "")
				resps := make([]*fakeResp, racers)
				start := make(chan struct{})
				var wg sync.WaitGroup
				for i := range racers {
					in := []*instance{a, b}[i%2]
					wg.Go(func() {
						<-start
						resps[i] = in.exchange(code)
					})
				}
				close(start)
				wg.Wait()
				for _, w := range resps {
					switch {
					case w.status == 200:
						winners[round]++
					case w.status == 400 && w.json(t)["error"] == "invalid_grant":
						losers[400]++
					default:
						losers[w.status]++
						t.Errorf("round %d: a racer got %d %s", round, w.status, w.body)
					}
				}
				if winners[round] != 1 {
					t.Errorf("round %d: %d racers got tokens for one code, want exactly 1", round, winners[round])
				}
				if n := countRows(t, dbA, "oauth2_refresh_tokens", "") - before; n != 1 {
					t.Errorf("round %d: %d refresh tokens stored, want 1", round, n)
				}
			}
			t.Logf("%s: %d rounds × %d racers over 2 instances; winners per round %v; losers: %d invalid_grant, %d other",
				d.name, rounds, racers, winners, losers[400], rounds*racers-rounds-losers[400])
		})

		t.Run("RevocationReachesOtherInstance", func(t *testing.T) {
			at1, rt1 := tokens(t, "exchange at A", a.exchange(a.code()))
			at2, rt2 := tokens(t, "refresh at B", b.refresh(rt1))
			if _, err := b.srv.CheckToken(bg, at2); err != nil {
				t.Fatalf("CheckToken at B before revocation: %v", err)
			}
			if w := a.revoke(rt2); w.status != 200 {
				t.Fatalf("revoke at A: %d %s", w.status, w.body)
			}
			if w := b.refresh(rt2); w.status != 400 || w.json(t)["error"] != "invalid_grant" {
				t.Errorf("refresh at B after revocation at A: %d %s", w.status, w.body)
			}
			for _, at := range []string{at1, at2} {
				if _, err := b.srv.CheckToken(bg, at); err == nil {
					t.Error("CheckToken at B accepts an access token of a family revoked at A")
				}
			}
		})

		t.Run("StorageFaultIssuesNothing", func(t *testing.T) {
			// Instance C's database connection fails every refresh token
			// write: its exchange answers 500 and the code stays good for
			// instance A.
			dbC := d.connect(t)
			failRefreshInserts(t, dbC)
			c := newInstance(t, gormstore.New(dbC), secret)
			code := a.code()
			if w := c.exchange(code); w.status != 500 || w.json(t)["error"] != "server_error" {
				t.Errorf("exchange with a failing store: %d %s, want 500 server_error", w.status, w.body)
			}
			tokens(t, "exchange at A after the failure at C", a.exchange(code))
		})
	})
}

// TestBusyDatabaseAnswers503: a lock conflict that outlasts the retries
// reaches the client as 503 temporarily_unavailable, and the code stays
// redeemable.
func TestBusyDatabaseAnswers503(t *testing.T) {
	path := filepath.Join(t.TempDir(), "busy.db")
	open := func(dsn string) *gormstore.Store {
		db, err := gorm.Open(sqlite.Open(dsn), gormConfig())
		if err != nil {
			t.Fatal(err)
		}
		return gormstore.New(pool(t, db, 2))
	}
	s := open(gormstore.SQLiteDSN(path))
	if err := s.Migrate(bg); err != nil {
		t.Fatal(err)
	}
	in := newInstance(t, s, registerClient(t, s))
	code := in.code()

	locker, err := sql.Open("sqlite3", gormstore.SQLiteDSN(path))
	if err != nil {
		t.Fatal(err)
	}
	defer locker.Close()
	conn, err := locker.Conn(bg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(bg, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	// An instance whose busy timeout (10 ms) the lock outlasts.
	busy := newInstance(t, open(path+"?_txlock=immediate&_busy_timeout=10&_journal_mode=WAL"), in.secret)
	w := busy.exchange(code)
	if _, err := conn.ExecContext(bg, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	if w.status != 503 || w.json(t)["error"] != "temporarily_unavailable" || w.hdr.Get("Retry-After") == "" {
		t.Errorf("exchange on a locked database: %d %v %s", w.status, w.hdr, w.body)
	}
	tokens(t, "exchange after the lock was released", busy.exchange(code))
}
