package storagetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oauth2kit/oauth2kit/core"
)

// SessionClientsStore is what RunSessionClients needs: a Store with the
// core.SessionClientStore capability.
type SessionClientsStore interface {
	Store
	core.SessionClientStore
}

// RunSessionClients runs the sub-suite of the core.SessionClientStore
// capability (Run runs it too, as SessionClients, when the store has the
// capability): CreateLoginSession keeps ClientIDs; AddSessionClient
// appends a client once, in order, to the live session with that SID only,
// answers ErrNotFound and records nothing for an unknown, ended or expired
// session, and refuses a client beyond core.MaxSessionClients with
// core.ErrTooManySessionClients; TakeLoginSession ends a session and
// returns it with its clients, ErrNotFound for none live (ending an
// expired one all the same); TakeUserLoginSessions ends all of one user's
// sessions and returns the live ones, leaving other users' alone; the
// store hands out copies; a cancelled context changes nothing; racing
// additions to one session all land, and an addition racing a take never
// brings the session back. newStore is called once per subtest; it may
// return the same store each time.
func RunSessionClients(t *testing.T, newStore func(t *testing.T) SessionClientsStore) {
	t.Helper()
	h := helper(newStore)
	t.Run("CreateKeepsClients", h(testSessionClientsCreate))
	t.Run("AddInOrderOnce", h(testSessionClientsAdd))
	t.Run("AddToNoLiveSession", h(testSessionClientsAddMissing))
	t.Run("AddBounded", h(testSessionClientsBound))
	t.Run("Take", h(testSessionClientsTake))
	t.Run("TakeUser", h(testSessionClientsTakeUser))
	t.Run("CopiesNotShared", h(testSessionClientsIsolation))
	t.Run("CancelledContext", h(testSessionClientsCancelled))
	t.Run("Concurrency", func(t *testing.T) {
		t.Run("Add", h(testRaceAddSessionClient))
		t.Run("AddWhileTaking", h(testRaceAddTake))
	})
}

// runSessionClientsIfAble is Run's entry to the sub-suite: skipped for a
// store without the capability.
func runSessionClientsIfAble(newStore func(t *testing.T) Store) func(t *testing.T) {
	return func(t *testing.T) {
		if _, ok := newStore(t).(SessionClientsStore); !ok {
			t.Skip("the store does not implement core.SessionClientStore")
		}
		RunSessionClients(t, func(t *testing.T) SessionClientsStore {
			s, ok := newStore(t).(SessionClientsStore)
			if !ok {
				t.Fatal("newStore returned a store without core.SessionClientStore")
			}
			return s
		})
	}
}

// addClient calls AddSessionClient and fails the test on an error.
func addClient(t *testing.T, s SessionClientsStore, sid, clientID string, now time.Time) {
	t.Helper()
	if err := s.AddSessionClient(bg, sid, clientID, now); err != nil {
		t.Fatalf("AddSessionClient(%q): %v", clientID, err)
	}
}

// clientIDs returns n fresh client ids shaped like the server's: random
// ones, and a CIMD URL with a comma and quotes (a list encoding must keep
// them).
func clientIDs(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = uid("client")
	}
	if n > 1 {
		out[1] = "https://" + uid("cimd") + `.example/client.json?a=1,2&q="x"`
	}
	return out
}

func testSessionClientsCreate(t *testing.T, s SessionClientsStore) {
	now := base()
	want := newSession(now)
	want.ClientIDs = clientIDs(3)
	createSession(t, s, want)
	diffSession(t, "GetLoginSession of a session created with ClientIDs", want, getSession(t, s, want.ID, now))
}

