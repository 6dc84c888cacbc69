package core_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/oauth2kit/oauth2kit/core"
)

// recorder is an Events hook keeping what it is given.
type recorder struct {
	mu     sync.Mutex
	events []core.Event
}

func (r *recorder) hook(_ context.Context, e core.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) all() []core.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]core.Event(nil), r.events...)
}

func (r *recorder) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = nil
}

// of returns the events of kind k.
func (r *recorder) of(k core.EventKind) []core.Event {
	var out []core.Event
	for _, e := range r.all() {
		if e.Kind == k {
			out = append(out, e)
		}
	}
	return out
}

// one asserts that exactly one event of kind k was recorded and returns it.
func (r *recorder) one(t *testing.T, k core.EventKind) core.Event {
	t.Helper()
	got := r.of(k)
	if len(got) != 1 {
		t.Fatalf("%d %s events, want 1: %+v", len(got), k, r.all())
	}
	if got[0].Time.IsZero() {
		t.Errorf("%s event without a time", k)
	}
	return got[0]
}

func (r *recorder) none(t *testing.T, k core.EventKind) {
	t.Helper()
	if got := r.of(k); len(got) != 0 {
		t.Fatalf("%d %s events, want none: %+v", len(got), k, got)
	}
}

func withEvents(rec *recorder) func(*core.Config) {
	return func(c *core.Config) { c.Events = rec.hook }
}

// A code redemption and a refresh each report one issuance with the grant
// type, client, user, grant and format; nothing else fires.
func TestEventsTokenIssued(t *testing.T) {
	rec := &recorder{}
	e := newEnv(t, false, withEvents(rec))
	at, rt := e.tokens("read")
	fam := e.family(at)
	ev := rec.one(t, core.EventTokenIssued)
	if ev.GrantType != core.GrantAuthorizationCode || ev.ClientID != "conf" || ev.UserID != "alice" || ev.GrantID != fam ||
		ev.TokenFormat != core.TokenFormatSealed || ev.Scope != "read" || ev.RemoteAddr != "192.0.2.1:1234" || ev.ErrorCode != "" {
		t.Fatalf("issued event %+v", ev)
	}
	if n := len(rec.all()); n != 1 {
		t.Fatalf("%d events for one code flow, want 1: %+v", n, rec.all())
	}
	rec.reset()
	if w := e.refreshConf(rt, ""); w.status != 200 {
		t.Fatalf("refresh: %d %s", w.status, w.body)
	}
	ev = rec.one(t, core.EventTokenIssued)
	if ev.GrantType != core.GrantRefreshToken || ev.ClientID != "conf" || ev.UserID != "alice" || ev.GrantID != fam {
		t.Fatalf("refresh event %+v", ev)
	}
	rec.reset()
	w := e.token(url.Values{"grant_type": {core.GrantClientCredentials}, "scope": {"read"}}, basic("conf", e.secret))
	if w.status != 200 {
		t.Fatalf("client_credentials: %d %s", w.status, w.body)
	}
	ev = rec.one(t, core.EventTokenIssued)
	if ev.GrantType != core.GrantClientCredentials || ev.ClientID != "conf" || ev.UserID != "" || ev.GrantID != e.family(w.json(t)["access_token"].(string)) {
		t.Fatalf("client_credentials event %+v", ev)
	}
}

// A JWT access token is reported as such.
func TestEventsTokenFormatJWT(t *testing.T) {
	rec := &recorder{}
	e := newEnv(t, false, withEvents(rec), func(c *core.Config) {
		c.OIDC.SigningKeys = oidcKeys(t)
		c.Scopes = append(c.Scopes, core.ScopeOpenID)
		c.AccessTokenFormat = core.FormatJWT
	})
	e.tokens("read")
	if ev := rec.one(t, core.EventTokenIssued); ev.TokenFormat != core.TokenFormatJWT {
		t.Fatalf("format %q, want jwt", ev.TokenFormat)
	}
}

// A refused token request reports the error code and description sent,
// and the client once it authenticated.
func TestEventsTokenRefused(t *testing.T) {
	rec := &recorder{}
	e := newEnv(t, false, withEvents(rec))
	w := e.token(url.Values{"grant_type": {core.GrantClientCredentials}, "scope": {"nope"}}, basic("conf", e.secret))
	if w.status != 400 {
		t.Fatalf("bad scope: %d %s", w.status, w.body)
	}
	ev := rec.one(t, core.EventTokenRefused)
	if ev.ErrorCode != core.ErrInvalidScope || ev.Reason != w.json(t)["error_description"] || ev.ClientID != "conf" || ev.GrantType != core.GrantClientCredentials {
		t.Fatalf("refused event %+v", ev)
	}
	rec.none(t, core.EventTokenIssued)
	rec.reset()
	w = e.token(url.Values{"grant_type": {"urn:example:nothing"}}, basic("conf", e.secret))
	if w.status != 400 {
		t.Fatalf("unknown grant: %d %s", w.status, w.body)
	}
	if ev := rec.one(t, core.EventTokenRefused); ev.ErrorCode != core.ErrUnsupportedGrantType || ev.ClientID != "" || ev.GrantType != "" {
		t.Fatalf("unsupported grant event %+v", ev)
	}
}

