package storagetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/oauth2kit/oauth2kit/core"
)

func isErr(err, target error) bool { return errors.Is(err, target) }

func getConsent(t *testing.T, s Store, user, client, want string) {
	t.Helper()
	got, err := s.GetConsent(bg, user, client)
	if want == "" {
		wantErr(t, "GetConsent("+user+", "+client+")", err, core.ErrNotFound)
		return
	}
	if err != nil || got != want {
		t.Errorf("GetConsent(%s, %s) = %q, %v; want %q", user, client, got, err, want)
	}
}

func testConsent(t *testing.T, s Store) {
	user, client := uid("user"), uid("client")
	getConsent(t, s, user, client, "")
	if err := s.SaveConsent(bg, user, client, "read write"); err != nil {
		t.Fatalf("SaveConsent: %v", err)
	}
	getConsent(t, s, user, client, "read write")
	// Replace, also with a narrower scope: the last decision wins.
	if err := s.SaveConsent(bg, user, client, "read"); err != nil {
		t.Fatalf("SaveConsent (replace): %v", err)
	}
	getConsent(t, s, user, client, "read")
	getConsent(t, s, user, uid("client"), "")
	getConsent(t, s, uid("user"), client, "")
}

func testConsentKeys(t *testing.T, s Store) {
	// A store that joins user and client into one key must not let two
	// pairs collide.
	p := uid("k")
	pairs := [][3]string{
		{p + "a|b", "c", "scope-1"},
		{p + "a", "b|c", "scope-2"},
		{p + "a:b", "c", "scope-3"},
		{p + "a", "b:c", "scope-4"},
	}
	for _, pr := range pairs {
		if err := s.SaveConsent(bg, pr[0], pr[1], pr[2]); err != nil {
			t.Fatalf("SaveConsent(%q, %q): %v", pr[0], pr[1], err)
		}
	}
	for _, pr := range pairs {
		getConsent(t, s, pr[0], pr[1], pr[2])
	}
	// Swapping user and client is another pair.
	getConsent(t, s, "c", p+"a|b", "")
}

// testCancelledContext checks that every method honours its context: with
// a cancelled one it fails with an error matching context.Canceled and
// changes nothing (a database driver refuses to start the query).
func testCancelledContext(t *testing.T, s Store) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	now := base()
	canceled := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: error %v, want context.Canceled", what, err)
		}
	}

	c := fullClient()
	canceled("SaveClient", s.SaveClient(ctx, c))
	_, err := s.GetClient(bg, c.ID)
	wantErr(t, "GetClient of a client saved with a cancelled context", err, core.ErrNotFound)
	saveClient(t, s, c)
	_, err = s.GetClient(ctx, c.ID)
	canceled("GetClient", err)

	g := newGrant(now)
	canceled("CreateGrant", s.CreateGrant(ctx, g))
	_, err = s.RedeemCode(bg, g.CodeSig, now, neverIssueCode(t))
	wantErr(t, "RedeemCode of a grant created with a cancelled context", err, core.ErrNotFound)
	createGrant(t, s, g)
	_, err = s.RedeemCode(ctx, g.CodeSig, now, neverIssueCode(t))
	canceled("RedeemCode", err)
	if _, err := s.RedeemCode(bg, g.CodeSig, now, func(*core.Grant) (*core.RefreshToken, error) { return nil, nil }); err != nil {
		t.Errorf("the code no longer redeems after a cancelled RedeemCode: %v", err)
	}

	rt := newRefresh(now, uid("family"), c.ID)
	seedRefresh(t, s, rt, now)
	_, err = s.RotateRefreshToken(ctx, rt.Sig, now, neverIssueRefresh(t))
	canceled("RotateRefreshToken", err)
	_, err = s.GetRefreshToken(ctx, rt.Sig)
	canceled("GetRefreshToken", err)
	if got := getRefresh(t, s, rt.Sig); got.RotatedAt != nil {
		t.Error("a cancelled RotateRefreshToken rotated the token")
	}

	canceled("RevokeFamily", s.RevokeFamily(ctx, rt.FamilyID, now.Add(time.Hour)))
	if r, err := s.IsFamilyRevoked(bg, rt.FamilyID); err != nil || r {
		t.Errorf("IsFamilyRevoked after a cancelled RevokeFamily: %v, %v", r, err)
	}
	_, err = s.IsFamilyRevoked(ctx, rt.FamilyID)
	canceled("IsFamilyRevoked", err)

	user := uid("user")
	canceled("SaveConsent", s.SaveConsent(ctx, user, c.ID, "read"))
	getConsent(t, s, user, c.ID, "")
	_, err = s.GetConsent(ctx, user, c.ID)
	canceled("GetConsent", err)
}
