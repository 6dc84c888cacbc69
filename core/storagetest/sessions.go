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

// LoginSessionsStore is what RunLoginSessions needs: a Store with the
// core.LoginSessionStore capability.
type LoginSessionsStore interface {
	Store
	core.LoginSessionStore
}

// RunLoginSessions runs the sub-suite of the core.LoginSessionStore
// capability (Run runs it too when the store has the capability):
// CreateLoginSession and GetLoginSession round-trip every field (AMR in
// order), an existing ID is refused with ErrExists and not overwritten,
// unknown IDs (also a prefix or another case of a stored one) and expired
// sessions (ExpiresAt not after now) are ErrNotFound, EndLoginSession ends
// one session only and is idempotent, the store keeps and hands out
// copies, cancelled contexts change nothing, and racing creations of one
// ID store exactly one session. newStore is called once per subtest; it
// may return the same store each time.
func RunLoginSessions(t *testing.T, newStore func(t *testing.T) LoginSessionsStore) {
	t.Helper()
	h := helper(newStore)
	t.Run("RoundTripEveryField", h(testSessionRoundTrip))
	t.Run("RoundTripMinimal", h(testSessionMinimal))
	t.Run("ExistingID", h(testSessionExisting))
	t.Run("NotFound", h(testSessionNotFound))
	t.Run("Expiry", h(testSessionExpiry))
	t.Run("End", h(testSessionEnd))
	t.Run("SameUserIndependent", h(testSessionsOfOneUser))
	t.Run("CopiesNotShared", h(testSessionIsolation))
	t.Run("CancelledContext", h(testSessionCancelled))
	t.Run("Concurrency", h(testRaceCreateSession))
}

// runLoginSessionsIfAble is Run's entry to the sub-suite: skipped for a
// store without the capability.
func runLoginSessionsIfAble(newStore func(t *testing.T) Store) func(t *testing.T) {
	return func(t *testing.T) {
		if _, ok := newStore(t).(LoginSessionsStore); !ok {
			t.Skip("the store does not implement core.LoginSessionStore")
		}
		RunLoginSessions(t, func(t *testing.T) LoginSessionsStore {
			s, ok := newStore(t).(LoginSessionsStore)
			if !ok {
				t.Fatal("newStore returned a store without core.LoginSessionStore")
			}
			return s
		})
	}
}

// sessionFields: ClientIDs is compared everywhere but set only by the
// SessionClients sub-suite (a store without core.SessionClientStore is
// never asked to keep it).
var sessionFields = []string{"ID", "SID", "UserID", "AuthTime", "ACR", "AMR", "CreatedAt", "ExpiresAt", "ClientIDs"}

// newSession is a session created at now, authenticated five minutes
// before, with values that break naive encodings: non-ASCII in the user
// and the ACR, an AMR that is not sorted and holds a comma.
func newSession(now time.Time) *core.LoginSession {
	return &core.LoginSession{
		ID:        sig(),
		SID:       uid("sid"),
		UserID:    uid("user") + " Zoë",
		AuthTime:  now.Add(-5 * time.Minute),
		ACR:       "urn:example:acr:niveau-élevé ✓ \"2\"",
		AMR:       []string{"pwd", "otp", "hwk", "a,b"},
		CreatedAt: now,
		ExpiresAt: now.Add(24 * time.Hour),
	}
}

func diffSession(t *testing.T, what string, want, got *core.LoginSession) {
	t.Helper()
	if got == nil {
		t.Errorf("%s: got a nil session", what)
		return
	}
	var f differ
	f.str("ID", want.ID, got.ID)
	f.str("SID", want.SID, got.SID)
	f.str("UserID", want.UserID, got.UserID)
	f.time("AuthTime", want.AuthTime, got.AuthTime)
	f.str("ACR", want.ACR, got.ACR)
	f.list("AMR", want.AMR, got.AMR)
	f.time("CreatedAt", want.CreatedAt, got.CreatedAt)
	f.time("ExpiresAt", want.ExpiresAt, got.ExpiresAt)
	f.list("ClientIDs", want.ClientIDs, got.ClientIDs)
	f.report(t, what)
}

func createSession(t *testing.T, s LoginSessionsStore, ls *core.LoginSession) {
	t.Helper()
	cp := *ls
	if err := s.CreateLoginSession(bg, &cp); err != nil {
		t.Fatalf("CreateLoginSession: %v", err)
	}
}

func getSession(t *testing.T, s LoginSessionsStore, id string, now time.Time) *core.LoginSession {
	t.Helper()
	ls, err := s.GetLoginSession(bg, id, now)
	if err != nil {
		t.Fatalf("GetLoginSession: %v", err)
	}
	return ls
}

