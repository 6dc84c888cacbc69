package gormstore_test

import (
	"testing"
	"time"

	"github.com/oauth2kit/oauth2kit/core"
	gormstore "github.com/oauth2kit/oauth2kit/storage/gorm"
)

var newColumns = [][2]string{{"oauth2_clients", "id_token_signed_response_alg"}, {"oauth2_clients", "access_token_format"}, {"oauth2_grants", "oidc"}, {"oauth2_refresh_tokens", "oidc"}, {"oauth2_grants", "resource"}, {"oauth2_refresh_tokens", "resource"}, {"oauth2_clients", "post_logout_redirect_uris"},
	{"oauth2_clients", "is_dynamic"}, {"oauth2_clients", "registration_token_hash"}, {"oauth2_clients", "metadata"}, {"oauth2_clients", "used_at"},
	{"oauth2_clients", "auth_method"}, {"oauth2_clients", "jwks"}, {"oauth2_clients", "jwks_uri"}, {"oauth2_clients", "dpop_bound_access_tokens"}, {"oauth2_clients", "require_par"},
	{"oauth2_clients", "tls_client_auth_subject_dn"}, {"oauth2_clients", "tls_client_auth_san_dns"}, {"oauth2_clients", "tls_client_auth_san_uri"},
	{"oauth2_clients", "tls_client_auth_san_ip"}, {"oauth2_clients", "tls_client_auth_san_email"}, {"oauth2_clients", "tls_client_certificate_bound_access_tokens"},
	{"oauth2_refresh_tokens", "jkt"}, {"oauth2_grants", "dpop_jkt"},
	{"oauth2_clients", "backchannel_logout_uri"}, {"oauth2_clients", "backchannel_logout_session_required"}}

