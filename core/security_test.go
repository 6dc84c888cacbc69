package core_test

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/oauth2kit/oauth2kit/core"
)

func TestR45_NoTokensInLogs(t *testing.T) {
	var logs logBuf
	e, h := newHookedEnv(t, true, withLog(&logs))
	var secrets []string
	code := e.code("read")
	// (The harness password "pw" is too short to search for: random ids in
	// the log contain it by chance. The password is never handed to the
	// kit's logger anyway: only the app sees it.)
	secrets = append(secrets, code, e.secret, verifier)
	at, rt := e.redeem(code)
	secrets = append(secrets, at, rt)
	// Provoke every logged event: replay, refresh reuse, failed client
	// authentication (with a secret that must not be logged either), storage
	// failures, a failed resource check.
	w := e.refreshConf(rt, "")
	rt2 := w.json(t)["refresh_token"].(string)
	secrets = append(secrets, rt2)
	e.refreshConf(rt, "")
	e.token(codeForm(code), basic("conf", e.secret))
	wrong := "wrong-secret-" + strings.Repeat("x", 30)
	e.token(url.Values{"grant_type": {"client_credentials"}}, basic("conf", wrong))
	e.token(url.Values{"grant_type": {"client_credentials"}, "client_id": {"conf"}, "client_secret": {wrong}}, nil)
	secrets = append(secrets, wrong)
	at3, rt3 := e.tokens("read")
	secrets = append(secrets, at3, rt3)
	h.failing("IsFamilyRevoked", errStorageFailure)
	if _, w := e.resource(&fakeReq{hdr: bearer(at3)}); w == nil || w.status != 503 {
		t.Errorf("storage failure at the resource check: %v", w)
	}
	h.failing("IsFamilyRevoked", nil)
	h.failing("RevokeFamily", errStorageFailure)
	e.post("/oauth2/revoke", url.Values{"token": {rt3}}, basic("conf", e.secret))
	h.failing("RevokeFamily", nil)
	h.failing("GetRefreshToken", errStorageFailure)
	e.post("/oauth2/introspect", url.Values{"token": {rt3}}, basic("conf", e.secret))
	h.failing("GetRefreshToken", nil)
	e.resource(&fakeReq{hdr: bearer(at3 + "x")})
	page := e.authorize(codeQuery("conf", confCB, "read", "s"))
	handle := hidden(t, page.body)
	secrets = append(secrets, handle.Get(core.FieldRequest), handle.Get(core.FieldCSRF), strings.TrimPrefix(e.cookie, core.SecureSessionCookie+"="))

	out := logs.String()
	for _, want := range []string{"replayed", "reused", "authentication failed", "revocation"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks a %q event: the test provoked nothing", want)
		}
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(out, s) {
			t.Errorf("log contains a credential %.12s…", s)
		}
		// Nor a long piece of one.
		if len(s) > 40 && strings.Contains(out, s[len(s)-24:]) {
			t.Errorf("log contains part of a credential")
		}
	}
}

