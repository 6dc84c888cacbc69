package storagetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oauth2kit/oauth2kit/core"
)

// UserGrantsStore is what RunUserGrants needs: a Store with the
// core.UserGrantStore capability.
type UserGrantsStore interface {
	Store
	core.UserGrantStore
}

// RunUserGrants runs the sub-suite of the core.UserGrantStore capability:
// RevokeUserGrants (every family of the user's codes and refresh tokens,
// or of one client's, each once; other users, other clients and later
// families untouched; a revoked family's refresh tokens stop rotating,
// also one issued by a code created before the revocation and redeemed
// after it), UserClients (consents merged with live, unrevoked grants and
// refresh tokens, at the given time, in byte order), DeleteConsent,
// cancelled contexts, and revocations racing with rotations. newStore is
// called once per subtest; it may return the same store each time.
func RunUserGrants(t *testing.T, newStore func(t *testing.T) UserGrantsStore) {
	t.Helper()
	h := helper(newStore)
	t.Run("RevokeUserGrants", func(t *testing.T) {
		t.Run("EveryFamilyOfTheUser", h(testRevokeUser))
		t.Run("OneClient", h(testRevokeUserClient))
		t.Run("ExactUserAndClient", h(testRevokeUserExact))
		t.Run("NoUser", h(testRevokeNoUser))
	})
	t.Run("UserClients", h(testUserClients))
	t.Run("DeleteConsent", h(testDeleteConsent))
	t.Run("CancelledContext", h(testUserGrantsCancelled))
	t.Run("Concurrency", h(testRaceRevokeUser))
}

// seedFamily stores a family of user at client: a code redeemed for a
// refresh token. It returns the family id and the token.
func seedFamily(t *testing.T, s Store, now time.Time, user, client string) (string, *core.RefreshToken) {
	t.Helper()
	rt := newRefresh(now, uid("family"), client)
	rt.UserID = user
	seedRefresh(t, s, rt, now)
	return rt.FamilyID, rt
}

// pendingCode stores an unredeemed code of user at client, kept until it
// expires.
func pendingCode(t *testing.T, s Store, now time.Time, user, client string) *core.Grant {
	t.Helper()
	g := newGrant(now)
	g.UserID, g.ClientID, g.KeepUntil = user, client, time.Time{}
	createGrant(t, s, g)
	return g
}

// revokeUser calls RevokeUserGrants and returns the families sorted,
// failing on an error or a family returned twice.
func revokeUser(t *testing.T, s UserGrantsStore, user, client string, keep time.Time) []string {
	t.Helper()
	fams, err := s.RevokeUserGrants(bg, user, client, keep)
	if err != nil {
		t.Fatalf("RevokeUserGrants(%q, %q): %v", user, client, err)
	}
	return sortedOnce(t, "RevokeUserGrants", fams)
}

func sortedOnce(t *testing.T, what string, fams []string) []string {
	t.Helper()
	out := slices.Clone(fams)
	slices.Sort(out)
	if c := slices.Compact(slices.Clone(out)); len(c) != len(out) {
		t.Errorf("%s returned a family twice: %q", what, fams)
	}
	return out
}

func sorted(l ...string) []string {
	out := slices.Clone(l)
	slices.Sort(out)
	return out
}

func wantRevoked(t *testing.T, s Store, fam string, want bool) {
	t.Helper()
	r, err := s.IsFamilyRevoked(bg, fam)
	if err != nil || r != want {
		t.Errorf("IsFamilyRevoked(%s) = %v, %v; want %v", fam, r, err, want)
	}
}

// wantRotationRefused checks that rt is refused as rotated (its family
// revoked), returned whole.
func wantRotationRefused(t *testing.T, s Store, rt *core.RefreshToken, at time.Time) {
	t.Helper()
	got, err := s.RotateRefreshToken(bg, rt.Sig, at, neverIssueRefresh(t))
	wantErr(t, "RotateRefreshToken in a family revoked with its user", err, core.ErrTokenRotated)
	if got == nil || got.Sig != rt.Sig || got.FamilyID != rt.FamilyID {
		t.Errorf("RotateRefreshToken in a revoked family returned %+v, want the token", got)
	}
}

