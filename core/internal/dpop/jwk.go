package dpop

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"strconv"

	gojose "github.com/go-jose/go-jose/v4"

	"github.com/oauth2kit/oauth2kit/core/internal/jose"
)

// privateMembers are the JWK members of private or symmetric key material
// (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037 §2; priv of ML-DSA keys). The
// raw JSON is checked, not only the key go-jose parses: a member go-jose
// ignores today (oth, for one) must not slip through because of it, and a
// client that puts its private key in a proof has published it — the
// proof must not be taken as proof of possession.
var privateMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k", "priv"}

// checkRawJWK checks the JSON of a proof's jwk header: an object without
// repeated members, of an asymmetric key type, with no private member,
// no certificate chain or URL to parse or follow, and, if it names an alg
// or a use, the proof's and signing. alg "" skips the alg check.
func checkRawJWK(raw json.RawMessage, alg string) error {
	k, err := object(raw)
	if err != nil {
		return errors.New("the jwk is not a JSON object: " + err.Error())
	}
	for _, name := range privateMembers {
		if _, ok := k[name]; ok {
			return errors.New("the jwk holds private or symmetric key material (" + name + ")")
		}
	}
	kty, _, err := str(k, "kty")
	if err != nil {
		return errors.New("the jwk kty is not a string")
	}
	switch kty {
	case "EC", "RSA", "OKP":
	case "oct":
		return errors.New("the jwk is a symmetric key")
	default:
		return errors.New("the jwk kty is not EC, RSA or OKP")
	}
	for _, name := range []string{"x5c", "x5u"} {
		if _, ok := k[name]; ok {
			return errors.New("the jwk has the member " + name)
		}
	}
	if a, ok, err := str(k, "alg"); err != nil || (ok && alg != "" && a != alg) {
		return errors.New("the jwk alg is not the header's")
	}
	if u, ok, err := str(k, "use"); err != nil || (ok && u != "sig") {
		return errors.New("the jwk use is not sig")
	}
	return nil
}

func checkRSASize(pub crypto.PublicKey) error {
	if k, ok := pub.(*rsa.PublicKey); ok && k.N.BitLen() > MaxRSABits {
		return errors.New("the RSA key has more than " + strconv.Itoa(MaxRSABits) + " bits")
	}
	return nil
}

// Thumbprint is the RFC 7638 SHA-256 thumbprint, base64url, of the public
// JWK jwkJSON, as Verify computes Proof.JKT: for a caller that holds a key
// (a client's registered key, a dpop_jkt to compare) as JSON. A JWK with
// private or symmetric material is refused, as in a proof; so is a key type
// other than RSA (at least jose.MinRSABits, at most MaxRSABits), EC P-256
// and Ed25519.
func Thumbprint(jwkJSON []byte) (string, error) {
	if len(jwkJSON) > MaxProofSize {
		return "", errors.New("dpop: the JWK is too large")
	}
	if err := checkRawJWK(jwkJSON, ""); err != nil {
		return "", errors.New("dpop: " + err.Error())
	}
	var k gojose.JSONWebKey
	if err := k.UnmarshalJSON(jwkJSON); err != nil {
		return "", errors.New("dpop: the JWK does not parse")
	}
	if !k.Valid() || !k.IsPublic() {
		return "", errors.New("dpop: the JWK is not a public key")
	}
	if err := checkKeyType(k.Key); err != nil {
		return "", errors.New("dpop: " + err.Error())
	}
	return jose.Thumbprint(k.Key)
}

// checkKeyType is jose.CheckKey for the algorithm of the key's type, and
// the MaxRSABits bound.
func checkKeyType(pub crypto.PublicKey) error {
	alg := jose.RS256
	switch pub.(type) {
	case *ecdsa.PublicKey:
		alg = jose.ES256
	case ed25519.PublicKey:
		alg = jose.EdDSA
	}
	if err := jose.CheckKey(pub, alg); err != nil {
		return err
	}
	return checkRSASize(pub)
}
