package memstore

import (
	"context"
	"fmt"
	"testing"
	"time"
)

func (s *Store) replayLen() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.replay)
}

// TestReplayMemoryBounded: the sweep drops replay records once their until
// has passed by the store's clock, both on an explicit Sweep and on the
// writes Remember makes after SweepEvery, and keeps live ones.
func TestReplayMemoryBounded(t *testing.T) {
	s := New()
	clock := time.Unix(1_800_000_000, 0).UTC()
	s.SetClock(func() time.Time { return clock })
	ctx := context.Background()
	const n = 3000
	for i := range n {
		life := time.Minute
		if i%3 == 0 {
			life = time.Hour
		}
		if ok, err := s.Remember(ctx, fmt.Sprintf("k%d", i), clock, clock.Add(life)); !ok || err != nil {
			t.Fatalf("Remember(k%d): %v, %v", i, ok, err)
		}
	}
	if got := s.replayLen(); got != n {
		t.Fatalf("%d records after %d Remember calls, want %d", got, n, n)
	}

	// Past the short records: an explicit Sweep drops them.
	clock = clock.Add(time.Minute)
	s.Sweep()
	if got, want := s.replayLen(), n/3; got != want {
		t.Fatalf("%d records after a sweep past the short ones, want %d", got, want)
	}
	// A dropped key is free again; a live one is not.
	if ok, _ := s.Remember(ctx, "k1", clock, clock.Add(time.Minute)); !ok {
		t.Error("a swept key was refused")
	}
	if ok, _ := s.Remember(ctx, "k0", clock, clock.Add(time.Minute)); ok {
		t.Error("a live key was accepted again")
	}

	// Past everything, no explicit Sweep: the next Remember after
	// SweepEvery sweeps.
	clock = clock.Add(time.Hour + s.SweepEvery)
	if ok, _ := s.Remember(ctx, "last", clock, clock.Add(time.Minute)); !ok {
		t.Fatal("Remember of a fresh key refused")
	}
	if got := s.replayLen(); got != 1 {
		t.Fatalf("%d records after the clock passed every until, want 1 (the last one)", got)
	}
}
