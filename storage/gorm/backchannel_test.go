package gormstore_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/oauth2kit/oauth2kit/core"
	gormstore "github.com/oauth2kit/oauth2kit/storage/gorm"
)

// Migrate adds client_ids to a login session table that holds rows: the
// column is nullable, an old row reads back with no clients, takes
// clients, and is taken with them; a row an older binary inserts without
// the column after the upgrade works the same.
func TestMigrateAddsSessionClientIDs(t *testing.T) {
	forEachDB(t, func(t *testing.T, d *testDB) {
		db := d.connect(t)
		if err := gormstore.MigrateLegacySessions(db); err != nil {
			t.Fatal(err)
		}
		now := time.Now().UTC().Truncate(time.Second)
		insert := func(id string) {
			t.Helper()
			if err := db.Exec(`INSERT INTO oauth2_login_sessions (id, sid, user_id, acr, amr, created_at, expires_at)
				VALUES (?, ?, 'alice', '', '["pwd"]', ?, ?)`, id, "sid-"+id, now, now.Add(time.Hour)).Error; err != nil {
				t.Fatal(err)
			}
		}
		insert("old-session")
		m := db.Migrator()
		if m.HasColumn("oauth2_login_sessions", "client_ids") {
			t.Fatal("the legacy table already has client_ids")
		}
		s := gormstore.New(db)
		if err := s.Migrate(bg); err != nil {
			t.Fatalf("Migrate over a login session table with rows: %v", err)
		}
		cts, err := m.ColumnTypes("oauth2_login_sessions")
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, ct := range cts {
			if ct.Name() == "client_ids" {
				found = true
				if nullable, _ := ct.Nullable(); !nullable {
					t.Error("client_ids is NOT NULL: MySQL 8 cannot add it to a table with rows without a default")
				}
			}
		}
		if !found {
			t.Fatal("client_ids missing after Migrate")
		}
		insert("older-binary")
		for _, id := range []string{"old-session", "older-binary"} {
			ls, err := s.GetLoginSession(bg, id, now)
			if err != nil || ls.ClientIDs != nil || ls.UserID != "alice" {
				t.Fatalf("%s after Migrate: %v %+v", id, err, ls)
			}
			for _, c := range []string{"rp-1", "rp-2", "rp-1"} {
				if err := s.AddSessionClient(bg, "sid-"+id, c, now); err != nil {
					t.Fatalf("AddSessionClient to %s: %v", id, err)
				}
			}
			taken, err := s.TakeLoginSession(bg, id, now)
			if err != nil || !slices.Equal(taken.ClientIDs, []string{"rp-1", "rp-2"}) {
				t.Errorf("TakeLoginSession of %s: %v %+v", id, err, taken)
			}
			if _, err := s.GetLoginSession(bg, id, now); !errors.Is(err, core.ErrNotFound) {
				t.Errorf("%s after TakeLoginSession: %v", id, err)
			}
		}
	})
}

// Purge keeps working on sessions with clients, and a session purged
// while expired is not brought back by a late AddSessionClient.
func TestPurgeSessionWithClients(t *testing.T) {
	forEachDB(t, func(t *testing.T, d *testDB) {
		s, _ := newStore(t, d)
		now := time.Now().UTC().Truncate(time.Second)
		ls := &core.LoginSession{ID: "ls-clients", SID: "sid-clients", UserID: "u", CreatedAt: now.Add(-time.Hour), ExpiresAt: now}
		if err := s.CreateLoginSession(bg, ls); err != nil {
			t.Fatal(err)
		}
		if err := s.AddSessionClient(bg, ls.SID, "rp", now.Add(-time.Minute)); err != nil {
			t.Fatal(err)
		}
		if n, err := s.Purge(bg, now); err != nil || n != 1 {
			t.Fatalf("Purge: %d, %v; want the expired session", n, err)
		}
		if err := s.AddSessionClient(bg, ls.SID, "late", now.Add(-time.Minute)); !errors.Is(err, core.ErrNotFound) {
			t.Fatalf("AddSessionClient to a purged session: %v, want ErrNotFound", err)
		}
		if _, err := s.GetLoginSession(bg, ls.ID, now.Add(-time.Minute)); !errors.Is(err, core.ErrNotFound) {
			t.Errorf("a purged session after AddSessionClient: %v", err)
		}
	})
}
