package memstore_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/oauth2kit/oauth2kit/core"
	"github.com/oauth2kit/oauth2kit/core/memstore"
	"github.com/oauth2kit/oauth2kit/core/storagetest"
)

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(*testing.T) storagetest.Store { return memstore.New() })
}

var ctx = context.Background()

// fakeClock is the store's sweeping clock; the test advances it.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func grantAt(i int, now time.Time, life time.Duration) *core.Grant {
	return &core.Grant{
		ID: fmt.Sprintf("g%d", i), CodeSig: fmt.Sprintf("code-%d", i), ClientID: "c", UserID: "u",
		CreatedAt: now, ExpiresAt: now.Add(life),
	}
}

func refreshAt(sig, family string, now time.Time, life time.Duration) *core.RefreshToken {
	return &core.RefreshToken{Sig: sig, FamilyID: family, ClientID: "c", UserID: "u", CreatedAt: now, ExpiresAt: now.Add(life)}
}

func issueRT(rt *core.RefreshToken) func(*core.Grant) (*core.RefreshToken, error) {
	return func(*core.Grant) (*core.RefreshToken, error) { return rt, nil }
}

func wantLen(t *testing.T, s *memstore.Store, grants, rts, revs int) {
	t.Helper()
	g, r, v := s.Len()
	if g != grants || r != rts || v != revs {
		t.Fatalf("Len() = %d grants, %d refresh tokens, %d revocations; want %d, %d, %d", g, r, v, grants, rts, revs)
	}
}

// TestMemoryBounded fills the store, then walks a fake clock past every
// expiry: used codes and rotated tokens are kept exactly as long as a
// replay must still be recognised, then everything goes.
func TestMemoryBounded(t *testing.T) {
	s := memstore.New()
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0).UTC()}
	s.SetClock(clock.now)
	start := clock.t
	const n = 3000
	for i := 0; i < n; i++ {
		if err := s.CreateGrant(ctx, grantAt(i, start, time.Minute)); err != nil {
			t.Fatal(err)
		}
		if i%2 == 1 {
			continue
		}
		rt := refreshAt(fmt.Sprintf("rt-%d", i), fmt.Sprintf("g%d", i), start, time.Hour)
		if _, err := s.RedeemCode(ctx, fmt.Sprintf("code-%d", i), start, issueRT(rt)); err != nil {
			t.Fatal(err)
		}
		if i%4 == 0 {
			next := refreshAt(fmt.Sprintf("rt-%d-2", i), rt.FamilyID, start, time.Hour)
			if _, err := s.RotateRefreshToken(ctx, rt.Sig, start, func(*core.RefreshToken) (*core.RefreshToken, error) { return next, nil }); err != nil {
				t.Fatal(err)
			}
		}
		if i%10 == 0 {
			if err := s.RevokeFamily(ctx, rt.FamilyID, start.Add(2*time.Hour)); err != nil {
				t.Fatal(err)
			}
		}
	}
	wantLen(t, s, n, n/2+n/4, n/10)

	// Just before the codes expire a sweep keeps them all: a replay of a
	// used code is still a replay, a rotated token's reuse still a reuse.
	clock.t = start.Add(59 * time.Second)
	s.Sweep()
	wantLen(t, s, n, n/2+n/4, n/10)
	if _, err := s.RedeemCode(ctx, "code-2", clock.t, issueRT(nil)); !errors.Is(err, core.ErrCodeUsed) {
		t.Errorf("replay of a used code before its expiry: %v, want ErrCodeUsed", err)
	}
	if _, err := s.RotateRefreshToken(ctx, "rt-4", clock.t, func(*core.RefreshToken) (*core.RefreshToken, error) { return nil, nil }); !errors.Is(err, core.ErrTokenRotated) {
		t.Errorf("reuse of a rotated refresh token: %v, want ErrTokenRotated", err)
	}

	// Past the codes' expiry they go, used or not.
	clock.t = start.Add(61 * time.Second)
	s.Sweep()
	wantLen(t, s, 0, n/2+n/4, n/10)

	// Past every refresh token and revocation record. No explicit Sweep:
	// a write after SweepEvery triggers it.
	clock.t = start.Add(2*time.Hour + time.Second)
	if err := s.CreateGrant(ctx, grantAt(n, clock.t, time.Minute)); err != nil {
		t.Fatal(err)
	}
	wantLen(t, s, 1, 0, 0)
}

