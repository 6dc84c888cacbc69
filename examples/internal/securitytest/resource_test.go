package securitytest

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/oauth2kit/oauth2kit/core"
	"github.com/oauth2kit/oauth2kit/examples/internal/demo"
)

// wantNoCredentials: 401 with a bare Bearer challenge and no error.
func (e *env) wantNoCredentials(t testing.TB, r *response) {
	t.Helper()
	if r.status != 401 {
		t.Fatalf("status %d, want 401 without error: %v", r.status, r)
	}
	if got, want := r.header.Get("WWW-Authenticate"), `Bearer realm="`+e.cfg.Realm+`"`; got != want {
		t.Errorf("WWW-Authenticate %q, want %q", got, want)
	}
	if string(r.body) != "{}" {
		t.Errorf("body %s, want {}", r.body)
	}
}

func (e *env) wantBadResourceRequest(t testing.TB, r *response) {
	t.Helper()
	if r.status != 400 {
		t.Fatalf("status %d, want 400 invalid_request: %v", r.status, r)
	}
	if got, want := string(r.body), `{"error":"invalid_request","error_description":"the request is malformed or carries more than one token"}`; got != want {
		t.Errorf("body %s, want %s", got, want)
	}
}

func TestR42_BearerHeaderAndMethods(t *testing.T) {
	t.Parallel()
	e := newEnv(t, setup{})
	ts := e.tokens(confID, "", "read")
	for _, scheme := range []string{"Bearer", "bearer", "BEARER", "bEaReR"} {
		for _, sep := range []string{" ", "  "} {
			r := e.do(e.api, "GET", "/api/me", "", http.Header{"Authorization": {scheme + sep + ts.at}})
			wantMe(t, r, demo.DemoUser, confID, "read")
		}
	}
	// The query is never a place for a token.
	q := "/api/me?access_token=" + url.QueryEscape(ts.at)
	e.wantNoCredentials(t, e.do(e.api, "GET", q, "", nil))
	wantMe(t, e.do(e.api, "GET", q, "", http.Header{"Authorization": {"Bearer " + ts.at}}), demo.DemoUser, confID, "read")
	e.wantNoCredentials(t, e.do(e.api, "GET", q+"&oauth_token=", "", nil))
	// A form body on POST, PUT, PATCH and DELETE; not on GET, not as JSON.
	body := "access_token=" + url.QueryEscape(ts.at)
	for _, m := range []string{"POST", "PUT", "PATCH", "DELETE"} {
		wantMe(t, e.do(e.api, m, "/api/me", body, formHeader), demo.DemoUser, confID, "read")
	}
	e.wantNoCredentials(t, e.do(e.api, "GET", "/api/me", body, formHeader))
	e.wantNoCredentials(t, e.do(e.api, "POST", "/api/me", `{"access_token":"`+ts.at+`"}`, http.Header{"Content-Type": {"application/json"}}))
	// More than one method: 400.
	both := http.Header{"Authorization": {"Bearer " + ts.at}, "Content-Type": {"application/x-www-form-urlencoded"}}
	e.wantBadResourceRequest(t, e.do(e.api, "POST", "/api/me", body, both))
	e.wantBadResourceRequest(t, e.do(e.api, "GET", "/api/me", "", http.Header{"Authorization": {"Bearer " + ts.at, "Bearer " + ts.at}}))
	e.wantBadResourceRequest(t, e.do(e.api, "POST", "/api/me", body+"&"+body, formHeader))
}