func TestR50_NoCleartextCredentialsInStore(t *testing.T) {
	e, h := newHookedEnv(t, false)
	var creds []string
	for range 3 {
		code := e.code("read")
		at, rt := e.redeem(code)
		w := e.refreshConf(rt, "")
		rt2 := w.json(t)["refresh_token"].(string)
		creds = append(creds, code, at, rt, rt2, w.json(t)["access_token"].(string))
	}
	creds = append(creds, e.secret, verifier)
	// Three codes, each with its login form's used-marker (which must
	// carry no credential either).
	if len(h.grants) != 6 || len(h.rts) != 6 {
		t.Fatalf("recorded %d grants, %d refresh tokens", len(h.grants), len(h.rts))
	}
	var stored []string
	for _, g := range h.grants {
		stored = append(stored, g.ID, g.CodeSig, g.ClientID, g.UserID, g.RedirectURI, g.Scope, g.CodeChallenge, g.CodeChallengeMethod, g.AdditionalInfo)
	}
	for _, rt := range h.rts {
		stored = append(stored, rt.Sig, rt.FamilyID, rt.ClientID, rt.UserID, rt.Scope, rt.AdditionalInfo)
	}
	stored = append(stored, h.args...)
	c, _ := e.store.GetClient(t.Context(), "conf")
	stored = append(stored, c.SecretHash)
	for _, s := range stored {
		for _, cr := range creds {
			// Neither the credential nor its random part (the last 43 chars).
			if strings.Contains(s, cr) || len(cr) >= 43 && strings.Contains(s, cr[len(cr)-43:]) {
				t.Errorf("store received %.16s… which holds a credential", s)
			}
		}
	}
	// Signatures are HMACs: 32 bytes, base64url.
	sigRe := regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)
	for _, g := range h.grants {
		if !sigRe.MatchString(g.CodeSig) {
			t.Errorf("code signature %q", g.CodeSig)
		}
	}
	for _, rt := range h.rts {
		if !sigRe.MatchString(rt.Sig) {
			t.Errorf("refresh signature %q", rt.Sig)
		}
	}
	// Secrets are hashed: SHA-256 for generated (high-entropy) ones, bcrypt
	// for short imported ones; both verify, neither holds the secret.
	if !strings.HasPrefix(c.SecretHash, "sha256$") || !core.VerifySecret(c.SecretHash, e.secret) || core.VerifySecret(c.SecretHash, e.secret+"x") {
		t.Errorf("generated secret hash %q", c.SecretHash)
	}
	short, _, err := core.NewClient(core.ClientSpec{ID: "imp", RedirectURIs: []string{confCB}, Secret: "hunter2"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(short.SecretHash, "bcrypt$") || strings.Contains(short.SecretHash, "hunter2") || !core.VerifySecret(short.SecretHash, "hunter2") || core.VerifySecret(short.SecretHash, "hunter3") {
		t.Errorf("imported secret hash %q", short.SecretHash)
	}
}

func TestR52_Entropy(t *testing.T) {
	e := newEnv(t, false)
	rnd := map[string]bool{}
	add := func(what, v string, bytes int) {
		t.Helper()
		raw, err := base64.RawURLEncoding.DecodeString(v)
		if err != nil || len(raw) != bytes || !b64Re.MatchString(v) {
			t.Fatalf("%s %q: not %d random bytes in base64url", what, v, bytes)
		}
		if rnd[v] {
			t.Fatalf("%s repeated", what)
		}
		rnd[v] = true
	}
	for range 40 {
		s, err := core.GenerateSecret()
		if err != nil {
			t.Fatal(err)
		}
		add("secret", s, 32)
		c, sec, err := core.NewClient(core.ClientSpec{RedirectURIs: []string{confCB}})
		if err != nil {
			t.Fatal(err)
		}
		add("generated client secret", sec, 32)
		add("generated client id", c.ID, 16)
	}
	for range 20 {
		e.cookie = ""
		page := e.authorize(codeQuery("conf", confCB, "", "s"))
		add("session cookie", strings.TrimPrefix(e.cookie, core.SecureSessionCookie+"="), 32)
		add("CSRF token", hidden(t, page.body).Get(core.FieldCSRF), 32)
		code := codeRe.FindStringSubmatch(wantCodeRedirect(t, e.login(page, "alice", "pw"), confCB, "s").Get("code"))
		if code == nil {
			t.Fatalf("code format")
		}
		add("code", code[1], 32)
		at, rt := e.redeem(code[0])
		parts := strings.Split(rt, ".")
		if len(parts) != 3 || parts[0] != "rt2" {
			t.Fatalf("refresh token format %q", rt)
		}
		if len(parts[2]) != 64 {
			t.Fatalf("refresh token body %q is not 48 bytes of base64url", parts[2])
		}
		add("refresh token", parts[2][:43], 32)
		add("grant id", e.family(at), 16)
	}
	if f := bitsSet(rnd); f < 0.47 || f > 0.53 {
		t.Errorf("random values are biased: %.3f of bits set", f)
	}
}

func TestR53_AccessTokensSealed(t *testing.T) {
	e := newEnv(t, false, func(c *core.Config) { c.Scopes = append(c.Scopes, "x") })
	// Tokens of several lengths, so that every base64 tail shape (body
	// length 0, 2 or 3 mod 4) is exercised.
	residues := map[int]bool{}
	for _, scope := range []string{"x", "read x", "read", "write", "read write", "admin write", "admin read write"} {
		at, _ := e.tokens(scope)
		residues[len(at[strings.LastIndexByte(at, '.')+1:])%4] = true
		tamperChecks(t, e, at)
	}
	if len(residues) != 3 {
		t.Errorf("token body lengths cover residues %v mod 4 only", residues)
	}
	// Sealed with a random nonce: two tokens of the same grant share
	// nothing beyond the header.
	at, rt := e.tokens("read")
	at2 := e.refreshConf(rt, "").json(t)["access_token"].(string)
	h := strings.LastIndexByte(at, '.') + 1
	if at2[:h+8] == at[:h+8] {
		t.Errorf("two tokens share a prefix beyond the header")
	}
}

func TestR55_TransportSecurity(t *testing.T) {
	// An https issuer marks the session cookie Secure even behind a TLS
	// terminating proxy (r.TLS() false).
	e := newEnv(t, false)
	e.authorize(codeQuery("conf", confCB, "", "s"))
	ck, err := http.ParseSetCookie(lastSetCookie(t, e))
	if err != nil {
		t.Fatal(err)
	}
	if !ck.Secure || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" || ck.Name != core.SecureSessionCookie {
		t.Errorf("session cookie %+v", ck)
	}
	// A loopback http issuer (development): Secure only when the request
	// came over TLS.
	for _, tls := range []bool{false, true} {
		d := newEnv(t, false, func(c *core.Config) { c.Issuer = "http://127.0.0.1:8080" })
		w := newResp()
		d.srv.Authorize(w, &fakeReq{method: "GET", path: "/oauth2/authorize", query: codeQuery("conf", confCB, "", "s").Encode(), hdr: http.Header{}, tls: tls})
		ck, err := http.ParseSetCookie(w.hdr.Get("Set-Cookie"))
		if err != nil {
			t.Fatal(err)
		}
		if ck.Secure != tls {
			t.Errorf("tls=%v: Secure=%v", tls, ck.Secure)
		}
	}
	// The issuer itself must be https (http only for loopback).
	for _, iss := range []string{"http://as.example.com", "http://10.0.0.1", "ftp://as.example.com", "https://as.example.com?x=1", "https://as.example.com#f", "as.example.com"} {
		if _, err := core.New(core.Config{Issuer: iss, Keys: core.Keys{CryptKey: signKey, SignKey: signKey}}, e.store, authFor(e, false)); err == nil {
			t.Errorf("issuer %q accepted", iss)
		}
	}
	// Authorization responses go over http only to loopback: registration
	// (R04) and matching (R01) keep every other http redirect URI out.
	if _, _, err := core.NewClient(core.ClientSpec{ID: "h", RedirectURIs: []string{"http://client.example.com/cb"}}); err == nil {
		t.Errorf("http redirect URI registered")
	}
}