// TestMemorySteadyState runs a long stream of logins on a fake clock and
// checks that the store never holds more than the live state plus one sweep
// interval's worth.
func TestMemorySteadyState(t *testing.T) {
	s := memstore.New()
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0).UTC()}
	s.SetClock(clock.now)
	const (
		codeLife = time.Minute
		rtLife   = 10 * time.Minute
		keep     = 15 * time.Minute
		steps    = 6000 // one login per second: 100 minutes
	)
	sweep := s.SweepEvery
	perSec := func(d time.Duration) int { return int((d + sweep) / time.Second) }
	maxG, maxR, maxV := 0, 0, 0
	for i := 0; i < steps; i++ {
		now := clock.t
		if err := s.CreateGrant(ctx, grantAt(i, now, codeLife)); err != nil {
			t.Fatal(err)
		}
		rt := refreshAt(fmt.Sprintf("rt-%d", i), fmt.Sprintf("g%d", i), now, rtLife)
		if _, err := s.RedeemCode(ctx, fmt.Sprintf("code-%d", i), now, issueRT(rt)); err != nil {
			t.Fatal(err)
		}
		if err := s.RevokeFamily(ctx, rt.FamilyID, now.Add(keep)); err != nil {
			t.Fatal(err)
		}
		g, r, v := s.Len()
		maxG, maxR, maxV = max(maxG, g), max(maxR, r), max(maxV, v)
		clock.t = clock.t.Add(time.Second)
	}
	t.Logf("peak over %d logins: %d codes, %d refresh tokens, %d revocations", steps, maxG, maxR, maxV)
	if maxG > perSec(codeLife)+1 || maxR > perSec(rtLife)+1 || maxV > perSec(keep)+1 {
		t.Errorf("peak %d codes, %d refresh tokens, %d revocations; want at most %d, %d, %d",
			maxG, maxR, maxV, perSec(codeLife)+1, perSec(rtLife)+1, perSec(keep)+1)
	}
	clock.t = clock.t.Add(keep + sweep)
	s.Sweep()
	wantLen(t, s, 0, 0, 0)
}

func TestClientRegistration(t *testing.T) {
	s := memstore.New()
	if err := s.SaveClient(ctx, &core.Client{}); err == nil {
		t.Error("SaveClient accepted a client without an ID")
	}
	if err := s.SaveClient(ctx, nil); err == nil {
		t.Error("SaveClient accepted nil")
	}
	s.AddClient(&core.Client{ID: "a", Name: "A"})
	if c, err := s.GetClient(ctx, "a"); err != nil || c.Name != "A" {
		t.Fatalf("GetClient after AddClient: %+v, %v", c, err)
	}
	if err := s.DeleteClient(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetClient(ctx, "a"); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("GetClient after DeleteClient: %v", err)
	}
	if err := s.DeleteClient(ctx, "a"); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("deleting an unknown client: %v, want ErrNotFound", err)
	}
	// Consents go with the client: one registered again under the same ID
	// starts without them.
	s.AddClient(&core.Client{ID: "a"})
	for _, pair := range [][2]string{{"u1", "a"}, {"u2", "a"}, {"u1", "other"}} {
		if err := s.SaveConsent(ctx, pair[0], pair[1], "read"); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteClient(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	s.AddClient(&core.Client{ID: "a"})
	for _, u := range []string{"u1", "u2"} {
		if _, err := s.GetConsent(ctx, u, "a"); !errors.Is(err, core.ErrNotFound) {
			t.Errorf("consent of %s survived DeleteClient: %v", u, err)
		}
	}
	if sc, err := s.GetConsent(ctx, "u1", "other"); err != nil || sc != "read" {
		t.Errorf("another client's consent: %q, %v", sc, err)
	}
	s.AddClient(&core.Client{ID: "b"})
	s.RemoveClient("b")
	if _, err := s.GetClient(ctx, "b"); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("GetClient after RemoveClient: %v", err)
	}
}