func TestR43_ResourceErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t, setup{config: func(c *core.Config) { c.Lifetimes.AccessToken = 10 * time.Minute }})
	ts := e.tokens(confID, "", "read")
	revoked := e.tokens(confID, "", "read")
	ac := e.newCode(confID, "", "read")
	expiring := e.tokens(confID, "", "read")
	// No credentials.
	e.wantNoCredentials(t, e.do(e.api, "GET", "/api/me", "", nil))
	e.wantNoCredentials(t, e.do(e.api, "GET", "/api/me", "", e.basic(confID)))
	// Every unusable token: one identical 401.
	if r := e.revoke(confID, revoked.rt, ""); r.status != 200 {
		t.Fatalf("revoke: %v", r)
	}
	e.clock.advance(10 * time.Minute)
	expired := expiring.at
	fresh := wantTokenResponse(t, e.refresh(confID, ts.rt, ""), true)["access_token"].(string)
	for name, h := range map[string]string{
		"expired":          "Bearer " + expired,
		"revoked":          "Bearer " + revoked.at,
		"tampered":         "Bearer " + expired[:30] + flipChar(expired[30]) + expired[31:],
		"refresh token":    "Bearer " + ts.rt,
		"code":             "Bearer " + ac.code,
		"garbage":          "Bearer garbage",
		"empty token":      "Bearer ",
		"bare scheme":      "Bearer",
		"two words":        "Bearer a b",
		"bad characters":   "Bearer a,b",
		"unicode":          "Bearer \u00e9\u00e9",
		"at2 with nothing": "Bearer at2..",
	} {
		t.Run(name, func(t *testing.T) {
			e.wantInvalidToken(t, e.do(e.api, "GET", "/api/me", "", http.Header{"Authorization": {h}}))
		})
	}
	// A tab is no separator (RFC 7235: 1*SP): the header is not a Bearer
	// credential at all, so the answer is the bare challenge.
	e.wantNoCredentials(t, e.do(e.api, "GET", "/api/me", "", http.Header{"Authorization": {"Bearer\t" + fresh}}))
	// Missing scope: 403 naming it.
	e.wantInsufficientScope(t, e.resource("/api/write", fresh), "write")
	wantMe(t, e.resource("/api/me", fresh), demo.DemoUser, confID, "read")
}

func TestR44_CheckedOnEveryRequest(t *testing.T) {
	t.Parallel()
	e := newEnv(t, setup{config: func(c *core.Config) { c.Lifetimes.AccessToken = 10 * time.Minute }})
	rw := e.tokens(confID, "", "read write")
	// Scope, per route.
	wantMe(t, e.resource("/api/write", rw.at), demo.DemoUser, confID, "read write")
	narrow := wantTokenResponse(t, e.refresh(confID, rw.rt, "read"), true)
	e.wantInsufficientScope(t, e.resource("/api/write", narrow["access_token"].(string)), "write")
	// Revocation, exactly, from the very next request (no cache by
	// default): the grant's revocation record is read each time.
	ts := e.tokens(confID, "", "read")
	for range 3 {
		wantMe(t, e.resource("/api/me", ts.at), demo.DemoUser, confID, "read")
	}
	if r := e.revoke(confID, ts.rt, "refresh_token"); r.status != 200 {
		t.Fatal(r)
	}
	e.wantInvalidToken(t, e.resource("/api/me", ts.at))
	// Expiry, to the second.
	fresh := e.tokens(confID, "", "read")
	e.clock.advance(10*time.Minute - time.Second)
	wantMe(t, e.resource("/api/me", fresh.at), demo.DemoUser, confID, "read")
	e.clock.advance(time.Second)
	e.wantInvalidToken(t, e.resource("/api/me", fresh.at))
	// Audience and issuer: see R40.
}

func TestR44_R46_RevocationCacheBound(t *testing.T) {
	t.Parallel()
	// With Config.Caches.Revocation, a node may accept a revoked token
	// for at most the TTL; the node that revoked, and introspection
	// everywhere, are exact.
	ttl := 30 * time.Second
	e := newEnv(t, setup{config: func(c *core.Config) { c.Caches.Revocation = ttl }})
	b := e.replica(e.cfg)
	ts := e.tokens(confID, "", "read")
	bearer := http.Header{"Authorization": {"Bearer " + ts.at}}
	wantMe(t, e.doAt(b, e.api, "GET", "/api/me", "", bearer), demo.DemoUser, confID, "read") // cached at b
	wantMe(t, e.resource("/api/me", ts.at), demo.DemoUser, confID, "read")                   // cached at a
	if r := e.revoke(confID, ts.at, ""); r.status != 200 {
		t.Fatal(r)
	}
	e.wantInvalidToken(t, e.resource("/api/me", ts.at)) // a forgot its cache entry
	intro := url.Values{"token": {ts.at}}
	e.wantInactive(t, e.doAt(b, e.api, "POST", "/oauth2/introspect", intro.Encode(), http.Header{"Content-Type": formHeader["Content-Type"], "Authorization": e.basic(confID)["Authorization"]}))
	e.clock.advance(ttl - time.Second)
	if r := e.doAt(b, e.api, "GET", "/api/me", "", bearer); r.status != 200 {
		t.Logf("node b refused before the TTL (allowed, not required): %d", r.status)
	}
	e.clock.advance(time.Second)
	e.wantInvalidToken(t, e.doAt(b, e.api, "GET", "/api/me", "", bearer))
}

