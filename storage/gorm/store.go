package gormstore

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/oauth2kit/oauth2kit/core"
)

// Store is a core.Storage on a gorm database. It is safe for concurrent use,
// also by several processes (server instances) sharing one database: the
// consuming methods rely on the database's row locking, not on memory.
type Store struct {
	db *gorm.DB
	// returning: the dialect has UPDATE … RETURNING (PostgreSQL, SQLite
	// 3.35+), so a consuming UPDATE hands back the row it changed and the
	// SELECT after it is needed only when it changed nothing. MariaDB has
	// INSERT/DELETE … RETURNING but not UPDATE … RETURNING (although gorm's
	// MySQL dialect enables the clause for MariaDB 10.5+), and MySQL has
	// none: those keep the UPDATE-then-SELECT path.
	returning bool
	// group, on SQLite only, runs the store's writes (grants, code
	// redemptions, rotations, revocations, consents, clients, Purge) in
	// shared transactions (see groupCommit). PostgreSQL and MySQL run
	// concurrent writers and group their commits themselves.
	group *groupCommit
	// mysql: the dialect is MySQL/MariaDB, which has no INSERT … ON
	// CONFLICT DO NOTHING whose row count tells a conflict apart (see
	// CreateGrant).
	mysql bool
}

var (
	_ core.Storage        = (*Store)(nil)
	_ core.ClientRegistry = (*Store)(nil)
	_ core.UserGrantStore = (*Store)(nil)
)

// New returns a store on db. It creates nothing: call Migrate once (at
// deployment or start-up) to create the tables.
//
// The store runs its statements in its own gorm session: without gorm's
// implicit transaction around single statements (each is atomic on its own,
// and the multi-statement operations open explicit transactions), and with
// db's logger wrapped so that statements are logged without their bound
// values.
func New(db *gorm.DB) *Store {
	sess := &gorm.Session{NewDB: true, SkipDefaultTransaction: true}
	if db.Logger != nil {
		sess.Logger = redactingLogger{db.Logger}
	}
	s := &Store{db: db.Session(sess)}
	if db.Dialector != nil {
		switch db.Dialector.Name() {
		case "postgres":
			s.returning = true
		case "sqlite":
			s.returning = true
			s.group = &groupCommit{db: s.db}
		case "mysql":
			s.mysql = true
		}
	}
	return s
}

// Migrate creates the seven tables (oauth2_clients, oauth2_grants,
// oauth2_refresh_tokens, oauth2_revoked_families, oauth2_consents,
// oauth2_login_sessions, oauth2_replay) and their indexes if they do not
// exist, and adds the columns of later releases to tables that do. It is idempotent: running it on an
// up-to-date schema changes nothing. On MySQL the tables are created as
// InnoDB with utf8mb4 text columns, whatever the server's defaults.
func (s *Store) Migrate(ctx context.Context) error {
	db := s.db.WithContext(ctx)
	if db.Dialector.Name() == "mysql" {
		db = db.Set("gorm:table_options", "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin")
	}
	if err := db.AutoMigrate(&clientRow{}, &grantRow{}, &refreshRow{}, &revokedFamilyRow{}, &consentRow{}, &loginSessionRow{}, &replayRow{}, &deviceRow{}); err != nil {
		return fmt.Errorf("gormstore: migrate: %w", err)
	}
	return nil
}

// do runs a single statement (or a read) with retries.
func (s *Store) do(ctx context.Context, op func(db *gorm.DB) error) error {
	db := s.db.WithContext(ctx)
	return retry(ctx, nil, func() error { return op(db) })
}

// tx runs fn in a transaction with retries (see retry for called).
func (s *Store) tx(ctx context.Context, called *bool, fn func(tx *gorm.DB) error) error {
	db := s.db.WithContext(ctx)
	return retry(ctx, called, func() error { return db.Transaction(fn) })
}

// writeTx runs the write fn atomically, with retries: in its own
// transaction, or on SQLite in a savepoint of a group transaction.
func (s *Store) writeTx(ctx context.Context, called *bool, fn func(tx *gorm.DB) error) error {
	if s.group != nil {
		return retry(ctx, called, func() error { return s.group.do(ctx, fn) })
	}
	return s.tx(ctx, called, fn)
}

