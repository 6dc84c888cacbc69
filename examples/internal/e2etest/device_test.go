package e2etest

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/oauth2kit/oauth2kit/core"
	"github.com/oauth2kit/oauth2kit/examples/internal/demo"
)

const deviceClientName = "Device CLI"

// addDeviceClient registers a public client for the device grant with the
// example's client command, as EXAMPLES.md says.
func addDeviceClient(t *testing.T, bin, db string) string {
	t.Helper()
	out, errOut, code := Run(t, bin, "client", "add", "-db", db, "-name", deviceClientName, "-public",
		"-grant-type", core.GrantDeviceCode, "-grant-type", "refresh_token", "-scope", "openid read write")
	if code != 0 {
		t.Fatalf("client add: %d %s", code, errOut)
	}
	var reg struct {
		ID string `json:"client_id"`
	}
	if err := json.Unmarshal([]byte(out), &reg); err != nil || reg.ID == "" {
		t.Fatalf("client add printed %q: %v", out, err)
	}
	return reg.ID
}

func deviceConfig(s *Server, id string) *oauth2.Config {
	return &oauth2.Config{ClientID: id, Scopes: []string{"read"}, Endpoint: oauth2.Endpoint{
		DeviceAuthURL: s.Base + "/oauth2/device_authorization", TokenURL: s.Base + "/oauth2/token", AuthStyle: oauth2.AuthStyleInParams}}
}

var userCodeRe = regexp.MustCompile(`^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$`)

// approveDevice plays the user: opens verification_uri_complete at base,
// confirms the prefilled code, signs in and answers the consent page with
// decision. It returns the last page.
func approveDevice(t *testing.T, base string, da *oauth2.DeviceAuthResponse, decision string) *page {
	t.Helper()
	b := newBrowser(t)
	// The page is the one the user was told to open, on this instance.
	u, err := url.Parse(da.VerificationURIComplete)
	if err != nil {
		t.Fatal(err)
	}
	p := b.get(t, base+u.Path+"?"+u.RawQuery)
	if p.status != http.StatusOK {
		t.Fatalf("verification page: HTTP %d:\n%s", p.status, p.body)
	}
	checkPageHeaders(t, "verification page", p)
	f := p.form(t)
	in := f.input("user_code")
	if in == nil || in["value"] != da.UserCode || len(f.buttons) == 0 {
		t.Fatalf("verification page: want an input user_code prefilled with %q and a button:\n%s", da.UserCode, p.body)
	}
	p = b.submit(t, p, f, url.Values{"user_code": {in["value"]}})
	if p.status != http.StatusOK {
		t.Fatalf("after the code: HTTP %d, want the login page:\n%s", p.status, p.body)
	}
	p = b.submit(t, p, p.form(t), url.Values{"username": {demo.DemoUser}, "password": {demo.DemoPassword}})
	if p.status != http.StatusOK || !strings.Contains(p.body, deviceClientName) {
		t.Fatalf("after sign-in: HTTP %d, want the consent page naming %q:\n%s", p.status, deviceClientName, p.body)
	}
	checkPageHeaders(t, "consent page", p)
	return b.submit(t, p, p.form(t), url.Values{"decision": {decision}})
}

// testDevice runs the device grant with golang.org/x/oauth2's DeviceAuth
// and DeviceAccessToken against the example, the user approving (then, a
// second time, denying) through the pages.
func testDevice(t *testing.T, s *Server, bin, db string) {
	ctx := clientCtx(t)
	conf := deviceConfig(s, addDeviceClient(t, bin, db))
	da, err := conf.DeviceAuth(ctx)
	if err != nil {
		t.Fatalf("DeviceAuth: %v", err)
	}
	if !userCodeRe.MatchString(da.UserCode) || da.VerificationURI != s.Issuer+"/device" ||
		da.VerificationURIComplete != s.Issuer+"/device?user_code="+url.QueryEscape(da.UserCode) || da.Interval != 5 || da.Expiry.IsZero() {
		t.Fatalf("device authorization response %+v", da)
	}
	// Polled before the user did anything: pending; polled again at once:
	// slow_down. DeviceAccessToken then waits the longer interval.
	status, body := devicePoll(s.Base, conf.ClientID, da.DeviceCode)
	if status != 400 || !strings.Contains(string(body), core.ErrAuthorizationPending) {
		t.Fatalf("early poll: HTTP %d %s", status, body)
	}
	if status, body = devicePoll(s.Base, conf.ClientID, da.DeviceCode); status != 400 || !strings.Contains(string(body), core.ErrSlowDown) {
		t.Fatalf("a second poll at once: HTTP %d %s, want slow_down", status, body)
	}
	type result struct {
		tok *oauth2.Token
		err error
	}
	got := make(chan result, 1)
	go func() {
		tok, err := conf.DeviceAccessToken(ctx, da)
		got <- result{tok, err}
	}()
	if p := approveDevice(t, s.Base, da, "approve"); p.status != http.StatusOK || !strings.Contains(p.body, deviceClientName+" is signed in") {
		t.Fatalf("after approval: HTTP %d:\n%s", p.status, p.body)
	}
	r := <-got
	if r.err != nil {
		t.Fatalf("DeviceAccessToken: %v", r.err)
	}
	if r.tok.AccessToken == "" || r.tok.RefreshToken == "" || r.tok.TokenType != "Bearer" {
		t.Fatalf("device token: %+v", r.tok)
	}
	st, m, _ := api(t, s.Base, "/api/me", r.tok.AccessToken)
	wantMe(t, "/api/me with the device's token", st, m, conf.ClientID, "read")

	// Denied this time: the device learns access_denied.
	da, err = conf.DeviceAuth(ctx)
	if err != nil {
		t.Fatalf("DeviceAuth: %v", err)
	}
	go func() {
		tok, err := conf.DeviceAccessToken(ctx, da)
		got <- result{tok, err}
	}()
	if p := approveDevice(t, s.Base, da, "deny"); p.status != http.StatusOK {
		t.Fatalf("after denial: HTTP %d:\n%s", p.status, p.body)
	}
	r = <-got
	var re *oauth2.RetrieveError
	if !errors.As(r.err, &re) || re.ErrorCode != core.ErrAccessDenied {
		t.Fatalf("DeviceAccessToken after a denial: %v, want access_denied", r.err)
	}
}

