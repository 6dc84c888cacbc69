package gormstore_test

import (
	"testing"
	"time"

	"github.com/oauth2kit/oauth2kit/core"
	"github.com/oauth2kit/oauth2kit/core/memstore"
	"github.com/oauth2kit/oauth2kit/core/storagetest"
	gormstore "github.com/oauth2kit/oauth2kit/storage/gorm"
)

// The benchmarks compare the databases with core/memstore, the in-memory
// reference. Run them with the DSN variables set to include PostgreSQL and
// MySQL:
//
//	go test -run '^$' -bench . -benchmem

// benchStores runs f once per store: memstore, then each database.
func benchStores(b *testing.B, f func(b *testing.B, s storagetest.Store)) {
	b.Run("memstore", func(b *testing.B) { f(b, memstore.New()) })
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			s, _ := newStore(b, be.open(b))
			f(b, s)
		})
	}
}

// BenchmarkRedeemCode: one code consumed and one refresh token stored per
// operation (the grants are created before the timer starts).
func BenchmarkRedeemCode(b *testing.B) {
	benchStores(b, func(b *testing.B, s storagetest.Store) {
		now := time.Now()
		grants := make([]*core.Grant, b.N)
		tokens := make([]*core.RefreshToken, b.N)
		for i := range grants {
			grants[i] = grantAt(now, time.Hour)
			tokens[i] = refreshFor(grants[i], now, time.Hour)
			if err := s.CreateGrant(bg, grants[i]); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			rt := tokens[i]
			if _, err := s.RedeemCode(bg, grants[i].CodeSig, now, func(*core.Grant) (*core.RefreshToken, error) { return rt, nil }); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkRotateRefreshToken: one rotation (old token marked, new one
// stored) per operation, along one chain.
func BenchmarkRotateRefreshToken(b *testing.B) {
	benchStores(b, func(b *testing.B, s storagetest.Store) {
		now := time.Now()
		g := grantAt(now, time.Hour)
		if err := s.CreateGrant(bg, g); err != nil {
			b.Fatal(err)
		}
		chain := make([]*core.RefreshToken, b.N+1)
		for i := range chain {
			chain[i] = refreshFor(g, now, time.Hour)
		}
		if _, err := s.RedeemCode(bg, g.CodeSig, now, issueRefresh(chain[0])); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			next := chain[i+1]
			if _, err := s.RotateRefreshToken(bg, chain[i].Sig, now, func(*core.RefreshToken) (*core.RefreshToken, error) { return next, nil }); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkTokenExchange: a whole authorization_code request at the token
// endpoint of a core.Server (client authentication, PKCE, redemption,
// access token minting, JSON answer); the codes come from the
// authorization endpoint before the timer starts.
func BenchmarkTokenExchange(b *testing.B) {
	benchStores(b, func(b *testing.B, s storagetest.Store) {
		c, secret, err := core.NewClient(core.ClientSpec{ID: "conf", Name: "Conf", RedirectURIs: []string{testCallback}})
		if err != nil {
			b.Fatal(err)
		}
		if err := s.SaveClient(bg, c); err != nil {
			b.Fatal(err)
		}
		in := newInstance(b, s, secret)
		codes := make([]string, b.N)
		for i := range codes {
			codes[i] = in.code()
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			if w := in.exchange(codes[i]); w.status != 200 {
				b.Fatalf("exchange: %d %s", w.status, w.body)
			}
		}
	})
}

var _ storagetest.Store = (*gormstore.Store)(nil)