func testSessionClientsAdd(t *testing.T, s SessionClientsStore) {
	now := base()
	ls := newSession(now)
	createSession(t, s, ls)
	other := newSession(now)
	createSession(t, s, other)
	ids := clientIDs(3)
	for _, id := range []string{ids[0], ids[1], ids[0], ids[2], ids[1]} {
		addClient(t, s, ls.SID, id, now)
	}
	want := *ls
	want.ClientIDs = ids
	diffSession(t, "the session after adding three clients, two of them twice", &want, getSession(t, s, ls.ID, now))
	// Every other field is as created, and the other session has none.
	diffSession(t, "another session", other, getSession(t, s, other.ID, now))
	// The SID is compared byte for byte.
	for _, sid := range []string{ls.SID[:len(ls.SID)-1], ls.SID + " ", strings.ToUpper(ls.SID), ls.ID} {
		wantErr(t, fmt.Sprintf("AddSessionClient(%q)", sid), s.AddSessionClient(bg, sid, uid("stranger"), now), core.ErrNotFound)
	}
	diffSession(t, "the session after adding under a prefix, a padded SID and its ID", &want, getSession(t, s, ls.ID, now))
}

func testSessionClientsAddMissing(t *testing.T, s SessionClientsStore) {
	now := base()
	wantErr(t, "AddSessionClient to an unknown session", s.AddSessionClient(bg, uid("sid"), uid("client"), now), core.ErrNotFound)
	wantErr(t, "AddSessionClient to the empty SID", s.AddSessionClient(bg, "", uid("client"), now), core.ErrNotFound)
	ended := newSession(now)
	createSession(t, s, ended)
	wantErr(t, "EndLoginSession", s.EndLoginSession(bg, ended.ID), nil)
	wantErr(t, "AddSessionClient to an ended session", s.AddSessionClient(bg, ended.SID, uid("client"), now), core.ErrNotFound)
	noSession(t, s, "GetLoginSession of an ended session after AddSessionClient", ended.ID, now)

	expiring := newSession(now)
	expiring.ExpiresAt = now.Add(time.Minute)
	createSession(t, s, expiring)
	err := s.AddSessionClient(bg, expiring.SID, uid("client"), expiring.ExpiresAt) // expired at that now
	wantErr(t, "AddSessionClient at the session's expiry", err, core.ErrNotFound)
	diffSession(t, "a session after AddSessionClient at its expiry", expiring, getSession(t, s, expiring.ID, now))
}

func testSessionClientsBound(t *testing.T, s SessionClientsStore) {
	now := base()
	ls := newSession(now)
	createSession(t, s, ls)
	ids := clientIDs(core.MaxSessionClients)
	for _, id := range ids {
		addClient(t, s, ls.SID, id, now)
	}
	err := s.AddSessionClient(bg, ls.SID, uid("one-too-many"), now)
	wantErr(t, fmt.Sprintf("AddSessionClient of client %d", core.MaxSessionClients+1), err, core.ErrTooManySessionClients)
	// A client already there is no addition.
	addClient(t, s, ls.SID, ids[7], now)
	want := *ls
	want.ClientIDs = ids
	diffSession(t, "a full session", &want, getSession(t, s, ls.ID, now))
}

func testSessionClientsTake(t *testing.T, s SessionClientsStore) {
	now := base()
	ls := newSession(now)
	createSession(t, s, ls)
	other := newSession(now)
	createSession(t, s, other)
	ids := clientIDs(2)
	for _, id := range ids {
		addClient(t, s, ls.SID, id, now)
	}
	got, err := s.TakeLoginSession(bg, ls.ID, now)
	if err != nil {
		t.Fatalf("TakeLoginSession: %v", err)
	}
	want := *ls
	want.ClientIDs = ids
	diffSession(t, "TakeLoginSession", &want, got)
	noSession(t, s, "GetLoginSession after TakeLoginSession", ls.ID, now)
	_, err = s.TakeLoginSession(bg, ls.ID, now)
	wantErr(t, "TakeLoginSession of a taken session", err, core.ErrNotFound)
	_, err = s.TakeLoginSession(bg, sig(), now)
	wantErr(t, "TakeLoginSession of an unknown session", err, core.ErrNotFound)
	_, err = s.TakeLoginSession(bg, other.ID[:len(other.ID)-1], now)
	wantErr(t, "TakeLoginSession of a prefix", err, core.ErrNotFound)
	diffSession(t, "a session after TakeLoginSession of another and of its prefix", other, getSession(t, s, other.ID, now))
	wantErr(t, "AddSessionClient to a taken session", s.AddSessionClient(bg, ls.SID, uid("late"), now), core.ErrNotFound)
	noSession(t, s, "GetLoginSession after an AddSessionClient to a taken session", ls.ID, now)

	// An expired session is not returned, but it is ended: read at an
	// earlier now, it is gone.
	expiring := newSession(now)
	expiring.ExpiresAt = now.Add(time.Minute)
	createSession(t, s, expiring)
	_, err = s.TakeLoginSession(bg, expiring.ID, expiring.ExpiresAt)
	wantErr(t, "TakeLoginSession at the session's expiry", err, core.ErrNotFound)
	noSession(t, s, "GetLoginSession before its expiry of a session taken after it", expiring.ID, now)
}

