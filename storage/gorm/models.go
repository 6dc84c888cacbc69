package gormstore

import (
	"database/sql/driver"
	"encoding/json"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/schema"

	"github.com/oauth2kit/oauth2kit/core"
)

// Table names are fixed: an application that shares its database with the
// store sees exactly these eight tables.
const (
	tableClients         = "oauth2_clients"
	tableGrants          = "oauth2_grants"
	tableRefreshTokens   = "oauth2_refresh_tokens"
	tableRevokedFamilies = "oauth2_revoked_families"
	tableConsents        = "oauth2_consents"
	tableLoginSessions   = "oauth2_login_sessions"
	tableReplay          = "oauth2_replay"
	tableDeviceCodes     = "oauth2_device_codes"
)

// ident is a key column (an id or a signature) that must compare byte for
// byte. MySQL's default collations fold case and ignore trailing spaces, so
// "conf" would find the client "CONF " and a signature would match another
// signature that differs only in case; a VARBINARY column compares bytes.
// PostgreSQL varchar (deterministic collations) and SQLite text (BINARY
// collation) already compare bytes. Every key column stays within 767 bytes
// (the oldest InnoDB index prefix limit), composite keys included.
type ident string

// GormDBDataType picks the column type per database; the size comes from the
// field's size tag.
func (ident) GormDBDataType(db *gorm.DB, f *schema.Field) string {
	switch db.Dialector.Name() {
	case "mysql":
		return fmt.Sprintf("varbinary(%d)", f.Size)
	case "sqlite":
		return "text"
	default:
		return fmt.Sprintf("varchar(%d)", f.Size)
	}
}

// timeCol is a time column: DATETIME(6) on MySQL (whose default, and
// gorm's, keeps milliseconds at best), TIMESTAMPTZ on PostgreSQL (always
// microseconds), DATETIME on SQLite. The store writes UTC only.
type timeCol time.Time

// GormDBDataType picks the column type per database.
func (timeCol) GormDBDataType(db *gorm.DB, _ *schema.Field) string {
	switch db.Dialector.Name() {
	case "mysql":
		return "datetime(6)"
	case "postgres":
		return "timestamptz"
	case "sqlite":
		return "datetime"
	}
	return "" // the dialect's default for a time
}

// Value implements driver.Valuer.
func (t timeCol) Value() (driver.Value, error) { return time.Time(t), nil }

// Scan implements sql.Scanner.
func (t *timeCol) Scan(src any) error {
	switch v := src.(type) {
	case time.Time:
		*t = timeCol(v.UTC())
		return nil
	case string:
		return t.parse(v)
	case []byte:
		return t.parse(string(v))
	}
	return fmt.Errorf("gormstore: cannot read %T as a time", src)
}

// parse reads a time a driver returned as text (SQLite drivers do when a
// column's declared type is not one they recognise).
func (t *timeCol) parse(s string) error {
	for _, layout := range []string{"2006-01-02 15:04:05.999999999-07:00", time.RFC3339Nano, "2006-01-02 15:04:05.999999999"} {
		if v, err := time.Parse(layout, s); err == nil {
			*t = timeCol(v.UTC())
			return nil
		}
	}
	return fmt.Errorf("gormstore: cannot parse time %q", s)
}

// optText is a text column added after the first release: nullable, so
// that Migrate adds it to tables that hold rows on every database (MySQL 8
// refuses a literal default on TEXT), and read as "" where it is NULL (rows
// written before it existed, or by an older binary during an upgrade).
type optText string

// Value implements driver.Valuer.
func (t optText) Value() (driver.Value, error) { return string(t), nil }

// Scan implements sql.Scanner.
func (t *optText) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*t = ""
	case string:
		*t = optText(v)
	case []byte:
		*t = optText(v)
	default:
		return fmt.Errorf("gormstore: cannot read %T as text", src)
	}
	return nil
}

