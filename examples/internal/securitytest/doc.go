// Package securitytest checks every security property of docs/security.md
// (R01–R55) over real HTTP against the real storage: a core.Server mounted
// with adapters/nethttp on an httptest.Server (a TCP listener, TLS where it
// matters), the GORM store on SQLite (and on PostgreSQL and MySQL/MariaDB
// for the storage-sensitive properties when OAUTH2KIT_TEST_POSTGRES_DSN and
// OAUTH2KIT_TEST_MYSQL_DSN are set), and the demo's login and consent pages.
//
// Each test asserts the wire (status, headers, JSON, Location) and then the
// database, read directly from its tables. Every test also checks, when it
// ends, that no code, token, client secret, PKCE verifier, login handle,
// CSRF token or session cookie it saw on the wire appears in any column of
// any table or in the server's log (slog and SQL statements).
//
// The map from requirement to test is in docs/security-tests.md (from
// the repository root). The package holds tests only.
package securitytest
