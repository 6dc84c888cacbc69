package core_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"testing"

	"github.com/oauth2kit/oauth2kit/core"
)

func benchSigner(b *testing.B, alg string) crypto.Signer {
	var k crypto.Signer
	var err error
	switch alg {
	case core.AlgRS256, core.AlgPS256:
		k, err = rsa.GenerateKey(rand.Reader, 2048)
	case core.AlgES256:
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		_, k, err = ed25519.GenerateKey(rand.Reader)
	}
	if err != nil {
		b.Fatal(err)
	}
	return k
}

// withOIDC signs with alg ("" leaves OIDC off) and knows the openid scope.
func withOIDC(b *testing.B, alg string) func(*core.Config) {
	return func(c *core.Config) {
		c.Scopes = append(c.Scopes, core.ScopeOpenID)
		if alg != "" {
			c.OIDC.SigningKeys = []core.SigningKey{{Alg: alg, Signer: benchSigner(b, alg)}}
		}
	}
}

// BenchmarkCodeFlowOpenID is the full code flow (authorize, login, token)
// with scope openid and an id_token signed per algorithm, beside the same
// flow without OIDC, in one run:
//
//	go test -run='^$' -bench=CodeFlowOpenID -count=6 ./core/ | benchstat -
func BenchmarkCodeFlowOpenID(b *testing.B) {
	for _, c := range []struct{ name, alg, scope string }{
		{"plain", "", "read"}, {"RS256", core.AlgRS256, "openid read"}, {"PS256", core.AlgPS256, "openid read"},
		{"ES256", core.AlgES256, "openid read"}, {"EdDSA", core.AlgEdDSA, "openid read"},
	} {
		b.Run(c.name, func(b *testing.B) {
			k := newRKit(b, withOIDC(b, c.alg))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if w := k.post("/oauth2/token", rExchangeBody(k.code(c.scope)), k.basic()); w.status != 200 {
					b.Fatalf("token: %d %s", w.status, w.body)
				}
			}
		})
	}
}

// BenchmarkCheckTokenJWT is the resource check of an RFC 9068 access token
// per algorithm (signature verification through go-jose), beside the
// sealed format.
func BenchmarkCheckTokenJWT(b *testing.B) {
	for _, alg := range []string{"sealed", core.AlgRS256, core.AlgES256, core.AlgEdDSA} {
		b.Run(alg, func(b *testing.B) {
			mod := withOIDC(b, alg)
			if alg == "sealed" {
				mod = withOIDC(b, core.AlgES256)
			}
			k := newRKit(b, mod, func(c *core.Config) {
				if alg != "sealed" {
					c.AccessTokenFormat = core.FormatJWT
				}
			})
			at, _ := k.tokens("read write")
			if _, err := k.srv.CheckToken(rctx, at); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := k.srv.CheckToken(rctx, at); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
