package core_test

import (
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oauth2kit/oauth2kit/core"
	"github.com/oauth2kit/oauth2kit/core/memstore"
)

const tvClient = "tv"

// deviceEnv is newEnv (with consent) with the device grant on and a
// public client "tv" allowed it.
func deviceEnv(t *testing.T, mod ...func(*core.Config)) *env {
	t.Helper()
	e := newEnv(t, true, append([]func(*core.Config){quietLog, func(c *core.Config) { c.Device.Enabled = true }}, mod...)...)
	c, _, err := core.NewClient(core.ClientSpec{ID: tvClient, Name: "Living Room TV", Public: true,
		GrantTypes: []string{core.GrantDeviceCode, core.GrantRefreshToken}})
	if err != nil {
		t.Fatal(err)
	}
	e.store.AddClient(c)
	return e
}

// deviceStart asks for a device code as "tv".
func (e *env) deviceStart(scope string) map[string]any {
	e.t.Helper()
	f := url.Values{"client_id": {tvClient}}
	if scope != "" {
		f.Set("scope", scope)
	}
	w := e.post("/oauth2/device_authorization", f, nil)
	if w.status != 200 {
		e.t.Fatalf("device authorization: %d %s", w.status, w.body)
	}
	return w.json(e.t)
}

func (e *env) devicePoll(deviceCode string) *fakeResp {
	return e.post("/oauth2/token", url.Values{"grant_type": {core.GrantDeviceCode}, "device_code": {deviceCode}, "client_id": {tvClient}}, nil)
}

var deviceCSRFRe = regexp.MustCompile(`name="csrf_token" value="([^"]*)"`)

// enterCode opens the verification page and submits code on it.
func (e *env) enterCode(code string) *fakeResp {
	e.t.Helper()
	page := e.do(&fakeReq{method: "GET", path: "/device"})
	m := deviceCSRFRe.FindSubmatch(page.body)
	if page.status != 200 || m == nil {
		e.t.Fatalf("verification page: %d %s", page.status, page.body)
	}
	return e.post("/device", url.Values{"user_code": {code}, "csrf_token": {string(m[1])}}, nil)
}

// approveDevice enters code, logs in and answers the consent page.
func (e *env) approveDevice(code, decision string) *fakeResp {
	e.t.Helper()
	login := e.enterCode(code)
	if login.status != 200 || !strings.Contains(string(login.body), core.FieldRequest) {
		e.t.Fatalf("entering %q: %d %s", code, login.status, login.body)
	}
	consent := e.login(login, "alice", "pw")
	if consent.status != 200 || !strings.Contains(string(consent.body), "Living Room TV wants") {
		e.t.Fatalf("login: %d %s (want the consent page)", consent.status, consent.body)
	}
	f := hidden(e.t, consent.body)
	f.Set("decision", decision)
	return e.post("/oauth2/login", f, nil)
}

func wantPollError(t *testing.T, what string, w *fakeResp, code string) {
	t.Helper()
	if w.status != 400 || w.json(t)["error"] != code {
		t.Fatalf("%s: %d %s, want 400 %s", what, w.status, w.body, code)
	}
}

