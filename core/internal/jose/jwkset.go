package jose

import (
	"encoding/json"
	"slices"

	gojose "github.com/go-jose/go-jose/v4"
)

// MaxClientKeys bounds the keys a client's JWK set may hold: a client
// rotates one key at a time, and every key is tried on an unknown kid.
const MaxClientKeys = 10

// CheckPublicJWKS validates a client's JWK set (RFC 7591 jwks, a client
// metadata document's jwks): a JSON object with a "keys" array of at most
// MaxClientKeys valid public asymmetric keys, each usable with one of
// Algorithms. A private or symmetric key is refused rather than stripped:
// a client that publishes its private key has lost it.
func CheckPublicJWKS(raw []byte) error {
	if len(raw) > 16<<10 {
		return invalid("the key set is larger than 16 KiB")
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(raw, &set); err != nil {
		return invalid("the key set does not parse: %v", err)
	}
	if len(set.Keys) == 0 || len(set.Keys) > MaxClientKeys {
		return invalid("the key set must hold 1 to %d keys", MaxClientKeys)
	}
	for _, k := range set.Keys {
		var jwk gojose.JSONWebKey
		if err := jwk.UnmarshalJSON(k); err != nil {
			return invalid("a key does not parse: %v", err)
		}
		if !jwk.Valid() || !jwk.IsPublic() {
			return invalid("key %q is not a valid public key", jwk.KeyID)
		}
		if jwk.Use != "" && jwk.Use != "sig" {
			return invalid("key %q is not a signing key", jwk.KeyID)
		}
		if jwk.Algorithm != "" && !slices.Contains(Algorithms, jwk.Algorithm) {
			return invalid("key %q names algorithm %q", jwk.KeyID, jwk.Algorithm)
		}
		usable := false
		for _, alg := range Algorithms {
			if CheckKey(jwk.Key, alg) == nil {
				usable = true
				break
			}
		}
		if !usable {
			return invalid("key %q fits none of %v", jwk.KeyID, Algorithms)
		}
	}
	return nil
}
