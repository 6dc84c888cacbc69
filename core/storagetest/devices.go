package storagetest

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oauth2kit/oauth2kit/core"
)

// DeviceStore is what RunDevices needs: a Store with the core.DeviceStore
// capability (an approval's grant is redeemed with RedeemCode).
type DeviceStore interface {
	Store
	core.DeviceStore
}

// RunDevices runs the sub-suite of the core.DeviceStore capability (Run
// runs it too, as Devices, when the store has the capability): a device
// code round-trips every field and is found by either signature; a
// duplicate of either signature is refused; a decision is recorded once,
// an approval together with its grant (redeemable once) and a denial
// without one; expired and unknown codes cannot be decided; polls inside
// the interval are told apart and slow_down only lengthens it; and of
// Racers concurrent decisions, redemptions or polls exactly one wins,
// round after round.
func RunDevices(t *testing.T, newStore func(t *testing.T) DeviceStore) {
	t.Helper()
	h := helper(newStore)
	t.Run("RoundTrip", h(testDeviceRoundTrip))
	t.Run("Duplicates", h(testDeviceDuplicates))
	t.Run("Approve", h(testDeviceApprove))
	t.Run("Deny", h(testDeviceDeny))
	t.Run("ExpiredOrUnknown", h(testDeviceExpired))
	t.Run("Polling", h(testDevicePolling))
	t.Run("Concurrency", func(t *testing.T) {
		t.Run("Decide", h(testRaceDeviceDecide))
		t.Run("Redeem", h(testRaceDeviceRedeem))
		t.Run("Poll", h(testRaceDevicePoll))
	})
}

func runDevicesIfAble(newStore func(t *testing.T) Store) func(t *testing.T) {
	return func(t *testing.T) {
		if _, ok := newStore(t).(core.DeviceStore); !ok {
			t.Skip("the store does not implement core.DeviceStore")
		}
		RunDevices(t, func(t *testing.T) DeviceStore {
			s, ok := newStore(t).(DeviceStore)
			if !ok {
				t.Fatal("newStore returned a store without core.DeviceStore")
			}
			return s
		})
	}
}

func newDevice(now time.Time) *core.DeviceCode {
	return &core.DeviceCode{
		Sig: sig(), UserCodeSig: sig(), ClientID: uid("client") + " Zoë", Scope: "read write:all",
		Resource:  "https://api.example.com/ https://mcp.example.com/mcp",
		CreatedAt: now, ExpiresAt: now.Add(10 * time.Minute), Interval: 5 * time.Second,
	}
}

func createDevice(t *testing.T, s DeviceStore, d *core.DeviceCode) {
	t.Helper()
	if err := s.CreateDeviceCode(bg, d); err != nil {
		t.Fatalf("CreateDeviceCode: %v", err)
	}
}

func getDevice(t *testing.T, s DeviceStore, sig string) *core.DeviceCode {
	t.Helper()
	d, err := s.GetDeviceCode(bg, sig)
	if err != nil {
		t.Fatalf("GetDeviceCode: %v", err)
	}
	return d
}

func diffDevice(t *testing.T, what string, want, got *core.DeviceCode) {
	t.Helper()
	var f differ
	f.str("Sig", want.Sig, got.Sig)
	f.str("UserCodeSig", want.UserCodeSig, got.UserCodeSig)
	f.str("ClientID", want.ClientID, got.ClientID)
	f.str("Scope", want.Scope, got.Scope)
	f.str("Resource", want.Resource, got.Resource)
	f.time("CreatedAt", want.CreatedAt, got.CreatedAt)
	f.time("ExpiresAt", want.ExpiresAt, got.ExpiresAt)
	f.time("NextPollAt", want.NextPollAt, got.NextPollAt)
	f.timePtr("DecidedAt", want.DecidedAt, got.DecidedAt)
	if want.Interval != got.Interval {
		f.add("Interval", want.Interval, got.Interval)
	}
	if want.Approved != got.Approved {
		f.add("Approved", want.Approved, got.Approved)
	}
	f.str("UserID", want.UserID, got.UserID)
	f.report(t, what)
}