// The whole flow on the wire (RFC 8628 §3): the device authorization
// response, pending and slow_down while the user has not approved, the
// verification page (prefilled, case- and dash-insensitive), login and a
// consent that is never skipped, then one token response and no second.
func TestDeviceFlow(t *testing.T) {
	e := deviceEnv(t)
	md := e.do(&fakeReq{method: "GET", path: "/.well-known/oauth-authorization-server"}).json(t)
	if md["device_authorization_endpoint"] != issuer+"/oauth2/device_authorization" {
		t.Errorf("metadata device_authorization_endpoint %v", md["device_authorization_endpoint"])
	}
	if gts, _ := md["grant_types_supported"].([]any); !slices.Contains(gts, any(core.GrantDeviceCode)) {
		t.Errorf("grant_types_supported %v", gts)
	}
	d := e.deviceStart("read")
	dc, _ := d["device_code"].(string)
	uc, _ := d["user_code"].(string)
	if dc == "" || !regexp.MustCompile(`^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$`).MatchString(uc) ||
		d["verification_uri"] != issuer+"/device" || d["verification_uri_complete"] != issuer+"/device?user_code="+uc ||
		d["expires_in"] != float64(600) || d["interval"] != float64(5) {
		t.Fatalf("device authorization response %v", d)
	}
	stored, err := e.store.GetDeviceCode(t.Context(), deviceSig(t, dc))
	if err != nil || stored.ClientID != tvClient || stored.Scope != "read" || stored.DecidedAt != nil || strings.Contains(stored.UserCodeSig, strings.ReplaceAll(uc, "-", "")) {
		t.Fatalf("stored %+v, %v", stored, err)
	}

	wantPollError(t, "first poll", e.devicePoll(dc), core.ErrAuthorizationPending)
	wantPollError(t, "a poll at once", e.devicePoll(dc), core.ErrSlowDown)
	if got, _ := e.store.GetDeviceCode(t.Context(), deviceSig(t, dc)); got.Interval != 10*time.Second {
		t.Errorf("interval after slow_down %v, want 10s", got.Interval)
	}
	e.now = e.now.Add(6 * time.Second) // enough before, not now
	wantPollError(t, "a poll 6 s later", e.devicePoll(dc), core.ErrSlowDown)
	e.now = e.now.Add(15 * time.Second)
	wantPollError(t, "a poll 15 s later", e.devicePoll(dc), core.ErrAuthorizationPending)

	// verification_uri_complete prefills the form; it still needs a click.
	page := e.do(&fakeReq{method: "GET", path: "/device", query: "user_code=" + url.QueryEscape(uc)})
	if page.status != 200 || !strings.Contains(string(page.body), `value="`+uc+`"`) || page.hdr.Get("X-Frame-Options") != "DENY" ||
		!strings.Contains(page.hdr.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Fatalf("prefilled page: %d %v %s", page.status, page.hdr, page.body)
	}
	typed := strings.ToLower(strings.ReplaceAll(uc, "-", " "))
	done := e.approveDevice(typed, "approve")
	if done.status != 200 || !strings.Contains(string(done.body), "Living Room TV is signed in") {
		t.Fatalf("approval: %d %s", done.status, done.body)
	}
	if got, _ := e.store.GetDeviceCode(t.Context(), deviceSig(t, dc)); got.DecidedAt == nil || !got.Approved || got.UserID != "alice" {
		t.Fatalf("stored after approval %+v", got)
	}
	e.now = e.now.Add(11 * time.Second)
	w := e.devicePoll(dc)
	tok := w.json(t)
	if w.status != 200 || tok["access_token"] == nil || tok["refresh_token"] == nil || tok["token_type"] != "Bearer" || tok["scope"] != "read" {
		t.Fatalf("token: %d %s", w.status, w.body)
	}
	info, err := e.srv.CheckToken(t.Context(), tok["access_token"].(string))
	if err != nil || info.UserID != "alice" || info.ClientID != tvClient {
		t.Fatalf("token info %+v, %v", info, err)
	}
	e.now = e.now.Add(11 * time.Second)
	wantPollError(t, "a poll after the token", e.devicePoll(dc), core.ErrInvalidGrant)
	// The replay of a redeemed device code revokes what it issued, as a
	// code's replay does.
	if _, err := e.srv.CheckToken(t.Context(), tok["access_token"].(string)); err == nil {
		t.Error("the token outlived a replay of its device code")
	}
	// The code cannot be entered again.
	if w := e.enterCode(uc); w.status != 400 || !strings.Contains(string(w.body), "used already") {
		t.Errorf("entering a used code: %d %s", w.status, w.body)
	}
}

// deviceSig is the stored signature of a device code (a refresh-key MAC
// of the whole token, like refresh tokens').
func deviceSig(t *testing.T, dc string) string { return rtSig(t, dc) }

