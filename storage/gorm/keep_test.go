package gormstore_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	mysqldriver "github.com/go-sql-driver/mysql"
	"gorm.io/gorm"

	"github.com/oauth2kit/oauth2kit/core"
	gormstore "github.com/oauth2kit/oauth2kit/storage/gorm"
)

// TestCreateGrantExistsClientFoundRows: on MySQL/MariaDB, CreateGrant
// tells an existing signature apart also when the DSN sets
// clientFoundRows=true (rows matched instead of rows changed), and leaves
// the stored grant as it was.
func TestCreateGrantExistsClientFoundRows(t *testing.T) {
	for _, found := range []bool{false, true} {
		d := mysqlDBWith(t, func(c *mysqldriver.Config) { c.ClientFoundRows = found })
		s, db := newStore(t, d)
		now := time.Now()
		g := grantAt(now, time.Minute)
		mustCreate(t, s, g)
		dup := grantAt(now, time.Minute)
		dup.CodeSig = g.CodeSig
		if err := s.CreateGrant(bg, dup); !errors.Is(err, core.ErrExists) {
			t.Errorf("clientFoundRows=%v: CreateGrant of an existing signature: %v, want ErrExists", found, err)
		}
		var ids []string
		if err := db.Table("oauth2_grants").Where("code_sig = ?", g.CodeSig).Pluck("grant_id", &ids).Error; err != nil {
			t.Fatal(err)
		}
		if len(ids) != 1 || ids[0] != g.ID {
			t.Errorf("clientFoundRows=%v: grant ids under the signature %q, want [%s]", found, ids, g.ID)
		}
		if n := countRows(t, db, "oauth2_grants", ""); n != 1 {
			t.Errorf("clientFoundRows=%v: %d grants stored, want 1", found, n)
		}
	}
}

// legacyGrant inserts a grant row of the previous schema (no keep_until)
// with raw SQL.
func legacyGrant(t *testing.T, db *gorm.DB, sig, id, user string, expires time.Time) {
	t.Helper()
	err := db.Exec(`INSERT INTO oauth2_grants (code_sig, grant_id, client_id, user_id, redirect_uri, scope, code_challenge,
		code_challenge_method, additional_info, created_at, expires_at) VALUES (?, ?, 'conf', ?, '', 'read', '', '', '', ?, ?)`,
		sig, id, user, expires.Add(-time.Minute).UTC(), expires.UTC()).Error
	if err != nil {
		t.Fatal(err)
	}
}