// Rows. Times are stored in UTC with microsecond precision (the finest all
// three databases keep); zero creation times are stored as NULL, as MySQL
// refuses or mangles year 1 in some modes. Lists are JSON text. The text
// columns added after the first release (id_token_signed_response_alg,
// access_token_format, oidc, post_logout_redirect_uris,
// registration_token_hash, metadata, auth_method, jwks, jwks_uri, jkt)
// are nullable (optText), so that
// Migrate can add them to tables that hold rows: those rows read back as
// the empty string (an empty list).

// clientRow is a registered client. The dynamic client registration
// columns (is_dynamic, registration_token_hash, metadata, used_at) came
// after the first release and are nullable like the other late columns: a
// row without them (written before they existed, or by an older binary
// during an upgrade) is a client registered statically, never used.
// is_dynamic is written as true or false, never NULL; used_at is NULL
// until the client's first use. metadata is the registered JSON kept as
// text, not in a JSON column type, which would rewrite it (PostgreSQL's
// jsonb reorders members and drops spaces). The index (is_dynamic,
// used_at, created_at) serves CountDynamicClients and
// DeleteUnusedClients, which registration traffic anyone can send makes
// frequent and the table large: one range of it each, no table scan.
//
// The client authentication and sender-constraint columns (auth_method,
// jwks, jwks_uri, dpop_bound_access_tokens, require_par) came later still
// and are nullable too: a row without them is a client of the kit's
// historical behaviour (no auth method named, no keys, no DPoP or PAR
// requirement), which is what it was when it was written. The two
// booleans are written as true or false, never NULL. jwks is text, not a
// JSON column type, for the reason metadata is: it is kept verbatim.
//
// The mutual-TLS columns (tls_client_auth_subject_dn, _san_dns, _san_uri,
// _san_ip, _san_email and tls_client_certificate_bound_access_tokens, RFC
// 8705) are nullable for the same reason: a row without them is a client
// that names no certificate and does not require bound tokens. The
// boolean is written as true or false, never NULL.
type clientRow struct {
	ID                       ident    `gorm:"column:id;primaryKey;not null;size:128"`
	Name                     string   `gorm:"column:name;type:text;not null"`
	SecretHash               string   `gorm:"column:secret_hash;type:text;not null"`
	RedirectURIs             string   `gorm:"column:redirect_uris;type:text;not null"`
	Public                   bool     `gorm:"column:is_public;not null"`
	GrantTypes               string   `gorm:"column:grant_types;type:text;not null"`
	Scopes                   string   `gorm:"column:scopes;type:text;not null"`
	Profile                  uint8    `gorm:"column:profile;not null"`
	PKCE                     uint8    `gorm:"column:pkce;not null"`
	LegacyBasicSecret        bool     `gorm:"column:legacy_basic_secret;not null"`
	IDTokenSignedResponseAlg optText  `gorm:"column:id_token_signed_response_alg;type:text"`
	AccessTokenFormat        optText  `gorm:"column:access_token_format;type:text"`
	PostLogoutRedirectURIs   optText  `gorm:"column:post_logout_redirect_uris;type:text"`
	Created                  *timeCol `gorm:"column:created_at;index:idx_oauth2_clients_dynamic,priority:3"`
	Dynamic                  *bool    `gorm:"column:is_dynamic;index:idx_oauth2_clients_dynamic,priority:1"`
	RegistrationTokenHash    optText  `gorm:"column:registration_token_hash;type:text"`
	Metadata                 optText  `gorm:"column:metadata;type:text"`
	UsedAt                   *timeCol `gorm:"column:used_at;index:idx_oauth2_clients_dynamic,priority:2"`
	AuthMethod               optText  `gorm:"column:auth_method;type:text"`
	JWKS                     optText  `gorm:"column:jwks;type:text"`
	JWKSURI                  optText  `gorm:"column:jwks_uri;type:text"`
	DPoPBoundAccessTokens    *bool    `gorm:"column:dpop_bound_access_tokens"`
	RequirePAR               *bool    `gorm:"column:require_par"`

	TLSClientAuthSubjectDN                optText `gorm:"column:tls_client_auth_subject_dn;type:text"`
	TLSClientAuthSANDNS                   optText `gorm:"column:tls_client_auth_san_dns;type:text"`
	TLSClientAuthSANURI                   optText `gorm:"column:tls_client_auth_san_uri;type:text"`
	TLSClientAuthSANIP                    optText `gorm:"column:tls_client_auth_san_ip;type:text"`
	TLSClientAuthSANEmail                 optText `gorm:"column:tls_client_auth_san_email;type:text"`
	TLSClientCertificateBoundAccessTokens *bool   `gorm:"column:tls_client_certificate_bound_access_tokens"`
	// RefreshRotation is core.RefreshRotation; NULL (a row from before the
	// column) is RotationDefault.
	RefreshRotation *uint8 `gorm:"column:refresh_rotation"`
	// The back-channel logout columns are nullable like the other late
	// ones: a row without them is a client that registered no
	// backchannel_logout_uri. The boolean is written as true or false.
	BackchannelLogoutURI             optText `gorm:"column:backchannel_logout_uri;type:text"`
	BackchannelLogoutSessionRequired *bool   `gorm:"column:backchannel_logout_session_required"`
}