// noSession checks that GetLoginSession answers ErrNotFound, and no
// session with it.
func noSession(t *testing.T, s LoginSessionsStore, what, id string, now time.Time) {
	t.Helper()
	ls, err := s.GetLoginSession(bg, id, now)
	wantErr(t, what, err, core.ErrNotFound)
	if ls != nil {
		t.Errorf("%s returned a session with the error: %+v", what, ls)
	}
}

func testSessionRoundTrip(t *testing.T, s LoginSessionsStore) {
	now := base()
	want := newSession(now)
	createSession(t, s, want)
	diffSession(t, "GetLoginSession after CreateLoginSession", want, getSession(t, s, want.ID, now))
	// Read again later in the session's life: the same session.
	diffSession(t, "GetLoginSession an hour later", want, getSession(t, s, want.ID, now.Add(time.Hour)))
}

func testSessionMinimal(t *testing.T, s LoginSessionsStore) {
	now := base()
	want := &core.LoginSession{ID: sig(), SID: uid("sid"), UserID: uid("user"), AuthTime: now, CreatedAt: now, ExpiresAt: now.Add(time.Minute)}
	createSession(t, s, want)
	diffSession(t, "GetLoginSession of a session without ACR and AMR", want, getSession(t, s, want.ID, now))
}

func testSessionExisting(t *testing.T, s LoginSessionsStore) {
	now := base()
	first := newSession(now)
	createSession(t, s, first)
	// Another session under the same ID: refused, the first kept whole.
	second := newSession(now.Add(time.Hour))
	second.ID, second.ACR, second.AMR = first.ID, "other", []string{"face"}
	wantErr(t, "CreateLoginSession of an existing ID", s.CreateLoginSession(bg, second), core.ErrExists)
	diffSession(t, "the session after a second CreateLoginSession of its ID", first, getSession(t, s, first.ID, now))
	// The very same session again: refused too.
	cp := *first
	wantErr(t, "CreateLoginSession of the same session twice", s.CreateLoginSession(bg, &cp), core.ErrExists)
	diffSession(t, "the session after it was created twice", first, getSession(t, s, first.ID, now))
}

func testSessionNotFound(t *testing.T, s LoginSessionsStore) {
	now := base()
	ls := newSession(now)
	createSession(t, s, ls)
	for _, id := range []string{sig(), "", "%", "' OR '1'='1", ls.ID[:len(ls.ID)-1], ls.ID + " ", strings.ToUpper(ls.ID), strings.ToLower(ls.ID), ls.SID} {
		noSession(t, s, fmt.Sprintf("GetLoginSession(%q)", id), id, now)
	}
	diffSession(t, "the stored session", ls, getSession(t, s, ls.ID, now))
}

func testSessionExpiry(t *testing.T, s LoginSessionsStore) {
	now := base()
	ls := newSession(now)
	ls.ExpiresAt = now.Add(time.Hour)
	createSession(t, s, ls)
	diffSession(t, "GetLoginSession a second before ExpiresAt", ls, getSession(t, s, ls.ID, ls.ExpiresAt.Add(-time.Second)))
	noSession(t, s, "GetLoginSession at ExpiresAt", ls.ID, ls.ExpiresAt)
	noSession(t, s, "GetLoginSession after ExpiresAt", ls.ID, ls.ExpiresAt.Add(time.Second))
	noSession(t, s, "GetLoginSession a day after ExpiresAt", ls.ID, ls.ExpiresAt.Add(24*time.Hour))
	// now is compared as an instant, whatever its time zone.
	east := time.FixedZone("UTC+5", 5*3600)
	noSession(t, s, "GetLoginSession at ExpiresAt in another zone", ls.ID, ls.ExpiresAt.In(east))
	diffSession(t, "GetLoginSession before ExpiresAt in another zone", ls, getSession(t, s, ls.ID, ls.ExpiresAt.Add(-time.Second).In(east)))

	// A session created expired is never found.
	past := newSession(now.Add(-2 * time.Hour))
	past.ExpiresAt = now.Add(-time.Hour)
	createSession(t, s, past)
	noSession(t, s, "GetLoginSession of a session created expired", past.ID, now)
}

