package storagetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/oauth2kit/oauth2kit/core"
)

func testRedeemSuccess(t *testing.T, s Store) {
	now := base()
	g := newGrant(now)
	createGrant(t, s, g)
	rt := newRefresh(now, g.ID, g.ClientID)
	at := now.Add(5 * time.Second)
	var c issueCounter[core.Grant]
	got, err := s.RedeemCode(bg, g.CodeSig, at, func(x *core.Grant) (*core.RefreshToken, error) {
		c.record(x)
		cp := *rt
		return &cp, nil
	})
	if err != nil {
		t.Fatalf("RedeemCode: %v", err)
	}
	if n := c.n(); n != 1 {
		t.Fatalf("issue called %d times, want 1", n)
	}
	diffGrant(t, "grant passed to issue", g, c.arg, false)
	want := *g
	want.UsedAt = tp(at)
	diffGrant(t, "grant RedeemCode returned", &want, got, true)

	stored, err := s.GetRefreshToken(bg, rt.Sig)
	if err != nil {
		t.Fatalf("GetRefreshToken of the issued refresh token: %v", err)
	}
	diffRefresh(t, "refresh token stored by RedeemCode", rt, stored, true)
}

func testRedeemNoRefresh(t *testing.T, s Store) {
	now := base()
	g := newGrant(now)
	createGrant(t, s, g)
	var c issueCounter[core.Grant]
	got, err := s.RedeemCode(bg, g.CodeSig, now, func(x *core.Grant) (*core.RefreshToken, error) {
		c.record(x)
		return nil, nil
	})
	if err != nil || c.n() != 1 {
		t.Fatalf("RedeemCode with no refresh token: err %v, issue called %d times", err, c.n())
	}
	diffGrant(t, "grant RedeemCode returned", g, got, false)
	_, err = s.RedeemCode(bg, g.CodeSig, now, neverIssueCode(t))
	wantErr(t, "second RedeemCode", err, core.ErrCodeUsed)
}

func testRedeemUnknown(t *testing.T, s Store) {
	now := base()
	g := newGrant(now)
	createGrant(t, s, g)
	for _, sg := range []string{sig(), g.CodeSig[:len(g.CodeSig)-1], g.ID} {
		got, err := s.RedeemCode(bg, sg, now, neverIssueCode(t))
		wantErr(t, "RedeemCode of an unknown signature", err, core.ErrNotFound)
		if got != nil {
			t.Errorf("RedeemCode of an unknown signature returned a grant: %+v", got)
		}
	}
	if _, err := s.RedeemCode(bg, g.CodeSig, now, func(*core.Grant) (*core.RefreshToken, error) { return nil, nil }); err != nil {
		t.Errorf("the stored code no longer redeems after lookups of other codes: %v", err)
	}
}

func testRedeemExpired(t *testing.T, s Store) {
	now := base()
	g := newGrant(now)
	g.ExpiresAt = now.Add(60 * time.Second)
	createGrant(t, s, g)
	for _, at := range []time.Time{g.ExpiresAt, g.ExpiresAt.Add(time.Second), g.ExpiresAt.Add(time.Hour)} {
		got, err := s.RedeemCode(bg, g.CodeSig, at, neverIssueCode(t))
		wantErr(t, "RedeemCode at "+at.Sub(g.ExpiresAt).String()+" past expiry", err, core.ErrNotFound)
		if err == nil && got != nil {
			t.Errorf("an expired code was redeemed: %+v", got)
		}
	}
	// Refusing an expired code wrote nothing: at a time before expiry the
	// code is still unused.
	if _, err := s.RedeemCode(bg, g.CodeSig, g.ExpiresAt.Add(-time.Second), func(*core.Grant) (*core.RefreshToken, error) { return nil, nil }); err != nil {
		t.Errorf("RedeemCode one second before expiry (after refused expired attempts): %v", err)
	}
}

func testRedeemTwice(t *testing.T, s Store) {
	now := base()
	g := newGrant(now)
	createGrant(t, s, g)
	first := now.Add(2 * time.Second)
	if _, err := s.RedeemCode(bg, g.CodeSig, first, func(*core.Grant) (*core.RefreshToken, error) {
		return newRefresh(now, g.ID, g.ClientID), nil
	}); err != nil {
		t.Fatalf("first RedeemCode: %v", err)
	}
	want := *g
	want.UsedAt = tp(first)
	for i, at := range []time.Time{first, now.Add(30 * time.Second)} {
		got, err := s.RedeemCode(bg, g.CodeSig, at, neverIssueCode(t))
		wantErr(t, "RedeemCode of a used code", err, core.ErrCodeUsed)
		// The server checks the replay against the grant (client,
		// redirect URI, PKCE) before it revokes: every field must be there.
		diffGrant(t, fmt.Sprintf("grant returned with ErrCodeUsed (replay %d)", i+1), &want, got, true)
	}
}

