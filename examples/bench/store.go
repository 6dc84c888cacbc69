package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/oauth2kit/oauth2kit/core"
	"github.com/oauth2kit/oauth2kit/core/memstore"
	"github.com/oauth2kit/oauth2kit/examples/internal/demo"
	gormstore "github.com/oauth2kit/oauth2kit/storage/gorm"
)

// backend is the storage the server runs on.
type backend struct {
	name  string
	store interface {
		core.Storage
		clientSaver
	}
	mem     *memstore.Store
	gs      *gormstore.Store
	db      *gorm.DB
	dialect string
	cleanup []func()
}

func (b *backend) close() {
	for i := len(b.cleanup) - 1; i >= 0; i-- {
		b.cleanup[i]()
	}
}

func newBackend(ctx context.Context, o *options, log *slog.Logger) (*backend, error) {
	if o.store == "memory" {
		m := memstore.New()
		m.SweepEvery = o.purgeEvery
		if o.seed > 0 || o.explain {
			return nil, fmt.Errorf("-seed and -explain need a SQL store")
		}
		return &backend{name: "memory", store: m, mem: m}, nil
	}
	b := &backend{}
	var db *gorm.DB
	var err error
	switch {
	case o.store == "sqlite":
		dir, err := os.MkdirTemp("", "oauth2kit-bench-")
		if err != nil {
			return nil, err
		}
		b.cleanup = append(b.cleanup, func() { os.RemoveAll(dir) })
		b.name = "sqlite"
		if db, err = openSQLite(filepath.Join(dir, "bench.db"), o.sqliteSync, o.sqliteConns); err != nil {
			b.close()
			return nil, err
		}
	case strings.Contains(o.store, "://"):
		b.name = strings.SplitN(o.store, "://", 2)[0]
		if db, err = demo.OpenDB(o.store); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("unknown -store %q (memory, sqlite, or a postgres:// or mysql:// DSN)", o.store)
	}
	sqlDB, err := db.DB()
	if err != nil {
		b.close()
		return nil, err
	}
	b.cleanup = append(b.cleanup, func() { sqlDB.Close() })
	if b.name != "sqlite" {
		// The pool bounds concurrent transactions; a few per core is what
		// a database on the same machine can use.
		sqlDB.SetMaxOpenConns(16)
		sqlDB.SetMaxIdleConns(16)
	}
	b.db, b.dialect = db, db.Dialector.Name()
	b.gs = gormstore.New(db)
	b.store = b.gs
	if err := b.gs.Migrate(ctx); err != nil {
		b.close()
		return nil, err
	}
	if o.seed > 0 {
		start := time.Now()
		if err := b.seed(ctx, o.seed); err != nil {
			b.close()
			return nil, fmt.Errorf("seeding: %w", err)
		}
		log.Warn("bench: seeded", "grants", o.seed, "refresh_tokens", o.seed, "took", time.Since(start).Round(time.Millisecond))
	}
	return b, nil
}

// openSQLite opens a SQLite file with the kit's recommended DSN (WAL,
// BEGIN IMMEDIATE, busy timeout, synchronous=FULL), optionally another
// synchronous mode.
func openSQLite(path, sync string, conns int) (*gorm.DB, error) {
	dsn := gormstore.SQLiteDSN(path)
	if sync != "" {
		// The driver reads the first value of a repeated parameter.
		dsn = strings.Replace(dsn, "_synchronous=FULL", "_synchronous="+sync, 1)
	}
	db, err := gorm.Open(sqlite.Open(dsn), &gorm.Config{Logger: logger.Discard, TranslateError: true})
	if err != nil {
		return nil, err
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, err
	}
	// SQLite runs one writer at a time anyway. Connections beyond that
	// wait in SQLite's busy handler, which sleeps in millisecond steps:
	// with 16 load workers, 2 connections gave 20 % more flows/s than 4
	// and halved p99 (1 was the same as 2; 2 keeps a reader concurrent
	// with the writer under WAL).
	sqlDB.SetMaxOpenConns(max(conns, 1))
	sqlDB.SetMaxIdleConns(max(conns, 1))
	return db, nil
}

// purge drops expired state once (memory: a sweep; SQL: Purge).
func (b *backend) purge(ctx context.Context) error {
	if b.mem != nil {
		b.mem.Sweep()
		return nil
	}
	_, err := b.gs.Purge(ctx, time.Now())
	return err
}