func testSessionEnd(t *testing.T, s LoginSessionsStore) {
	now := base()
	ls := newSession(now)
	createSession(t, s, ls)
	wantErr(t, "EndLoginSession", s.EndLoginSession(bg, ls.ID), nil)
	noSession(t, s, "GetLoginSession after EndLoginSession", ls.ID, now)
	wantErr(t, "EndLoginSession of an ended session", s.EndLoginSession(bg, ls.ID), nil)
	noSession(t, s, "GetLoginSession after a second EndLoginSession", ls.ID, now)
	wantErr(t, "EndLoginSession of an unknown session", s.EndLoginSession(bg, sig()), nil)
	// Ending another ID, a prefix of a stored one, leaves that one alone.
	other := newSession(now)
	createSession(t, s, other)
	wantErr(t, "EndLoginSession of a prefix", s.EndLoginSession(bg, other.ID[:len(other.ID)-1]), nil)
	diffSession(t, "a session after EndLoginSession of a prefix of its ID", other, getSession(t, s, other.ID, now))
}

func testSessionsOfOneUser(t *testing.T, s LoginSessionsStore) {
	now := base()
	a, b := newSession(now), newSession(now.Add(time.Minute))
	b.UserID, b.ACR, b.AMR = a.UserID, "phr", []string{"hwk"}
	createSession(t, s, a)
	createSession(t, s, b)
	diffSession(t, "the user's first session", a, getSession(t, s, a.ID, now.Add(time.Minute)))
	diffSession(t, "the user's second session", b, getSession(t, s, b.ID, now.Add(time.Minute)))
	// Ending one (another browser's) leaves the other.
	wantErr(t, "EndLoginSession", s.EndLoginSession(bg, a.ID), nil)
	noSession(t, s, "GetLoginSession of the ended session", a.ID, now.Add(time.Minute))
	diffSession(t, "the user's other session after one ended", b, getSession(t, s, b.ID, now.Add(time.Minute)))
}

func testSessionIsolation(t *testing.T, s LoginSessionsStore) {
	now := base()
	ls := newSession(now)
	want := *ls
	want.AMR = append([]string(nil), ls.AMR...)
	if err := s.CreateLoginSession(bg, ls); err != nil {
		t.Fatalf("CreateLoginSession: %v", err)
	}
	// The caller's value and the returned values are the caller's own.
	ls.AMR[0], ls.ACR, ls.UserID = "none", "changed", "mallory"
	got := getSession(t, s, want.ID, now)
	diffSession(t, "session after the caller changed the value it created", &want, got)
	got.AMR[0], got.SID = "none", "changed"
	got.AMR = append(got.AMR, "extra")
	diffSession(t, "session after the caller changed a value GetLoginSession returned", &want, getSession(t, s, want.ID, now))
}

func testSessionCancelled(t *testing.T, s LoginSessionsStore) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	now := base()
	canceled := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: error %v, want context.Canceled", what, err)
		}
	}
	ls := newSession(now)
	cp := *ls
	canceled("CreateLoginSession", s.CreateLoginSession(ctx, &cp))
	noSession(t, s, "GetLoginSession of a session created with a cancelled context", ls.ID, now)
	createSession(t, s, ls)
	_, err := s.GetLoginSession(ctx, ls.ID, now)
	canceled("GetLoginSession", err)
	canceled("EndLoginSession", s.EndLoginSession(ctx, ls.ID))
	diffSession(t, "the session after a cancelled EndLoginSession", ls, getSession(t, s, ls.ID, now))
}

func testRaceCreateSession(t *testing.T, s LoginSessionsStore) {
	winners := make([]int, 0, Rounds)
	for round := 0; round < Rounds; round++ {
		now := base()
		// Distinct sessions (users, sids, methods) under one ID.
		id := sig()
		ls := make([]*core.LoginSession, Racers)
		for i := range ls {
			ls[i] = newSession(now)
			ls[i].ID = id
			ls[i].AMR = []string{fmt.Sprintf("m%d", i), "pwd"}
		}
		errs := make([]error, Racers)
		race(Racers, func(i int) { errs[i] = s.CreateLoginSession(bg, ls[i]) })
		var o outcome
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil:
				o.winners++
				winner = i
			case errors.Is(err, core.ErrExists):
				o.lost++
			default:
				o.other = append(o.other, err.Error())
			}
		}
		winners = append(winners, o.winners)
		if o.winners != 1 || o.lost != Racers-1 {
			t.Errorf("round %d: %s; want 1 created, %d ErrExists", round, &o, Racers-1)
			continue
		}
		// The stored session is the winner's, whole.
		diffSession(t, fmt.Sprintf("round %d: the session stored by the race", round), ls[winner], getSession(t, s, id, now))
	}
	t.Logf("CreateLoginSession: %d rounds × %d racers on one ID; created per round %v", Rounds, Racers, winners)
}
