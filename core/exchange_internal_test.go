package core

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"reflect"
	"testing"
	"time"
)

// A delegation chain survives both token formats beside every other
// optional field (DPoP and certificate thumbprints, userinfo claims), and
// a chain the server would never write (empty, too deep, a link without
// sub) makes the token invalid instead of half-read.
func TestActInBothFormats(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	s := formatsServer(t, now)
	chain := &Actor{Subject: "svc2", ClientID: "svc2", Act: &Actor{Subject: "svc", ClientID: "svc"}}
	base := TokenInfo{Issuer: s.cfg.Issuer, Audience: s.cfg.Audience, UserID: "alice", ClientID: "svc2", Scope: "read",
		GrantID: "g", AdditionalInfo: "info", IssuedAt: now, ExpiresAt: now.Add(time.Hour), Act: chain, userinfoClaims: "email"}
	for name, f := range map[string]accessFormat{"sealed": s.access, "jwt": s.jwt} {
		for _, bind := range []struct{ jkt, x5t string }{{}, {"jkt-1", ""}, {"", "x5t-1"}} {
			in := base
			in.JKT, in.X5T = bind.jkt, bind.x5t
			tok, jti, err := f.mint(in)
			if err != nil {
				t.Fatal(err)
			}
			out, err := f.open(tok)
			if err != nil {
				t.Fatalf("%s %+v: %v", name, bind, err)
			}
			in.TokenID = jti
			if !reflect.DeepEqual(in, out) {
				t.Errorf("%s %+v: read back\n%+v\nwant\n%+v", name, bind, out, in)
			}
		}
	}
	// Without a chain nothing changes: Act stays nil.
	plain := base
	plain.Act = nil
	tok, _, _ := s.access.mint(plain)
	if out, err := s.access.open(tok); err != nil || out.Act != nil {
		t.Errorf("a token without act: %+v %v", out.Act, err)
	}

	seal := func(depth int64, subs ...string) string {
		var w fieldWriter
		w.num(atVersion)
		w.num(flagAct)
		w.num(now.Unix())
		w.num(now.Add(time.Hour).Unix())
		for _, v := range []string{s.cfg.Issuer, s.cfg.Audience, "alice", "svc", "read", "g", "j", ""} {
			w.str(v)
		}
		w.num(depth)
		for _, sub := range subs {
			w.str(sub)
			w.str("c")
		}
		tok, err := s.keys.seal(prefixAccess, w.b)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	for name, c := range map[string]struct {
		tok string
		ok  bool
	}{
		"two":          {seal(2, "a", "b"), true},
		"four":         {seal(4, "a", "b", "c", "d"), true},
		"zero":         {seal(0), false},
		"five":         {seal(5, "a", "b", "c", "d", "e"), false},
		"empty sub":    {seal(2, "a", ""), false},
		"short":        {seal(3, "a", "b"), false},
		"negative":     {seal(-1), false},
		"flag, no act": {seal(1), false},
	} {
		_, err := s.access.open(c.tok)
		if (err == nil) != c.ok {
			t.Errorf("%s: err=%v, want ok=%v", name, err, c.ok)
		}
	}
	deep := &actClaim{Sub: "1", Act: &actClaim{Sub: "2", Act: &actClaim{Sub: "3", Act: &actClaim{Sub: "4", Act: &actClaim{Sub: "5"}}}}}
	if deep.actor() != nil || (&actClaim{}).actor() != nil || deep.Act.actor() == nil {
		t.Error("actClaim.actor accepts a chain the server never writes, or refuses one it does")
	}
}

// formatsServer is a server with both access token formats (an ES256
// signing key for RFC 9068), on a store that holds nothing, at now.
func formatsServer(t *testing.T, now time.Time) *Server {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Issuer: "https://as.example", Keys: Keys{CryptKey: make([]byte, 32), SignKey: make([]byte, 32)},
		OIDC: OIDC{SigningKeys: []SigningKey{{Alg: AlgES256, Signer: k}}}, Now: func() time.Time { return now }}, nopStore{}, nopAuth{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}
