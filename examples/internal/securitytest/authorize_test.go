package securitytest

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/oauth2kit/oauth2kit/core"
	"github.com/oauth2kit/oauth2kit/examples/internal/demo"
)

// challengeOf is a valid S256 challenge for queries built by hand.
var challengeOf = core.S256Challenge

const fixedVerifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"

func pkceParams() string {
	return "&code_challenge=" + challengeOf(fixedVerifier) + "&code_challenge_method=S256"
}

// wantNoGrants asserts that no code was stored: every grant row is a used
// form's record (born used, no user), which no one can redeem.
func (e *env) wantNoGrants(t testing.TB) {
	t.Helper()
	var n int64
	if err := e.db.Table("oauth2_grants").Where("used_at IS NULL OR user_id <> ''").Count(&n).Error; err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%d grants stored, want none", n)
	}
}

func TestR01_RedirectURIExactMatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t, setup{})
	refused := []struct{ client, uri string }{
		{confID, "https://CLIENT.example.test/cb"},
		{confID, "HTTPS://client.example.test/cb"},
		{confID, "https://client.example.test/CB"},
		{confID, "https://client.example.test/cb/"},
		{confID, "https://client.example.test/c%62"},
		{confID, "https://client.example.test/./cb"},
		{confID, "https://client.example.test/x/../cb"},
		{confID, "https://client.example.test//cb"},
		{confID, "https://client.example.test:443/cb"},
		{confID, "https://client.example.test/cb?"},
		{confID, "https://client.example.test/cb?x=1"},
		{confID, "https://client.example.test/cb#"},
		{confID, "https://client.example.test/cb "},
		{confID, "https://client.example.test.evil.test/cb"},
		{confID, "https://client.example.test@evil.test/cb"},
		{confID, "https://evil.test/cb"},
		{confID, "http://client.example.test/cb"},
		{otherID, "https://other.example.test/cb"},
		{otherID, "https://other.example.test/cb?tenant=red"},
		{otherID, "https://other.example.test/cb?tenant=blue&x=1"},
		{otherID, "https://other.example.test/cb?tenant=%62lue"},
		{pubID, "http://localhost/callback"},
		{pubID, "http://localhost:5000/callback"},
		{pubID, "https://127.0.0.1:5000/callback"},
		{pubID, "http://127.0.0.1:5000/callback/"},
		{pubID, "http://127.0.0.1:5000/Callback"},
		{pubID, "http://127.0.0.2:5000/callback"},
		{pubID, "http://127.0.0.1.evil.test/callback"},
		{pubID, "http://127.0.0.1:5000@evil.test/callback"},
		{pubID, "http://[::1%25eth0]:5000/callback"},
		{pubID, "http://[0:0:0:0:0:0:0:1]:5000/callback"},
		{pubID, "http://127.0.0.1:/callback"},
		{pubID, "http://127.0.0.1:5000000/callback"},
		{pubID, "com.example.app:/oauth/"},
		{pubID, "com.example.app://oauth"},
	}
	for _, c := range refused {
		r := e.browser().get("/oauth2/authorize?" + authzQuery(c.client, c.uri, "read", "st", fixedVerifier))
		wantErrorPage(t, r, 400, "invalid_request")
		if r.header.Get("Set-Cookie") != "" {
			t.Errorf("%s: a session cookie for a refused request", c.uri)
		}
	}
	e.wantNoGrants(t)

	// The code goes to the URI as sent (loopback port included), and the
	// grant remembers it byte for byte.
	for _, c := range []struct{ client, uri string }{
		{confID, confRedirect},
		{otherID, otherRedirect},
		{pubID, pubRedirect},
		{pubID, "http://127.0.0.1:54321/callback"},
		{pubID, "http://[::1]:8080/callback"},
		{pubID, pubRedirectApp},
	} {
		ac := e.newCode(c.client, c.uri, "read")
		e.wantCodeRedirect(t, ac.res, c.uri, "st")
		if g := e.grantOfCode(ac.code); g == nil || g.RedirectURI != c.uri || g.ClientID != c.client {
			t.Errorf("%s: grant row %+v", c.uri, g)
		}
	}
}

func TestR02_NoRedirectForUntrustedRedirectURI(t *testing.T) {
	t.Parallel()
	e := newEnv(t, setup{})
	evil := url.QueryEscape("https://evil.test/cb")
	reg := url.QueryEscape(confRedirect)
	cases := []struct{ name, query, code string }{
		{"missing client_id", "response_type=code&redirect_uri=" + reg + "&state=s" + pkceParams(), "invalid_request"},
		{"empty client_id", "response_type=code&client_id=&redirect_uri=" + reg + "&state=s" + pkceParams(), "invalid_request"},
		{"unknown client", "response_type=code&client_id=nobody&redirect_uri=" + evil + "&state=s" + pkceParams(), "invalid_client"},
		{"unknown client, implicit", "response_type=token&client_id=nobody&redirect_uri=" + evil + "&state=s", "invalid_client"},
		{"mismatched", "response_type=code&client_id=" + confID + "&redirect_uri=" + evil + "&state=s" + pkceParams(), "invalid_request"},
		{"mismatched, other error too", "response_type=token&client_id=" + confID + "&redirect_uri=" + evil + "&state=s", "invalid_request"},
		{"malformed escape", "response_type=code&client_id=" + confID + "&redirect_uri=%zz&state=s" + pkceParams(), "invalid_request"},
		{"not a URI", "response_type=code&client_id=" + confID + "&redirect_uri=not+a+uri&state=s" + pkceParams(), "invalid_request"},
		{"missing with several", "response_type=code&client_id=" + pubID + "&state=s" + pkceParams(), "invalid_request"},
		{"repeated client_id", "response_type=code&client_id=" + confID + "&client_id=" + otherID + "&redirect_uri=" + reg + "&state=s" + pkceParams(), "invalid_request"},
		{"repeated redirect_uri", "response_type=code&client_id=" + confID + "&redirect_uri=" + reg + "&redirect_uri=" + evil + "&state=s" + pkceParams(), "invalid_request"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.browser().get("/oauth2/authorize?" + c.query)
			wantErrorPage(t, r, 400, c.code)
			if strings.Contains(string(r.body), "evil.test") {
				t.Errorf("the page names the untrusted URI")
			}
			// The same as a POSTed authorization request.
			r = e.browser().post("/oauth2/authorize", c.query)
			wantErrorPage(t, r, 400, c.code)
		})
	}
	e.wantNoGrants(t)
	if n := e.count("oauth2_consents"); n != 0 {
		t.Errorf("%d consents", n)
	}
}

