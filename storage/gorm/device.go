package gormstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/oauth2kit/oauth2kit/core"
)

var _ core.DeviceStore = (*Store)(nil)

// deviceRow is a device authorization (core.DeviceStore), keyed by its
// device code signature, with a unique user code signature: CreateDeviceCode
// relies on both constraints to refuse a duplicate, and the verification
// page finds the row by the second. expires_at is indexed for Purge.
// interval is in seconds; decided_at NULL is undecided.
type deviceRow struct {
	Sig         ident    `gorm:"column:sig;primaryKey;not null;size:128"`
	UserCodeSig ident    `gorm:"column:user_code_sig;not null;size:128;uniqueIndex:idx_oauth2_device_codes_user_code_sig"`
	ClientID    string   `gorm:"column:client_id;type:text;not null"`
	Scope       string   `gorm:"column:scope;type:text;not null"`
	Resource    optText  `gorm:"column:resource;type:text"`
	Created     timeCol  `gorm:"column:created_at;not null"`
	ExpiresAt   timeCol  `gorm:"column:expires_at;not null;index:idx_oauth2_device_codes_expires_at"`
	Interval    int64    `gorm:"column:interval_seconds;not null"`
	NextPollAt  *timeCol `gorm:"column:next_poll_at"`
	DecidedAt   *timeCol `gorm:"column:decided_at"`
	Approved    bool     `gorm:"column:approved;not null"`
	UserID      string   `gorm:"column:user_id;type:text;not null"`
}

func (deviceRow) TableName() string { return tableDeviceCodes }

func deviceRowOf(d *core.DeviceCode) *deviceRow {
	return &deviceRow{
		Sig: ident(d.Sig), UserCodeSig: ident(d.UserCodeSig), ClientID: d.ClientID, Scope: d.Scope,
		Resource: optText(d.Resource), Created: col(d.CreatedAt), ExpiresAt: col(d.ExpiresAt),
		Interval: int64(d.Interval / time.Second), NextPollAt: nullTime(d.NextPollAt), DecidedAt: colPtr(d.DecidedAt), Approved: d.Approved, UserID: d.UserID,
	}
}

func (r *deviceRow) code() *core.DeviceCode {
	return &core.DeviceCode{
		Sig: string(r.Sig), UserCodeSig: string(r.UserCodeSig), ClientID: r.ClientID, Scope: r.Scope,
		Resource: string(r.Resource), CreatedAt: r.Created.time(), ExpiresAt: r.ExpiresAt.time(),
		Interval: time.Duration(r.Interval) * time.Second, NextPollAt: fromNull(r.NextPollAt), DecidedAt: fromPtr(r.DecidedAt), Approved: r.Approved, UserID: r.UserID,
	}
}

// CreateDeviceCode implements core.DeviceStore: one INSERT, whose unique
// constraints (the device code's and the user code's signature) refuse a
// duplicate of either.
func (s *Store) CreateDeviceCode(ctx context.Context, d *core.DeviceCode) error {
	row := deviceRowOf(d)
	err := s.writeOne(ctx, func(db *gorm.DB) error { return db.Create(row).Error })
	if err != nil && isDuplicate(err) {
		return core.ErrExists
	}
	return err
}

// GetDeviceCode implements core.DeviceStore.
func (s *Store) GetDeviceCode(ctx context.Context, sig string) (*core.DeviceCode, error) {
	return s.getDevice(ctx, "sig = ?", sig)
}

// GetDeviceCodeByUserCode implements core.DeviceStore.
func (s *Store) GetDeviceCodeByUserCode(ctx context.Context, userCodeSig string) (*core.DeviceCode, error) {
	return s.getDevice(ctx, "user_code_sig = ?", userCodeSig)
}

func (s *Store) getDevice(ctx context.Context, where, key string) (*core.DeviceCode, error) {
	var (
		row deviceRow
		ok  bool
	)
	err := s.do(ctx, func(db *gorm.DB) (err error) {
		row = deviceRow{}
		ok, err = find(db, &row, where, key)
		return err
	})
	if err != nil {
		return nil, err
	}
	// The key compares byte for byte (ident), but check: a row found is
	// the row asked for.
	if !ok || (string(row.Sig) != key && string(row.UserCodeSig) != key) {
		return nil, core.ErrNotFound
	}
	return row.code(), nil
}

