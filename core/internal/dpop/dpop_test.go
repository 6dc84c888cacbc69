package dpop

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	gojose "github.com/go-jose/go-jose/v4"

	"github.com/oauth2kit/oauth2kit/core/internal/jose"
)

var (
	testNow = time.Unix(1_700_000_000, 0)
	testURL = "https://as.example.com/token"
	testTok = "at2.the-access-token"
)

type testKeys struct {
	ec, ec384 *ecdsa.PrivateKey
	ed        ed25519.PrivateKey
	rsa       *rsa.PrivateKey
	rsa1024   *rsa.PrivateKey
}

var (
	keysOnce sync.Once
	keysVal  testKeys
)

func keys(t testing.TB) testKeys {
	t.Helper()
	keysOnce.Do(func() {
		var err error
		must := func(e error) {
			if e != nil && err == nil {
				err = e
			}
		}
		k := &keysVal
		k.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		var e error
		k.ec384, e = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		must(e)
		_, k.ed, e = ed25519.GenerateKey(rand.Reader)
		must(e)
		k.rsa, e = rsa.GenerateKey(rand.Reader, 2048)
		must(e)
		k.rsa1024, e = rsa.GenerateKey(rand.Reader, 1024)
		must(e)
		if err != nil {
			panic(err)
		}
	})
	return keysVal
}

func claims() map[string]any {
	return map[string]any{"jti": "jti-1", "htm": "POST", "htu": testURL, "iat": testNow.Unix()}
}

func check() Check {
	return Check{Method: "POST", URL: testURL, Now: testNow}
}