// writeOne runs fn, a single-statement write, with retries: on its own
// (atomic without a transaction), or on SQLite in a group transaction.
func (s *Store) writeOne(ctx context.Context, fn func(tx *gorm.DB) error) error {
	if s.group != nil {
		return retry(ctx, nil, func() error { return s.group.do(ctx, fn) })
	}
	return s.do(ctx, fn)
}

// find reads the first row matching query into dest (a row struct) and
// reports whether there was one. A miss is not an error here: Take and
// First would return gorm.ErrRecordNotFound, which every gorm logger
// (logger.Default included) prints at error level, so any request naming
// an unknown client, code or token would write a log entry.
func find(db *gorm.DB, dest any, query string, args ...any) (bool, error) {
	res := db.Where(query, args...).Limit(1).Find(dest)
	return res.RowsAffected > 0, res.Error
}

// returningRow makes the UPDATE built on q (whose model is a row struct)
// return the changed row into that struct, where the dialect can (see
// Store.returning). Callers tell a returned row by its non-empty key: gorm
// leaves the struct's key empty when no row came back, and when the dialect
// was opened without RETURNING support (gorm then drops the clause and runs
// a plain UPDATE).
func (s *Store) returningRow(q *gorm.DB) *gorm.DB {
	if !s.returning {
		return q
	}
	return q.Clauses(clause.Returning{})
}

// ---- clients ---------------------------------------------------------------------

// GetClient implements core.Storage.
func (s *Store) GetClient(ctx context.Context, id string) (*core.Client, error) {
	var (
		row clientRow
		ok  bool
	)
	err := s.do(ctx, func(db *gorm.DB) (err error) {
		row = clientRow{}
		ok, err = find(db, &row, "id = ?", id)
		return err
	})
	if err != nil {
		return nil, err
	}
	if !ok || string(row.ID) != id {
		return nil, core.ErrNotFound
	}
	return row.client()
}

// SaveClient implements core.ClientRegistry: it registers a client,
// replacing every field of any client with the same ID (an upsert, atomic
// on every database).
func (s *Store) SaveClient(ctx context.Context, c *core.Client) error {
	if c == nil || c.ID == "" {
		return errors.New("gormstore: a client needs an ID")
	}
	row, err := clientRowOf(c)
	if err != nil {
		return err
	}
	return s.writeOne(ctx, func(db *gorm.DB) error {
		return db.Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "id"}}, UpdateAll: true}).Create(row).Error
	})
}

// DeleteClient implements core.ClientRegistry: it removes a client with
// the consents users gave it, its codes and its refresh tokens (so that a
// client registered later under the same ID inherits none of them), in one
// transaction. It returns core.ErrNotFound if there is no such client.
func (s *Store) DeleteClient(ctx context.Context, id string) error {
	return s.writeTx(ctx, nil, func(tx *gorm.DB) error {
		deleted, err := deleteClient(tx, id, "")
		if err == nil && !deleted {
			err = core.ErrNotFound
		}
		return err
	})
}

// deleteClient deletes, in the transaction tx, the client id if its row
// also matches the condition cond with args ("" for none), and then the
// consents, codes and refresh tokens of id. It reports whether there was
// such a row. DeleteClient and DeleteUnusedClients share it, so that a
// client expired unused goes exactly as a deleted one does; the condition
// lets the latter re-check, in the DELETE itself, what it selected.
func deleteClient(tx *gorm.DB, id, cond string, args ...any) (bool, error) {
	q := tx.Where("id = ?", id)
	if cond != "" {
		q = q.Where(cond, args...)
	}
	res := q.Delete(&clientRow{})
	if res.Error != nil || res.RowsAffected == 0 {
		return false, res.Error
	}
	// Its codes and refresh tokens go too, so a client registered later
	// under the same id cannot use them. (Access tokens already issued run
	// out on their own, within the access-token lifetime.)
	for _, m := range []any{&consentRow{}, &grantRow{}, &refreshRow{}} {
		if err := tx.Where("client_id = ?", id).Delete(m).Error; err != nil {
			return false, err
		}
	}
	return true, nil
}

