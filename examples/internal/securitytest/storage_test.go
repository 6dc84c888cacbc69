package securitytest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"math"
	"math/bits"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/oauth2kit/oauth2kit/core"
	"github.com/oauth2kit/oauth2kit/examples/internal/demo"
)

func TestR50_NoCleartextCredentialsInStore(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, d *database) {
		e := newEnv(t, setup{db: d})
		// Everything the store can hold: a client per kind, a used and a
		// pending code, rotated and live refresh tokens of a confidential
		// and a public client, a revoked grant, a remembered consent.
		ts := e.tokens(confID, "", "read")
		rt2 := wantTokenResponse(t, e.refresh(confID, ts.rt, ""), true)["refresh_token"].(string)
		pub := e.tokens(pubID, pubRedirect, "read")
		pending := e.newCode(confID, "", "read")
		gone := e.tokens(otherID, "", "read")
		if r := e.revoke(otherID, gone.rt, ""); r.status != 200 {
			t.Fatal(r)
		}
		// Client secrets: hashed (generated ones, 256 bits, with SHA-256;
		// short imported ones would get bcrypt, see core's R50 test);
		// public clients have none.
		var clients []struct {
			ID         string
			SecretHash string
		}
		if err := e.db.Table("oauth2_clients").Select("id, secret_hash").Find(&clients).Error; err != nil {
			t.Fatal(err)
		}
		for _, c := range clients {
			sec := e.secret(c.ID)
			switch {
			case c.ID == pubID:
				if c.SecretHash != "" {
					t.Errorf("public client with a secret hash")
				}
			default:
				if !strings.HasPrefix(c.SecretHash, "sha256$") || !core.VerifySecret(c.SecretHash, sec) || strings.Contains(c.SecretHash, sec) {
					t.Errorf("client %s: secret stored as %.10q…", c.ID, c.SecretHash)
				}
			}
		}
		// Codes and refresh tokens: by their HMAC-SHA256 signature only
		// (32 bytes), keyed from SignKey; the random part is nowhere.
		for _, code := range []string{e.newCode(confID, "", "read").code, pending.code} {
			g := e.grantOfCode(code)
			if g == nil {
				t.Fatal("no row for a code")
			}
			raw, err := base64.RawURLEncoding.DecodeString(g.CodeSig)
			if err != nil || len(raw) != 32 {
				t.Errorf("code row keyed by %q", g.CodeSig)
			}
		}
		for _, rt := range []string{ts.rt, rt2, pub.rt, gone.rt} {
			row := e.refreshRow(rt)
			raw, err := base64.RawURLEncoding.DecodeString(row.Sig)
			if err != nil || len(raw) != 32 {
				t.Errorf("refresh token row keyed by %q", row.Sig)
			}
		}
		// The rows hold what they should and no more: every column of
		// every table against every value seen on the wire (tokens,
		// codes, secrets, PKCE verifiers, login handles, CSRF tokens,
		// session cookies), by any 16-character window.
		db := map[string]bool{}
		cols := e.dump()
		for _, vals := range cols {
			for _, v := range vals {
				windows(v, db)
			}
		}
		e.mu.Lock()
		seen := append([]secret(nil), e.seen...)
		e.mu.Unlock()
		kinds := map[string]bool{}
		for _, s := range seen {
			kinds[s.kind] = true
		}
		for _, k := range []string{"access_token", "refresh_token", "code", "client secret", "code verifier", "login handle", "csrf token", "session cookie"} {
			if !kinds[k] {
				t.Errorf("no %s was seen: the check would prove nothing for it", k)
			}
		}
		if l := leaked(seen, db); l != nil {
			t.Errorf("credentials at rest: %v", l)
		}
		// The PKCE challenge is stored (it is public); the verifier not.
		if g := e.grantOfCode(pending.code); g.CodeChallenge != core.S256Challenge(pending.verifier) {
			t.Errorf("challenge column %q", g.CodeChallenge)
		}
	})
}

