package gormstore

import "gorm.io/gorm"

// Transient exposes the lock-conflict classification to the tests.
var Transient = transient

// SetPurgeBatch changes the Purge batch size and returns a function that
// restores it.
func SetPurgeBatch(n int) (restore func()) {
	old := purgeBatch
	purgeBatch = n
	return func() { purgeBatch = old }
}

// QueuedWrites returns how many writes wait for the next SQLite group
// transaction.
func QueuedWrites(s *Store) int {
	s.group.mu.Lock()
	defer s.group.mu.Unlock()
	return len(s.group.queue)
}

// The grant and refresh token tables as Migrate created them before
// keep_until and the user_id indexes (up to commit b5ba87e): tests migrate
// a database holding rows of that schema.
type legacyGrantRow struct {
	CodeSig             ident    `gorm:"column:code_sig;primaryKey;not null;size:128"`
	GrantID             string   `gorm:"column:grant_id;type:text;not null"`
	ClientID            string   `gorm:"column:client_id;type:text;not null"`
	UserID              string   `gorm:"column:user_id;type:text;not null"`
	RedirectURI         string   `gorm:"column:redirect_uri;type:text;not null"`
	Scope               string   `gorm:"column:scope;type:text;not null"`
	CodeChallenge       string   `gorm:"column:code_challenge;type:text;not null"`
	CodeChallengeMethod string   `gorm:"column:code_challenge_method;type:text;not null"`
	AdditionalInfo      string   `gorm:"column:additional_info;type:text;not null"`
	Created             *timeCol `gorm:"column:created_at"`
	ExpiresAt           timeCol  `gorm:"column:expires_at;not null;index:idx_oauth2_grants_expires_at"`
	UsedAt              *timeCol `gorm:"column:used_at"`
}

func (legacyGrantRow) TableName() string { return tableGrants }

type legacyRefreshRow struct {
	Sig            ident    `gorm:"column:sig;primaryKey;not null;size:128"`
	FamilyID       ident    `gorm:"column:family_id;size:128;not null;index:idx_oauth2_refresh_tokens_family_id"`
	ClientID       string   `gorm:"column:client_id;type:text;not null"`
	UserID         string   `gorm:"column:user_id;type:text;not null"`
	Scope          string   `gorm:"column:scope;type:text;not null"`
	AdditionalInfo string   `gorm:"column:additional_info;type:text;not null"`
	Created        *timeCol `gorm:"column:created_at"`
	ExpiresAt      timeCol  `gorm:"column:expires_at;not null;index:idx_oauth2_refresh_tokens_expires_at"`
	RotatedAt      *timeCol `gorm:"column:rotated_at"`
}

func (legacyRefreshRow) TableName() string { return tableRefreshTokens }

// MigrateLegacy creates the five tables with the grant and refresh token
// tables of the previous schema.
func MigrateLegacy(db *gorm.DB) error {
	if db.Dialector.Name() == "mysql" {
		db = db.Set("gorm:table_options", "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin")
	}
	return db.AutoMigrate(&clientRow{}, &legacyGrantRow{}, &legacyRefreshRow{}, &revokedFamilyRow{}, &consentRow{})
}