func (clientRow) TableName() string { return tableClients }

// grantRow is a pending or used authorization code (the original library's
// Grant), keyed by the code's signature: the code itself is never stored.
//
// keep_until is Grant.KeepUntil when it is later than expires_at, NULL
// otherwise (and in rows written before the column existed): the row is
// kept until the later of the two. The composite index
// (keep_until, expires_at) serves both of Purge's passes over grants.
// user_id is indexed for user-wide revocation; MySQL indexes a TEXT
// column by a prefix only (191 characters of utf8mb4 stay within the
// oldest InnoDB limit of 767 bytes), the other databases ignore the
// length.
type grantRow struct {
	CodeSig             ident    `gorm:"column:code_sig;primaryKey;not null;size:128"`
	GrantID             string   `gorm:"column:grant_id;type:text;not null"`
	ClientID            string   `gorm:"column:client_id;type:text;not null"`
	UserID              string   `gorm:"column:user_id;type:text;not null;index:idx_oauth2_grants_user_id,length:191"`
	RedirectURI         string   `gorm:"column:redirect_uri;type:text;not null"`
	Scope               string   `gorm:"column:scope;type:text;not null"`
	CodeChallenge       string   `gorm:"column:code_challenge;type:text;not null"`
	CodeChallengeMethod string   `gorm:"column:code_challenge_method;type:text;not null"`
	AdditionalInfo      string   `gorm:"column:additional_info;type:text;not null"`
	OIDC                optText  `gorm:"column:oidc;type:text"`
	Resource            optText  `gorm:"column:resource;type:text"`
	DPoPJKT             optText  `gorm:"column:dpop_jkt;type:text"`
	Created             *timeCol `gorm:"column:created_at"`
	ExpiresAt           timeCol  `gorm:"column:expires_at;not null;index:idx_oauth2_grants_expires_at;index:idx_oauth2_grants_keep_until,priority:2"`
	KeepUntil           *timeCol `gorm:"column:keep_until;index:idx_oauth2_grants_keep_until,priority:1"`
	UsedAt              *timeCol `gorm:"column:used_at"`
}

func (grantRow) TableName() string { return tableGrants }

// refreshRow is a refresh token, keyed by its signature. family_id is the
// grant it descends from; user_id is indexed (a prefix on MySQL, as in
// grantRow) for user-wide revocation. jkt is the thumbprint of the DPoP
// key the token is bound to; NULL (a row from before the column) is an
// unbound token, which it was when it was written.
type refreshRow struct {
	Sig            ident    `gorm:"column:sig;primaryKey;not null;size:128"`
	FamilyID       ident    `gorm:"column:family_id;size:128;not null;index:idx_oauth2_refresh_tokens_family_id"`
	ClientID       string   `gorm:"column:client_id;type:text;not null"`
	UserID         string   `gorm:"column:user_id;type:text;not null;index:idx_oauth2_refresh_tokens_user_id,length:191"`
	Scope          string   `gorm:"column:scope;type:text;not null"`
	AdditionalInfo string   `gorm:"column:additional_info;type:text;not null"`
	OIDC           optText  `gorm:"column:oidc;type:text"`
	Resource       optText  `gorm:"column:resource;type:text"`
	Created        *timeCol `gorm:"column:created_at"`
	ExpiresAt      timeCol  `gorm:"column:expires_at;not null;index:idx_oauth2_refresh_tokens_expires_at"`
	RotatedAt      *timeCol `gorm:"column:rotated_at"`
	JKT            optText  `gorm:"column:jkt;type:text"`
}