func TestR03_RedirectURIRequiredOnlyWithSeveral(t *testing.T) {
	t.Parallel()
	e := newEnv(t, setup{})
	// Several registered: required.
	r := e.browser().get("/oauth2/authorize?" + authzQuery(pubID, "", "read", "st", fixedVerifier))
	wantErrorPage(t, r, 400, "invalid_request")
	e.wantNoGrants(t)

	// One registered: optional; the code goes to it, and the grant records
	// that none was sent.
	ac := e.newCode(confID, "", "read")
	e.wantCodeRedirect(t, ac.res, confRedirect, "st")
	if g := e.grantOfCode(ac.code); g == nil || g.RedirectURI != "" {
		t.Fatalf("grant %+v, want an empty redirect_uri", g)
	}
	// The token request may then omit it ...
	wantTokenResponse(t, e.redeem(ac), true)
	// ... or send the registered one ...
	ac = e.newCode(confID, "", "read")
	f := e.redeemForm(ac)
	f.Set("redirect_uri", confRedirect)
	wantTokenResponse(t, e.token(confID, f), true)
	// ... but no other.
	ac = e.newCode(confID, "", "read")
	f = e.redeemForm(ac)
	f.Set("redirect_uri", confRedirect+"/")
	e.wantTokenError(t, e.token(confID, f), 400, "invalid_grant")
	if rows := e.familyRows(e.grantOfCode(ac.code).GrantID); len(rows) != 0 {
		t.Errorf("refused redemption stored %d refresh tokens", len(rows))
	}
}

func TestR04_RegistrationRejectsBadRedirectURIs(t *testing.T) {
	t.Parallel()
	e := newEnv(t, setup{})
	before := e.count("oauth2_clients")
	for _, uri := range []string{
		"/relative/cb", "cb", "//client.example.test/cb", "https://client.example.test/cb#frag",
		"https://client.example.test/cb#", "http://client.example.test/cb", "http://192.168.1.10/cb",
		"http://127.0.0.1.evil.test/cb", "https://user:pw@client.example.test/cb", "https:///cb",
		"javascript:alert(1)", "data:text/html,x", "file:///etc/passwd", "https://client.example.test/c b",
		"https://client.example.test/cb\\x", "", "https://client.example.test/\u00e9",
	} {
		// NewClient is the registration path (the examples' "client add"
		// calls it, then stores the client); nothing reaches the table.
		if _, _, err := core.NewClient(core.ClientSpec{Name: "x", RedirectURIs: []string{uri}}); err == nil {
			t.Errorf("%q accepted at registration", uri)
		}
	}
	if n := e.count("oauth2_clients"); n != before {
		t.Errorf("clients %d -> %d", before, n)
	}
	for _, uri := range []string{"https://client.example.test/cb?x=1", "http://127.0.0.1/cb", "http://[::1]:8080/cb", "http://localhost/cb", "com.example.app:/cb"} {
		if _, _, err := core.NewClient(core.ClientSpec{Name: "x", RedirectURIs: []string{uri}}); err != nil {
			t.Errorf("%q refused: %v", uri, err)
		}
	}
}

func TestR05_PKCERequired(t *testing.T) {
	t.Parallel()
	e := newEnv(t, setup{})
	// Public and (by default) confidential clients: an error redirect.
	for _, c := range []struct{ client, uri string }{{pubID, pubRedirect}, {confID, confRedirect}} {
		r := e.browser().get("/oauth2/authorize?" + authzQuery(c.client, c.uri, "read", "st-5", ""))
		e.wantErrorRedirect(t, r, c.uri, "invalid_request", "st-5")
		// A method without a challenge is no better.
		r = e.browser().get("/oauth2/authorize?" + authzQuery(c.client, c.uri, "read", "st-5", "") + "&code_challenge_method=S256")
		e.wantErrorRedirect(t, r, c.uri, "invalid_request", "st-5")
	}
	e.wantNoGrants(t)
	// A confidential client set to PKCEOptional may go without; the code
	// then has no challenge, and the token request no verifier.
	b := e.browser()
	r := b.approve(b.get("/oauth2/authorize?" + authzQuery(optID, "", "read", "st", "")))
	code := e.wantCodeRedirect(t, r, optRedirect, "st")
	if g := e.grantOfCode(code); g == nil || g.CodeChallenge != "" || g.CodeChallengeMethod != "" {
		t.Fatalf("grant %+v", g)
	}
	wantTokenResponse(t, e.token(optID, url.Values{"grant_type": {"authorization_code"}, "code": {code}}), true)
}

