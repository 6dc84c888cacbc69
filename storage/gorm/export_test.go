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

// The client, grant and refresh token tables as Migrate created them up to
// commit b5ba87e, before keep_until, the user_id indexes and the OpenID
// Connect columns (id_token_signed_response_alg, oidc): tests migrate a
// database holding rows of that schema.
type legacyClientRow struct {
	ID                ident    `gorm:"column:id;primaryKey;not null;size:128"`
	Name              string   `gorm:"column:name;type:text;not null"`
	SecretHash        string   `gorm:"column:secret_hash;type:text;not null"`
	RedirectURIs      string   `gorm:"column:redirect_uris;type:text;not null"`
	Public            bool     `gorm:"column:is_public;not null"`
	GrantTypes        string   `gorm:"column:grant_types;type:text;not null"`
	Scopes            string   `gorm:"column:scopes;type:text;not null"`
	Profile           uint8    `gorm:"column:profile;not null"`
	PKCE              uint8    `gorm:"column:pkce;not null"`
	LegacyBasicSecret bool     `gorm:"column:legacy_basic_secret;not null"`
	Created           *timeCol `gorm:"column:created_at"`
}

func (legacyClientRow) TableName() string { return tableClients }

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

// MigrateLegacy creates the five tables with the client, grant and refresh
// token tables of the previous schema.
func MigrateLegacy(db *gorm.DB) error {
	if db.Dialector.Name() == "mysql" {
		db = db.Set("gorm:table_options", "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin")
	}
	return db.AutoMigrate(&legacyClientRow{}, &legacyGrantRow{}, &legacyRefreshRow{}, &revokedFamilyRow{}, &consentRow{})
}
