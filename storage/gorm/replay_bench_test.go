package gormstore_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/oauth2kit/oauth2kit/core"
	"github.com/oauth2kit/oauth2kit/core/memstore"
)

// replayStores runs f once per replay cache: memstore, then each database
// (as benchStores does).
func replayStores(b *testing.B, f func(b *testing.B, s core.ReplayCache)) {
	b.Run("memstore", func(b *testing.B) { f(b, memstore.New()) })
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			s, _ := newStore(b, be.open(b))
			f(b, s)
		})
	}
}

// BenchmarkRemember: the cost of the replay check a DPoP proof or a client
// assertion pays, per store.
//
//   - Fresh: one fresh key remembered per operation (the INSERT alone):
//     what nearly every call costs.
//   - Replayed: one remembered key offered again per operation (INSERT,
//     UPDATE, INSERT, all refused): what a replayed proof costs.
//   - Expired: one key whose record ran out taken over per operation
//     (INSERT refused, UPDATE).
func BenchmarkRemember(b *testing.B) {
	keys := func(b *testing.B, prefix string) []string {
		k := make([]string, b.N)
		for i := range k {
			k[i] = fmt.Sprintf("dpop|%s-%d-%d", prefix, time.Now().UnixNano(), i)
		}
		return k
	}
	remember := func(b *testing.B, s core.ReplayCache, key string, now, until time.Time, want bool) {
		if ok, err := s.Remember(bg, key, now, until); err != nil || ok != want {
			b.Fatalf("Remember(%q) = %v, %v; want %v", key, ok, err, want)
		}
	}
	b.Run("Fresh", func(b *testing.B) {
		replayStores(b, func(b *testing.B, s core.ReplayCache) {
			now := time.Now()
			k := keys(b, "fresh")
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				remember(b, s, k[i], now, now.Add(time.Minute), true)
			}
		})
	})
	b.Run("Replayed", func(b *testing.B) {
		replayStores(b, func(b *testing.B, s core.ReplayCache) {
			now := time.Now()
			k := keys(b, "replayed")
			for i := range b.N {
				remember(b, s, k[i], now, now.Add(time.Minute), true)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				remember(b, s, k[i], now, now.Add(time.Minute), false)
			}
		})
	})
	b.Run("Expired", func(b *testing.B) {
		replayStores(b, func(b *testing.B, s core.ReplayCache) {
			now := time.Now()
			k := keys(b, "expired")
			for i := range b.N {
				remember(b, s, k[i], now.Add(-time.Minute), now, true)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				remember(b, s, k[i], now, now.Add(time.Minute), true)
			}
		})
	})
}
