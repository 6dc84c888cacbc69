package storagetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/oauth2kit/oauth2kit/core"
)

// ReplayCacheStore is what RunReplayCache needs: a core.ReplayCache and
// nothing else, so that a replay cache kept apart from the rest of the
// storage (another database, a cache server) runs the sub-suite alone.
type ReplayCacheStore interface {
	core.ReplayCache
}

// RunReplayCache runs the sub-suite of the core.ReplayCache capability
// (Run runs it too, as ReplayCache, when the store has the capability):
// the first Remember of a key reports true and every later one false
// until the record's until, without changing the record; keys are
// independent and compared byte for byte, 256 bytes long included; at
// its until (compared as an instant) a key is free again, once; a
// cancelled context is an error and remembers nothing; and of 32
// goroutines remembering one key, fresh or expired, exactly one reports
// true, round after round. newStore is called once per subtest; it may
// return the same store each time (every test uses fresh random keys).
//
// The tests move now past until rather than waiting: a store must judge a
// record by the now it is given. Records are remembered for minutes at
// most past the real clock, so a store that drops expired records by its
// own clock keeps them for the whole test.
func RunReplayCache(t *testing.T, newStore func(t *testing.T) ReplayCacheStore) {
	t.Helper()
	h := helper(newStore)
	t.Run("FirstOnly", h(testReplayFirstOnly))
	t.Run("KeysIndependent", h(testReplayKeys))
	t.Run("Expiry", h(testReplayExpiry))
	t.Run("LongKey", h(testReplayLongKey))
	t.Run("CancelledContext", h(testReplayCancelled))
	t.Run("Concurrency", func(t *testing.T) {
		t.Run("FreshKey", h(testRaceRememberFresh))
		t.Run("ExpiredKey", h(testRaceRememberExpired))
	})
}

// runReplayCacheIfAble is Run's entry to the sub-suite: skipped for a
// store without the capability.
func runReplayCacheIfAble(newStore func(t *testing.T) Store) func(t *testing.T) {
	return func(t *testing.T) {
		if _, ok := newStore(t).(core.ReplayCache); !ok {
			t.Skip("the store does not implement core.ReplayCache")
		}
		RunReplayCache(t, func(t *testing.T) ReplayCacheStore {
			s, ok := newStore(t).(core.ReplayCache)
			if !ok {
				t.Fatal("newStore returned a store without core.ReplayCache")
			}
			return s
		})
	}
}

// replayKey returns a fresh key shaped like the server's (a prefix naming
// the check, then a base64url hash).
func replayKey() string { return "dpop|" + sig() }

// remember calls Remember and fails the test on an error.
func remember(t *testing.T, s ReplayCacheStore, key string, now, until time.Time) bool {
	t.Helper()
	ok, err := s.Remember(bg, key, now, until)
	if err != nil {
		t.Fatalf("Remember(%q): %v", clip(key), err)
	}
	return ok
}

// wantRemember checks what Remember reports.
func wantRemember(t *testing.T, s ReplayCacheStore, what, key string, now, until time.Time, want bool) {
	t.Helper()
	if got := remember(t, s, key, now, until); got != want {
		t.Errorf("%s: Remember reported %v, want %v", what, got, want)
	}
}

func testReplayFirstOnly(t *testing.T, s ReplayCacheStore) {
	now := base()
	k := replayKey()
	until := now.Add(5 * time.Minute)
	wantRemember(t, s, "the first Remember of a key", k, now, until, true)
	wantRemember(t, s, "a second Remember of the key", k, now, until, false)
	// Refused whatever the caller offers, later in the record's life too.
	wantRemember(t, s, "Remember of the key with a later until", k, now.Add(time.Minute), now.Add(time.Hour), false)
	wantRemember(t, s, "Remember of the key a second before its until", k, until.Add(-time.Second), until.Add(time.Hour), false)
	// A refused Remember changes nothing: the record still ends at the
	// first until, not at the later ones offered since.
	wantRemember(t, s, "Remember of the key at its first until, after refused calls offered later ones", k, until, until.Add(time.Minute), true)
}

func testReplayKeys(t *testing.T, s ReplayCacheStore) {
	now := base()
	until := now.Add(5 * time.Minute)
	k := replayKey()
	wantRemember(t, s, "Remember of a key", k, now, until, true)
	// Other keys, some very like k, are free: keys are compared byte for
	// byte (no case folding, no trailing-space trimming, no prefix
	// match).
	others := []string{replayKey(), strings.ToUpper(k), strings.ToLower(k), k[:len(k)-1], k + " ", " " + k, k + "x", "jti|" + k[len("dpop|"):]}
	for _, o := range others {
		wantRemember(t, s, fmt.Sprintf("the first Remember of %q next to %q", o, k), o, now, until, true)
	}
	for _, o := range others {
		wantRemember(t, s, fmt.Sprintf("a second Remember of %q", o), o, now, until, false)
	}
	wantRemember(t, s, "a second Remember of the first key, after the others", k, now, until, false)
	// Keys of every byte value are kept apart, not normalised: non-ASCII
	// text and its decomposed form are two keys.
	for _, o := range []string{"jti|café-" + sig(), "jti|cafe\u0301-" + sig()} {
		wantRemember(t, s, fmt.Sprintf("the first Remember of %q", o), o, now, until, true)
		wantRemember(t, s, fmt.Sprintf("a second Remember of %q", o), o, now, until, false)
	}
}