// A replayed code (the attack of RFC 9700 §4.2.4) reports one replay with
// the grant revoked, and a refusal; the first redemption one issuance.
func TestEventsCodeReplay(t *testing.T) {
	rec := &recorder{}
	e := newEnv(t, false, withEvents(rec))
	code := e.code("read")
	at, _ := e.redeem(code)
	fam := e.family(at)
	w := e.token(url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {confCB}, "code_verifier": {verifier}}, basic("conf", e.secret))
	if w.status != 400 || w.json(t)["error"] != core.ErrInvalidGrant {
		t.Fatalf("replay: %d %s", w.status, w.body)
	}
	ev := rec.one(t, core.EventCodeReplay)
	if ev.ClientID != "conf" || ev.UserID != "alice" || ev.GrantID != fam || !ev.FamilyRevoked || ev.GrantType != core.GrantAuthorizationCode {
		t.Fatalf("replay event %+v", ev)
	}
	if !e.revoked(fam) {
		t.Fatal("the replayed grant was not revoked")
	}
	rec.one(t, core.EventTokenIssued)
	if ev := rec.one(t, core.EventTokenRefused); ev.ErrorCode != core.ErrInvalidGrant {
		t.Fatalf("refused event %+v", ev)
	}
	// A replay with a wrong verifier proves nothing: reported, not revoked.
	rec.reset()
	code = e.code("read")
	at, _ = e.redeem(code)
	w = e.token(url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {confCB}, "code_verifier": {strings.Repeat("x", 43)}}, basic("conf", e.secret))
	if w.status != 400 {
		t.Fatalf("replay with a wrong verifier: %d %s", w.status, w.body)
	}
	if ev := rec.one(t, core.EventCodeReplay); ev.FamilyRevoked || ev.GrantID != e.family(at) {
		t.Fatalf("wrong-verifier replay event %+v", ev)
	}
}

// A rotated-out refresh token coming back reports one reuse naming the
// grant it revoked.
func TestEventsRefreshReuse(t *testing.T) {
	rec := &recorder{}
	e := newEnv(t, false, withEvents(rec))
	at, rt := e.tokens("read")
	fam := e.family(at)
	if w := e.refreshConf(rt, ""); w.status != 200 {
		t.Fatalf("refresh: %d %s", w.status, w.body)
	}
	rec.reset()
	if w := e.refreshConf(rt, ""); w.status != 400 {
		t.Fatalf("reuse: %d %s", w.status, w.body)
	}
	ev := rec.one(t, core.EventRefreshReuse)
	if ev.GrantID != fam || ev.ClientID != "conf" || ev.UserID != "alice" || !ev.FamilyRevoked {
		t.Fatalf("reuse event %+v", ev)
	}
	if !e.revoked(fam) {
		t.Fatal("the family survived the reuse")
	}
	rec.one(t, core.EventTokenRefused)
	rec.none(t, core.EventTokenIssued)
}

// A wrong secret, an unknown client and a throttled client each report one
// authentication failure naming the client claimed.
func TestEventsClientAuthFailed(t *testing.T) {
	rec := &recorder{}
	e := newEnv(t, false, withEvents(rec))
	cc := url.Values{"grant_type": {core.GrantClientCredentials}}
	if w := e.token(cc, basic("conf", "wrong-secret-value")); w.status != 401 {
		t.Fatalf("wrong secret: %d %s", w.status, w.body)
	}
	ev := rec.one(t, core.EventClientAuthFailed)
	if ev.ClientID != "conf" || ev.Reason == "" || ev.RemoteAddr == "" {
		t.Fatalf("auth failed event %+v", ev)
	}
	if ev := rec.one(t, core.EventTokenRefused); ev.ErrorCode != core.ErrInvalidClient || ev.ClientID != "" {
		t.Fatalf("refused event %+v", ev)
	}
	rec.reset()
	if w := e.token(cc, basic("ghost", "x")); w.status != 401 {
		t.Fatalf("unknown client: %d %s", w.status, w.body)
	}
	if ev := rec.one(t, core.EventClientAuthFailed); ev.ClientID != "ghost" || ev.Reason != "unknown client" {
		t.Fatalf("unknown client event %+v", ev)
	}
	// Keep failing until the throttle answers 429: that reports once.
	for range 50 {
		rec.reset()
		w := e.token(cc, basic("conf", "wrong-secret-value"))
		if w.status == 429 {
			if ev := rec.one(t, core.EventClientAuthFailed); ev.Reason != "throttled" || ev.ClientID != "conf" {
				t.Fatalf("throttled event %+v", ev)
			}
			return
		}
		rec.one(t, core.EventClientAuthFailed)
	}
	t.Fatal("never throttled")
}

