package gormstore_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gorm.io/driver/sqlite"
	"gorm.io/gorm"

	"github.com/oauth2kit/oauth2kit/core"
	gormstore "github.com/oauth2kit/oauth2kit/storage/gorm"
)

type sqlStateErr string

func (e sqlStateErr) Error() string    { return "pg error " + string(e) }
func (e sqlStateErr) SQLState() string { return string(e) }

// TestTransientClassification: which errors count as lock conflicts,
// recognised without importing a driver.
func TestTransientClassification(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{errors.New("database is locked"), true},
		{fmt.Errorf("begin: %w", errors.New("database is locked (5) (SQLITE_BUSY)")), true},
		{errors.New("database table is locked"), true},
		{sqlStateErr("40001"), true},
		{fmt.Errorf("wrapped: %w", sqlStateErr("40P01")), true},
		{sqlStateErr("55P03"), true},
		{sqlStateErr("23505"), false}, // unique violation
		{sqlStateErr("57014"), false}, // query cancelled
		{errors.New("Error 1213 (40001): Deadlock found when trying to get lock; try restarting transaction"), true},
		{errors.New("Error 1205 (HY000): Lock wait timeout exceeded; try restarting transaction"), true},
		{errors.New("Error 1062 (23000): Duplicate entry 'x' for key 'PRIMARY'"), false},
		{errors.New("Error 12130: something else"), false},
		{context.Canceled, false},
		{core.ErrNotFound, false},
		{nil, false},
	} {
		if got := gormstore.Transient(c.err); got != c.want {
			t.Errorf("Transient(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

// TestTransientFromDrivers provokes real lock conflicts on each database
// and checks that the driver's error is recognised.
func TestTransientFromDrivers(t *testing.T) {
	forEachDB(t, func(t *testing.T, d *testDB) {
		db := d.connect(t)
		ctx := context.Background()
		if err := db.Exec("CREATE TABLE conflict_probe (id INTEGER PRIMARY KEY, v INTEGER NOT NULL)").Error; err != nil {
			t.Fatal(err)
		}
		if err := db.Exec("INSERT INTO conflict_probe (id, v) VALUES (1, 0), (2, 0)").Error; err != nil {
			t.Fatal(err)
		}
		sqlDB, _ := db.DB()
		conn := func() *sql.Conn {
			c, err := sqlDB.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = c.Close() })
			return c
		}
		exec := func(c *sql.Conn, q string) error { _, err := c.ExecContext(ctx, q); return err }
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		var got []error
		switch d.name {
		case "sqlite":
			// A second writer while the first holds the write lock, with a
			// busy timeout of 10 ms.
			a, b := conn(), conn()
			must(exec(b, "PRAGMA busy_timeout = 10"))
			must(exec(a, "BEGIN IMMEDIATE"))
			got = append(got, exec(b, "BEGIN IMMEDIATE"))
			must(exec(a, "ROLLBACK"))
		case "postgres":
			// Serialization failure: a REPEATABLE READ transaction updates
			// a row another transaction changed since its snapshot.
			a, b := conn(), conn()
			must(exec(a, "BEGIN ISOLATION LEVEL REPEATABLE READ"))
			must(exec(a, "SELECT v FROM conflict_probe WHERE id = 1"))
			must(exec(b, "UPDATE conflict_probe SET v = v + 1 WHERE id = 1"))
			got = append(got, exec(a, "UPDATE conflict_probe SET v = v + 1 WHERE id = 1"))
			must(exec(a, "ROLLBACK"))
			// Deadlock: two transactions lock two rows in opposite order.
			got = append(got, deadlock(t, a, b))
		case "mysql":
			a, b := conn(), conn()
			got = append(got, deadlock(t, a, b))
			// Lock wait timeout.
			must(exec(b, "SET SESSION innodb_lock_wait_timeout = 1"))
			must(exec(a, "BEGIN"))
			must(exec(a, "UPDATE conflict_probe SET v = v + 1 WHERE id = 1"))
			must(exec(b, "BEGIN"))
			got = append(got, exec(b, "UPDATE conflict_probe SET v = v + 1 WHERE id = 1"))
			must(exec(b, "ROLLBACK"))
			must(exec(a, "ROLLBACK"))
		}
		for _, err := range got {
			if err == nil {
				t.Error("the conflict did not happen")
				continue
			}
			t.Logf("%s: %v", d.name, err)
			if !gormstore.Transient(err) {
				t.Errorf("%s error %q is not recognised as transient", d.name, err)
			}
		}
	})
}

// deadlock makes a and b lock rows 1 and 2 in opposite orders and returns
// the error of the transaction the database chose as the victim.
func deadlock(t *testing.T, a, b *sql.Conn) error {
	t.Helper()
	ctx := context.Background()
	for _, c := range []*sql.Conn{a, b} {
		if _, err := c.ExecContext(ctx, "BEGIN"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.ExecContext(ctx, "UPDATE conflict_probe SET v = v + 1 WHERE id = 1"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.ExecContext(ctx, "UPDATE conflict_probe SET v = v + 1 WHERE id = 2"); err != nil {
		t.Fatal(err)
	}
	errA := make(chan error, 1)
	go func() {
		_, err := a.ExecContext(ctx, "UPDATE conflict_probe SET v = v + 1 WHERE id = 2")
		errA <- err
	}()
	time.Sleep(100 * time.Millisecond) // let a wait for b's lock
	_, errB := b.ExecContext(ctx, "UPDATE conflict_probe SET v = v + 1 WHERE id = 1")
	if errB != nil {
		_, _ = b.ExecContext(ctx, "ROLLBACK")
	}
	eA := <-errA
	_, _ = a.ExecContext(ctx, "ROLLBACK")
	_, _ = b.ExecContext(ctx, "ROLLBACK")
	if errB != nil {
		return errB
	}
	return eA
}

// TestSQLiteBusyIsUnavailable: a write lock that outlasts the busy timeout
// and the retries makes RedeemCode fail with core.ErrUnavailable, without
// calling issue and without consuming the code; once the lock is gone the
// code redeems.
func TestSQLiteBusyIsUnavailable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "busy.db")
	dsn := path + "?_txlock=immediate&_busy_timeout=20&_journal_mode=WAL"
	db, err := gorm.Open(sqlite.Open(dsn), gormConfig())
	if err != nil {
		t.Fatal(err)
	}
	pool(t, db, 2)
	s := gormstore.New(db)
	if err := s.Migrate(bg); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	g := grantAt(now, time.Minute)
	mustCreate(t, s, g)

	locker, err := sql.Open("sqlite3", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer locker.Close()
	conn, err := locker.Conn(bg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(bg, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	start := time.Now()
	_, err = s.RedeemCode(bg, g.CodeSig, now, func(*core.Grant) (*core.RefreshToken, error) {
		calls.Add(1)
		return refreshFor(g, now, time.Hour), nil
	})
	t.Logf("locked database: %v after %v", err, time.Since(start).Round(time.Millisecond))
	if !errors.Is(err, core.ErrUnavailable) {
		t.Errorf("RedeemCode on a locked database: %v, want ErrUnavailable", err)
	}
	if calls.Load() != 0 {
		t.Errorf("issue ran %d times on a locked database", calls.Load())
	}
	if err := s.RevokeFamily(bg, "fam", now.Add(time.Hour)); !errors.Is(err, core.ErrUnavailable) {
		t.Errorf("RevokeFamily on a locked database: %v, want ErrUnavailable", err)
	}
	if _, err := conn.ExecContext(bg, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RedeemCode(bg, g.CodeSig, now, func(*core.Grant) (*core.RefreshToken, error) { return nil, nil }); err != nil {
		t.Errorf("RedeemCode after the lock was released: %v", err)
	}
}

// TestPostgresSerializable: with SERIALIZABLE as the default isolation the
// losers of a race get serialization failures instead of waiting; the
// store retries them into the ordinary answers (ErrCodeUsed,
// ErrTokenRotated), or ErrUnavailable if they persist, and exactly one
// caller wins each round.
func TestPostgresSerializable(t *testing.T) {
	dsn := os.Getenv(envPostgres)
	if dsn == "" {
		t.Skipf("%s is not set: skipping PostgreSQL", envPostgres)
	}
	s, _ := newStore(t, postgresDBWith(t, dsn, map[string]string{"default_transaction_isolation": "serializable"}))
	const rounds, racers = 10, 16
	now := time.Now()
	var unavailable atomic.Int32
	for round := range rounds {
		g := grantAt(now, time.Minute)
		mustCreate(t, s, g)
		var wins, used atomic.Int32
		var wg sync.WaitGroup
		for range racers {
			wg.Go(func() {
				_, err := s.RedeemCode(bg, g.CodeSig, now, issueRefresh(refreshFor(g, now, time.Hour)))
				switch {
				case err == nil:
					wins.Add(1)
				case errors.Is(err, core.ErrCodeUsed):
					used.Add(1)
				case errors.Is(err, core.ErrUnavailable):
					unavailable.Add(1)
				default:
					t.Errorf("round %d: %v", round, err)
				}
			})
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("round %d: %d winners", round, wins.Load())
		}
	}
	t.Logf("serializable: %d rounds × %d racers, 1 winner each; %d losers got ErrUnavailable", rounds, racers, unavailable.Load())
}