// TestMigrateAddsKeepUntil: Migrate on a database of the previous schema
// holding rows adds the nullable keep_until column and the new indexes,
// keeps every row, and then Purge deletes a legacy row (keep_until NULL)
// once it expires and a new row once both its expiry and its KeepUntil
// have passed.
func TestMigrateAddsKeepUntil(t *testing.T) {
	forEachDB(t, func(t *testing.T, d *testDB) {
		db := d.connect(t)
		if err := gormstore.MigrateLegacy(db); err != nil {
			t.Fatalf("creating the previous schema: %v", err)
		}
		now := time.Now().UTC().Truncate(time.Second)
		legacyGrant(t, db, "legacy-expired", "g-old-1", "alice", now.Add(-time.Second))
		legacyGrant(t, db, "legacy-live", "g-old-2", "alice", now.Add(time.Hour))
		if db.Migrator().HasColumn("oauth2_grants", "keep_until") {
			t.Fatal("the previous schema already has keep_until")
		}

		s := gormstore.New(db)
		if err := s.Migrate(bg); err != nil {
			t.Fatalf("Migrate over the previous schema with rows: %v", err)
		}
		m := db.Migrator()
		if !m.HasColumn("oauth2_grants", "keep_until") {
			t.Fatal("Migrate did not add keep_until")
		}
		for table, ix := range map[string]string{
			"oauth2_grants":         "idx_oauth2_grants_keep_until",
			"oauth2_refresh_tokens": "idx_oauth2_refresh_tokens_user_id",
		} {
			if !m.HasIndex(table, ix) {
				t.Errorf("index %s on %s missing after Migrate", ix, table)
			}
		}
		if !m.HasIndex("oauth2_grants", "idx_oauth2_grants_user_id") {
			t.Error("index idx_oauth2_grants_user_id missing after Migrate")
		}
		if n := countRows(t, db, "oauth2_grants", "keep_until IS NULL"); n != 2 {
			t.Errorf("%d legacy rows with a NULL keep_until after Migrate, want 2", n)
		}

		// New rows: an expired code kept an hour longer, one whose
		// KeepUntil has passed too, and one with KeepUntil before its
		// expiry (stored as NULL: ExpiresAt counts).
		kept := grantAt(now.Add(-time.Hour), time.Hour-time.Second)
		kept.UserID, kept.KeepUntil = "alice", now.Add(time.Hour)
		gone := grantAt(now.Add(-2*time.Hour), time.Hour)
		gone.KeepUntil = now.Add(-time.Second)
		early := grantAt(now, time.Hour)
		early.UserID, early.KeepUntil = "carol", now.Add(time.Minute)
		for _, g := range []*core.Grant{kept, gone, early} {
			mustCreate(t, s, g)
		}
		if n := countRows(t, db, "oauth2_grants", "code_sig = ? AND keep_until IS NULL", early.CodeSig); n != 1 {
			t.Errorf("a KeepUntil before ExpiresAt was stored (want NULL)")
		}

		n, err := s.Purge(bg, now)
		if err != nil {
			t.Fatalf("Purge: %v", err)
		}
		if n != 2 {
			t.Errorf("Purge deleted %d rows, want 2 (legacy-expired, and the new row past its KeepUntil)", n)
		}
		var left []string
		if err := db.Table("oauth2_grants").Order("code_sig").Pluck("code_sig", &left).Error; err != nil {
			t.Fatal(err)
		}
		want := []string{early.CodeSig, kept.CodeSig, "legacy-live"}
		if strings.Join(left, " ") != strings.Join(sortStrings(want), " ") {
			t.Errorf("codes left after Purge: %q, want %q", left, sortStrings(want))
		}
		// The kept code's family is still found by user revocation.
		fams, err := s.RevokeUserGrants(bg, "alice", "", now.Add(48*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(sortStrings(fams), " ") != strings.Join(sortStrings([]string{"g-old-2", kept.ID}), " ") {
			t.Errorf("RevokeUserGrants after the migration: %q, want the legacy and the kept family", fams)
		}
		// Past the kept code's KeepUntil it goes; the legacy one at its
		// expiry.
		if n, err := s.Purge(bg, now.Add(time.Hour)); err != nil || n != 3 {
			t.Errorf("Purge an hour later: %d, %v; want 3 rows", n, err)
		}
		if c := countRows(t, db, "oauth2_grants", ""); c != 0 {
			t.Errorf("%d codes left, want 0", c)
		}
		// A second Migrate changes nothing.
		rec := &sqlRecorder{}
		if err := gormstore.New(db.Session(&gorm.Session{Logger: rec})).Migrate(bg); err != nil {
			t.Fatal(err)
		}
		for _, q := range rec.all() {
			if ddl.MatchString(q) {
				t.Errorf("Migrate after the upgrade changed the schema: %s", q)
			}
		}
	})
}

func sortStrings(l []string) []string {
	out := append([]string(nil), l...)
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// TestQueriesUseIndexes: on SQLite, every SELECT of Purge, RevokeUserGrants
// and UserClients over codes and refresh tokens is a search of an index,
// not a scan of the table: Purge's two passes over codes the index
// (keep_until, expires_at), the user-wide queries the user_id indexes. The
// statements are the store's own, recorded from its logger.
func TestQueriesUseIndexes(t *testing.T) {
	rec := &sqlRecorder{}
	db := sqliteDB(t).connect(t)
	s := gormstore.New(db.Session(&gorm.Session{Logger: rec}))
	if err := s.Migrate(bg); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	for _, c := range []struct {
		what  string
		run   func() error
		index map[string]string // table -> index every SELECT of it must search
	}{
		{"Purge", func() error { _, err := s.Purge(bg, now); return err }, map[string]string{
			"oauth2_grants": "idx_oauth2_grants_keep_until", "oauth2_refresh_tokens": "idx_oauth2_refresh_tokens_expires_at",
			"oauth2_revoked_families": "idx_oauth2_revoked_families_keep_until",
		}},
		{"RevokeUserGrants", func() error { _, err := s.RevokeUserGrants(bg, "alice", "", now); return err }, map[string]string{
			"oauth2_grants": "idx_oauth2_grants_user_id", "oauth2_refresh_tokens": "idx_oauth2_refresh_tokens_user_id",
		}},
		{"UserClients", func() error { _, err := s.UserClients(bg, "alice", now); return err }, map[string]string{
			"oauth2_grants": "idx_oauth2_grants_user_id", "oauth2_refresh_tokens": "idx_oauth2_refresh_tokens_user_id",
		}},
	} {
		rec.reset()
		if err := c.run(); err != nil {
			t.Fatalf("%s: %v", c.what, err)
		}
		checked := map[string]bool{}
		for _, q := range rec.all() {
			if !strings.HasPrefix(strings.ToUpper(strings.TrimSpace(q)), "SELECT") {
				continue
			}
			args := make([]any, strings.Count(q, "?"))
			for i := range args {
				args[i] = now
			}
			var plan []struct {
				ID, Parent, Notused int
				Detail              string
			}
			if err := db.Raw("EXPLAIN QUERY PLAN "+q, args...).Scan(&plan).Error; err != nil {
				t.Fatalf("%s: EXPLAIN %s: %v", c.what, q, err)
			}
			for _, p := range plan {
				for table, ix := range c.index {
					if strings.Contains(p.Detail, " "+table+" ") || strings.HasSuffix(p.Detail, " "+table) {
						checked[table] = true
						if !strings.HasPrefix(p.Detail, "SEARCH") || !strings.Contains(p.Detail, ix) {
							t.Errorf("%s: %s\n  plan %q, want a SEARCH using %s", c.what, q, p.Detail, ix)
						}
					}
				}
			}
		}
		for table := range c.index {
			if !checked[table] {
				t.Errorf("%s: no SELECT of %s recorded", c.what, table)
			}
		}
	}
}

// TestRevokeUserKeepsLatest: RevokeUserGrants raises a family's keep_until
// as RevokeFamily does, and never lowers it.
func TestRevokeUserKeepsLatest(t *testing.T) {
	forEachDB(t, func(t *testing.T, d *testDB) {
		s, db := newStore(t, d)
		now := time.Now().UTC().Truncate(time.Second)
		early, late := grantAt(now, time.Minute), grantAt(now, time.Minute)
		for _, g := range []*core.Grant{early, late} {
			g.UserID = "bob"
			mustCreate(t, s, g)
		}
		if err := s.RevokeFamily(bg, early.ID, now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := s.RevokeFamily(bg, late.ID, now.Add(5*time.Hour)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.RevokeUserGrants(bg, "bob", "", now.Add(3*time.Hour)); err != nil {
			t.Fatal(err)
		}
		keep := func(fam string) time.Time {
			t.Helper()
			var rows []struct{ KeepUntil time.Time }
			if err := db.Table("oauth2_revoked_families").Select("keep_until").Where("family_id = ?", fam).Find(&rows).Error; err != nil || len(rows) != 1 {
				t.Fatalf("revocation of %s: %v, %d rows", fam, err, len(rows))
			}
			return rows[0].KeepUntil.UTC()
		}
		if got := keep(early.ID); !got.Equal(now.Add(3 * time.Hour)) {
			t.Errorf("keep_until of a family revoked earlier: %v, want raised to %v", got, now.Add(3*time.Hour))
		}
		if got := keep(late.ID); !got.Equal(now.Add(5 * time.Hour)) {
			t.Errorf("keep_until of a family revoked for longer: %v, want kept at %v", got, now.Add(5*time.Hour))
		}
	})
}