// LoginFailed reports each failure, LoginAllowed the refusal, and neither
// carries the user name typed.
func TestEventsLogin(t *testing.T) {
	rec := &recorder{}
	e := newEnv(t, false, withEvents(rec))
	r := &fakeReq{method: "POST", path: "/oauth2/login", hdr: http.Header{}}
	for n := 1; n <= 50; n++ {
		w := newResp()
		if !e.srv.LoginAllowed(w, r, "Mallory") {
			if ev := rec.one(t, core.EventLoginThrottled); ev.RemoteAddr != r.RemoteAddr() || ev.UserID != "" {
				t.Fatalf("throttled event %+v", ev)
			}
			if got := len(rec.of(core.EventLoginFailed)); got != n-1 {
				t.Fatalf("%d login failed events for %d failures", got, n-1)
			}
			return
		}
		e.srv.LoginFailed(r, "Mallory")
		for _, ev := range rec.all() {
			if ev.UserID != "" || strings.Contains(jsonOf(t, ev), "Mallory") {
				t.Fatalf("login event carries the user name: %+v", ev)
			}
		}
	}
	t.Fatal("never throttled")
}

// The consent page's approve and deny each report once.
func TestEventsConsent(t *testing.T) {
	for _, decision := range []string{"approve", "deny"} {
		t.Run(decision, func(t *testing.T) {
			rec := &recorder{}
			e := newEnv(t, true, withEvents(rec))
			w := e.login(e.authorize(codeQuery("conf", confCB, "read write", "st")), "alice", "pw")
			if w.status != 200 {
				t.Fatalf("login: %d %s", w.status, w.body)
			}
			f := hidden(t, w.body)
			f.Set("decision", decision)
			if w = e.post("/oauth2/login", f, nil); w.status != 303 {
				t.Fatalf("decision: %d %s", w.status, w.body)
			}
			kind, other := core.EventConsentGiven, core.EventConsentDenied
			if decision == "deny" {
				kind, other = other, kind
			}
			ev := rec.one(t, kind)
			if ev.ClientID != "conf" || ev.UserID != "alice" || ev.Scope != "read write" {
				t.Fatalf("consent event %+v", ev)
			}
			rec.none(t, other)
		})
	}
}

// A device approval and a denial each report once, the approval with the
// grant its token then comes from.
func TestEventsDevice(t *testing.T) {
	for _, decision := range []string{"approve", "deny"} {
		t.Run(decision, func(t *testing.T) {
			rec := &recorder{}
			e := deviceEnv(t, withEvents(rec))
			d := e.deviceStart("read")
			if w := e.approveDevice(d["user_code"].(string), decision); w.status != 200 {
				t.Fatalf("decision: %d %s", w.status, w.body)
			}
			if decision == "deny" {
				if ev := rec.one(t, core.EventDeviceDenied); ev.ClientID != tvClient || ev.UserID != "alice" || ev.GrantID != "" {
					t.Fatalf("denied event %+v", ev)
				}
				rec.one(t, core.EventConsentDenied)
				rec.none(t, core.EventDeviceApproved)
				return
			}
			ev := rec.one(t, core.EventDeviceApproved)
			if ev.ClientID != tvClient || ev.UserID != "alice" || ev.Scope != "read" || ev.GrantID == "" {
				t.Fatalf("approved event %+v", ev)
			}
			rec.one(t, core.EventConsentGiven)
			e.now = e.now.Add(10e9)
			w := e.devicePoll(d["device_code"].(string))
			if w.status != 200 {
				t.Fatalf("poll: %d %s", w.status, w.body)
			}
			if is := rec.one(t, core.EventTokenIssued); is.GrantType != core.GrantDeviceCode || is.GrantID != ev.GrantID || is.ClientID != tvClient {
				t.Fatalf("issued event %+v (approval %+v)", is, ev)
			}
		})
	}
}

// RotateKeys reports the key it published; SetSigningKeys a change.
func TestEventsKeyRotated(t *testing.T) {
	rec := &recorder{}
	e := newEnv(t, false, withEvents(rec), func(c *core.Config) {
		c.OIDC.SigningKeys = oidcKeys(t)
		c.Scopes = append(c.Scopes, core.ScopeOpenID)
	})
	e.now = e.now.Add(48 * 3600e9)
	next := oidcKeys(t)[0]
	keys, err := e.srv.RotateKeys(next)
	if err != nil {
		t.Fatal(err)
	}
	ev := rec.one(t, core.EventKeyRotated)
	if ev.KeyID == "" || ev.KeyID != keys[len(keys)-1].ID {
		t.Fatalf("rotated event %+v, keys %v", ev, keys)
	}
	rec.reset()
	if err := e.srv.SetSigningKeys(keys); err != nil {
		t.Fatal(err)
	}
	rec.one(t, core.EventKeyRotated)
}