func wantRotates(t *testing.T, s Store, rt *core.RefreshToken, at time.Time) *core.RefreshToken {
	t.Helper()
	next := newRefresh(at, rt.FamilyID, rt.ClientID)
	next.UserID = rt.UserID
	if _, err := s.RotateRefreshToken(bg, rt.Sig, at, rotateTo(next)); err != nil {
		t.Errorf("RotateRefreshToken of %s (family %s): %v, want a rotation", rt.UserID, rt.FamilyID, err)
	}
	return next
}

func testRevokeUser(t *testing.T, s UserGrantsStore) {
	now := base()
	user, other := uid("user"), uid("user")
	ca, cb := uid("client"), uid("client")
	f1, rt1 := seedFamily(t, s, now, user, ca)
	f2, rt2 := seedFamily(t, s, now, user, ca)
	f3, rt3 := seedFamily(t, s, now, user, cb)
	rt3b := wantRotates(t, s, rt3, now.Add(time.Second)) // a chain: the family has two tokens
	pending := pendingCode(t, s, now, user, ca)
	// A family that holds only an access token: its code was redeemed
	// without a refresh token and has expired, but KeepUntil (past the
	// access token's expiry) keeps the grant, and so the family, findable.
	accessOnly := newGrant(now.Add(-2 * time.Hour))
	accessOnly.UserID, accessOnly.ClientID = user, cb
	accessOnly.ExpiresAt, accessOnly.KeepUntil = now.Add(-time.Hour), now.Add(time.Hour)
	createGrant(t, s, accessOnly)
	if _, err := s.RedeemCode(bg, accessOnly.CodeSig, now.Add(-90*time.Minute), func(*core.Grant) (*core.RefreshToken, error) { return nil, nil }); err != nil {
		t.Fatalf("RedeemCode: %v", err)
	}
	fo, rto := seedFamily(t, s, now, other, ca)
	otherPending := pendingCode(t, s, now, other, ca)

	keep := now.Add(48 * time.Hour)
	got := revokeUser(t, s, user, "", keep)
	if want := sorted(f1, f2, f3, pending.ID, accessOnly.ID); !slices.Equal(got, want) {
		t.Fatalf("RevokeUserGrants returned %q, want %q", got, want)
	}
	for _, f := range got {
		wantRevoked(t, s, f, true)
	}
	wantRevoked(t, s, fo, false)
	at := now.Add(time.Minute)
	for _, rt := range []*core.RefreshToken{rt1, rt2, rt3b} {
		wantRotationRefused(t, s, rt, at)
	}
	_, err := s.RotateRefreshToken(bg, rt3.Sig, at, neverIssueRefresh(t))
	wantErr(t, "RotateRefreshToken of a rotated-out token in a revoked family", err, core.ErrTokenRotated)
	wantRotates(t, s, rto, at) // another user's token

	// A code created before the revocation is expired by it: redeeming it
	// after finds nothing and issues nothing into the revoked family. (The
	// grant is still kept: the second revocation below finds its family.)
	_, err = s.RedeemCode(bg, pending.CodeSig, at, func(*core.Grant) (*core.RefreshToken, error) {
		t.Errorf("RedeemCode issued from a code of a revoked user")
		return nil, nil
	})
	wantErr(t, "RedeemCode of a code created before the revocation", err, core.ErrNotFound)
	wantRevoked(t, s, pending.ID, true)
	// Another user's code still redeems.
	if _, err := s.RedeemCode(bg, otherPending.CodeSig, at, func(*core.Grant) (*core.RefreshToken, error) { return nil, nil }); err != nil {
		t.Errorf("RedeemCode of another user's code: %v", err)
	}

	// A family made after the revocation is not affected.
	fn, rtn := seedFamily(t, s, at, user, ca)
	wantRevoked(t, s, fn, false)
	rtn = wantRotates(t, s, rtn, at.Add(time.Second))

	// Revoking again finds every family, the revoked ones included.
	got = revokeUser(t, s, user, "", keep)
	if want := sorted(f1, f2, f3, pending.ID, accessOnly.ID, fn); !slices.Equal(got, want) {
		t.Errorf("second RevokeUserGrants returned %q, want %q", got, want)
	}
	wantRotationRefused(t, s, rtn, at.Add(2*time.Second))
	wantRevoked(t, s, fo, false)
}

