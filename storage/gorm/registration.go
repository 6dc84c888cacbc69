package gormstore

import (
	"context"
	"errors"
	"time"

	"gorm.io/gorm"

	"github.com/oauth2kit/oauth2kit/core"
)

var _ core.RegistrationStore = (*Store)(nil)

// unusedClient selects, with the parameters true and the cutoff, the
// clients DeleteUnusedClients removes: dynamic, never used, created before
// the cutoff. A NULL created_at is a zero CreatedAt, which is before any
// cutoff DeleteUnusedClients queries with.
const unusedClient = "is_dynamic = ? AND used_at IS NULL AND (created_at IS NULL OR created_at < ?)"

// CreateClient implements core.RegistrationStore: the client is inserted
// only if no client has its ID; otherwise it returns core.ErrExists and
// the stored client is left as it was. It is one INSERT, as CreateGrant
// is (insertNew): ON CONFLICT (id) DO NOTHING on PostgreSQL and SQLite,
// whose row count tells a taken ID; on MySQL/MariaDB an ON DUPLICATE KEY
// UPDATE that changes the name of the existing row for certain, in a
// transaction rolled back when it did. The primary key decides, so of
// registrations racing for one ID, on any number of instances, exactly
// one is stored, and a taken ID is no database error for gorm to log.
func (s *Store) CreateClient(ctx context.Context, c *core.Client) error {
	if c == nil || c.ID == "" {
		return errors.New("gormstore: a client needs an ID")
	}
	row, err := clientRowOf(c)
	if err != nil {
		return err
	}
	return s.insertNew(ctx, row, "id", "name")
}

// MarkClientUsed implements core.RegistrationStore with one conditional
// UPDATE (used_at is set only where it is NULL), so the first use is kept
// however many instances record theirs at once. An absent client updates
// nothing, which is not an error. A zero at would mean "never used" and
// changes nothing.
func (s *Store) MarkClientUsed(ctx context.Context, id string, at time.Time) error {
	if at.IsZero() {
		return ctx.Err()
	}
	at = dbTime(at)
	return s.writeOne(ctx, func(db *gorm.DB) error {
		return db.Model(&clientRow{}).Where("id = ? AND used_at IS NULL", id).Update("used_at", at).Error
	})
}

// CountDynamicClients implements core.RegistrationStore: a count over the
// index (is_dynamic, used_at, created_at). Rows from before the is_dynamic
// column (NULL) are static clients and do not count.
func (s *Store) CountDynamicClients(ctx context.Context) (int, error) {
	var n int64
	err := s.do(ctx, func(db *gorm.DB) error {
		return db.Model(&clientRow{}).Where("is_dynamic = ?", true).Count(&n).Error
	})
	return int(n), err
}

// DeleteUnusedClients implements core.RegistrationStore. In one
// transaction it selects the ids of the dynamic clients never used and
// created before createdBefore (a range of the index (is_dynamic,
// used_at, created_at)), then deletes each one as DeleteClient does, with
// its consents, codes and refresh tokens. Each client's DELETE repeats the
// condition, so a client whose first use another instance recorded after
// the SELECT is kept (PostgreSQL re-reads the committed row, InnoDB's
// DELETE is a locking read) and not counted. The ids are deleted in
// order, so that concurrent purges lock rows in the same order instead of
// deadlocking. It returns how many clients it deleted.
func (s *Store) DeleteUnusedClients(ctx context.Context, createdBefore time.Time) (int, error) {
	if !createdBefore.After(time.Time{}) {
		// No client is created before the zero time: a zero CreatedAt
		// is that time, not earlier.
		return 0, ctx.Err()
	}
	before := dbTime(createdBefore)
	var n int
	err := s.writeTx(ctx, nil, func(tx *gorm.DB) error {
		n = 0
		var ids []string
		if err := tx.Model(&clientRow{}).Where(unusedClient, true, before).Order("id").Pluck("id", &ids).Error; err != nil {
			return err
		}
		for _, id := range ids {
			deleted, err := deleteClient(tx, id, unusedClient, true, before)
			if err != nil {
				return err
			}
			if deleted {
				n++
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}
