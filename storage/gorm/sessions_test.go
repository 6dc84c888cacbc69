package gormstore_test

import (
	"errors"
	"testing"
	"time"

	"github.com/oauth2kit/oauth2kit/core"
)

// Purge deletes expired login sessions (and counts them) and keeps live
// ones.
func TestPurgeLoginSessions(t *testing.T) {
	forEachDB(t, func(t *testing.T, d *testDB) {
		s, _ := newStore(t, d)
		now := time.Now().UTC().Truncate(time.Second)
		for id, exp := range map[string]time.Time{"ls-old": now, "ls-live": now.Add(time.Hour)} {
			if err := s.CreateLoginSession(bg, &core.LoginSession{ID: id, SID: "s-" + id, UserID: "u", AMR: []string{"pwd"}, CreatedAt: now.Add(-time.Hour), ExpiresAt: exp}); err != nil {
				t.Fatal(err)
			}
		}
		n, err := s.Purge(bg, now)
		if err != nil || n != 1 {
			t.Fatalf("Purge: %d, %v; want 1 (the expired session)", n, err)
		}
		earlier := now.Add(-time.Minute)
		if _, err := s.GetLoginSession(bg, "ls-old", earlier); !errors.Is(err, core.ErrNotFound) {
			t.Errorf("an expired session survived Purge: %v", err)
		}
		if ls, err := s.GetLoginSession(bg, "ls-live", now); err != nil || ls.SID != "s-ls-live" {
			t.Errorf("Purge dropped a live session: %v %+v", err, ls)
		}
	})
}
