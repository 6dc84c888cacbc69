package storagetest

import (
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/oauth2kit/oauth2kit/core"
)

// oidcText returns an n-byte text shaped like the server's encoded OpenID
// Connect context at its largest, made of what breaks naive encodings and
// column types: every printable ASCII byte (quotes, backslashes, %, _ and
// ? included), tabs and newlines, two-, three- and four-byte UTF-8 (a
// utf8mb3 column loses the last), and spaces at both ends (a padded or
// trimmed column loses those). seed varies the content.
func oidcText(n, seed int) string {
	var pieces []string
	for c := byte(' '); c <= '~'; c++ {
		pieces = append(pieces, string(c))
	}
	pieces = append(pieces, `"quoted"`, `\\`, `\"`, `'`, "''", "\t", "\n", "\r\n", "é", "Zoë", "ünïcödé", "€", "日本語", "😀", "%_", "?", "$1")
	var b strings.Builder
	b.WriteByte(' ')
	for i := seed; ; i++ {
		p := pieces[i%len(pieces)]
		if b.Len()+len(p) > n-1 {
			break
		}
		b.WriteString(p)
	}
	for b.Len() < n-1 {
		b.WriteByte('x')
	}
	b.WriteByte(' ')
	s := b.String()
	if len(s) != n || !utf8.ValidString(s) {
		panic(fmt.Sprintf("storagetest: oidcText(%d) made %d bytes (valid UTF-8: %v)", n, len(s), utf8.ValidString(s)))
	}
	return s
}

// text compares long opaque text byte for byte and reports where it
// differs rather than printing both values whole.
func (f *differ) text(field, want, got string) {
	if want == got {
		return
	}
	i := 0
	for i < len(want) && i < len(got) && want[i] == got[i] {
		i++
	}
	f.d = append(f.d, fmt.Sprintf("%s: want %d bytes, got %d bytes, first difference at byte %d (want %q…, got %q…)",
		field, len(want), len(got), i, clip(want[i:]), clip(got[i:])))
}

func clip(s string) string {
	if len(s) > 24 {
		return s[:24]
	}
	return s
}

// testOIDCRoundTrip: the OpenID Connect fields come back byte for byte
// from every method that returns what was stored: the client's
// IDTokenSignedResponseAlg from GetClient (after a replacement) and
// ListClients, a grant's OIDC (a few KB of mixed text) in the grant
// RedeemCode passes to issue and returns (also with ErrCodeUsed), and a
// refresh token's OIDC in GetRefreshToken and in the token
// RotateRefreshToken passes to issue and returns (also with
// ErrTokenRotated), the new token keeping its own.
func testOIDCRoundTrip(t *testing.T, s Store) {
	now := base()

	// A client saved with one algorithm, then replaced with another.
	c := fullClient()
	c.IDTokenSignedResponseAlg = "EdDSA"
	saveClient(t, s, c)
	c.IDTokenSignedResponseAlg = "ES256"
	saveClient(t, s, c)
	got, err := s.GetClient(bg, c.ID)
	if err != nil {
		t.Fatalf("GetClient: %v", err)
	}
	diffClient(t, "GetClient of a client with an id_token algorithm", c, got)
	if reg, ok := s.(core.ClientRegistry); ok {
		all, err := reg.ListClients(bg)
		if err != nil {
			t.Fatalf("ListClients: %v", err)
		}
		found := 0
		for _, l := range all {
			if l != nil && l.ID == c.ID {
				found++
				diffClient(t, "the client in ListClients", c, l)
			}
		}
		if found != 1 {
			t.Errorf("ListClients holds the client %d times, want 1", found)
		}
	}

	// A grant whose OIDC is a few KB of mixed text.
	g := newGrant(now)
	g.ClientID = c.ID
	g.OIDC = oidcText(2000, 1)
	g.Resource = "https://api.example.com https://mcp.example.com/mcp?x=1"
	createGrant(t, s, g)
	first := newRefresh(now, g.ID, g.ClientID)
	first.UserID = g.UserID
	first.OIDC, first.Resource = g.OIDC, g.Resource
	at := now.Add(5 * time.Second)
	var gc issueCounter[core.Grant]
	redeemed, err := s.RedeemCode(bg, g.CodeSig, at, func(x *core.Grant) (*core.RefreshToken, error) {
		gc.record(x)
		cp := *first
		return &cp, nil
	})
	if err != nil {
		t.Fatalf("RedeemCode: %v", err)
	}
	if gc.n() != 1 {
		t.Fatalf("issue called %d times, want 1", gc.n())
	}
	diffGrant(t, "grant with OIDC passed to issue", g, gc.arg, false)
	used := *g
	used.UsedAt = tp(at)
	diffGrant(t, "grant with OIDC RedeemCode returned", &used, redeemed, true)
	again, err := s.RedeemCode(bg, g.CodeSig, at.Add(time.Second), neverIssueCode(t))
	wantErr(t, "second RedeemCode", err, core.ErrCodeUsed)
	diffGrant(t, "grant with OIDC returned with ErrCodeUsed", &used, again, true)
	diffRefresh(t, "refresh token with OIDC stored by RedeemCode", first, getRefresh(t, s, first.Sig), true)

	// Rotated to a token with other OIDC text: each keeps its own.
	next := newRefresh(now.Add(time.Minute), first.FamilyID, first.ClientID)
	next.UserID = first.UserID
	next.OIDC, next.Resource = oidcText(1999, 2), "https://api.example.com"
	if next.OIDC == first.OIDC {
		t.Fatal("the two OIDC texts are equal")
	}
	rotatedAt := now.Add(time.Minute)
	var rc issueCounter[core.RefreshToken]
	old, err := s.RotateRefreshToken(bg, first.Sig, rotatedAt, func(x *core.RefreshToken) (*core.RefreshToken, error) {
		rc.record(x)
		cp := *next
		return &cp, nil
	})
	if err != nil {
		t.Fatalf("RotateRefreshToken: %v", err)
	}
	if rc.n() != 1 {
		t.Fatalf("issue called %d times, want 1", rc.n())
	}
	diffRefresh(t, "token with OIDC passed to issue", first, rc.arg, true)
	diffRefresh(t, "token with OIDC RotateRefreshToken returned", first, old, false)
	rotated := *first
	rotated.RotatedAt = tp(rotatedAt)
	diffRefresh(t, "old token with OIDC after rotation", &rotated, getRefresh(t, s, first.Sig), true)
	diffRefresh(t, "new token with other OIDC after rotation", next, getRefresh(t, s, next.Sig), true)
	reused, err := s.RotateRefreshToken(bg, first.Sig, rotatedAt.Add(time.Second), neverIssueRefresh(t))
	wantErr(t, "RotateRefreshToken of the rotated-out token", err, core.ErrTokenRotated)
	diffRefresh(t, "token with OIDC returned with ErrTokenRotated", &rotated, reused, true)
}
