// Package storagetest is the conformance suite for core.Storage
// implementations. A store runs it in two lines:
//
//	func TestConformance(t *testing.T) {
//		storagetest.Run(t, func(t *testing.T) storagetest.Store { return mystore.New(...) })
//	}
//
// The suite checks the contract documented on core.Storage method by method,
// then races 32 goroutines on one code, on one refresh token and on one
// code signature, round after round, to check that consumption and
// creation are atomic. Each storage capability has a sub-suite of its own,
// run the same way: RunClientRegistry (core.ClientRegistry),
// RunUserGrants (core.UserGrantStore), RunLoginSessions
// (core.LoginSessionStore), RunSessionClients (core.SessionClientStore),
// RunRegistrations (core.RegistrationStore) and RunReplayCache
// (core.ReplayCache); Run also runs the last four, as LoginSessions,
// SessionClients, Registrations and ReplayCache, when the store has the
// capability, and skips them otherwise. It makes no
// assumption about memory: every test uses fresh random identifiers (so
// stores may share one database between subtests), times are UTC whole
// seconds near the real clock (so a store that keeps seconds, or sweeps
// expired rows by its own clock, still passes) and are compared with a
// one-second tolerance.
package storagetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oauth2kit/oauth2kit/core"
)

// Store is what the suite needs: the core.Storage plus client registration.
type Store interface {
	core.Storage
	// SaveClient registers a client, replacing any client with the same ID.
	SaveClient(ctx context.Context, c *core.Client) error
}

// Racers and Rounds size the concurrency tests.
const (
	Racers = 32
	Rounds = 20
)

// Run runs the whole suite. newStore is called once per subtest; it may
// return the same store (or database) each time.
func Run(t *testing.T, newStore func(t *testing.T) Store) {
	t.Helper()
	h := helper(newStore)
	t.Run("SuiteCoversEveryField", testFieldsCovered)

	t.Run("Client", func(t *testing.T) {
		t.Run("RoundTripEveryField", h(testClientRoundTrip))
		t.Run("RoundTripMinimal", h(testClientMinimal))
		t.Run("NotFound", h(testClientNotFound))
		t.Run("SaveReplaces", h(testClientReplace))
		t.Run("CopiesNotShared", h(testClientIsolation))
	})
	t.Run("CreateGrant", func(t *testing.T) {
		t.Run("ExistingSignature", h(testCreateExisting))
		t.Run("BornUsed", h(testCreateBornUsed))
		t.Run("KeepUntil", h(testCreateKeepUntil))
	})
	t.Run("RedeemCode", func(t *testing.T) {
		t.Run("Success", h(testRedeemSuccess))
		t.Run("SuccessWithoutRefreshToken", h(testRedeemNoRefresh))
		t.Run("UnknownCode", h(testRedeemUnknown))
		t.Run("Expired", h(testRedeemExpired))
		t.Run("SecondRedemption", h(testRedeemTwice))
		t.Run("IssueError", h(testRedeemIssueError))
		t.Run("ExpiredAfterUse", h(testRedeemExpiredUsed))
		t.Run("TimeZones", h(testRedeemTimeZones))
		t.Run("CopiesNotShared", h(testGrantIsolation))
	})
	t.Run("RotateRefreshToken", func(t *testing.T) {
		t.Run("Success", h(testRotateSuccess))
		t.Run("UnknownToken", h(testRotateUnknown))
		t.Run("Reuse", h(testRotateReuse))
		t.Run("Chain", h(testRotateChain))
		t.Run("IssueError", h(testRotateIssueError))
		t.Run("RevokedFamily", h(testRotateRevokedFamily))
		t.Run("Expired", h(testRotateExpired))
	})
	t.Run("GetRefreshToken", func(t *testing.T) {
		t.Run("NotFound", h(testGetRefreshNotFound))
	})
	t.Run("RevokeFamily", func(t *testing.T) {
		t.Run("IdempotentAndScoped", h(testRevokeFamily))
		t.Run("WithoutTokens", h(testRevokeFamilyNoTokens))
	})
	t.Run("Consent", func(t *testing.T) {
		t.Run("GetSaveReplace", h(testConsent))
		t.Run("KeysDoNotCollide", h(testConsentKeys))
	})
	t.Run("OIDCRoundTrip", h(testOIDCRoundTrip))
	t.Run("CancelledContext", h(testCancelledContext))
	t.Run("Concurrency", func(t *testing.T) {
		t.Run("RedeemCode", h(testRaceRedeem))
		t.Run("RotateRefreshToken", h(testRaceRotate))
		t.Run("CreateGrant", h(testRaceCreate))
	})
	t.Run("LoginSessions", runLoginSessionsIfAble(newStore))
	t.Run("SessionClients", runSessionClientsIfAble(newStore))
	t.Run("Registrations", runRegistrationsIfAble(newStore))
	t.Run("ReplayCache", runReplayCacheIfAble(newStore))
	t.Run("Devices", runDevicesIfAble(newStore))
}