func TestR51_QueriesBindUserInput(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, d *database) {
		e := newEnv(t, setup{db: d})
		// An id that would break a statement built by concatenation works
		// as a plain value, stored byte for byte.
		odd := `o'hara"; DROP TABLE oauth2_grants; --`
		e.addClient(core.ClientSpec{ID: odd, Name: `x'); DELETE FROM oauth2_clients; --`, RedirectURIs: []string{"https://odd.example.test/cb"},
			GrantTypes: []string{core.GrantAuthorizationCode, core.GrantRefreshToken, core.GrantClientCredentials}})
		ts := e.tokens(odd, "", "read")
		wantMe(t, e.resource("/api/me", ts.at), demo.DemoUser, odd, "read")
		var ids []string
		if err := e.db.Table("oauth2_refresh_tokens").Where("family_id = ?", ts.family).Pluck("client_id", &ids).Error; err != nil {
			t.Fatal(err)
		}
		if len(ids) != 1 || ids[0] != odd {
			t.Errorf("client_id stored as %q", ids)
		}
		before := e.counts()
		attempts := []string{
			"x' OR '1'='1", "x' OR 1=1 --", confID + "' --", confID + "'/*", "' UNION SELECT id, secret_hash FROM oauth2_clients --",
			"%", confID[:4] + "%", "conf_app", strings.ToUpper(confID), confID + " ", " " + confID, confID + "\t",
			`\'; DROP TABLE oauth2_clients; --`, "1; SELECT pg_sleep(5)", confID + "\\",
		}
		for _, id := range attempts {
			// The authorization endpoint looks the client up ...
			r := e.browser().get("/oauth2/authorize?" + authzQuery(id, confRedirect, "read", "st", fixedVerifier))
			wantErrorPage(t, r, 400, "")
			// ... so does client authentication, Basic and body ...
			e.wantTokenError(t, e.tokenRaw("grant_type=client_credentials", basicHdr(id, e.secret(confID))), 401, "invalid_client")
			f := url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {e.secret(confID)}}
			e.wantTokenError(t, e.tokenRaw(f.Encode(), nil), 400, "invalid_client")
			// ... and revocation and introspection.
			e.wantTokenError(t, e.post(e.api, "/oauth2/revoke", "token="+url.QueryEscape(ts.rt), basicHdr(id, "x")), 401, "invalid_client")
		}
		// Token values that reach a lookup only after their self-check;
		// the scope, which is stored.
		for _, tok := range []string{"rt2.k1.' OR '1'='1", "' OR 1=1 --"} {
			e.wantTokenError(t, e.refresh(confID, tok, ""), 400, "invalid_grant")
			e.wantInactive(t, e.introspect(confID, tok))
		}
		e.wantTokenError(t, e.tokenRaw("grant_type=client_credentials&scope="+url.QueryEscape("read'); DROP TABLE oauth2_clients; --"), e.basic(confID)), 400, "invalid_scope")
		// The login form's user name goes to the app's user store (the
		// demo's is in memory), never to the kit's tables.
		b := e.browser()
		f := e.hidden(b.get("/oauth2/authorize?" + authzQuery(confID, "", "read", "st", fixedVerifier)))
		f.Set("username", "demo' --")
		f.Set("password", "x' OR '1'='1")
		if r := b.post("/oauth2/login", f.Encode()); r.status != 200 || r.header.Get("Location") != "" {
			t.Errorf("login with SQL in the user name: %v", r)
		}
		e.wantCounts(t, before, "injection attempts")
		// Every table is intact and still answers.
		wantMe(t, e.resource("/api/me", e.tokens(confID, "", "read").at), demo.DemoUser, confID, "read")
		wantTokenResponse(t, e.refresh(odd, ts.rt, ""), true)
	})
}

// onesFraction is the fraction of 1 bits in b.
func onesFraction(bs [][]byte) (float64, int) {
	ones, n := 0, 0
	for _, b := range bs {
		for _, c := range b {
			ones += bits.OnesCount8(c)
			n += 8
		}
	}
	return float64(ones) / float64(n), n
}

