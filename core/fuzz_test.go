package core_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

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
		c.MaxAuthFailures, c.MaxAuthFailuresPerAddr = 10, 50 // the defaults: 429 is an answer too
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
		// The token endpoint names the scope the client may not have.
		w := kt.post("/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "scope": {desc}}.Encode(), basic("scoped", k.secret))
		if w.status != 200 {
			robustWantError(t, "scope "+desc, w, 400, core.ErrInvalidScope)
		}
		// The authorization endpoint names a repeated parameter.
		q := codeQuery("conf", confCB, "read", "s").Encode() + "&scope=" + url.QueryEscape(desc)
		w = kt.do(&fakeReq{method: "GET", path: "/oauth2/authorize", query: q})
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