func TestConfigPrintsNoKeys(t *testing.T) {
	e := newEnv(t, false)
	cfg := e.srv.Config()
	for _, out := range []string{fmt.Sprintf("%v", cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%v", core.Keys{CryptKey: cfg.Keys.CryptKey, SignKey: cfg.Keys.SignKey})} {
		if strings.Contains(out, string(cfg.Keys.CryptKey)) || strings.Contains(out, string(cfg.Keys.SignKey)) || strings.Contains(out, fmt.Sprint(cfg.Keys.CryptKey)) {
			t.Errorf("key material printed: %s", out)
		}
	}
	if _, err := core.New(core.Config{Issuer: issuer, Keys: core.Keys{CryptKey: cfg.Keys.CryptKey, SignKey: cfg.Keys.SignKey}, Paths: core.Paths{Revoke: "/oauth2/token"}}, e.store, &testAuth{}); err == nil {
		t.Errorf("duplicate endpoint paths accepted")
	}
}

// %#v prints no key material either (GoString).
func TestGoStringPrintsNoKeys(t *testing.T) {
	k := core.Keys{ID: "g1", CryptKey: []byte("crypt-key-crypt-key-crypt-key-32"), SignKey: []byte("sign-key-sign-key-sign-key-sign!")}
	cfg := core.Config{Issuer: issuer, Keys: k, VerifyKeys: []core.Keys{k}}
	for _, out := range []string{fmt.Sprintf("%#v", cfg), fmt.Sprintf("%#v", k), fmt.Sprintf("%#v", cfg.VerifyKeys)} {
		if strings.Contains(out, "crypt-key") || strings.Contains(out, "sign-key") || strings.Contains(out, fmt.Sprint(k.CryptKey)) {
			t.Errorf("key material printed: %s", out)
		}
	}
}