// helper wraps a subtest body: a fresh store from newStore for each.
func helper[S any](newStore func(t *testing.T) S) func(f func(t *testing.T, s S)) func(t *testing.T) {
	return func(f func(t *testing.T, s S)) func(t *testing.T) {
		return func(t *testing.T) {
			s := newStore(t)
			if any(s) == nil {
				t.Fatal("newStore returned nil")
			}
			f(t, s)
		}
	}
}

// ---- fixtures ---------------------------------------------------------------

var bg = context.Background()

// errIssue is what the suite's failing issue callbacks return.
var errIssue = errors.New("storagetest: issue refused the request")

// uid returns a fresh random identifier with a readable prefix.
func uid(prefix string) string {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return prefix + "-" + hex.EncodeToString(b[:])
}

// sig returns a fresh value shaped like the server's signatures (base64url
// of an HMAC-SHA256).
func sig() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	const a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	out := make([]byte, 43)
	for i := range out {
		out[i] = a[int(b[i%32]^byte(i*7))%64]
	}
	return string(out)
}

// base is "now" for a test: UTC, whole seconds (a DATETIME column without
// fractions keeps it exactly), near the real clock so that a store sweeping
// by its own clock does not drop what the test just wrote.
func base() time.Time { return time.Now().UTC().Truncate(time.Second) }

func newGrant(now time.Time) *core.Grant {
	return &core.Grant{
		ID:                  uid("grant"),
		CodeSig:             sig(),
		ClientID:            uid("client"),
		UserID:              uid("user") + " Zoë", // non-ASCII survives
		RedirectURI:         "https://client.example/cb?a=1&b=%2C,2",
		Scope:               "read write:all",
		CodeChallenge:       "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
		CodeChallengeMethod: "S256",
		AdditionalInfo:      `{"plan":"gold","note":"ünïcödé \"quoted\" \\ back"}`,
		DPoPJKT:             "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs",
		CreatedAt:           now,
		ExpiresAt:           now.Add(10 * time.Minute),
		KeepUntil:           now.Add(time.Hour),
	}
}

func newRefresh(now time.Time, family, client string) *core.RefreshToken {
	return &core.RefreshToken{
		Sig:            sig(),
		FamilyID:       family,
		ClientID:       client,
		UserID:         uid("user"),
		Scope:          "read write",
		AdditionalInfo: `{"plan":"gold"}`,
		JKT:            sig(), // shaped like a thumbprint: base64url of a SHA-256
		CreatedAt:      now,
		ExpiresAt:      now.Add(24 * time.Hour),
	}
}

// seedRefresh stores rt the only way the interface offers: as the refresh
// token issued by redeeming a fresh code.
func seedRefresh(t *testing.T, s Store, rt *core.RefreshToken, now time.Time) {
	t.Helper()
	g := newGrant(now)
	g.ID, g.ClientID, g.UserID = rt.FamilyID, rt.ClientID, rt.UserID
	if err := s.CreateGrant(bg, g); err != nil {
		t.Fatalf("CreateGrant: %v", err)
	}
	cp := *rt
	if _, err := s.RedeemCode(bg, g.CodeSig, now, func(*core.Grant) (*core.RefreshToken, error) { return &cp, nil }); err != nil {
		t.Fatalf("RedeemCode (seeding a refresh token): %v", err)
	}
}

// createGrant stores g and fails the test on error.
func createGrant(t *testing.T, s Store, g *core.Grant) {
	t.Helper()
	if err := s.CreateGrant(bg, g); err != nil {
		t.Fatalf("CreateGrant: %v", err)
	}
}