func TestR06_ChallengeMethod(t *testing.T) {
	t.Parallel()
	e := newEnv(t, setup{})
	ch := challengeOf(fixedVerifier)
	for _, m := range []string{"plain", "s256", "S512", "SHA256", "none"} {
		r := e.browser().get("/oauth2/authorize?" + authzQuery(confID, "", "read", "st", "") + "&code_challenge=" + ch + "&code_challenge_method=" + m)
		e.wantErrorRedirect(t, r, confRedirect, "invalid_request", "st")
	}
	// An omitted method means plain (RFC 7636 §4.3): refused too.
	r := e.browser().get("/oauth2/authorize?" + authzQuery(confID, "", "read", "st", "") + "&code_challenge=" + ch)
	e.wantErrorRedirect(t, r, confRedirect, "invalid_request", "st")
	e.wantNoGrants(t)
	// S256 works, and is all the metadata offers.
	ac := e.newCode(confID, "", "read")
	if g := e.grantOfCode(ac.code); g.CodeChallengeMethod != "S256" {
		t.Errorf("method %q", g.CodeChallengeMethod)
	}
	if got := e.metadata()["code_challenge_methods_supported"]; len(got.([]any)) != 1 || got.([]any)[0] != "S256" {
		t.Errorf("code_challenge_methods_supported %v", got)
	}
}

func TestR07_ChallengeSyntax(t *testing.T) {
	t.Parallel()
	e := newEnv(t, setup{})
	a := func(n int) string { return strings.Repeat("a", n) }
	for _, ch := range []string{a(42), a(129), a(42) + "+", a(42) + "/", a(42) + "=", a(42) + "%20", a(42) + "%C3%A9", a(42) + "!"} {
		r := e.browser().get("/oauth2/authorize?" + authzQuery(confID, "", "read", "st", "") + "&code_challenge=" + ch + "&code_challenge_method=S256")
		e.wantErrorRedirect(t, r, confRedirect, "invalid_request", "st")
	}
	e.wantNoGrants(t)
	for _, ch := range []string{a(43), a(128), "-._~" + a(39)} {
		r := e.browser().get("/oauth2/authorize?" + authzQuery(confID, "", "read", "st", "") + "&code_challenge=" + ch + "&code_challenge_method=S256")
		if r.status != 200 {
			t.Errorf("challenge of %d characters refused: %v", len(ch), r)
		}
	}
}

func TestR08_ChallengeBoundServerSideAndNeverEchoed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, setup{})
	v := newVerifier(t)
	ch := challengeOf(v)
	e.remember("code verifier", v)
	b := e.browser()
	var seen []*response
	page := b.get("/oauth2/authorize?" + authzQuery(confID, "", "read write", "st", v))
	seen = append(seen, page)
	consent := b.login(page)
	seen = append(seen, consent)
	red := b.decide(consent, "approve")
	seen = append(seen, red)
	code := e.wantCodeRedirect(t, red, confRedirect, "st")
	tok := e.token(confID, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {v}})
	seen = append(seen, tok)
	wantTokenResponse(t, tok, true)
	for _, r := range seen {
		all := string(r.body)
		for k, vs := range r.header {
			all += k + ": " + strings.Join(vs, ",") + "\n"
		}
		if strings.Contains(all, ch) {
			t.Errorf("the challenge appears in a response: %v", r)
		}
		// The login handle is sealed: not even its decoded bytes hold it.
		for _, m := range hiddenRe.FindAllStringSubmatch(string(r.body), -1) {
			parts := strings.Split(m[2], ".")
			raw, _ := base64.RawURLEncoding.DecodeString(parts[len(parts)-1])
			if strings.Contains(string(raw), ch) || strings.Contains(string(raw), "S256") {
				t.Errorf("a hidden field carries the challenge in clear")
			}
		}
	}
	// Bound server-side, with client, redirect and scope.
	g := e.grantOfCode(code)
	if g.CodeChallenge != ch || g.CodeChallengeMethod != "S256" || g.ClientID != confID || g.RedirectURI != "" || g.Scope != "read write" || g.UserID != demo.DemoUser {
		t.Errorf("grant row %+v", g)
	}
	// Another verifier does not redeem a code.
	ac := e.newCode(confID, confRedirect, "read")
	ac.verifier = newVerifier(t)
	e.wantTokenError(t, e.redeem(ac), 400, "invalid_grant")
	if rows := e.familyRows(e.grantOfCode(ac.code).GrantID); len(rows) != 0 {
		t.Errorf("refresh token stored for a refused redemption")
	}
	// A tampered login handle (the challenge rides in it) is refused.
	b = e.browser()
	page = b.get("/oauth2/authorize?" + authzQuery(confID, "", "read", "st", v))
	f := e.hidden(page)
	h := f.Get(core.FieldRequest)
	i := len(h) - 10
	f.Set(core.FieldRequest, h[:i]+flipChar(h[i])+h[i+1:])
	f.Set("username", demo.DemoUser)
	f.Set("password", demo.DemoPassword)
	wantErrorPage(t, b.post("/oauth2/login", f.Encode()), 400, "invalid_request")
}

