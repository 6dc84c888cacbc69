package jose

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
	"strings"
	"testing"

	gojose "github.com/go-jose/go-jose/v4"
)

func keys(t testing.TB) map[string]crypto.Signer {
	t.Helper()
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, edk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]crypto.Signer{RS256: rk, PS256: rk, ES256: ek, EdDSA: edk}
}

func only(pub crypto.PublicKey, kid string) KeyFunc {
	return func(k, _ string) (crypto.PublicKey, error) {
		if k != kid {
			return nil, errors.New("unknown kid")
		}
		return pub, nil
	}
}

// Our own signatures verify with go-jose's generic verifier (not only with
// ours), per algorithm, and the header is exactly alg, kid, typ.
func TestSignVerifiesWithGoJose(t *testing.T) {
	ks := keys(t)
	for _, alg := range Algorithms {
		t.Run(alg, func(t *testing.T) {
			s, err := NewSigner(ks[alg], alg, "k1")
			if err != nil {
				t.Fatal(err)
			}
			payload := []byte(`{"iss":"https://as.example","sub":"alice"}`)
			tok, err := s.Sign("at+jwt", payload)
			if err != nil {
				t.Fatal(err)
			}
			jws, err := gojose.ParseSignedCompact(tok, []gojose.SignatureAlgorithm{gojose.SignatureAlgorithm(alg)})
			if err != nil {
				t.Fatal(err)
			}
			got, err := jws.Verify(ks[alg].Public())
			if err != nil || string(got) != string(payload) {
				t.Fatalf("go-jose verify: %v %q", err, got)
			}
			hb, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
			var h map[string]any
			if err := json.Unmarshal(hb, &h); err != nil || len(h) != 3 || h["alg"] != alg || h["kid"] != "k1" || h["typ"] != "at+jwt" {
				t.Fatalf("header %s", hb)
			}
			hd, p, err := Verify(tok, []string{alg}, only(ks[alg].Public(), "k1"))
			if err != nil || string(p) != string(payload) || hd.Typ != "at+jwt" || hd.KID != "k1" {
				t.Fatalf("Verify: %v %+v", err, hd)
			}
		})
	}
}

