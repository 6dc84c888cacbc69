package gormstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/oauth2kit/oauth2kit/core"
)

var _ core.LoginSessionStore = (*Store)(nil)

// loginSessionRow is an end user's login session (core.LoginSession),
// keyed by the server's HMAC of the session cookie: the cookie itself is
// never stored. sid (the id_token's sid claim) and user_id are indexed, so
// that a session can be found by either without a scan; user_id is TEXT,
// indexed by a prefix on MySQL as in grantRow. expires_at is
// indexed for Purge. amr is a JSON list like the client's lists; a zero
// auth_time or created_at is stored as NULL.
type loginSessionRow struct {
	ID        ident    `gorm:"column:id;primaryKey;not null;size:128"`
	SID       ident    `gorm:"column:sid;size:128;not null;index:idx_oauth2_login_sessions_sid"`
	UserID    string   `gorm:"column:user_id;type:text;not null;index:idx_oauth2_login_sessions_user_id,length:191"`
	AuthTime  *timeCol `gorm:"column:auth_time"`
	ACR       string   `gorm:"column:acr;type:text;not null"`
	AMR       string   `gorm:"column:amr;type:text;not null"`
	Created   *timeCol `gorm:"column:created_at"`
	ExpiresAt timeCol  `gorm:"column:expires_at;not null;index:idx_oauth2_login_sessions_expires_at"`
}

func (loginSessionRow) TableName() string { return tableLoginSessions }

func loginSessionRowOf(ls *core.LoginSession) (*loginSessionRow, error) {
	amr, err := encodeList(ls.AMR)
	if err != nil {
		return nil, err
	}
	return &loginSessionRow{
		ID:        ident(ls.ID),
		SID:       ident(ls.SID),
		UserID:    ls.UserID,
		AuthTime:  nullTime(ls.AuthTime),
		ACR:       ls.ACR,
		AMR:       amr,
		Created:   nullTime(ls.CreatedAt),
		ExpiresAt: col(ls.ExpiresAt),
	}, nil
}

func (r *loginSessionRow) session() (*core.LoginSession, error) {
	amr, err := decodeList(r.AMR)
	if err != nil {
		return nil, fmt.Errorf("gormstore: login session: amr: %w", err)
	}
	return &core.LoginSession{
		ID:        string(r.ID),
		SID:       string(r.SID),
		UserID:    r.UserID,
		AuthTime:  fromNull(r.AuthTime),
		ACR:       r.ACR,
		AMR:       amr,
		CreatedAt: fromNull(r.Created),
		ExpiresAt: r.ExpiresAt.time(),
	}, nil
}

// CreateLoginSession implements core.LoginSessionStore. A session whose ID
// is stored already (until it ends, or Purge deletes it once expired) is
// not stored: it returns core.ErrExists. Duplicates are told apart as in
// CreateGrant: INSERT … ON CONFLICT (id) DO NOTHING and its row count on
// PostgreSQL and SQLite; on MySQL/MariaDB an ON DUPLICATE KEY UPDATE that
// changes the existing row for certain (2 rows affected), in a transaction
// rolled back when it did.
func (s *Store) CreateLoginSession(ctx context.Context, ls *core.LoginSession) error {
	if ls == nil || ls.ID == "" {
		return errors.New("gormstore: a login session needs an ID")
	}
	row, err := loginSessionRowOf(ls)
	if err != nil {
		return err
	}
	return s.insertNew(ctx, row, "id", "acr")
}

// GetLoginSession implements core.LoginSessionStore: the session, or
// core.ErrNotFound if there is none, it ended, or it expired (expires_at
// not after now).
func (s *Store) GetLoginSession(ctx context.Context, id string, now time.Time) (*core.LoginSession, error) {
	now = dbTime(now)
	var (
		row loginSessionRow
		ok  bool
	)
	err := s.do(ctx, func(db *gorm.DB) (err error) {
		row = loginSessionRow{}
		ok, err = find(db, &row, "id = ? AND expires_at > ?", id, now)
		return err
	})
	if err != nil {
		return nil, err
	}
	if !ok || string(row.ID) != id {
		return nil, core.ErrNotFound
	}
	return row.session()
}

// EndLoginSession implements core.LoginSessionStore: the row is deleted,
// so that every instance sharing the database answers ErrNotFound for it.
// Ending an absent session is not an error.
func (s *Store) EndLoginSession(ctx context.Context, id string) error {
	return s.writeOne(ctx, func(db *gorm.DB) error {
		return db.Where("id = ?", id).Delete(&loginSessionRow{}).Error
	})
}