// Denial, expiry, another client's device code, and an unknown one each
// answer with their error; a denied code gives no token afterwards.
func TestDeviceFlowRefusals(t *testing.T) {
	e := deviceEnv(t)
	d := e.deviceStart("read")
	dc, uc := d["device_code"].(string), d["user_code"].(string)
	if w := e.approveDevice(uc, "deny"); w.status != 200 || !strings.Contains(string(w.body), "You denied Living Room TV") {
		t.Fatalf("denial: %d %s", w.status, w.body)
	}
	wantPollError(t, "poll after denial", e.devicePoll(dc), core.ErrAccessDenied)
	e.now = e.now.Add(6 * time.Second)
	wantPollError(t, "poll after denial, again", e.devicePoll(dc), core.ErrAccessDenied)

	d = e.deviceStart("")
	dc2, uc2 := d["device_code"].(string), d["user_code"].(string)
	conf := e.post("/oauth2/token", url.Values{"grant_type": {core.GrantDeviceCode}, "device_code": {dc2}}, basic("conf", e.secret))
	if conf.status != 400 {
		t.Errorf("another client's poll: %d %s", conf.status, conf.body)
	}
	wantPollError(t, "a forged device code", e.devicePoll("dc1.x.AAAA"), core.ErrInvalidGrant)
	// An approval the device never collected expires with its code.
	d = e.deviceStart("read")
	dc3 := d["device_code"].(string)
	if w := e.approveDevice(d["user_code"].(string), "approve"); w.status != 200 {
		t.Fatalf("approval: %d %s", w.status, w.body)
	}
	e.now = e.now.Add(11 * time.Minute)
	// Another device's request makes the store sweep: expired codes are
	// kept long enough to say so.
	e.deviceStart("read")
	wantPollError(t, "poll after expiry", e.devicePoll(dc2), core.ErrExpiredToken)
	wantPollError(t, "poll of an uncollected approval after expiry", e.devicePoll(dc3), core.ErrExpiredToken)
	e.now = e.now.Add(core.DeviceCodeKeep)
	e.deviceStart("read")
	wantPollError(t, "poll long after expiry", e.devicePoll(dc2), core.ErrInvalidGrant)
	if w := e.enterCode(uc2); w.status != 400 || !strings.Contains(string(w.body), "expired") && !strings.Contains(string(w.body), "No device") {
		t.Errorf("entering an expired code: %d %s", w.status, w.body)
	}

	// A client without the grant, and scopes it may not have.
	if w := e.post("/oauth2/device_authorization", url.Values{"client_id": {"pub"}}, nil); w.status != 400 || w.json(t)["error"] != core.ErrUnauthorizedClient {
		t.Errorf("client without the grant: %d %s", w.status, w.body)
	}
	if w := e.post("/oauth2/device_authorization", url.Values{"client_id": {tvClient}, "scope": {"nope"}}, nil); w.status != 400 || w.json(t)["error"] != core.ErrInvalidScope {
		t.Errorf("unknown scope: %d %s", w.status, w.body)
	}
	if w := e.post("/oauth2/device_authorization", url.Values{"client_id": {"nobody"}}, nil); w.status != 401 && w.status != 400 {
		t.Errorf("unknown client: %d %s", w.status, w.body)
	}
}

// The verification page refuses a form without its CSRF token, counts
// wrong codes per address and answers 429 past the limit (R70), whatever
// the codes.
func TestDeviceVerificationThrottle(t *testing.T) {
	e := deviceEnv(t, func(c *core.Config) { c.Device.WrongCodesPerAddr = 3 })
	if w := e.post("/device", url.Values{"user_code": {"BCDF-GHJK"}}, nil); w.status != 403 {
		t.Errorf("no CSRF token: %d %s", w.status, w.body)
	}
	for i, code := range []string{"BCDF-GHJK", "not a code", "ZZZZ-ZZZZ"} {
		if w := e.enterCode(code); w.status != 400 || !strings.Contains(string(w.body), `role="alert"`) {
			t.Fatalf("wrong code %d: %d %s", i, w.status, w.body)
		}
	}
	d := e.deviceStart("read")
	w := e.enterCode(d["user_code"].(string))
	if w.status != 429 || w.hdr.Get("Retry-After") == "" {
		t.Fatalf("the right code past the limit: %d %v %s", w.status, w.hdr, w.body)
	}
	e.now = e.now.Add(11 * time.Minute)
	d = e.deviceStart("read")
	if w := e.enterCode(d["user_code"].(string)); w.status != 200 {
		t.Errorf("after the window: %d %s", w.status, w.body)
	}
}