// issueCounter counts calls of an issue callback and records its argument.
type issueCounter[T any] struct {
	mu    sync.Mutex
	calls int
	arg   *T
}

func (c *issueCounter[T]) record(x *T) {
	c.mu.Lock()
	c.calls++
	if x != nil {
		cp := *x
		c.arg = &cp
	}
	c.mu.Unlock()
}

func (c *issueCounter[T]) n() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls
}

// neverIssue is an issue callback that must not run.
func neverIssueCode(t *testing.T) func(*core.Grant) (*core.RefreshToken, error) {
	return func(*core.Grant) (*core.RefreshToken, error) {
		t.Error("issue was called, but must not be")
		return nil, errIssue
	}
}

func neverIssueRefresh(t *testing.T) func(*core.RefreshToken) (*core.RefreshToken, error) {
	return func(*core.RefreshToken) (*core.RefreshToken, error) {
		t.Error("issue was called, but must not be")
		return nil, errIssue
	}
}

// ---- comparisons ------------------------------------------------------------

// tolerance absorbs databases that keep whole seconds or round.
const tolerance = time.Second

func sameTime(a, b time.Time) bool {
	d := a.Sub(b)
	return d < tolerance && d > -tolerance
}

func sameTimePtr(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return sameTime(*a, *b)
}

// sameList treats nil and empty alike (a database cannot tell them apart)
// but keeps order.
func sameList(a, b []string) bool {
	if len(a) == 0 && len(b) == 0 {
		return true
	}
	return slices.Equal(a, b)
}

type differ struct{ d []string }

func (f *differ) add(field string, want, got any) {
	f.d = append(f.d, fmt.Sprintf("%s: want %#v, got %#v", field, want, got))
}

func (f *differ) str(field, want, got string) {
	if want != got {
		f.add(field, want, got)
	}
}

func (f *differ) time(field string, want, got time.Time) {
	if !sameTime(want, got) {
		f.add(field, want.String(), got.String())
	}
}

func (f *differ) timePtr(field string, want, got *time.Time) {
	if !sameTimePtr(want, got) {
		show := func(p *time.Time) string {
			if p == nil {
				return "nil"
			}
			return p.String()
		}
		f.add(field, show(want), show(got))
	}
}

func (f *differ) list(field string, want, got []string) {
	if !sameList(want, got) {
		f.add(field, want, got)
	}
}

func (f *differ) report(t *testing.T, what string) {
	t.Helper()
	if len(f.d) > 0 {
		t.Errorf("%s differs:\n  %s", what, strings.Join(f.d, "\n  "))
	}
}

// The field lists name every field the comparisons below check; a field
// added to core without a check here fails SuiteCoversEveryField. The
// client's registration fields (Dynamic to UsedAt) are compared
// everywhere, but only the Registrations sub-suite stores non-zero
// values in them (dynamicClient): a store without core.RegistrationStore
// never receives such a client from the server, so Run does not demand
// that it keep them. The fields of client authentication and sender
// constraints (AuthMethod to RequirePAR, and the TLS ones) are another
// matter: a client registered statically has them too, and a store that
// lost DPoPBoundAccessTokens, RequirePAR or a TLS subject would quietly
// drop a requirement or lock the client out, so Run's client round trips
// set them (fullClient; JWKSURI in SaveReplaces).
var (
	clientFields = []string{"ID", "Name", "SecretHash", "RedirectURIs", "Public", "GrantTypes", "Scopes", "Profile", "PKCE", "LegacyBasicSecret", "IDTokenSignedResponseAlg", "AccessTokenFormat", "PostLogoutRedirectURIs", "CreatedAt",
		"Dynamic", "RegistrationTokenHash", "Metadata", "UsedAt",
		"AuthMethod", "JWKS", "JWKSURI", "DPoPBoundAccessTokens", "RequirePAR",
		"TLSClientAuthSubjectDN", "TLSClientAuthSANDNS", "TLSClientAuthSANURI", "TLSClientAuthSANIP", "TLSClientAuthSANEmail", "TLSClientCertificateBoundAccessTokens",
		"RefreshRotation", "BackchannelLogoutURI", "BackchannelLogoutSessionRequired"}
	grantFields   = []string{"ID", "CodeSig", "ClientID", "UserID", "RedirectURI", "Scope", "CodeChallenge", "CodeChallengeMethod", "AdditionalInfo", "OIDC", "Resource", "DPoPJKT", "CreatedAt", "ExpiresAt", "KeepUntil", "UsedAt"}
	refreshFields = []string{"Sig", "FamilyID", "ClientID", "UserID", "Scope", "AdditionalInfo", "OIDC", "Resource", "JKT", "CreatedAt", "ExpiresAt", "RotatedAt"}
)