func TestR52_Entropy(t *testing.T) {
	t.Parallel()
	e := newEnv(t, setup{})
	const n = 16
	samples := map[string][][]byte{}
	add := func(kind, b64 string, want int) {
		t.Helper()
		raw, err := base64.RawURLEncoding.DecodeString(b64)
		if err != nil || len(raw) < want {
			t.Fatalf("%s: %d bytes (%v), want %d", kind, len(raw), err, want)
		}
		samples[kind] = append(samples[kind], raw[:want])
	}
	for range n {
		ts := e.tokens(confID, "", "read")
		add("refresh token random part", strings.SplitN(ts.rt, ".", 3)[2], 32)
		add("access token nonce", strings.SplitN(ts.at, ".", 3)[2], 24)
		add("grant id", ts.family, 16)
		if len(ts.family) != 22 {
			t.Errorf("grant id of %d characters", len(ts.family))
		}
		_, sec, err := core.NewClient(core.ClientSpec{Name: "x", RedirectURIs: []string{confRedirect}})
		if err != nil {
			t.Fatal(err)
		}
		add("generated client secret", sec, 32)
		if len(sec) != 43 {
			t.Errorf("generated secret of %d characters", len(sec))
		}
	}
	e.mu.Lock()
	seen := append([]secret(nil), e.seen...)
	e.mu.Unlock()
	codes := map[string]bool{}
	for _, s := range seen {
		switch {
		case s.kind == "code" && !codes[s.value]:
			codes[s.value] = true
			add("code random part", strings.SplitN(s.value, ".", 3)[2], 32)
		case s.kind == "session cookie":
			add("session cookie", s.value, 32)
		}
	}
	for kind, bs := range samples {
		if len(bs) < n {
			t.Errorf("%s: %d samples", kind, len(bs))
			continue
		}
		seen := map[string]bool{}
		for _, b := range bs {
			if len(b)*8 < 128 {
				t.Errorf("%s: %d bits", kind, len(b)*8)
			}
			if seen[string(b)] {
				t.Errorf("%s: a value repeats", kind)
			}
			seen[string(b)] = true
		}
		// A grossly biased generator shows; a fair one passes (6 sigma).
		f, bitsN := onesFraction(bs)
		if tol := 6 * 0.5 / math.Sqrt(float64(bitsN)); math.Abs(f-0.5) > tol {
			t.Errorf("%s: %.3f of %d bits are 1", kind, f, bitsN)
		}
	}
	// CSRF tokens are MACs (32 bytes), distinct per form.
	var csrf []string
	for range 4 {
		csrf = append(csrf, e.hidden(e.browser().get("/oauth2/authorize?"+authzQuery(confID, "", "read", "st", fixedVerifier))).Get(core.FieldCSRF))
	}
	slices.Sort(csrf)
	if len(slices.Compact(csrf)) != 4 || len(csrf[0]) != 43 {
		t.Errorf("CSRF tokens %q", csrf)
	}
}

