// Package dpop checks DPoP proofs (RFC 9449) as a pure function of the
// proof, the request it came with and the clock, and issues the stateless
// server nonces of RFC 9449 §8.
//
// What a proof that Verify accepts proves: whoever sent the request holds
// the private key of the public key in the proof's jwk header (the proof is
// signed with it), and signed, at most MaxAge ago and at most MaxFuture
// ahead of our clock, a statement naming this request's method and URL —
// and, with an access token, that token (ath). It does not prove the
// request is the first to carry the proof: an attacker who sees a proof can
// send it again, to the same URL, within the window.
//
// So the caller still must, and this package deliberately does not (it
// keeps no state, so that every instance of the server judges a proof the
// same way):
//
//   - spend the proof's JTI, keyed by its JKT, in the server's replay cache
//     shared by all instances, for at least MaxAge+MaxFuture past IssuedAt,
//     and refuse a proof whose jti was seen (RFC 9449 §11.1);
//   - apply its nonce policy: when it demands a server nonce, check
//     Proof.Nonce with Nonces.Valid and otherwise answer use_dpop_nonce with
//     a DPoP-Nonce header from Nonces.Issue (RFC 9449 §8, §9);
//   - check the binding: at a resource, that Proof.JKT equals the access
//     token's cnf.jkt (RFC 9449 §6, §7), and, at the token endpoint, bind
//     the tokens it issues to Proof.JKT and, on refresh, that a public
//     client's refresh token is bound to the same key (§5);
//   - build Check.URL from its own configured origin and the request's
//     path, never from the Host header, which the client chooses: with a
//     Host taken from the request, a proof captured for another server
//     would match;
//   - accept only one DPoP header per request (§4.3, check 1).
package dpop

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	gojose "github.com/go-jose/go-jose/v4"

	"github.com/oauth2kit/oauth2kit/core/internal/jose"
)

// The acceptance window of a proof's iat around the server's clock. A
// proof is a statement about one request, made just before it is sent:
// a minute is ample for transit and the client's clock running behind,
// and it bounds how long the caller's replay cache must remember a jti.
// A clock ahead of ours is allowed less, because a proof dated in the
// future stays usable longer (RFC 9449 §11.1).
const (
	MaxAge    = 60 * time.Second
	MaxFuture = 10 * time.Second
)

// Type is the typ header every proof carries (RFC 9449 §4.2), which keeps
// a proof from being taken for any other JWT and any other JWT for a proof.
const Type = "dpop+jwt"

// MaxProofSize bounds a proof, checked before anything is decoded.
const MaxProofSize = jose.MaxTokenSize

// MaxJTI bounds the jti, in bytes: the caller stores it in its replay cache.
const MaxJTI = 256

// MaxRSABits bounds a proof key's RSA modulus: the proof key is the
// client's choice, and verifying with a very large modulus costs the server
// far more than signing with it costs an attacker who need not sign
// anything valid to make us try.
const MaxRSABits = 4096

// ErrInvalidProof is wrapped by every refusal of Verify. The reason that
// follows it never quotes the proof nor the access token, so that it may go
// into a log or an error_description as it is.
var ErrInvalidProof = errors.New("dpop: invalid proof")

func invalid(reason string) error { return fmt.Errorf("%w: %s", ErrInvalidProof, reason) }

// Check is the request a proof is checked against.
type Check struct {
	// Method is the request's method, compared byte for byte with htm.
	Method string
	// URL is the request's target URI, as the server serves it: its own
	// configured scheme and host (never the request's Host header), and the
	// request's path as received (escaped, as in url.URL.EscapedPath).
	// Both it and htu go through NormalizeHTU before they are compared.
	URL string
	// AccessToken is the access token the request carries, "" at the token
	// endpoint; with a token the proof must hash it in ath (RFC 9449 §4.3).
	AccessToken string
	// Now is the server's clock; the zero time means time.Now().
	Now time.Time
	// Algs are the algorithms accepted; empty means all of jose.Algorithms.
	// Only those (asymmetric) algorithms may be listed.
	Algs []string
}

// Proof is what an accepted proof establishes.
type Proof struct {
	// JKT is the RFC 7638 SHA-256 thumbprint of the proof key, base64url:
	// the value of a bound token's cnf.jkt.
	JKT string
	// JTI is the proof's identifier, for the caller's replay cache.
	JTI string
	// IssuedAt is the proof's iat.
	IssuedAt time.Time
	// Nonce is the proof's nonce claim, "" if it has none; Verify does not
	// judge it (see Nonces).
	Nonce string
	// Alg is the proof's signature algorithm.
	Alg string
}

var defaultAlgs = toGoJose(jose.Algorithms)

func toGoJose(algs []string) []gojose.SignatureAlgorithm {
	out := make([]gojose.SignatureAlgorithm, len(algs))
	for i, a := range algs {
		out[i] = gojose.SignatureAlgorithm(a)
	}
	return out
}

