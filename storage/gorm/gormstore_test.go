package gormstore_test

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/oauth2kit/oauth2kit/core"
	"github.com/oauth2kit/oauth2kit/core/storagetest"
	gormstore "github.com/oauth2kit/oauth2kit/storage/gorm"
)

var bg = context.Background()

// TestConformance runs core/storagetest on every database.
func TestConformance(t *testing.T) {
	forEachDB(t, func(t *testing.T, d *testDB) {
		s, _ := newStore(t, d)
		storagetest.Run(t, func(t *testing.T) storagetest.Store { return s })
	})
}

// TestClientRegistry runs the core.ClientRegistry sub-suite on every
// database.
func TestClientRegistry(t *testing.T) {
	forEachDB(t, func(t *testing.T, d *testDB) {
		s, _ := newStore(t, d)
		storagetest.RunClientRegistry(t, func(t *testing.T) storagetest.RegistryStore { return s })
	})
}

// TestUserGrants runs the core.UserGrantStore sub-suite on every database.
func TestUserGrants(t *testing.T) {
	forEachDB(t, func(t *testing.T, d *testDB) {
		s, _ := newStore(t, d)
		storagetest.RunUserGrants(t, func(t *testing.T) storagetest.UserGrantsStore { return s })
	})
}

// ---- fixtures ------------------------------------------------------------------

var seq struct {
	sync.Mutex
	n int
}

// uniq returns an identifier unique within the test binary, shaped like the
// server's signatures where that matters (43 characters).
func uniq(prefix string) string {
	seq.Lock()
	seq.n++
	n := seq.n
	seq.Unlock()
	s := fmt.Sprintf("%s-%d-%d", prefix, time.Now().UnixNano(), n)
	if len(s) < 43 {
		s += strings.Repeat("x", 43-len(s))
	}
	return s
}

func grantAt(now time.Time, ttl time.Duration) *core.Grant {
	return &core.Grant{
		ID: uniq("g"), CodeSig: uniq("code"), ClientID: "conf", UserID: "alice",
		RedirectURI: "https://client.example.com/cb", Scope: "read",
		CreatedAt: now, ExpiresAt: now.Add(ttl),
	}
}

func refreshFor(g *core.Grant, now time.Time, ttl time.Duration) *core.RefreshToken {
	return &core.RefreshToken{
		Sig: uniq("rt"), FamilyID: g.ID, ClientID: g.ClientID, UserID: g.UserID,
		Scope: g.Scope, CreatedAt: now, ExpiresAt: now.Add(ttl),
	}
}

func issueRefresh(rt *core.RefreshToken) func(*core.Grant) (*core.RefreshToken, error) {
	return func(*core.Grant) (*core.RefreshToken, error) { cp := *rt; return &cp, nil }
}

func neverIssue(t testing.TB) func(*core.Grant) (*core.RefreshToken, error) {
	return func(*core.Grant) (*core.RefreshToken, error) {
		t.Error("issue called, but must not be")
		return nil, errors.New("must not issue")
	}
}

func mustCreate(t testing.TB, s *gormstore.Store, g *core.Grant) {
	t.Helper()
	if err := s.CreateGrant(bg, g); err != nil {
		t.Fatalf("CreateGrant: %v", err)
	}
}

// codeUsed reads the consumption state of a code straight from the table.
func codeUsed(t *testing.T, db *gorm.DB, sig string) bool {
	t.Helper()
	var rows []struct{ UsedAt *time.Time }
	if err := db.Table("oauth2_grants").Select("used_at").Where("code_sig = ?", sig).Find(&rows).Error; err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 {
		t.Fatalf("%d rows for one code signature", len(rows))
	}
	return rows[0].UsedAt != nil
}