func testRedeemIssueError(t *testing.T, s Store) {
	now := base()
	g := newGrant(now)
	createGrant(t, s, g)
	rt := newRefresh(now, g.ID, g.ClientID)
	var c issueCounter[core.Grant]
	_, err := s.RedeemCode(bg, g.CodeSig, now, func(x *core.Grant) (*core.RefreshToken, error) {
		c.record(x)
		// A refresh token returned together with an error must not be
		// stored either.
		cp := *rt
		return &cp, errIssue
	})
	wantErr(t, "RedeemCode whose issue failed", err, errIssue)
	if c.n() != 1 {
		t.Errorf("issue called %d times, want 1", c.n())
	}
	if _, err := s.GetRefreshToken(bg, rt.Sig); err == nil {
		t.Error("the refresh token of a failed issue was stored")
	} else {
		wantErr(t, "GetRefreshToken of the refused refresh token", err, core.ErrNotFound)
	}
	// The code is burned: a failed verification must not leave it usable.
	got, err := s.RedeemCode(bg, g.CodeSig, now.Add(time.Second), neverIssueCode(t))
	wantErr(t, "RedeemCode after a failed issue", err, core.ErrCodeUsed)
	want := *g
	want.UsedAt = tp(now)
	diffGrant(t, "grant returned with ErrCodeUsed after a failed issue", &want, got, true)
}

func testRedeemExpiredUsed(t *testing.T, s Store) {
	now := base()
	g := newGrant(now)
	g.ExpiresAt = now.Add(time.Minute)
	createGrant(t, s, g)
	if _, err := s.RedeemCode(bg, g.CodeSig, now, func(*core.Grant) (*core.RefreshToken, error) { return nil, nil }); err != nil {
		t.Fatalf("RedeemCode: %v", err)
	}
	// The contract allows either answer once the code has expired (a
	// store may keep used codes longer to recognise late replays), but
	// never a success.
	_, err := s.RedeemCode(bg, g.CodeSig, g.ExpiresAt.Add(time.Second), neverIssueCode(t))
	if err == nil || !(isErr(err, core.ErrNotFound) || isErr(err, core.ErrCodeUsed)) {
		t.Errorf("RedeemCode of a used, expired code: %v, want ErrNotFound or ErrCodeUsed", err)
	}
}

func testRedeemTimeZones(t *testing.T, s Store) {
	// The server passes time.Now() in the local zone; a store must compare
	// instants, not wall clocks.
	west, east := time.FixedZone("UTC-7", -7*3600), time.FixedZone("UTC+5:30", 5*3600+1800)
	now := base()
	g := newGrant(now.In(west))
	g.ExpiresAt = now.Add(time.Minute).In(west)
	createGrant(t, s, g)
	_, err := s.RedeemCode(bg, g.CodeSig, g.ExpiresAt.Add(time.Second).In(east), neverIssueCode(t))
	wantErr(t, "RedeemCode one second after expiry, other zone", err, core.ErrNotFound)
	got, err := s.RedeemCode(bg, g.CodeSig, g.ExpiresAt.Add(-time.Second).UTC(), func(*core.Grant) (*core.RefreshToken, error) { return nil, nil })
	if err != nil {
		t.Fatalf("RedeemCode one second before expiry, in UTC: %v", err)
	}
	diffGrant(t, "grant stored with zoned times", g, got, false)
}

func testGrantIsolation(t *testing.T, s Store) {
	now := base()
	g := newGrant(now)
	want := *g
	createGrant(t, s, g)
	g.ClientID, g.Scope, g.RedirectURI = "attacker", "admin", "https://evil.example/"
	var c issueCounter[core.Grant]
	got, err := s.RedeemCode(bg, g.CodeSig, now, func(x *core.Grant) (*core.RefreshToken, error) {
		c.record(x)
		return nil, nil
	})
	if err != nil {
		t.Fatalf("RedeemCode: %v", err)
	}
	diffGrant(t, "grant passed to issue after the caller changed its own value", &want, c.arg, false)
	want.UsedAt = tp(now)
	diffGrant(t, "grant RedeemCode returned", &want, got, true)
	if got != nil && got.UsedAt != nil {
		*got.UsedAt = now.Add(time.Hour)
		got.ClientID = "changed-by-caller"
	}
	again, err := s.RedeemCode(bg, g.CodeSig, now, neverIssueCode(t))
	wantErr(t, "second RedeemCode", err, core.ErrCodeUsed)
	diffGrant(t, "grant after the caller changed a returned value", &want, again, true)
}