// Migrate adds the OIDC, dynamic registration and client authentication
// columns to tables of the previous schema that hold rows; old rows read
// back as "" (and as static clients never used, which registration expiry
// leaves alone, without keys or DPoP and PAR requirements; refresh tokens
// as unbound ones). It creates
// the tables that came later (oauth2_login_sessions, oauth2_replay).
func TestMigrateAddsOIDCColumns(t *testing.T) {
	forEachDB(t, func(t *testing.T, d *testDB) {
		db := d.connect(t)
		if err := gormstore.MigrateLegacy(db); err != nil {
			t.Fatal(err)
		}
		now := time.Now().UTC().Truncate(time.Second)
		if err := db.Exec(`INSERT INTO oauth2_clients (id, name, secret_hash, redirect_uris, is_public, grant_types, scopes, profile, pkce, legacy_basic_secret, created_at)
			VALUES ('old-client', 'Old', '', '["https://a/cb"]', true, '[]', '[]', 0, 0, false, ?)`, now).Error; err != nil {
			t.Fatal(err)
		}
		legacyGrant(t, db, "legacy-code", "g-old", "alice", now.Add(time.Hour))
		if err := db.Exec(`INSERT INTO oauth2_refresh_tokens (sig, family_id, client_id, user_id, scope, additional_info, created_at, expires_at)
			VALUES ('legacy-rt', 'g-old', 'conf', 'alice', 'read', '', ?, ?)`, now, now.Add(time.Hour)).Error; err != nil {
			t.Fatal(err)
		}
		m := db.Migrator()
		for _, tc := range newColumns {
			table, c := tc[0], tc[1]
			if m.HasColumn(table, c) {
				t.Fatalf("legacy %s already has %s", table, c)
			}
		}
		s := gormstore.New(db)
		if err := s.Migrate(bg); err != nil {
			t.Fatalf("Migrate over legacy rows: %v", err)
		}
		for _, tc := range newColumns {
			table, c := tc[0], tc[1]
			cts, err := m.ColumnTypes(table)
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, ct := range cts {
				if ct.Name() != c {
					continue
				}
				found = true
				nullable, _ := ct.Nullable()
				dv, dvOK := ct.DefaultValue()
				ctype, _ := ct.ColumnType()
				t.Logf("%s.%s: db type %q column type %q nullable=%v default=%q (%v)", table, c, ct.DatabaseTypeName(), ctype, nullable, dv, dvOK)
				if !nullable {
					t.Errorf("%s.%s is NOT NULL: MySQL 8 cannot add it to a table with rows without a default", table, c)
				}
			}
			if !found {
				t.Errorf("%s.%s missing after Migrate", table, c)
			}
		}
		cl, err := s.GetClient(bg, "old-client")
		if err != nil || cl.IDTokenSignedResponseAlg != "" || cl.PostLogoutRedirectURIs != nil {
			t.Errorf("old client: %v %+v", err, cl)
		}
		if err == nil && (cl.Dynamic || cl.RegistrationTokenHash != "" || cl.Metadata != "" || !cl.UsedAt.IsZero()) {
			t.Errorf("old client has registration fields: %+v", cl)
		}
		checkLegacyAuth(t, "old client", cl)
		if !m.HasIndex("oauth2_clients", "idx_oauth2_clients_dynamic") {
			t.Error("Migrate over the previous schema did not create idx_oauth2_clients_dynamic")
		}
		checkLegacyRegistration(t, s, "old-client", now)
		g, err := s.RedeemCode(bg, "legacy-code", now, func(g *core.Grant) (*core.RefreshToken, error) {
			if g.OIDC != "" {
				t.Errorf("legacy grant OIDC %q", g.OIDC)
			}
			return &core.RefreshToken{Sig: "new-rt", FamilyID: g.ID, ClientID: g.ClientID, UserID: g.UserID, OIDC: "ctx-é", ExpiresAt: now.Add(time.Hour)}, nil
		})
		if err != nil || g.OIDC != "" {
			t.Errorf("RedeemCode legacy: %v %+v", err, g)
		}
		rt, err := s.GetRefreshToken(bg, "legacy-rt")
		if err != nil || rt.OIDC != "" || rt.JKT != "" {
			t.Errorf("legacy rt: %v %+v", err, rt)
		}
		old, err := s.RotateRefreshToken(bg, "legacy-rt", now, func(o *core.RefreshToken) (*core.RefreshToken, error) {
			n := *o
			n.Sig, n.OIDC = "rotated-rt", "next-ctx"
			return &n, nil
		})
		if err != nil || old.OIDC != "" {
			t.Errorf("rotate legacy: %v %+v", err, old)
		}
		for sig, want := range map[string]string{"new-rt": "ctx-é", "rotated-rt": "next-ctx"} {
			var got string
			if err := db.Raw("SELECT oidc FROM oauth2_refresh_tokens WHERE sig = ?", sig).Scan(&got).Error; err != nil || got != want {
				t.Errorf("raw oidc of %s: %q %v, want %q", sig, got, err, want)
			}
		}
		// A row inserted without the column (an older binary still running
		// during a rolling upgrade) gets the default.
		if err := db.Exec(`INSERT INTO oauth2_refresh_tokens (sig, family_id, client_id, user_id, scope, additional_info, created_at, expires_at)
			VALUES ('older-binary', 'g-x', 'conf', 'bob', 'read', '', ?, ?)`, now, now.Add(time.Hour)).Error; err != nil {
			t.Errorf("insert without oidc after Migrate: %v", err)
		}
		if err := db.Exec(`INSERT INTO oauth2_clients (id, name, secret_hash, redirect_uris, is_public, grant_types, scopes, profile, pkce, legacy_basic_secret)
			VALUES ('older-binary', 'Old', '', '[]', true, '[]', '[]', 0, 0, false)`).Error; err != nil {
			t.Errorf("insert client without alg after Migrate: %v", err)
		}
		if err := db.Exec(`INSERT INTO oauth2_grants (code_sig, grant_id, client_id, user_id, redirect_uri, scope, code_challenge,
		code_challenge_method, additional_info, created_at, expires_at) VALUES ('older-binary', 'g', 'conf', 'u', '', 'read', '', '', '', ?, ?)`, now, now.Add(time.Hour)).Error; err != nil {
			t.Errorf("insert grant without oidc after Migrate: %v", err)
		}
		if rt, err := s.GetRefreshToken(bg, "older-binary"); err != nil || rt.OIDC != "" || rt.JKT != "" {
			t.Errorf("older-binary rt: %v %+v", err, rt)
		}
		if cl, err := s.GetClient(bg, "older-binary"); err != nil || cl.PostLogoutRedirectURIs != nil || cl.Dynamic || cl.Metadata != "" || !cl.UsedAt.IsZero() {
			t.Errorf("older-binary client: %v %+v", err, cl)
		} else {
			checkLegacyAuth(t, "older-binary client", cl)
		}
		checkLegacyRegistration(t, s, "older-binary", now)
		if !m.HasTable("oauth2_login_sessions") {
			t.Error("Migrate over the previous schema did not create oauth2_login_sessions")
		}
		if !m.HasTable("oauth2_replay") || !m.HasIndex("oauth2_replay", "idx_oauth2_replay_keep_until") {
			t.Error("Migrate over the previous schema did not create oauth2_replay with idx_oauth2_replay_keep_until")
		}
		if ok, err := s.Remember(bg, "jti|after-migrate", now, now.Add(time.Minute)); !ok || err != nil {
			t.Errorf("Remember after Migrate over the previous schema: %v, %v; want true", ok, err)
		}
		if ok, err := s.Remember(bg, "jti|after-migrate", now, now.Add(time.Minute)); ok || err != nil {
			t.Errorf("second Remember after Migrate over the previous schema: %v, %v; want false", ok, err)
		}

		// The columns added to a table that held rows keep what is
		// written to them: the legacy client saved with the new fields
		// reads them back.
		if cl == nil {
			return
		}
		cl.AuthMethod, cl.JWKSURI, cl.DPoPBoundAccessTokens, cl.RequirePAR = core.AuthPrivateKeyJWT, "https://old.example/jwks", true, true
		if err := s.SaveClient(bg, cl); err != nil {
			t.Fatalf("SaveClient of the migrated client: %v", err)
		}
		if got, err := s.GetClient(bg, "old-client"); err != nil || got.AuthMethod != core.AuthPrivateKeyJWT || got.JWKSURI != "https://old.example/jwks" || got.JWKS != "" || !got.DPoPBoundAccessTokens || !got.RequirePAR {
			t.Errorf("migrated client saved with the new fields: %v %+v", err, got)
		}
	})
}

