// Package jose signs and verifies the compact JWS the server issues and
// accepts (id_tokens, JWT access tokens, id_token_hint) and publishes JWK
// sets.
//
// Signing is our own: a compact JWS over a crypto.Signer is a header, a
// payload and one Sign call, and minting it directly costs a fraction of
// go-jose's generic path (measured in the core benchmarks), while a KMS or
// HSM key plugs in as a crypto.Signer without the private key ever being in
// the process. Everything the server parses — attacker input — goes through
// go-jose, with an explicit algorithm allow-list bound to the key type.
package jose

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"strings"

	gojose "github.com/go-jose/go-jose/v4"
)

// The signature algorithms the server signs with and accepts.
const (
	RS256 = "RS256"
	PS256 = "PS256"
	ES256 = "ES256"
	EdDSA = "EdDSA"
)

// Algorithms lists them, in the order the metadata advertises them.
var Algorithms = []string{RS256, PS256, ES256, EdDSA}

// MaxTokenSize bounds every JWS the server parses (SECURITY.md R59).
const MaxTokenSize = 8 << 10

// MinRSABits is the smallest RSA modulus accepted for signing or
// verification.
const MinRSABits = 2048

// Signer signs compact JWS with one key.
type Signer struct {
	alg, kid string
	key      crypto.Signer
	pub      crypto.PublicKey
	hash     crypto.Hash // the digest signed (0 for EdDSA, which hashes itself)
	opts     crypto.SignerOpts
	headers  map[string]string // encoded protected header per typ
}

// NewSigner checks that key suits alg and returns a signer under kid.
func NewSigner(key crypto.Signer, alg, kid string) (*Signer, error) {
	if key == nil {
		return nil, errors.New("no key")
	}
	pub := key.Public()
	if err := CheckKey(pub, alg); err != nil {
		return nil, err
	}
	s := &Signer{alg: alg, kid: kid, key: key, pub: pub, headers: map[string]string{}}
	switch alg {
	case RS256, ES256:
		s.hash, s.opts = crypto.SHA256, crypto.SHA256
	case PS256:
		s.hash = crypto.SHA256
		s.opts = &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256}
	case EdDSA:
		s.opts = crypto.Hash(0)
	}
	for _, typ := range []string{"JWT", "at+jwt"} {
		s.headers[typ] = encodeHeader(alg, kid, typ)
	}
	return s, nil
}

// CheckKey reports whether pub is a key alg may be used with: RSA of at
// least MinRSABits for RS256 and PS256, P-256 for ES256, Ed25519 for EdDSA.
func CheckKey(pub crypto.PublicKey, alg string) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if alg != RS256 && alg != PS256 {
			return fmt.Errorf("an RSA key cannot sign %q", alg)
		}
		if k.N.BitLen() < MinRSABits {
			return fmt.Errorf("the RSA key has %d bits; at least %d are required", k.N.BitLen(), MinRSABits)
		}
	case *ecdsa.PublicKey:
		if alg != ES256 {
			return fmt.Errorf("an ECDSA key cannot sign %q", alg)
		}
		if k.Curve != elliptic.P256() {
			return errors.New("ES256 needs a P-256 key")
		}
	case ed25519.PublicKey:
		if alg != EdDSA {
			return fmt.Errorf("an Ed25519 key cannot sign %q", alg)
		}
	default:
		return fmt.Errorf("unsupported key type %T (RSA, ECDSA P-256 or Ed25519)", pub)
	}
	return nil
}

func encodeHeader(alg, kid, typ string) string {
	// Only these three members: no jku, x5u or jwk for a verifier to follow.
	h := `{"alg":"` + alg + `","kid":` + quote(kid) + `,"typ":"` + typ + `"}`
	return base64.RawURLEncoding.EncodeToString([]byte(h))
}

// quote is a JSON string for a kid (printable ASCII is all a kid we accept
// holds; anything else is escaped).
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r > 0x7e:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// Alg is the signer's algorithm; KID its key id.
func (s *Signer) Alg() string { return s.alg }

// KID is the key id in the signer's headers.
func (s *Signer) KID() string { return s.kid }

// Public is the signer's public key.
func (s *Signer) Public() crypto.PublicKey { return s.pub }

// HalfHash is the hash OIDC's at_hash and c_hash use with the signer's
// algorithm: SHA-256 for RS256, PS256 and ES256, SHA-512 for EdDSA
// (OpenID Connect Core §3.1.3.6 and its EdDSA errata).
func (s *Signer) HalfHash() crypto.Hash {
	if s.alg == EdDSA {
		return crypto.SHA512
	}
	return crypto.SHA256
}

// Sign returns the compact JWS of payload (a JSON object) with header typ.
func (s *Signer) Sign(typ string, payload []byte) (string, error) {
	h, ok := s.headers[typ]
	if !ok {
		h = encodeHeader(s.alg, s.kid, typ)
	}
	enc := base64.RawURLEncoding
	n := len(h) + 1 + enc.EncodedLen(len(payload))
	buf := make([]byte, n, n+1+enc.EncodedLen(512))
	copy(buf, h)
	buf[len(h)] = '.'
	enc.Encode(buf[len(h)+1:], payload)
	msg := buf
	if s.hash != 0 {
		d := s.hash.New()
		d.Write(buf)
		msg = d.Sum(nil)
	}
	sig, err := s.key.Sign(rand.Reader, msg, s.opts)
	if err != nil {
		return "", fmt.Errorf("signing: %w", err)
	}
	if s.alg == ES256 {
		if sig, err = rawECDSA(sig, 32); err != nil {
			return "", err
		}
	}
	out := append(buf, '.')
	out = enc.AppendEncode(out, sig)
	return string(out), nil
}

// rawECDSA turns the ASN.1 signature crypto.Signer returns into JOSE's
// fixed-size r||s (RFC 7518 §3.4).
func rawECDSA(der []byte, size int) ([]byte, error) {
	var rs struct{ R, S *big.Int }
	rest, err := asn1.Unmarshal(der, &rs)
	if err != nil || len(rest) != 0 || rs.R.Sign() <= 0 || rs.S.Sign() <= 0 ||
		len(rs.R.Bytes()) > size || len(rs.S.Bytes()) > size {
		return nil, errors.New("signing: malformed ECDSA signature from the signer")
	}
	out := make([]byte, 2*size)
	rs.R.FillBytes(out[:size])
	rs.S.FillBytes(out[size:])
	return out, nil
}

// Thumbprint is the RFC 7638 SHA-256 thumbprint of pub, base64url: a kid
// that any party can recompute from the published key.
func Thumbprint(pub crypto.PublicKey) (string, error) {
	k := gojose.JSONWebKey{Key: pub}
	t, err := k.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(t), nil
}

// PublicKey is one member of a published JWK set.
type PublicKey struct {
	KID, Alg string
	Key      crypto.PublicKey
}

// JWKS returns the JSON of a JWK set of public keys, each with kid,
// use "sig" and alg. Private keys are refused, not stripped: a caller that
// passes one has a bug this must not hide.
func JWKS(keys []PublicKey) ([]byte, error) {
	set := gojose.JSONWebKeySet{Keys: make([]gojose.JSONWebKey, 0, len(keys))}
	for _, k := range keys {
		switch k.Key.(type) {
		case *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey:
		default:
			return nil, fmt.Errorf("jwks: %T is not a public key", k.Key)
		}
		set.Keys = append(set.Keys, gojose.JSONWebKey{Key: k.Key, KeyID: k.KID, Algorithm: k.Alg, Use: "sig"})
	}
	return jsonMarshal(set)
}