// testDeviceTwoInstances: a device code asked for at a and approved at b
// is redeemed once in all when both instances are polled at once.
func testDeviceTwoInstances(t *testing.T, a, b *Server, bin, db string) {
	ctx, cancel := context.WithTimeout(clientCtx(t), time.Minute)
	defer cancel()
	conf := deviceConfig(a, addDeviceClient(t, bin, db))
	da, err := conf.DeviceAuth(ctx)
	if err != nil {
		t.Fatalf("DeviceAuth at a: %v", err)
	}
	if p := approveDevice(t, b.Base, da, "approve"); p.status != http.StatusOK {
		t.Fatalf("approval at b: HTTP %d:\n%s", p.status, p.body)
	}
	const perInstance = 8
	var wg sync.WaitGroup
	statuses := make([]int, 2*perInstance)
	for i := range statuses {
		base := a.Base
		if i%2 == 1 {
			base = b.Base
		}
		wg.Go(func() {
			statuses[i], _ = devicePoll(base, conf.ClientID, da.DeviceCode)
		})
	}
	wg.Wait()
	ok := 0
	for _, st := range statuses {
		if st == http.StatusOK {
			ok++
		}
	}
	if ok != 1 {
		t.Fatalf("%d token responses for one device code polled at two instances (%v), want 1", ok, statuses)
	}
}

// devicePoll is one token request of a public device client (status 0 if
// the request failed); safe from goroutines.
func devicePoll(base, clientID, deviceCode string) (int, []byte) {
	form := url.Values{"grant_type": {core.GrantDeviceCode}, "device_code": {deviceCode}, "client_id": {clientID}}
	res, err := plain.PostForm(base+"/oauth2/token", form)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 1<<16))
	return res.StatusCode, body
}

var cliOpenRe = regexp.MustCompile(`(?m)^\(or open (\S+)\)$`)

// testDeviceCLI runs examples/device-cli against the example, approving
// what it asks for through the pages, and reads the subject it prints.
func testDeviceCLI(t *testing.T, s *Server, bin, db string) {
	id := addDeviceClient(t, bin, db)
	cli := Build(t, "device-cli")
	cmd := exec.Command(cli, "-issuer", s.Issuer, "-client-id", id, "-scope", "openid read", "-timeout", "90s")
	var out, errOut SyncBuffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	var complete string
	for deadline := time.Now().Add(30 * time.Second); complete == ""; time.Sleep(20 * time.Millisecond) {
		if m := cliOpenRe.FindStringSubmatch(out.String()); m != nil {
			complete = m[1]
		}
		select {
		case err := <-done:
			t.Fatalf("device-cli exited (%v) before printing a verification URI:\n%s\n%s", err, out.String(), errOut.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("device-cli printed no verification URI:\n%s\n%s", out.String(), errOut.String())
		}
	}
	u, err := url.Parse(complete)
	if err != nil {
		t.Fatal(err)
	}
	da := &oauth2.DeviceAuthResponse{VerificationURIComplete: complete, UserCode: u.Query().Get("user_code")}
	if p := approveDevice(t, s.Base, da, "approve"); p.status != http.StatusOK {
		t.Fatalf("approval: HTTP %d:\n%s", p.status, p.body)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("device-cli: %v\n%s\n%s", err, out.String(), errOut.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("device-cli did not finish:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "signed in as "+demo.DemoUser+"\n") {
		t.Errorf("device-cli printed:\n%s\nwant the subject %q", out.String(), demo.DemoUser)
	}
}

// testDeviceExpiry: a device code the user never approved answers
// expired_token once its lifetime is over, and its user code is refused.
func testDeviceExpiry(t *testing.T, bin string) {
	db := filepath.Join(t.TempDir(), "demo.db")
	s := Start(t, bin, "-addr", "127.0.0.1:0", "-db", db, "-device-lifetime", "2s")
	conf := deviceConfig(s, addDeviceClient(t, bin, db))
	da, err := conf.DeviceAuth(clientCtx(t))
	if err != nil {
		t.Fatalf("DeviceAuth: %v", err)
	}
	if da.Expiry.IsZero() || time.Until(da.Expiry) > 3*time.Second {
		t.Fatalf("expiry %v, want about 2 s from now", da.Expiry)
	}
	time.Sleep(time.Until(da.Expiry) + 500*time.Millisecond)
	if status, body := devicePoll(s.Base, conf.ClientID, da.DeviceCode); status != 400 || !strings.Contains(string(body), core.ErrExpiredToken) {
		t.Fatalf("poll after expiry: HTTP %d %s, want expired_token", status, body)
	}
	b := newBrowser(t)
	p := b.get(t, da.VerificationURIComplete)
	p = b.submit(t, p, p.form(t), url.Values{"user_code": {da.UserCode}})
	if p.status != http.StatusBadRequest || !strings.Contains(p.body, "expired") {
		t.Errorf("entering an expired code: HTTP %d:\n%s", p.status, p.body)
	}
}