func testRevokeUserClient(t *testing.T, s UserGrantsStore) {
	now := base()
	user, other := uid("user"), uid("user")
	ca, cb := uid("client"), uid("client")
	fa, rta := seedFamily(t, s, now, user, ca)
	fb, rtb := seedFamily(t, s, now, user, cb)
	pending := pendingCode(t, s, now, user, ca)
	pendingB := pendingCode(t, s, now, user, cb)
	fo, rto := seedFamily(t, s, now, other, ca)

	keep := now.Add(48 * time.Hour)
	if got := revokeUser(t, s, user, ca[:len(ca)-1], keep); len(got) != 0 {
		t.Errorf("RevokeUserGrants for a prefix of a client id revoked %q", got)
	}
	got := revokeUser(t, s, user, ca, keep)
	if want := sorted(fa, pending.ID); !slices.Equal(got, want) {
		t.Fatalf("RevokeUserGrants(user, client) returned %q, want %q", got, want)
	}
	wantRevoked(t, s, fa, true)
	wantRevoked(t, s, pending.ID, true)
	at := now.Add(time.Minute)
	wantRotationRefused(t, s, rta, at)
	for _, f := range []string{fb, pendingB.ID, fo} {
		wantRevoked(t, s, f, false)
	}
	wantRotates(t, s, rtb, at)
	wantRotates(t, s, rto, at)
}

func testRevokeUserExact(t *testing.T, s UserGrantsStore) {
	// User and client ids compare byte for byte: a prefix, a trailing
	// space or another case is another user (a database collation that
	// folds them would revoke, and list, someone else's grants).
	now := base()
	user, client := uid("user"), uid("client")
	f, rt := seedFamily(t, s, now, user, client)
	keep := now.Add(48 * time.Hour)
	for _, u := range []string{user[:len(user)-1], user + " ", strings.ToUpper(user), uid("nobody")} {
		if got := revokeUser(t, s, u, "", keep); len(got) != 0 {
			t.Errorf("RevokeUserGrants(%q) revoked %q", u, got)
		}
		if ucs, err := s.UserClients(bg, u, now); err != nil || len(ucs) != 0 {
			t.Errorf("UserClients(%q) = %+v, %v; want none", u, ucs, err)
		}
	}
	for _, c := range []string{client + " ", strings.ToUpper(client)} {
		if got := revokeUser(t, s, user, c, keep); len(got) != 0 {
			t.Errorf("RevokeUserGrants(user, %q) revoked %q", c, got)
		}
	}
	wantRevoked(t, s, f, false)
	wantRotates(t, s, rt, now.Add(time.Second))
}

func testRevokeNoUser(t *testing.T, s UserGrantsStore) {
	// Tokens without a user (a client credentials grant, should a store
	// hold one) are never revoked by a user revocation, not even one for
	// the empty user id: the store refuses it or revokes nothing.
	now := base()
	f, _ := seedFamily(t, s, now, "", uid("client"))
	fams, err := s.RevokeUserGrants(bg, "", "", now.Add(time.Hour))
	if err == nil && slices.Contains(fams, f) {
		t.Errorf("RevokeUserGrants for the empty user id revoked a family without a user")
	}
	wantRevoked(t, s, f, false)
}

func userClients(t *testing.T, s UserGrantsStore, user string, now time.Time) []core.UserClient {
	t.Helper()
	ucs, err := s.UserClients(bg, user, now)
	if err != nil {
		t.Fatalf("UserClients: %v", err)
	}
	return ucs
}

func showClients(l []core.UserClient) string {
	parts := make([]string, len(l))
	for i, uc := range l {
		parts[i] = fmt.Sprintf("{%s scope=%q active=%v}", uc.ClientID, uc.ConsentScope, uc.Active)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func wantClients(t *testing.T, what string, got, want []core.UserClient) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s:\n  got  %s\n  want %s", what, showClients(got), showClients(want))
	}
}