func TestNewSignerRefusesMismatchedKeys(t *testing.T) {
	ks := keys(t)
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	for name, c := range map[string]struct {
		k   crypto.Signer
		alg string
	}{
		"rsa as ES256": {ks[RS256], ES256}, "ec as RS256": {ks[ES256], RS256}, "ed as PS256": {ks[EdDSA], PS256},
		"rsa-1024": {small, RS256}, "p-384": {p384, ES256}, "HS256": {ks[RS256], "HS256"}, "none": {ks[EdDSA], "none"},
	} {
		if _, err := NewSigner(c.k, c.alg, "x"); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// The negatives of SECURITY.md R59.
func TestVerifyRefuses(t *testing.T) {
	ks := keys(t)
	rs, _ := NewSigner(ks[RS256], RS256, "r")
	es, _ := NewSigner(ks[ES256], ES256, "e")
	payload := b64(`{"sub":"alice"}`)
	good, _ := rs.Sign("JWT", []byte(`{"sub":"alice"}`))
	rsaPub := ks[RS256].Public()
	// HMAC keyed with the RSA public key's encoding: the classic confusion.
	der, _ := json.Marshal(gojose.JSONWebKey{Key: rsaPub})
	hs := func(h string) string {
		m := hmac.New(sha256.New, der)
		m.Write([]byte(b64(h) + "." + payload))
		return b64(h) + "." + payload + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
	}
	jwk, _ := json.Marshal(gojose.JSONWebKey{Key: ks[ES256].Public()})
	esTok, _ := es.Sign("JWT", []byte(`{"sub":"alice"}`))
	esParts := strings.Split(esTok, ".")
	withHeader := func(h string) string { return b64(h) + "." + esParts[1] + "." + esParts[2] }
	wrong, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		tok  string
		algs []string
		key  KeyFunc
	}{
		"none":             {b64(`{"alg":"none","kid":"r"}`) + "." + payload + ".", []string{RS256}, only(rsaPub, "r")},
		"HS256 with pub":   {hs(`{"alg":"HS256","kid":"r"}`), []string{RS256}, only(rsaPub, "r")},
		"alg not allowed":  {good, []string{ES256}, only(rsaPub, "r")},
		"wrong kid":        {good, []string{RS256}, only(rsaPub, "other")},
		"wrong key":        {good, []string{RS256}, only(wrong.Public(), "r")},
		"key type for alg": {esTok, []string{ES256}, only(rsaPub, "e")},
		"embedded jwk":     {withHeader(`{"alg":"ES256","kid":"e","jwk":` + string(jwk) + `}`), []string{ES256}, only(ks[ES256].Public(), "e")},
		"jku":              {withHeader(`{"alg":"ES256","kid":"e","jku":"https://evil.example/jwks"}`), []string{ES256}, only(ks[ES256].Public(), "e")},
		"crit":             {withHeader(`{"alg":"ES256","kid":"e","crit":["exp"],"exp":1}`), []string{ES256}, only(ks[ES256].Public(), "e")},
		"oversize":         {good + strings.Repeat("A", MaxTokenSize), []string{RS256}, only(rsaPub, "r")},
		"tampered":         {good[:len(good)-4] + "AAAA", []string{RS256}, only(rsaPub, "r")},
		"HS256 allow-list": {good, []string{"HS256"}, only(rsaPub, "r")},
	}
	for name, c := range cases {
		if _, _, err := Verify(c.tok, c.algs, c.key); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}
}

func TestJWKSPublicOnly(t *testing.T) {
	ks := keys(t)
	var in []PublicKey
	for _, alg := range []string{RS256, ES256, EdDSA} {
		kid, err := Thumbprint(ks[alg].Public())
		if err != nil {
			t.Fatal(err)
		}
		in = append(in, PublicKey{KID: kid, Alg: alg, Key: ks[alg].Public()})
	}
	b, err := JWKS(in)
	if err != nil {
		t.Fatal(err)
	}
	var set struct{ Keys []map[string]any }
	if err := json.Unmarshal(b, &set); err != nil || len(set.Keys) != 3 {
		t.Fatalf("%v %s", err, b)
	}
	for i, k := range set.Keys {
		for _, m := range []string{"d", "p", "q", "dp", "dq", "qi", "k"} {
			if _, ok := k[m]; ok {
				t.Errorf("key %d has private member %q", i, m)
			}
		}
		if k["use"] != "sig" || k["alg"] != in[i].Alg || k["kid"] != in[i].KID {
			t.Errorf("key %d: %v", i, k)
		}
	}
	// A thumbprint kid is what anyone recomputes from the published key.
	var pk gojose.JSONWebKey
	one, _ := json.Marshal(set.Keys[0])
	if err := pk.UnmarshalJSON(one); err != nil {
		t.Fatal(err)
	}
	if tp, _ := Thumbprint(pk.Key); tp != in[0].KID {
		t.Errorf("thumbprint %q != kid %q", tp, in[0].KID)
	}
	if _, err := JWKS([]PublicKey{{KID: "x", Alg: RS256, Key: ks[RS256]}}); err == nil {
		t.Error("a private key was published")
	}
}

func FuzzVerify(f *testing.F) {
	ks := keys(f)
	es, _ := NewSigner(ks[ES256], ES256, "e")
	tok, _ := es.Sign("JWT", []byte(`{"sub":"alice"}`))
	f.Add(tok)
	f.Add(b64(`{"alg":"none"}`) + "." + b64(`{}`) + ".")
	f.Add("a.b.c")
	f.Fuzz(func(t *testing.T, s string) {
		_, p, err := Verify(s, []string{ES256, EdDSA}, only(ks[ES256].Public(), "e"))
		if err == nil && s != tok {
			// Only a genuine signature may pass: the fuzzer cannot forge one.
			if _, _, err2 := Verify(s, []string{ES256}, only(ks[ES256].Public(), "e")); err2 != nil {
				t.Fatalf("accepted then refused: %q", s)
			}
			_ = p
		}
	})
}

func BenchmarkSign(b *testing.B) {
	ks := keys(b)
	payload := []byte(`{"iss":"https://as.example","sub":"alice","aud":"client","exp":1900000000,"iat":1800000000,"auth_time":1800000000,"nonce":"n-0S6_WzA2Mj","azp":"client","at_hash":"77QmUPtjPfzWtF2AnpK9RQ","sid":"s1"}`)
	for _, alg := range Algorithms {
		b.Run(alg, func(b *testing.B) {
			s, _ := NewSigner(ks[alg], alg, "k")
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Sign("JWT", payload); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(alg+"/go-jose", func(b *testing.B) {
			sg, _ := gojose.NewSigner(gojose.SigningKey{Algorithm: gojose.SignatureAlgorithm(alg), Key: ks[alg]}, (&gojose.SignerOptions{}).WithType("JWT").WithHeader("kid", "k"))
			b.ReportAllocs()
			for b.Loop() {
				o, err := sg.Sign(payload)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := o.CompactSerialize(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
