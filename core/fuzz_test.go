package core_test

import (
	"bytes"
	"context"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/oauth2kit/oauth2kit/core"
)

// Native fuzz targets. Each checks a property, not only "no panic"; the
// seeds (f.Add) run on every plain `go test`, and so do the inputs kept
// under testdata/fuzz/<Target>/. Fuzz one target at a time:
//
//	go test -run='^$' -fuzz='^FuzzRedirectMatch$' -fuzztime=20s ./core/

// FuzzRedirectMatch: a match is byte equality, or two http loopback IP
// literal URIs that differ in the port only. The port exception is checked
// against two independent readings of the authority (net/url and a
// WHATWG-style scan that ends the authority at / ? # or \), which must
// agree.
func FuzzRedirectMatch(f *testing.F) {
	for _, s := range [][2]string{
		{"https://client.example.com/cb", "https://client.example.com/cb"},
		{"https://client.example.com/cb", "https://client.example.com/cb/"},
		{"https://client.example.com/cb", "https://CLIENT.example.com/cb"},
		{"https://client.example.com/cb", "https://client.example.com/%63b"},
		{"http://127.0.0.1/cb", "http://127.0.0.1:51234/cb"},
		{"http://127.0.0.1:8080/cb", "http://127.0.0.1:9/cb"},
		{"http://[::1]/cb", "http://[::1]:8080/cb"},
		{"http://[::1]/cb?x=1", "http://[::1]:1/cb?x=1"},
		{"http://127.0.0.1/cb", "http://127.0.0.1.evil.example/cb"},
		{"http://127.0.0.1.evil.example/cb", "http://127.0.0.1:80.evil.example/cb"},
		{"http://127.0.0.1:1@evil.example/cb", "http://127.0.0.1:2@evil.example/cb"},
		{"http://[::1]:1#x", "http://[::1]:2#x"},
		{"http://127.0.0.1/cb", "http://127.0.0.1@evil.example/cb"},
		{"http://127.0.0.1/cb", "http://127.0.0.1:80@evil.example/cb"},
		{"http://127.0.0.1/cb", `http://127.0.0.1:80\@evil.example/cb`},
		{"http://127.0.0.1/cb", "http://127.0.0.1:8080%2F@evil.example/cb"},
		{"http://127.0.0.1/cb", "http://127.0.0.1:/cb"},
		{"http://127.0.0.1/cb", "http://127.0.0.1:123456/cb"},
		{"http://127.0.0.1", "http://127.0.0.1:99"},
		{"http://127.0.0.1?a", "http://127.0.0.1:1?a"},
		{"http://127.0.0.1/cb", "http://127.0.0.1:1#/cb"},
		{"http://localhost/cb", "http://localhost:8080/cb"},
		{"https://127.0.0.1/cb", "https://127.0.0.1:8443/cb"},
		{"http://127.0.0.1/cb", "http://[::1]:8080/cb"},
		{"http://127.0.0.1/cb", "HTTP://127.0.0.1:8080/cb"},
		{"http://127.0.0.1/cb", "http://127.0.0.1:8080/cb\x00"},
		{"com.example.app:/cb", "com.example.app:/cb"},
		{"", ""},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, registered, requested string) {
		m := core.MatchRedirectURI(registered, requested)
		if registered == requested {
			if !m {
				t.Fatalf("identical URIs do not match: %q", registered)
			}
			return
		}
		if m != core.MatchRedirectURI(requested, registered) {
			t.Fatalf("match is not symmetric: %q, %q", registered, requested)
		}
		if !m {
			return
		}
		hr, pr, rr, ok1 := fuzzLoopback(registered)
		hq, pq, rq, ok2 := fuzzLoopback(requested)
		if !ok1 || !ok2 || hr != hq || rr != rq || pr == pq {
			t.Fatalf("%q matched %q: not two http loopback literals differing in the port only (%q %q %q / %q %q %q)",
				requested, registered, hr, pr, rr, hq, pq, rq)
		}
	})
}