// A dynamic registration reports the client created, once.
func TestEventsClientRegistered(t *testing.T) {
	rec := &recorder{}
	e := newEnv(t, true, withEvents(rec), openRegistration)
	w := e.register(mcpRegistration, nil, "198.51.100.7:4000")
	if w.status != 201 {
		t.Fatalf("register: %d %s", w.status, w.body)
	}
	ev := rec.one(t, core.EventClientRegistered)
	if ev.ClientID == "" || ev.ClientID != w.json(t)["client_id"] || ev.RemoteAddr != "198.51.100.7:4000" {
		t.Fatalf("registered event %+v", ev)
	}
}

// A hook that panics neither fails the request nor crashes the server.
func TestEventsHookPanics(t *testing.T) {
	calls := 0
	e := newEnv(t, false, func(c *core.Config) {
		c.Events = func(context.Context, core.Event) { calls++; panic("boom") }
	})
	at, rt := e.tokens("read")
	if _, err := e.srv.CheckToken(context.Background(), at); err != nil {
		t.Fatal(err)
	}
	if w := e.refreshConf(rt, ""); w.status != 200 {
		t.Fatalf("refresh with a panicking hook: %d %s", w.status, w.body)
	}
	if w := e.refreshConf(rt, ""); w.status != 400 {
		t.Fatalf("reuse with a panicking hook: %d %s", w.status, w.body)
	}
	if calls < 3 {
		t.Fatalf("the hook ran %d times", calls)
	}
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// No event holds a token, code, secret or password: a whole flow with its
// attacks and failures, every event JSON-encoded and searched for each of
// them.
func TestEventsCarryNoSecrets(t *testing.T) {
	rec := &recorder{}
	e := newEnv(t, true, withEvents(rec), openRegistration)
	var secrets []string
	code := e.code("read write")
	at, rt := e.redeem(code)
	secrets = append(secrets, code, at, rt, e.secret, "pw", verifier)
	// Replay the code, refresh, reuse the old refresh token.
	e.token(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {confCB}, "code_verifier": {verifier}}, basic("conf", e.secret))
	at2, rt2 := e.tokens("read")
	w := e.refreshConf(rt2, "")
	m := w.json(t)
	secrets = append(secrets, at2, rt2, m["access_token"].(string), m["refresh_token"].(string))
	e.refreshConf(rt2, "")
	// A wrong secret, and a secret sent as the client id.
	e.token(url.Values{"grant_type": {core.GrantClientCredentials}}, basic("conf", "wrong-secret-value-1"))
	e.token(url.Values{"grant_type": {core.GrantClientCredentials}, "client_id": {"conf"}, "client_secret": {"wrong-secret-value-2"}}, nil)
	secrets = append(secrets, "wrong-secret-value-1", "wrong-secret-value-2")
	// A failed login with the password typed into the user name field.
	e.srv.LoginFailed(&fakeReq{method: "POST", path: "/oauth2/login", hdr: http.Header{}}, "hunter2-password")
	secrets = append(secrets, "hunter2-password")
	// A registration, which answers with a secret and an access token.
	reg := e.register(`{"redirect_uris":["https://rp.example.com/cb"],"client_name":"RP","scope":"read"}`, nil, "")
	rm := reg.json(t)
	for _, k := range []string{"client_secret", "registration_access_token"} {
		if s, _ := rm[k].(string); s != "" {
			secrets = append(secrets, s)
		}
	}
	all := rec.all()
	for _, k := range []core.EventKind{core.EventTokenIssued, core.EventTokenRefused, core.EventCodeReplay, core.EventRefreshReuse,
		core.EventClientAuthFailed, core.EventLoginFailed, core.EventClientRegistered} {
		if len(rec.of(k)) == 0 {
			t.Errorf("the flow produced no %s event", k)
		}
	}
	enc := jsonOf(t, all)
	for _, s := range secrets {
		if s != "" && strings.Contains(enc, s) {
			t.Errorf("an event holds the secret %q: %s", s, enc)
		}
	}
}

// An app that writes events somewhere hands them to its own queue: the
// hook runs on the request's goroutine and must not block.
func ExampleConfig_events() {
	queue := make(chan core.Event, 1024)
	go func() {
		for e := range queue {
			_ = e // write to the audit log, count a metric, ...
		}
	}()
	cfg := core.Config{
		Events: func(_ context.Context, e core.Event) {
			select {
			case queue <- e:
			default: // full: drop rather than slow the request
			}
		},
	}
	_ = cfg
}
