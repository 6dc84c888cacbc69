package storagetest

import (
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/oauth2kit/oauth2kit/core"
)

// ModelConfig sizes RunModel.
type ModelConfig struct {
	// Sequences of Steps random operations each; sequence i uses the seed
	// Seed+i. Zero values mean 200 sequences of 50 steps from seed 1.
	Sequences, Steps int
	Seed             int64
	// SetClock, if set, is called once with the model's clock, for a store
	// that sweeps expired state by its own clock (memstore.SetClock).
	SetClock func(now func() time.Time)
}

// Lifetimes of the model's server: short, so that the model's clock
// steps cross them often.
const (
	modelCodeLife    = time.Minute
	modelAccessLife  = 5 * time.Minute
	modelRefreshLife = time.Hour
)

// RunModel is a model-based test of the code and refresh-token lifecycle,
// run through a core.Server on s: random sequences of operations (issue a
// code, redeem it, replay it, redeem it with a wrong verifier, refresh,
// reuse a rotated-out refresh token, revoke an access or refresh token,
// move the clock past code, access or refresh expiry), each answer checked
// against a small in-memory model, and after every step every access token
// (CheckToken), every unexpired refresh token (its stored state) and every
// family (IsFamilyRevoked) checked against it. A failure names the seed
// and lists the steps so far; rerun one sequence with
// ModelConfig{Seed: seed, Sequences: 1}.
//
// Every sequence works on fresh tokens; s may be shared with other tests.
func RunModel(t *testing.T, s Store, cfg ModelConfig) {
	t.Helper()
	if cfg.Sequences <= 0 {
		cfg.Sequences = 200
	}
	if cfg.Steps <= 0 {
		cfg.Steps = 50
	}
	if cfg.Seed == 0 {
		cfg.Seed = 1
	}
	clock := time.Now().UTC().Truncate(time.Second)
	now := func() time.Time { return clock }
	if cfg.SetClock != nil {
		cfg.SetClock(now)
	}
	m := &model{t: t, store: s, now: now, stats: map[string]int{}}
	m.setup(now)
	for i := range cfg.Sequences {
		seed := cfg.Seed + int64(i)
		m.reset(rand.New(rand.NewSource(seed)))
		for range cfg.Steps {
			m.step(&clock)
			if t.Failed() {
				t.Fatalf("model: seed %d failed after the steps:\n\t%s\n(rerun with ModelConfig{Seed: %d, Sequences: 1, Steps: %d})",
					seed, strings.Join(m.log, "\n\t"), seed, cfg.Steps)
			}
		}
		clock = clock.Add(24 * time.Hour) // the next sequence starts clear of this one
	}
	t.Logf("model: %d sequences × %d steps from seed %d; outcomes %v", cfg.Sequences, cfg.Steps, cfg.Seed, m.stats)
}

var modelSignKey = []byte("model-sign-key-0123456789abcdef!")

type modelCode struct {
	code   string
	exp    time.Time
	state  int // codeFresh, codeRedeemed, codeBurned
	family string
}

const (
	codeFresh = iota
	codeRedeemed
	codeBurned
)

type modelRT struct {
	tok, sig, family string
	exp              time.Time
	rotated          bool
}

type modelAT struct {
	tok, family string
	exp         time.Time
}

type model struct {
	t      *testing.T
	store  Store
	srv    *core.Server
	now    func() time.Time
	client string
	secret string
	rtKey  []byte

	stats map[string]int // outcomes over the whole run

	rnd      *rand.Rand
	log      []string
	codes    []*modelCode
	rts      []*modelRT
	ats      []*modelAT
	families map[string]time.Time // revoked family -> record kept until
	known    map[string]bool      // every family seen
}