func TestR09_CodeLifetimeSingleUseEntropy(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, d *database) {
		e := newEnv(t, setup{db: d})
		// Lifetime: 60 s by default, measured by the server's clock.
		early, late := e.newCode(confID, "", "read"), e.newCode(confID, "", "read")
		for _, c := range []authCode{early, late} {
			g := e.grantOfCode(c.code)
			if g.CreatedAt == nil || g.ExpiresAt.Sub(*g.CreatedAt) != 60*time.Second {
				t.Errorf("code lifetime %v - %v, want 60s", g.ExpiresAt, g.CreatedAt)
			}
		}
		e.clock.advance(59 * time.Second)
		wantTokenResponse(t, e.redeem(early), true)
		e.clock.advance(time.Second)
		e.wantTokenError(t, e.redeem(late), 400, "invalid_grant")
		g := e.grantOfCode(late.code)
		if g.UsedAt != nil || len(e.familyRows(g.GrantID)) != 0 {
			t.Errorf("the expired code was consumed or issued: %+v", g)
		}

		// Single use: the second redemption fails and changes nothing
		// but the revocation of what the first issued (R31).
		c := e.newCode(confID, "", "read")
		m := wantTokenResponse(t, e.redeem(c), true)
		g = e.grantOfCode(c.code)
		if g.UsedAt == nil {
			t.Fatal("used_at not set after the redemption")
		}
		used := *g.UsedAt
		e.wantTokenError(t, e.redeem(c), 400, "invalid_grant")
		g = e.grantOfCode(c.code)
		if g.UsedAt == nil || !g.UsedAt.Equal(used) {
			t.Errorf("used_at %v changed from %v", g.UsedAt, used)
		}
		if rows := e.familyRows(g.GrantID); len(rows) != 1 || rows[0].Sig != e.sigOf("rt/hmac", m["refresh_token"].(string)) {
			t.Errorf("refresh tokens of the grant: %+v", rows)
		}

		// Concurrent redemptions of one code: exactly one gets tokens.
		c = e.newCode(confID, "", "read")
		const n = 8
		results := make(chan *response, n)
		start := make(chan struct{})
		for range n {
			go func() {
				<-start
				f := e.redeemForm(c)
				hdr := e.clientAuth(confID, f)
				results <- e.post(e.api, "/oauth2/token", f.Encode(), hdr)
			}()
		}
		close(start)
		ok := 0
		for range n {
			r := <-results
			switch r.status {
			case 200:
				ok++
				m := decodeJSON(t, r)
				e.remember("access_token", m["access_token"].(string))
				e.remember("refresh_token", m["refresh_token"].(string))
			case 400:
			default:
				t.Errorf("concurrent redemption: %v", r)
			}
		}
		g = e.grantOfCode(c.code)
		if ok != 1 || len(e.familyRows(g.GrantID)) != 1 {
			t.Errorf("%d of %d concurrent redemptions succeeded, %d refresh tokens stored; want 1 and 1", ok, n, len(e.familyRows(g.GrantID)))
		}
		// The losers were valid replays: they revoked what the winner got.
		if !e.isRevoked(g.GrantID) {
			t.Error("the concurrent replays did not revoke the grant")
		}

		// 256 random bits per code: ac2.<kid>.<32 random + 16 check bytes>.
		codeRe := regexp.MustCompile(`^ac2\.k1\.[A-Za-z0-9_-]{64}$`)
		for _, c := range []authCode{early, late, c} {
			if !codeRe.MatchString(c.code) {
				t.Errorf("code of an unexpected shape (%d characters)", len(c.code))
			}
		}
	})
	// The lifetime may be set up to 10 minutes, not beyond.
	e := newEnv(t, setup{config: func(c *core.Config) { c.Lifetimes.Code = 10 * time.Minute }})
	c := e.newCode(confID, "", "read")
	if g := e.grantOfCode(c.code); g.ExpiresAt.Sub(*g.CreatedAt) != 10*time.Minute {
		t.Errorf("lifetime %v", g.ExpiresAt.Sub(*g.CreatedAt))
	}
	cfg := e.cfg
	if _, err := newServerErr(e, cfg); err != nil {
		t.Fatalf("10 minutes refused: %v", err)
	}
	cfg.Lifetimes.Code = 10*time.Minute + time.Second
	if _, err := newServerErr(e, cfg); err == nil {
		t.Error("core.New accepted a code lifetime over 10 minutes")
	}
}

