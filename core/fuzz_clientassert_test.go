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

// FuzzClientAssertion sends client_credentials requests authenticated by
// a client assertion built from the fuzzer's header and payload bytes,
// signed with a real key of client "pk" (ES256 or EdDSA), or taken as
// they come (any signature, or any string). The server must never panic
// or fail with a 5xx, must answer a refusal with invalid_client or
// invalid_request, and must accept only an assertion whose verified
// payload has iss = sub = the client the token is issued to, aud = the
// issuer as a single string, exp in the future (within the lifetime
// bound), a jti, under an allowed algorithm.
//
//	go test -run '^$' -fuzz FuzzClientAssertion -fuzztime 30s ./core/
func FuzzClientAssertion(f *testing.F) {
	k := newRKit(f, quietLog)
	es, ed := newTKey(f, "ES256", "es"), newTKey(f, "EdDSA", "ed")
	other := newTKey(f, "ES256", "o")
	k.store.AddClient(&core.Client{ID: "pk", AuthMethod: core.AuthPrivateKeyJWT, JWKS: jwks(es, ed), GrantTypes: []string{"client_credentials"}})
	k.store.AddClient(&core.Client{ID: "pk2", AuthMethod: core.AuthPrivateKeyJWT, JWKS: jwks(other), GrantTypes: []string{"client_credentials"}})
	now := k.now.Unix()

	claims := func(mod string) []byte {
		return []byte(`{"iss":"pk","sub":"pk","aud":"` + issuer + `","iat":` + itoa(now) + `,"exp":` + itoa(now+60) + `,"jti":"seed"` + mod + `}`)
	}
	esHdr, edHdr := []byte(`{"alg":"ES256","kid":"es","typ":"JWT"}`), []byte(`{"alg":"EdDSA","kid":"ed"}`)
	// The harness works: a valid assertion built this way is accepted.
	pre := url.Values{"grant_type": {"client_credentials"}, "client_assertion_type": {core.ClientAssertionType},
		"client_assertion": {signRaw(ed.priv, "EdDSA", edHdr, claims(`,"jti":"precheck"`))}}
	if w := k.post("/oauth2/token", pre.Encode(), nil); w.status != 200 {
		f.Fatalf("a valid assertion: %d %s", w.status, w.body)
	}
	f.Add(uint8(0), esHdr, claims(""), "")
	f.Add(uint8(1), edHdr, claims(`,"jti":"seed2"`), "")
	f.Add(uint8(0), esHdr, claims(`,"aud":["`+issuer+`"]`), "")
	f.Add(uint8(0), esHdr, claims(`,"aud":"`+issuer+`/oauth2/token"`), "")
	f.Add(uint8(0), esHdr, claims(`,"sub":"pk2"`), "")
	f.Add(uint8(0), esHdr, claims(`,"ISS":"pk2","Sub":"x"`), "")
	f.Add(uint8(0), esHdr, claims(`,"exp":`+itoa(now+3600)), "")
	f.Add(uint8(0), esHdr, claims(`,"exp":1e300`), "")
	f.Add(uint8(0), esHdr, claims(`,"exp":-1,"iat":null`), "")
	f.Add(uint8(0), esHdr, claims(`,"jti":null`), "")
	f.Add(uint8(0), esHdr, claims(`,"iat":`+itoa(now+11)), "")
	f.Add(uint8(0), esHdr, claims(`,"nbf":"x"`), "")
	f.Add(uint8(0), []byte(`{"alg":"ES256","kid":"ed"}`), claims(""), "")
	f.Add(uint8(0), []byte(`{"alg":"ES256","typ":"at+jwt"}`), claims(""), "")
	f.Add(uint8(0), []byte(`{"alg":"ES256","crit":["exp"],"exp":1}`), claims(""), "")
	f.Add(uint8(0), []byte(`{"alg":"ES256","jku":"https://evil.example/jwks"}`), claims(""), "")
	f.Add(uint8(1), []byte(`{"alg":"ES256","kid":"es"}`), claims(""), "")
	f.Add(uint8(3), []byte(`{"alg":"none"}`), claims(""), "")
	f.Add(uint8(3), []byte(`{"alg":"HS256","kid":"es"}`), claims(""), "c2ln")
	f.Add(uint8(2), []byte(nil), []byte(nil), "a.b.c")
	f.Add(uint8(2), []byte(nil), []byte(nil), "..")
	f.Add(uint8(2), []byte(nil), []byte(nil), "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJwayJ9.")
	f.Add(uint8(0), esHdr, []byte(`[]`), "")
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
		form := url.Values{"grant_type": {"client_credentials"}, "client_assertion_type": {core.ClientAssertionType}, "client_assertion": {a}}
		kt := k.with(t)
		w := kt.post("/oauth2/token", form.Encode(), nil)
		if w.status != 200 {
			var e struct{ Error string }
			_ = json.Unmarshal(w.body, &e)
			if w.status >= 500 || (e.Error != core.ErrInvalidClient && e.Error != core.ErrInvalidRequest) {
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
		var h map[string]any
		var c map[string]any
		if err1 != nil || err2 != nil || json.Unmarshal(hb, &h) != nil || json.Unmarshal(pb, &c) != nil {
			t.Fatalf("accepted %q: header or payload does not decode", a)
		}
		if alg, _ := h["alg"].(string); alg != "ES256" && alg != "EdDSA" {
			t.Fatalf("accepted alg %v", h["alg"])
		}
		var tok struct {
			AccessToken string `json:"access_token"`
		}
		_ = json.Unmarshal(w.body, &tok)
		info, err := k.srv.CheckToken(context.Background(), tok.AccessToken)
		if err != nil {
			t.Fatalf("the issued token does not check: %v", err)
		}
		iss, _ := c["iss"].(string)
		sub, _ := c["sub"].(string)
		aud, audStr := c["aud"].(string)
		if iss != info.ClientID || sub != info.ClientID || iss == "" {
			t.Fatalf("accepted iss %v sub %v for client %q", c["iss"], c["sub"], info.ClientID)
		}
		if !audStr || aud != issuer {
			t.Fatalf("accepted aud %v", c["aud"])
		}
		exp, ok := c["exp"].(float64)
		if !ok || exp <= float64(now) || exp > float64(now)+float64(5*time.Minute/time.Second)+10 {
			t.Fatalf("accepted exp %v at %d", c["exp"], now)
		}
		if jti, _ := c["jti"].(string); jti == "" {
			t.Fatalf("accepted without jti: %v", c["jti"])
		}
	})
}

func itoa(n int64) string { return string(mustJSON(n)) }
