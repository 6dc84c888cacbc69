package gormstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/oauth2kit/oauth2kit/core"
)

var _ core.ReplayCache = (*Store)(nil)

// replayRow is a remembered key (core.ReplayCache), kept until keep_until.
//
// The key is stored as the hex of its SHA-256, never as given: 64 ASCII
// characters whatever the key, so the primary key column has one small
// size on every database (within every InnoDB index limit), compares byte
// for byte, and takes keys a text column would refuse (PostgreSQL rejects
// NUL bytes and invalid UTF-8 in varchar). Keys the store tells apart are
// then keys whose hashes differ, which for distinct keys is all of them
// short of a SHA-256 collision. keep_until is indexed for Purge.
type replayRow struct {
	KeyHash   ident   `gorm:"column:key_hash;primaryKey;not null;size:64"`
	KeepUntil timeCol `gorm:"column:keep_until;not null;index:idx_oauth2_replay_keep_until"`
}

func (replayRow) TableName() string { return tableReplay }

func replayKeyHash(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// replayTouch is the MySQL duplicate update of insertNewTouching for
// replay rows: the row has no text column to append to, so it moves
// keep_until back a microsecond, a change for certain (rolled back). Back,
// not forward: a record kept "for ever" (year 9999) has no later
// DATETIME.
var replayTouch = clause.Assignment{
	Column: clause.Column{Name: "keep_until"},
	Value:  gorm.Expr("keep_until - INTERVAL 1 MICROSECOND"),
}

// Remember implements core.ReplayCache with statements whose row counts
// decide, never a lookup followed by a save, so that of calls racing with
// one key on any number of instances exactly one reports true:
//
//  1. An INSERT of the key that inserts only if the key is absent
//     (insertNewTouching, as CreateGrant does: ON CONFLICT (key_hash) DO
//     NOTHING on PostgreSQL and SQLite; on MySQL/MariaDB an ON DUPLICATE
//     KEY UPDATE that changes the existing row for certain, in a
//     transaction rolled back when it did). Inserted: true. This is the
//     path of almost every call: keys are fresh (a proof's jti).
//  2. The key exists: one conditional UPDATE takes the row over if its
//     record has run out, SET keep_until = until WHERE key_hash = ? AND
//     keep_until <= now. Racers for one expired row all reach it; the
//     database serialises them on the row (PostgreSQL re-checks the WHERE
//     clause against the committed row, InnoDB's UPDATE is a locking
//     read, SQLite writes one at a time), so exactly one affects it and
//     reports true; the others, seeing the winner's later keep_until,
//     affect nothing. The new until is after now, so the row changes and
//     the count is 1 whether MySQL counts changed or matched rows
//     (clientFoundRows).
//  3. Nothing updated: the record is live, or Purge deleted the expired
//     row between 1 and 2. The INSERT again tells which: inserted, the
//     key was free (true); refused, it is remembered (false).
//
// now and until are compared as instants, in microseconds (the finest
// time all three databases keep). A record's until is meant to be after
// now: one that is not has run out from the start, and on MySQL counting
// changed rows, taking over an expired row with the very keep_until it
// holds changes nothing and reports false.
func (s *Store) Remember(ctx context.Context, key string, now, until time.Time) (bool, error) {
	h := replayKeyHash(key)
	now, until = dbTime(now), dbTime(until)
	insert := func() (bool, error) {
		err := s.insertNewTouching(ctx, &replayRow{KeyHash: ident(h), KeepUntil: timeCol(until)}, "key_hash", replayTouch)
		if errors.Is(err, core.ErrExists) {
			return false, nil
		}
		return err == nil, err
	}
	if ok, err := insert(); ok || err != nil {
		return ok, err
	}
	var took bool
	err := s.writeOne(ctx, func(db *gorm.DB) error {
		res := db.Model(&replayRow{}).Where("key_hash = ? AND keep_until <= ?", h, now).Update("keep_until", until)
		took = res.RowsAffected > 0
		return res.Error
	})
	if err != nil {
		return false, err
	}
	if took {
		return true, nil
	}
	return insert()
}
