package e2etest

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/oauth2kit/oauth2kit/core"
)

// testExchange is EXAMPLES.md's token exchange (RFC 8693): a client added
// with -grant-type urn:ietf:params:oauth:grant-type:token-exchange trades
// the demo client's access token for one with narrower scope, which the
// example's API accepts as the demo user's, and is refused a wider one.
// The service revoking its exchanged token ends that token only;
// revoking the subject's grant ends the exchanged token too.
func testExchange(t *testing.T, s *Server, bin, db string) {
	res, err := plain.Get(s.Base + MetadataPath)
	if err != nil {
		t.Fatal(err)
	}
	var md struct {
		GrantTypes []string `json:"grant_types_supported"`
	}
	err = json.NewDecoder(res.Body).Decode(&md)
	res.Body.Close()
	if err != nil || !slices.Contains(md.GrantTypes, core.GrantTokenExchange) {
		t.Fatalf("grant_types_supported %v lacks token exchange (%v)", md.GrantTypes, err)
	}

	out, errOut, code := Run(t, bin, "client", "add", "-db", db, "-name", "Exchange Service", "-grant-type", core.GrantTokenExchange)
	if code != 0 {
		t.Fatalf("client add: %d %s", code, errOut)
	}
	var svc struct {
		ID     string `json:"client_id"`
		Secret string `json:"client_secret"`
	}
	if err := json.Unmarshal([]byte(out), &svc); err != nil || svc.ID == "" || svc.Secret == "" {
		t.Fatalf("client add printed %q: %v", out, err)
	}

	tok, _ := codeFlow(t, s, oauthConfig(s, s.Base, s.Base, "read", "write"))
	exchange := func(form url.Values) (int, map[string]any) {
		t.Helper()
		form.Set("grant_type", core.GrantTokenExchange)
		form.Set("subject_token", tok.AccessToken)
		form.Set("subject_token_type", core.TokenTypeAccessToken)
		status, body := clientPost(t, s.Base, "/oauth2/token", svc.ID, svc.Secret, form)
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatalf("exchange: HTTP %d %s", status, body)
		}
		return status, m
	}
	// Narrower scope, same audience (the MCP example knows resources; the
	// others take the default audience).
	status, m := exchange(url.Values{"scope": {"read"}})
	if status != http.StatusOK || m["issued_token_type"] != core.TokenTypeAccessToken || m["token_type"] != "Bearer" || m["scope"] != "read" {
		t.Fatalf("exchange: HTTP %d %v", status, m)
	}
	if _, has := m["refresh_token"]; has {
		t.Error("the exchange issued a refresh token")
	}
	narrow, _ := m["access_token"].(string)
	st, me, _ := api(t, s.Base, "/api/me", narrow)
	wantMe(t, "/api/me with the exchanged token", st, me, svc.ID, "read")

	if status, m = exchange(url.Values{"scope": {"read admin"}}); status != http.StatusBadRequest || m["error"] != "invalid_scope" {
		t.Errorf("widening exchange: HTTP %d %v, want 400 invalid_scope", status, m)
	}

	// The exchange service revokes a token of its own: that token's grant
	// alone goes; the demo client's token keeps working.
	if status, m = exchange(url.Values{"scope": {"read"}}); status != http.StatusOK {
		t.Fatalf("exchange: HTTP %d %v", status, m)
	}
	own, _ := m["access_token"].(string)
	if status, body := clientPost(t, s.Base, "/oauth2/revoke", svc.ID, svc.Secret, url.Values{"token": {own}}); status != http.StatusOK {
		t.Fatalf("revoke: HTTP %d %s", status, body)
	}
	if st, _, _ := api(t, s.Base, "/api/me", own); st != http.StatusUnauthorized {
		t.Errorf("/api/me with the revoked exchanged token: HTTP %d, want 401", st)
	}
	st, me, _ = api(t, s.Base, "/api/me", tok.AccessToken)
	wantMe(t, "/api/me with the subject token after the exchanged token's revocation", st, me, s.ClientID, "read write")
	st, me, _ = api(t, s.Base, "/api/me", narrow)
	wantMe(t, "/api/me with another exchanged token", st, me, svc.ID, "read")

	// The demo client revokes its grant: the exchanged token is gone too.
	if status, body := clientPost(t, s.Base, "/oauth2/revoke", s.ClientID, s.ClientSecret, url.Values{"token": {tok.RefreshToken}}); status != http.StatusOK {
		t.Fatalf("revoke: HTTP %d %s", status, body)
	}
	if st, _, _ := api(t, s.Base, "/api/me", narrow); st != http.StatusUnauthorized {
		t.Errorf("/api/me with a token exchanged from a revoked grant: HTTP %d, want 401", st)
	}
	wantInactive(t, "introspection of a token exchanged from a revoked grant", introspect(t, s.Base, s, narrow))
}