func testSessionClientsTakeUser(t *testing.T, s SessionClientsStore) {
	now := base()
	user := uid("user") + " Zoë"
	var mine []*core.LoginSession
	for i := 0; i < 3; i++ {
		ls := newSession(now)
		ls.UserID = user
		createSession(t, s, ls)
		ls.ClientIDs = clientIDs(i)
		for _, id := range ls.ClientIDs {
			addClient(t, s, ls.SID, id, now)
		}
		mine = append(mine, ls)
	}
	expiring := newSession(now)
	expiring.UserID, expiring.ExpiresAt = user, now.Add(time.Minute)
	createSession(t, s, expiring)
	later := now.Add(2 * time.Minute) // expiring has expired; the others live
	// Users whose ids the user's is a prefix of, or differs from in case.
	others := []*core.LoginSession{newSession(now), newSession(now), newSession(now)}
	others[0].UserID, others[1].UserID = user+"x", strings.TrimSuffix(user, " Zoë")+" ZOË"
	for _, o := range others {
		createSession(t, s, o)
	}
	got, err := s.TakeUserLoginSessions(bg, user, later)
	if err != nil {
		t.Fatalf("TakeUserLoginSessions: %v", err)
	}
	if len(got) != len(mine) {
		t.Fatalf("TakeUserLoginSessions returned %d sessions, want the %d live ones", len(got), len(mine))
	}
	for _, want := range mine {
		i := slices.IndexFunc(got, func(ls *core.LoginSession) bool { return ls != nil && ls.ID == want.ID })
		if i < 0 {
			t.Errorf("TakeUserLoginSessions did not return session %s", want.SID)
			continue
		}
		diffSession(t, "a session TakeUserLoginSessions returned", want, got[i])
		noSession(t, s, "GetLoginSession of a session TakeUserLoginSessions ended", want.ID, now)
	}
	noSession(t, s, "GetLoginSession (before its expiry) of an expired session of the user", expiring.ID, now)
	for _, o := range others {
		diffSession(t, "another user's session after TakeUserLoginSessions", o, getSession(t, s, o.ID, now))
	}
	got, err = s.TakeUserLoginSessions(bg, user, later)
	if err != nil || len(got) != 0 {
		t.Errorf("a second TakeUserLoginSessions: %d sessions, %v; want none, no error", len(got), err)
	}
	if got, err := s.TakeUserLoginSessions(bg, uid("nobody"), now); err != nil || len(got) != 0 {
		t.Errorf("TakeUserLoginSessions of a user without sessions: %d sessions, %v", len(got), err)
	}
}

func testSessionClientsIsolation(t *testing.T, s SessionClientsStore) {
	now := base()
	ls := newSession(now)
	ls.ClientIDs = clientIDs(2)
	if err := s.CreateLoginSession(bg, ls); err != nil {
		t.Fatalf("CreateLoginSession: %v", err)
	}
	want := *ls
	want.ClientIDs = slices.Clone(ls.ClientIDs)
	ls.ClientIDs[0] = "evil" // the caller's list after the call
	got := getSession(t, s, ls.ID, now)
	got.ClientIDs[1] = "evil" // a returned list
	diffSession(t, "the session after the caller changed lists it gave and got", &want, getSession(t, s, ls.ID, now))
	taken, err := s.TakeLoginSession(bg, ls.ID, now)
	if err != nil {
		t.Fatalf("TakeLoginSession: %v", err)
	}
	diffSession(t, "TakeLoginSession", &want, taken)
}