// checkLegacyAuth checks that a client row without the client
// authentication columns (NULL in all five) reads back as a client of the
// historical behaviour: no auth method, no keys, no DPoP or PAR
// requirement.
func checkLegacyAuth(t *testing.T, what string, cl *core.Client) {
	t.Helper()
	if cl == nil {
		return
	}
	if cl.AuthMethod != "" || cl.JWKS != "" || cl.JWKSURI != "" || cl.DPoPBoundAccessTokens || cl.RequirePAR ||
		cl.TLSClientAuthSubjectDN != "" || cl.TLSClientAuthSANDNS != "" || cl.TLSClientAuthSANURI != "" || cl.TLSClientAuthSANIP != "" ||
		cl.TLSClientAuthSANEmail != "" || cl.TLSClientCertificateBoundAccessTokens || cl.RefreshRotation != core.RotationDefault ||
		cl.BackchannelLogoutURI != "" || cl.BackchannelLogoutSessionRequired {
		t.Errorf("%s has client authentication fields: %+v", what, cl)
	}
}

// checkLegacyRegistration checks the registration methods on a client row
// without the registration columns (NULL in all four): it is not counted
// as dynamic, DeleteUnusedClients keeps it, and MarkClientUsed records its
// first use without touching the rest.
func checkLegacyRegistration(t *testing.T, s *gormstore.Store, id string, now time.Time) {
	t.Helper()
	n, err := s.CountDynamicClients(bg)
	if err != nil || n != 0 {
		t.Errorf("CountDynamicClients over legacy rows: %d, %v; want 0", n, err)
	}
	if n, err := s.DeleteUnusedClients(bg, now.Add(time.Hour)); err != nil || n != 0 {
		t.Errorf("DeleteUnusedClients over legacy rows: %d, %v; want 0", n, err)
	}
	if err := s.MarkClientUsed(bg, id, now); err != nil {
		t.Errorf("MarkClientUsed of legacy client %s: %v", id, err)
	}
	cl, err := s.GetClient(bg, id)
	if err != nil || !cl.UsedAt.Equal(now) || cl.Dynamic || cl.Name != "Old" {
		t.Errorf("legacy client %s after MarkClientUsed: %v %+v", id, err, cl)
	}
}