func testFieldsCovered(t *testing.T) {
	for _, c := range []struct {
		v      any
		fields []string
	}{{core.Client{}, clientFields}, {core.Grant{}, grantFields}, {core.RefreshToken{}, refreshFields}, {core.LoginSession{}, sessionFields}} {
		typ := reflect.TypeOf(c.v)
		for i := 0; i < typ.NumField(); i++ {
			if f := typ.Field(i); f.IsExported() && !slices.Contains(c.fields, f.Name) {
				t.Errorf("core.%s.%s is not checked by storagetest: add it to the suite", typ.Name(), f.Name)
			}
		}
	}
}

func diffClient(t *testing.T, what string, want, got *core.Client) {
	t.Helper()
	if got == nil {
		t.Errorf("%s: got a nil client", what)
		return
	}
	var f differ
	f.str("ID", want.ID, got.ID)
	f.str("Name", want.Name, got.Name)
	f.str("SecretHash", want.SecretHash, got.SecretHash)
	f.list("RedirectURIs", want.RedirectURIs, got.RedirectURIs)
	if want.Public != got.Public {
		f.add("Public", want.Public, got.Public)
	}
	f.list("GrantTypes", want.GrantTypes, got.GrantTypes)
	f.list("Scopes", want.Scopes, got.Scopes)
	if want.Profile != got.Profile {
		f.add("Profile", want.Profile, got.Profile)
	}
	if want.PKCE != got.PKCE {
		f.add("PKCE", want.PKCE, got.PKCE)
	}
	if want.LegacyBasicSecret != got.LegacyBasicSecret {
		f.add("LegacyBasicSecret", want.LegacyBasicSecret, got.LegacyBasicSecret)
	}
	f.str("IDTokenSignedResponseAlg", want.IDTokenSignedResponseAlg, got.IDTokenSignedResponseAlg)
	f.str("AccessTokenFormat", want.AccessTokenFormat, got.AccessTokenFormat)
	f.list("PostLogoutRedirectURIs", want.PostLogoutRedirectURIs, got.PostLogoutRedirectURIs)
	f.time("CreatedAt", want.CreatedAt, got.CreatedAt)
	if want.Dynamic != got.Dynamic {
		f.add("Dynamic", want.Dynamic, got.Dynamic)
	}
	f.str("RegistrationTokenHash", want.RegistrationTokenHash, got.RegistrationTokenHash)
	f.text("Metadata", want.Metadata, got.Metadata)
	// Zero (never used) must come back zero: within the tolerance of
	// nothing else.
	f.time("UsedAt", want.UsedAt, got.UsedAt)
	f.str("AuthMethod", want.AuthMethod, got.AuthMethod)
	// Kept verbatim: a store that parses the key set (a JSON column type)
	// gives back another string.
	f.text("JWKS", want.JWKS, got.JWKS)
	f.str("JWKSURI", want.JWKSURI, got.JWKSURI)
	if want.DPoPBoundAccessTokens != got.DPoPBoundAccessTokens {
		f.add("DPoPBoundAccessTokens", want.DPoPBoundAccessTokens, got.DPoPBoundAccessTokens)
	}
	if want.RequirePAR != got.RequirePAR {
		f.add("RequirePAR", want.RequirePAR, got.RequirePAR)
	}
	f.str("TLSClientAuthSubjectDN", want.TLSClientAuthSubjectDN, got.TLSClientAuthSubjectDN)
	f.str("TLSClientAuthSANDNS", want.TLSClientAuthSANDNS, got.TLSClientAuthSANDNS)
	f.str("TLSClientAuthSANURI", want.TLSClientAuthSANURI, got.TLSClientAuthSANURI)
	f.str("TLSClientAuthSANIP", want.TLSClientAuthSANIP, got.TLSClientAuthSANIP)
	f.str("TLSClientAuthSANEmail", want.TLSClientAuthSANEmail, got.TLSClientAuthSANEmail)
	if want.TLSClientCertificateBoundAccessTokens != got.TLSClientCertificateBoundAccessTokens {
		f.add("TLSClientCertificateBoundAccessTokens", want.TLSClientCertificateBoundAccessTokens, got.TLSClientCertificateBoundAccessTokens)
	}
	if want.RefreshRotation != got.RefreshRotation {
		f.add("RefreshRotation", want.RefreshRotation, got.RefreshRotation)
	}
	f.str("BackchannelLogoutURI", want.BackchannelLogoutURI, got.BackchannelLogoutURI)
	if want.BackchannelLogoutSessionRequired != got.BackchannelLogoutSessionRequired {
		f.add("BackchannelLogoutSessionRequired", want.BackchannelLogoutSessionRequired, got.BackchannelLogoutSessionRequired)
	}
	f.report(t, what)
}

