package gormstore_test

import (
	"errors"
	"testing"
	"time"

	"github.com/oauth2kit/oauth2kit/core"
)

// TestPurgeDeviceCodes: Purge keeps a device code core.DeviceCodeKeep past
// its expiry (a device still polling learns expired_token) and drops it
// after, on every database.
func TestPurgeDeviceCodes(t *testing.T) {
	forEachDB(t, func(t *testing.T, d *testDB) {
		s, db := newStore(t, d)
		now := time.Now().UTC().Truncate(time.Second)
		mk := func(sig string, expired time.Duration) {
			t.Helper()
			err := s.CreateDeviceCode(bg, &core.DeviceCode{Sig: sig, UserCodeSig: sig + "-uc", ClientID: "tv", Scope: "read",
				CreatedAt: now.Add(-expired - 10*time.Minute), ExpiresAt: now.Add(-expired), Interval: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
		}
		mk("recent", time.Minute)
		mk("old", core.DeviceCodeKeep+time.Second)
		if _, err := s.Purge(bg, now); err != nil {
			t.Fatal(err)
		}
		if n := countRows(t, db, "oauth2_device_codes", ""); n != 1 {
			t.Errorf("%d device codes after Purge, want 1", n)
		}
		if _, err := s.GetDeviceCode(bg, "recent"); err != nil {
			t.Errorf("the recently expired code: %v, want it kept", err)
		}
		if _, err := s.GetDeviceCode(bg, "old"); !errors.Is(err, core.ErrNotFound) {
			t.Errorf("the long expired code: %v, want ErrNotFound", err)
		}
	})
}
