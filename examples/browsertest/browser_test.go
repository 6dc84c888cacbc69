package browsertest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/oauth2kit/oauth2kit/examples/internal/e2etest"
)

const (
	chromium    = "/usr/bin/chromium"
	redirectURI = "http://127.0.0.1:9000/callback"
	clientName  = "Demo Client"
)

// TestLoginAndConsentInChromium runs browser.mjs against the nethttp
// example, then redeems the code the browser obtained.
func TestLoginAndConsentInChromium(t *testing.T) {
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
	s := e2etest.Start(t, bin, "-addr", "127.0.0.1:0", "-db", filepath.Join(t.TempDir(), "demo.db"))

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "browser.mjs", s.Base, s.ClientID, redirectURI, s.Issuer, clientName)
	out, err := cmd.CombinedOutput()
	var result struct {
		Code         string `json:"code"`
		CodeVerifier string `json:"code_verifier"`
		Scope        string `json:"scope"`
		OIDC         struct {
			CodeVerifier string            `json:"code_verifier"`
			Codes        map[string]string `json:"codes"`
		} `json:"oidc"`
	}
	var report []string
	for line := range strings.Lines(string(out)) {
		if r, ok := strings.CutPrefix(line, "RESULT "); ok {
			if jerr := json.Unmarshal([]byte(r), &result); jerr != nil {
				t.Errorf("browser.mjs RESULT line: %v", jerr)
			}
			continue
		}
		report = append(report, line)
	}
	if err != nil {
		t.Fatalf("node browser.mjs failed (%v):\n%s", err, strings.Join(report, ""))
	}
	t.Logf("node browser.mjs:\n%s", strings.Join(report, ""))
	if result.Code == "" {
		t.Fatal("browser.mjs reported no code")
	}

	// The code the browser got is redeemed by the client library.
	conf := &oauth2.Config{
		ClientID:     s.ClientID,
		ClientSecret: s.ClientSecret,
		RedirectURL:  redirectURI,
		Endpoint:     oauth2.Endpoint{TokenURL: s.Base + "/oauth2/token", AuthStyle: oauth2.AuthStyleInHeader},
	}
	plain := &http.Client{Timeout: 15 * time.Second}
	tok, err := conf.Exchange(context.WithValue(ctx, oauth2.HTTPClient, plain), result.Code, oauth2.VerifierOption(result.CodeVerifier))
	if err != nil {
		t.Fatalf("redeeming the code the browser got: %v", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.Base+"/api/me", nil)
	if err != nil {
		t.Fatal(err)
	}
	tok.SetAuthHeader(req)
	res, err := plain.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	var me map[string]string
	if err := json.Unmarshal(body, &me); res.StatusCode != http.StatusOK || err != nil {
		t.Fatalf("/api/me: HTTP %d %s (%v)", res.StatusCode, body, err)
	}
	if me["sub"] != "demo" || me["client_id"] != s.ClientID {
		t.Errorf("/api/me: %v, want sub demo and client_id %s", me, s.ClientID)
	}

	// The OpenID Connect run: the silent login keeps the first login's
	// auth_time; prompt=login and max_age=0 made a fresh one.
	authTime := map[string]int64{}
	for name, code := range result.OIDC.Codes {
		tok, err := conf.Exchange(context.WithValue(ctx, oauth2.HTTPClient, plain), code, oauth2.VerifierOption(result.OIDC.CodeVerifier))
		if err != nil {
			t.Fatalf("redeeming the %s code: %v", name, err)
		}
		raw, _ := tok.Extra("id_token").(string)
		parts := strings.Split(raw, ".")
		if len(parts) != 3 {
			t.Fatalf("%s: no id_token", name)
		}
		b, _ := base64.RawURLEncoding.DecodeString(parts[1])
		var c struct {
			AuthTime int64  `json:"auth_time"`
			Sub      string `json:"sub"`
		}
		if err := json.Unmarshal(b, &c); err != nil || c.Sub != "demo" {
			t.Fatalf("%s id_token claims %s: %v", name, b, err)
		}
		authTime[name] = c.AuthTime
	}
	if len(authTime) != 4 || authTime["none"] != authTime["first"] || authTime["login"] <= authTime["first"] || authTime["max_age"] < authTime["login"] {
		t.Errorf("auth_time per step %v: want none = first < login <= max_age", authTime)
	}
}

// skip skips the test, unless OAUTH2KIT_REQUIRE_BROWSER is set (CI sets
// it): there a missing browser is a failure, never a silent skip.
func skip(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("OAUTH2KIT_REQUIRE_BROWSER") != "" {
		t.Fatalf("OAUTH2KIT_REQUIRE_BROWSER is set, but: "+format, args...)
	}
	t.Skipf(format, args...)
}