func (refreshRow) TableName() string { return tableRefreshTokens }

// revokedFamilyRow records a revoked grant family until keep_until.
type revokedFamilyRow struct {
	FamilyID  ident   `gorm:"column:family_id;primaryKey;not null;size:128"`
	KeepUntil timeCol `gorm:"column:keep_until;not null;index:idx_oauth2_revoked_families_keep_until"`
}

func (revokedFamilyRow) TableName() string { return tableRevokedFamilies }

// consentRow is the scope a user approved for a client.
type consentRow struct {
	UserID   ident  `gorm:"column:user_id;primaryKey;not null;size:256"`
	ClientID ident  `gorm:"column:client_id;primaryKey;not null;size:128;index:idx_oauth2_consents_client_id"`
	Scope    string `gorm:"column:scope;type:text;not null"`
}

func (consentRow) TableName() string { return tableConsents }

// ---- conversions -------------------------------------------------------------

// dbTime is how a time goes into the database: UTC, microseconds (so that
// what is compared in SQL is what was stored, on every database).
func dbTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

func col(t time.Time) timeCol { return timeCol(dbTime(t)) }

func colPtr(t *time.Time) *timeCol {
	if t == nil {
		return nil
	}
	c := col(*t)
	return &c
}

// nullTime stores a zero time as NULL.
func nullTime(t time.Time) *timeCol {
	if t.IsZero() {
		return nil
	}
	return colPtr(&t)
}

func (t timeCol) time() time.Time { return time.Time(t).UTC() }

func fromNull(t *timeCol) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.time()
}

func fromPtr(t *timeCol) *time.Time {
	if t == nil {
		return nil
	}
	u := t.time()
	return &u
}

func encodeList(l []string) (string, error) {
	if len(l) == 0 {
		return "[]", nil
	}
	b, err := json.Marshal(l)
	return string(b), err
}

func decodeList(s string) ([]string, error) {
	var l []string
	if s == "" {
		return nil, nil
	}
	if err := json.Unmarshal([]byte(s), &l); err != nil {
		return nil, err
	}
	if len(l) == 0 {
		return nil, nil
	}
	return l, nil
}

