package storagetest

import (
	"testing"
	"time"

	"github.com/oauth2kit/oauth2kit/core"
)

// rotateTo is an issue callback that returns (a copy of) next.
func rotateTo(next *core.RefreshToken) func(*core.RefreshToken) (*core.RefreshToken, error) {
	return func(*core.RefreshToken) (*core.RefreshToken, error) {
		cp := *next
		return &cp, nil
	}
}

func getRefresh(t *testing.T, s Store, sg string) *core.RefreshToken {
	t.Helper()
	rt, err := s.GetRefreshToken(bg, sg)
	if err != nil {
		t.Fatalf("GetRefreshToken: %v", err)
	}
	return rt
}

func testRotateSuccess(t *testing.T, s Store) {
	now := base()
	old := newRefresh(now, uid("family"), uid("client"))
	seedRefresh(t, s, old, now)
	next := newRefresh(now.Add(time.Minute), old.FamilyID, old.ClientID)
	next.Scope = "read" // the store keeps what issue returns
	at := now.Add(time.Minute)
	var c issueCounter[core.RefreshToken]
	got, err := s.RotateRefreshToken(bg, old.Sig, at, func(x *core.RefreshToken) (*core.RefreshToken, error) {
		c.record(x)
		cp := *next
		return &cp, nil
	})
	if err != nil {
		t.Fatalf("RotateRefreshToken: %v", err)
	}
	if c.n() != 1 {
		t.Fatalf("issue called %d times, want 1", c.n())
	}
	diffRefresh(t, "token passed to issue", old, c.arg, true)
	diffRefresh(t, "token RotateRefreshToken returned", old, got, false)

	wantOld := *old
	wantOld.RotatedAt = tp(at)
	diffRefresh(t, "old token after rotation", &wantOld, getRefresh(t, s, old.Sig), true)
	diffRefresh(t, "new token after rotation", next, getRefresh(t, s, next.Sig), true)
}

func testRotateUnknown(t *testing.T, s Store) {
	now := base()
	rt := newRefresh(now, uid("family"), uid("client"))
	seedRefresh(t, s, rt, now)
	for _, sg := range []string{sig(), rt.Sig[1:], rt.FamilyID} {
		got, err := s.RotateRefreshToken(bg, sg, now, neverIssueRefresh(t))
		wantErr(t, "RotateRefreshToken of an unknown signature", err, core.ErrNotFound)
		if got != nil {
			t.Errorf("RotateRefreshToken of an unknown signature returned %+v", got)
		}
	}
	diffRefresh(t, "stored token after lookups of others", rt, getRefresh(t, s, rt.Sig), true)
}

func testRotateReuse(t *testing.T, s Store) {
	now := base()
	old := newRefresh(now, uid("family"), uid("client"))
	seedRefresh(t, s, old, now)
	next := newRefresh(now, old.FamilyID, old.ClientID)
	at := now.Add(10 * time.Second)
	if _, err := s.RotateRefreshToken(bg, old.Sig, at, rotateTo(next)); err != nil {
		t.Fatalf("RotateRefreshToken: %v", err)
	}
	got, err := s.RotateRefreshToken(bg, old.Sig, at.Add(time.Second), neverIssueRefresh(t))
	wantErr(t, "RotateRefreshToken of a rotated-out token", err, core.ErrTokenRotated)
	// The server revokes the family when it sees RotatedAt on the token
	// returned with ErrTokenRotated: the token must come back whole.
	want := *old
	want.RotatedAt = tp(at)
	diffRefresh(t, "token returned with ErrTokenRotated", &want, got, true)
	// The reuse wrote nothing: the new token still rotates once.
	if _, err := s.RotateRefreshToken(bg, next.Sig, at.Add(2*time.Second), rotateTo(newRefresh(now, old.FamilyID, old.ClientID))); err != nil {
		t.Errorf("the new token no longer rotates after a reuse of the old one: %v", err)
	}
}

func testRotateChain(t *testing.T, s Store) {
	now := base()
	fam, client := uid("family"), uid("client")
	chain := []*core.RefreshToken{newRefresh(now, fam, client)}
	seedRefresh(t, s, chain[0], now)
	for i := 1; i < 5; i++ {
		next := newRefresh(now, fam, client)
		if _, err := s.RotateRefreshToken(bg, chain[i-1].Sig, now.Add(time.Duration(i)*time.Second), rotateTo(next)); err != nil {
			t.Fatalf("rotation %d: %v", i, err)
		}
		chain = append(chain, next)
	}
	for i, rt := range chain[:len(chain)-1] {
		got, err := s.RotateRefreshToken(bg, rt.Sig, now.Add(time.Minute), neverIssueRefresh(t))
		wantErr(t, "RotateRefreshToken of an ancestor", err, core.ErrTokenRotated)
		if got == nil || got.Sig != rt.Sig || got.RotatedAt == nil {
			t.Errorf("ancestor %d: got %+v, want the token with RotatedAt set", i, got)
		}
	}
	last := chain[len(chain)-1]
	if r := getRefresh(t, s, last.Sig); r.RotatedAt != nil {
		t.Errorf("the newest token of the chain is marked rotated: %v", r.RotatedAt)
	}
}