func TestR45_NoTokensInLogs(t *testing.T) {
	t.Parallel()
	e := newEnv(t, setup{})
	// Values that must not be logged even though the server sees them.
	wrongSecret := "wrong-secret-" + newVerifier(t)
	wrongPassword := "wrong-password-" + newVerifier(t)
	e.remember("wrong client secret", wrongSecret)
	e.remember("password attempt", wrongPassword)
	// A code replay and a refresh reuse (both logged as security events).
	ac := e.newCode(confID, "", "read")
	wantTokenResponse(t, e.redeem(ac), true)
	e.wantTokenError(t, e.redeem(ac), 400, "invalid_grant")
	ts := e.tokens(confID, "", "read")
	wantTokenResponse(t, e.refresh(confID, ts.rt, ""), true)
	e.wantTokenError(t, e.refresh(confID, ts.rt, ""), 400, "invalid_grant")
	// Failed client authentication and a failed login.
	e.wantTokenError(t, e.tokenRaw("grant_type=client_credentials", basicHdr(confID, wrongSecret)), 401, "invalid_client")
	b := e.browser()
	f := e.hidden(b.get("/oauth2/authorize?" + authzQuery(confID, "", "read", "st", fixedVerifier)))
	f.Set("username", demo.DemoUser)
	f.Set("password", wrongPassword)
	b.post("/oauth2/login", f.Encode())
	// Storage failures at the resource, revocation and introspection.
	live := e.tokens(confID, "", "read")
	restore := e.breakTable(t, "oauth2_revoked_families")
	if r := e.resource("/api/me", live.at); r.status != 503 {
		t.Errorf("resource with a failing store: %v", r)
	}
	e.wantTokenError(t, e.revoke(confID, live.rt, ""), 503, "temporarily_unavailable")
	e.wantTokenError(t, e.introspect(confID, live.at), 500, "server_error")
	restore()
	log := e.log.String()
	for _, event := range []string{"authorization code replayed", "refresh token reused", "client authentication failed", "demo: failed login", "revocation check failed", "revocation failed", "introspection lookup failed"} {
		if !strings.Contains(log, event) {
			t.Errorf("the log lacks %q", event)
		}
	}
	// The SQL statements are logged, without their values.
	if !strings.Contains(log, "gorm: ") || !strings.Contains(log, "oauth2_grants") {
		t.Error("no SQL in the log: the check below would prove nothing")
	}
	// The rest is checkNothingAtRest's, at the end of every test: none of
	// the values seen on the wire (codes, tokens, secrets, verifiers,
	// handles, CSRF tokens, cookies, and the two above) is in the log or
	// the database.
}