func (m *model) setup(now func() time.Time) {
	t := m.t
	c, secret, err := core.NewClient(core.ClientSpec{ID: uid("model"), RedirectURIs: []string{"https://client.example/cb"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.store.SaveClient(bg, c); err != nil {
		t.Fatalf("SaveClient: %v", err)
	}
	m.client, m.secret = c.ID, secret
	srv, err := core.New(core.Config{
		Issuer: "https://as.model.example",
		Keys:   core.Keys{CryptKey: []byte("model-crypt-key-0123456789abcdef"), SignKey: modelSignKey},

		Scopes:    []string{"read", "write"},
		Now:       now,
		Lifetimes: core.Lifetimes{Code: modelCodeLife, AccessToken: modelAccessLife, RefreshToken: modelRefreshLife},

		AuthThrottle: core.Throttle{PerAccount: 1 << 30, PerAddr: 1 << 30},

		Logger: slog.New(slog.DiscardHandler),
	}, m.store, signedInAuth{srv: &m.srv})
	if err != nil {
		t.Fatal(err)
	}
	m.srv = srv
	if m.rtKey, err = hkdf.Key(sha256.New, modelSignKey, nil, "oauth2kit/v1/rt/hmac", 32); err != nil {
		t.Fatal(err)
	}
}

func (m *model) reset(r *rand.Rand) {
	m.rnd, m.log = r, nil
	m.codes, m.rts, m.ats = nil, nil, nil
	m.families, m.known = map[string]time.Time{}, map[string]bool{}
}

func (m *model) logf(format string, args ...any) {
	m.log = append(m.log, fmt.Sprintf("%s: ", m.now().Format("15:04:05"))+fmt.Sprintf(format, args...))
}

// signedInAuth knows the user at once: the authorization request answers
// with the code.
type signedInAuth struct{ srv **core.Server }

func (a signedInAuth) Login(w core.Responder, r core.Request, ar *core.AuthorizationRequest) {
	(*a.srv).SendGrant(w, r, ar, "alice", "")
}

func (a signedInAuth) ProcessLogin(w core.Responder, r core.Request, ar *core.AuthorizationRequest) {
	(*a.srv).SendGrant(w, r, ar, "alice", "")
}

// modelReq and modelResp are a core.Request and core.Responder without an
// HTTP server.
type modelReq struct {
	method, path, query, body string
	hdr                       http.Header
}

func (r *modelReq) Context() context.Context    { return bg }
func (r *modelReq) Method() string              { return r.method }
func (r *modelReq) Path() string                { return r.path }
func (r *modelReq) RawQuery() string            { return r.query }
func (r *modelReq) Header(name string) []string { return r.hdr.Values(name) }
func (r *modelReq) Body() io.Reader             { return strings.NewReader(r.body) }
func (r *modelReq) RemoteAddr() string          { return "192.0.2.7:1234" }
func (r *modelReq) TLS() bool                   { return true }

type modelResp struct {
	status int
	hdr    http.Header
	body   []byte
}

func (w *modelResp) SetHeader(k, v string) { w.hdr.Set(k, v) }
func (w *modelResp) AddHeader(k, v string) { w.hdr.Add(k, v) }
func (w *modelResp) Send(status int, b []byte) error {
	w.status, w.body = status, b
	return nil
}

func (m *model) do(r *modelReq) *modelResp {
	if r.hdr == nil {
		r.hdr = http.Header{}
	}
	w := &modelResp{hdr: http.Header{}}
	if !m.srv.Handle(w, r) {
		m.t.Fatalf("path %s not handled", r.path)
	}
	return w
}

func (m *model) post(path string, form url.Values) *modelResp {
	return m.do(&modelReq{method: "POST", path: path, body: form.Encode(), hdr: http.Header{
		"Content-Type":  {"application/x-www-form-urlencoded"},
		"Authorization": {core.EncodeBasic(m.client, m.secret)},
	}})
}

const modelVerifier = "model-verifier-0123456789-0123456789-0123456789"

// tokens reads a token response: 200 with both tokens, or an error without
// any.
func (m *model) tokens(what string, w *modelResp, wantOK bool) (at, rt string) {
	t := m.t
	m.stats[what]++
	var body struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
		Error        string `json:"error"`
	}
	if err := json.Unmarshal(w.body, &body); err != nil {
		t.Errorf("%s: body %q is not JSON", what, w.body)
		return
	}
	if !wantOK {
		if w.status != 400 || body.Error != core.ErrInvalidGrant || body.AccessToken != "" || body.RefreshToken != "" {
			t.Errorf("%s: %d %s, want 400 invalid_grant", what, w.status, w.body)
		}
		return
	}
	if w.status != 200 || body.AccessToken == "" || body.RefreshToken == "" {
		t.Errorf("%s: %d %s, want 200 with both tokens", what, w.status, w.body)
	}
	return body.AccessToken, body.RefreshToken
}

func (m *model) familyOf(at string) string {
	info, err := m.srv.CheckToken(bg, at)
	if err != nil {
		m.t.Errorf("a fresh access token does not check: %v", err)
		return ""
	}
	return info.GrantID
}

func (m *model) revoked(f string) bool {
	_, ok := m.families[f]
	return ok
}

func (m *model) revoke(f string) {
	m.families[f] = m.now().Add(modelRefreshLife + modelAccessLife)
}

func (m *model) addTokens(at, rt, family string) {
	now := m.now()
	m.ats = append(m.ats, &modelAT{tok: at, family: family, exp: now.Add(modelAccessLife)})
	mac := hmac.New(sha256.New, m.rtKey)
	mac.Write([]byte(rt))
	m.rts = append(m.rts, &modelRT{tok: rt, sig: base64.RawURLEncoding.EncodeToString(mac.Sum(nil)), family: family, exp: now.Add(modelRefreshLife)})
}

func pick[T any](r *rand.Rand, l []T) (T, bool) {
	var zero T
	if len(l) == 0 {
		return zero, false
	}
	// Favour recent items: half the picks come from the last three.
	if len(l) > 3 && r.Intn(2) == 0 {
		return l[len(l)-1-r.Intn(3)], true
	}
	return l[r.Intn(len(l))], true
}

func (m *model) step(clock *time.Time) {
	now := m.now()
	switch op := m.rnd.Intn(100); {
	case op < 18 || len(m.codes) == 0:
		m.issueCode()
	case op < 36:
		c, _ := pick(m.rnd, m.codes)
		v := modelVerifier
		if c.state == codeRedeemed && !now.Before(c.exp) {
			// A valid replay of a used code past its expiry may or may not
			// be recognised (the contract lets a store forget used codes
			// then): not a deterministic step.
			v = "wrong-" + modelVerifier
		}
		m.redeem(c, v)
	case op < 44:
		c, _ := pick(m.rnd, m.codes)
		m.redeem(c, "wrong-"+modelVerifier)
	case op < 70:
		if rt, ok := pick(m.rnd, m.rts); ok {
			m.refresh(rt)
		}
	case op < 78:
		if rt, ok := pick(m.rnd, m.rts); ok && now.Before(rt.exp) {
			// (An expired refresh token may be swept by the store, or
			// not: revoking it is not a deterministic step.)
			m.revokeToken(rt.tok, rt.family, "refresh token")
		}
	case op < 86:
		if at, ok := pick(m.rnd, m.ats); ok {
			m.revokeToken(at.tok, at.family, "access token")
		}
	default:
		d := []time.Duration{time.Second, 10 * time.Second, 30 * time.Second, modelCodeLife + time.Second,
			modelAccessLife + time.Second, modelRefreshLife + time.Second}[m.rnd.Intn(6)]
		*clock = clock.Add(d)
		m.stats["advance the clock"]++
		m.logf("advance the clock by %v", d)
	}
	m.check()
}

func (m *model) issueCode() {
	q := url.Values{"response_type": {"code"}, "client_id": {m.client}, "scope": {"read"},
		"code_challenge": {core.S256Challenge(modelVerifier)}, "code_challenge_method": {"S256"}}
	w := m.do(&modelReq{method: "GET", path: "/oauth2/authorize", query: q.Encode()})
	loc, err := url.Parse(w.hdr.Get("Location"))
	if w.status != 303 || err != nil || loc.Query().Get("code") == "" {
		m.t.Errorf("issue a code: %d %q %s", w.status, w.hdr.Get("Location"), w.body)
		return
	}
	c := &modelCode{code: loc.Query().Get("code"), exp: m.now().Add(modelCodeLife)}
	m.codes = append(m.codes, c)
	m.logf("issue code #%d", len(m.codes)-1)
}

func (m *model) codeIndex(c *modelCode) int {
	for i, x := range m.codes {
		if x == c {
			return i
		}
	}
	return -1
}

func (m *model) redeem(c *modelCode, v string) {
	valid := v == modelVerifier
	m.logf("redeem code #%d (state %d, expired %v) with a valid verifier: %v", m.codeIndex(c), c.state, !m.now().Before(c.exp), valid)
	w := m.post("/oauth2/token", url.Values{"grant_type": {"authorization_code"}, "code": {c.code},
		"redirect_uri": {"https://client.example/cb"}, "code_verifier": {v}})
	live := m.now().Before(c.exp)
	switch {
	case c.state == codeFresh && live && valid:
		at, rt := m.tokens("redeem a fresh code", w, true)
		if at == "" {
			return
		}
		f := m.familyOf(at)
		if m.known[f] {
			m.t.Errorf("a new grant reuses family %q", f)
		}
		m.known[f] = true
		c.state, c.family = codeRedeemed, f
		m.addTokens(at, rt, f)
	case c.state == codeFresh && live:
		m.tokens("redeem a fresh code with a wrong verifier", w, false)
		c.state = codeBurned // R30: the failed attempt burned it
	case c.state == codeRedeemed && valid:
		m.tokens("replay a redeemed code", w, false)
		m.revoke(c.family) // R31: a valid replay revokes what the code issued
	default:
		// Expired, burned, or a replay that proves nothing: refused, no
		// revocation.
		m.tokens("redeem a used, burned or expired code", w, false)
	}
}

func (m *model) rtIndex(rt *modelRT) int {
	for i, x := range m.rts {
		if x == rt {
			return i
		}
	}
	return -1
}

func (m *model) refresh(rt *modelRT) {
	live := m.now().Before(rt.exp)
	m.logf("refresh with token #%d (rotated %v, expired %v, family revoked %v)", m.rtIndex(rt), rt.rotated, !live, m.revoked(rt.family))
	w := m.post("/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt.tok}})
	switch {
	case live && !rt.rotated && !m.revoked(rt.family):
		at, nrt := m.tokens("refresh", w, true)
		if at == "" {
			return
		}
		if f := m.familyOf(at); f != rt.family {
			m.t.Errorf("refresh moved the family from %q to %q", rt.family, f)
		}
		rt.rotated = true
		m.addTokens(at, nrt, rt.family)
	case live && rt.rotated:
		m.tokens("reuse a rotated-out refresh token", w, false)
		m.revoke(rt.family) // R37
	default:
		m.tokens("refresh with an expired or revoked token", w, false)
	}
}

func (m *model) revokeToken(tok, family, what string) {
	m.logf("revoke the %s of family %.8s", what, family)
	m.stats["revoke "+what]++
	w := m.post("/oauth2/revoke", url.Values{"token": {tok}})
	if w.status != 200 {
		m.t.Errorf("revoke: %d %s", w.status, w.body)
		return
	}
	m.revoke(family)
}

// check compares the server and the store with the model.
func (m *model) check() {
	t, now := m.t, m.now()
	for i, at := range m.ats {
		_, err := m.srv.CheckToken(bg, at.tok)
		want := now.Before(at.exp) && !m.revoked(at.family)
		if (err == nil) != want {
			t.Errorf("access token #%d (family %.8s, expired %v, revoked %v): CheckToken error %v", i, at.family, !now.Before(at.exp), m.revoked(at.family), err)
		}
	}
	for i, rt := range m.rts {
		if !now.Before(rt.exp) {
			continue // a store may sweep it
		}
		got, err := m.store.GetRefreshToken(bg, rt.sig)
		if err != nil {
			t.Errorf("refresh token #%d: GetRefreshToken: %v", i, err)
			continue
		}
		if (got.RotatedAt != nil) != rt.rotated || got.FamilyID != rt.family {
			t.Errorf("refresh token #%d: stored %+v, model rotated=%v family=%q", i, got, rt.rotated, rt.family)
		}
	}
	for f := range m.known {
		keep, revoked := m.families[f]
		if revoked && !now.Before(keep) {
			continue // the record may be dropped
		}
		got, err := m.store.IsFamilyRevoked(bg, f)
		if err != nil || got != revoked {
			t.Errorf("family %.8s: IsFamilyRevoked = %v, %v; model %v", f, got, err, revoked)
		}
	}
}
