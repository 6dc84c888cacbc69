package main

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestContract starts the bench server on every adapter (and once on
// SQLite) and checks what the load tools rely on: /healthz, the authorize
// GET answered at once with a 303 carrying the code, the code exchange,
// GET /api/me behind the token check, and POST /baseline. No timings.
func TestContract(t *testing.T) {
	cases := [][]string{
		{"-adapter", "nethttp", "-store", "memory"},
		{"-adapter", "gin", "-store", "memory"},
		{"-adapter", "echo", "-store", "memory"},
		{"-adapter", "fiber", "-store", "memory"},
		{"-adapter", "nethttp", "-store", "sqlite"},
	}
	for _, args := range cases {
		t.Run(args[1]+"-"+args[3], func(t *testing.T) {
			base := start(t, append([]string{"-addr", "127.0.0.1:0"}, args...))
			checkContract(t, base)
		})
	}
}

func TestFlags(t *testing.T) {
	for _, args := range [][]string{{"-adapter", "nope"}, {"-store", "nope"}, {"extra"}} {
		if code := run(context.Background(), args, io.Discard, io.Discard, nil); code == 0 {
			t.Errorf("run %q: exit 0, want an error", args)
		}
	}
}

// start runs the server in process until the test ends and returns its
// base URL once /healthz answers.
func start(t *testing.T, args []string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan int, 1)
	go func() { done <- run(ctx, args, io.Discard, io.Discard, ready) }()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("server exited with %d", code)
		}
	})
	select {
	case addr := <-ready:
		return "http://" + addr
	case code := <-done:
		done <- code
		t.Fatalf("server exited with %d before it was ready", code)
	case <-time.After(30 * time.Second):
		t.Fatal("server not ready")
	}
	return ""
}

func checkContract(t *testing.T, base string) {
	client := &http.Client{
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	get := func(u string, hdr ...string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", u, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	post := func(path, form string, basic bool) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("POST", base+path, strings.NewReader(form))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if basic {
			req.SetBasicAuth(ClientID, ClientSecret) // no characters to escape
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	if resp, _ := get(base + "/healthz"); resp.StatusCode != 200 {
		t.Fatalf("healthz: %d", resp.StatusCode)
	}
	if resp, body := get(base + "/.well-known/oauth-authorization-server"); resp.StatusCode != 200 || !strings.Contains(body, `"issuer"`) {
		t.Fatalf("metadata: %d", resp.StatusCode)
	}

	verifier := strings.Repeat("v", 43)
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{
		"response_type": {"code"}, "client_id": {ClientID}, "redirect_uri": {RedirectURI}, "scope": {Scope},
		"state": {"s1"}, "code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
	}
	resp, _ := get(base + "/oauth2/authorize?" + q.Encode())
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("authorize: %d, want 303", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || !strings.HasPrefix(loc.String(), RedirectURI+"?") || loc.Query().Get("state") != "s1" {
		t.Fatalf("authorize: unexpected Location")
	}
	code := loc.Query().Get("code")
	if code == "" {
		t.Fatal("authorize: no code")
	}

	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {RedirectURI}, "code_verifier": {verifier}}
	st, body := post("/oauth2/token", form.Encode(), true)
	if st != 200 {
		t.Fatalf("token: %d", st)
	}
	var tr struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
		Scope        string `json:"scope"`
	}
	if err := json.Unmarshal([]byte(body), &tr); err != nil || tr.AccessToken == "" || tr.RefreshToken == "" || tr.Scope != Scope {
		t.Fatal("token: response lacks access_token, refresh_token or scope")
	}

	resp, body = get(base+"/api/me", "Authorization", "Bearer "+tr.AccessToken)
	if resp.StatusCode != 200 || !strings.Contains(body, `"sub":"`+UserID+`"`) {
		t.Fatalf("/api/me: %d %s", resp.StatusCode, body)
	}
	if resp, _ := get(base + "/api/me"); resp.StatusCode != 401 {
		t.Fatalf("/api/me without a token: %d, want 401", resp.StatusCode)
	}

	if st, body := post("/oauth2/token", "grant_type=client_credentials&scope=read", true); st != 200 || !strings.Contains(body, `"access_token"`) {
		t.Fatalf("client_credentials: %d", st)
	}
	if st, body := post("/oauth2/introspect", "token="+url.QueryEscape(tr.AccessToken), true); st != 200 || !strings.Contains(body, `"active":true`) {
		t.Fatalf("introspect: %d", st)
	}
	if st, body := post("/oauth2/token", "grant_type=refresh_token&refresh_token="+url.QueryEscape(tr.RefreshToken), true); st != 200 || !strings.Contains(body, `"refresh_token"`) {
		t.Fatalf("refresh: %d", st)
	}
	if st, _ := post("/oauth2/revoke", "token="+url.QueryEscape(tr.AccessToken), true); st != 200 {
		t.Fatalf("revoke: %d", st)
	}
	if resp, _ := get(base+"/api/me", "Authorization", "Bearer "+tr.AccessToken); resp.StatusCode != 401 {
		t.Fatalf("/api/me after revocation: %d, want 401", resp.StatusCode)
	}
	// Last: a replayed code is refused (and revokes what it issued).
	if st, _ := post("/oauth2/token", form.Encode(), true); st != 400 {
		t.Fatalf("code replay: %d, want 400", st)
	}
	if st, body := post("/baseline", "a=1&b=two", false); st != 200 || body != `{"ok":true,"a":"1","b":"two"}` {
		t.Fatalf("baseline: %d %s", st, body)
	}
}