// Header members refused in a proof. crit: no extension is understood, so
// none may be critical. b64: go-jose honours RFC 7797 unencoded payloads
// even outside crit, which would make the signed bytes differ from the
// payload we read. jku, x5u, x5c: the key is the jwk and nothing else; a
// second key reference could only be a second opinion on which key signed.
var refusedHeader = []string{"crit", "b64", "jku", "x5u", "x5c"}

// Verify checks proof against the request c describes, following RFC 9449
// §4.3: one compact JWS of at most MaxProofSize bytes, typ dpop+jwt, an
// asymmetric algorithm of c.Algs, a public jwk of the algorithm's key type
// that verifies the signature, and the claims jti, htm (c.Method), htu
// (c.URL), iat (within MaxAge before and MaxFuture after c.Now) and, when
// c.AccessToken is set, ath. A refusal wraps ErrInvalidProof; an error that
// does not is the caller's mistake (c.Algs, c.Method or c.URL unusable).
//
// The cheap checks of header and claims come first, the signature last, so
// that a forged or stale proof costs no public-key operation.
func Verify(proof string, c Check) (*Proof, error) {
	algs := defaultAlgs
	if len(c.Algs) > 0 {
		for _, a := range c.Algs {
			if !slices.Contains(jose.Algorithms, a) {
				return nil, fmt.Errorf("dpop: Check.Algs: %q is not one of %v", a, jose.Algorithms)
			}
		}
		algs = toGoJose(c.Algs)
	}
	if !isToken(c.Method) {
		return nil, errors.New("dpop: Check.Method is not an HTTP method")
	}
	wantHTU, err := NormalizeHTU(c.URL)
	if err != nil {
		return nil, fmt.Errorf("dpop: Check.URL: %w", err)
	}
	now := c.Now
	if now.IsZero() {
		now = time.Now()
	}

	if len(proof) > MaxProofSize {
		return nil, invalid("larger than " + strconv.Itoa(MaxProofSize) + " bytes")
	}
	h64, rest, ok1 := strings.Cut(proof, ".")
	p64, s64, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || strings.Contains(s64, ".") {
		return nil, invalid("not a compact JWS")
	}

	// The header.
	hb, err := base64.RawURLEncoding.DecodeString(h64)
	if err != nil {
		return nil, invalid("the header is not base64url")
	}
	h, err := object(hb)
	if err != nil {
		return nil, invalid("the header is not a JSON object: " + err.Error())
	}
	if typ, ok, err := str(h, "typ"); err != nil || !ok || typ != Type {
		return nil, invalid("the typ header is not " + Type)
	}
	alg, ok, err := str(h, "alg")
	if err != nil || !ok {
		return nil, invalid("no alg header")
	}
	if !slices.Contains(algs, gojose.SignatureAlgorithm(alg)) {
		// alg is not quoted: it is the client's text. Allowed ones are.
		return nil, invalid("the algorithm is not one of " + joinAlgs(algs))
	}
	for _, name := range refusedHeader {
		if _, ok := h[name]; ok {
			return nil, invalid("the header has the member " + name)
		}
	}
	rawJWK, ok := h["jwk"]
	if !ok {
		return nil, invalid("no jwk header")
	}
	if err := checkRawJWK(rawJWK, alg); err != nil {
		return nil, invalid(err.Error())
	}

	// The claims, as we read them; the signed payload is compared to these
	// bytes below.
	pb, err := base64.RawURLEncoding.DecodeString(p64)
	if err != nil {
		return nil, invalid("the payload is not base64url")
	}
	cl, err := object(pb)
	if err != nil {
		return nil, invalid("the payload is not a JSON object: " + err.Error())
	}
	out := &Proof{Alg: alg}
	jti, ok, err := str(cl, "jti")
	switch {
	case err != nil:
		return nil, invalid("the jti claim is not a string")
	case !ok:
		return nil, invalid("no jti claim")
	case jti == "" || len(jti) > MaxJTI:
		return nil, invalid("the jti claim is not 1 to " + strconv.Itoa(MaxJTI) + " bytes long")
	}
	out.JTI = jti
	if htm, ok, err := str(cl, "htm"); err != nil {
		return nil, invalid("the htm claim is not a string")
	} else if !ok {
		return nil, invalid("no htm claim")
	} else if htm != c.Method {
		return nil, invalid("the htm claim is not the request's method")
	}
	htu, ok, err := str(cl, "htu")
	if err != nil {
		return nil, invalid("the htu claim is not a string")
	} else if !ok {
		return nil, invalid("no htu claim")
	}
	if got, err := NormalizeHTU(htu); err != nil {
		return nil, invalid("the htu claim: " + err.Error())
	} else if got != wantHTU {
		return nil, invalid("the htu claim is not the request's URL")
	}
	rawIAT, ok := cl["iat"]
	if !ok {
		return nil, invalid("no iat claim")
	}
	iat, err := numericDate(rawIAT)
	if err != nil {
		return nil, invalid("the iat claim: " + err.Error())
	}
	switch {
	case iat.Before(now.Add(-MaxAge)):
		return nil, invalid("the proof is older than " + MaxAge.String())
	case iat.After(now.Add(MaxFuture)):
		return nil, invalid("the proof is dated more than " + MaxFuture.String() + " ahead")
	}
	out.IssuedAt = iat
	ath, hasATH, err := str(cl, "ath")
	if err != nil {
		return nil, invalid("the ath claim is not a string")
	}
	if c.AccessToken != "" {
		// Without a token (at the token endpoint) an ath is harmless: it
		// binds the proof to more, not less.
		if !hasATH {
			return nil, invalid("no ath claim for the access token")
		}
		if subtle.ConstantTimeCompare([]byte(ath), []byte(AccessTokenHash(c.AccessToken))) != 1 {
			return nil, invalid("the ath claim is not the access token's hash")
		}
	}
	if out.Nonce, _, err = str(cl, "nonce"); err != nil {
		return nil, invalid("the nonce claim is not a string")
	}

	// The signature, by go-jose, with the allow-list. It parses the same
	// header bytes; refusing duplicate members above means it cannot read
	// them otherwise than we did.
	jws, err := gojose.ParseSignedCompact(proof, algs)
	if err != nil {
		// go-jose's text may quote header values: not repeated.
		return nil, invalid("the JWS does not parse")
	}
	if len(jws.Signatures) != 1 {
		return nil, invalid("one signature expected")
	}
	ph := jws.Signatures[0].Protected
	if ph.Algorithm != alg {
		return nil, invalid("the algorithm is ambiguous")
	}
	jwk := ph.JSONWebKey
	if jwk == nil || !jwk.Valid() || !jwk.IsPublic() {
		return nil, invalid("the jwk header is not a public key")
	}
	if err := jose.CheckKey(jwk.Key, alg); err != nil {
		// CheckKey's text names only the (allowed) alg and the key's type
		// or size; its quotes would not do in an error_description.
		return nil, invalid("the jwk header: " + strings.ReplaceAll(err.Error(), `"`, ""))
	}
	if err := checkRSASize(jwk.Key); err != nil {
		return nil, invalid("the jwk header: " + err.Error())
	}
	signed, err := jws.Verify(jwk.Key)
	if err != nil {
		return nil, invalid("the signature does not verify with the jwk header")
	}
	if !bytes.Equal(signed, pb) {
		return nil, invalid("the signed payload is not the payload read")
	}
	if out.JKT, err = jose.Thumbprint(jwk.Key); err != nil {
		return nil, invalid("the jwk header has no thumbprint")
	}
	return out, nil
}