// ListClients implements core.ClientRegistry: every registered client,
// ordered by ID (byte order).
func (s *Store) ListClients(ctx context.Context) ([]*core.Client, error) {
	var rows []clientRow
	if err := s.do(ctx, func(db *gorm.DB) error {
		rows = rows[:0]
		return db.Order("id").Find(&rows).Error
	}); err != nil {
		return nil, err
	}
	out := make([]*core.Client, 0, len(rows))
	for i := range rows {
		c, err := rows[i].client()
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	// The database orders by its collation; PostgreSQL's need not be byte
	// order.
	slices.SortFunc(out, func(a, b *core.Client) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// SetClientSecretHash replaces a client's secret hash (a secret rotation:
// hash the new secret with core.HashSecret first). It returns
// core.ErrNotFound if there is no such client.
func (s *Store) SetClientSecretHash(ctx context.Context, id, hash string) error {
	return s.writeTx(ctx, nil, func(tx *gorm.DB) error {
		res := tx.Model(&clientRow{}).Where("id = ?", id).Update("secret_hash", hash)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 1 {
			return nil
		}
		// MySQL counts changed rows only: setting the hash a client already
		// has affects none. Tell that apart from a missing client.
		var n int64
		if err := tx.Model(&clientRow{}).Where("id = ?", id).Count(&n).Error; err != nil {
			return err
		}
		if n == 0 {
			return core.ErrNotFound
		}
		return nil
	})
}

// ---- codes -----------------------------------------------------------------------

// CreateGrant implements core.Storage. A grant whose code signature is
// already stored (whatever its state, until Purge deletes it) is not
// stored: it returns core.ErrExists. The server relies on that to make a
// submitted login or consent form usable once, across instances.
//
// PostgreSQL and SQLite run INSERT … ON CONFLICT (code_sig) DO NOTHING: no
// row inserted means the signature existed (a concurrent insert of the
// same signature waits for the first to commit, then inserts nothing). A
// conflict is never a database error, which gorm would log and a replayed
// form could then repeat at will.
//
// MySQL/MariaDB have no such statement. INSERT IGNORE would also turn
// other errors (a value too long for its column) into silent warnings,
// and ON DUPLICATE KEY UPDATE of a column to itself affects 0 rows on a
// duplicate, but 1 (as an insert does) when the DSN sets
// clientFoundRows=true. So there the duplicate's update changes the row
// for certain (2 rows affected with either flag), and the transaction is
// rolled back: nothing is stored.
func (s *Store) CreateGrant(ctx context.Context, g *core.Grant) error {
	return s.insertNew(ctx, grantRowOf(g), "code_sig", "grant_id")
}

// insertNew inserts row unless a row with the same key column exists,
// then returning core.ErrExists (as CreateGrant says). touch is a text
// column MySQL's duplicate update appends to, which must have room for one
// more byte.
func (s *Store) insertNew(ctx context.Context, row any, key, touch string) error {
	return s.insertNewTouching(ctx, row, key, clause.Assignment{
		Column: clause.Column{Name: touch},
		Value:  gorm.Expr("CONCAT(" + touch + ", '+')"),
	})
}

// insertNewTouching is insertNew for a row without a text column to
// touch: touch is MySQL's duplicate update, which must change the
// existing row for certain (it is rolled back).
func (s *Store) insertNewTouching(ctx context.Context, row any, key string, touch clause.Assignment) error {
	if s.mysql {
		return s.tx(ctx, nil, func(tx *gorm.DB) error {
			res := tx.Clauses(clause.OnConflict{DoUpdates: []clause.Assignment{touch}}).Create(row)
			if res.Error != nil {
				return res.Error
			}
			if res.RowsAffected != 1 {
				return core.ErrExists // rolls the update back
			}
			return nil
		})
	}
	return s.writeOne(ctx, func(db *gorm.DB) error {
		res := db.Clauses(clause.OnConflict{Columns: []clause.Column{{Name: key}}, DoNothing: true}).Create(row)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return core.ErrExists
		}
		return nil
	})
}

// RedeemCode implements core.Storage.
//
// One transaction: a conditional UPDATE consumes the code, and only the
// transaction whose UPDATE affected the row calls issue and stores the
// refresh token. On PostgreSQL and SQLite the UPDATE returns the consumed
// row (UPDATE … RETURNING), so a redemption is BEGIN, UPDATE, INSERT,
// COMMIT; a SELECT of the row follows only when the UPDATE consumed
// nothing, to tell a used code (ErrCodeUsed) from an expired or unknown
// one. MySQL/MariaDB have no UPDATE … RETURNING and always SELECT the row
// after the UPDATE, in the same transaction.
//
// PostgreSQL (READ COMMITTED) makes a concurrent UPDATE of the same row
// wait for the first transaction and re-check its WHERE clause against the
// committed row, so it affects nothing; InnoDB's UPDATE is a locking read
// with the same outcome; SQLite runs one write transaction at a time (BEGIN
// IMMEDIATE with the recommended DSN). MySQL reports changed rows rather
// than matched rows unless the DSN sets clientFoundRows=true; either way
// the count is right here, as NULL → now is always a change.
//
// If issue fails, the consumption alone is committed (the code is burned).
// If storing the refresh token or committing fails, everything is rolled
// back: the code stays unconsumed and no token is issued. Lock conflicts
// (SQLite busy, deadlocks, serialization failures) are retried as long as
// issue has not run; issue never runs twice. A conflict that persists is
// returned wrapping core.ErrUnavailable.
func (s *Store) RedeemCode(ctx context.Context, sig string, now time.Time, issue func(*core.Grant) (*core.RefreshToken, error)) (*core.Grant, error) {
	now = dbTime(now)
	var (
		out      *core.Grant
		issueErr error
		called   bool
	)
	err := s.writeTx(ctx, &called, func(tx *gorm.DB) error {
		out, issueErr = nil, nil
		var row grantRow
		res := s.returningRow(tx.Model(&row)).
			Where("code_sig = ? AND used_at IS NULL AND expires_at > ?", sig, now).
			Update("used_at", now)
		if res.Error != nil {
			return res.Error
		}
		// If the UPDATE consumed the code and returned it, row holds it.
		// Otherwise (nothing consumed, or no RETURNING: the key is empty)
		// read the row: to tell used, expired and unknown codes apart, or
		// to get the code this transaction just consumed.
		if res.RowsAffected != 1 || row.CodeSig == "" {
			row = grantRow{}
			ok, err := find(tx, &row, "code_sig = ?", sig)
			if err != nil {
				return err
			}
			if !ok {
				return core.ErrNotFound
			}
		}
		if string(row.CodeSig) != sig {
			return core.ErrNotFound
		}
		switch {
		case res.RowsAffected == 1:
		case res.RowsAffected > 1:
			return fmt.Errorf("gormstore: consuming a code updated %d rows", res.RowsAffected)
		case row.UsedAt != nil:
			out = row.grant()
			return core.ErrCodeUsed
		case !now.Before(row.ExpiresAt.time()):
			return core.ErrNotFound
		default:
			return errRace
		}
		g := row.grant()
		g.UsedAt = nil // issue sees the grant as it was before this redemption
		called = true
		rt, err := issue(g)
		if err != nil {
			issueErr = err // commit the consumption alone
			return nil
		}
		if rt != nil {
			if err := tx.Create(refreshRowOf(rt)).Error; err != nil {
				return err
			}
		}
		out = row.grant()
		return nil
	})
	switch {
	case errors.Is(err, core.ErrCodeUsed):
		return out, core.ErrCodeUsed
	case err != nil:
		return nil, err
	case issueErr != nil:
		return nil, issueErr
	}
	return out, nil
}

// ---- refresh tokens --------------------------------------------------------------

// RotateRefreshToken implements core.Storage.
//
// The same pattern as RedeemCode: one transaction whose conditional UPDATE
// marks the token rotated only if it is not rotated yet, not expired, and
// its family is not revoked (checked in the same statement); only the
// transaction that rotated it calls issue and stores the new token. As
// there, the UPDATE returns the rotated row on PostgreSQL and SQLite, and
// the row is SELECTed only when nothing was rotated (or on MySQL/MariaDB);
// a token that is neither rotated nor expired then has its family's
// revocation looked up. If issue fails, everything is rolled back.
func (s *Store) RotateRefreshToken(ctx context.Context, sig string, now time.Time, issue func(old *core.RefreshToken) (*core.RefreshToken, error)) (*core.RefreshToken, error) {
	now = dbTime(now)
	var (
		out      *core.RefreshToken
		issueErr error
		called   bool
	)
	err := s.writeTx(ctx, &called, func(tx *gorm.DB) error {
		out, issueErr = nil, nil
		var row refreshRow
		res := s.returningRow(tx.Model(&row)).
			Where("sig = ? AND rotated_at IS NULL AND expires_at > ? AND NOT EXISTS ("+
				"SELECT 1 FROM "+tableRevokedFamilies+" r WHERE r.family_id = "+tableRefreshTokens+".family_id)", sig, now).
			Update("rotated_at", now)
		if res.Error != nil {
			return res.Error
		}
		// As in RedeemCode: read the row unless RETURNING brought it back.
		if res.RowsAffected != 1 || row.Sig == "" {
			row = refreshRow{}
			ok, err := find(tx, &row, "sig = ?", sig)
			if err != nil {
				return err
			}
			if !ok {
				return core.ErrNotFound
			}
		}
		if string(row.Sig) != sig {
			return core.ErrNotFound
		}
		switch {
		case res.RowsAffected == 1:
		case res.RowsAffected > 1:
			return fmt.Errorf("gormstore: rotating a refresh token updated %d rows", res.RowsAffected)
		case !now.Before(row.ExpiresAt.time()):
			return core.ErrNotFound
		case row.RotatedAt != nil:
			out = row.token()
			return core.ErrTokenRotated
		default:
			// Not rotated and not expired: the family is revoked, unless
			// a revocation raced with this transaction; look.
			var n int64
			if err := tx.Model(&revokedFamilyRow{}).Where("family_id = ?", string(row.FamilyID)).Count(&n).Error; err != nil {
				return err
			}
			if n == 0 {
				return errRace
			}
			out = row.token()
			return core.ErrTokenRotated
		}
		old := row.token()
		old.RotatedAt = nil // issue sees the token as it was before this rotation
		called = true
		nt, err := issue(old)
		if err != nil {
			issueErr = err
			return errIssueRefused // roll back: nothing written
		}
		if nt != nil {
			if err := tx.Create(refreshRowOf(nt)).Error; err != nil {
				return err
			}
		}
		out = row.token()
		out.RotatedAt = nil
		return nil
	})
	switch {
	case errors.Is(err, core.ErrTokenRotated):
		return out, core.ErrTokenRotated
	case issueErr != nil && errors.Is(err, errIssueRefused):
		return nil, issueErr
	case err != nil:
		return nil, err
	}
	return out, nil
}

// errIssueRefused rolls a rotation back when its issue callback failed; the
// callback's own error is what RotateRefreshToken returns.
var errIssueRefused = errors.New("gormstore: issue refused the rotation")

// GetRefreshToken implements core.Storage.
func (s *Store) GetRefreshToken(ctx context.Context, sig string) (*core.RefreshToken, error) {
	var (
		row refreshRow
		ok  bool
	)
	err := s.do(ctx, func(db *gorm.DB) (err error) {
		row = refreshRow{}
		ok, err = find(db, &row, "sig = ?", sig)
		return err
	})
	if err != nil {
		return nil, err
	}
	if !ok || string(row.Sig) != sig {
		return nil, core.ErrNotFound
	}
	return row.token(), nil
}

// ---- families --------------------------------------------------------------------

// RevokeFamily implements core.Storage. The record is inserted if absent
// (an insert that ignores a conflicting key, portable across the three
// databases) and its keep_until raised to keepUntil if that is later, so
// concurrent and repeated revocations keep the latest keepUntil.
func (s *Store) RevokeFamily(ctx context.Context, familyID string, keepUntil time.Time) error {
	keepUntil = dbTime(keepUntil)
	return s.writeTx(ctx, nil, func(tx *gorm.DB) error {
		err := tx.Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "family_id"}}, DoNothing: true}).
			Create(&revokedFamilyRow{FamilyID: ident(familyID), KeepUntil: timeCol(keepUntil)}).Error
		if err != nil {
			return err
		}
		return tx.Model(&revokedFamilyRow{}).
			Where("family_id = ? AND keep_until < ?", familyID, keepUntil).
			Update("keep_until", keepUntil).Error
	})
}