func TestClientRegistry(t *testing.T) {
	storagetest.RunClientRegistry(t, func(*testing.T) storagetest.RegistryStore { return memstore.New() })
}

func TestUserGrants(t *testing.T) {
	storagetest.RunUserGrants(t, func(*testing.T) storagetest.UserGrantsStore { return memstore.New() })
}

// TestSweepKeepsUntilKeepUntil: a code is kept until max(ExpiresAt,
// KeepUntil), so that user-wide revocation still finds a family whose only
// live tokens are access tokens.
func TestSweepKeepsUntilKeepUntil(t *testing.T) {
	s := memstore.New()
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0).UTC()}
	s.SetClock(clock.now)
	start := clock.t
	kept := grantAt(1, start, time.Minute)
	kept.UserID, kept.KeepUntil = "alice", start.Add(10*time.Minute)
	early := grantAt(2, start, time.Minute) // KeepUntil before ExpiresAt: ExpiresAt counts
	early.UserID, early.KeepUntil = "alice", start.Add(time.Second)
	plain := grantAt(3, start, time.Minute)
	plain.UserID = "alice"
	for _, g := range []*core.Grant{kept, early, plain} {
		if err := s.CreateGrant(ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	clock.t = start.Add(time.Minute)
	s.Sweep()
	wantLen(t, s, 1, 0, 0)
	if err := s.CreateGrant(ctx, kept); !errors.Is(err, core.ErrExists) {
		t.Errorf("CreateGrant of a kept signature: %v, want ErrExists", err)
	}
	if ucs, err := s.UserClients(ctx, "alice", clock.t); err != nil || len(ucs) != 1 || !ucs[0].Active {
		t.Errorf("UserClients while the grant is kept: %+v, %v", ucs, err)
	}
	clock.t = start.Add(10*time.Minute - time.Second)
	s.Sweep()
	wantLen(t, s, 1, 0, 0)
	fams, err := s.RevokeUserGrants(ctx, "alice", "", start.Add(time.Hour))
	if err != nil || len(fams) != 1 || fams[0] != kept.ID {
		t.Errorf("RevokeUserGrants while the grant is kept: %q, %v; want [%s]", fams, err, kept.ID)
	}
	clock.t = start.Add(10 * time.Minute)
	s.Sweep()
	wantLen(t, s, 0, 0, 1)
}

// The sweep drops expired login sessions (seen by asking for one at a time
// before its expiry: a kept record would still answer) and keeps live ones.
func TestSweepDropsExpiredLoginSessions(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	clock := now.Add(-time.Minute) // the store's own clock, before the expiry
	s := memstore.New()
	s.SetClock(func() time.Time { return clock })
	ctx := context.Background()
	for id, exp := range map[string]time.Time{"old": now.Add(-time.Second), "live": now.Add(time.Hour)} {
		if err := s.CreateLoginSession(ctx, &core.LoginSession{ID: id, SID: "s-" + id, UserID: "u", CreatedAt: now.Add(-time.Hour), ExpiresAt: exp}); err != nil {
			t.Fatal(err)
		}
	}
	earlier := now.Add(-time.Minute)
	if _, err := s.GetLoginSession(ctx, "old", earlier); err != nil {
		t.Fatalf("before the sweep: %v", err)
	}
	clock = now
	s.Sweep()
	if _, err := s.GetLoginSession(ctx, "old", earlier); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("an expired session survived the sweep: %v", err)
	}
	if _, err := s.GetLoginSession(ctx, "live", now); err != nil {
		t.Errorf("the sweep dropped a live session: %v", err)
	}
}