// AccessTokenHash is the ath of a proof sent with token: base64url, without
// padding, of the SHA-256 of its ASCII (RFC 9449 §4.2).
func AccessTokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func joinAlgs(algs []gojose.SignatureAlgorithm) string {
	s := make([]string, len(algs))
	for i, a := range algs {
		s[i] = string(a)
	}
	return strings.Join(s, ", ")
}

// isToken reports whether s is an RFC 9110 token, the syntax of a method.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// object decodes a JSON object into its members. Duplicate member names
// are refused (RFC 7515 §5.2 lets a JWS parser refuse them, and two parsers
// that resolve them differently would disagree on what was signed), as is
// anything after the object.
func object(data []byte) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, errors.New("malformed")
	}
	m := make(map[string]json.RawMessage, 8)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, errors.New("malformed")
		}
		name, ok := tok.(string)
		if !ok {
			return nil, errors.New("malformed")
		}
		if _, dup := m[name]; dup {
			return nil, errors.New("a member name is repeated")
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, errors.New("malformed")
		}
		m[name] = v
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, errors.New("malformed")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the object")
	}
	return m, nil
}

// str is member name of m as a string: absent is ok == false; present and
// anything but a JSON string (null included) is an error.
func str(m map[string]json.RawMessage, name string) (s string, ok bool, err error) {
	v, ok := m[name]
	if !ok {
		return "", false, nil
	}
	if len(v) == 0 || v[0] != '"' {
		return "", true, errors.New("not a string")
	}
	if err := json.Unmarshal(v, &s); err != nil {
		return "", true, errors.New("not a string")
	}
	return s, true, nil
}

// numericDate is a JSON number of seconds since the epoch (RFC 7519 §2),
// possibly with a fraction.
func numericDate(v json.RawMessage) (time.Time, error) {
	if len(v) == 0 || (v[0] != '-' && (v[0] < '0' || v[0] > '9')) {
		return time.Time{}, errors.New("not a number")
	}
	s := string(v)
	// A bound far beyond any clock keeps the conversion exact enough and
	// free of overflow.
	const limit = 1 << 40
	if !strings.ContainsAny(s, ".eE") {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n > limit || n < -limit {
			return time.Time{}, errors.New("out of range")
		}
		return time.Unix(n, 0), nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || f > limit || f < -limit {
		return time.Time{}, errors.New("out of range")
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), nil
}