func clientRowOf(c *core.Client) (*clientRow, error) {
	// The row must not point into the caller's client.
	dynamic, dpop, par, certBound := c.Dynamic, c.DPoPBoundAccessTokens, c.RequirePAR, c.TLSClientCertificateBoundAccessTokens
	rotation := uint8(c.RefreshRotation)
	r := &clientRow{
		ID:                       ident(c.ID),
		Name:                     c.Name,
		SecretHash:               c.SecretHash,
		Public:                   c.Public,
		Profile:                  uint8(c.Profile),
		PKCE:                     uint8(c.PKCE),
		LegacyBasicSecret:        c.LegacyBasicSecret,
		IDTokenSignedResponseAlg: optText(c.IDTokenSignedResponseAlg),
		AccessTokenFormat:        optText(c.AccessTokenFormat),
		Created:                  nullTime(c.CreatedAt),
		Dynamic:                  &dynamic,
		RegistrationTokenHash:    optText(c.RegistrationTokenHash),
		Metadata:                 optText(c.Metadata),
		UsedAt:                   nullTime(c.UsedAt),
		AuthMethod:               optText(c.AuthMethod),
		JWKS:                     optText(c.JWKS),
		JWKSURI:                  optText(c.JWKSURI),
		DPoPBoundAccessTokens:    &dpop,
		RequirePAR:               &par,

		TLSClientAuthSubjectDN:                optText(c.TLSClientAuthSubjectDN),
		TLSClientAuthSANDNS:                   optText(c.TLSClientAuthSANDNS),
		TLSClientAuthSANURI:                   optText(c.TLSClientAuthSANURI),
		TLSClientAuthSANIP:                    optText(c.TLSClientAuthSANIP),
		TLSClientAuthSANEmail:                 optText(c.TLSClientAuthSANEmail),
		TLSClientCertificateBoundAccessTokens: &certBound,
		RefreshRotation:                       &rotation,
	}
	bcSession := c.BackchannelLogoutSessionRequired
	r.BackchannelLogoutURI, r.BackchannelLogoutSessionRequired = optText(c.BackchannelLogoutURI), &bcSession
	var err error
	if r.RedirectURIs, err = encodeList(c.RedirectURIs); err != nil {
		return nil, err
	}
	if r.GrantTypes, err = encodeList(c.GrantTypes); err != nil {
		return nil, err
	}
	if r.Scopes, err = encodeList(c.Scopes); err != nil {
		return nil, err
	}
	post, err := encodeList(c.PostLogoutRedirectURIs)
	if err != nil {
		return nil, err
	}
	r.PostLogoutRedirectURIs = optText(post)
	return r, nil
}

func (r *clientRow) client() (*core.Client, error) {
	c := &core.Client{
		ID:                       string(r.ID),
		Name:                     r.Name,
		SecretHash:               r.SecretHash,
		Public:                   r.Public,
		Profile:                  core.Profile(r.Profile),
		PKCE:                     core.PKCEPolicy(r.PKCE),
		LegacyBasicSecret:        r.LegacyBasicSecret,
		IDTokenSignedResponseAlg: string(r.IDTokenSignedResponseAlg),
		AccessTokenFormat:        string(r.AccessTokenFormat),
		CreatedAt:                fromNull(r.Created),
		Dynamic:                  r.Dynamic != nil && *r.Dynamic, // NULL: a row from before the column
		RegistrationTokenHash:    string(r.RegistrationTokenHash),
		Metadata:                 string(r.Metadata),
		UsedAt:                   fromNull(r.UsedAt),
		AuthMethod:               string(r.AuthMethod),
		JWKS:                     string(r.JWKS),
		JWKSURI:                  string(r.JWKSURI),
		// NULL: a row from before the columns, which required neither.
		DPoPBoundAccessTokens: r.DPoPBoundAccessTokens != nil && *r.DPoPBoundAccessTokens,
		RequirePAR:            r.RequirePAR != nil && *r.RequirePAR,

		TLSClientAuthSubjectDN:                string(r.TLSClientAuthSubjectDN),
		TLSClientAuthSANDNS:                   string(r.TLSClientAuthSANDNS),
		TLSClientAuthSANURI:                   string(r.TLSClientAuthSANURI),
		TLSClientAuthSANIP:                    string(r.TLSClientAuthSANIP),
		TLSClientAuthSANEmail:                 string(r.TLSClientAuthSANEmail),
		TLSClientCertificateBoundAccessTokens: r.TLSClientCertificateBoundAccessTokens != nil && *r.TLSClientCertificateBoundAccessTokens,
	}
	if r.RefreshRotation != nil {
		c.RefreshRotation = core.RefreshRotation(*r.RefreshRotation)
	}
	c.BackchannelLogoutURI = string(r.BackchannelLogoutURI)
	c.BackchannelLogoutSessionRequired = r.BackchannelLogoutSessionRequired != nil && *r.BackchannelLogoutSessionRequired
	var err error
	if c.RedirectURIs, err = decodeList(r.RedirectURIs); err != nil {
		return nil, fmt.Errorf("gormstore: client %q: redirect_uris: %w", c.ID, err)
	}
	if c.GrantTypes, err = decodeList(r.GrantTypes); err != nil {
		return nil, fmt.Errorf("gormstore: client %q: grant_types: %w", c.ID, err)
	}
	if c.Scopes, err = decodeList(r.Scopes); err != nil {
		return nil, fmt.Errorf("gormstore: client %q: scopes: %w", c.ID, err)
	}
	// "" (NULL: a row written before the column existed) is no list.
	if c.PostLogoutRedirectURIs, err = decodeList(string(r.PostLogoutRedirectURIs)); err != nil {
		return nil, fmt.Errorf("gormstore: client %q: post_logout_redirect_uris: %w", c.ID, err)
	}
	return c, nil
}

