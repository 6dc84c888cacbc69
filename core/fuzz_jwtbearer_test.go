package core_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/oauth2kit/oauth2kit/core"
)

// FuzzJWTBearerAssertion presents ID-JAGs built from the fuzzer's header
// and payload bytes, signed with the trusted identity provider's key
// (ES256 or EdDSA), or taken as they come, in the jwt-bearer grant of
// client "agent". The server must never panic or fail with a 5xx, must
// refuse with invalid_grant, invalid_scope, invalid_target or
// invalid_request only, and must accept only an assertion whose verified
// header has typ oauth-id-jag+jwt and whose payload has the trusted iss,
// aud this issuer alone, client_id agent, a sub (the token's user), a
// jti, exp in the future within 10 minutes of iat, and a scope the token
// does not exceed.
//
//	go test -run '^$' -fuzz FuzzJWTBearerAssertion -fuzztime 30s ./core/
func FuzzJWTBearerAssertion(f *testing.F) {
	es, ed := newTKey(f, "ES256", "es"), newTKey(f, "EdDSA", "ed")
	k := newRKit(f, quietLog, trustIDP(jwks(es, ed)))
	c, secret, err := core.NewClient(core.ClientSpec{ID: "agent", GrantTypes: []string{core.GrantJWTBearer}, Scopes: []string{"read", "write"}})
	if err != nil {
		f.Fatal(err)
	}
	k.store.AddClient(c)
	now := k.now.Unix()
	claims := func(mod string) []byte {
		return []byte(`{"iss":"` + idpIssuer + `","sub":"alice","aud":"` + issuer + `","client_id":"agent","iat":` + itoa(now) +
			`,"exp":` + itoa(now+300) + `,"jti":"seed","scope":"read write"` + mod + `}`)
	}
	grant := func(kt *rkit, a string) *fakeResp {
		return kt.post("/oauth2/token", url.Values{"grant_type": {core.GrantJWTBearer}, "assertion": {a}}.Encode(), basic("agent", secret))
	}
	esHdr, edHdr := []byte(`{"alg":"ES256","kid":"es","typ":"oauth-id-jag+jwt"}`), []byte(`{"alg":"EdDSA","typ":"application/oauth-id-jag+jwt"}`)
	// The harness works: a valid assertion built this way is accepted.
	if w := grant(k, signRaw(ed.priv, "EdDSA", edHdr, claims(`,"jti":"precheck"`))); w.status != 200 {
		f.Fatalf("a valid assertion: %d %s", w.status, w.body)
	}
	f.Add(uint8(0), esHdr, claims(""), "")
	f.Add(uint8(1), edHdr, claims(`,"jti":"seed2"`), "")
	f.Add(uint8(0), esHdr, claims(`,"aud":["`+issuer+`"]`), "")
	f.Add(uint8(0), esHdr, claims(`,"aud":["`+issuer+`","https://x.example"]`), "")
	f.Add(uint8(0), esHdr, claims(`,"client_id":"conf"`), "")
	f.Add(uint8(0), esHdr, claims(`,"iss":"https://evil.example"`), "")
	f.Add(uint8(0), esHdr, claims(`,"exp":`+itoa(now+3600)), "")
	f.Add(uint8(0), esHdr, claims(`,"exp":1e300,"iat":-1`), "")
	f.Add(uint8(0), esHdr, claims(`,"scope":"admin read"`), "")
	f.Add(uint8(0), esHdr, claims(`,"scope":null,"resource":["a","b"]`), "")
	f.Add(uint8(0), esHdr, claims(`,"cnf":{"jkt":"x"}`), "")
	f.Add(uint8(0), esHdr, claims(`,"amr":[1],"auth_time":"x"`), "")
	f.Add(uint8(0), []byte(`{"alg":"ES256","kid":"es","typ":"JWT"}`), claims(""), "")
	f.Add(uint8(0), []byte(`{"alg":"ES256","kid":"es"}`), claims(""), "")
	f.Add(uint8(3), []byte(`{"alg":"none","typ":"oauth-id-jag+jwt"}`), claims(""), "")
	f.Add(uint8(3), []byte(`{"alg":"HS256","kid":"es","typ":"oauth-id-jag+jwt"}`), claims(""), "c2ln")
	f.Add(uint8(2), []byte(nil), []byte(nil), "a.b.c")
	f.Add(uint8(0), esHdr, []byte(`null`), "")

	f.Fuzz(func(t *testing.T, mode uint8, header, payload []byte, raw string) {
		var a string
		switch mode % 4 {
		case 0:
			a = signRaw(es.priv, "ES256", header, payload)
		case 1:
			a = signRaw(ed.priv, "EdDSA", header, payload)
		case 2:
			a = raw
		case 3:
			a = b64(header) + "." + b64(payload) + "." + raw
		}
		w := grant(k.with(t), a)
		if w.status != 200 {
			var e struct{ Error string }
			_ = json.Unmarshal(w.body, &e)
			switch {
			case w.status >= 500:
				t.Fatalf("refusal %d %s", w.status, w.body)
			case e.Error != core.ErrInvalidGrant && e.Error != core.ErrInvalidScope && e.Error != core.ErrInvalidTarget && e.Error != core.ErrInvalidRequest:
				t.Fatalf("refusal %d %s", w.status, w.body)
			}
			return
		}
		// Accepted: check what was signed, with a parser of our own.
		parts := strings.Split(a, ".")
		if len(parts) != 3 {
			t.Fatalf("accepted %q: not a compact JWS", a)
		}
		hb, err1 := base64.RawURLEncoding.DecodeString(parts[0])
		pb, err2 := base64.RawURLEncoding.DecodeString(parts[1])
		var h, c map[string]any
		if err1 != nil || err2 != nil || json.Unmarshal(hb, &h) != nil || json.Unmarshal(pb, &c) != nil {
			t.Fatalf("accepted %q: header or payload does not decode", a)
		}
		if alg, _ := h["alg"].(string); alg != "ES256" && alg != "EdDSA" {
			t.Fatalf("accepted alg %v", h["alg"])
		}
		if typ, _ := h["typ"].(string); strings.TrimPrefix(strings.ToLower(typ), "application/") != core.IDJAGType {
			t.Fatalf("accepted typ %v", h["typ"])
		}
		var tok struct {
			AccessToken string `json:"access_token"`
			Scope       string `json:"scope"`
		}
		_ = json.Unmarshal(w.body, &tok)
		info, err := k.srv.CheckToken(context.Background(), tok.AccessToken)
		if err != nil {
			t.Fatalf("the issued token does not check: %v", err)
		}
		aud := c["aud"]
		if l, ok := aud.([]any); ok && len(l) == 1 {
			aud = l[0]
		}
		sub, _ := c["sub"].(string)
		jti, _ := c["jti"].(string)
		switch {
		case c["iss"] != idpIssuer || aud != issuer || c["client_id"] != "agent" || info.ClientID != "agent":
			t.Fatalf("accepted iss %v aud %v client_id %v", c["iss"], c["aud"], c["client_id"])
		case sub == "" || info.UserID != sub || jti == "":
			t.Fatalf("accepted sub %v jti %v for user %q", c["sub"], c["jti"], info.UserID)
		}
		exp, ok1 := c["exp"].(float64)
		iat, ok2 := c["iat"].(float64)
		if !ok1 || !ok2 || exp <= float64(now) || exp-iat > float64(10*time.Minute/time.Second) || iat > float64(now+10) {
			t.Fatalf("accepted exp %v iat %v at %d", c["exp"], c["iat"], now)
		}
		if sc, ok := c["scope"].(string); ok {
			for _, s := range strings.Fields(tok.Scope) {
				if !strings.Contains(" "+sc+" ", " "+s+" ") {
					t.Fatalf("token scope %q exceeds the assertion's %q", tok.Scope, sc)
				}
			}
		}
	})
}