func TestR53_AccessTokensSealed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, setup{})
	ts := e.tokens(confID, "", "read write")
	parts := strings.SplitN(ts.at, ".", 3)
	if parts[0] != "at2" || parts[1] != "k1" {
		t.Fatalf("access token header %s.%s", parts[0], parts[1])
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || len(raw) < 24+16 {
		t.Fatalf("body: %v", err)
	}
	// No claim readable: not in the token, not in its decoded bytes.
	u, _ := url.Parse(e.base)
	for _, claim := range []string{demo.DemoUser, confID, "read write", u.Host, ts.family, "http"} {
		if strings.Contains(ts.at, claim) || bytes.Contains(raw, []byte(claim)) {
			t.Errorf("claim %q readable in the token", claim)
		}
	}
	// Two tokens of one grant share nothing beyond the header.
	at2 := wantTokenResponse(t, e.refresh(confID, ts.rt, ""), true)["access_token"].(string)
	other, _ := base64.RawURLEncoding.DecodeString(strings.SplitN(at2, ".", 3)[2])
	for i := 0; i+8 <= len(raw); i++ {
		if bytes.Contains(other, raw[i:i+8]) {
			t.Errorf("tokens of one grant share bytes at %d", i)
			break
		}
	}
	wantMe(t, e.resource("/api/me", ts.at), demo.DemoUser, confID, "read write")
	// Every changed character fails: header, and every position of the
	// body.
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	body := parts[2]
	for i := range len(body) {
		j := (strings.IndexByte(alphabet, body[i]) + 1 + i%63) % 64
		forged := "at2.k1." + body[:i] + alphabet[j:j+1] + body[i+1:]
		r := e.resource("/api/me", forged)
		if r.status != 401 {
			t.Fatalf("changed character %d: %v", i, r)
		}
	}
	for _, forged := range []string{
		"at3.k1." + body, "AT2.k1." + body, "rt2.k1." + body, "pr2.k1." + body, "at2.k2." + body, "at2.K1." + body, "at2..k1." + body,
		"at2.k1." + body[:len(body)-1], "at2.k1." + body + "A", "at2.k1." + body + "=", "at2.k1.", "at2.k1." + body[:32],
		"at2.k1." + strings.Repeat(body, 40),
	} {
		e.wantInvalidToken(t, e.resource("/api/me", forged))
	}
	// CR or LF inside the token (only a form body can carry them; a
	// base64 decoder skips them). Whether an inserted byte still fits the
	// decoded length depends on the body's length modulo 4: tokens of
	// several lengths cover every case.
	residues := map[int]bool{}
	// Client credentials tokens and users' tokens (which carry the user id
	// besides): between them the lengths reach every residue.
	var ats []string
	for _, scope := range []string{"read", "admin", "read write", "admin write", "admin read write", "admin read"} {
		ats = append(ats, wantTokenResponse(t, e.tokenRaw("grant_type=client_credentials&scope="+url.QueryEscape(scope), e.basic(confID)), false)["access_token"].(string))
	}
	for _, scope := range []string{"read", "write", "read write", "read admin", "admin write read"} {
		ats = append(ats, e.tokens(confID, "", scope).at)
	}
	for _, at := range ats {
		b := strings.SplitN(at, ".", 3)[2]
		residues[len(b)%4] = true
		for _, ins := range []string{"\n", "\r", "\r\n", "\n\n", "\n\n\n"} {
			for _, pos := range []int{0, 20, len(b) - 1, len(b)} {
				f := url.Values{"access_token": {"at2.k1." + b[:pos] + ins + b[pos:]}}
				e.wantInvalidToken(t, e.do(e.api, "POST", "/api/me", f.Encode(), formHeader))
			}
		}
	}
	if !residues[0] || len(residues) < 2 {
		t.Errorf("token body lengths modulo 4: %v; the CR/LF cases need 0 among them", residues)
	}
	// The token is sealed with a key derived from CryptKey: a server with
	// the same key id and SignKey but another CryptKey cannot open it.
	k := e.newKeys("k1-other")
	cfg := e.cfg
	cfg.Keys.CryptKey = k.CryptKey
	e.start(cfg)
	e.wantInvalidToken(t, e.resource("/api/me", ts.at))
	e.wantInactive(t, e.introspect(confID, ts.at))
	cfg.Keys.CryptKey = e.keys["k1"].CryptKey
	e.start(cfg)
	wantMe(t, e.resource("/api/me", ts.at), demo.DemoUser, confID, "read write")
}

func TestR54_AbuseRevokesOnlyTheAffectedGrant(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, d *database) {
		e := newEnv(t, setup{db: d})
		// Three grants of one user and client.
		acA := e.newCode(confID, "", "read")
		mA := wantTokenResponse(t, e.redeem(acA), true)
		a := tokenSet{at: mA["access_token"].(string), rt: mA["refresh_token"].(string), family: e.grantOfCode(acA.code).GrantID}
		b := e.tokens(confID, "", "read")
		c := e.tokens(confID, "", "read")
		// Code reuse on A.
		e.wantTokenError(t, e.redeem(acA), 400, "invalid_grant")
		if got := e.revokedFamilies(); !slices.Equal(got, []string{a.family}) {
			t.Fatalf("revoked %v, want only A", got)
		}
		// Refresh token reuse on B.
		wantTokenResponse(t, e.refresh(confID, b.rt, ""), true)
		e.wantTokenError(t, e.refresh(confID, b.rt, ""), 400, "invalid_grant")
		want := []string{a.family, b.family}
		slices.Sort(want)
		if got := e.revokedFamilies(); !slices.Equal(got, want) {
			t.Fatalf("revoked %v, want A and B", got)
		}
		e.wantInvalidToken(t, e.resource("/api/me", a.at))
		e.wantInvalidToken(t, e.resource("/api/me", b.at))
		// C is untouched.
		wantMe(t, e.resource("/api/me", c.at), demo.DemoUser, confID, "read")
		wantTokenResponse(t, e.refresh(confID, c.rt, ""), true)
	})
}