func TestR46_RevocationReachesTheGrant(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, d *database) {
		e := newEnv(t, setup{db: d})
		bystander := e.tokens(confID, "", "read")
		for _, c := range []struct {
			name, client, redirect, which, hint string
		}{
			{"refresh token", confID, "", "rt", ""},
			{"refresh token, hint", confID, "", "rt", "refresh_token"},
			{"refresh token, wrong hint", confID, "", "rt", "access_token"},
			{"access token", confID, "", "at", ""},
			{"access token, hint", confID, "", "at", "access_token"},
			{"access token, wrong hint", confID, "", "at", "refresh_token"},
			{"public client", pubID, pubRedirect, "rt", ""},
		} {
			t.Run(c.name, func(t *testing.T) {
				ts := e.tokens(c.client, c.redirect, "read")
				// A rotation first, so the grant holds two refresh tokens
				// and two access tokens.
				m := wantTokenResponse(t, e.refresh(c.client, ts.rt, ""), true)
				at2, rt2 := m["access_token"].(string), m["refresh_token"].(string)
				tok := rt2
				if c.which == "at" {
					tok = ts.at
				}
				now := e.clock.now()
				r := e.revoke(c.client, tok, c.hint)
				if r.status != 200 || len(r.body) != 0 {
					t.Fatalf("revoke: %v", r)
				}
				if !e.isRevoked(ts.family) {
					t.Fatal("no revocation record")
				}
				var keep []time.Time
				if err := e.db.Table("oauth2_revoked_families").Where("family_id = ?", ts.family).Pluck("keep_until", &keep).Error; err != nil {
					t.Fatal(err)
				}
				if want := now.Add(30*24*time.Hour + time.Hour); len(keep) != 1 || keep[0].Sub(want).Abs() > 5*time.Second {
					t.Errorf("keep_until %v, want about %v", keep, want)
				}
				for _, at := range []string{ts.at, at2} {
					e.wantInvalidToken(t, e.resource("/api/me", at))
				}
				e.wantTokenError(t, e.refresh(c.client, rt2, ""), 400, "invalid_grant")
				e.wantRTState(t, rt2, false)
				if n := len(e.familyRows(ts.family)); n != 2 {
					t.Errorf("%d rows in the family", n)
				}
				e.wantInactive(t, e.introspect(confID, at2))
				// Revoking again is fine.
				if r := e.revoke(c.client, tok, c.hint); r.status != 200 {
					t.Errorf("second revocation: %v", r)
				}
			})
		}
		// Other grants live on.
		wantMe(t, e.resource("/api/me", bystander.at), demo.DemoUser, confID, "read")
		wantTokenResponse(t, e.refresh(confID, bystander.rt, ""), true)
		if e.isRevoked(bystander.family) {
			t.Error("the bystander grant was revoked")
		}
	})
}

func TestR47_RevocationAuthAndOwnership(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, d *database) {
		e := newEnv(t, setup{db: d, config: func(c *core.Config) { c.Lifetimes.AccessToken = 10 * time.Minute }})
		ts := e.tokens(confID, "", "read")
		other := e.tokens(otherID, "", "read")
		// Authentication is required.
		for name, c := range map[string]struct {
			hdr    http.Header
			body   string
			status int
		}{
			"none":              {nil, "token=" + ts.rt, 401},
			"wrong secret":      {basicHdr(confID, "wrong"), "token=" + ts.rt, 401},
			"unknown client":    {basicHdr("nobody", "x"), "token=" + ts.rt, 401},
			"body wrong secret": {nil, "token=" + ts.rt + "&client_id=" + confID + "&client_secret=wrong", 400},
			"bearer instead":    {http.Header{"Authorization": {"Bearer " + ts.at}}, "token=" + ts.rt, 401},
		} {
			t.Run(name, func(t *testing.T) {
				e.wantTokenError(t, e.post(e.api, "/oauth2/revoke", c.body, c.hdr), c.status, "invalid_client")
			})
		}
		// Another client's tokens are refused and stay valid.
		for _, tok := range []string{other.rt, other.at} {
			e.wantTokenError(t, e.revoke(confID, tok, ""), 400, "unauthorized_client")
		}
		e.wantTokenError(t, e.revoke(pubID, ts.rt, ""), 400, "unauthorized_client")
		if len(e.revokedFamilies()) != 0 {
			t.Fatalf("revoked: %v", e.revokedFamilies())
		}
		wantMe(t, e.resource("/api/me", other.at), demo.DemoUser, otherID, "read")
		wantMe(t, e.resource("/api/me", ts.at), demo.DemoUser, confID, "read")
		// Unknown, malformed, already invalid: 200, empty, nothing done.
		gone := e.tokens(confID, "", "read")
		if r := e.revoke(confID, gone.rt, ""); r.status != 200 {
			t.Fatal(r)
		}
		ac := e.newCode(confID, "", "read")
		expiring := e.tokens(otherID, "", "read")
		e.clock.advance(10 * time.Minute)
		before := e.revokedFamilies()
		for name, tok := range map[string]string{
			"unknown refresh token":            "rt2.k1." + strings.Repeat("A", 64),
			"garbage":                          "garbage",
			"code":                             ac.code,
			"forged access token":              ts.at[:40] + flipChar(ts.at[40]) + ts.at[41:],
			"unknown key":                      "at2.k9." + strings.SplitN(ts.at, ".", 3)[2],
			"already revoked":                  gone.rt,
			"another client's expired at":      expiring.at,
			"another client's token, unknown":  "rt2.k2." + strings.Repeat("B", 64),
			"login handle":                     e.hidden(e.browser().get("/oauth2/authorize?" + authzQuery(confID, "", "read", "st", fixedVerifier))).Get(core.FieldRequest),
			"signature of a stored token":      e.refreshRow(ts.rt).Sig,
			"refresh token of a revoked grant": gone.rt,
		} {
			r := e.revoke(confID, tok, "")
			if r.status != 200 || len(r.body) != 0 {
				t.Errorf("%s: %v, want 200 and no body", name, r)
			}
		}
		if got := e.revokedFamilies(); !slices.Equal(got, before) {
			t.Errorf("revocations %v -> %v", before, got)
		}
		wantTokenResponse(t, e.refresh(otherID, other.rt, ""), true)
	})
}

