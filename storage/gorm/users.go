package gormstore

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"slices"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/oauth2kit/oauth2kit/core"
)

// revokeBatch bounds the families one statement of RevokeUserGrants
// names (two parameters each: within every database's limit).
const revokeBatch = 200

// ownerRow is what the user-grant queries read: a family (or a client) and
// the ids it belongs to, compared again in Go. The grant and refresh
// token tables keep user_id and client_id as TEXT, which MySQL compares
// with the table's collation: utf8mb4_bin pads spaces ("alice" matches
// "alice "), and a table an application created with a
// case-insensitive collation folds case. The SQL condition narrows the
// rows through the index; the exact comparison decides.
type ownerRow struct {
	Family   string `gorm:"column:family"`
	UserID   string `gorm:"column:user_id"`
	ClientID string `gorm:"column:client_id"`
}

func (r *ownerRow) is(userID, clientID string) bool {
	return r.UserID == userID && (clientID == "" || r.ClientID == clientID)
}

// RevokeUserGrants implements core.UserGrantStore. In one transaction (on
// SQLite in the write queue, like every write) it reads the families of the
// user's codes (grant_id) and refresh tokens (family_id), through the
// user_id indexes, and records a revocation for each as RevokeFamily does:
// inserted if absent, keep_until raised to keepUntil if that is later,
// in batches, in sorted order (so concurrent revocations of overlapping
// families lock rows in the same order). It returns each family once,
// including families revoked before (repeated and concurrent calls agree).
// An empty userID is refused: grants without a user (client credentials)
// are never revoked by it.
func (s *Store) RevokeUserGrants(ctx context.Context, userID, clientID string, keepUntil time.Time) ([]string, error) {
	if userID == "" {
		return nil, errors.New("gormstore: RevokeUserGrants needs a user id")
	}
	keepUntil = dbTime(keepUntil)
	var fams []string
	err := s.writeTx(ctx, nil, func(tx *gorm.DB) error {
		fams = fams[:0]
		var rows []ownerRow
		for _, q := range []struct {
			model  any
			family string
		}{{&grantRow{}, "grant_id"}, {&refreshRow{}, "family_id"}} {
			var part []ownerRow
			db := tx.Model(q.model).Distinct(q.family+" AS family", "user_id", "client_id").Where("user_id = ?", userID)
			if clientID != "" {
				db = db.Where("client_id = ?", clientID)
			}
			if err := db.Find(&part).Error; err != nil {
				return err
			}
			rows = append(rows, part...)
		}
		for i := range rows {
			if rows[i].is(userID, clientID) {
				fams = append(fams, rows[i].Family)
			}
		}
		slices.Sort(fams)
		fams = slices.Compact(fams)
		for batch := range slices.Chunk(fams, revokeBatch) {
			recs := make([]revokedFamilyRow, len(batch))
			for i, f := range batch {
				recs[i] = revokedFamilyRow{FamilyID: ident(f), KeepUntil: timeCol(keepUntil)}
			}
			err := tx.Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "family_id"}}, DoNothing: true}).Create(&recs).Error
			if err != nil {
				return err
			}
			err = tx.Model(&revokedFamilyRow{}).
				Where("family_id IN ? AND keep_until < ?", batch, keepUntil).
				Update("keep_until", keepUntil).Error
			if err != nil {
				return err
			}
		}
		return expireUserCodes(tx, userID, clientID)
	})
	if err != nil {
		return nil, err
	}
	return fams, nil
}

// codeRevokedAt is the expiry given to a code whose user was revoked: any
// time in the past will do.
var codeRevokedAt = time.Unix(1, 0).UTC()

