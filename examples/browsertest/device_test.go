package browsertest

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/oauth2kit/oauth2kit/core"
	"github.com/oauth2kit/oauth2kit/examples/internal/e2etest"
)

// TestDeviceFlowInChromium: golang.org/x/oauth2's DeviceAuth and
// DeviceAccessToken against the nethttp example, the user approving (then
// denying) in Chromium (device.mjs).
func TestDeviceFlowInChromium(t *testing.T) {
	if _, err := os.Stat(chromium); err != nil {
		skip(t, "%s not found: install Chromium (apt-get install -y chromium) to run the browser test", chromium)
	}
	if _, err := os.Stat(filepath.Join("node_modules", "playwright-core", "package.json")); err != nil {
		skip(t, "playwright-core is not installed: run `npm ci` in examples/browsertest to run the browser test")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		skip(t, "node is not on PATH: install Node.js (20 or later) to run the browser test")
	}
	bin := e2etest.Build(t, "nethttp")
	db := filepath.Join(t.TempDir(), "demo.db")
	s := e2etest.Start(t, bin, "-addr", "127.0.0.1:0", "-db", db)
	out, errOut, code := e2etest.Run(t, bin, "client", "add", "-db", db, "-name", "Chromium Device", "-public",
		"-grant-type", core.GrantDeviceCode)
	var reg struct {
		ID string `json:"client_id"`
	}
	if err := json.Unmarshal([]byte(out), &reg); code != 0 || err != nil {
		t.Fatalf("client add: %d %s %s", code, out, errOut)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	ctx = context.WithValue(ctx, oauth2.HTTPClient, &http.Client{Timeout: 15 * time.Second})
	conf := &oauth2.Config{ClientID: reg.ID, Scopes: []string{"read"}, Endpoint: oauth2.Endpoint{
		DeviceAuthURL: s.Base + "/oauth2/device_authorization", TokenURL: s.Base + "/oauth2/token", AuthStyle: oauth2.AuthStyleInParams}}

	for _, decision := range []string{"approve", "deny"} {
		da, err := conf.DeviceAuth(ctx)
		if err != nil {
			t.Fatalf("DeviceAuth: %v", err)
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
		// The page the user is sent to names the issuer; the server
		// listens at Base (the same here).
		out, err := exec.CommandContext(ctx, node, "device.mjs", da.VerificationURIComplete, da.UserCode, "Chromium Device", decision).CombinedOutput()
		if err != nil {
			t.Fatalf("node device.mjs %s failed (%v):\n%s", decision, err, out)
		}
		t.Logf("node device.mjs %s:\n%s", decision, out)
		r := <-got
		if decision == "approve" {
			if r.err != nil || r.tok.AccessToken == "" {
				t.Fatalf("DeviceAccessToken after approval in Chromium: %+v, %v", r.tok, r.err)
			}
			continue
		}
		var re *oauth2.RetrieveError
		if !errors.As(r.err, &re) || re.ErrorCode != core.ErrAccessDenied {
			t.Fatalf("DeviceAccessToken after denial in Chromium: %v, want access_denied", r.err)
		}
	}
}