func testUserClients(t *testing.T, s UserGrantsStore) {
	now := base()
	user, other := uid("user"), uid("user")
	p := uid("uc")
	cA, cB, cC, cD, cE, cF, cG := p+"/a", p+"/b", p+"/c", p+"/d", p+"/e", p+"/F", p+"/g"
	consent := func(u, c, scope string) {
		t.Helper()
		if err := s.SaveConsent(bg, u, c, scope); err != nil {
			t.Fatal(err)
		}
	}
	consent(user, cA, "read") // a consent alone
	// A consent and a live family.
	consent(user, cB, "read write")
	seedFamily(t, s, now, user, cB)
	pendingCode(t, s, now, user, cC) // a pending code alone
	consent(user, cF, "x")           // "/F" sorts before "/a"
	// A revoked family.
	fe, _ := seedFamily(t, s, now, user, cE)
	if err := s.RevokeFamily(bg, fe, now.Add(48*time.Hour)); err != nil {
		t.Fatal(err)
	}
	// A dead family: code and refresh token expired.
	dead := newRefresh(now.Add(-3*time.Hour), uid("family"), cD)
	dead.UserID, dead.ExpiresAt = user, now.Add(-time.Hour)
	seedRefresh(t, s, dead, now.Add(-3*time.Hour))
	// An expired code kept (KeepUntil) for its family's access tokens.
	kept := newGrant(now.Add(-2 * time.Hour))
	kept.UserID, kept.ClientID = user, cG
	kept.ExpiresAt, kept.KeepUntil = now.Add(-time.Hour), now.Add(time.Hour)
	createGrant(t, s, kept)
	// Another user's consent and family at the same clients.
	consent(other, cA, "admin")
	seedFamily(t, s, now, other, cC)

	wantClients(t, "UserClients now", userClients(t, s, user, now), []core.UserClient{
		{ClientID: cF, ConsentScope: "x"},
		{ClientID: cA, ConsentScope: "read"},
		{ClientID: cB, ConsentScope: "read write", Active: true},
		{ClientID: cC, Active: true},
		{ClientID: cG, Active: true},
	})
	// Two hours on, the pending code and the kept grant are past; cB's
	// refresh token is not.
	wantClients(t, "UserClients in two hours", userClients(t, s, user, now.Add(2*time.Hour)), []core.UserClient{
		{ClientID: cF, ConsentScope: "x"},
		{ClientID: cA, ConsentScope: "read"},
		{ClientID: cB, ConsentScope: "read write", Active: true},
	})
	wantClients(t, "UserClients of the other user", userClients(t, s, other, now), []core.UserClient{
		{ClientID: cA, ConsentScope: "admin"},
		{ClientID: cC, Active: true},
	})

	// Revoking one client ends its activity, not its consent; forgetting a
	// consent drops a client that has nothing else.
	revokeUser(t, s, user, cB, now.Add(48*time.Hour))
	if err := s.DeleteConsent(bg, user, cA); err != nil {
		t.Fatal(err)
	}
	wantClients(t, "UserClients after revoking one client and forgetting a consent", userClients(t, s, user, now), []core.UserClient{
		{ClientID: cF, ConsentScope: "x"},
		{ClientID: cB, ConsentScope: "read write"},
		{ClientID: cC, Active: true},
		{ClientID: cG, Active: true},
	})
	revokeUser(t, s, user, "", now.Add(48*time.Hour))
	wantClients(t, "UserClients after revoking the user", userClients(t, s, user, now), []core.UserClient{
		{ClientID: cF, ConsentScope: "x"},
		{ClientID: cB, ConsentScope: "read write"},
	})
	if l := userClients(t, s, uid("nobody"), now); len(l) != 0 {
		t.Errorf("UserClients of an unknown user: %s", showClients(l))
	}
}