func TestR55_TransportSecurity(t *testing.T) {
	t.Parallel()
	sessionCookie := func(t *testing.T, r *response) *http.Cookie {
		t.Helper()
		cks := r.header.Values("Set-Cookie")
		if len(cks) != 1 {
			t.Fatalf("Set-Cookie %q", cks)
		}
		ck, err := http.ParseSetCookie(cks[0])
		if err != nil {
			t.Fatal(err)
		}
		return ck
	}
	t.Run("TLS", func(t *testing.T) {
		e := newEnv(t, setup{tls: true})
		if !strings.HasPrefix(e.cfg.Issuer, "https://") {
			t.Fatalf("issuer %s", e.cfg.Issuer)
		}
		b := e.browser()
		page := b.get("/oauth2/authorize?" + authzQuery(confID, "", "read", "st", fixedVerifier))
		ck := sessionCookie(t, page)
		if ck.Name != core.SecureSessionCookie || !ck.Secure || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" || ck.Domain != "" {
			t.Errorf("session cookie over TLS: %+v", ck)
		}
		// The whole flow over TLS, and every endpoint in the metadata is
		// https.
		r := b.approve(page)
		code := e.wantCodeRedirect(t, r, confRedirect, "st")
		wantTokenResponse(t, e.token(confID, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {fixedVerifier}}), true)
		for k, v := range e.metadata() {
			if s, ok := v.(string); ok && (k == "issuer" || strings.HasSuffix(k, "_endpoint")) && !strings.HasPrefix(s, "https://") {
				t.Errorf("metadata %s = %s", k, s)
			}
		}
	})
	t.Run("https issuer behind TLS termination", func(t *testing.T) {
		e := newEnv(t, setup{issuer: "https://auth.example.test"})
		ck := sessionCookie(t, e.browser().get("/oauth2/authorize?"+authzQuery(confID, "", "read", "st", fixedVerifier)))
		if ck.Name != core.SecureSessionCookie || !ck.Secure {
			t.Errorf("session cookie behind TLS termination: %+v", ck)
		}
	})
	t.Run("loopback http issuer", func(t *testing.T) {
		e := newEnv(t, setup{})
		ck := sessionCookie(t, e.browser().get("/oauth2/authorize?"+authzQuery(confID, "", "read", "st", fixedVerifier)))
		if ck.Name != core.SessionCookie || ck.Secure || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode {
			t.Errorf("session cookie over loopback http: %+v", ck)
		}
		// Issuers: https, or http on loopback only.
		for iss, ok := range map[string]bool{
			"https://auth.example.test": true, "http://127.0.0.1:8080": true, "http://[::1]:8080": true, "http://localhost:8080": true,
			"http://auth.example.test": false, "http://10.0.0.1": false, "http://127.0.0.1.evil.test": false, "ftp://auth.example.test": false,
			"https://auth.example.test/?q=1": false, "https://auth.example.test/#f": false, "//auth.example.test": false, "https://u@auth.example.test": false,
		} {
			cfg := e.cfg
			cfg.Issuer = iss
			_, err := newServerErr(e, cfg)
			if (err == nil) != ok {
				t.Errorf("issuer %q: err %v", iss, err)
			}
		}
		// Authorization responses go only to redirect URIs registration
		// accepted (R04): https, loopback http, or a private-use scheme.
		var uris []string
		if err := e.db.Table("oauth2_clients").Pluck("redirect_uris", &uris).Error; err != nil {
			t.Fatal(err)
		}
		for _, js := range uris {
			var l []string
			if err := json.Unmarshal([]byte(js), &l); err != nil {
				t.Fatal(err)
			}
			for _, s := range l {
				u, err := url.Parse(s)
				if err != nil || (u.Scheme == "http" && u.Hostname() != "127.0.0.1" && u.Hostname() != "::1" && u.Hostname() != "localhost") {
					t.Errorf("stored redirect URI %q", s)
				}
			}
		}
	})
}

// newServerErr builds a server on cfg with a real store and authenticator
// and reports only whether the configuration is accepted.
func newServerErr(e *env, cfg core.Config) (*core.Server, error) {
	auth, _ := demo.NewAuthenticator(e.slog)
	return core.New(cfg, nopStore{}, auth)
}

// nopStore satisfies core.Storage for configuration checks; it is never
// called.
type nopStore struct{ core.Storage }