func testCreateExisting(t *testing.T, s Store) {
	now := base()
	g := newGrant(now)
	createGrant(t, s, g)
	// Another grant under the same signature: refused, and nothing of it
	// stored (the server relies on this to make a form usable once).
	dup := newGrant(now.Add(time.Minute))
	dup.CodeSig = g.CodeSig
	dup.ClientID, dup.UserID, dup.Scope, dup.RedirectURI = "attacker", "mallory", "admin", "https://evil.example/"
	wantErr(t, "CreateGrant of an existing signature", s.CreateGrant(bg, dup), core.ErrExists)
	var c issueCounter[core.Grant]
	got, err := s.RedeemCode(bg, g.CodeSig, now, func(x *core.Grant) (*core.RefreshToken, error) {
		c.record(x)
		return nil, nil
	})
	if err != nil {
		t.Fatalf("RedeemCode after a refused CreateGrant: %v", err)
	}
	diffGrant(t, "grant passed to issue after a refused CreateGrant", g, c.arg, false)
	want := *g
	want.UsedAt = tp(now)
	diffGrant(t, "grant RedeemCode returned after a refused CreateGrant", &want, got, true)
	// Used, the signature still exists: a new grant must not reset it.
	dup.UsedAt = nil
	wantErr(t, "CreateGrant of a used signature", s.CreateGrant(bg, dup), core.ErrExists)
	again, err := s.RedeemCode(bg, g.CodeSig, now.Add(time.Second), neverIssueCode(t))
	wantErr(t, "RedeemCode after CreateGrant of its used signature", err, core.ErrCodeUsed)
	diffGrant(t, "grant returned with ErrCodeUsed", &want, again, true)
	// Another signature is another grant.
	createGrant(t, s, newGrant(now))
}

func testCreateBornUsed(t *testing.T, s Store) {
	// The server records a submitted login or consent form as a grant that
	// is used from the start, so that a second submission finds it.
	now := base()
	g := newGrant(now)
	g.UsedAt = tp(now)
	createGrant(t, s, g)
	got, err := s.RedeemCode(bg, g.CodeSig, now.Add(time.Second), neverIssueCode(t))
	wantErr(t, "RedeemCode of a grant created used", err, core.ErrCodeUsed)
	diffGrant(t, "grant created used", g, got, true)
	fresh := newGrant(now)
	fresh.CodeSig = g.CodeSig
	wantErr(t, "CreateGrant over a grant created used", s.CreateGrant(bg, fresh), core.ErrExists)
}

func testCreateKeepUntil(t *testing.T, s Store) {
	// KeepUntil reads back as stored, or normalised: zero and a time
	// before ExpiresAt both mean ExpiresAt (diffGrant compares the
	// maximum of the two).
	now := base()
	for _, keep := range []time.Time{{}, now.Add(time.Minute), now.Add(10 * time.Minute), now.Add(90 * 24 * time.Hour)} {
		g := newGrant(now)
		g.KeepUntil = keep
		createGrant(t, s, g)
		var c issueCounter[core.Grant]
		got, err := s.RedeemCode(bg, g.CodeSig, now, func(x *core.Grant) (*core.RefreshToken, error) {
			c.record(x)
			return nil, nil
		})
		if err != nil {
			t.Fatalf("RedeemCode: %v", err)
		}
		what := fmt.Sprintf("grant with KeepUntil %v after expiry", keep.Sub(g.ExpiresAt))
		if keep.IsZero() {
			what = "grant with a zero KeepUntil"
		}
		diffGrant(t, what+", passed to issue", g, c.arg, false)
		diffGrant(t, what+", returned", g, got, false)
		if got != nil && keep.IsZero() && !got.KeepUntil.IsZero() && !sameTime(got.KeepUntil, g.ExpiresAt) {
			t.Errorf("%s: KeepUntil read back as %v", what, got.KeepUntil)
		}
	}
}