func testRotateIssueError(t *testing.T, s Store) {
	now := base()
	old := newRefresh(now, uid("family"), uid("client"))
	seedRefresh(t, s, old, now)
	refused := newRefresh(now, old.FamilyID, old.ClientID)
	var c issueCounter[core.RefreshToken]
	_, err := s.RotateRefreshToken(bg, old.Sig, now.Add(time.Second), func(x *core.RefreshToken) (*core.RefreshToken, error) {
		c.record(x)
		cp := *refused
		return &cp, errIssue
	})
	wantErr(t, "RotateRefreshToken whose issue failed", err, errIssue)
	if c.n() != 1 {
		t.Errorf("issue called %d times, want 1", c.n())
	}
	// Nothing written: the old token is not rotated, the refused one not
	// stored, and the old one still rotates.
	diffRefresh(t, "old token after a failed issue", old, getRefresh(t, s, old.Sig), true)
	_, err = s.GetRefreshToken(bg, refused.Sig)
	wantErr(t, "GetRefreshToken of the token a failed issue returned", err, core.ErrNotFound)
	next := newRefresh(now, old.FamilyID, old.ClientID)
	if _, err := s.RotateRefreshToken(bg, old.Sig, now.Add(2*time.Second), rotateTo(next)); err != nil {
		t.Errorf("RotateRefreshToken after a failed issue: %v", err)
	}
}

func testRotateRevokedFamily(t *testing.T, s Store) {
	now := base()
	rt := newRefresh(now, uid("family"), uid("client"))
	seedRefresh(t, s, rt, now)
	other := newRefresh(now, uid("family"), rt.ClientID)
	seedRefresh(t, s, other, now)
	if err := s.RevokeFamily(bg, rt.FamilyID, now.Add(48*time.Hour)); err != nil {
		t.Fatalf("RevokeFamily: %v", err)
	}
	got, err := s.RotateRefreshToken(bg, rt.Sig, now.Add(time.Second), neverIssueRefresh(t))
	wantErr(t, "RotateRefreshToken in a revoked family", err, core.ErrTokenRotated)
	if got == nil || got.Sig != rt.Sig || got.FamilyID != rt.FamilyID {
		t.Errorf("RotateRefreshToken in a revoked family returned %+v, want the token", got)
	}
	// Another family is untouched.
	if _, err := s.RotateRefreshToken(bg, other.Sig, now.Add(time.Second), rotateTo(newRefresh(now, other.FamilyID, other.ClientID))); err != nil {
		t.Errorf("RotateRefreshToken in another family: %v", err)
	}
}

func testRotateExpired(t *testing.T, s Store) {
	now := base()
	rt := newRefresh(now, uid("family"), uid("client"))
	rt.ExpiresAt = now.Add(time.Hour)
	seedRefresh(t, s, rt, now)
	for _, at := range []time.Time{rt.ExpiresAt, rt.ExpiresAt.Add(time.Second)} {
		got, err := s.RotateRefreshToken(bg, rt.Sig, at, neverIssueRefresh(t))
		wantErr(t, "RotateRefreshToken at "+at.Sub(rt.ExpiresAt).String()+" past expiry", err, core.ErrNotFound)
		if err == nil && got != nil {
			t.Errorf("an expired refresh token rotated: %+v", got)
		}
	}
	diffRefresh(t, "expired token after refused rotations", rt, getRefresh(t, s, rt.Sig), true)
}

func testGetRefreshNotFound(t *testing.T, s Store) {
	rt, err := s.GetRefreshToken(bg, sig())
	wantErr(t, "GetRefreshToken of an unknown signature", err, core.ErrNotFound)
	if rt != nil {
		t.Errorf("GetRefreshToken returned %+v with ErrNotFound", rt)
	}
}

func testRevokeFamily(t *testing.T, s Store) {
	now := base()
	fam, other := uid("family"), uid("family")
	for _, f := range []string{fam, other} {
		if r, err := s.IsFamilyRevoked(bg, f); err != nil || r {
			t.Fatalf("IsFamilyRevoked of a fresh family: %v, %v", r, err)
		}
	}
	for i := 0; i < 3; i++ {
		// Revoking twice (or with an earlier keepUntil) is not an error.
		if err := s.RevokeFamily(bg, fam, now.Add(time.Duration(48-i)*time.Hour)); err != nil {
			t.Fatalf("RevokeFamily (call %d): %v", i+1, err)
		}
		if r, err := s.IsFamilyRevoked(bg, fam); err != nil || !r {
			t.Errorf("IsFamilyRevoked after RevokeFamily (call %d): %v, %v", i+1, r, err)
		}
	}
	if r, err := s.IsFamilyRevoked(bg, other); err != nil || r {
		t.Errorf("IsFamilyRevoked of another family: %v, %v", r, err)
	}
	if r, err := s.IsFamilyRevoked(bg, fam[:len(fam)-1]); err != nil || r {
		t.Errorf("IsFamilyRevoked of a prefix of a revoked family: %v, %v", r, err)
	}
}

func testRevokeFamilyNoTokens(t *testing.T, s Store) {
	// client_credentials families have no stored token at all.
	fam := uid("cc-family")
	if err := s.RevokeFamily(bg, fam, base().Add(2*time.Hour)); err != nil {
		t.Fatalf("RevokeFamily: %v", err)
	}
	if r, err := s.IsFamilyRevoked(bg, fam); err != nil || !r {
		t.Errorf("IsFamilyRevoked: %v, %v", r, err)
	}
}