func approvalGrant(d *core.DeviceCode, now time.Time) *core.Grant {
	g := newGrant(now)
	g.CodeSig, g.ClientID, g.RedirectURI, g.CodeChallenge, g.CodeChallengeMethod, g.DPoPJKT = d.Sig, d.ClientID, "", "", "", ""
	g.ExpiresAt = d.ExpiresAt
	return g
}

func testDeviceRoundTrip(t *testing.T, s DeviceStore) {
	now := base()
	d := newDevice(now)
	createDevice(t, s, d)
	diffDevice(t, "GetDeviceCode", d, getDevice(t, s, d.Sig))
	got, err := s.GetDeviceCodeByUserCode(bg, d.UserCodeSig)
	if err != nil {
		t.Fatalf("GetDeviceCodeByUserCode: %v", err)
	}
	diffDevice(t, "GetDeviceCodeByUserCode", d, got)
	got.Scope = "changed"
	diffDevice(t, "GetDeviceCode after changing a copy", d, getDevice(t, s, d.Sig))
	_, err = s.GetDeviceCode(bg, sig())
	wantErr(t, "GetDeviceCode of an unknown signature", err, core.ErrNotFound)
	_, err = s.GetDeviceCodeByUserCode(bg, sig())
	wantErr(t, "GetDeviceCodeByUserCode of an unknown signature", err, core.ErrNotFound)
	_, err = s.GetDeviceCodeByUserCode(bg, d.Sig)
	wantErr(t, "GetDeviceCodeByUserCode by the device code's signature", err, core.ErrNotFound)
}

func testDeviceDuplicates(t *testing.T, s DeviceStore) {
	now := base()
	d := newDevice(now)
	createDevice(t, s, d)
	same := newDevice(now)
	same.Sig = d.Sig
	wantErr(t, "CreateDeviceCode with an existing device code signature", s.CreateDeviceCode(bg, same), core.ErrExists)
	same = newDevice(now)
	same.UserCodeSig = d.UserCodeSig
	wantErr(t, "CreateDeviceCode with an existing user code signature", s.CreateDeviceCode(bg, same), core.ErrExists)
	if _, err := s.GetDeviceCode(bg, same.Sig); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("the refused device code was stored: %v", err)
	}
	diffDevice(t, "the first device code after the refusals", d, getDevice(t, s, d.Sig))
}

func testDeviceApprove(t *testing.T, s DeviceStore) {
	now := base()
	d := newDevice(now)
	createDevice(t, s, d)
	at := now.Add(30 * time.Second)
	g := approvalGrant(d, now)
	if err := s.DecideDeviceCode(bg, d.Sig, at, true, "alice Zoë", g); err != nil {
		t.Fatalf("DecideDeviceCode approve: %v", err)
	}
	want := *d
	want.DecidedAt, want.Approved, want.UserID = tp(at), true, "alice Zoë"
	diffDevice(t, "the approved device code", &want, getDevice(t, s, d.Sig))
	wantErr(t, "a second approval", s.DecideDeviceCode(bg, d.Sig, at, true, "bob", approvalGrant(d, now)), core.ErrCodeUsed)
	wantErr(t, "a denial after the approval", s.DecideDeviceCode(bg, d.Sig, at, false, "bob", nil), core.ErrCodeUsed)
	got, err := s.RedeemCode(bg, d.Sig, at.Add(5*time.Second), func(*core.Grant) (*core.RefreshToken, error) { return nil, nil })
	if err != nil {
		t.Fatalf("RedeemCode of the approval's grant: %v", err)
	}
	diffGrant(t, "the approval's grant", g, got, false)
	_, err = s.RedeemCode(bg, d.Sig, at.Add(6*time.Second), neverIssueCode(t))
	wantErr(t, "a second redemption", err, core.ErrCodeUsed)
}

