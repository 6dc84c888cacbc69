package core

import (
	"encoding/base64"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

// ParentGrantIDs survive both token formats beside every other optional
// field; a token without them decodes as before (nil); a list the server
// would never write (empty, too long, an empty id) makes the token
// invalid instead of half-read.
func TestParentGrantIDsInBothFormats(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	s := formatsServer(t, now)
	base := TokenInfo{Issuer: s.cfg.Issuer, Audience: s.cfg.Audience, UserID: "alice", ClientID: "svc", Scope: "read",
		GrantID: "g", AdditionalInfo: "info", IssuedAt: now, ExpiresAt: now.Add(time.Hour), userinfoClaims: "email"}
	for name, f := range map[string]accessFormat{"sealed": s.access, "jwt": s.jwt} {
		for _, c := range []struct {
			parents []string
			act     *Actor
			jkt     string
		}{
			{[]string{"p1"}, nil, ""},
			{[]string{"p1", "p2", "p3", "p4"}, &Actor{Subject: "svc", ClientID: "svc"}, "jkt-1"},
			{nil, &Actor{Subject: "svc", ClientID: "svc"}, ""},
			{nil, nil, ""},
		} {
			in := base
			in.ParentGrantIDs, in.Act, in.JKT = c.parents, c.act, c.jkt
			tok, jti, err := f.mint(in)
			if err != nil {
				t.Fatal(err)
			}
			out, err := f.open(tok)
			if err != nil {
				t.Fatalf("%s %v: %v", name, c.parents, err)
			}
			in.TokenID = jti
			if !reflect.DeepEqual(in, out) {
				t.Errorf("%s %v: read back\n%+v\nwant\n%+v", name, c.parents, out, in)
			}
		}
	}

	// A sealed token written field by field: flags, then the parents.
	seal := func(flags int64, n int64, ids ...string) string {
		var w fieldWriter
		w.num(atVersion)
		w.num(flags)
		w.num(now.Unix())
		w.num(now.Add(time.Hour).Unix())
		for _, v := range []string{s.cfg.Issuer, s.cfg.Audience, "alice", "svc", "read", "g", "j", ""} {
			w.str(v)
		}
		if flags&flagParents != 0 {
			w.num(n)
			for _, id := range ids {
				w.str(id)
			}
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
		"none (an older token)": {seal(0, 0), true},
		"one":                   {seal(flagParents, 1, "a"), true},
		"four":                  {seal(flagParents, 4, "a", "b", "c", "d"), true},
		"zero":                  {seal(flagParents, 0), false},
		"five":                  {seal(flagParents, 5, "a", "b", "c", "d", "e"), false},
		"empty id":              {seal(flagParents, 2, "a", ""), false},
		"short":                 {seal(flagParents, 3, "a", "b"), false},
		"negative":              {seal(flagParents, -1), false},
	} {
		out, err := s.access.open(c.tok)
		if (err == nil) != c.ok {
			t.Errorf("%s: err=%v, want ok=%v", name, err, c.ok)
		}
		if name == "none (an older token)" && out.ParentGrantIDs != nil {
			t.Errorf("a token without parents read back with %q", out.ParentGrantIDs)
		}
	}

	// The JWT's pgid claim, as another signer of our keys could write it.
	sign := func(pgid any) string {
		claims := map[string]any{"iss": s.cfg.Issuer, "sub": "alice", "aud": s.cfg.Audience, "exp": now.Add(time.Hour).Unix(),
			"iat": now.Unix(), "jti": "j", "client_id": "svc", "gid": "g"}
		if pgid != nil {
			claims["pgid"] = pgid
		}
		b, _ := json.Marshal(claims)
		tok, err := s.signing.Load().signer(s.cfg.OIDC.AccessTokenAlg).Sign("at+jwt", b)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	for name, c := range map[string]struct {
		pgid any
		ok   bool
	}{
		"none":     {nil, true},
		"one":      {[]string{"a"}, true},
		"empty":    {[]string{}, false},
		"five":     {[]string{"a", "b", "c", "d", "e"}, false},
		"empty id": {[]string{"a", ""}, false},
		"a string": {"a", false},
	} {
		out, err := s.jwt.open(sign(c.pgid))
		if (err == nil) != c.ok {
			t.Errorf("jwt pgid %s: err=%v, want ok=%v", name, err, c.ok)
		}
		if name == "none" && out.ParentGrantIDs != nil {
			t.Errorf("a JWT without pgid read back with %q", out.ParentGrantIDs)
		}
	}
	// An ordinary token's JWT carries no pgid at all.
	tok, _, _ := s.jwt.mint(base)
	payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
	if strings.Contains(string(payload), "pgid") {
		t.Errorf("a JWT without parents carries pgid: %s", payload)
	}
}

// lineage bounds the chain.
func TestLineage(t *testing.T) {
	if p, ok := lineage("a", nil); !ok || !reflect.DeepEqual(p, []string{"a"}) {
		t.Errorf("lineage(a) = %v %v", p, ok)
	}
	src := []string{"b", "c"}
	p, ok := lineage("a", src)
	if !ok || !reflect.DeepEqual(p, []string{"a", "b", "c"}) || !reflect.DeepEqual(src, []string{"b", "c"}) {
		t.Errorf("lineage(a, b c) = %v %v (source %v)", p, ok, src)
	}
	if _, ok := lineage("a", []string{"b", "c", "d", "e"}); ok {
		t.Error("lineage beyond MaxExchangeDepth")
	}
}