// expireUserCodes expires the user's unredeemed codes, so that none is
// redeemed into a family just revoked (RedeemCode finds them expired). The
// rows stay as long as before: keep_until takes the old expiry where it was
// unset (one statement for that first, as MySQL applies SET assignments
// left to right), then expires_at goes to the past. Users are matched
// exactly in Go (MySQL's collations ignore trailing spaces), rows by key.
func expireUserCodes(tx *gorm.DB, userID, clientID string) error {
	var rows []struct {
		CodeSig  string `gorm:"column:code_sig"`
		UserID   string `gorm:"column:user_id"`
		ClientID string `gorm:"column:client_id"`
	}
	db := tx.Model(&grantRow{}).Select("code_sig", "user_id", "client_id").Where("user_id = ? AND used_at IS NULL", userID)
	if clientID != "" {
		db = db.Where("client_id = ?", clientID)
	}
	if err := db.Find(&rows).Error; err != nil {
		return err
	}
	var sigs []string
	for _, r := range rows {
		if r.UserID == userID && (clientID == "" || r.ClientID == clientID) {
			sigs = append(sigs, r.CodeSig)
		}
	}
	slices.Sort(sigs)
	for batch := range slices.Chunk(sigs, revokeBatch) {
		err := tx.Model(&grantRow{}).Where("code_sig IN ? AND keep_until IS NULL", batch).
			Update("keep_until", gorm.Expr("expires_at")).Error
		if err != nil {
			return err
		}
		err = tx.Model(&grantRow{}).Where("code_sig IN ? AND used_at IS NULL", batch).
			Update("expires_at", col(codeRevokedAt)).Error
		if err != nil {
			return err
		}
	}
	return nil
}

// UserClients implements core.UserGrantStore: the user's consents, merged
// with the clients of the user's codes kept at now (expires_at or
// keep_until later than now) and unexpired refresh tokens whose family is
// not revoked. Three reads, through the consents' key and the user_id
// indexes; ordered by client ID (byte order) in Go, as the databases'
// collations need not be.
func (s *Store) UserClients(ctx context.Context, userID string, now time.Time) ([]core.UserClient, error) {
	now = dbTime(now)
	byClient := map[string]*core.UserClient{}
	entry := func(id string) *core.UserClient {
		uc := byClient[id]
		if uc == nil {
			uc = &core.UserClient{ClientID: id}
			byClient[id] = uc
		}
		return uc
	}
	err := s.do(ctx, func(db *gorm.DB) error {
		clear(byClient)
		var consents []consentRow
		if err := db.Where("user_id = ?", userID).Find(&consents).Error; err != nil {
			return err
		}
		for _, c := range consents {
			if string(c.UserID) == userID {
				entry(string(c.ClientID)).ConsentScope = c.Scope
			}
		}
		notRevoked := func(table, family string) string {
			return "NOT EXISTS (SELECT 1 FROM " + tableRevokedFamilies + " r WHERE r.family_id = " + table + "." + family + ")"
		}
		at := sql.Named("now", now)
		for _, q := range []struct {
			model any
			where string
		}{
			{&grantRow{}, "user_id = @user AND (expires_at > @now OR keep_until > @now) AND " + notRevoked(tableGrants, "grant_id")},
			{&refreshRow{}, "user_id = @user AND expires_at > @now AND " + notRevoked(tableRefreshTokens, "family_id")},
		} {
			var live []ownerRow
			if err := db.Model(q.model).Distinct("user_id", "client_id").Where(q.where, sql.Named("user", userID), at).Find(&live).Error; err != nil {
				return err
			}
			for i := range live {
				if live[i].is(userID, "") {
					entry(live[i].ClientID).Active = true
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]core.UserClient, 0, len(byClient))
	for _, uc := range byClient {
		out = append(out, *uc)
	}
	slices.SortFunc(out, func(a, b core.UserClient) int { return cmp.Compare(a.ClientID, b.ClientID) })
	return out, nil
}

// DeleteConsent implements core.UserGrantStore.
func (s *Store) DeleteConsent(ctx context.Context, userID, clientID string) error {
	return s.writeOne(ctx, func(db *gorm.DB) error {
		return db.Where("user_id = ? AND client_id = ?", userID, clientID).Delete(&consentRow{}).Error
	})
}