func TestR48_RevocationStorageErrorIs503(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, d *database) {
		e := newEnv(t, setup{db: d})
		for _, table := range []string{"oauth2_revoked_families", "oauth2_refresh_tokens", "oauth2_clients"} {
			t.Run(table, func(t *testing.T) {
				ts := e.tokens(confID, "", "read")
				restore := e.breakTable(t, table)
				for _, tok := range []string{ts.rt, ts.at} {
					if table == "oauth2_refresh_tokens" && tok == ts.at {
						continue // revoking an access token reads no refresh token
					}
					r := e.revoke(confID, tok, "")
					e.wantTokenError(t, r, 503, "temporarily_unavailable")
					wantNoInternals(t, r)
				}
				restore()
				// Nothing was revoked: the client must (and can) retry.
				if e.isRevoked(ts.family) {
					t.Fatal("revoked although the answer was 503")
				}
				wantMe(t, e.resource("/api/me", ts.at), demo.DemoUser, confID, "read")
				if r := e.revoke(confID, ts.rt, ""); r.status != 200 {
					t.Fatalf("retry: %v", r)
				}
				e.wantInvalidToken(t, e.resource("/api/me", ts.at))
			})
		}
	})
}

func TestR49_Introspection(t *testing.T) {
	t.Parallel()
	e := newEnv(t, setup{config: func(c *core.Config) {
		c.Lifetimes.AccessToken = 10 * time.Minute
		c.Lifetimes.RefreshToken = time.Hour
	}})
	ts := e.tokens(confID, "", "read write")
	// Authorization is required: client authentication of a confidential
	// client.
	for name, c := range map[string]struct {
		hdr    http.Header
		body   string
		status int
	}{
		"none":                 {nil, "token=" + ts.at, 401},
		"wrong secret":         {basicHdr(confID, "wrong"), "token=" + ts.at, 401},
		"public client":        {nil, "token=" + ts.at + "&client_id=" + pubID, 401}, // no client authentication: RFC 7662 §2.1
		"public client, Basic": {basicHdr(pubID, ""), "token=" + ts.at, 401},
		"bearer":               {http.Header{"Authorization": {"Bearer " + ts.at}}, "token=" + ts.at, 401},
	} {
		t.Run(name, func(t *testing.T) {
			e.wantTokenError(t, e.post(e.api, "/oauth2/introspect", c.body, c.hdr), c.status, "invalid_client")
		})
	}
	// An active access token, to any confidential client (resource
	// servers): every field, nothing else.
	for _, client := range []string{confID, otherID} {
		r := e.introspect(client, ts.at)
		m := decodeJSON(t, r)
		wantNoStore(t, r)
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		if want := []string{"active", "aud", "client_id", "exp", "iat", "iss", "jti", "scope", "sub", "token_type", "username"}; !slices.Equal(keys, want) {
			t.Errorf("fields %v, want %v", keys, want)
		}
		if m["active"] != true || m["scope"] != "read write" || m["client_id"] != confID || m["sub"] != demo.DemoUser || m["username"] != demo.DemoUser ||
			m["token_type"] != "Bearer" || m["iss"] != e.cfg.Issuer || m["aud"] != e.cfg.Audience || m["exp"].(float64)-m["iat"].(float64) != 600 {
			t.Errorf("introspection of an access token: %v", m)
		}
	}
	// A refresh token, to its own client only.
	m := e.introspectAs(confID, ts.rt)
	if m["active"] != true || m["token_type"] != "refresh_token" || m["client_id"] != confID || m["scope"] != "read write" {
		t.Errorf("introspection of a refresh token: %v", m)
	}
	e.wantInactive(t, e.introspect(otherID, ts.rt))
	// Exactly {"active":false} for everything unusable.
	rotated := e.tokens(confID, "", "read")
	wantTokenResponse(t, e.refresh(confID, rotated.rt, ""), true)
	revoked := e.tokens(confID, "", "read")
	if r := e.revoke(confID, revoked.rt, ""); r.status != 200 {
		t.Fatal(r)
	}
	ac := e.newCode(confID, "", "read")
	handle := e.hidden(e.browser().get("/oauth2/authorize?" + authzQuery(confID, "", "read", "st", fixedVerifier))).Get(core.FieldRequest)
	inactive := map[string]string{
		"unknown":                "rt2.k1." + strings.Repeat("A", 64),
		"garbage":                "garbage",
		"code":                   ac.code,
		"tampered access token":  ts.at[:40] + flipChar(ts.at[40]) + ts.at[41:],
		"login handle":           handle,
		"rotated refresh token":  rotated.rt,
		"revoked access token":   revoked.at,
		"revoked grant's token":  revoked.rt,
		"stored signature":       e.refreshRow(ts.rt).Sig,
		"another key generation": "at2.k2." + strings.SplitN(ts.at, ".", 3)[2],
	}
	for name, tok := range inactive {
		t.Run("inactive/"+name, func(t *testing.T) { e.wantInactive(t, e.introspect(confID, tok)) })
	}
	// Expired: the access token after 10 minutes, the refresh token after
	// an hour.
	e.clock.advance(10 * time.Minute)
	e.wantInactive(t, e.introspect(confID, ts.at))
	if m := e.introspectAs(confID, ts.rt); m["active"] != true {
		t.Errorf("refresh token inactive too early: %v", m)
	}
	e.clock.advance(50 * time.Minute)
	e.wantInactive(t, e.introspect(confID, ts.rt))
}

func TestR49_IntrospectionStorageFailure(t *testing.T) {
	t.Parallel()
	e := newEnv(t, setup{})
	ts := e.tokens(confID, "", "read")
	for _, c := range []struct{ table, tok string }{{"oauth2_revoked_families", ts.at}, {"oauth2_revoked_families", ts.rt}, {"oauth2_refresh_tokens", ts.rt}} {
		restore := e.breakTable(t, c.table)
		r := e.introspect(confID, c.tok)
		e.wantTokenError(t, r, 500, "server_error")
		var m map[string]any
		if json.Unmarshal(r.body, &m) == nil && m["active"] != nil {
			t.Errorf("a failed introspection answered active: %s", r.body)
		}
		wantNoInternals(t, r)
		restore()
	}
	if m := e.introspectAs(confID, ts.at); m["active"] != true {
		t.Errorf("after recovery: %v", m)
	}
}