// IsFamilyRevoked implements core.Storage. A revocation counts until Purge
// drops its record (after its keep_until).
func (s *Store) IsFamilyRevoked(ctx context.Context, familyID string) (bool, error) {
	var n int64
	err := s.do(ctx, func(db *gorm.DB) error {
		return db.Model(&revokedFamilyRow{}).Where("family_id = ?", familyID).Count(&n).Error
	})
	return n > 0, err
}

// ---- consent ---------------------------------------------------------------------

// GetConsent implements core.Storage.
func (s *Store) GetConsent(ctx context.Context, userID, clientID string) (string, error) {
	var (
		row consentRow
		ok  bool
	)
	err := s.do(ctx, func(db *gorm.DB) (err error) {
		row = consentRow{}
		ok, err = find(db, &row, "user_id = ? AND client_id = ?", userID, clientID)
		return err
	})
	if err != nil {
		return "", err
	}
	if !ok || string(row.UserID) != userID || string(row.ClientID) != clientID {
		return "", core.ErrNotFound
	}
	return row.Scope, nil
}

// SaveConsent implements core.Storage.
func (s *Store) SaveConsent(ctx context.Context, userID, clientID, scope string) error {
	row := &consentRow{UserID: ident(userID), ClientID: ident(clientID), Scope: scope}
	return s.writeOne(ctx, func(db *gorm.DB) error {
		return db.Clauses(clause.OnConflict{
			Columns:   []clause.Column{{Name: "user_id"}, {Name: "client_id"}},
			DoUpdates: clause.AssignmentColumns([]string{"scope"}),
		}).Create(row).Error
	})
}