// oddStates come back byte for byte.
var oddStates = []string{
	"plain", "with space", "a+b", "%20", "&code=evil&iss=evil", "#frag", "<script>alert(1)</script>",
	`"'\`, "ü日本", "tab\tnewline\n", strings.Repeat("x", 2000),
}

func TestR10_StateByteIdentical(t *testing.T) {
	t.Parallel()
	e := newEnv(t, setup{})
	for _, st := range oddStates {
		v := newVerifier(t)
		// Success.
		b := e.browser()
		r := b.approve(b.get("/oauth2/authorize?" + authzQuery(confID, "", "read", st, v)))
		e.wantCodeRedirect(t, r, confRedirect, st)
		// Error.
		q := authzQuery(confID, "", "read", st, v)
		r = e.browser().get("/oauth2/authorize?" + strings.Replace(q, "response_type=code", "response_type=token", 1))
		e.wantErrorRedirect(t, r, confRedirect, "unsupported_response_type", st)
		// access_denied (the other client has no remembered consent).
		b = e.browser()
		consent := b.login(b.get("/oauth2/authorize?" + authzQuery(otherID, "", "read", st, v)))
		e.wantErrorRedirect(t, b.decide(consent, "deny"), otherRedirect, "access_denied", st)
	}
	// No state sent: none returned.
	b := e.browser()
	r := b.approve(b.get("/oauth2/authorize?" + authzQuery(confID, "", "read", "", fixedVerifier)))
	e.wantCodeRedirect(t, r, confRedirect, "")
	// A state beyond 2048 bytes is not echoed: the error comes without it.
	r = e.browser().get("/oauth2/authorize?" + authzQuery(confID, "", "read", strings.Repeat("s", 2049), fixedVerifier))
	e.wantErrorRedirect(t, r, confRedirect, "invalid_request", "")
}

func TestR11_IssEverywhere(t *testing.T) {
	t.Parallel()
	for _, trailing := range []bool{false, true} {
		name := "issuer"
		if trailing {
			name = "issuer with a trailing slash"
		}
		t.Run(name, func(t *testing.T) {
			s := setup{}
			if trailing {
				s.config = func(c *core.Config) { c.Issuer += "/" }
			}
			e := newEnv(t, s)
			md := e.metadata()
			if md["issuer"] != e.base || md["authorization_response_iss_parameter_supported"] != true {
				t.Fatalf("metadata issuer %v, iss supported %v", md["issuer"], md["authorization_response_iss_parameter_supported"])
			}
			if e.cfg.Issuer != e.base {
				t.Fatalf("effective issuer %q", e.cfg.Issuer)
			}
			// wantCodeRedirect and wantErrorRedirect demand iss = issuer.
			e.wantCodeRedirect(t, e.newCode(confID, "", "read").res, confRedirect, "st")
			e.wantErrorRedirect(t, e.browser().get("/oauth2/authorize?"+authzQuery(pubID, pubRedirect, "read", "st", "")), pubRedirect, "invalid_request", "st")
			b := e.browser()
			e.wantErrorRedirect(t, b.decide(b.login(b.get("/oauth2/authorize?"+authzQuery(otherID, "", "read", "st", fixedVerifier))), "deny"), otherRedirect, "access_denied", "st")
		})
	}
}

func TestR12_RepeatedEmptyUnknownParameters(t *testing.T) {
	t.Parallel()
	e := newEnv(t, setup{})
	base := authzQuery(confID, "", "read", "st", fixedVerifier)
	for _, extra := range []string{"&scope=write", "&scope=", "&response_type=code", "&code_challenge=" + challengeOf(strings.Repeat("b", 43)), "&code_challenge_method=S256"} {
		r := e.browser().get("/oauth2/authorize?" + base + extra)
		e.wantErrorRedirect(t, r, confRedirect, "invalid_request", "st")
	}
	e.wantNoGrants(t)
	// An empty value is absent: no state comes back, the default scope
	// is granted.
	b := e.browser()
	r := b.approve(b.get("/oauth2/authorize?response_type=code&client_id=" + confID + "&state=&scope=" + pkceParams()))
	code := e.wantCodeRedirect(t, r, confRedirect, "")
	if g := e.grantOfCode(code); g.Scope != "read" {
		t.Errorf("scope %q, want the default", g.Scope)
	}
	// Unknown parameters are ignored, repeated or not.
	b = e.browser()
	r = b.approve(b.get("/oauth2/authorize?" + base + "&foo=1&foo=2&resource=x"))
	e.wantCodeRedirect(t, r, confRedirect, "st")

	// The token endpoint: a repeated parameter is invalid_request and the
	// code is left alone; an unknown one is ignored.
	ac := e.newCode(confID, "", "read")
	f := e.redeemForm(ac).Encode()
	hdr := http.Header{"Authorization": {core.EncodeBasic(confID, e.secret(confID))}}
	for _, extra := range []string{"&code=" + url.QueryEscape(ac.code), "&grant_type=refresh_token", "&code_verifier=x", "&code_verifier="} {
		e.wantTokenError(t, e.tokenRaw(f+extra, hdr), 400, "invalid_request")
		if g := e.grantOfCode(ac.code); g.UsedAt != nil {
			t.Fatalf("a refused request (%s) consumed the code", extra)
		}
	}
	wantTokenResponse(t, e.tokenRaw(f+"&foo=1&foo=2", hdr), true)
}

func TestR13_ImplicitRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, setup{})
	for _, rt := range []string{"token", "code_and_token", "code token", "token code", "id_token", "CODE", "code ", "none"} {
		q := "response_type=" + url.QueryEscape(rt) + "&client_id=" + confID + "&state=st" + pkceParams()
		e.wantErrorRedirect(t, e.browser().get("/oauth2/authorize?"+q), confRedirect, "unsupported_response_type", "st")
	}
	e.wantNoGrants(t)
	if got := e.metadata()["response_types_supported"].([]any); len(got) != 1 || got[0] != "code" {
		t.Errorf("response_types_supported %v", got)
	}
}

func TestR14_NoCORSAtAuthorize(t *testing.T) {
	t.Parallel()
	e := newEnv(t, setup{})
	origin := http.Header{"Origin": {"https://evil.test"}}
	check := func(what string, r *response) {
		t.Helper()
		for k := range r.header {
			if strings.HasPrefix(k, "Access-Control-") {
				t.Errorf("%s: %s: %q", what, k, r.header.Values(k))
			}
		}
	}
	b := e.browser()
	q := "/oauth2/authorize?" + authzQuery(confID, "", "read", "st", fixedVerifier)
	page := e.do(b.c, "GET", q, "", origin)
	check("login page", page)
	check("preflight", e.do(b.c, "OPTIONS", q, "", http.Header{"Origin": {"https://evil.test"}, "Access-Control-Request-Method": {"GET"}}))
	check("POST authorize", e.post(b.c, "/oauth2/authorize", strings.TrimPrefix(q, "/oauth2/authorize?"), origin))
	f := e.hidden(page)
	f.Set("username", demo.DemoUser)
	f.Set("password", demo.DemoPassword)
	consent := e.post(b.c, "/oauth2/login", f.Encode(), origin)
	check("consent page", consent)
	f = e.hidden(consent)
	f.Set("decision", "approve")
	red := e.post(b.c, "/oauth2/login", f.Encode(), origin)
	check("redirect", red)
	check("error page", e.do(b.c, "GET", "/oauth2/authorize?client_id=nobody", "", origin))
	check("error redirect", e.do(b.c, "GET", "/oauth2/authorize?response_type=token&client_id="+confID, "", origin))
	// Metadata is a public document: it answers any origin (issue 13),
	// with no credentials involved; R14 is about the authorization
	// endpoint and its pages only.
	if md := e.do(e.api, "GET", "/.well-known/oauth-authorization-server", "", origin); md.header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("metadata: Access-Control-Allow-Origin %q, want *", md.header.Get("Access-Control-Allow-Origin"))
	}
	code := e.wantCodeRedirect(t, red, confRedirect, "st")
	f = url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {fixedVerifier}}
	check("token", e.post(e.api, "/oauth2/token", f.Encode(), http.Header{"Origin": {"https://evil.test"}, "Authorization": {core.EncodeBasic(confID, e.secret(confID))}}))
}

func TestR15_LoginAndConsentBeforeCode(t *testing.T) {
	t.Parallel()
	e := newEnv(t, setup{})
	b := e.browser()
	page := b.get("/oauth2/authorize?" + authzQuery(confID, "", "read", "st", fixedVerifier))
	if page.status != 200 || !strings.Contains(string(page.body), `name="password"`) {
		t.Fatalf("no login page: %v", page)
	}
	e.wantNoGrants(t)
	// A wrong password gives the login page again, and no code.
	f := e.hidden(page)
	f.Set("username", demo.DemoUser)
	f.Set("password", "wrong")
	r := b.post("/oauth2/login", f.Encode())
	if r.status != 200 || !strings.Contains(string(r.body), "Invalid username or password.") {
		t.Fatalf("wrong password: %v", r)
	}
	// So does an unknown user, with the same message.
	f.Set("username", "mallory")
	r2 := b.post("/oauth2/login", f.Encode())
	if r2.status != 200 || !strings.Contains(string(r2.body), "Invalid username or password.") {
		t.Fatalf("unknown user: %v", r2)
	}
	e.wantNoGrants(t)
	// After login: consent, still no code.
	consent := b.login(r)
	if consent.status != 200 || !strings.Contains(string(consent.body), `value="approve"`) {
		t.Fatalf("no consent page: %v", consent)
	}
	e.wantNoGrants(t)
	// No decision, or a bogus one, is no approval.
	for _, d := range []string{"", "yes", "APPROVE", "approve "} {
		f := e.hidden(consent)
		if d != "" {
			f.Set(core.FieldDecision, d)
		}
		wantErrorPage(t, b.post("/oauth2/login", f.Encode()), 400, "invalid_request")
	}
	e.wantNoGrants(t)
	// Deny: access_denied, nothing stored.
	e.wantErrorRedirect(t, b.decide(consent, "deny"), confRedirect, "access_denied", "st")
	e.wantNoGrants(t)
	if n := e.count("oauth2_consents"); n != 0 {
		t.Errorf("deny stored a consent")
	}
	// Approve: a code, and the consent is remembered for this scope.
	b = e.browser()
	consent = b.login(b.get("/oauth2/authorize?" + authzQuery(confID, "", "read", "st", fixedVerifier)))
	e.wantCodeRedirect(t, b.decide(consent, "approve"), confRedirect, "st")
	wantConsent := func(scope string) {
		t.Helper()
		var rows []struct{ UserID, ClientID, Scope string }
		if err := e.db.Table("oauth2_consents").Find(&rows).Error; err != nil {
			t.Fatal(err)
		}
		if len(rows) != 1 || rows[0].UserID != demo.DemoUser || rows[0].ClientID != confID || rows[0].Scope != scope {
			t.Errorf("consents %+v, want %s", rows, scope)
		}
	}
	wantConsent("read")
	// The same scope again: no consent page.
	b = e.browser()
	e.wantCodeRedirect(t, b.login(b.get("/oauth2/authorize?"+authzQuery(confID, "", "read", "st", fixedVerifier))), confRedirect, "st")
	// A wider scope asks again.
	b = e.browser()
	consent = b.login(b.get("/oauth2/authorize?" + authzQuery(confID, "", "read write", "st", fixedVerifier)))
	if consent.status != 200 {
		t.Fatalf("wider scope did not ask: %v", consent)
	}
	e.wantCodeRedirect(t, b.decide(consent, "approve"), confRedirect, "st")
	wantConsent("read write")
	// Three codes (none redeemed yet); every other row is a used form's
	// record (login forms that led to consent, approved consent forms):
	// born used, no user, so it can never be redeemed or count as a grant.
	var codes, records int64
	if err := e.db.Table("oauth2_grants").Where("used_at IS NULL").Count(&codes).Error; err != nil {
		t.Fatal(err)
	}
	if err := e.db.Table("oauth2_grants").Where("used_at IS NOT NULL AND user_id = ''").Count(&records).Error; err != nil {
		t.Fatal(err)
	}
	if n := e.count("oauth2_grants"); codes != 3 || codes+records != n {
		t.Errorf("%d codes and %d form records in %d grant rows, want 3 codes and only records besides", codes, records, n)
	}
}

func TestR16_SeeOtherAfterPost(t *testing.T) {
	t.Parallel()
	e := newEnv(t, setup{})
	q := authzQuery(confID, "", "read", "st", fixedVerifier)
	// Approve, deny, and login with a remembered consent: all 303.
	b := e.browser()
	consent := b.login(b.get("/oauth2/authorize?" + q))
	if r := b.decide(consent, "deny"); r.status != 303 {
		t.Errorf("deny: %d", r.status)
	}
	b = e.browser()
	consent = b.login(b.post("/oauth2/authorize", q)) // a POSTed request
	if r := b.decide(consent, "approve"); r.status != 303 {
		t.Errorf("approve: %d", r.status)
	}
	b = e.browser()
	if r := b.login(b.get("/oauth2/authorize?" + q)); r.status != 303 {
		t.Errorf("login with remembered consent: %d", r.status)
	}
	// The error redirect answering a POSTed authorization request.
	if r := e.browser().post("/oauth2/authorize", strings.Replace(q, "response_type=code", "response_type=token", 1)); r.status != 303 {
		t.Errorf("POSTed authorization error: %d", r.status)
	}
}

func TestR17_LoginAndConsentCSRF(t *testing.T) {
	t.Parallel()
	e := newEnv(t, setup{})
	q := "/oauth2/authorize?" + authzQuery(confID, "", "read", "st", fixedVerifier)
	withLogin := func(f url.Values) string {
		g := url.Values{}
		for k, v := range f {
			g[k] = v
		}
		g.Set("username", demo.DemoUser)
		g.Set("password", demo.DemoPassword)
		return g.Encode()
	}
	alice, mallory := e.browser(), e.browser()
	aliceForm := e.hidden(alice.get(q))
	malloryForm := e.hidden(mallory.get(q))
	forbidden := func(name string, r *response) {
		t.Helper()
		t.Run(name, func(t *testing.T) { wantErrorPage(t, r, 403, "access_denied") })
	}
	// No cookie at all (a cross-site POST without the session).
	forbidden("no cookie", e.post(e.api, "/oauth2/login", withLogin(aliceForm), nil))
	// Alice's form in Mallory's browser, Mallory's form in Alice's.
	forbidden("other session", mallory.post("/oauth2/login", withLogin(aliceForm)))
	forbidden("attacker's form in the victim's browser", alice.post("/oauth2/login", withLogin(malloryForm)))
	// A forged session cookie.
	forbidden("forged session", e.post(e.api, "/oauth2/login", withLogin(aliceForm), http.Header{"Cookie": {core.SessionCookie + "=" + strings.Repeat("A", 43)}}))
	// Wrong, missing, or another form's CSRF token.
	for name, csrf := range map[string]string{"wrong CSRF token": strings.Repeat("A", 43), "missing CSRF token": "", "attacker's CSRF token": malloryForm.Get(core.FieldCSRF)} {
		f := url.Values{core.FieldRequest: {aliceForm.Get(core.FieldRequest)}}
		if csrf != "" {
			f.Set(core.FieldCSRF, csrf)
		}
		forbidden(name, alice.post("/oauth2/login", withLogin(f)))
	}
	// A login form cannot approve: without credentials it is a failed
	// login (the page again), never a code.
	f := url.Values{core.FieldRequest: aliceForm[core.FieldRequest], core.FieldCSRF: aliceForm[core.FieldCSRF], core.FieldDecision: {"approve"}}
	if r := alice.post("/oauth2/login", f.Encode()); r.status != 200 || r.header.Get("Location") != "" {
		t.Errorf("login handle as an approval: %v", r)
	}
	// The consent step: Alice logs in; her consent form fails elsewhere.
	consent := alice.login(alice.get(q))
	cf := e.hidden(consent)
	cf.Set(core.FieldDecision, "approve")
	forbidden("consent in another browser", mallory.post("/oauth2/login", cf.Encode()))
	forbidden("consent without cookie", e.post(e.api, "/oauth2/login", cf.Encode(), nil))
	wrong := url.Values{core.FieldRequest: cf[core.FieldRequest], core.FieldCSRF: {aliceForm.Get(core.FieldCSRF)}, core.FieldDecision: {"approve"}}
	forbidden("login-step CSRF token on the consent form", alice.post("/oauth2/login", wrong.Encode()))
	// GET is not a form submission.
	r := alice.get("/oauth2/login?" + cf.Encode())
	wantErrorPage(t, r, 405, "invalid_request")
	if r.header.Get("Allow") != "POST" {
		t.Errorf("Allow %q", r.header.Get("Allow"))
	}
	e.wantNoGrants(t)
	if n := e.count("oauth2_consents"); n != 0 {
		t.Errorf("%d consents stored", n)
	}
	// Expired (15 minutes): refused as such.
	e.clock.advance(15*time.Minute + time.Second)
	wantErrorPage(t, alice.post("/oauth2/login", cf.Encode()), 400, "invalid_request")
	e.clock.advance(-(15*time.Minute + time.Second))
	// The genuine decision still works.
	e.wantCodeRedirect(t, alice.post("/oauth2/login", cf.Encode()), confRedirect, "st")
}

func TestR18_AntiFramingHeaders(t *testing.T) {
	t.Parallel()
	e := newEnv(t, setup{config: func(c *core.Config) { c.LoginThrottle.PerAccount = 2 }})
	b := e.browser()
	q := "/oauth2/authorize?" + authzQuery(confID, "", "read", "st", fixedVerifier)
	page := b.get(q)
	f := e.hidden(page)
	f.Set("username", demo.DemoUser)
	f.Set("password", "wrong")
	failed := b.post("/oauth2/login", f.Encode())
	consent := b.login(page)
	pages := map[string]*response{
		"login":        page,
		"failed login": failed,
		"consent":      consent,
		"400 page":     b.get("/oauth2/authorize?client_id=nobody"),
		"403 page":     e.post(e.api, "/oauth2/login", f.Encode(), nil),
		"405 page":     b.get("/oauth2/login"),
		"405 PUT":      e.do(b.c, "PUT", q, "", nil),
	}
	// The login throttle's 429 page.
	f.Set("username", "victim")
	b.post("/oauth2/login", f.Encode())
	b.post("/oauth2/login", f.Encode())
	pages["429 page"] = b.post("/oauth2/login", f.Encode())
	for name, r := range pages {
		t.Run(name, func(t *testing.T) {
			if r.status == 0 {
				t.Fatal("no response")
			}
			wantPageHeaders(t, r)
		})
	}
	if pages["429 page"].status != 429 || pages["429 page"].header.Get("Retry-After") == "" {
		t.Errorf("login throttle: %v", pages["429 page"])
	}
}

func TestR19_NoThirdPartyResourcesNoReferrer(t *testing.T) {
	t.Parallel()
	e := newEnv(t, setup{})
	b := e.browser()
	q := "/oauth2/authorize?" + authzQuery(confID, "", "read", "st", fixedVerifier)
	login := b.get(q)
	consent := b.login(login)
	pages := []*response{login, consent, b.get("/oauth2/authorize?client_id=nobody")}
	// Resource-loading constructs: none may appear, and the only URL a
	// page names is its form's action, on this server.
	forbidden := regexp.MustCompile(`(?i)<script|<link|<img|<iframe|<object|<embed|<video|<audio|<source|\bsrc\s*=|@import|url\(|https?:|//`)
	for _, r := range pages {
		wantPageHeaders(t, r)
		body := string(r.body)
		if m := forbidden.FindString(body); m != "" {
			t.Errorf("page loads or names a resource (%q)", m)
		}
		for _, a := range regexp.MustCompile(`action="([^"]*)"`).FindAllStringSubmatch(body, -1) {
			if a[1] != "/oauth2/login" {
				t.Errorf("form action %q", a[1])
			}
		}
	}
	// Redirects carry no-referrer too (wantRedirect checks it).
	e.wantCodeRedirect(t, b.decide(consent, "approve"), confRedirect, "st")
	e.wantErrorRedirect(t, e.browser().get("/oauth2/authorize?response_type=token&client_id="+confID+"&state=st"), confRedirect, "unsupported_response_type", "st")
}

func TestR20_NoOpenRedirect(t *testing.T) {
	t.Parallel()
	e := newEnv(t, setup{})
	evil := "https://evil.test/x"
	for _, q := range []string{
		"client_id=nobody&response_type=code&redirect_uri=" + url.QueryEscape(evil),
		"client_id=" + confID + "&response_type=code&redirect_uri=" + url.QueryEscape(confRedirect+"/../x"),
		"client_id=" + confID + "&response_type=code&redirect_uri=" + url.QueryEscape(evil) + "&return_to=" + url.QueryEscape(evil) + "&next=" + url.QueryEscape(evil),
		"client_id=nobody&return_to=" + url.QueryEscape(evil),
	} {
		r := e.browser().get("/oauth2/authorize?" + q)
		wantErrorPage(t, r, 400, "")
		if strings.Contains(string(r.body), "evil.test") {
			t.Errorf("page names the URL: %s", r.body)
		}
	}
	// Extra fields on the login and consent forms do not move the
	// redirect.
	b := e.browser()
	page := b.get("/oauth2/authorize?" + authzQuery(confID, "", "read", "st", fixedVerifier) + "&return_to=" + url.QueryEscape(evil))
	f := e.hidden(page)
	f.Set("username", demo.DemoUser)
	f.Set("password", demo.DemoPassword)
	f.Set("return_to", evil)
	f.Set("next", evil)
	consent := b.post("/oauth2/login", f.Encode()+"&redirect_uri="+url.QueryEscape(evil))
	cf := e.hidden(consent)
	cf.Set("decision", "approve")
	r := b.post("/oauth2/login", cf.Encode()+"&redirect_uri="+url.QueryEscape(evil)+"&return_to="+url.QueryEscape(evil))
	e.wantCodeRedirect(t, r, confRedirect, "st")
	// A login POST with a bad handle never redirects.
	r = b.post("/oauth2/login", "oauth2kit_request=x&csrf_token=y&return_to="+url.QueryEscape(evil))
	wantErrorPage(t, r, 400, "invalid_request")
	// There is no logout or return_to endpoint to abuse.
	if r := e.browser().get("/oauth2/logout?return_to=" + url.QueryEscape(evil)); r.status != 404 || r.header.Get("Location") != "" {
		t.Errorf("logout: %v", r)
	}
}

func TestR21_EscapingOfUntrustedValues(t *testing.T) {
	t.Parallel()
	e := newEnv(t, setup{})
	hostileName := `Evil <script>alert(1)</script> & "Co" 'x'`
	e.addClient(core.ClientSpec{ID: "hostile", Name: hostileName, RedirectURIs: []string{"https://hostile.example.test/cb"}})
	st := `<b>"'` + " #&code=x&iss=y"
	// In Location: percent-encoded, nothing injected.
	check := func(r *response) {
		t.Helper()
		loc := r.header.Get("Location")
		_, q, _ := strings.Cut(loc, "?")
		if strings.ContainsAny(q, "<>\"' #\\") || strings.Count(q, "code=") > 1 || strings.Count(q, "iss=") != 1 {
			t.Errorf("Location not encoded: %q", loc)
		}
	}
	b := e.browser()
	login := b.get("/oauth2/authorize?" + authzQuery("hostile", "", "read", st, fixedVerifier))
	consent := b.login(login)
	// In HTML: escaped by the demo's templates.
	for _, r := range []*response{login, consent} {
		body := string(r.body)
		if strings.Contains(body, "<script>alert(1)") || strings.Contains(body, `"Co"`) {
			t.Errorf("client name not escaped: %s", body)
		}
		if !strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
			t.Errorf("client name missing from the page")
		}
		if strings.Contains(body, "<b>") {
			t.Errorf("state reached the page")
		}
	}
	red := b.decide(consent, "approve")
	e.wantCodeRedirect(t, red, "https://hostile.example.test/cb", st)
	check(red)
	for _, scope := range []string{`read"><script>`, "read\x00", "read\\x"} {
		r := e.browser().get("/oauth2/authorize?" + authzQuery(confID, "", scope, st, fixedVerifier))
		e.wantErrorRedirect(t, r, confRedirect, "invalid_scope", st)
		check(r)
	}
	// A repeated parameter names itself in error_description, reduced to
	// the RFC character set.
	r := e.browser().get("/oauth2/authorize?" + authzQuery(confID, "", "read", st, fixedVerifier) + "&state=%22%3E")
	e.wantErrorRedirect(t, r, confRedirect, "invalid_request", st)
	check(r)
	// Error pages echo nothing from the request.
	r = e.browser().get("/oauth2/authorize?client_id=%3Cscript%3Ex%3C%2Fscript%3E&redirect_uri=%3Cimg%3E")
	wantErrorPage(t, r, 400, "invalid_client")
	if strings.Contains(string(r.body), "<script>x") || strings.Contains(string(r.body), "<img>") {
		t.Errorf("error page reflects the request: %s", r.body)
	}
	// A registered query is kept, and the parameters are appended to it.
	ac := e.newCode(otherID, "", "read")
	e.wantCodeRedirect(t, ac.res, otherRedirect, "st")
}

// flipChar returns a base64url character other than c.
func flipChar(c byte) string {
	if c == 'A' {
		return "B"
	}
	return "A"
}
