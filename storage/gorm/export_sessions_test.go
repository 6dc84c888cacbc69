package gormstore

import "gorm.io/gorm"

// legacySessionRow is the login session table as Migrate created it before
// client_ids (back-channel logout): tests migrate a database holding rows
// of that shape.
type legacySessionRow struct {
	ID        ident    `gorm:"column:id;primaryKey;not null;size:128"`
	SID       ident    `gorm:"column:sid;size:128;not null;index:idx_oauth2_login_sessions_sid"`
	UserID    string   `gorm:"column:user_id;type:text;not null;index:idx_oauth2_login_sessions_user_id,length:191"`
	AuthTime  *timeCol `gorm:"column:auth_time"`
	ACR       string   `gorm:"column:acr;type:text;not null"`
	AMR       string   `gorm:"column:amr;type:text;not null"`
	Created   *timeCol `gorm:"column:created_at"`
	ExpiresAt timeCol  `gorm:"column:expires_at;not null;index:idx_oauth2_login_sessions_expires_at"`
}

func (legacySessionRow) TableName() string { return tableLoginSessions }

// MigrateLegacySessions creates the login session table without
// client_ids.
func MigrateLegacySessions(db *gorm.DB) error {
	if db.Dialector.Name() == "mysql" {
		db = db.Set("gorm:table_options", "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin")
	}
	return db.AutoMigrate(&legacySessionRow{})
}
