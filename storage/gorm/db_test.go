package gormstore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"time"

	mysqldriver "github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"gorm.io/driver/mysql"
	"gorm.io/driver/postgres"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	gormstore "github.com/oauth2kit/oauth2kit/storage/gorm"
)

// The PostgreSQL and MySQL/MariaDB tests run only when these are set.
//
//   - OAUTH2KIT_TEST_POSTGRES_DSN: any DSN pgx accepts, URL or key=value,
//     e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable. The
//     user needs CREATE on the database: every test run creates its own
//     schema (oauth2kit_test_<random>) and drops it at the end.
//   - OAUTH2KIT_TEST_MYSQL_DSN: a go-sql-driver/mysql DSN, e.g.
//     root@tcp(127.0.0.1:3306)/test?parseTime=true&loc=UTC (parseTime and
//     loc=UTC are forced either way). The user needs CREATE and DROP on
//     databases: every test run creates its own database
//     (oauth2kit_test_<random>) next to the named one and drops it at the
//     end.
//
// Isolation by schema/database keeps the production table names (oauth2_*)
// while test runs of different packages or machines share one server.
const (
	envPostgres = "OAUTH2KIT_TEST_POSTGRES_DSN"
	envMySQL    = "OAUTH2KIT_TEST_MYSQL_DSN"
)

// testDB is one isolated, empty database; connect opens a new connection
// pool on it (two pools stand for two server instances).
type testDB struct {
	name    string
	connect func(tb testing.TB) *gorm.DB
}

// gormConfig returns a new gorm configuration: gorm.Open keeps the one it
// is given, and a dialector registers its clause builders in it, so a
// configuration shared between dialects would mix their SQL.
func gormConfig() *gorm.Config { return &gorm.Config{Logger: logger.Discard} }

func randomName() string {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return "oauth2kit_test_" + hex.EncodeToString(b[:])
}

// pool sizes the pool of a test connection: PostgreSQL allows 100
// connections by default, and a scale-out test opens two pools.
func pool(tb testing.TB, db *gorm.DB, n int) *gorm.DB {
	tb.Helper()
	sqlDB, err := db.DB()
	if err != nil {
		tb.Fatal(err)
	}
	sqlDB.SetMaxOpenConns(n)
	sqlDB.SetMaxIdleConns(n)
	tb.Cleanup(func() { _ = sqlDB.Close() })
	return db
}

func sqliteDB(tb testing.TB) *testDB {
	path := filepath.Join(tb.TempDir(), "oauth2.db")
	return &testDB{name: "sqlite", connect: func(tb testing.TB) *gorm.DB {
		tb.Helper()
		db, err := gorm.Open(sqlite.Open(gormstore.SQLiteDSN(path)), gormConfig())
		if err != nil {
			tb.Fatal(err)
		}
		return pool(tb, db, 4)
	}}
}

func postgresDB(tb testing.TB) *testDB {
	tb.Helper()
	dsn := os.Getenv(envPostgres)
	if dsn == "" {
		tb.Skipf("%s is not set: skipping PostgreSQL (e.g. %s='postgres://postgres@127.0.0.1:5432/test?sslmode=disable')", envPostgres, envPostgres)
	}
	return postgresDBWith(tb, dsn, nil)
}

// postgresDBWith creates a schema and returns pools whose search_path is
// that schema; params are extra run-time parameters of every connection.
func postgresDBWith(tb testing.TB, dsn string, params map[string]string) *testDB {
	tb.Helper()
	admin, err := gorm.Open(postgres.Open(dsn), gormConfig())
	if err != nil {
		tb.Fatalf("%s: %v", envPostgres, err)
	}
	pool(tb, admin, 1)
	schema := randomName()
	if err := admin.Exec("CREATE SCHEMA " + schema).Error; err != nil {
		tb.Fatalf("creating schema %s: %v", schema, err)
	}
	tb.Cleanup(func() {
		if err := admin.Exec("DROP SCHEMA " + schema + " CASCADE").Error; err != nil {
			tb.Errorf("dropping schema %s: %v", schema, err)
		}
	})
	return &testDB{name: "postgres", connect: func(tb testing.TB) *gorm.DB {
		tb.Helper()
		cfg, err := pgx.ParseConfig(dsn)
		if err != nil {
			tb.Fatalf("%s: %v", envPostgres, err)
		}
		cfg.RuntimeParams["search_path"] = schema
		for k, v := range params {
			cfg.RuntimeParams[k] = v
		}
		db, err := gorm.Open(postgres.New(postgres.Config{Conn: stdlib.OpenDB(*cfg)}), gormConfig())
		if err != nil {
			tb.Fatal(err)
		}
		return pool(tb, db, 8)
	}}
}

func mysqlDB(tb testing.TB) *testDB { tb.Helper(); return mysqlDBWith(tb, nil) }

// mysqlDBWith creates a database whose pools use the DSN of envMySQL as
// changed by edit (if not nil).
func mysqlDBWith(tb testing.TB, edit func(*mysqldriver.Config)) *testDB {
	tb.Helper()
	dsn := os.Getenv(envMySQL)
	if dsn == "" {
		tb.Skipf("%s is not set: skipping MySQL/MariaDB (e.g. %s='root@tcp(127.0.0.1:3306)/test?parseTime=true&loc=UTC')", envMySQL, envMySQL)
	}
	cfg, err := mysqldriver.ParseDSN(dsn)
	if err != nil {
		tb.Fatalf("%s: %v", envMySQL, err)
	}
	cfg.ParseTime, cfg.Loc = true, time.UTC
	admin, err := gorm.Open(mysql.Open(cfg.FormatDSN()), gormConfig())
	if err != nil {
		tb.Fatalf("%s: %v", envMySQL, err)
	}
	pool(tb, admin, 1)
	name := randomName()
	if err := admin.Exec("CREATE DATABASE " + name).Error; err != nil {
		tb.Fatalf("creating database %s: %v", name, err)
	}
	tb.Cleanup(func() {
		if err := admin.Exec("DROP DATABASE " + name).Error; err != nil {
			tb.Errorf("dropping database %s: %v", name, err)
		}
	})
	own := cfg.Clone()
	own.DBName = name
	if edit != nil {
		edit(own)
	}
	return &testDB{name: "mysql", connect: func(tb testing.TB) *gorm.DB {
		tb.Helper()
		db, err := gorm.Open(mysql.Open(own.FormatDSN()), gormConfig())
		if err != nil {
			tb.Fatal(err)
		}
		return pool(tb, db, 8)
	}}
}

var backends = []struct {
	name string
	open func(tb testing.TB) *testDB
}{
	{"sqlite", sqliteDB},
	{"postgres", postgresDB},
	{"mysql", mysqlDB},
}

// forEachDB runs f as subtests sqlite, postgres and mysql, each on a fresh
// database.
func forEachDB(t *testing.T, f func(t *testing.T, d *testDB)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { f(t, b.open(t)) })
	}
}

// newStore opens a pool on d and returns a migrated store on it.
func newStore(tb testing.TB, d *testDB) (*gormstore.Store, *gorm.DB) {
	tb.Helper()
	db := d.connect(tb)
	s := gormstore.New(db)
	if err := s.Migrate(context.Background()); err != nil {
		tb.Fatalf("Migrate: %v", err)
	}
	return s, db
}