func testDeleteConsent(t *testing.T, s UserGrantsStore) {
	user, other := uid("user"), uid("user")
	c, c2 := uid("client"), uid("client")
	for _, pr := range [][3]string{{user, c, "read"}, {user, c2, "write"}, {other, c, "admin"}} {
		if err := s.SaveConsent(bg, pr[0], pr[1], pr[2]); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteConsent(bg, user, c); err != nil {
		t.Fatalf("DeleteConsent: %v", err)
	}
	getConsent(t, s, user, c, "")
	getConsent(t, s, user, c2, "write")
	getConsent(t, s, other, c, "admin")
	for _, pr := range [][2]string{{user, c}, {uid("nobody"), c}, {user + " ", c2}, {user, strings.ToUpper(c2)}} {
		if err := s.DeleteConsent(bg, pr[0], pr[1]); err != nil {
			t.Errorf("DeleteConsent(%q, %q) of an absent consent: %v", pr[0], pr[1], err)
		}
	}
	getConsent(t, s, user, c2, "write")
	if err := s.SaveConsent(bg, user, c, "read"); err != nil {
		t.Fatal(err)
	}
	getConsent(t, s, user, c, "read")
}

func testUserGrantsCancelled(t *testing.T, s UserGrantsStore) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	canceled := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: error %v, want context.Canceled", what, err)
		}
	}
	now := base()
	user, client := uid("user"), uid("client")
	f, _ := seedFamily(t, s, now, user, client)
	if err := s.SaveConsent(bg, user, client, "read"); err != nil {
		t.Fatal(err)
	}
	_, err := s.RevokeUserGrants(ctx, user, "", now.Add(time.Hour))
	canceled("RevokeUserGrants", err)
	wantRevoked(t, s, f, false)
	_, err = s.UserClients(ctx, user, now)
	canceled("UserClients", err)
	canceled("DeleteConsent", s.DeleteConsent(ctx, user, client))
	getConsent(t, s, user, client, "read")
}

// testRaceRevokeUser races user revocations with rotations in the user's
// families (and in another user's): every revocation returns every family,
// and once they are done no family of the user holds a token that
// rotates, whichever rotations won before.
func testRaceRevokeUser(t *testing.T, s UserGrantsStore) {
	const families = 4
	rounds := max(Rounds/4, 1)
	for round := 0; round < rounds; round++ {
		now := base()
		user, other := uid("user"), uid("user")
		client := uid("client")
		type fam struct {
			mu  sync.Mutex
			id  string
			cur *core.RefreshToken // the newest token
		}
		fams := make([]*fam, families+1) // the last one is the other user's
		for i := range fams {
			u := user
			if i == families {
				u = other
			}
			id, rt := seedFamily(t, s, now, u, client)
			fams[i] = &fam{id: id, cur: rt}
		}
		var want []string
		for _, f := range fams[:families] {
			want = append(want, f.id)
		}
		want = sorted(want...)
		keep := now.Add(48 * time.Hour)
		revokers := Racers / 4
		results := make([][]string, revokers)
		errs := make([]error, Racers)
		race(Racers, func(i int) {
			if i < revokers {
				results[i], errs[i] = s.RevokeUserGrants(bg, user, "", keep)
				return
			}
			// Rotators: each follows one family's chain until refused.
			f := fams[i%len(fams)]
			for step := 0; step < 8; step++ {
				f.mu.Lock()
				cur := f.cur
				f.mu.Unlock()
				next := newRefresh(now, cur.FamilyID, cur.ClientID)
				next.UserID = cur.UserID
				_, err := s.RotateRefreshToken(bg, cur.Sig, now.Add(time.Second), rotateTo(next))
				switch {
				case err == nil:
					f.mu.Lock()
					f.cur = next
					f.mu.Unlock()
				case errors.Is(err, core.ErrTokenRotated):
					if f.id != fams[families].id {
						return // revoked, or another rotator won this token
					}
				default:
					errs[i] = err
					return
				}
			}
		})
		for i, err := range errs {
			if err != nil {
				t.Errorf("round %d: racer %d: %v", round, i, err)
			}
		}
		for i, r := range results {
			if errs[i] == nil {
				if got := sortedOnce(t, "RevokeUserGrants", r); !slices.Equal(got, want) {
					t.Errorf("round %d: revoker %d returned %q, want %q", round, i, got, want)
				}
			}
		}
		at := now.Add(time.Minute)
		for _, f := range fams[:families] {
			wantRevoked(t, s, f.id, true)
			wantRotationRefused(t, s, f.cur, at)
		}
		o := fams[families]
		wantRevoked(t, s, o.id, false)
		wantRotates(t, s, o.cur, at)
		if t.Failed() {
			return
		}
	}
}
