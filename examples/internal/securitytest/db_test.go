package securitytest

import (
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gorm.io/driver/mysql"
	"gorm.io/driver/postgres"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	gormstore "github.com/oauth2kit/oauth2kit/storage/gorm"
)

// The PostgreSQL and MySQL/MariaDB runs of the storage-sensitive tests need
// these; without them those subtests skip.
//
//   - OAUTH2KIT_TEST_POSTGRES_DSN, e.g.
//     postgres://postgres@127.0.0.1:5432/test?sslmode=disable (a URL or a
//     key=value DSN). Each test creates a schema of its own
//     (oauth2kit_sec_<random>) and drops it at the end.
//   - OAUTH2KIT_TEST_MYSQL_DSN, a go-sql-driver DSN, e.g.
//     root@tcp(127.0.0.1:3306)/test?parseTime=true&loc=UTC. Each test
//     creates a database of its own next to the named one and drops it.
const (
	envPostgres = "OAUTH2KIT_TEST_POSTGRES_DSN"
	envMySQL    = "OAUTH2KIT_TEST_MYSQL_DSN"
)

// database is one isolated, empty database. open returns a new connection
// pool on it: a server (re)start gets one, the test's own queries another.
type database struct {
	name string
	open func(t testing.TB, lg logger.Interface) *gorm.DB
}

func randomName() string {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return "oauth2kit_sec_" + hex.EncodeToString(b[:])
}

func closeWith(t testing.TB, db *gorm.DB, conns int) *gorm.DB {
	t.Helper()
	sqlDB, err := db.DB()
	if err != nil {
		t.Fatal(err)
	}
	sqlDB.SetMaxOpenConns(conns)
	sqlDB.SetMaxIdleConns(conns)
	t.Cleanup(func() { _ = sqlDB.Close() })
	return db
}

// sqliteDB is a database file in t.TempDir(), opened with the DSN the store
// recommends (immediate write transactions, busy timeout, WAL).
func sqliteDB(t *testing.T) *database {
	path := filepath.Join(t.TempDir(), "oauth2.db")
	return &database{name: "sqlite", open: func(t testing.TB, lg logger.Interface) *gorm.DB {
		t.Helper()
		db, err := gorm.Open(sqlite.Open(gormstore.SQLiteDSN(path)), &gorm.Config{Logger: lg})
		if err != nil {
			t.Fatal(err)
		}
		return closeWith(t, db, 4)
	}}
}

func postgresDB(t *testing.T) *database {
	t.Helper()
	dsn := os.Getenv(envPostgres)
	if dsn == "" {
		t.Skipf("%s is not set: skipping the PostgreSQL run (set it to e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable)", envPostgres)
	}
	admin, err := gorm.Open(postgres.Open(dsn), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		t.Fatalf("%s: %v", envPostgres, err)
	}
	closeWith(t, admin, 1)
	schema := randomName()
	if err := admin.Exec("CREATE SCHEMA " + schema).Error; err != nil {
		t.Fatalf("creating schema %s: %v", schema, err)
	}
	t.Cleanup(func() {
		if err := admin.Exec("DROP SCHEMA " + schema + " CASCADE").Error; err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
		}
	})
	own := withSearchPath(t, dsn, schema)
	return &database{name: "postgres", open: func(t testing.TB, lg logger.Interface) *gorm.DB {
		t.Helper()
		db, err := gorm.Open(postgres.Open(own), &gorm.Config{Logger: lg})
		if err != nil {
			t.Fatal(err)
		}
		return closeWith(t, db, 4)
	}}
}

// withSearchPath points every connection of dsn at schema (pgx passes
// unknown parameters on as run-time parameters). Commits do not wait for
// the disk (synchronous_commit=off): durability across a crash is not what
// these tests look at, and isolation and atomicity are unchanged.
func withSearchPath(t testing.TB, dsn, schema string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatalf("%s: %v", envPostgres, err)
		}
		q := u.Query()
		q.Set("search_path", schema)
		q.Set("synchronous_commit", "off")
		u.RawQuery = q.Encode()
		return u.String()
	}
	return dsn + " search_path=" + schema + " synchronous_commit=off"
}

func mysqlDB(t *testing.T) *database {
	t.Helper()
	dsn := os.Getenv(envMySQL)
	if dsn == "" {
		t.Skipf("%s is not set: skipping the MySQL/MariaDB run (set it to e.g. root@tcp(127.0.0.1:3306)/test?parseTime=true&loc=UTC)", envMySQL)
	}
	adminDSN, orig := mysqlWithDB(t, dsn, "")
	admin, err := gorm.Open(mysql.Open(adminDSN), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		t.Fatalf("%s: %v", envMySQL, err)
	}
	closeWith(t, admin, 1)
	name := randomName()
	if err := admin.Exec("CREATE DATABASE " + name).Error; err != nil {
		t.Fatalf("creating database %s next to %s: %v", name, orig, err)
	}
	t.Cleanup(func() {
		if err := admin.Exec("DROP DATABASE " + name).Error; err != nil {
			t.Errorf("dropping database %s: %v", name, err)
		}
	})
	own, _ := mysqlWithDB(t, dsn, name)
	return &database{name: "mysql", open: func(t testing.TB, lg logger.Interface) *gorm.DB {
		t.Helper()
		db, err := gorm.Open(mysql.Open(own), &gorm.Config{Logger: lg})
		if err != nil {
			t.Fatal(err)
		}
		return closeWith(t, db, 4)
	}}
}

// mysqlWithDB returns dsn naming database name instead (its own when name
// is empty), with parseTime=true and loc=UTC, and the name it had. The
// database name follows the last '/' (a password may hold one), as
// go-sql-driver/mysql parses it.
func mysqlWithDB(t testing.TB, dsn, name string) (string, string) {
	t.Helper()
	i := strings.LastIndexByte(dsn, '/')
	if i < 0 {
		t.Fatalf("%s: no /dbname in the DSN", envMySQL)
	}
	orig, params, _ := strings.Cut(dsn[i+1:], "?")
	q, err := url.ParseQuery(params)
	if err != nil {
		t.Fatalf("%s: parameters: %v", envMySQL, err)
	}
	q.Set("parseTime", "true")
	q.Set("loc", "UTC")
	if name == "" {
		name = orig
	}
	return dsn[:i+1] + name + "?" + q.Encode(), orig
}

var backends = []struct {
	name string
	open func(t *testing.T) *database
}{
	{"sqlite", sqliteDB},
	{"postgres", postgresDB},
	{"mysql", mysqlDB},
}

// forEachDB runs f as subtests sqlite, postgres and mysql, each on a fresh
// database (the last two skip without their DSNs).
func forEachDB(t *testing.T, f func(t *testing.T, d *database)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { f(t, b.open(t)) })
	}
}
