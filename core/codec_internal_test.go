package core

import (
	"math"
	"testing"
	"time"
)

type nopAuth struct{}

func (nopAuth) Login(Responder, Request, *AuthorizationRequest)        {}
func (nopAuth) ProcessLogin(Responder, Request, *AuthorizationRequest) {}

// A token whose lifetime claim is huge must be refused even if it was
// sealed with the server's key (the check exists for key compromise and
// bugs): the lifetime comparison must not overflow.
func TestAccessTokenLifetimeOverflow(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	s, err := New(Config{Issuer: "https://as.example", Keys: Keys{CryptKey: make([]byte, 32), SignKey: make([]byte, 32)},
		Now: func() time.Time { return now }}, nopStore{}, nopAuth{})
	if err != nil {
		t.Fatal(err)
	}
	seal := func(iat, exp int64) string {
		var w fieldWriter
		w.num(atVersion)
		w.num(0)
		w.num(iat)
		w.num(exp)
		for _, v := range []string{s.cfg.Issuer, s.cfg.Audience, "u", "c", "read", "g", "j", ""} {
			w.str(v)
		}
		tok, err := s.keys.seal(prefixAccess, w.b)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	iat := now.Unix()
	for name, c := range map[string]struct {
		iat, exp int64
		ok       bool
	}{
		"normal":                 {iat, iat + 3600, true},
		"lifetime 2h":            {iat, iat + 7200, false},
		"wraps as nanoseconds":   {iat, iat + 18_446_744_074, false},
		"max exp":                {iat, math.MaxInt64, false},
		"negative iat":           {math.MinInt64, iat + 10, false},
		"iat in the future":      {iat + 3600, iat + 7200, false},
		"exp before iat":         {iat, iat - 1, false},
		"max iat and exp wrap":   {math.MaxInt64, math.MinInt64, false},
		"zero iat, near exp":     {0, iat + 10, false},
		"one minute clock skew":  {iat + 59, iat + 3600, true},
		"lifetime at the margin": {iat - 10, iat + 3600 + 40, true},
	} {
		var info TokenInfo
		err := s.openAccessToken(seal(c.iat, c.exp), now, &info)
		if (err == nil) != c.ok {
			t.Errorf("%s: err=%v, want ok=%v", name, err, c.ok)
		}
	}
}

func TestUvarintOverflowRejected(t *testing.T) {
	// Ten bytes whose last one carries more than the 64th bit.
	r := fieldReader{s: "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02"}
	r.uvarint()
	if !r.bad {
		t.Fatal("overflowing uvarint accepted")
	}
	r = fieldReader{s: "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"}
	if v := r.uvarint(); r.bad || v != math.MaxUint64 {
		t.Fatalf("max uvarint: %d bad=%v", v, r.bad)
	}
}
