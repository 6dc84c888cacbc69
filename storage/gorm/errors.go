package gormstore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"gorm.io/gorm/logger"

	"github.com/oauth2kit/oauth2kit/core"
)

// Retries of a transaction that failed transiently.
const (
	maxAttempts  = 4
	firstBackoff = 5 * time.Millisecond
)

// errRace is returned inside a transaction that saw a state it cannot
// explain (a row that is consumable but was not consumed): another
// transaction moved it between two statements. It is retried like a lock
// conflict.
var errRace = errors.New("gormstore: concurrent update, retry")

// transient reports whether err is a lock conflict the database expects the
// client to retry: SQLite's SQLITE_BUSY/SQLITE_LOCKED, PostgreSQL's
// serialization failure (40001), deadlock (40P01) and lock timeout (55P03),
// MySQL/MariaDB's deadlock (1213) and lock wait timeout (1205).
//
// No driver is imported: PostgreSQL errors (pgx, lib/pq) expose SQLState();
// the others are recognised by their messages, which are stable parts of
// the drivers' error formats ("Error 1213 (40001): Deadlock found…" in
// go-sql-driver/mysql; "database is locked" in mattn/go-sqlite3 and
// "(SQLITE_BUSY)" in modernc.org/sqlite).
func transient(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, errRace) || errors.Is(err, errGroupAborted) {
		return true
	}
	var st interface{ SQLState() string }
	if errors.As(err, &st) {
		switch st.SQLState() {
		case "40001", "40P01", "55P03":
			return true
		}
		return false
	}
	msg := err.Error()
	for _, s := range []string{
		"database is locked",       // SQLITE_BUSY (mattn)
		"database table is locked", // SQLITE_LOCKED (mattn)
		"SQLITE_BUSY",              // modernc.org/sqlite
		"SQLITE_LOCKED",
		"Error 1213 (", "Error 1213:", // ER_LOCK_DEADLOCK
		"Error 1205 (", "Error 1205:", // ER_LOCK_WAIT_TIMEOUT
	} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// unavailable marks a transient failure that survived the retries, so that
// the server answers 503 temporarily_unavailable.
func unavailable(err error) error {
	return fmt.Errorf("gormstore: %w: %w", core.ErrUnavailable, err)
}

// retry runs op until it succeeds, fails for good, or failed transiently
// maxAttempts times. A transaction that failed was rolled back, so running
// it again is safe, with one exception: once a caller's issue callback has
// run (*called is true) the callback is never run a second time; the failure
// is reported as unavailable instead, with nothing written.
func retry(ctx context.Context, called *bool, op func() error) error {
	backoff := firstBackoff
	for attempt := 1; ; attempt++ {
		err := op()
		if err == nil || !transient(err) {
			return err
		}
		if attempt == maxAttempts || (called != nil && *called) {
			return unavailable(err)
		}
		// Jitter keeps colliding transactions from colliding again.
		d := backoff/2 + rand.N(backoff)
		backoff *= 3
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return unavailable(err)
		case <-t.C:
		}
	}
}

// redactingLogger hands the application's gorm logger every statement of
// the store without its bound values. They are signatures and secret
// hashes: not usable credentials, but nothing a log needs either.
type redactingLogger struct{ logger.Interface }

// LogMode keeps the wrapper around the re-levelled logger.
func (l redactingLogger) LogMode(lv logger.LogLevel) logger.Interface {
	return redactingLogger{l.Interface.LogMode(lv)}
}

// ParamsFilter implements gorm.ParamsFilter.
func (redactingLogger) ParamsFilter(_ context.Context, sql string, _ ...any) (string, []any) {
	return sql, nil
}
