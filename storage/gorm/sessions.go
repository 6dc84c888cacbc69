package gormstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/oauth2kit/oauth2kit/core"
)

var (
	_ core.LoginSessionStore  = (*Store)(nil)
	_ core.SessionClientStore = (*Store)(nil)
)

// loginSessionRow is an end user's login session (core.LoginSession),
// keyed by the server's HMAC of the session cookie: the cookie itself is
// never stored. sid (the id_token's sid claim) and user_id are indexed, so
// that a session can be found by either without a scan; user_id is TEXT,
// indexed by a prefix on MySQL as in grantRow. expires_at is
// indexed for Purge. amr is a JSON list like the client's lists; a zero
// auth_time or created_at is stored as NULL. client_ids (the clients
// issued a code in the session, for back-channel logout) is a JSON list
// too, nullable as it came after the table.
type loginSessionRow struct {
	ID        ident    `gorm:"column:id;primaryKey;not null;size:128"`
	SID       ident    `gorm:"column:sid;size:128;not null;index:idx_oauth2_login_sessions_sid"`
	UserID    string   `gorm:"column:user_id;type:text;not null;index:idx_oauth2_login_sessions_user_id,length:191"`
	AuthTime  *timeCol `gorm:"column:auth_time"`
	ACR       string   `gorm:"column:acr;type:text;not null"`
	AMR       string   `gorm:"column:amr;type:text;not null"`
	Created   *timeCol `gorm:"column:created_at"`
	ExpiresAt timeCol  `gorm:"column:expires_at;not null;index:idx_oauth2_login_sessions_expires_at"`
	// ClientIDs came later: nullable, NULL read as no client.
	ClientIDs optText `gorm:"column:client_ids;type:text"`
}

func (loginSessionRow) TableName() string { return tableLoginSessions }

func loginSessionRowOf(ls *core.LoginSession) (*loginSessionRow, error) {
	amr, err := encodeList(ls.AMR)
	if err != nil {
		return nil, err
	}
	clients, err := encodeList(ls.ClientIDs)
	if err != nil {
		return nil, err
	}
	return &loginSessionRow{
		ClientIDs: optText(clients),
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
	clients, err := decodeList(string(r.ClientIDs))
	if err != nil {
		return nil, fmt.Errorf("gormstore: login session: client_ids: %w", err)
	}
	return &core.LoginSession{
		ClientIDs: clients,
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

// AddSessionClient implements core.SessionClientStore. One transaction
// reads the live session with that sid, its row locked (SELECT … FOR
// UPDATE; on SQLite the write transaction is the lock, one at a time),
// and rewrites client_ids with the client appended: concurrent additions
// queue on the row instead of overwriting each other, and one racing
// TakeLoginSession either sees the client or is seen to have ended the
// session (core.ErrNotFound, as for no live session).
func (s *Store) AddSessionClient(ctx context.Context, sid, clientID string, now time.Time) error {
	now = dbTime(now)
	return s.writeTx(ctx, nil, func(tx *gorm.DB) error {
		var row loginSessionRow
		ok, err := find(s.forUpdate(tx), &row, "sid = ? AND expires_at > ?", sid, now)
		if err != nil {
			return err
		}
		if !ok || string(row.SID) != sid {
			return core.ErrNotFound
		}
		ids, err := decodeList(string(row.ClientIDs))
		if err != nil {
			return fmt.Errorf("gormstore: login session: client_ids: %w", err)
		}
		if slices.Contains(ids, clientID) {
			return nil
		}
		if len(ids) >= core.MaxSessionClients {
			return core.ErrTooManySessionClients
		}
		enc, err := encodeList(append(ids, clientID))
		if err != nil {
			return err
		}
		return tx.Model(&loginSessionRow{}).Where("id = ?", string(row.ID)).Update("client_ids", enc).Error
	})
}

// TakeLoginSession implements core.SessionClientStore: the row is read,
// locked as in AddSessionClient, and deleted in one transaction.
func (s *Store) TakeLoginSession(ctx context.Context, id string, now time.Time) (*core.LoginSession, error) {
	now = dbTime(now)
	var out *core.LoginSession
	err := s.writeTx(ctx, nil, func(tx *gorm.DB) error {
		out = nil
		var row loginSessionRow
		ok, err := find(s.forUpdate(tx), &row, "id = ?", id)
		if err != nil || !ok || string(row.ID) != id {
			return err
		}
		if err := tx.Where("id = ?", id).Delete(&loginSessionRow{}).Error; err != nil {
			return err
		}
		if !now.Before(row.ExpiresAt.time()) {
			return nil // ended all the same
		}
		out, err = row.session()
		return err
	})
	if err != nil {
		return nil, err
	}
	if out == nil {
		return nil, core.ErrNotFound
	}
	return out, nil
}

// TakeUserLoginSessions implements core.SessionClientStore: the user's
// rows are read through the user_id index, locked, and deleted by id (a
// few hundred per statement) in one transaction; a session created
// meanwhile is not among them and stays.
func (s *Store) TakeUserLoginSessions(ctx context.Context, userID string, now time.Time) ([]*core.LoginSession, error) {
	now = dbTime(now)
	var out []*core.LoginSession
	err := s.writeTx(ctx, nil, func(tx *gorm.DB) error {
		out = out[:0]
		var rows []loginSessionRow
		if err := s.forUpdate(tx).Where("user_id = ?", userID).Find(&rows).Error; err != nil {
			return err
		}
		ids := make([]string, 0, len(rows))
		for i := range rows {
			r := &rows[i]
			if r.UserID != userID {
				continue // a collation that folds case or pads: not this user
			}
			ids = append(ids, string(r.ID))
			if !now.Before(r.ExpiresAt.time()) {
				continue
			}
			ls, err := r.session()
			if err != nil {
				return err
			}
			out = append(out, ls)
		}
		for chunk := range slices.Chunk(ids, purgeBatch) {
			if err := tx.Where("id IN ?", chunk).Delete(&loginSessionRow{}).Error; err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// forUpdate makes the SELECT built on q lock the rows it reads until the
// transaction ends. SQLite has no row locks and needs none: its writes run
// one transaction at a time (the group transaction on this store).
func (s *Store) forUpdate(q *gorm.DB) *gorm.DB {
	if s.group != nil {
		return q
	}
	return q.Clauses(clause.Locking{Strength: "UPDATE"})
}
