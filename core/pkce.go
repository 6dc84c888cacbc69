package core

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
)

// validPKCEValue: 43*128unreserved (RFC 7636 §4.1, §4.2).
func validPKCEValue(s string) bool {
	if len(s) < 43 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~') {
			return false
		}
	}
	return true
}

// verifyPKCE reports whether verifier matches challenge under method
// ("S256", or "plain" when the caller allows it). Malformed inputs never
// match; the length check runs before any hashing.
func verifyPKCE(verifier, challenge, method string) bool {
	if !validPKCEValue(verifier) || !validPKCEValue(challenge) {
		return false
	}
	switch method {
	case "S256":
		sum := sha256.Sum256([]byte(verifier))
		var enc [43]byte
		base64.RawURLEncoding.Encode(enc[:], sum[:])
		return subtle.ConstantTimeCompare(enc[:], []byte(challenge)) == 1
	case "plain":
		return subtle.ConstantTimeCompare([]byte(verifier), []byte(challenge)) == 1
	}
	return false
}

// S256Challenge returns the S256 code_challenge of a verifier.
func S256Challenge(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