func diffGrant(t *testing.T, what string, want, got *core.Grant, checkUsed bool) {
	t.Helper()
	if got == nil {
		t.Errorf("%s: got a nil grant", what)
		return
	}
	var f differ
	f.str("ID", want.ID, got.ID)
	f.str("CodeSig", want.CodeSig, got.CodeSig)
	f.str("ClientID", want.ClientID, got.ClientID)
	f.str("UserID", want.UserID, got.UserID)
	f.str("RedirectURI", want.RedirectURI, got.RedirectURI)
	f.str("Scope", want.Scope, got.Scope)
	f.str("CodeChallenge", want.CodeChallenge, got.CodeChallenge)
	f.str("CodeChallengeMethod", want.CodeChallengeMethod, got.CodeChallengeMethod)
	f.str("AdditionalInfo", want.AdditionalInfo, got.AdditionalInfo)
	f.text("OIDC", want.OIDC, got.OIDC)
	f.str("Resource", want.Resource, got.Resource)
	f.str("DPoPJKT", want.DPoPJKT, got.DPoPJKT)
	f.time("CreatedAt", want.CreatedAt, got.CreatedAt)
	f.time("ExpiresAt", want.ExpiresAt, got.ExpiresAt)
	// A store may normalise KeepUntil (zero and any time before ExpiresAt
	// mean ExpiresAt); what it keeps the grant until must be the same.
	f.time("KeepUntil (max(ExpiresAt, KeepUntil))", keepOf(want), keepOf(got))
	if checkUsed {
		f.timePtr("UsedAt", want.UsedAt, got.UsedAt)
	}
	f.report(t, what)
}

func diffRefresh(t *testing.T, what string, want, got *core.RefreshToken, checkRotated bool) {
	t.Helper()
	if got == nil {
		t.Errorf("%s: got a nil refresh token", what)
		return
	}
	var f differ
	f.str("Sig", want.Sig, got.Sig)
	f.str("FamilyID", want.FamilyID, got.FamilyID)
	f.str("ClientID", want.ClientID, got.ClientID)
	f.str("UserID", want.UserID, got.UserID)
	f.str("Scope", want.Scope, got.Scope)
	f.str("AdditionalInfo", want.AdditionalInfo, got.AdditionalInfo)
	f.text("OIDC", want.OIDC, got.OIDC)
	f.str("Resource", want.Resource, got.Resource)
	f.str("JKT", want.JKT, got.JKT)
	f.time("CreatedAt", want.CreatedAt, got.CreatedAt)
	f.time("ExpiresAt", want.ExpiresAt, got.ExpiresAt)
	if checkRotated {
		f.timePtr("RotatedAt", want.RotatedAt, got.RotatedAt)
	}
	f.report(t, what)
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: error %v, want %v", what, err, want)
	}
}

func tp(t time.Time) *time.Time { return &t }

// keepOf is when a store may drop g: max(ExpiresAt, KeepUntil).
func keepOf(g *core.Grant) time.Time {
	if g.KeepUntil.After(g.ExpiresAt) {
		return g.KeepUntil
	}
	return g.ExpiresAt
}