func countRows(t testing.TB, db *gorm.DB, table, where string, args ...any) int64 {
	t.Helper()
	var n int64
	q := db.Table(table)
	if where != "" {
		q = q.Where(where, args...)
	}
	if err := q.Count(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}

// ---- migrations ------------------------------------------------------------------

// sqlRecorder is a gorm logger that keeps every statement.
type sqlRecorder struct {
	mu    sync.Mutex
	stmts []string
}

func (r *sqlRecorder) LogMode(logger.LogLevel) logger.Interface { return r }
func (r *sqlRecorder) Info(context.Context, string, ...any)     {}
func (r *sqlRecorder) Warn(context.Context, string, ...any)     {}
func (r *sqlRecorder) Error(context.Context, string, ...any)    {}
func (r *sqlRecorder) reset()                                   { r.mu.Lock(); r.stmts = nil; r.mu.Unlock() }
func (r *sqlRecorder) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.stmts...)
}
func (r *sqlRecorder) Trace(_ context.Context, _ time.Time, fc func() (string, int64), _ error) {
	sql, _ := fc()
	r.mu.Lock()
	r.stmts = append(r.stmts, sql)
	r.mu.Unlock()
}

var ddl = regexp.MustCompile(`(?i)^\s*(CREATE|ALTER|DROP|RENAME)\b`)

// TestMigrate: Migrate creates the tables and indexes, and a second run
// changes nothing (no DDL at all).
func TestMigrate(t *testing.T) {
	forEachDB(t, func(t *testing.T, d *testDB) {
		rec := &sqlRecorder{}
		db := d.connect(t).Session(&gorm.Session{Logger: rec})
		s := gormstore.New(db)
		if err := s.Migrate(bg); err != nil {
			t.Fatalf("first Migrate: %v", err)
		}
		var created int
		for _, q := range rec.all() {
			if ddl.MatchString(q) {
				created++
			}
		}
		if created == 0 {
			t.Fatal("the first Migrate issued no DDL")
		}
		rec.reset()
		if err := s.Migrate(bg); err != nil {
			t.Fatalf("second Migrate: %v", err)
		}
		for _, q := range rec.all() {
			if ddl.MatchString(q) {
				t.Errorf("the second Migrate changed the schema: %s", q)
			}
		}
		if err := gormstore.New(d.connect(t)).Migrate(bg); err != nil {
			t.Fatalf("Migrate from another pool: %v", err)
		}
		m := db.Migrator()
		for table, indexes := range map[string][]string{
			"oauth2_clients":          nil,
			"oauth2_grants":           {"idx_oauth2_grants_expires_at", "idx_oauth2_grants_keep_until", "idx_oauth2_grants_user_id"},
			"oauth2_refresh_tokens":   {"idx_oauth2_refresh_tokens_family_id", "idx_oauth2_refresh_tokens_expires_at", "idx_oauth2_refresh_tokens_user_id"},
			"oauth2_revoked_families": {"idx_oauth2_revoked_families_keep_until"},
			"oauth2_consents":         {"idx_oauth2_consents_client_id"},
		} {
			if !m.HasTable(table) {
				t.Errorf("table %s missing", table)
			}
			for _, ix := range indexes {
				if !m.HasIndex(table, ix) {
					t.Errorf("index %s on %s missing", ix, table)
				}
			}
		}
		// Signatures are primary keys: a second code with the same
		// signature is refused, not merged.
		g := grantAt(time.Now(), time.Minute)
		mustCreate(t, s, g)
		dup := grantAt(time.Now(), time.Minute)
		dup.CodeSig = g.CodeSig
		if err := s.CreateGrant(bg, dup); !errors.Is(err, core.ErrExists) {
			t.Errorf("a second grant with the same code signature: %v, want ErrExists", err)
		}
	})
}