// Racing polls after the approval: exactly one token response (the
// redemption is the store's atomic RedeemCode); and racing decisions on
// one code: exactly one is recorded.
func TestDeviceFlowRacers(t *testing.T) {
	e := deviceEnv(t)
	d := e.deviceStart("read")
	dc, uc := d["device_code"].(string), d["user_code"].(string)
	// Two browsers entered the code and reached the consent page: their
	// forms are distinct (the used-form record does not settle the
	// race), each posted by several tabs at once. One decision in all.
	type tab struct {
		cookie string
		form   url.Values
	}
	var tabs []tab
	for range 2 {
		e.cookie = ""
		consent := e.login(e.enterCode(uc), "alice", "pw")
		f := hidden(t, consent.body)
		f.Set("decision", "approve")
		tabs = append(tabs, tab{e.cookie, f})
	}
	const n = 8
	var wg sync.WaitGroup
	status := make([]int, n)
	for i := range n {
		tb := tabs[i%2]
		wg.Go(func() { status[i] = e.postAs(tb.cookie, "/oauth2/login", tb.form).status })
	}
	wg.Wait()
	ok := 0
	for _, st := range status {
		if st == 200 {
			ok++
		}
	}
	if ok != 1 {
		t.Fatalf("%d of %d approvals succeeded (%v), want 1", ok, n, status)
	}
	e.now = e.now.Add(6 * time.Second)
	got := make([]int, n)
	for i := range n {
		wg.Go(func() {
			got[i] = e.srv2post("/oauth2/token", url.Values{"grant_type": {core.GrantDeviceCode}, "device_code": {dc}, "client_id": {tvClient}}).status
		})
	}
	wg.Wait()
	tokens := 0
	for _, st := range got {
		if st == 200 {
			tokens++
		}
	}
	if tokens != 1 {
		t.Fatalf("%d token responses for one device code (%v), want 1", tokens, got)
	}
}

// srv2post posts without touching e's cookie jar (safe from goroutines).
func (e *env) srv2post(path string, form url.Values) *fakeResp {
	return e.postAs(e.cookie, path, form)
}

// postAs posts with the browser cookies given, without touching e's jar.
func (e *env) postAs(cookie, path string, form url.Values) *fakeResp {
	r := &fakeReq{method: "POST", path: path, body: form.Encode(), hdr: map[string][]string{
		"Content-Type": {"application/x-www-form-urlencoded"}, "Cookie": {cookie}}}
	w := newResp()
	e.srv.Handle(w, r)
	return w
}

// New refuses the device grant without what it needs.
func TestDeviceFlowConfig(t *testing.T) {
	if _, err := core.New(core.Config{Issuer: issuer, Keys: core.Keys{CryptKey: make([]byte, 32), SignKey: make([]byte, 32)},
		Device: core.DeviceFlow{Enabled: true}}, memstore.New(), &testAuth{}); err == nil || !strings.Contains(err.Error(), "ConsentPrompter") {
		t.Errorf("without consent: %v", err)
	}
	for name, d := range map[string]core.DeviceFlow{
		"long lifetime":       {Enabled: true, Lifetime: time.Hour},
		"fractional interval": {Enabled: true, Interval: 1500 * time.Millisecond},
		"bad URI":             {Enabled: true, VerificationURI: "/device?x=1"},
	} {
		if _, err := core.New(core.Config{Issuer: issuer, Keys: core.Keys{CryptKey: make([]byte, 32), SignKey: make([]byte, 32)},
			Device: d}, memstore.New(), &consentAuth{}); err == nil {
			t.Errorf("%s: New accepted %+v", name, d)
		}
	}
}
