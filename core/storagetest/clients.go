package storagetest

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/oauth2kit/oauth2kit/core"
)

// fullClient sets every field to a non-zero value, with values that break
// naive encodings: commas and spaces inside list items, an order that is
// not sorted, non-ASCII and quotes in the name. The exceptions: the
// registration fields (see dynamicClient), and JWKSURI, as a client has
// its keys in JWKS or at JWKSURI, never both (SaveReplaces stores a client
// with JWKSURI).
func fullClient() *core.Client {
	return &core.Client{
		ID:         uid("client"),
		Name:       `Café "Ünïcode", App`,
		SecretHash: "sha256$47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU",
		RedirectURIs: []string{
			"https://z.example/cb?x=1,2&y=a%20b",
			"com.example.app:/oauth",
			"http://127.0.0.1/cb",
			"https://a.example/cb",
		},
		Public:                   false,
		GrantTypes:               []string{core.GrantRefreshToken, core.GrantClientCredentials, core.GrantAuthorizationCode},
		Scopes:                   []string{"write", "read", "a,b", "x:y"},
		Profile:                  core.ProfileDraft10,
		PKCE:                     core.PKCEOptional,
		LegacyBasicSecret:        true,
		IDTokenSignedResponseAlg: core.AlgPS256,
		AccessTokenFormat:        core.FormatJWT,
		PostLogoutRedirectURIs: []string{
			"https://z.example/logged-out?from=op&x=1,2",
			"https://a.example/bye",
		},
		CreatedAt:             base().Add(-48 * time.Hour),
		AuthMethod:            core.AuthPrivateKeyJWT,
		JWKS:                  clientJWKS(),
		DPoPBoundAccessTokens: true,
		RequirePAR:            true,
		// A client names its certificate by one of these; a store keeps
		// them all. Values with RFC 4514 escapes, spaces and non-ASCII.
		TLSClientAuthSubjectDN:                `CN=Café \"App\"\, Inc.,OU=a+OU=b,O=Example,C=SE`,
		TLSClientAuthSANDNS:                   "client.example.com",
		TLSClientAuthSANURI:                   "spiffe://example.org/ns/a,b/sa/client",
		TLSClientAuthSANIP:                    "2001:db8::1",
		TLSClientAuthSANEmail:                 "client+tag@example.com",
		TLSClientCertificateBoundAccessTokens: true,
		// Not the zero value: a store that drops it turns a FAPI client's
		// kept refresh tokens into rotating ones, or the reverse.
		RefreshRotation: core.RotationNever,
		// A query with a comma and an escape: kept byte for byte.
		BackchannelLogoutURI:             "https://z.example/backchannel?tenant=a,b&x=%2F",
		BackchannelLogoutSessionRequired: true,
	}
}

// clientJWKS is a JSON Web Key Set shaped like a client's (an RSA key of
// 2048 bits and an EC key), written the way no encoder would rewrite it:
// members out of order, spaces around colons, a newline and a tab between
// keys, a \u escape. A store that parses it, or trims it, gives back
// another string. It is the same for every client (fullClient's copies
// must be equal).
func clientJWKS() string {
	const a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	n := make([]byte, 342) // 256 bytes of modulus, base64url
	for i := range n {
		n[i] = a[(i*37+11)%64]
	}
	jwks := `{"keys" : [ {"n":"` + string(n) + `", "e":"AQAB", "kty":"RSA", "kid":"r\u00e9-1", "use":"sig", "alg":"PS256"},` + "\n\t" +
		`{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0","kid":"ec-2"} ]}`
	if !json.Valid([]byte(jwks)) {
		panic("storagetest: clientJWKS is not JSON")
	}
	return jwks
}

func saveClient(t *testing.T, s Store, c *core.Client) {
	t.Helper()
	if err := s.SaveClient(bg, c); err != nil {
		t.Fatalf("SaveClient: %v", err)
	}
}

func testClientRoundTrip(t *testing.T, s Store) {
	want := fullClient()
	saveClient(t, s, want)
	got, err := s.GetClient(bg, want.ID)
	if err != nil {
		t.Fatalf("GetClient: %v", err)
	}
	diffClient(t, "GetClient after SaveClient", want, got)
}

func testClientMinimal(t *testing.T, s Store) {
	want := &core.Client{ID: uid("public"), RedirectURIs: []string{"http://[::1]:8080/cb"}, Public: true, CreatedAt: base()}
	saveClient(t, s, want)
	got, err := s.GetClient(bg, want.ID)
	if err != nil {
		t.Fatalf("GetClient: %v", err)
	}
	diffClient(t, "GetClient of a public client with empty fields", want, got)
	if got.AllowsGrant(core.GrantClientCredentials) || !got.AllowsGrant(core.GrantAuthorizationCode) {
		t.Errorf("empty GrantTypes must read back as empty (the default set), got %q", got.GrantTypes)
	}
}

func testClientNotFound(t *testing.T, s Store) {
	saveClient(t, s, fullClient())
	for _, id := range []string{uid("nobody"), "", "%", "' OR '1'='1"} {
		c, err := s.GetClient(bg, id)
		wantErr(t, "GetClient("+id+")", err, core.ErrNotFound)
		if c != nil {
			t.Errorf("GetClient(%q) returned a client with ErrNotFound: %+v", id, c)
		}
	}
	// A prefix of a registered id is another id.
	c := fullClient()
	saveClient(t, s, c)
	_, err := s.GetClient(bg, c.ID[:len(c.ID)-1])
	wantErr(t, "GetClient(prefix of an id)", err, core.ErrNotFound)
}

func testClientReplace(t *testing.T, s Store) {
	c := fullClient()
	saveClient(t, s, c)
	repl := &core.Client{
		ID:           c.ID,
		Name:         "Renamed",
		SecretHash:   "sha256$other",
		RedirectURIs: []string{"https://only.example/cb"},
		GrantTypes:   []string{core.GrantAuthorizationCode},
		CreatedAt:    c.CreatedAt,
		// Its keys now fetched from a URL: JWKS and the requirements go.
		AuthMethod: core.AuthPrivateKeyJWT,
		JWKSURI:    "https://only.example/jwks.json?v=2&k=a%2Cb",
	}
	saveClient(t, s, repl)
	got, err := s.GetClient(bg, c.ID)
	if err != nil {
		t.Fatalf("GetClient: %v", err)
	}
	// Nothing of the first version may survive (list rows in particular).
	diffClient(t, "GetClient after SaveClient replaced the client", repl, got)
}

func testClientIsolation(t *testing.T, s Store) {
	c := fullClient()
	want := fullClient()
	want.ID, want.CreatedAt = c.ID, c.CreatedAt
	saveClient(t, s, c)
	// The caller's value and the returned values are the caller's own.
	c.RedirectURIs[0] = "https://evil.example/cb"
	c.Scopes[0] = "admin"
	c.PostLogoutRedirectURIs[0] = "https://evil.example/out"
	c.Name = "changed"
	got, err := s.GetClient(bg, c.ID)
	if err != nil {
		t.Fatalf("GetClient: %v", err)
	}
	diffClient(t, "client after the caller changed the value it saved", want, got)
	got.RedirectURIs[0] = "https://evil.example/cb"
	got.GrantTypes[0] = "password"
	got.PostLogoutRedirectURIs[0] = "https://evil.example/out"
	again, err := s.GetClient(bg, c.ID)
	if err != nil {
		t.Fatalf("GetClient: %v", err)
	}
	diffClient(t, "client after the caller changed a value GetClient returned", want, again)
}