// goJoseProof signs cl as a proof with go-jose: typ dpop+jwt and the
// public key embedded as jwk.
func goJoseProof(t testing.TB, alg string, key crypto.Signer, cl map[string]any) string {
	t.Helper()
	opts := (&gojose.SignerOptions{EmbedJWK: true}).WithType(Type)
	s, err := gojose.NewSigner(gojose.SigningKey{Algorithm: gojose.SignatureAlgorithm(alg), Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	p, err := json.Marshal(cl)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := s.Sign(p)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// jwkOf is the JWK of k (public or private) as a JSON object.
func jwkOf(t testing.TB, k any) map[string]any {
	t.Helper()
	b, err := json.Marshal(gojose.JSONWebKey{Key: k})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func header(alg string, jwk any) map[string]any {
	return map[string]any{"typ": Type, "alg": alg, "jwk": jwk}
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rawProof signs header and claims as given, with no help from go-jose:
// for the proofs go-jose would not make.
func rawProof(t testing.TB, alg string, key any, h, cl map[string]any) string {
	t.Helper()
	return rawSign(t, alg, key, mustJSON(t, h), mustJSON(t, cl))
}

func rawSign(t testing.TB, alg string, key any, h, p []byte) string {
	t.Helper()
	enc := base64.RawURLEncoding
	in := enc.EncodeToString(h) + "." + enc.EncodeToString(p)
	d := sha256.Sum256([]byte(in))
	var sig []byte
	var err error
	switch alg {
	case "ES256":
		k := key.(*ecdsa.PrivateKey)
		var r, s *big.Int
		if r, s, err = ecdsa.Sign(rand.Reader, k, d[:]); err == nil {
			size := (k.Curve.Params().BitSize + 7) / 8
			sig = make([]byte, 2*size)
			r.FillBytes(sig[:size])
			s.FillBytes(sig[size:])
		}
	case "RS256":
		sig, err = rsa.SignPKCS1v15(rand.Reader, key.(*rsa.PrivateKey), crypto.SHA256, d[:])
	case "PS256":
		sig, err = rsa.SignPSS(rand.Reader, key.(*rsa.PrivateKey), crypto.SHA256, d[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	case "EdDSA":
		sig = ed25519.Sign(key.(ed25519.PrivateKey), []byte(in))
	case "HS256":
		m := hmac.New(sha256.New, key.([]byte))
		m.Write([]byte(in))
		sig = m.Sum(nil)
	case "none":
	default:
		t.Fatalf("rawSign: %s", alg)
	}
	if err != nil {
		t.Fatal(err)
	}
	return in + "." + enc.EncodeToString(sig)
}

func with(m map[string]any, kv ...any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
		} else {
			out[kv[i].(string)] = kv[i+1]
		}
	}
	return out
}

// Proofs of each algorithm, made by go-jose, are accepted, and report the
// key's RFC 7638 thumbprint, the jti, iat, nonce and alg.
func TestVerifyAccepts(t *testing.T) {
	k := keys(t)
	for _, tc := range []struct {
		alg string
		key crypto.Signer
	}{
		{"ES256", k.ec}, {"EdDSA", k.ed}, {"RS256", k.rsa}, {"PS256", k.rsa},
	} {
		t.Run(tc.alg, func(t *testing.T) {
			proof := goJoseProof(t, tc.alg, tc.key, with(claims(), "nonce", "n-1"))
			p, err := Verify(proof, check())
			if err != nil {
				t.Fatal(err)
			}
			want, err := jose.Thumbprint(tc.key.Public())
			if err != nil {
				t.Fatal(err)
			}
			if p.JKT != want || p.JTI != "jti-1" || !p.IssuedAt.Equal(testNow) || p.Nonce != "n-1" || p.Alg != tc.alg {
				t.Fatalf("%+v, want JKT %s", p, want)
			}
			jwk := mustJSON(t, gojose.JSONWebKey{Key: tc.key.Public()})
			if tp, err := Thumbprint(jwk); err != nil || tp != want {
				t.Fatalf("Thumbprint = %q, %v; want %q", tp, err, want)
			}
		})
	}
}

// The checks that pass at their edges, and the normalisations that make
// equal what RFC 9449 says is equal.
func TestVerifyAcceptsEdges(t *testing.T) {
	k := keys(t)
	for _, tc := range []struct {
		name  string
		cl    map[string]any
		check func(*Check)
	}{
		{"iat 59 s old", with(claims(), "iat", testNow.Unix()-59), nil},
		{"iat 60 s old", with(claims(), "iat", testNow.Unix()-60), nil},
		{"iat 9 s ahead", with(claims(), "iat", testNow.Unix()+9), nil},
		{"iat 10 s ahead", with(claims(), "iat", testNow.Unix()+10), nil},
		{"iat with a fraction", with(claims(), "iat", float64(testNow.Unix())-0.5), nil},
		{"htu with query and fragment", with(claims(), "htu", testURL+"?a=b&c#frag"), nil},
		{"htu with :443", with(claims(), "htu", "https://as.example.com:443/token"), nil},
		{"URL with :443", claims(), func(c *Check) { c.URL = "https://as.example.com:443/token" }},
		{"htu upper-case scheme and host", with(claims(), "htu", "HTTPS://AS.Example.COM/token"), nil},
		{"empty path is /", with(claims(), "htu", "https://as.example.com"), func(c *Check) { c.URL = "https://as.example.com/" }},
		{"http with :80", with(claims(), "htu", "http://localhost:80/x"), func(c *Check) { c.URL = "http://localhost/x" }},
		{"ath right", with(claims(), "ath", AccessTokenHash(testTok)), func(c *Check) { c.AccessToken = testTok }},
		{"ath without a token", with(claims(), "ath", AccessTokenHash(testTok)), nil},
		{"jti of 256 bytes", with(claims(), "jti", strings.Repeat("j", 256)), nil},
		{"other method", with(claims(), "htm", "GET"), func(c *Check) { c.Method = "GET" }},
		{"allow-list of one", claims(), func(c *Check) { c.Algs = []string{"ES256"} }},
		{"unknown claims ignored", with(claims(), "x", map[string]any{"y": 1}), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := check()
			if tc.check != nil {
				tc.check(&c)
			}
			if _, err := Verify(goJoseProof(t, "ES256", k.ec, tc.cl), c); err != nil {
				t.Fatal(err)
			}
		})
	}
	// Extra header and JWK members that are not key material.
	jwk := with(jwkOf(t, &k.ec.PublicKey), "kid", "k1", "alg", "ES256", "use", "sig", "ext", true, "key_ops", []string{"verify"})
	if _, err := Verify(rawProof(t, "ES256", k.ec, with(header("ES256", jwk), "kid", "k1"), claims()), check()); err != nil {
		t.Fatal(err)
	}
}

// Every refusal wraps ErrInvalidProof, gives the reason expected, and
// quotes neither the proof nor the access token.
func TestVerifyRefuses(t *testing.T) {
	k := keys(t)
	ecJWK := jwkOf(t, &k.ec.PublicKey)
	ecHdr := header("ES256", ecJWK)
	ok := func(cl map[string]any) func() string {
		return func() string { return rawProof(t, "ES256", k.ec, ecHdr, cl) }
	}
	okHdr := func(h map[string]any) func() string {
		return func() string { return rawProof(t, "ES256", k.ec, h, claims()) }
	}
	rsaPriv := jwkOf(t, k.rsa)
	rsaDPQ := map[string]any{"kty": "RSA", "n": rsaPriv["n"], "e": rsaPriv["e"], "d": rsaPriv["d"], "p": rsaPriv["p"], "q": rsaPriv["q"]}
	enc := base64.RawURLEncoding

	for _, tc := range []struct {
		name  string
		proof func() string
		check func(*Check)
		want  string
	}{
		{"wrong typ", okHdr(with(ecHdr, "typ", "JWT")), nil, "typ"},
		{"typ in capitals", okHdr(with(ecHdr, "typ", "DPOP+JWT")), nil, "typ"},
		{"typ not a string", okHdr(with(ecHdr, "typ", 1)), nil, "typ"},
		{"missing typ", okHdr(with(ecHdr, "typ", nil)), nil, "typ"},
		{"alg none", func() string { return rawProof(t, "none", nil, header("none", ecJWK), claims()) }, nil, "algorithm"},
		{"HS256 with the jwk as secret", func() string {
			return rawProof(t, "HS256", mustJSON(t, ecJWK), header("HS256", ecJWK), claims())
		}, nil, "algorithm"},
		{"missing alg", okHdr(with(ecHdr, "alg", nil)), nil, "alg"},
		{"alg outside Check.Algs", func() string { return goJoseProof(t, "EdDSA", k.ed, claims()) },
			func(c *Check) { c.Algs = []string{"ES256", "RS256"} }, "algorithm"},
		{"RS256 header with EC key", func() string { return rawProof(t, "RS256", k.rsa, header("RS256", ecJWK), claims()) }, nil, "ECDSA key cannot sign"},
		{"ES256 header with RSA key", func() string {
			return rawProof(t, "ES256", k.ec, header("ES256", jwkOf(t, &k.rsa.PublicKey)), claims())
		}, nil, "RSA key cannot sign"},
		{"EdDSA header with EC key", func() string { return rawProof(t, "EdDSA", k.ed, header("EdDSA", ecJWK), claims()) }, nil, "cannot sign"},
		{"ES256 with P-384", func() string {
			return rawProof(t, "ES256", k.ec384, header("ES256", jwkOf(t, &k.ec384.PublicKey)), claims())
		}, nil, "P-256"},
		{"RSA 1024", func() string { return goJoseProof(t, "RS256", k.rsa1024, claims()) }, nil, "at least 2048"},
		{"jwk with d (EC)", okHdr(header("ES256", jwkOf(t, k.ec))), nil, "private"},
		{"jwk with d, p, q (RSA)", func() string { return rawProof(t, "RS256", k.rsa, header("RS256", rsaDPQ), claims()) }, nil, "private"},
		{"jwk with oth only", okHdr(header("ES256", with(ecJWK, "oth", []any{}))), nil, "private"},
		{"oct jwk", okHdr(header("ES256", map[string]any{"kty": "oct", "k": enc.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))})), nil, "symmetric"},
		{"oct jwk without k", okHdr(header("ES256", map[string]any{"kty": "oct"})), nil, "symmetric"},
		{"jwk without kty", okHdr(header("ES256", with(ecJWK, "kty", nil))), nil, "kty"},
		{"jwk not an object", okHdr(header("ES256", "key")), nil, "jwk"},
		{"jwk alg not the header's", okHdr(header("ES256", with(ecJWK, "alg", "RS256"))), nil, "jwk alg"},
		{"jwk use enc", okHdr(header("ES256", with(ecJWK, "use", "enc"))), nil, "use"},
		{"jwk with x5c", okHdr(header("ES256", with(ecJWK, "x5c", []string{"MIIB"}))), nil, "x5c"},
		{"jwk with a repeated member", func() string {
			h := `{"typ":"dpop+jwt","alg":"ES256","jwk":{"kty":"EC","crv":"P-256","x":` +
				string(mustJSON(t, ecJWK["x"])) + `,"y":` + string(mustJSON(t, ecJWK["y"])) + `,"x":"AAAA"}}`
			return rawSign(t, "ES256", k.ec, []byte(h), mustJSON(t, claims()))
		}, nil, "repeated"},
		{"jwk point not on the curve", okHdr(header("ES256", with(ecJWK, "y", ecJWK["x"]))), nil, "parse"},
		{"missing jwk", okHdr(with(ecHdr, "jwk", nil)), nil, "no jwk"},
		{"crit", okHdr(with(ecHdr, "crit", []string{"exp"}, "exp", 1)), nil, "crit"},
		{"b64", okHdr(with(ecHdr, "b64", false)), nil, "b64"},
		{"jku", okHdr(with(ecHdr, "jku", "https://attacker.example/jwks")), nil, "jku"},
		{"x5c", okHdr(with(ecHdr, "x5c", []string{"MIIB"})), nil, "x5c"},
		{"repeated header member", func() string {
			h := mustJSON(t, ecHdr)
			h = append(h[:len(h)-1], `,"typ":"JWT"}`...)
			return rawSign(t, "ES256", k.ec, h, mustJSON(t, claims()))
		}, nil, "repeated"},
		{"bad signature (payload tampered)", func() string {
			p := strings.Split(ok(claims())(), ".")
			p[1] = enc.EncodeToString(mustJSON(t, with(claims(), "jti", "jti-2")))
			return strings.Join(p, ".")
		}, nil, "signature"},
		{"signature of another key", func() string {
			other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			return rawProof(t, "ES256", other, ecHdr, claims())
		}, nil, "signature"},
		{"htm wrong", ok(with(claims(), "htm", "GET")), nil, "htm"},
		{"htm lower-case", ok(with(claims(), "htm", "post")), nil, "htm"},
		{"htm missing", ok(with(claims(), "htm", nil)), nil, "htm"},
		{"htu other host", ok(with(claims(), "htu", "https://rs.example.com/token")), nil, "htu"},
		{"htu other path", ok(with(claims(), "htu", "https://as.example.com/introspect")), nil, "htu"},
		{"htu path in other case", ok(with(claims(), "htu", "https://as.example.com/Token")), nil, "htu"},
		{"htu other scheme", ok(with(claims(), "htu", "http://as.example.com/token")), nil, "htu"},
		{"htu other port", ok(with(claims(), "htu", "https://as.example.com:8443/token")), nil, "htu"},
		{"htu with dot segments", ok(with(claims(), "htu", "https://as.example.com/x/../token")), nil, "htu"},
		{"htu with userinfo", ok(with(claims(), "htu", "https://u@as.example.com/token")), nil, "htu"},
		{"htu relative", ok(with(claims(), "htu", "/token")), nil, "htu"},
		{"htu missing", ok(with(claims(), "htu", nil)), nil, "htu"},
		{"iat 61 s old", ok(with(claims(), "iat", testNow.Unix()-61)), nil, "older"},
		{"iat 11 s ahead", ok(with(claims(), "iat", testNow.Unix()+11)), nil, "ahead"},
		{"iat as a string", ok(with(claims(), "iat", "1700000000")), nil, "iat"},
		{"iat missing", ok(with(claims(), "iat", nil)), nil, "iat"},
		{"iat huge", ok(with(claims(), "iat", 1e300)), nil, "iat"},
		{"missing jti", ok(with(claims(), "jti", nil)), nil, "jti"},
		{"empty jti", ok(with(claims(), "jti", "")), nil, "jti"},
		{"jti not a string", ok(with(claims(), "jti", 7)), nil, "jti"},
		{"jti of 257 chars", ok(with(claims(), "jti", strings.Repeat("j", 257))), nil, "jti"},
		{"repeated claim", func() string {
			p := mustJSON(t, claims())
			p = append(p[:len(p)-1], `,"htm":"GET"}`...)
			return rawSign(t, "ES256", k.ec, mustJSON(t, ecHdr), p)
		}, nil, "repeated"},
		{"payload not an object", func() string { return rawSign(t, "ES256", k.ec, mustJSON(t, ecHdr), []byte(`[1]`)) }, nil, "payload"},
		{"data after the payload", func() string {
			return rawSign(t, "ES256", k.ec, mustJSON(t, ecHdr), append(mustJSON(t, claims()), "{}"...))
		}, nil, "payload"},
		{"oversized proof", ok(with(claims(), "pad", strings.Repeat("p", MaxProofSize))), nil, "larger"},
		{"ath missing when token given", ok(claims()), func(c *Check) { c.AccessToken = testTok }, "ath"},
		{"ath wrong", ok(with(claims(), "ath", AccessTokenHash(testTok+"x"))), func(c *Check) { c.AccessToken = testTok }, "ath"},
		{"ath padded", ok(with(claims(), "ath", AccessTokenHash(testTok)+"=")), func(c *Check) { c.AccessToken = testTok }, "ath"},
		{"ath not a string", ok(with(claims(), "ath", 1)), nil, "ath"},
		{"nonce not a string", ok(with(claims(), "nonce", 1)), nil, "nonce"},
		{"not a JWS", func() string { return "garbage" }, nil, "compact"},
		{"four parts", func() string { return ok(claims())() + ".x" }, nil, "compact"},
		{"header not base64url", func() string { return "e30=." + strings.SplitN(ok(claims())(), ".", 2)[1] }, nil, "base64url"},
		{"empty", func() string { return "" }, nil, "compact"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := check()
			if tc.check != nil {
				tc.check(&c)
			}
			proof := tc.proof()
			p, err := Verify(proof, c)
			if !errors.Is(err, ErrInvalidProof) {
				t.Fatalf("Verify = %+v, %v; want ErrInvalidProof", p, err)
			}
			msg := err.Error()
			t.Log(msg)
			if !strings.Contains(msg, tc.want) {
				t.Errorf("%q does not say %q", msg, tc.want)
			}
			if (proof != "" && strings.Contains(msg, proof)) || strings.Contains(msg, testTok) || strings.ContainsAny(msg, `"\`) {
				t.Errorf("%q quotes the proof or the token, or is no error_description", msg)
			}
		})
	}
}

// The caller's mistakes are not the client's: they do not wrap
// ErrInvalidProof.
func TestVerifyCheckErrors(t *testing.T) {
	k := keys(t)
	proof := goJoseProof(t, "ES256", k.ec, claims())
	for name, mod := range map[string]func(*Check){
		"HS256 allowed": func(c *Check) { c.Algs = []string{"ES256", "HS256"} },
		"none allowed":  func(c *Check) { c.Algs = []string{"none"} },
		"no method":     func(c *Check) { c.Method = "" },
		"bad method":    func(c *Check) { c.Method = "PO ST" },
		"no URL":        func(c *Check) { c.URL = "" },
		"relative URL":  func(c *Check) { c.URL = "/token" },
	} {
		c := check()
		mod(&c)
		if _, err := Verify(proof, c); err == nil || errors.Is(err, ErrInvalidProof) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// The zero Now is the clock: a proof of 2023 is stale.
	c := check()
	c.Now = time.Time{}
	if _, err := Verify(proof, c); !errors.Is(err, ErrInvalidProof) || !strings.Contains(err.Error(), "older") {
		t.Errorf("zero Now: %v", err)
	}
}

func TestCheckRSASize(t *testing.T) {
	big := &rsa.PublicKey{N: new(big.Int).Lsh(big.NewInt(1), MaxRSABits), E: 65537}
	if err := checkRSASize(big); err == nil {
		t.Error("a modulus of MaxRSABits+1 bits accepted")
	}
	if err := checkRSASize(&keys(t).rsa.PublicKey); err != nil {
		t.Error(err)
	}
}

// The example key of RFC 9449 §4.2 has the thumbprint of §6.1.
func TestThumbprintRFC9449(t *testing.T) {
	jwk := `{"kty":"EC","x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs","y":"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA","crv":"P-256"}`
	got, err := Thumbprint([]byte(jwk))
	if err != nil || got != "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I" {
		t.Fatalf("Thumbprint = %q, %v", got, err)
	}
}

func TestThumbprintRefuses(t *testing.T) {
	k := keys(t)
	for name, jwk := range map[string]any{
		"EC private":  jwkOf(t, k.ec),
		"RSA private": jwkOf(t, k.rsa),
		"Ed private":  jwkOf(t, k.ed),
		"oct":         map[string]any{"kty": "oct", "k": "AAAA"},
		"P-384":       jwkOf(t, &k.ec384.PublicKey),
		"RSA 1024":    jwkOf(t, &k.rsa1024.PublicKey),
		"no kty":      with(jwkOf(t, &k.ec.PublicKey), "kty", nil),
		"not JSON":    json.RawMessage(`"x"`),
	} {
		if tp, err := Thumbprint(mustJSON(t, jwk)); err == nil {
			t.Errorf("%s: %q", name, tp)
		}
	}
}

func TestNormalizeHTU(t *testing.T) {
	for in, want := range map[string]string{
		"https://as.example.com/token":            "https://as.example.com/token",
		"HTTPS://AS.EXAMPLE.COM/Token":            "https://as.example.com/Token",
		"https://as.example.com:443/token":        "https://as.example.com/token",
		"https://as.example.com:0443/token":       "https://as.example.com/token",
		"https://as.example.com:80/token":         "https://as.example.com:80/token",
		"http://as.example.com:80/token":          "http://as.example.com/token",
		"http://as.example.com:443":               "http://as.example.com:443/",
		"https://as.example.com":                  "https://as.example.com/",
		"https://as.example.com:":                 "https://as.example.com/",
		"https://as.example.com?x#y":              "https://as.example.com/",
		"https://as.example.com/a?x=1#f":          "https://as.example.com/a",
		"https://as.example.com/a/../b":           "https://as.example.com/a/../b",
		"https://as.example.com/a/./b/":           "https://as.example.com/a/./b/",
		"https://as.example.com/a%2Fb":            "https://as.example.com/a%2Fb",
		"https://as.example.com/a%7eb":            "https://as.example.com/a%7eb",
		"https://as.example.com/a~b":              "https://as.example.com/a~b",
		"https://as.example.com//x":               "https://as.example.com//x",
		"https://[2001:DB8::1]:443/x":             "https://[2001:db8::1]/x",
		"https://[2001:db8::1]:8443/x":            "https://[2001:db8::1]:8443/x",
		"https://192.0.2.1/x":                     "https://192.0.2.1/x",
		"https://as.example.com/a;p=1/b(c)!$&'*+": "https://as.example.com/a;p=1/b(c)!$&'*+",
	} {
		got, err := NormalizeHTU(in)
		if err != nil || got != want {
			t.Errorf("NormalizeHTU(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{
		"", "/token", "as.example.com/token", "ftp://as.example.com/", "urn:x:y", "https:as.example.com",
		"https:///token", "https://u:p@as.example.com/", "https://@as.example.com/",
		"https://as.example.com:99999/", "https://as.example.com:0/", "https://as.example.com:x/",
		"https://[fe80::1%25en0]/", "https://ex%C3%A4mple.com/", "https://exämple.com/",
		"https://as.example.com/a b", "https://as.example.com/\x00", "https://as.example.com/\"",
		"https://as.example.com/" + strings.Repeat("a", maxHTU),
	} {
		if got, err := NormalizeHTU(in); err == nil {
			t.Errorf("NormalizeHTU(%q) = %q", in, got)
		}
	}
}

func TestNonces(t *testing.T) {
	key := []byte(strings.Repeat("k", 32))
	n, err := NewNonces(key, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(1_700_000_080, 0) // 40 s into a minute
	nonce := n.Issue(t0)
	if len(nonce) != nonceLen || strings.ContainsAny(nonce, "=+/") {
		t.Fatalf("nonce %q", nonce)
	}
	if n.Issue(t0.Add(19*time.Second)) != nonce {
		t.Error("the nonce changed within its period")
	}
	if n.Issue(t0.Add(20*time.Second)) == nonce {
		t.Error("the nonce did not change with the period")
	}
	for d, want := range map[time.Duration]bool{
		0:                  true,  // current
		19 * time.Second:   true,  // current, period's end
		20 * time.Second:   true,  // previous period's
		79 * time.Second:   true,  // previous period's, its end
		80 * time.Second:   false, // two periods old
		10 * time.Minute:   false,
		-41 * time.Second:  false, // next period's: not issued yet
		-40 * time.Second:  true,  // same period, its start
		256 * time.Minute:  false, // same tag byte, 256 periods on
		-256 * time.Minute: false,
	} {
		if got := n.Valid(nonce, t0.Add(d)); got != want {
			t.Errorf("Valid at %v = %v, want %v", d, got, want)
		}
	}
	other, _ := NewNonces([]byte(strings.Repeat("o", 32)), time.Minute)
	if other.Valid(nonce, t0) {
		t.Error("another key's nonce accepted")
	}
	otherPeriod, _ := NewNonces(key, 2*time.Minute)
	if otherPeriod.Valid(nonce, t0) {
		t.Error("another period length's nonce accepted")
	}
	b, _ := base64.RawURLEncoding.DecodeString(nonce)
	b[len(b)-1] ^= 1
	for _, bad := range []string{
		"", "garbage", nonce[:nonceLen-1], nonce + "A", nonce + "=", strings.Repeat("A", nonceLen),
		strings.Repeat("A", 1<<20), base64.RawURLEncoding.EncodeToString(b), "*" + nonce[1:],
	} {
		if n.Valid(bad, t0) {
			t.Errorf("Valid(%.40q)", bad)
		}
	}
	// Before the epoch, periods still round down.
	pre := time.Unix(-30, 0)
	if !n.Valid(n.Issue(pre), pre.Add(time.Minute)) || n.Issue(pre) == n.Issue(time.Unix(0, 0)) {
		t.Error("periods before the epoch")
	}
	if _, err := NewNonces(key[:31], 0); err == nil {
		t.Error("a 31-byte key accepted")
	}
	if _, err := NewNonces(key, -time.Minute); err == nil {
		t.Error("a negative period accepted")
	}
	d, err := NewNonces(key, 0)
	if err != nil || d.period != DefaultNoncePeriod {
		t.Errorf("default period: %v", err)
	}
	// The key is copied: changing the caller's slice changes nothing.
	key[0] = 'x'
	if !n.Valid(nonce, t0) {
		t.Error("the key was not copied")
	}
}

// The fuzz key is fixed, so that a proof the fuzzer mutates keeps its
// signature verifiable where its bytes still say so.
var fuzzKey = ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))

func fuzzSeeds(t testing.TB) (headers, payloads [][]byte) {
	jwk := jwkOf(t, fuzzKey.Public())
	h := header("EdDSA", jwk)
	headers = [][]byte{
		mustJSON(t, h),
		mustJSON(t, with(h, "kid", "k")),
		mustJSON(t, with(h, "jwk", with(jwk, "alg", "EdDSA", "use", "sig"))),
	}
	payloads = [][]byte{
		mustJSON(t, claims()),
		mustJSON(t, with(claims(), "ath", AccessTokenHash(testTok), "nonce", "n")),
		mustJSON(t, with(claims(), "htu", "HTTPS://as.example.com:443/token?x#y", "iat", testNow.Unix()-60)),
		mustJSON(t, with(claims(), "iat", float64(testNow.Unix())+9.75)),
	}
	return headers, payloads
}

// checkAccepted holds an accepted proof to what acceptance means, reading
// the proof again with encoding/json alone.
func checkAccepted(t *testing.T, proof string, p *Proof, c Check) {
	t.Helper()
	if p == nil || p.JKT == "" || p.Alg == "" {
		t.Fatalf("accepted with %+v", p)
	}
	if p.IssuedAt.Before(c.Now.Add(-MaxAge)) || p.IssuedAt.After(c.Now.Add(MaxFuture)) {
		t.Fatalf("iat %v outside the window", p.IssuedAt)
	}
	parts := strings.Split(proof, ".")
	hb, _ := base64.RawURLEncoding.DecodeString(parts[0])
	pb, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var h struct {
		Typ string         `json:"typ"`
		JWK map[string]any `json:"jwk"`
	}
	var cl map[string]any
	if json.Unmarshal(hb, &h) != nil || json.Unmarshal(pb, &cl) != nil {
		t.Fatalf("accepted unparsable %q", proof)
	}
	if h.Typ != Type || h.JWK == nil || h.JWK["d"] != nil {
		t.Fatalf("accepted header %s", hb)
	}
	want, _ := NormalizeHTU(c.URL)
	htu, _ := cl["htu"].(string)
	got, err := NormalizeHTU(htu)
	if cl["htm"] != c.Method || err != nil || got != want {
		t.Fatalf("accepted claims %s for %s %s", pb, c.Method, c.URL)
	}
	if jti, _ := cl["jti"].(string); jti != p.JTI || jti == "" || len(jti) > MaxJTI {
		t.Fatalf("accepted jti %q", jti)
	}
	if c.AccessToken != "" && cl["ath"] != AccessTokenHash(c.AccessToken) {
		t.Fatalf("accepted ath %v", cl["ath"])
	}
}

// FuzzVerify never panics, refuses only with ErrInvalidProof, and accepts
// only what satisfies checkAccepted. Besides a raw proof, each input is a
// header and a payload signed with the fuzz key, so that mutations reach
// the checks that follow the signature's.
func FuzzVerify(f *testing.F) {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	headers, payloads := fuzzSeeds(f)
	raw := []string{goJoseProof(f, "ES256", ec, claims()), goJoseProof(f, "EdDSA", fuzzKey, claims()), "", "a.b.c"}
	for i, h := range headers {
		for j, p := range payloads {
			f.Add(raw[(i+j)%len(raw)], h, p)
		}
	}
	f.Fuzz(func(t *testing.T, proof string, h, p []byte) {
		for _, pr := range []string{proof, rawSign(t, "EdDSA", fuzzKey, h, p)} {
			for _, tok := range []string{"", testTok} {
				c := check()
				c.AccessToken = tok
				got, err := Verify(pr, c)
				if err != nil {
					if !errors.Is(err, ErrInvalidProof) {
						t.Fatalf("refused without ErrInvalidProof: %v", err)
					}
					if strings.ContainsAny(err.Error(), `"\`) {
						t.Fatalf("reason %q", err)
					}
					continue
				}
				checkAccepted(t, pr, got, c)
			}
		}
	})
}