// fuzzLoopback splits an http loopback IP literal URI into host, port and
// the rest, or reports false. Both readings of the authority must agree.
func fuzzLoopback(s string) (host, port, rest string, ok bool) {
	after, found := strings.CutPrefix(s, "http://")
	if !found {
		return
	}
	// WHATWG: for special schemes the authority ends at / ? # or \.
	end := strings.IndexAny(after, `/?#\`)
	if end < 0 {
		end = len(after)
	}
	auth := after[:end]
	rest = after[end:]
	if rest != "" && rest[0] != '/' && rest[0] != '?' {
		return
	}
	if strings.ContainsAny(auth, "@%") {
		return
	}
	switch {
	case strings.HasPrefix(auth, "127.0.0.1"):
		host, port = "127.0.0.1", auth[len("127.0.0.1"):]
	case strings.HasPrefix(auth, "[::1]"):
		host, port = "::1", auth[len("[::1]"):]
	default:
		return
	}
	if port != "" {
		p, isPort := strings.CutPrefix(port, ":")
		if !isPort || p == "" || len(p) > 5 || strings.Trim(p, "0123456789") != "" {
			return
		}
		port = p
	}
	// net/url must read the same authority. (The rest is compared byte
	// for byte by the caller; only the authority differs between the two
	// URIs, so only it is parsed here.)
	u, err := url.Parse("http://" + auth + "/")
	if err != nil || u.User != nil || u.Hostname() != host || u.Port() != port {
		return
	}
	return host, port, rest, true
}

var fuzzBearerRe = regexp.MustCompile(`^[Bb][Ee][Aa][Rr][Ee][Rr] +([A-Za-z0-9\-._~+/]+=*)$`)

// FuzzParseBearer: accepted exactly when the header is the scheme
// "bearer" in any case, one or more spaces and a token68; the token is the
// header's tail.
func FuzzParseBearer(f *testing.F) {
	for _, s := range []string{
		"Bearer abc", "bearer abc", "BEARER   abc==", "Bearer", "Bearer ", "Bearer  ", "Bearer a b",
		"Bearer\tabc", "Bearerabc", " Bearer abc", "Bearer abc ", "Bearer =abc", "Bearer abc=d",
		"Bearer a\x00", "Bearer \xff", "Basic abc", "OAuth abc", "Bearer at2.kid.abc-_~+/", "Bearer é",
		"Bearer abc=== ", "Bearer ,abc",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		tok, ok := core.ParseBearer(h)
		sub := fuzzBearerRe.FindStringSubmatch(h)
		if ok != (sub != nil) {
			t.Fatalf("ParseBearer(%q) = %q, %v; the grammar says %v", h, tok, ok, sub != nil)
		}
		if !ok {
			if tok != "" {
				t.Fatalf("ParseBearer(%q) refused but returned %q", h, tok)
			}
			return
		}
		if tok != sub[1] || !strings.HasSuffix(h, tok) || !strings.EqualFold(h[:6], "bearer") || h[6] != ' ' {
			t.Fatalf("ParseBearer(%q) = %q, want %q", h, tok, sub[1])
		}
	})
}

// fuzzATSeeds were minted once by newRKit's server (fixed keys, fixed
// clock): they check in any process, including the fuzzing workers, which
// each build their own server. One per encoded length modulo 4. If the
// token format or key derivation changes, FuzzOpenAccessToken fails and
// prints fresh ones to paste here.
var fuzzATSeeds = []string{
	"at2.1f00c4a9.LStsqddZBGMhQZnqQM5QgX8X9SI2DFPfL8WL77c1IgaQR9NMrGc7zrnV2mA2BUcd-NTU9wiQkovxUF9whxwoTQT-8aLJZu85YjQrCf67BW9Hg4GkPlapYshFZNjAVk2T_6QQ52g6Y0yo_jLk59pHUgcIt3r15I7rBIq4JJ36mKCc3qQUXF94RkaMDlnc5QPlbbZqOejiH9NJd9_alXwLwjpig4q7AFDRU2fYBG8IaMc",
	"at2.1f00c4a9.7xQJ9yPPiljXqPMOtpsdMyFFAupJzZFixS1U5eBOPtTXwssZpEV33axAbBBUqzXi2EMVUTS60S3qSjdOgdI18cMK0UQLi1xyrMf2F0azwnZnbNMN697V0oaqNID8oeVGkaaCDHixYYLX6dQuTX7C0pw6rKq-JJFfbTQmcuUwW1XIGNIZeVEsLkRIHZxvsaNgKlnjy2asIPJVXwmshe8QZQ",
	"at2.1f00c4a9.AVpjrYO_gjZW9GFzTEOLkGP1ZYVsVBJXGEkpKR0F1Khxfvn1cAcnuxXn0xUwNNR203umTAj9rCnLVHvqU_zLmc0Rw6LWwFx-xw1v2U0k0fSX7kO0E5CYKsViVcwll1d6uPCyiX-e3KY84ov5h-K0Wk7FG8HGUp3dPb0woCfFYFCjR2swxkfTlnoetscrm09jrKA0OqPjQtTrK89NMytzkqrBk86XA6LqWhWE2RMl14m7",
}

// FuzzOpenAccessToken: only the tokens the server minted check; any other
// string, however close (the mutator's bit flips, truncations,
// insertions), fails.
func FuzzOpenAccessToken(f *testing.F) {
	k := newRKit(f)
	valid := map[string]bool{}
	for _, at := range fuzzATSeeds {
		if _, err := k.srv.CheckToken(rctx, at); err != nil {
			f.Fatalf("seed token no longer checks (%v); replace fuzzATSeeds with %q", err, k.accessTokens())
		}
		valid[at] = true
		f.Add(at)
		f.Add(at[:len(at)-1])
		f.Add(at + "\n")
		// The last character with its lowest bit flipped: for most lengths
		// that bit is base64 padding, which a non-strict decoder ignores.
		const b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
		f.Add(at[:len(at)-1] + string(b64[strings.IndexByte(b64, at[len(at)-1])^1]))
		f.Add(strings.Replace(at, "at2.", "pr2.", 1))
	}
	f.Add("at2..")
	f.Add("at2.1f00c4a9.")
	f.Add("at2.1f00c4a9." + strings.Repeat("A", 56))
	f.Fuzz(func(t *testing.T, tok string) {
		info, err := k.srv.CheckToken(rctx, tok)
		if err == nil && !valid[tok] {
			t.Fatalf("a token the server never minted checks: %q (%+v)", tok, info)
		}
		if err != nil && valid[tok] {
			t.Fatalf("a minted token fails: %v", err)
		}
	})
}

// fuzzPKCEValue: 43*128unreserved (RFC 7636 §4.1).
func fuzzPKCEValue(s string) bool {
	if len(s) < 43 || len(s) > 128 {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.IndexByte("-._~", c) >= 0) {
			return false
		}
	}
	return true
}

// FuzzPKCE: S256 accepts exactly a well-formed verifier whose SHA-256
// (base64url, no padding) is the well-formed challenge; plain exactly
// equal well-formed values; any other method nothing.
func FuzzPKCE(f *testing.F) {
	f.Add(verifier, core.S256Challenge(verifier))
	f.Add("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM") // RFC 7636 App. B
	long := strings.Repeat("a", 129)
	f.Add(long, core.S256Challenge(long))
	short := strings.Repeat("a", 42)
	f.Add(short, core.S256Challenge(short))
	f.Add(verifier+"=", core.S256Challenge(verifier+"="))
	f.Add(verifier, core.S256Challenge(verifier)+"=")
	f.Add(verifier, verifier)
	f.Add("", "")
	f.Fuzz(func(t *testing.T, v, c string) {
		sum := sha256.Sum256([]byte(v))
		wellFormed := fuzzPKCEValue(v) && fuzzPKCEValue(c)
		want := wellFormed && base64.RawURLEncoding.EncodeToString(sum[:]) == c
		if got := core.VerifyPKCE(v, c, "S256"); got != want {
			t.Fatalf("VerifyPKCE(%q, %q, S256) = %v, want %v", v, c, got, want)
		}
		if got := core.VerifyPKCE(v, c, "plain"); got != (wellFormed && v == c) {
			t.Fatalf("VerifyPKCE(%q, %q, plain) = %v", v, c, got)
		}
		for _, m := range []string{"", "s256", "S256 ", "PLAIN", "S512"} {
			if core.VerifyPKCE(v, c, m) {
				t.Fatalf("VerifyPKCE accepted method %q", m)
			}
		}
	})
}

// fuzzScopeList splits a scope parameter, or reports it malformed: tokens
// of %x21 / %x23-5B / %x5D-7E (at most 256 bytes, the kit's cap) separated
// by single spaces.
func fuzzScopeList(s string) ([]string, bool) {
	if s == "" {
		return nil, true
	}
	parts := strings.Split(s, " ")
	for _, p := range parts {
		if p == "" || len(p) > 256 {
			return nil, false
		}
		for _, c := range []byte(p) {
			if c < 0x21 || c == '"' || c == '\\' || c > 0x7e {
				return nil, false
			}
		}
	}
	return parts, true
}

// FuzzNarrowScope: the result is a canonical (sorted, deduplicated,
// single-space) subset of granted; "" asks for all of granted; a
// well-formed subset is never refused.
func FuzzNarrowScope(f *testing.F) {
	for _, s := range [][2]string{
		{"", "read write"}, {"read", "read write"}, {"write read read", "read write"}, {"admin", "read write"},
		{"read  write", "read write"}, {" read", "read"}, {"read", ""}, {"", ""}, {"a\"b", "a\"b"},
		{"read", "write read read"}, {"Read", "read"}, {"r\x00", "r\x00"}, {"é", "é"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, requested, granted string) {
		got, ok := core.NarrowScope(requested, granted)
		g, gOK := fuzzScopeList(granted)
		r, rOK := fuzzScopeList(requested)
		subset := gOK && rOK
		for _, s := range r {
			subset = subset && slices.Contains(g, s)
		}
		if ok != subset {
			t.Fatalf("NarrowScope(%q, %q) ok=%v, want %v", requested, granted, ok, subset)
		}
		if !ok {
			if got != "" {
				t.Fatalf("refused but returned %q", got)
			}
			return
		}
		want := r
		if requested == "" {
			want = g
		}
		want = slices.Compact(slices.Sorted(slices.Values(want)))
		if got != strings.Join(want, " ") {
			t.Fatalf("NarrowScope(%q, %q) = %q, want %q", requested, granted, got, strings.Join(want, " "))
		}
	})
}

// FuzzBasicAuth: whatever the client id and secret, EncodeBasic produces a
// header the token endpoint decodes back to exactly that pair: the right
// secret authenticates, a wrong one does not.
func FuzzBasicAuth(f *testing.F) {
	base := newRKit(f)
	for _, s := range [][2]string{
		{"client", "secret"}, {"a:b", "c:d"}, {"a%3Ab", "%zz"}, {"a b+c", "x y+z"}, {"é", "ü\x00"},
		{"id", ""}, {"", "secret"}, {"a&b=c", "d&e=f"}, {"\xff", "\xfe"}, {"conf", "wrong"},
		{strings.Repeat("i", 128), strings.Repeat("s", 512)}, {strings.Repeat("i", 129), "s"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, id, secret string) {
		k := base.with(t)
		if id == "conf" || id == "pub" {
			return
		}
		sum := sha256.Sum256([]byte(secret))
		if id != "" {
			k.store.AddClient(&core.Client{ID: id, SecretHash: "sha256$" + base64.RawStdEncoding.EncodeToString(sum[:]),
				GrantTypes: []string{core.GrantClientCredentials}})
			defer k.store.RemoveClient(id)
		}
		hdr := core.EncodeBasic(id, secret)
		send := func(h string) *fakeResp {
			return k.do(&fakeReq{method: "POST", path: "/oauth2/token", body: "grant_type=client_credentials",
				hdr: http.Header{"Authorization": {h}, "Content-Type": {"application/x-www-form-urlencoded"}}})
		}
		w := send(hdr)
		// The kit's own limits: ids up to 128 bytes, secrets up to 512, a
		// Basic credential up to 2048 characters.
		acceptable := id != "" && secret != "" && len(id) <= 128 && len(secret) <= 512 && len(hdr)-len("Basic ") <= 2048
		if acceptable != (w.status == 200) {
			t.Fatalf("EncodeBasic(%q, %q): status %d %s, want success=%v", id, secret, w.status, w.body, acceptable)
		}
		if w.status != 200 {
			robustWantError(t, "Basic", w, 401, core.ErrInvalidClient)
			return
		}
		// A wrong secret, or the pair misread, fails.
		if w := send(core.EncodeBasic(id, secret+"x")); w.status != 401 {
			t.Fatalf("wrong secret for %q: status %d", id, w.status)
		}
	})
}

// fuzzTokenParams are the token endpoint's own parameters.
var fuzzTokenParams = []string{"grant_type", "code", "redirect_uri", "code_verifier", "refresh_token", "scope", "client_id", "client_secret"}

// FuzzTokenRequestForm: any body to the token endpoint is refused cleanly
// (no credentials are known to the fuzzer): one of the documented statuses,
// a JSON error, and a repeated token parameter is always invalid_request.
func FuzzTokenRequestForm(f *testing.F) {
	k := newRKit(f, func(c *core.Config) {
		c.AuthThrottle.PerAccount, c.AuthThrottle.PerAddr = 10, 50 // the defaults: 429 is an answer too
	})
	code := k.code("read")
	_, rt := k.tokens("read")
	for _, s := range []string{
		"", "grant_type=client_credentials", "grant_type=client_credentials&client_id=conf&client_secret=x",
		"grant_type=client_credentials&client_id=pub", "grant_type=authorization_code&client_id=pub&code=" + code + "&code_verifier=" + verifier,
		"grant_type=refresh_token&client_id=pub&refresh_token=" + rt, "grant_type=password&username=a&password=b",
		"grant_type=authorization_code&grant_type=authorization_code", "grant_type=&grant_type=x", "a=%zz",
		"client_id=conf&client_id=conf&grant_type=client_credentials", "grant_type=refresh_token&client_id=%ff",
		strings.Repeat("a=1&", 100), "grant_type=client_credentials&client_id=conf&client_secret=" + strings.Repeat("s", 600),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		w := k.with(t).do(&fakeReq{method: "POST", path: "/oauth2/token", body: body,
			hdr: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}})
		switch w.status {
		case 400, 401, 405, 413, 429:
		default:
			t.Fatalf("body %q: status %d %s", body, w.status, w.body)
		}
		var m map[string]string
		if err := json.Unmarshal(w.body, &m); err != nil || m["error"] == "" || !robustDescOK(m["error_description"]) || !robustDescOK(m["error"]) {
			t.Fatalf("body %q: %d %q is not a clean JSON error (%v)", body, w.status, w.body, err)
		}
		if robustLeaks(w.body) {
			t.Fatalf("body %q: answer leaks internals: %s", body, w.body)
		}
		// A token endpoint parameter given twice (as net/url reads the
		// body) is invalid_request, whatever else is wrong, unless the body
		// is too large to read. (Unknown parameters may repeat: R12.)
		if q, err := url.ParseQuery(body); err == nil && w.status != 413 && w.status != 429 {
			for _, name := range fuzzTokenParams {
				if len(q[name]) > 1 && m["error"] != core.ErrInvalidRequest {
					t.Fatalf("body %q repeats %q but got %s", body, name, w.body)
				}
			}
		}
	})
}

// FuzzErrorDescription: SafeDescription output has only the characters
// RFC 6749 allows in error_description and keeps the ones allowed; and the
// descriptions that echo a client's input (a scope it may not have, the
// name of a repeated parameter) reach the wire clean.
func FuzzErrorDescription(f *testing.F) {
	k := newRKit(f)
	k.store.AddClient(&core.Client{ID: "scoped", SecretHash: k.mustClient("conf").SecretHash,
		GrantTypes: []string{core.GrantClientCredentials}, Scopes: []string{"read"}})
	for _, s := range []string{"plain text", "quote\"back\\slash", "\x00\x1f\x7f\xff", "é", "<script>", "a\r\nb", "%22", "", "write", "sc\u00f6pe", "a'b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, desc string) {
		out := core.SafeDescription(desc)
		if len(out) != len(desc) || !robustDescOK(out) {
			t.Fatalf("SafeDescription(%q) = %q", desc, out)
		}
		for i := 0; i < len(desc); i++ {
			if robustDescOK(desc[i:i+1]) && out[i] != desc[i] {
				t.Fatalf("SafeDescription(%q) changed allowed byte %d: %q", desc, i, out)
			}
		}
		kt := k.with(t)
		// A value longer than MaxValueLength (after decoding) is refused by
		// the parameter parser before anything else reads it: the token
		// endpoint answers invalid_request, the authorization endpoint an
		// error page (it cannot trust the redirect URI of a request it
		// could not parse). Found by the fuzzer: a 5 kB description.
		tooLong := len(desc) > k.srv.Config().Limits.MaxValueLength
		// The token endpoint names the scope the client may not have.
		w := kt.post("/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "scope": {desc}}.Encode(), basic("scoped", k.secret))
		switch {
		case tooLong:
			robustWantError(t, "oversized scope", w, 400, core.ErrInvalidRequest)
		case w.status != 200:
			robustWantError(t, "scope "+desc, w, 400, core.ErrInvalidScope)
		}
		// The authorization endpoint names a repeated parameter.
		q := codeQuery("conf", confCB, "read", "s").Encode() + "&scope=" + url.QueryEscape(desc)
		w = kt.do(&fakeReq{method: "GET", path: "/oauth2/authorize", query: q})
		if tooLong {
			if w.status != 400 || w.hdr.Get("Location") != "" {
				t.Fatalf("oversized repeated scope: status %d, Location %q", w.status, w.hdr.Get("Location"))
			}
			return
		}
		if w.status != 303 {
			t.Fatalf("repeated scope: status %d", w.status)
		}
		loc, err := url.Parse(w.hdr.Get("Location"))
		if err != nil {
			t.Fatalf("redirect %q: %v", w.hdr.Get("Location"), err)
		}
		if lq := loc.Query(); !robustDescOK(lq.Get("error_description")) || lq.Get("error") != core.ErrInvalidRequest {
			t.Fatalf("repeated scope %q: redirect %q", desc, loc)
		}
	})
}

// ---- sealed login handles (FuzzGrantRowDecode) ---------------------------------

// The blob the kit keeps for a pending authorization request is the sealed
// login handle posted back to /oauth2/login: no row in storage, an AEAD
// blob in the form. fuzzPending is an independent reading of that format
// (the key derivation of SECURITY.md §3, XChaCha20-Poly1305 with the header
// "pr2.<kid>." as associated data, then version, expiry, flags and fourteen
// length-prefixed strings: the last but one a JSON object of the OIDC
// request, the last the RFC 8707 resources), so the fuzz target can seal any plaintext the
// way the server does and predict the server's answer.
type fuzzPending struct {
	version, exp, flags int64
	f                   [14]string // clientID sentURI redirect scope state challenge method binding userID info nonce clientName oidc resource
}

const (
	fpClient = iota
	fpSentURI
	fpRedirect
	fpScope
	fpState
	fpChallenge
	fpMethod
	fpBinding
	fpUser
	fpInfo
	fpNonce
	fpName
	fpOIDC
	fpResource
)

// validFuzzOIDC is the independent reading of the OIDC member: empty, or
// a JSON object whose known members have their types (t and ma numbers,
// amr a list of strings, the rest strings).
func validFuzzOIDC(s string) bool {
	if s == "" {
		return true
	}
	var m map[string]json.RawMessage
	if json.Unmarshal([]byte(s), &m) != nil || m == nil {
		return false
	}
	for k, v := range m {
		var err error
		switch k {
		case "t", "ma":
			var n int64
			err = json.Unmarshal(v, &n)
		case "amr", "ci", "cu":
			var l []string
			err = json.Unmarshal(v, &l)
		case "n", "acr", "sid", "p", "lh", "ih", "ul", "cl", "av", "d":
			var str string
			err = json.Unmarshal(v, &str)
		}
		if err != nil {
			return false
		}
	}
	return true
}

// fuzzSession is the fixed browser session of the fuzz targets (the
// secure cookie name: the issuer is https).
const fuzzSession = "c2Vzc2lvbi1mb3ItdGhlLWZ1enotdGFyZ2V0cy0xMjM"

type fuzzKeys struct {
	kid     string
	pr      cipher.AEAD
	csrf    []byte
	codeKey []byte
}

func newFuzzKeys(tb testing.TB) *fuzzKeys {
	tb.Helper()
	crypt := []byte("0123456789abcdef0123456789abcdef")
	derive := func(root []byte, label string) []byte {
		k, err := hkdf.Key(sha256.New, root, nil, "oauth2kit/v1/"+label, 32)
		if err != nil {
			tb.Fatal(err)
		}
		return k
	}
	pr, err := chacha20poly1305.NewX(derive(crypt, "pending/aead"))
	if err != nil {
		tb.Fatal(err)
	}
	return &fuzzKeys{
		kid:     hex.EncodeToString(derive(append(append([]byte{}, crypt...), signKey...), "kid")[:4]),
		pr:      pr,
		csrf:    derive(signKey, "csrf"),
		codeKey: derive(signKey, "code/hmac"),
	}
}

func (k *fuzzKeys) mac(key []byte, parts ...string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(strings.Join(parts, "\x00")))
	return m.Sum(nil)
}

func (k *fuzzKeys) binding(sess string) string {
	return base64.RawURLEncoding.EncodeToString(k.mac(k.csrf, "session", sess)[:16])
}

func (k *fuzzKeys) csrfToken(sess, nonce string) string {
	return base64.RawURLEncoding.EncodeToString(k.mac(k.csrf, "csrf", sess, nonce))
}

// codeSig is the signature a store keeps for a draft-10 code.
func (k *fuzzKeys) codeSig(code string) string {
	return base64.RawURLEncoding.EncodeToString(k.mac(k.codeKey, code))
}

func (p *fuzzPending) encode() []byte {
	b := binary.AppendVarint(nil, p.version)
	b = binary.AppendVarint(b, p.exp)
	b = binary.AppendVarint(b, p.flags)
	for _, s := range p.f {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}

func (k *fuzzKeys) seal(pt []byte) string {
	hdr := "pr2." + k.kid + "."
	nonce := make([]byte, chacha20poly1305.NonceSizeX)
	copy(nonce, pt) // any nonce will do; a deterministic one keeps runs reproducible
	return hdr + base64.RawURLEncoding.EncodeToString(k.pr.Seal(nonce, nonce, pt, []byte(hdr)))
}

// open is the independent reading of a handle: nil unless it is authentic
// and decodes completely to a request naming a client and a redirect URI.
func (k *fuzzKeys) open(h string) *fuzzPending {
	parts := strings.Split(h, ".")
	if len(h) > 16384 || len(parts) != 3 || parts[0] != "pr2" || parts[1] != k.kid {
		return nil
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(parts[2])
	if err != nil || strings.ContainsAny(parts[2], "\r\n") || len(raw) < chacha20poly1305.NonceSizeX {
		return nil
	}
	pt, err := k.pr.Open(nil, raw[:chacha20poly1305.NonceSizeX], raw[chacha20poly1305.NonceSizeX:], []byte("pr2."+k.kid+"."))
	if err != nil {
		return nil
	}
	return decodeFuzzPending(pt)
}

func decodeFuzzPending(pt []byte) *fuzzPending {
	var p fuzzPending
	for _, n := range []*int64{&p.version, &p.exp, &p.flags} {
		v, m := binary.Varint(pt)
		if m <= 0 {
			return nil
		}
		*n, pt = v, pt[m:]
	}
	for i := range p.f {
		l, m := binary.Uvarint(pt)
		if m <= 0 || l > uint64(len(pt)-m) {
			return nil
		}
		p.f[i], pt = string(pt[m:m+int(l)]), pt[m+int(l):]
	}
	if len(pt) != 0 || p.version != 2 || p.f[fpClient] == "" || p.f[fpRedirect] == "" || !validFuzzOIDC(p.f[fpOIDC]) {
		return nil
	}
	return &p
}

// fuzzGrantStore records the grant the server would store and keeps
// nothing (a fuzz run mints many), and forgets consents.
type fuzzGrantStore struct {
	core.Storage
	last *core.Grant
}

func (s *fuzzGrantStore) CreateGrant(_ context.Context, g *core.Grant) error {
	cp := *g
	s.last = &cp
	return nil
}

func (s *fuzzGrantStore) SaveConsent(context.Context, string, string, string) error { return nil }

// FuzzGrantRowDecode: the decoder of the pending-request blob (the sealed
// login handle) never panics, and a handle only leads to a code when it is
// authentic and decodes to a request with a client id and redirect URI;
// the grant then stored carries exactly what the handle said. The input is
// either posted as the handle itself (raw) or sealed, as a plaintext, with
// the server's key: the first finds parser and AEAD bugs, the second drives
// the plaintext decoder with authentic blobs. Every other handle gets a 400
// or 403 error page: never a redirect, never a 500.
func FuzzGrantRowDecode(f *testing.F) {
	base := newRKit(f)
	rec := &fuzzGrantStore{Storage: base.store}
	srv, err := core.New(base.srv.Config(), rec, &testAuth{srv: &base.srv})
	if err != nil {
		f.Fatal(err)
	}
	base.srv = srv
	base.store.AddClient(&core.Client{ID: "legacy", RedirectURIs: []string{"https://legacy.example.com/cb"}, Profile: core.ProfileDraft10})
	base.cookie = core.SecureSessionCookie + "=" + fuzzSession
	keys := newFuzzKeys(f)
	// A genuine handle, as the server mints it for the fixed session.
	page := base.loginPage("read write")
	hf := base.hiddenFields(page.body)
	genuine := hf.Get(core.FieldRequest)
	gp := keys.open(genuine)
	if gp == nil || hf.Get(core.FieldCSRF) != keys.csrfToken(fuzzSession, gp.f[fpNonce]) {
		f.Fatalf("the independent reading of the handle format no longer matches the server: %q", genuine)
	}
	f.Add([]byte(genuine), true)
	f.Add([]byte(genuine[:len(genuine)-1]), true)
	f.Add([]byte(strings.Replace(genuine, "pr2.", "at2.", 1)), true)
	f.Add([]byte(genuine+"\n"), true)
	f.Add([]byte("pr2."+keys.kid+"."), true)
	f.Add([]byte(""), true)
	f.Add(gp.encode(), false)
	now := base.now.Unix()
	bind := keys.binding(fuzzSession)
	mk := func(mod func(p *fuzzPending)) []byte {
		p := fuzzPending{version: 2, exp: now + 600}
		p.f = [14]string{"conf", confCB, confCB, "read", "st", core.S256Challenge(verifier), "S256", bind, "", "", "nonce", "Conf App", "", ""}
		mod(&p)
		return p.encode()
	}
	for _, mod := range []func(p *fuzzPending){
		func(p *fuzzPending) {},
		func(p *fuzzPending) { p.f[fpUser] = "bob"; p.f[fpInfo] = "{}" },                      // the consent step
		func(p *fuzzPending) { p.f[fpClient] = "legacy"; p.flags = 1; p.f[fpChallenge] = "" }, // draft-10
		func(p *fuzzPending) { p.f[fpClient] = "" },
		func(p *fuzzPending) { p.f[fpRedirect] = "" },
		func(p *fuzzPending) { p.f[fpClient] = "nobody" },
		func(p *fuzzPending) { p.exp = now },
		func(p *fuzzPending) { p.version = 1 },
		func(p *fuzzPending) { p.version = 3 },
		func(p *fuzzPending) { p.f[fpOIDC] = `{"n":"abc","t":1700000000,"amr":["pwd"]}` },
		func(p *fuzzPending) { p.f[fpOIDC] = `{"t":"x"}` },
		func(p *fuzzPending) { p.f[fpOIDC] = `[1]` },
		func(p *fuzzPending) { p.flags = 2 }, // form_post
		func(p *fuzzPending) { p.f[fpResource] = "https://api.example.com/mcp" },
		func(p *fuzzPending) { p.f[fpBinding] = keys.binding("other") },
		func(p *fuzzPending) { p.f[fpScope] = "a  b\x00" },
	} {
		f.Add(mk(mod), false)
	}
	f.Add(append(mk(func(*fuzzPending) {}), 0), false)
	f.Add([]byte{2, 0x80}, false)
	f.Fuzz(func(t *testing.T, blob []byte, raw bool) {
		if len(blob) > 8192 {
			return
		}
		k := base.with(t)
		handle := string(blob)
		if !raw {
			handle = keys.seal(blob)
		}
		p := keys.open(handle)
		csrf := "x"
		if p != nil {
			csrf = keys.csrfToken(fuzzSession, p.f[fpNonce])
		}
		form := url.Values{core.FieldRequest: {handle}, core.FieldCSRF: {csrf}, "username": {"alice"}, "password": {"pw"}, core.FieldDecision: {"approve"}}
		rec.last = nil
		w := k.post("/oauth2/login", form.Encode(), nil)
		want := 303
		switch {
		case p == nil || now >= p.exp:
			want = 400
		case p.f[fpBinding] != bind:
			want = 403
		case p.f[fpClient] != "conf" && p.f[fpClient] != "pub" && p.f[fpClient] != "legacy":
			want = 400
		case p.flags&2 != 0:
			want = 200 // form_post: a page that posts the code
		}
		if w.status != want {
			t.Fatalf("handle %q (decoded %+v): status %d, want %d (%s)", handle, p, w.status, want, w.body)
		}
		if want != 303 && want != 200 {
			if w.hdr.Get("Location") != "" || rec.last != nil {
				t.Fatalf("a refused handle redirected to %q or stored a grant", w.hdr.Get("Location"))
			}
			return
		}
		g := rec.last
		user, info := p.f[fpUser], p.f[fpInfo]
		if user == "" {
			user, info = "alice", `{"plan":"gold"}` // the login step: testAuth's user
		}
		if g == nil || g.ClientID == "" || g.ClientID != p.f[fpClient] || g.RedirectURI != p.f[fpSentURI] || g.Scope != p.f[fpScope] ||
			g.UserID != user || g.AdditionalInfo != info || g.CodeChallenge != p.f[fpChallenge] || g.CodeChallengeMethod != p.f[fpMethod] || g.Resource != p.f[fpResource] {
			t.Fatalf("handle %+v stored grant %+v", p, g)
		}
		if want == 200 {
			if !strings.Contains(string(w.body), `action="`+html.EscapeString(p.f[fpRedirect])+`"`) || w.hdr.Get("Location") != "" {
				t.Fatalf("handle %+v: form_post page %q", p, w.body)
			}
		} else if !strings.HasPrefix(w.hdr.Get("Location"), p.f[fpRedirect]) {
			t.Fatalf("handle %+v redirected to %q", p, w.hdr.Get("Location"))
		}
	})
}

// ---- draft-10 legacy paths (FuzzLegacyToken) -----------------------------------

// fuzzLegacyATSeeds were minted once by FuzzLegacyToken's server (fixed
// keys, fixed clock) for the draft-10 client "legacy"; fuzzDefaultATSeed
// for the default-profile client "conf". If the format changes the target
// fails and prints fresh ones.
var (
	fuzzLegacyATSeeds = []string{
		"at2.1f00c4a9.fk41-8-zGcV3nSGlwmPhH0hKOgNEk6vVSFmd13ro4kRQmXM4HpwylJpTZeyuU3aJ-vcBCeSz3IYOj97Y6inE0rgm3zVHoa9UffDwxhGiKcyPqYYIjeT6d9guaVvuQXyuKAKGxHk96V0GI4lkDGm8_ZW9wEAGX1-sWmIoEMk5EuI1FTzeU9A49beetXn00ebUyZSxeGGDFiX5g1x6yaDgd8u6dy-dRuja0FsJaA79",
		"at2.1f00c4a9.qUaKN_yippRmLYLcL0ZV_hb9J-_NJfACFTkkG-gfBwQpxeUj-wS0ej4qIl0H4WxhBk_6_DF-TBuVB9gloGDxOAgLzEp_qaNrFEUkOpcyDERafwR5orTuQH16PwwZrtq_pfKKB2zQ8KdyPS5egbI2M8ocbZ8AKOzclS1KTqVp0VT9QhM-sHLG28Y_TcB7-58A9YsRygBeovm2FBBUFDZ7p5xsqeUK1tLaWtgsz0sc",
		"at2.1f00c4a9.Krbc1Phpii7oInys8IiZmk2cL41Lfkov08cT0A6eNIta4EEfK5dtk8lkRNP2JJjpc5AtwhTJRgLLZoenIoqEKzzSCgoJMsvt9D7nn8bOPj1AYRQqaahgX83GkYjWg3UW5xBfhObrUtTE08FKCOjB-eU-ElTr8lOmiihzEVN6qIQaW-pGWE6DcSFyXFxshBETaQSfF-m3ZWLBcMZgVBLENeG53LlL9ICMYaKguDgG",
	}
	fuzzDefaultATSeed = "at2.1f00c4a9.MAg1gU1ODTkkKyK4N4feyGc64wuFfuYPOYJM9mfLTEjoe0kuNg883QZMPTu22gcs9dOmYcHbAIjhnaY-Bng9Lm3V4Pie93aiiQ35REMbM-IF1n7JTMtWFOQ2ObzRP8wku0Vf-swVI0t3JkU-zFR3PoTNBKmeAmz8ZMQHwzurAs0nIzUELMDuTIo2FxawWu77yJcVvuAGmcS-YIXKtj_6s0W5ojo4_5gZ7lqe4JAjiPo"
)

// fuzzLegacyCodes are draft-10 codes "<grant id>.<secret>" the target
// stores itself (by signature, as the server would) in every process, so
// that the same genuine codes exist in the coordinator and in each worker.
func fuzzLegacyCodes() []string {
	var out []string
	for i := range 4 {
		g := sha256.Sum256([]byte{'g', byte(i)})
		s := sha256.Sum256([]byte{'s', byte(i)})
		out = append(out, base64.RawURLEncoding.EncodeToString(g[:16])+"."+base64.RawURLEncoding.EncodeToString(s[:]))
	}
	return out
}

// FuzzLegacyToken: the draft-10 paths accept only what the server issued.
// A code of the legacy shape "<grant id>.<secret>" redeems only if it is
// one of the genuine codes (once); a token in "Authorization: OAuth", in
// an oauth_token query parameter or form field passes only if it is a
// genuine draft-10 access token, and in "Authorization: Bearer" only if it
// is any genuine access token. Every mutation fails, and nothing panics.
func FuzzLegacyToken(f *testing.F) {
	k := newRKit(f)
	keys := newFuzzKeys(f)
	const legacyCB = "https://legacy.example.com/cb"
	legacy, secret, err := core.NewClient(core.ClientSpec{ID: "legacy", RedirectURIs: []string{legacyCB}, Profile: core.ProfileDraft10})
	if err != nil {
		f.Fatal(err)
	}
	k.store.AddClient(legacy)
	redeem := func(k *rkit, code string) *fakeResp {
		return k.post("/oauth2/token", url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {legacyCB},
			"client_id": {"legacy"}, "client_secret": {secret}}.Encode(), nil)
	}
	// A real draft-10 flow: its code has the shape the stored ones imitate.
	page := k.do(&fakeReq{method: "GET", path: "/oauth2/authorize", query: "response_type=code&client_id=legacy&redirect_uri=" + url.QueryEscape(legacyCB)})
	hf := k.hiddenFields(page.body)
	hf.Set("username", "alice")
	hf.Set("password", "pw")
	w := k.post("/oauth2/login", hf.Encode(), nil)
	loc, _ := url.Parse(w.hdr.Get("Location"))
	realCode := loc.Query().Get("code")
	if !draft10CodeRe.MatchString(realCode) {
		f.Fatalf("draft-10 code %q (%d %s)", realCode, w.status, w.body)
	}
	w = redeem(k, realCode)
	if w.status != 200 {
		f.Fatalf("redeeming a draft-10 code: %d %s", w.status, w.body)
	}
	minted := []string{rJSONField(w.body, "access_token")}
	if w := redeem(k, realCode); w.status != 400 {
		f.Fatalf("a replayed draft-10 code: %d %s", w.status, w.body)
	}
	codes := fuzzLegacyCodes()
	for _, c := range codes {
		gid, _, _ := strings.Cut(c, ".")
		if err := k.store.CreateGrant(rctx, &core.Grant{ID: gid, CodeSig: keys.codeSig(c), ClientID: "legacy", UserID: "alice",
			RedirectURI: legacyCB, Scope: "read", CreatedAt: k.now, ExpiresAt: k.now.Add(time.Minute)}); err != nil {
			f.Fatal(err)
		}
		f.Add(c)
		f.Add(c[:len(c)-1])
		f.Add(strings.Replace(c, ".", "", 1))
		f.Add(c + ".x")
		f.Add(strings.ToUpper(c))
	}
	// The first stored code must redeem: the imitation is faithful.
	if w := redeem(k, codes[0]); w.status != 200 {
		f.Fatalf("a stored draft-10 code does not redeem: %d %s", w.status, w.body)
	}
	used := map[string]bool{codes[0]: true}
	// Access tokens: the hard-coded ones must still check.
	legacyAT := map[string]bool{}
	anyAT := map[string]bool{}
	for _, at := range fuzzLegacyATSeeds {
		legacyAT[at], anyAT[at] = true, true
	}
	anyAT[fuzzDefaultATSeed] = true
	for at := range anyAT {
		info, err := k.srv.CheckToken(rctx, at)
		if err != nil || info.Draft10 != legacyAT[at] {
			for range 3 {
				w := redeem(k, func() string {
					page := k.do(&fakeReq{method: "GET", path: "/oauth2/authorize", query: "response_type=code&client_id=legacy&redirect_uri=" + url.QueryEscape(legacyCB)})
					hf := k.hiddenFields(page.body)
					hf.Set("username", "alice")
					hf.Set("password", "pw")
					loc, _ := url.Parse(k.post("/oauth2/login", hf.Encode(), nil).hdr.Get("Location"))
					return loc.Query().Get("code")
				}())
				minted = append(minted, rJSONField(w.body, "access_token"))
			}
			def, _ := k.tokens("read")
			f.Fatalf("seed access token %q no longer checks (%v); replace fuzzLegacyATSeeds with %q and fuzzDefaultATSeed with %q", at, err, minted, def)
		}
		f.Add(at)
		f.Add(at[:len(at)-1])
		f.Add(at + "=")
		f.Add(strings.Replace(at, "at2.", "rt2.", 1))
	}
	f.Add("")
	f.Add("a.b")
	f.Fuzz(func(t *testing.T, tok string) {
		if len(tok) > 8192 {
			return // beyond every size limit: refused before any decoding
		}
		kt := k.with(t)
		// The token endpoint.
		w := redeem(kt, tok)
		genuine := slices.Contains(codes, tok) && !used[tok]
		if (w.status == 200) != genuine {
			t.Fatalf("code %q: status %d %s (genuine unused code: %v)", tok, w.status, w.body, genuine)
		}
		if genuine {
			used[tok] = true
			info, err := k.srv.CheckToken(rctx, rJSONField(w.body, "access_token"))
			if err != nil || !info.Draft10 || info.ClientID != "legacy" {
				t.Fatalf("a draft-10 code gave %+v, %v", info, err)
			}
		} else if w.status != 400 || bytes.Contains(w.body, []byte("access_token")) {
			t.Fatalf("code %q: %d %s", tok, w.status, w.body)
		}
		// The resource paths.
		for _, r := range []*fakeReq{
			{method: "GET", hdr: http.Header{"Authorization": {"OAuth " + tok}}},
			{method: "GET", query: "oauth_token=" + url.QueryEscape(tok)},
			{method: "POST", body: "oauth_token=" + url.QueryEscape(tok), hdr: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}},
			{method: "GET", hdr: http.Header{"Authorization": {"Bearer " + tok}}},
		} {
			if r.hdr == nil {
				r.hdr = http.Header{}
			}
			r.path = "/api"
			want := legacyAT[tok]
			if strings.HasPrefix(r.hdr.Get("Authorization"), "Bearer") {
				want = anyAT[tok]
			}
			info, rerr := k.srv.CheckRequest(r)
			if (rerr == nil) != want {
				t.Fatalf("%s %q %v: accepted=%v (%+v %v), want %v", r.method, r.query, r.hdr, rerr == nil, info, rerr, want)
			}
			if rerr != nil && rerr.Status != 401 && rerr.Status != 400 {
				t.Fatalf("%s %q %v: status %d", r.method, r.query, r.hdr, rerr.Status)
			}
		}
	})
}