func grantRowOf(g *core.Grant) *grantRow {
	return &grantRow{
		CodeSig:             ident(g.CodeSig),
		GrantID:             g.ID,
		ClientID:            g.ClientID,
		UserID:              g.UserID,
		RedirectURI:         g.RedirectURI,
		Scope:               g.Scope,
		CodeChallenge:       g.CodeChallenge,
		CodeChallengeMethod: g.CodeChallengeMethod,
		AdditionalInfo:      g.AdditionalInfo,
		OIDC:                optText(g.OIDC),
		Resource:            optText(g.Resource),
		DPoPJKT:             optText(g.DPoPJKT),
		Created:             nullTime(g.CreatedAt),
		ExpiresAt:           col(g.ExpiresAt),
		KeepUntil:           keepCol(g),
		UsedAt:              colPtr(g.UsedAt),
	}
}

// keepCol is the keep_until of g: NULL unless KeepUntil is later than
// ExpiresAt (so a zero KeepUntil means ExpiresAt, as for a row written
// before the column existed).
func keepCol(g *core.Grant) *timeCol {
	if !g.KeepUntil.After(g.ExpiresAt) {
		return nil
	}
	return colPtr(&g.KeepUntil)
}

func (r *grantRow) grant() *core.Grant {
	return &core.Grant{
		ID:                  r.GrantID,
		CodeSig:             string(r.CodeSig),
		ClientID:            r.ClientID,
		UserID:              r.UserID,
		RedirectURI:         r.RedirectURI,
		Scope:               r.Scope,
		CodeChallenge:       r.CodeChallenge,
		CodeChallengeMethod: r.CodeChallengeMethod,
		AdditionalInfo:      r.AdditionalInfo,
		OIDC:                string(r.OIDC),
		Resource:            string(r.Resource),
		DPoPJKT:             string(r.DPoPJKT),
		CreatedAt:           fromNull(r.Created),
		ExpiresAt:           r.ExpiresAt.time(),
		KeepUntil:           fromNull(r.KeepUntil),
		UsedAt:              fromPtr(r.UsedAt),
	}
}

func refreshRowOf(t *core.RefreshToken) *refreshRow {
	return &refreshRow{
		Sig:            ident(t.Sig),
		FamilyID:       ident(t.FamilyID),
		ClientID:       t.ClientID,
		UserID:         t.UserID,
		Scope:          t.Scope,
		AdditionalInfo: t.AdditionalInfo,
		OIDC:           optText(t.OIDC),
		Resource:       optText(t.Resource),
		Created:        nullTime(t.CreatedAt),
		ExpiresAt:      col(t.ExpiresAt),
		RotatedAt:      colPtr(t.RotatedAt),
		JKT:            optText(t.JKT),
	}
}

func (r *refreshRow) token() *core.RefreshToken {
	return &core.RefreshToken{
		Sig:            string(r.Sig),
		FamilyID:       string(r.FamilyID),
		ClientID:       r.ClientID,
		UserID:         r.UserID,
		Scope:          r.Scope,
		AdditionalInfo: r.AdditionalInfo,
		OIDC:           string(r.OIDC),
		Resource:       string(r.Resource),
		CreatedAt:      fromNull(r.Created),
		ExpiresAt:      r.ExpiresAt.time(),
		RotatedAt:      fromPtr(r.RotatedAt),
		JKT:            string(r.JKT),
	}
}