// TestLogsCarryNoValues: the store's statements reach the gorm logger
// without their bound values.
func TestLogsCarryNoValues(t *testing.T) {
	forEachDB(t, func(t *testing.T, d *testDB) {
		rec := &sqlRecorder{}
		s := gormstore.New(d.connect(t).Session(&gorm.Session{Logger: rec}))
		if err := s.Migrate(bg); err != nil {
			t.Fatal(err)
		}
		const marker = "MARKERVALUE"
		c := &core.Client{ID: "client" + marker, SecretHash: "sha256$" + marker, RedirectURIs: []string{"https://a.example/cb"}}
		if err := s.SaveClient(bg, c); err != nil {
			t.Fatal(err)
		}
		g := grantAt(time.Now(), time.Minute)
		g.CodeSig = "code" + marker
		mustCreate(t, s, g)
		if _, err := s.RedeemCode(bg, g.CodeSig, time.Now(), issueRefresh(&core.RefreshToken{Sig: "rt" + marker, FamilyID: g.ID, ExpiresAt: time.Now().Add(time.Hour)})); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetClient(bg, c.ID); err != nil {
			t.Fatal(err)
		}
		stmts := rec.all()
		if len(stmts) == 0 {
			t.Fatal("nothing was logged")
		}
		for _, q := range stmts {
			if strings.Contains(q, marker) {
				t.Errorf("a bound value reached the log: %s", q)
			}
		}
	})
}

// redeemAndRotate redeems a fresh code on s and rotates the refresh token
// it issued, checking what issue is handed and what comes back.
func redeemAndRotate(t *testing.T, s *gormstore.Store) {
	t.Helper()
	now := time.Now()
	g := grantAt(now, time.Minute)
	mustCreate(t, s, g)
	rt := refreshFor(g, now, time.Hour)
	got, err := s.RedeemCode(bg, g.CodeSig, now, func(gr *core.Grant) (*core.RefreshToken, error) {
		if gr.ID != g.ID || gr.CodeSig != g.CodeSig || gr.ClientID != g.ClientID || gr.UsedAt != nil {
			t.Errorf("issue got %+v", gr)
		}
		cp := *rt
		return &cp, nil
	})
	if err != nil || got.ID != g.ID || got.UsedAt == nil {
		t.Fatalf("RedeemCode: %+v, %v", got, err)
	}
	next := refreshFor(g, now, time.Hour)
	old, err := s.RotateRefreshToken(bg, rt.Sig, now, func(o *core.RefreshToken) (*core.RefreshToken, error) {
		if o.Sig != rt.Sig || o.FamilyID != g.ID || o.RotatedAt != nil {
			t.Errorf("issue got %+v", o)
		}
		cp := *next
		return &cp, nil
	})
	if err != nil || old.Sig != rt.Sig || old.RotatedAt != nil {
		t.Fatalf("RotateRefreshToken: %+v, %v", old, err)
	}
}

// TestConsumingStatements: on PostgreSQL and SQLite the consuming UPDATE
// returns the row, so a successful redemption or rotation runs no SELECT;
// on MySQL/MariaDB, which have no UPDATE … RETURNING, no UPDATE asks for
// one.
func TestConsumingStatements(t *testing.T) {
	forEachDB(t, func(t *testing.T, d *testDB) {
		rec := &sqlRecorder{}
		s := gormstore.New(d.connect(t).Session(&gorm.Session{Logger: rec}))
		if err := s.Migrate(bg); err != nil {
			t.Fatal(err)
		}
		rec.reset()
		redeemAndRotate(t, s)
		for _, q := range rec.all() {
			u := strings.ToUpper(strings.TrimSpace(q))
			switch {
			case d.name == "mysql" && strings.HasPrefix(u, "UPDATE") && strings.Contains(u, "RETURNING"):
				t.Errorf("UPDATE … RETURNING on MySQL/MariaDB: %s", q)
			case d.name != "mysql" && strings.HasPrefix(u, "SELECT"):
				t.Errorf("a SELECT after an UPDATE that returns the row: %s", q)
			}
		}
	})
}

// TestPostgresWithoutReturning: a dialector opened without RETURNING
// support (gorm then drops the clause) still consumes codes and tokens
// correctly, reading the row after the UPDATE.
func TestPostgresWithoutReturning(t *testing.T) {
	sqlDB, err := postgresDB(t).connect(t).DB()
	if err != nil {
		t.Fatal(err)
	}
	db, err := gorm.Open(postgres.New(postgres.Config{Conn: sqlDB, WithoutReturning: true}), gormConfig())
	if err != nil {
		t.Fatal(err)
	}
	s := gormstore.New(db)
	if err := s.Migrate(bg); err != nil {
		t.Fatal(err)
	}
	redeemAndRotate(t, s)
}