func testDeviceDeny(t *testing.T, s DeviceStore) {
	now := base()
	d := newDevice(now)
	createDevice(t, s, d)
	if err := s.DecideDeviceCode(bg, d.Sig, now, false, "alice", nil); err != nil {
		t.Fatalf("DecideDeviceCode deny: %v", err)
	}
	want := *d
	want.DecidedAt, want.UserID = tp(now), "alice"
	diffDevice(t, "the denied device code", &want, getDevice(t, s, d.Sig))
	_, err := s.RedeemCode(bg, d.Sig, now, neverIssueCode(t))
	wantErr(t, "RedeemCode after a denial", err, core.ErrNotFound)
	wantErr(t, "an approval after the denial", s.DecideDeviceCode(bg, d.Sig, now, true, "alice", approvalGrant(d, now)), core.ErrCodeUsed)
	if _, err := s.RedeemCode(bg, d.Sig, now, neverIssueCode(t)); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("the refused approval stored its grant: %v", err)
	}
}

func testDeviceExpired(t *testing.T, s DeviceStore) {
	now := base()
	d := newDevice(now)
	createDevice(t, s, d)
	wantErr(t, "approving at the expiry", s.DecideDeviceCode(bg, d.Sig, d.ExpiresAt, true, "alice", approvalGrant(d, now)), core.ErrNotFound)
	wantErr(t, "denying after the expiry", s.DecideDeviceCode(bg, d.Sig, d.ExpiresAt.Add(time.Second), false, "alice", nil), core.ErrNotFound)
	if _, err := s.RedeemCode(bg, d.Sig, now, neverIssueCode(t)); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("the expired approval stored its grant: %v", err)
	}
	diffDevice(t, "the expired device code", d, getDevice(t, s, d.Sig))
	unknown := sig()
	g := approvalGrant(d, now)
	g.CodeSig = unknown
	wantErr(t, "approving an unknown device code", s.DecideDeviceCode(bg, unknown, now, true, "alice", g), core.ErrNotFound)
	_, err := s.PollDeviceCode(bg, unknown, now, now)
	wantErr(t, "polling an unknown device code", err, core.ErrNotFound)
}

func testDevicePolling(t *testing.T, s DeviceStore) {
	now := base()
	d := newDevice(now)
	createDevice(t, s, d)
	poll := func(at, next time.Time) bool {
		t.Helper()
		ok, err := s.PollDeviceCode(bg, d.Sig, at, next)
		if err != nil {
			t.Fatalf("PollDeviceCode: %v", err)
		}
		return ok
	}
	if !poll(now, now.Add(4*time.Second)) {
		t.Fatal("the first poll was refused")
	}
	if got := getDevice(t, s, d.Sig); !sameTime(got.NextPollAt, now.Add(4*time.Second)) {
		t.Errorf("NextPollAt %v, want %v", got.NextPollAt, now.Add(4*time.Second))
	}
	if poll(now.Add(3*time.Second), now.Add(7*time.Second)) {
		t.Error("a poll before NextPollAt was accepted")
	}
	if got := getDevice(t, s, d.Sig); !sameTime(got.NextPollAt, now.Add(4*time.Second)) {
		t.Errorf("a refused poll moved NextPollAt to %v", got.NextPollAt)
	}
	if err := s.SlowDownDeviceCode(bg, d.Sig, 10*time.Second, now.Add(12*time.Second)); err != nil {
		t.Fatalf("SlowDownDeviceCode: %v", err)
	}
	if got := getDevice(t, s, d.Sig); got.Interval != 10*time.Second || !sameTime(got.NextPollAt, now.Add(12*time.Second)) {
		t.Errorf("after slow_down: interval %v, next %v", got.Interval, got.NextPollAt)
	}
	if poll(now.Add(5*time.Second), now.Add(14*time.Second)) {
		t.Error("a poll inside the longer interval was accepted")
	}
	if !poll(now.Add(12*time.Second), now.Add(21*time.Second)) {
		t.Error("a poll at NextPollAt was refused")
	}
	// The interval only grows.
	if err := s.SlowDownDeviceCode(bg, d.Sig, 5*time.Second, now.Add(25*time.Second)); err != nil {
		t.Fatalf("SlowDownDeviceCode: %v", err)
	}
	if got := getDevice(t, s, d.Sig); got.Interval != 10*time.Second {
		t.Errorf("a shorter slow_down interval replaced the longer: %v", got.Interval)
	}
}

