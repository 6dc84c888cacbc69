package memstore_test

import (
	"context"
	"runtime"
	"runtime/metrics"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/oauth2kit/oauth2kit/core"
	"github.com/oauth2kit/oauth2kit/core/memstore"
)

// The benchmarks replay the store's side of authorization-code flows
// (CreateGrant, RedeemCode issuing a refresh token, GetClient) against a
// store that already holds benchLive refresh tokens, on a fake clock that
// advances benchStep per flow so that tokens expire and get swept at the
// rate they are issued: the live state stays the same size however long
// the benchmark runs, as it does on a server under steady load.
const (
	benchLive  = 200_000
	benchStep  = time.Millisecond
	benchRT    = benchLive * benchStep // refresh-token lifetime
	benchCode  = 10 * time.Second      // code lifetime
	benchSweep = 5 * time.Second
)

type flowBench struct {
	s     *memstore.Store
	clock *fakeClock
	start time.Time
	i     int
	sink  int
}

func newFlowBench(tb testing.TB) *flowBench {
	fb := &flowBench{s: memstore.New(), clock: &fakeClock{t: time.Unix(1_800_000_000, 0).UTC()}}
	fb.start = fb.clock.t
	fb.s.SetClock(fb.clock.now)
	fb.s.SweepEvery = benchSweep
	for c := range 3 {
		id := "client-" + strconv.Itoa(c)
		fb.s.AddClient(&core.Client{
			ID: id, Name: "App " + id, SecretHash: "hash-" + id,
			RedirectURIs: []string{"https://app" + strconv.Itoa(c) + ".example/cb", "https://app.example/cb2", "http://localhost/cb"},
			GrantTypes:   []string{core.GrantAuthorizationCode, core.GrantRefreshToken},
			Scopes:       []string{"openid", "profile", "email", "offline_access"},
		})
	}
	for range benchLive {
		fb.flow(tb)
	}
	return fb
}

var benchScopes = []string{"openid", "openid profile", "openid email", "openid profile offline_access"}

// flow runs one login. Every identifier is built afresh, as a server
// parsing requests would, so that the store cannot benefit from callers
// sharing strings by accident.
func (fb *flowBench) flow(tb testing.TB) {
	i := fb.i
	fb.i++
	now := fb.start.Add(time.Duration(i) * benchStep)
	fb.clock.t = now
	n := strconv.Itoa(i)
	clientID := "client-" + strconv.Itoa(i%3)
	g := &core.Grant{
		ID:                  "grant-0123456789abcdef-" + n,
		CodeSig:             "codesig-0123456789abcdefghijklmnopqrstuv-" + n,
		ClientID:            clientID,
		UserID:              "user-" + strconv.Itoa(i%1000),
		RedirectURI:         "https://app" + strconv.Itoa(i%3) + ".example/cb",
		Scope:               string([]byte(benchScopes[i%len(benchScopes)])),
		CodeChallenge:       "challenge-0123456789abcdefghijklmnopqr-" + n,
		CodeChallengeMethod: string([]byte("S256")),
		AdditionalInfo:      `{"tenant":"t` + strconv.Itoa(i%10) + `"}`,
		CreatedAt:           now,
		ExpiresAt:           now.Add(benchCode),
	}
	if err := fb.s.CreateGrant(ctx, g); err != nil {
		tb.Fatal(err)
	}
	got, err := fb.s.RedeemCode(ctx, g.CodeSig, now, func(g *core.Grant) (*core.RefreshToken, error) {
		return &core.RefreshToken{
			Sig: "rtsig-0123456789abcdefghijklmnopqrstuvwx-" + n, FamilyID: g.ID,
			ClientID: g.ClientID, UserID: g.UserID, Scope: g.Scope, AdditionalInfo: g.AdditionalInfo,
			CreatedAt: now, ExpiresAt: now.Add(benchRT),
		}, nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	c, err := fb.s.GetClient(context.Background(), clientID)
	if err != nil {
		tb.Fatal(err)
	}
	fb.sink += len(got.ID) + len(c.RedirectURIs)
}

func readMetric(name string) metrics.Value {
	s := []metrics.Sample{{Name: name}}
	metrics.Read(s)
	return s[0].Value
}

func gcCPUSeconds() float64 { return readMetric("/cpu/classes/gc/total:cpu-seconds").Float64() }

// cpuTime is the process's user and system time. On a shared machine it
// varies less than wall time, which counts time spent waiting for a core.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkFlow reports, besides time and allocations, the collector's
// work per flow: its CPU time (as the runtime estimates it) and how many
// cycles ran, both of which grow with the live heap the store keeps.
func BenchmarkFlow(b *testing.B) {
	fb := newFlowBench(b)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	gc0, cpu0 := gcCPUSeconds(), cpuTime(b)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		fb.flow(b)
	}
	b.StopTimer()
	gc1, cpu1 := gcCPUSeconds(), cpuTime(b)
	b.ReportMetric(float64(cpu1-cpu0)/float64(b.N), "cpu-ns/op")
	runtime.ReadMemStats(&after)
	b.ReportMetric((gc1-gc0)*1e9/float64(b.N), "gc-ns/op")
	b.ReportMetric(float64(after.NumGC-before.NumGC)*1e6/float64(b.N), "GCs/1M-op")
	g, r, _ := fb.s.Len()
	if r < benchLive/2 || g == 0 {
		b.Fatalf("live state shrank: %d codes, %d refresh tokens", g, r)
	}
}

// BenchmarkLiveHeap measures what the store's steady state costs the
// collector: live bytes and heap objects per stored refresh token (codes
// included), and the time of one full collection with that heap.
func BenchmarkLiveHeap(b *testing.B) {
	runtime.GC()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	fb := newFlowBench(b)
	runtime.GC()
	runtime.ReadMemStats(&m1)
	cpu0 := cpuTime(b)
	b.ResetTimer()
	for range b.N {
		runtime.GC()
	}
	b.StopTimer()
	b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(b.N), "cpu-ns/op")
	// After the loop: ResetTimer discards metrics reported before it.
	_, r, _ := fb.s.Len()
	b.ReportMetric(float64(m1.HeapAlloc-m0.HeapAlloc)/float64(r), "live-B/token")
	b.ReportMetric(float64(m1.HeapObjects-m0.HeapObjects)/float64(r), "objs/token")
	// What the collector scans (memory that may hold pointers), per token.
	b.ReportMetric(float64(readMetric("/gc/scan/heap:bytes").Uint64())/float64(r), "scan-B/token")
	runtime.KeepAlive(fb)
}