// ---- faults ------------------------------------------------------------------------

var errInjected = errors.New("injected storage failure")

// failRefreshInserts makes every INSERT into oauth2_refresh_tokens on db
// fail, as a database error between the consumption and the token write
// would.
func failRefreshInserts(t *testing.T, db *gorm.DB) {
	t.Helper()
	err := db.Callback().Create().Before("gorm:create").Register("test:fail_refresh", func(tx *gorm.DB) {
		if tx.Statement.Table == "oauth2_refresh_tokens" {
			_ = tx.AddError(errInjected)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestRedeemFaultWritesNothing: a storage error after the code was
// consumed but before the refresh token is written rolls everything back:
// the code stays unconsumed, no refresh token is stored, and the code still
// redeems once the fault is gone.
func TestRedeemFaultWritesNothing(t *testing.T) {
	forEachDB(t, func(t *testing.T, d *testDB) {
		s, db := newStore(t, d)
		now := time.Now()
		check := func(t *testing.T, g *core.Grant, rt *core.RefreshToken, err error) {
			t.Helper()
			if err == nil {
				t.Fatal("RedeemCode succeeded despite the fault")
			}
			if errors.Is(err, core.ErrCodeUsed) || errors.Is(err, core.ErrNotFound) {
				t.Fatalf("RedeemCode: %v, want a storage error", err)
			}
			if codeUsed(t, db, g.CodeSig) {
				t.Error("the code was consumed although no token was stored")
			}
			if n := countRows(t, db, "oauth2_refresh_tokens", "family_id = ?", g.ID); n != 0 {
				t.Errorf("%d refresh tokens stored for the failed redemption", n)
			}
			good := refreshFor(g, now, time.Hour)
			if _, err := s.RedeemCode(bg, g.CodeSig, now, issueRefresh(good)); err != nil {
				t.Errorf("the code no longer redeems after the fault: %v", err)
			}
		}

		t.Run("InjectedInsertError", func(t *testing.T) {
			faulty := gormstore.New(func() *gorm.DB { db := d.connect(t); failRefreshInserts(t, db); return db }())
			g := grantAt(now, time.Minute)
			mustCreate(t, s, g)
			rt := refreshFor(g, now, time.Hour)
			_, err := faulty.RedeemCode(bg, g.CodeSig, now, issueRefresh(rt))
			if !errors.Is(err, errInjected) {
				t.Errorf("RedeemCode: %v, want the injected error", err)
			}
			check(t, g, rt, err)
		})

		t.Run("UniqueViolation", func(t *testing.T) {
			// A refresh token already stored under the signature issue
			// returns: the INSERT violates the primary key.
			first := grantAt(now, time.Minute)
			mustCreate(t, s, first)
			taken := refreshFor(first, now, time.Hour)
			if _, err := s.RedeemCode(bg, first.CodeSig, now, issueRefresh(taken)); err != nil {
				t.Fatal(err)
			}
			g := grantAt(now, time.Minute)
			mustCreate(t, s, g)
			clash := refreshFor(g, now, time.Hour)
			clash.Sig = taken.Sig
			_, err := s.RedeemCode(bg, g.CodeSig, now, issueRefresh(clash))
			if errors.Is(err, core.ErrUnavailable) {
				t.Errorf("a constraint violation was reported as transient: %v", err)
			}
			check(t, g, clash, err)
			if got, err := s.GetRefreshToken(bg, taken.Sig); err != nil || got.FamilyID != first.ID {
				t.Errorf("the existing refresh token changed: %+v, %v", got, err)
			}
		})

		t.Run("ContextCancelledInIssue", func(t *testing.T) {
			g := grantAt(now, time.Minute)
			mustCreate(t, s, g)
			rt := refreshFor(g, now, time.Hour)
			ctx, cancel := context.WithCancel(bg)
			_, err := s.RedeemCode(ctx, g.CodeSig, now, func(*core.Grant) (*core.RefreshToken, error) {
				cancel() // the request went away while the token was minted
				cp := *rt
				return &cp, nil
			})
			check(t, g, rt, err)
			if _, err := s.GetRefreshToken(bg, rt.Sig); !errors.Is(err, core.ErrNotFound) {
				t.Errorf("GetRefreshToken of the abandoned token: %v, want ErrNotFound", err)
			}
		})
	})
}

// TestRotateFaultWritesNothing: the same for rotation: the old token is not
// marked rotated and the new one not stored.
func TestRotateFaultWritesNothing(t *testing.T) {
	forEachDB(t, func(t *testing.T, d *testDB) {
		s, db := newStore(t, d)
		now := time.Now()
		g := grantAt(now, time.Minute)
		mustCreate(t, s, g)
		old := refreshFor(g, now, time.Hour)
		if _, err := s.RedeemCode(bg, g.CodeSig, now, issueRefresh(old)); err != nil {
			t.Fatal(err)
		}
		faultyDB := d.connect(t)
		failRefreshInserts(t, faultyDB)
		next := refreshFor(g, now, time.Hour)
		_, err := gormstore.New(faultyDB).RotateRefreshToken(bg, old.Sig, now, func(*core.RefreshToken) (*core.RefreshToken, error) {
			cp := *next
			return &cp, nil
		})
		if !errors.Is(err, errInjected) {
			t.Fatalf("RotateRefreshToken: %v, want the injected error", err)
		}
		if got, err := s.GetRefreshToken(bg, old.Sig); err != nil || got.RotatedAt != nil {
			t.Errorf("old token after the fault: %+v, %v; want unrotated", got, err)
		}
		if n := countRows(t, db, "oauth2_refresh_tokens", "family_id = ?", g.ID); n != 1 {
			t.Errorf("%d refresh tokens in the family after the fault, want 1", n)
		}
		if _, err := s.RotateRefreshToken(bg, old.Sig, now, func(*core.RefreshToken) (*core.RefreshToken, error) {
			cp := *next
			return &cp, nil
		}); err != nil {
			t.Errorf("the token no longer rotates after the fault: %v", err)
		}
	})
}

// ---- housekeeping ----------------------------------------------------------------

func TestPurge(t *testing.T) {
	forEachDB(t, func(t *testing.T, d *testDB) {
		s, db := newStore(t, d)
		now := time.Now().UTC().Truncate(time.Second)

		expired := grantAt(now.Add(-time.Hour), time.Hour) // expires exactly now
		live := grantAt(now, time.Minute)
		usedExpired := grantAt(now.Add(-2*time.Minute), time.Minute)
		for _, g := range []*core.Grant{expired, live, usedExpired} {
			mustCreate(t, s, g)
		}
		if _, err := s.RedeemCode(bg, usedExpired.CodeSig, now.Add(-90*time.Second), issueRefresh(refreshFor(usedExpired, now, -time.Second))); err != nil {
			t.Fatal(err)
		}
		// A refresh token that outlives its (purged) code.
		seed := grantAt(now, time.Hour)
		mustCreate(t, s, seed)
		liveRT := refreshFor(seed, now, 24*time.Hour)
		if _, err := s.RedeemCode(bg, seed.CodeSig, now, issueRefresh(liveRT)); err != nil {
			t.Fatal(err)
		}
		if err := s.RevokeFamily(bg, "fam-old", now.Add(-time.Second)); err != nil {
			t.Fatal(err)
		}
		if err := s.RevokeFamily(bg, "fam-new", now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}

		n, err := s.Purge(bg, now)
		if err != nil {
			t.Fatalf("Purge: %v", err)
		}
		// expired and usedExpired codes, usedExpired's refresh token,
		// fam-old.
		if n != 4 {
			t.Errorf("Purge deleted %d rows, want 4", n)
		}
		if c := countRows(t, db, "oauth2_grants", ""); c != 2 {
			t.Errorf("%d codes left, want 2 (live, seed)", c)
		}
		if _, err := s.RedeemCode(bg, expired.CodeSig, now.Add(-time.Minute), neverIssue(t)); !errors.Is(err, core.ErrNotFound) {
			t.Errorf("purged code: %v, want ErrNotFound", err)
		}
		if _, err := s.GetRefreshToken(bg, liveRT.Sig); err != nil {
			t.Errorf("a live refresh token was purged: %v", err)
		}
		if r, _ := s.IsFamilyRevoked(bg, "fam-old"); r {
			t.Error("an expired revocation survived Purge")
		}
		if r, _ := s.IsFamilyRevoked(bg, "fam-new"); !r {
			t.Error("a live revocation was purged")
		}
		if _, err := s.RedeemCode(bg, live.CodeSig, now, func(*core.Grant) (*core.RefreshToken, error) { return nil, nil }); err != nil {
			t.Errorf("a live code was purged: %v", err)
		}
		if n, err := s.Purge(bg, now); err != nil || n != 0 {
			t.Errorf("second Purge: %d, %v; want 0", n, err)
		}

		// A backlog larger than one batch is deleted in several.
		defer gormstore.SetPurgeBatch(3)()
		for range 10 {
			mustCreate(t, s, grantAt(now.Add(-time.Hour), time.Minute))
		}
		if n, err := s.Purge(bg, now); err != nil || n != 10 {
			t.Errorf("Purge of 10 expired codes in batches of 3: %d, %v", n, err)
		}
		if c := countRows(t, db, "oauth2_grants", ""); c != 2 {
			t.Errorf("%d codes left after the batched purge, want 2", c)
		}
	})
}

// TestRevokeFamilyKeepsLatest: keep_until only ever grows.
func TestRevokeFamilyKeepsLatest(t *testing.T) {
	forEachDB(t, func(t *testing.T, d *testDB) {
		s, _ := newStore(t, d)
		now := time.Now().UTC().Truncate(time.Second)
		fam := uniq("fam")
		for _, k := range []time.Duration{2 * time.Hour, time.Hour, 3 * time.Hour, time.Minute} {
			if err := s.RevokeFamily(bg, fam, now.Add(k)); err != nil {
				t.Fatal(err)
			}
		}
		if n, _ := s.Purge(bg, now.Add(3*time.Hour-time.Second)); n != 0 {
			t.Errorf("Purge before the latest keepUntil deleted %d rows", n)
		}
		if n, _ := s.Purge(bg, now.Add(3*time.Hour)); n != 1 {
			t.Errorf("Purge at the latest keepUntil deleted %d rows, want 1", n)
		}
		// Concurrent revocations of one family.
		fam = uniq("fam")
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for i := range 8 {
			wg.Go(func() { errs <- s.RevokeFamily(bg, fam, now.Add(time.Duration(i+1)*time.Hour)) })
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Errorf("concurrent RevokeFamily: %v", err)
			}
		}
		if n, _ := s.Purge(bg, now.Add(8*time.Hour-time.Second)); n != 0 {
			t.Errorf("concurrent revocations lost the latest keepUntil (%d rows purged)", n)
		}
	})
}

// ---- client administration -------------------------------------------------------

func TestClientAdmin(t *testing.T) {
	forEachDB(t, func(t *testing.T, d *testDB) {
		s, _ := newStore(t, d)
		ids := []string{"b-client", "a-client", "C-client", "a-client "}
		for _, id := range ids {
			if err := s.SaveClient(bg, &core.Client{ID: id, Name: "App " + id, SecretHash: "sha256$x", RedirectURIs: []string{"https://a.example/cb"}}); err != nil {
				t.Fatalf("SaveClient(%q): %v", id, err)
			}
		}
		list, err := s.ListClients(bg)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, c := range list {
			got = append(got, c.ID)
		}
		if want := []string{"C-client", "a-client", "a-client ", "b-client"}; strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("ListClients: %q, want %q (byte order; ids differing by case or trailing space are distinct)", got, want)
		}
		for _, id := range []string{"A-CLIENT", "a-client  ", "c-client"} {
			if _, err := s.GetClient(bg, id); !errors.Is(err, core.ErrNotFound) {
				t.Errorf("GetClient(%q): %v, want ErrNotFound", id, err)
			}
		}

		// Rotating the secret, twice to the same value (MySQL then
		// reports no changed row).
		for range 2 {
			if err := s.SetClientSecretHash(bg, "a-client", "sha256$new"); err != nil {
				t.Fatalf("SetClientSecretHash: %v", err)
			}
		}
		if c, _ := s.GetClient(bg, "a-client"); c == nil || c.SecretHash != "sha256$new" {
			t.Errorf("secret hash not replaced: %+v", c)
		}
		if c, _ := s.GetClient(bg, "a-client "); c == nil || c.SecretHash != "sha256$x" {
			t.Errorf("the secret of another client changed: %+v", c)
		}
		if err := s.SetClientSecretHash(bg, "nobody", "sha256$new"); !errors.Is(err, core.ErrNotFound) {
			t.Errorf("SetClientSecretHash of an unknown client: %v, want ErrNotFound", err)
		}

		// Deleting a client drops its consents, not other clients'.
		if err := s.SaveConsent(bg, "alice", "b-client", "read"); err != nil {
			t.Fatal(err)
		}
		if err := s.SaveConsent(bg, "alice", "a-client", "read"); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteClient(bg, "b-client"); err != nil {
			t.Fatalf("DeleteClient: %v", err)
		}
		if err := s.DeleteClient(bg, "b-client"); !errors.Is(err, core.ErrNotFound) {
			t.Errorf("second DeleteClient: %v, want ErrNotFound", err)
		}
		if _, err := s.GetClient(bg, "b-client"); !errors.Is(err, core.ErrNotFound) {
			t.Errorf("GetClient after DeleteClient: %v", err)
		}
		if _, err := s.GetConsent(bg, "alice", "b-client"); !errors.Is(err, core.ErrNotFound) {
			t.Errorf("consent of a deleted client: %v, want ErrNotFound", err)
		}
		if sc, err := s.GetConsent(bg, "alice", "a-client"); err != nil || sc != "read" {
			t.Errorf("consent of another client: %q, %v", sc, err)
		}
		if list, _ := s.ListClients(bg); len(list) != 3 {
			t.Errorf("%d clients after one deletion, want 3", len(list))
		}
	})
}

// Deleting a client deletes its codes and refresh tokens, so a client
// registered later under the same id cannot redeem or refresh with them.
func TestDeleteClientDropsItsCredentials(t *testing.T) {
	forEachDB(t, func(t *testing.T, d *testDB) {
		s, _ := newStore(t, d)
		now := time.Now().UTC().Truncate(time.Microsecond)
		c := &core.Client{ID: "conf", SecretHash: "sha256$x", RedirectURIs: []string{"https://a.example/cb"}}
		if err := s.SaveClient(bg, c); err != nil {
			t.Fatal(err)
		}
		g := grantAt(now, time.Minute)
		mustCreate(t, s, g)
		used := grantAt(now, time.Minute)
		mustCreate(t, s, used)
		rt := refreshFor(used, now, time.Hour)
		if _, err := s.RedeemCode(bg, used.CodeSig, now, issueRefresh(rt)); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteClient(bg, "conf"); err != nil {
			t.Fatal(err)
		}
		if err := s.SaveClient(bg, c); err != nil { // re-registered under the same id
			t.Fatal(err)
		}
		if _, err := s.RedeemCode(bg, g.CodeSig, now, neverIssue(t)); !errors.Is(err, core.ErrNotFound) {
			t.Errorf("code of the deleted client: %v, want ErrNotFound", err)
		}
		if _, err := s.GetRefreshToken(bg, rt.Sig); !errors.Is(err, core.ErrNotFound) {
			t.Errorf("refresh token of the deleted client: %v, want ErrNotFound", err)
		}
	})
}