func testRaceDeviceDecide(t *testing.T, s DeviceStore) {
	winners := make([]int, 0, Rounds)
	for round := range Rounds {
		now := base()
		d := newDevice(now)
		createDevice(t, s, d)
		errs := make([]error, Racers)
		race(Racers, func(i int) {
			// Half approve, half deny: one decision in all.
			if i%2 == 0 {
				errs[i] = s.DecideDeviceCode(bg, d.Sig, now, true, uid("user"), approvalGrant(d, now))
			} else {
				errs[i] = s.DecideDeviceCode(bg, d.Sig, now, false, uid("user"), nil)
			}
		})
		var o outcome
		won := -1
		for i, err := range errs {
			switch {
			case err == nil:
				o.winners++
				won = i
			case errors.Is(err, core.ErrCodeUsed):
				o.lost++
			default:
				o.other = append(o.other, err.Error())
			}
		}
		winners = append(winners, o.winners)
		if o.winners != 1 || o.lost != Racers-1 {
			t.Errorf("round %d: %s; want 1 decision, %d ErrCodeUsed", round, &o, Racers-1)
			continue
		}
		got := getDevice(t, s, d.Sig)
		_, rerr := s.RedeemCode(bg, d.Sig, now, func(*core.Grant) (*core.RefreshToken, error) { return nil, nil })
		switch approved := won%2 == 0; {
		case got.Approved != approved:
			t.Errorf("round %d: stored Approved %v, but the winner approved: %v", round, got.Approved, approved)
		case approved && rerr != nil:
			t.Errorf("round %d: the winning approval's grant: %v", round, rerr)
		case !approved && !errors.Is(rerr, core.ErrNotFound):
			t.Errorf("round %d: a denial won, yet a grant was stored: %v", round, rerr)
		}
	}
	t.Logf("DecideDeviceCode: %d rounds × %d racers; winners per round %v", Rounds, Racers, winners)
}

func testRaceDeviceRedeem(t *testing.T, s DeviceStore) {
	for round := range Rounds {
		now := base()
		d := newDevice(now)
		createDevice(t, s, d)
		if err := s.DecideDeviceCode(bg, d.Sig, now, true, "alice", approvalGrant(d, now)); err != nil {
			t.Fatalf("DecideDeviceCode: %v", err)
		}
		var issued atomic.Int32
		errs := make([]error, Racers)
		race(Racers, func(i int) {
			_, errs[i] = s.RedeemCode(bg, d.Sig, now.Add(time.Second), func(*core.Grant) (*core.RefreshToken, error) {
				issued.Add(1)
				return nil, nil
			})
		})
		var o outcome
		for _, err := range errs {
			switch {
			case err == nil:
				o.winners++
			case errors.Is(err, core.ErrCodeUsed):
				o.lost++
			default:
				o.other = append(o.other, err.Error())
			}
		}
		if o.winners != 1 || o.lost != Racers-1 || issued.Load() != 1 {
			t.Errorf("round %d: %s, issue called %d times; want one token response", round, &o, issued.Load())
		}
	}
}

func testRaceDevicePoll(t *testing.T, s DeviceStore) {
	for round := range Rounds {
		now := base()
		d := newDevice(now)
		createDevice(t, s, d)
		var inTime atomic.Int32
		errs := make([]error, Racers)
		race(Racers, func(i int) {
			ok, err := s.PollDeviceCode(bg, d.Sig, now, now.Add(4*time.Second))
			if ok {
				inTime.Add(1)
			}
			errs[i] = err
		})
		for _, err := range errs {
			if err != nil {
				t.Fatalf("round %d: PollDeviceCode: %v", round, err)
			}
		}
		if inTime.Load() != 1 {
			t.Errorf("round %d: %d of %d simultaneous polls were in time, want 1", round, inTime.Load(), Racers)
		}
	}
}
