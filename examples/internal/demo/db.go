package demo

import (
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"gorm.io/driver/mysql"
	"gorm.io/driver/postgres"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	gormstore "github.com/oauth2kit/oauth2kit/storage/gorm"
)

// OpenDB opens the database a -db flag names: "postgres://…" and
// "mysql://user:pass@host:port/db" are shared databases (several instances
// may use one); anything else is a SQLite file path.
func OpenDB(dsn string) (*gorm.DB, error) {
	cfg := &gorm.Config{Logger: logger.Discard, TranslateError: true}
	switch {
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		return gorm.Open(postgres.Open(dsn), cfg)
	case strings.HasPrefix(dsn, "mysql://"):
		d, err := MySQLDSN(dsn)
		if err != nil {
			return nil, err
		}
		return gorm.Open(mysql.Open(d), cfg)
	default:
		db, err := gorm.Open(sqlite.Open(SQLiteDSN(dsn)), cfg)
		if err != nil {
			return nil, err
		}
		sqlDB, err := db.DB()
		if err != nil {
			return nil, err
		}
		// One writer at a time is what SQLite does anyway; more connections
		// only wait in its busy handler (millisecond sleeps). Two keep a
		// reader concurrent with the writer under WAL.
		sqlDB.SetMaxOpenConns(2)
		sqlDB.SetConnMaxIdleTime(5 * time.Minute)
		return db, nil
	}
}

// SQLiteDSN turns a file path into the kit's recommended mattn/go-sqlite3
// DSN (gormstore.SQLiteDSN: WAL, immediate write transactions, durable
// commits, a busy timeout, a prepared-statement cache); a "file:" URI is
// used as given.
func SQLiteDSN(path string) string {
	if strings.HasPrefix(path, "file:") {
		return path
	}
	return gormstore.SQLiteDSN("file:" + filepath.ToSlash(path))
}

// MySQLDSN converts mysql://user:pass@host:port/db?opts into the
// go-sql-driver form user:pass@tcp(host:port)/db?parseTime=true&loc=UTC&opts.
func MySQLDSN(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return "", errors.New("mysql DSN must look like mysql://user:pass@host:3306/db")
	}
	user := ""
	if u.User != nil {
		user = u.User.Username()
		if pw, ok := u.User.Password(); ok {
			user += ":" + pw
		}
		user += "@"
	}
	q := u.Query()
	q.Set("parseTime", "true")
	if q.Get("loc") == "" {
		q.Set("loc", "UTC")
	}
	return fmt.Sprintf("%stcp(%s)/%s?%s", user, u.Host, strings.TrimPrefix(u.Path, "/"), q.Encode()), nil
}

// isSQLite reports whether a -db value names a SQLite file.
func isSQLite(dsn string) bool {
	return !strings.Contains(dsn, "://")
}