func testSessionClientsCancelled(t *testing.T, s SessionClientsStore) {
	now := base()
	ls := newSession(now)
	createSession(t, s, ls)
	ctx, cancel := context.WithCancel(bg)
	cancel()
	canceled := func(what string, err error) {
		t.Helper()
		if err == nil {
			t.Errorf("%s with a cancelled context: no error", what)
		}
	}
	canceled("AddSessionClient", s.AddSessionClient(ctx, ls.SID, uid("client"), now))
	_, err := s.TakeLoginSession(ctx, ls.ID, now)
	canceled("TakeLoginSession", err)
	_, err = s.TakeUserLoginSessions(ctx, ls.UserID, now)
	canceled("TakeUserLoginSessions", err)
	diffSession(t, "the session after cancelled calls", ls, getSession(t, s, ls.ID, now))
}

func testRaceAddSessionClient(t *testing.T, s SessionClientsStore) {
	for round := 0; round < Rounds/4; round++ {
		now := base()
		ls := newSession(now)
		createSession(t, s, ls)
		ids := clientIDs(Racers)
		errs := make([]error, Racers)
		race(Racers, func(i int) { errs[i] = s.AddSessionClient(bg, ls.SID, ids[i], now) })
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d: AddSessionClient racer %d: %v", round, i, err)
			}
		}
		got := getSession(t, s, ls.ID, now)
		if a, b := slices.Sorted(slices.Values(got.ClientIDs)), slices.Sorted(slices.Values(ids)); !slices.Equal(a, b) {
			t.Fatalf("round %d: %d racers added a client each; the session has %d: %q", round, Racers, len(got.ClientIDs), got.ClientIDs)
		}
	}
}

// testRaceAddTake races additions with the session's end: whatever the
// order, the taken session lists exactly the clients whose addition
// succeeded (each once; the others found the session ended:
// ErrNotFound), and the session stays ended.
func testRaceAddTake(t *testing.T, s SessionClientsStore) {
	var returned atomic.Int32
	for round := 0; round < Rounds/4; round++ {
		now := base()
		ls := newSession(now)
		createSession(t, s, ls)
		ids := clientIDs(Racers - 1)
		var taken *core.LoginSession
		var takeErr error
		errs := make([]error, Racers-1)
		race(Racers, func(i int) {
			if i == Racers-1 {
				taken, takeErr = s.TakeLoginSession(bg, ls.ID, now)
				return
			}
			errs[i] = s.AddSessionClient(bg, ls.SID, ids[i], now)
		})
		if takeErr != nil {
			t.Fatalf("round %d: TakeLoginSession: %v", round, takeErr)
		}
		var landed []string
		for i, err := range errs {
			switch {
			case err == nil:
				landed = append(landed, ids[i])
			case !errors.Is(err, core.ErrNotFound):
				t.Fatalf("round %d: AddSessionClient racer %d: %v", round, i, err)
			}
		}
		if a, b := slices.Sorted(slices.Values(taken.ClientIDs)), slices.Sorted(slices.Values(landed)); !slices.Equal(a, b) {
			t.Fatalf("round %d: the taken session lists %q; the additions that succeeded were %q", round, taken.ClientIDs, landed)
		}
		returned.Add(int32(len(taken.ClientIDs)))
		noSession(t, s, fmt.Sprintf("round %d: GetLoginSession after the take", round), ls.ID, now)
	}
	t.Logf("AddSessionClient racing TakeLoginSession: %d rounds × %d adders; %d clients came back with the taken sessions", Rounds/4, Racers-1, returned.Load())
}