// DecideDeviceCode implements core.DeviceStore in one transaction: a
// conditional UPDATE (undecided and unexpired) whose row count decides
// which of racing decisions wins, then, for an approval, the INSERT of the
// grant; a failed INSERT rolls the decision back.
func (s *Store) DecideDeviceCode(ctx context.Context, sig string, now time.Time, approve bool, userID string, g *core.Grant) error {
	if approve && (g == nil || g.CodeSig != sig) {
		return errors.New("gormstore: an approval stores a grant under the device code's signature")
	}
	now = dbTime(now)
	var called bool
	return s.writeTx(ctx, &called, func(tx *gorm.DB) error {
		res := tx.Model(&deviceRow{}).Where("sig = ? AND decided_at IS NULL AND expires_at > ?", sig, now).
			Updates(map[string]any{"decided_at": col(now), "approved": approve, "user_id": userID})
		switch {
		case res.Error != nil:
			return res.Error
		case res.RowsAffected > 1:
			return fmt.Errorf("gormstore: deciding a device code updated %d rows", res.RowsAffected)
		case res.RowsAffected == 0:
			var row deviceRow
			ok, err := find(tx, &row, "sig = ?", sig)
			switch {
			case err != nil:
				return err
			case !ok || string(row.Sig) != sig || !now.Before(row.ExpiresAt.time()):
				return core.ErrNotFound
			case row.DecidedAt != nil:
				return core.ErrCodeUsed
			}
			return errRace
		}
		if !approve {
			return nil
		}
		if err := tx.Create(grantRowOf(g)).Error; err != nil {
			if isDuplicate(err) {
				return core.ErrCodeUsed
			}
			return err
		}
		return nil
	})
}

// PollDeviceCode implements core.DeviceStore with one conditional UPDATE
// whose row count decides; a SELECT follows only when it changed nothing,
// to tell a poll too soon from an unknown code.
func (s *Store) PollDeviceCode(ctx context.Context, sig string, now, next time.Time) (bool, error) {
	now, next = dbTime(now), dbTime(next)
	var n int64
	err := s.writeOne(ctx, func(db *gorm.DB) error {
		res := db.Model(&deviceRow{}).Where("sig = ? AND (next_poll_at IS NULL OR next_poll_at <= ?)", sig, now).Update("next_poll_at", col(next))
		n = res.RowsAffected
		return res.Error
	})
	switch {
	case err != nil:
		return false, err
	case n == 1:
		return true, nil
	case n > 1:
		return false, fmt.Errorf("gormstore: a device poll updated %d rows", n)
	}
	if _, err := s.GetDeviceCode(ctx, sig); err != nil {
		return false, err
	}
	return false, nil
}

// SlowDownDeviceCode implements core.DeviceStore; the interval only
// grows, so racing slow_downs leave the largest.
func (s *Store) SlowDownDeviceCode(ctx context.Context, sig string, interval time.Duration, next time.Time) error {
	secs := int64(interval / time.Second)
	return s.writeOne(ctx, func(db *gorm.DB) error {
		return db.Model(&deviceRow{}).Where("sig = ?", sig).Updates(map[string]any{
			"interval_seconds": gorm.Expr("CASE WHEN interval_seconds < ? THEN ? ELSE interval_seconds END", secs, secs),
			"next_poll_at":     col(dbTime(next)),
		}).Error
	})
}

// isDuplicate reports whether err is a unique constraint violation: the
// INSERT met a row with the same key. Two constraints can refuse a device
// code, so ON CONFLICT with one target does not cover it. As in transient,
// no driver is imported: PostgreSQL's SQLSTATE 23505, MySQL/MariaDB's
// error 1062, SQLite's "UNIQUE constraint failed" (mattn) and
// SQLITE_CONSTRAINT_* (modernc), and gorm's own translation.
func isDuplicate(err error) bool {
	if errors.Is(err, gorm.ErrDuplicatedKey) {
		return true
	}
	var st interface{ SQLState() string }
	if errors.As(err, &st) {
		return st.SQLState() == "23505"
	}
	msg := err.Error()
	for _, s := range []string{"UNIQUE constraint failed", "SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY", "Error 1062 (", "Error 1062:"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}