// ---- housekeeping ----------------------------------------------------------------

// purgeBatch bounds the rows one Purge statement deletes, so that a large
// backlog is deleted in short transactions that lock little.
var purgeBatch = 500

// Purge deletes what can no longer matter at now: codes past their expiry
// and their Grant.KeepUntil, refresh tokens past their expiry (used and
// rotated ones included; until then they are kept so that a replay is
// recognised as one, and a user's families are found), family
// revocations past their keep_until, login sessions past their expiry
// and replay cache records past their until (Remember).
// It returns how many rows it deleted, all tables together.
// Run it periodically (every few minutes, from one instance or all:
// concurrent purges are harmless). Rows are found through the expiry
// indexes and deleted by primary key, a few hundred per statement.
//
// Codes take two passes, each one range of the index (keep_until,
// expires_at): rows without keep_until (a zero KeepUntil, or written before
// the column existed) by expires_at, the others by keep_until alone, which
// is later than expires_at in every row the store writes (a condition on
// expires_at there would let SQLite's planner pick the expires_at index and
// walk every expired code still kept).
func (s *Store) Purge(ctx context.Context, now time.Time) (int64, error) {
	now = dbTime(now)
	var total int64
	for _, p := range []struct {
		model any
		key   string
		where string // with the parameters now and keep (DeviceCodeKeep ago)
	}{
		{&grantRow{}, "code_sig", "keep_until IS NULL AND expires_at <= @now"},
		{&grantRow{}, "code_sig", "keep_until <= @now"},
		{&refreshRow{}, "sig", "expires_at <= @now"},
		{&revokedFamilyRow{}, "family_id", "keep_until <= @now"},
		{&loginSessionRow{}, "id", "expires_at <= @now"},
		{&replayRow{}, "key_hash", "keep_until <= @now"},
		// Kept DeviceCodeKeep past expiry, so polls learn expired_token.
		{&deviceRow{}, "sig", "expires_at <= @keep"},
	} {
		for {
			var (
				keys []string
				n    int64
			)
			// On SQLite in the write queue like every other write, so it
			// takes its turn in order instead of polling SQLite's busy
			// handler (millisecond sleeps) for a gap between groups.
			err := s.writeTx(ctx, nil, func(db *gorm.DB) error {
				keys, n = keys[:0], 0
				at, keep := sql.Named("now", now), sql.Named("keep", now.Add(-core.DeviceCodeKeep))
				err := db.Model(p.model).Where(p.where, at, keep).Limit(purgeBatch).Pluck(p.key, &keys).Error
				if err != nil || len(keys) == 0 {
					return err
				}
				res := db.Where(p.key+" IN @keys AND "+p.where, sql.Named("keys", keys), at, keep).Delete(p.model)
				n = res.RowsAffected
				return res.Error
			})
			if err != nil {
				return total, err
			}
			total += n
			if len(keys) < purgeBatch || n == 0 {
				break
			}
		}
	}
	return total, nil
}