// seed inserts n grants (used codes, as a busy server holds until they
// expire) and n live refresh tokens directly into the store's tables with
// set-based INSERTs, in batches. Their signatures are random, so no request
// of the run ever finds one: they only make the tables and indexes big.
func (b *backend) seed(ctx context.Context, n int) error {
	const batch = 100_000
	db := b.db.WithContext(ctx)
	for from := 1; from <= n; from += batch {
		to := min(from+batch-1, n)
		var stmts []string
		switch b.dialect {
		case "postgres":
			series := fmt.Sprintf("generate_series(%d, %d) AS g(x)", from, to)
			stmts = []string{
				`INSERT INTO oauth2_grants (code_sig, grant_id, client_id, user_id, redirect_uri, scope, code_challenge, code_challenge_method, additional_info, created_at, expires_at, used_at)
				 SELECT 'seed-' || x || '-' || md5(random()::text), 'seed-grant-' || x, 'bench-client', 'u1', 'http://127.0.0.1:9/cb', 'read',
				        md5(x::text), 'S256', '', now(), now() + interval '1 day', now() FROM ` + series,
				`INSERT INTO oauth2_refresh_tokens (sig, family_id, client_id, user_id, scope, additional_info, created_at, expires_at, rotated_at)
				 SELECT 'seed-' || x || '-' || md5(random()::text), 'seed-grant-' || x, 'bench-client', 'u1', 'read', '', now(), now() + interval '30 days', NULL FROM ` + series,
			}
		case "sqlite":
			cte := fmt.Sprintf("WITH RECURSIVE c(x) AS (SELECT %d UNION ALL SELECT x+1 FROM c WHERE x < %d) ", from, to)
			ts := func(mod string) string {
				return "strftime('%Y-%m-%d %H:%M:%S+00:00', 'now', '" + mod + "')"
			}
			stmts = []string{
				`INSERT INTO oauth2_grants (code_sig, grant_id, client_id, user_id, redirect_uri, scope, code_challenge, code_challenge_method, additional_info, created_at, expires_at, used_at) ` +
					cte + `SELECT 'seed-' || x || '-' || hex(randomblob(16)), 'seed-grant-' || x, 'bench-client', 'u1', 'http://127.0.0.1:9/cb', 'read', hex(randomblob(16)), 'S256', '', ` +
					ts("+0 seconds") + `, ` + ts("+1 day") + `, ` + ts("+0 seconds") + ` FROM c`,
				`INSERT INTO oauth2_refresh_tokens (sig, family_id, client_id, user_id, scope, additional_info, created_at, expires_at, rotated_at) ` +
					cte + `SELECT 'seed-' || x || '-' || hex(randomblob(16)), 'seed-grant-' || x, 'bench-client', 'u1', 'read', '', ` +
					ts("+0 seconds") + `, ` + ts("+30 days") + `, NULL FROM c`,
			}
		default:
			return fmt.Errorf("-seed supports postgres and sqlite, not %s", b.dialect)
		}
		err := db.Transaction(func(tx *gorm.DB) error {
			for _, s := range stmts {
				if err := tx.Exec(s).Error; err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	// Fresh statistics, as autovacuum / a periodic ANALYZE would keep them.
	return db.Exec("ANALYZE").Error
}

// hotQueries are the statements the request paths run (as gormstore
// issues them), with literal values, for EXPLAIN.
func hotQueries(dialect string) [][2]string {
	now := "CURRENT_TIMESTAMP"
	return [][2]string{
		{"GetClient", "SELECT * FROM oauth2_clients WHERE id = 'bench-client' LIMIT 1"},
		{"CreateGrant", "INSERT INTO oauth2_grants (code_sig, grant_id, client_id, user_id, redirect_uri, scope, code_challenge, code_challenge_method, additional_info, created_at, expires_at) VALUES ('s', 'g', 'c', 'u', 'r', 'read', 'x', 'S256', '', " + now + ", " + now + ")"},
		{"RedeemCode update", "UPDATE oauth2_grants SET used_at = " + now + " WHERE code_sig = 'seed-1-x' AND used_at IS NULL AND expires_at > " + now},
		{"RedeemCode read", "SELECT * FROM oauth2_grants WHERE code_sig = 'seed-1-x' LIMIT 1"},
		{"IsFamilyRevoked", "SELECT count(*) FROM oauth2_revoked_families WHERE family_id = 'seed-grant-1'"},
		{"RotateRefreshToken update", "UPDATE oauth2_refresh_tokens SET rotated_at = " + now + " WHERE sig = 'seed-1-x' AND rotated_at IS NULL AND expires_at > " + now +
			" AND NOT EXISTS (SELECT 1 FROM oauth2_revoked_families r WHERE r.family_id = oauth2_refresh_tokens.family_id)"},
		{"GetRefreshToken", "SELECT * FROM oauth2_refresh_tokens WHERE sig = 'seed-1-x' LIMIT 1"},
		{"RevokeFamily (refresh tokens)", "UPDATE oauth2_refresh_tokens SET rotated_at = " + now + " WHERE family_id = 'seed-grant-1' AND rotated_at IS NULL"},
		{"Purge grants", "SELECT code_sig FROM oauth2_grants WHERE expires_at <= " + now + " LIMIT 500"},
		{"Purge refresh tokens", "SELECT sig FROM oauth2_refresh_tokens WHERE expires_at <= " + now + " LIMIT 500"},
	}
}

// explain prints the plan of every hot query.
func (b *backend) explain(ctx context.Context, out io.Writer) error {
	prefix := "EXPLAIN "
	if b.dialect == "sqlite" {
		prefix = "EXPLAIN QUERY PLAN "
	}
	db := b.db.WithContext(ctx)
	for _, q := range hotQueries(b.dialect) {
		rows, err := db.Raw(prefix + q[1]).Rows()
		if err != nil {
			return fmt.Errorf("%s: %w", q[0], err)
		}
		fmt.Fprintf(out, "-- %s\n", q[0])
		if err := printRows(out, rows); err != nil {
			return err
		}
	}
	return nil
}

func printRows(out io.Writer, rows *sql.Rows) error {
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return err
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		// SQLite: id, parent, notused, detail; the detail says it all.
		fmt.Fprintf(out, "   %s\n", vals[len(vals)-1].String)
	}
	return rows.Err()
}
