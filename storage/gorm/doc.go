// Package gormstore is a core.Storage on gorm (gorm.io/gorm), tested on
// SQLite, PostgreSQL and MySQL/MariaDB, with the capabilities
// core.ClientRegistry, core.UserGrantStore, core.LoginSessionStore,
// core.SessionClientStore and core.RegistrationStore.
// Several server instances can share one database: codes and refresh
// tokens are consumed by conditional updates inside database transactions,
// so when requests race on one code (or one refresh token), on one
// instance or many, exactly one of them gets tokens.
//
// The package imports no database driver: open the *gorm.DB with the
// dialector of your choice, then
//
//	store := gormstore.New(db)
//	if err := store.Migrate(ctx); err != nil { … } // once, at start-up
//	srv, err := core.New(cfg, store, auth)
//
// # Tables
//
// Migrate creates eight tables with fixed names: oauth2_clients,
// oauth2_grants (codes), oauth2_refresh_tokens, oauth2_revoked_families,
// oauth2_consents, oauth2_login_sessions (end users' login sessions,
// OpenID Connect), oauth2_replay (the replay cache) and oauth2_device_codes
// (the device grant). Codes, refresh tokens, device and user codes and
// login sessions are stored by
// their signatures (the server's HMAC of the token or cookie, the primary
// key), client secrets by their hashes: the database never holds a usable
// credential. Lists (redirect URIs, grant types, scopes, post-logout
// redirect URIs, a session's amr) are JSON text. Times are UTC with
// microsecond precision. Key columns compare byte for byte on every
// database (VARBINARY on MySQL, whose default collations ignore case and
// trailing spaces) and fit MySQL's oldest index limit. Expiry columns,
// family ids, session ids (sid) and the user ids of codes, refresh tokens
// and login sessions are indexed, so that Purge, RotateRefreshToken's
// revocation check, IsFamilyRevoked and the user-wide methods
// (RevokeUserGrants, UserClients) never scan a table.
// Migrate upgrades an older schema in place: new columns are nullable and
// new indexes are added to the tables as they are, rows included.
//
// To keep the tables apart from an application's own, use a PostgreSQL
// schema (search_path) or a MySQL database of their own.
//
// # Housekeeping
//
// Used codes and rotated refresh tokens are kept until they expire, so that
// a replay is recognised (and revokes what the first use issued), and codes
// until their Grant.KeepUntil if that is later, so that a user's families
// are found while their access tokens are valid. Login sessions are deleted
// when they end; expired ones stay until Purge. Call Purge periodically to
// delete expired rows.
//
// # Databases
//
// SQLite (gorm.io/driver/sqlite, github.com/mattn/go-sqlite3): open the
// database with SQLiteDSN, which sets
//
//	_txlock=immediate&_busy_timeout=5000&_journal_mode=WAL&_synchronous=FULL&_foreign_keys=on&_stmt_cache_size=32
//
// Transactions then start with BEGIN IMMEDIATE and take the write lock at
// once, rather than failing with SQLITE_BUSY when they upgrade from reading
// to writing; a writer waits up to 5 s for another; WAL lets reads proceed
// during a write. synchronous=FULL makes every commit durable: the
// driver's default in WAL mode is NORMAL, under which a power loss or OS
// crash can undo the last commits, so a revoked token could come back and a
// consumed code or rotated refresh token be accepted again. A small pool
// suits SQLite, as writes are serialised anyway: sqlDB.SetMaxOpenConns(2)
// for a file (1 for ":memory:", where every connection would be a database
// of its own).
//
// On SQLite the store commits its writes in groups: the writes (codes,
// redemptions, rotations, revocations, consents, clients, Purge batches)
// that queue while one transaction runs share the next one, each in a
// savepoint of its own (a failed write is rolled back alone; if its error
// ends SQLite's transaction, as SQLITE_FULL does, the others are run
// again). One commit, and one fsync, then serves many writes; each still
// returns only once its group has committed. Other processes writing the
// same file take turns with the group through SQLite's lock as before.
//
// Other SQLite drivers work if they store times as text that sorts in time
// order (modernc.org/sqlite: _time_format=sqlite); the store is tested
// with mattn/go-sqlite3.
//
// The SQLite library must be 3.35 (2021) or later: codes and refresh
// tokens are consumed with UPDATE … RETURNING. mattn/go-sqlite3 bundles a
// newer one; mind it when linking a system library (its libsqlite3 build
// tag).
//
// PostgreSQL (gorm.io/driver/postgres): the default READ COMMITTED
// isolation is all the store needs; under REPEATABLE READ or SERIALIZABLE
// the losers of a race get serialization failures, which the store retries.
//
// MySQL/MariaDB (gorm.io/driver/mysql): the DSN needs parseTime=true; set
// loc=UTC (the driver's default) so that DATETIME values read back as the
// instants written. InnoDB tables with utf8mb4 are created whatever the
// server's defaults.
//
// # Errors
//
// Lock conflicts are retried a few times with a short randomised backoff:
// SQLITE_BUSY ("database is locked"), PostgreSQL serialization failures,
// deadlocks and lock timeouts (SQLSTATE 40001, 40P01, 55P03), MySQL
// deadlocks (1213) and lock wait timeouts (1205). One that persists is
// returned wrapping core.ErrUnavailable, so that the server answers 503
// temporarily_unavailable and the client may retry; nothing is written and
// no token is issued. A transaction is not retried once the server's issue
// callback has run (it never runs twice for one call); a conflict after it
// is returned as unavailable straight away.
//
// # Logging
//
// The store hands its statements to the gorm logger without their bound
// values (signatures, secret hashes): New wraps db's logger for the store's
// own session, leaving db itself untouched. A lookup that finds nothing (an
// unknown client, code, token or consent) and a code signature that exists
// already are not database errors, so no logger prints them, not even
// gorm's default one (which reports "record not found" at error level):
// requests anyone can send do not reach the log.
package gormstore

// SQLiteDSN returns the recommended DSN for an SQLite database file at path
// for gorm.io/driver/sqlite (github.com/mattn/go-sqlite3's syntax):
// transactions that take the write lock at BEGIN, a 5 s busy timeout, WAL
// journaling with durable commits (synchronous=FULL), foreign keys on, and
// a cache of 32 prepared statements per connection (without it the driver
// prepares every statement again, a quarter of the CPU time of a code
// flow). The path must not contain '?'; it may be a "file:" URI.
//
// Replacing _synchronous=FULL with NORMAL gives about a fifth more code
// flows per second on a disk with slow fsync, at the price of durability
// across power loss (see Databases above).
//
// SQLite runs one writer at a time: keep the pool small
// (sql.DB.SetMaxOpenConns(2)), as extra connections only wait in its busy
// handler, which sleeps in millisecond steps.
func SQLiteDSN(path string) string {
	return path + "?_txlock=immediate&_busy_timeout=5000&_journal_mode=WAL&_synchronous=FULL&_foreign_keys=on&_stmt_cache_size=32"
}