// FuzzNormalizeHTU never panics, and its result is a fixed point with no
// query or fragment.
func FuzzNormalizeHTU(f *testing.F) {
	for _, s := range []string{
		"https://as.example.com/token", "HTTP://A:80", "https://[::1]:443/a?b#c", "https://a/%2e%2E/./x",
		"https://a:0443", "http://a/b;c=d/(e)", "https://u@a/", "https://a?#", "https://[fe80::1%25x]/",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, u string) {
		n, err := NormalizeHTU(u)
		if err != nil {
			return
		}
		n2, err := NormalizeHTU(n)
		if err != nil || n2 != n {
			t.Fatalf("%q -> %q -> %q, %v", u, n, n2, err)
		}
		if strings.ContainsAny(n, "?#") || !(strings.HasPrefix(n, "https://") || strings.HasPrefix(n, "http://")) {
			t.Fatalf("%q -> %q", u, n)
		}
		// A query or fragment added changes nothing.
		if !strings.ContainsAny(u, "?#") && len(u)+4 <= maxHTU {
			if q, err := NormalizeHTU(u + "?q#f"); err != nil || q != n {
				t.Fatalf("%q?q#f -> %q, %v; want %q", u, q, err, n)
			}
		}
	})
}

func BenchmarkVerify(b *testing.B) {
	k := keys(b)
	for _, tc := range []struct {
		alg string
		key crypto.Signer
	}{
		{"ES256", k.ec}, {"EdDSA", k.ed}, {"RS256", k.rsa},
	} {
		b.Run(tc.alg, func(b *testing.B) {
			proof := goJoseProof(b, tc.alg, tc.key, with(claims(), "ath", AccessTokenHash(testTok)))
			c := check()
			c.AccessToken = testTok
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Verify(proof, c); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkNonces(b *testing.B) {
	n, _ := NewNonces(make([]byte, 32), 0)
	nonce := n.Issue(testNow)
	b.ReportAllocs()
	for b.Loop() {
		if !n.Valid(nonce, testNow) {
			b.Fatal("invalid")
		}
	}
}
