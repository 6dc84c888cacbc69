package jose

import (
	"crypto"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	gojose "github.com/go-jose/go-jose/v4"
)

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

// Header is what Verify reports of a verified token's protected header.
type Header struct{ Alg, KID, Typ string }

// KeyFunc returns the key that verifies a token signed under kid with alg,
// or an error to refuse the token.
type KeyFunc func(kid, alg string) (crypto.PublicKey, error)

// ErrInvalid wraps every reason Verify refuses a token.
var ErrInvalid = errors.New("invalid JWS")

func invalid(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, a...))
}

// Verify checks a compact JWS and returns its header and payload. Only
// algorithms in algs are accepted (never none, never HMAC: algs may list
// only the asymmetric algorithms of this package), the key keyFor returns
// must be of the type the algorithm needs (so a public RSA key can never
// serve as an HMAC secret), the token is at most MaxTokenSize bytes, a
// header that names a key to fetch or trust (jwk, jku, x5u, x5c) is refused,
// and so is a crit member go-jose does not implement.
func Verify(token string, algs []string, keyFor KeyFunc) (Header, []byte, error) {
	if len(token) > MaxTokenSize {
		return Header{}, nil, invalid("larger than %d bytes", MaxTokenSize)
	}
	allowed := make([]gojose.SignatureAlgorithm, 0, len(algs))
	for _, a := range algs {
		if !slices.Contains(Algorithms, a) {
			return Header{}, nil, invalid("algorithm %q may not be allowed", a)
		}
		allowed = append(allowed, gojose.SignatureAlgorithm(a))
	}
	jws, err := gojose.ParseSignedCompact(token, allowed)
	if err != nil {
		return Header{}, nil, invalid("%v", err)
	}
	if len(jws.Signatures) != 1 {
		return Header{}, nil, invalid("one signature expected")
	}
	ph := jws.Signatures[0].Protected
	if _, err := ph.Certificates(x509.VerifyOptions{}); ph.JSONWebKey != nil || !errors.Is(err, gojose.ErrMissingX5cHeader) {
		return Header{}, nil, invalid("the header carries a key")
	}
	for _, k := range []gojose.HeaderKey{"jku", "x5u", "x5c"} {
		if _, ok := ph.ExtraHeaders[k]; ok {
			return Header{}, nil, invalid("the header names a key to fetch")
		}
	}
	h := Header{Alg: ph.Algorithm, KID: ph.KeyID}
	if t, ok := ph.ExtraHeaders[gojose.HeaderType]; ok {
		s, isStr := t.(string)
		if !isStr {
			return Header{}, nil, invalid("typ is not a string")
		}
		h.Typ = s
	}
	key, err := keyFor(h.KID, h.Alg)
	if err != nil {
		return h, nil, invalid("%v", err)
	}
	if err := CheckKey(key, h.Alg); err != nil {
		return h, nil, invalid("%v", err)
	}
	payload, err := jws.Verify(key)
	if err != nil {
		return h, nil, invalid("%v", err)
	}
	return h, payload, nil
}
