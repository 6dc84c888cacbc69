package adaptertest

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/oauth2kit/oauth2kit/core"
)

// registrationTests check dynamic client registration (RFC 7591) and its
// management API (RFC 7592) through the adapter: JSON bodies, and the
// GET, PUT and DELETE methods at the registration_client_uri, reach the
// endpoint as sent.
func registrationTests() []test {
	return []test{
		{"RegisterAuthorizeManage", func(t *testing.T, e *env) {
			md := e.get(e.api, "/.well-known/oauth-authorization-server", nil)
			var meta map[string]any
			if err := json.Unmarshal(md.body, &meta); err != nil || meta["registration_endpoint"] != e.path("/register") {
				t.Fatalf("registration_endpoint: %v %s", err, md.body)
			}
			redirect := "http://127.0.0.1:43117/callback"
			r := e.post(e.api, "/register", `{"redirect_uris":["`+redirect+`"],"token_endpoint_auth_method":"none","client_name":"Registered App"}`,
				http.Header{"Content-Type": {"application/json"}})
			var reg map[string]any
			if r.status != 201 || json.Unmarshal(r.body, &reg) != nil {
				t.Fatalf("register: %d %s", r.status, r.body)
			}
			id, _ := reg["client_id"].(string)
			tok, _ := reg["registration_access_token"].(string)
			uri, _ := reg["registration_client_uri"].(string)
			if id == "" || tok == "" || !strings.HasPrefix(uri, e.path("/register?client_id=")) {
				t.Fatalf("registration response: %s", r.body)
			}

			// The new client runs the code flow (consent asked: unverified).
			page := e.authorize(e.browser, authzQuery(id, redirect, "read", "s1").Encode())
			r = e.submitLogin(e.browser, page, userName, userPassword)
			if !isConsentPage(r) {
				t.Fatalf("no consent page for a registered client: %d %s", r.status, r.body)
			}
			code := e.location(e.decide(e.browser, r, "approve")).Query().Get("code")
			tr := e.tokenRequest(id, authNone, url.Values{"grant_type": {"authorization_code"}, "code": {code},
				"code_verifier": {verifier}, "redirect_uri": {redirect}})
			e.wantTokens(tr, false) // RFC 7591's default grant_types: no refresh_token

			manage := func(method, body, token string) *response {
				req := e.newRequest(method, strings.TrimPrefix(uri, e.base), strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+token)
				if body != "" {
					req.Header.Set("Content-Type", "application/json")
				}
				return e.send(e.api, req)
			}
			if r := manage("GET", "", tok); r.status != 200 || !strings.Contains(string(r.body), `"Registered App"`) {
				t.Fatalf("read: %d %s", r.status, r.body)
			}
			if r := manage("GET", "", tok+"x"); r.status != 401 || !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
				t.Fatalf("read with a wrong token: %d %v", r.status, r.header)
			}
			r = manage("PUT", `{"client_id":"`+id+`","redirect_uris":["`+redirect+`"],"token_endpoint_auth_method":"none","client_name":"Renamed App"}`, tok)
			if r.status != 200 || !strings.Contains(string(r.body), `"Renamed App"`) {
				t.Fatalf("update: %d %s", r.status, r.body)
			}
			// The update rotates the registration access token.
			var upd map[string]any
			_ = json.Unmarshal(r.body, &upd)
			if next, _ := upd["registration_access_token"].(string); next == "" || next == tok {
				t.Fatalf("update answered no new registration access token: %s", r.body)
			} else {
				tok = next
			}
			if r := manage("DELETE", "", tok); r.status != 204 {
				t.Fatalf("delete: %d %s", r.status, r.body)
			}
			if r := manage("GET", "", tok); r.status != 401 {
				t.Fatalf("read after delete: %d", r.status)
			}
			if _, err := e.store.GetClient(t.Context(), id); err != core.ErrNotFound {
				t.Fatalf("deleted client: %v", err)
			}
		}},
		{"RefusedRegistrationStoresNothing", func(t *testing.T, e *env) {
			before, _ := e.store.ListClients(t.Context())
			r := e.post(e.api, "/register", `{"redirect_uris":["http://app.example/cb"]}`, http.Header{"Content-Type": {"application/json"}})
			if r.status != 400 || !strings.Contains(string(r.body), core.ErrInvalidRedirectURI) {
				t.Fatalf("bad redirect: %d %s", r.status, r.body)
			}
			after, _ := e.store.ListClients(t.Context())
			if len(after) != len(before) {
				t.Fatal("a refused registration stored a client")
			}
		}},
	}
}