func testReplayExpiry(t *testing.T, s ReplayCacheStore) {
	now := base()
	k := replayKey()
	until := now.Add(time.Minute)
	wantRemember(t, s, "the first Remember", k, now, until, true)
	wantRemember(t, s, "Remember a second before until", k, until.Add(-time.Second), until.Add(time.Minute), false)
	// At until the record has run out (it is kept while until is after
	// now): the key is free again, once.
	next := until.Add(time.Minute)
	wantRemember(t, s, "Remember at until", k, until, next, true)
	wantRemember(t, s, "Remember again at until", k, until, next, false)
	wantRemember(t, s, "Remember before the new until", k, next.Add(-time.Second), next.Add(time.Minute), false)
	// Long after: free again, once.
	later := next.Add(24 * time.Hour)
	wantRemember(t, s, "Remember a day after the new until", k, later, later.Add(time.Minute), true)
	wantRemember(t, s, "Remember again a day after", k, later, later.Add(time.Minute), false)

	// now and until are instants, whatever their time zones.
	east, west := time.FixedZone("UTC+5", 5*3600), time.FixedZone("UTC-7", -7*3600)
	z := replayKey()
	zUntil := now.Add(2 * time.Minute)
	wantRemember(t, s, "Remember with times in another zone", z, now.In(east), zUntil.In(west), true)
	wantRemember(t, s, "Remember in a third zone, before until", z, zUntil.Add(-time.Second).In(time.UTC), zUntil.Add(time.Minute), false)
	wantRemember(t, s, "Remember in another zone, at until", z, zUntil.In(east), zUntil.Add(time.Minute).In(west), true)
}

func testReplayLongKey(t *testing.T, s ReplayCacheStore) {
	now := base()
	until := now.Add(5 * time.Minute)
	// 256 bytes, the longest key of the contract: multi-byte text (fewer
	// characters than bytes) and two keys that differ only in their last
	// byte, so a store that cuts keys short, or counts characters as
	// bytes, is caught.
	long := func(last string) string {
		head := "jti|" + sig() + "|" + strings.Repeat("é€", 40)
		k := head + strings.Repeat("x", 256-len(head)-len(last)) + last
		if len(k) != 256 {
			panic(fmt.Sprintf("storagetest: a long key of %d bytes", len(k)))
		}
		return k
	}
	a := long("a")
	b := a[:255] + "b"
	wantRemember(t, s, "the first Remember of a 256-byte key", a, now, until, true)
	wantRemember(t, s, "a second Remember of the 256-byte key", a, now, until, false)
	wantRemember(t, s, "the first Remember of a 256-byte key differing in its last byte", b, now, until, true)
	wantRemember(t, s, "a second Remember of that key", b, now, until, false)
	wantRemember(t, s, "Remember of the 255 bytes both keys share", a[:255], now, until, true)
	wantRemember(t, s, "Remember of the first 256-byte key at its until", a, until, until.Add(time.Minute), true)
}

func testReplayCancelled(t *testing.T, s ReplayCacheStore) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	now := base()
	until := now.Add(5 * time.Minute)
	k := replayKey()
	ok, err := s.Remember(ctx, k, now, until)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Remember with a cancelled context: error %v, want context.Canceled", err)
	}
	if ok {
		t.Error("Remember with a cancelled context reported true: a caller that ignored the error would accept the key")
	}
	// Nothing was remembered.
	wantRemember(t, s, "Remember of a key first offered with a cancelled context", k, now, until, true)
	// And a cancelled call does not report a remembered key free.
	if ok, err := s.Remember(ctx, k, now, until); ok || !errors.Is(err, context.Canceled) {
		t.Errorf("Remember of a remembered key with a cancelled context: %v, %v; want false, context.Canceled", ok, err)
	}
	wantRemember(t, s, "Remember after a cancelled call", k, now, until, false)
}

// raceRemember races Racers goroutines remembering key, then checks that
// exactly one reported true and none failed, and that the key stays
// remembered. It returns how many reported true.
func raceRemember(t *testing.T, s ReplayCacheStore, round int, key string, now, until time.Time) int {
	t.Helper()
	got := make([]bool, Racers)
	errs := make([]error, Racers)
	race(Racers, func(i int) { got[i], errs[i] = s.Remember(bg, key, now, until) })
	var o outcome
	for i, err := range errs {
		switch {
		case err != nil:
			o.other = append(o.other, err.Error())
		case got[i]:
			o.winners++
		default:
			o.lost++
		}
	}
	if o.winners != 1 || o.lost != Racers-1 {
		t.Errorf("round %d: %s; want 1 true, %d false", round, &o, Racers-1)
	}
	wantRemember(t, s, fmt.Sprintf("round %d: Remember after the race", round), key, now, until, false)
	return o.winners
}

func testRaceRememberFresh(t *testing.T, s ReplayCacheStore) {
	winners := make([]int, 0, Rounds)
	for round := 0; round < Rounds; round++ {
		now := base()
		winners = append(winners, raceRemember(t, s, round, replayKey(), now, now.Add(5*time.Minute)))
	}
	t.Logf("Remember: %d rounds × %d racers on a fresh key; true per round %v", Rounds, Racers, winners)
}

func testRaceRememberExpired(t *testing.T, s ReplayCacheStore) {
	winners := make([]int, 0, Rounds)
	for round := 0; round < Rounds; round++ {
		now := base()
		// Remembered a minute ago for a minute: its record has run out
		// (a store may have dropped it, or still hold it).
		k := replayKey()
		wantRemember(t, s, fmt.Sprintf("round %d: Remember a minute ago", round), k, now.Add(-time.Minute), now, true)
		winners = append(winners, raceRemember(t, s, round, k, now, now.Add(5*time.Minute)))
	}
	t.Logf("Remember: %d rounds × %d racers on an expired key; true per round %v", Rounds, Racers, winners)
}
