package core

import (
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strings"
	"sync"
	"unsafe"

	"golang.org/x/crypto/chacha20poly1305"
)

// Keys is one generation of key material, the original library's crypt_key
// and sign_key. CryptKey is the root of the encryption keys (access tokens,
// pending authorization requests), SignKey of the MAC keys (codes, refresh
// tokens, CSRF tokens). Each is at least 32 bytes from a CSPRNG; every key
// the server uses is derived from them with HKDF and a per-purpose label, so
// no two purposes share a key.
type Keys struct {
	// ID names the generation inside tokens. It must never be reused for
	// other key material. Empty: derived from the key material.
	ID       string
	CryptKey []byte
	SignKey  []byte
}

// GoString is String: %#v prints no key either.
func (k Keys) GoString() string { return k.String() }

// String names the generation without its key material.
func (k Keys) String() string {
	return "core.Keys{ID:" + k.ID + " CryptKey:[redacted] SignKey:[redacted]}"
}

// Token type prefixes. The prefix and the key id are authenticated (as AEAD
// associated data, or inside the MAC), so a token of one type can never be
// accepted as another.
const (
	prefixAccess  = "at2"
	prefixRefresh = "rt2"
	prefixCode    = "ac2"
	prefixPending = "pr2"
	prefixLogin   = "ls2"

	// maxTokenLen bounds every token and code the server reads, and
	// maxHandleLen a login handle (it carries state and redirect URI);
	// what the server mints stays below them (scope, state and additional
	// info are bounded accordingly).
	maxTokenLen  = 8192
	maxHandleLen = 16384
	maxScopeLen  = 1024
	maxStateLen  = 2048
	maxInfoLen   = 1024
	randBytes    = 32 // 256 bits for codes, refresh tokens, secrets
)

var errBadToken = errors.New("oauth2kit: invalid token")

type keyGen struct {
	id      string
	atAEAD  cipher.AEAD // access tokens
	prAEAD  cipher.AEAD // pending authorization requests
	rtKey   []byte      // refresh token signatures
	codeKey []byte      // code signatures
	csrfKey []byte      // CSRF tokens and session binding
	chkKey  []byte      // self-check tags inside codes and refresh tokens
	macPool sync.Pool   // of *macState for the four MAC keys
}

type macState struct {
	rt, code, csrf, chk hash.Hash
	in, sum             []byte // scratch: see mac
}

// ring holds every key generation the server accepts; primary mints.
type ring struct {
	primary *keyGen
	byID    map[string]*keyGen
}

func deriveKey(root []byte, label string) ([]byte, error) {
	return hkdf.Key(sha256.New, root, nil, "oauth2kit/v1/"+label, 32)
}

func newKeyGen(k Keys) (*keyGen, error) {
	if len(k.CryptKey) < 32 || len(k.SignKey) < 32 {
		return nil, errors.New("oauth2kit: CryptKey and SignKey must be at least 32 bytes")
	}
	id := k.ID
	if id == "" {
		// A stable id from the key material; it reveals nothing usable
		// about the keys (HKDF output under its own label).
		b, err := deriveKey(append(append([]byte{}, k.CryptKey...), k.SignKey...), "kid")
		if err != nil {
			return nil, err
		}
		id = hex.EncodeToString(b[:4])
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') || len(id) > 32 {
			return nil, fmt.Errorf("oauth2kit: key id %q: use 1-32 characters of [A-Za-z0-9_-]", id)
		}
	}
	g := &keyGen{id: id}
	var err error
	mk := func(root []byte, label string) []byte {
		if err != nil {
			return nil
		}
		var b []byte
		b, err = deriveKey(root, label)
		return b
	}
	atKey := mk(k.CryptKey, "at/aead")
	prKey := mk(k.CryptKey, "pending/aead")
	g.rtKey = mk(k.SignKey, "rt/hmac")
	g.codeKey = mk(k.SignKey, "code/hmac")
	g.csrfKey = mk(k.SignKey, "csrf")
	g.chkKey = mk(k.SignKey, "opaque/check")
	if err != nil {
		return nil, err
	}
	if g.atAEAD, err = chacha20poly1305.NewX(atKey); err != nil {
		return nil, err
	}
	if g.prAEAD, err = chacha20poly1305.NewX(prKey); err != nil {
		return nil, err
	}
	g.macPool.New = func() any {
		return &macState{
			rt:   hmac.New(sha256.New, g.rtKey),
			code: hmac.New(sha256.New, g.codeKey),
			csrf: hmac.New(sha256.New, g.csrfKey),
			chk:  hmac.New(sha256.New, g.chkKey),
		}
	}
	return g, nil
}

func newRing(primary Keys, verify []Keys) (*ring, error) {
	p, err := newKeyGen(primary)
	if err != nil {
		return nil, err
	}
	r := &ring{primary: p, byID: map[string]*keyGen{p.id: p}}
	for _, k := range verify {
		g, err := newKeyGen(k)
		if err != nil {
			return nil, err
		}
		if _, dup := r.byID[g.id]; dup {
			return nil, fmt.Errorf("oauth2kit: duplicate key id %q", g.id)
		}
		r.byID[g.id] = g
	}
	return r, nil
}

// mac computes HMAC-SHA256(key selected by which, parts...) and appends
// it to dst.
//
// The hashes are interfaces, so anything handed to them escapes: a
// []byte(p) conversion or a stack buffer would be a heap allocation on
// every call (nine per code flow). The input and the sum go through the
// pooled state's own buffers instead, and the sum is copied out.
func (g *keyGen) mac(dst []byte, which byte, parts ...string) []byte {
	st := g.macPool.Get().(*macState)
	var h hash.Hash
	switch which {
	case 'r':
		h = st.rt
	case 'c':
		h = st.code
	case 'k':
		h = st.chk
	default:
		h = st.csrf
	}
	h.Reset()
	in := st.in[:0]
	for i, p := range parts {
		if i > 0 {
			in = append(in, 0) // unambiguous separation
		}
		in = append(in, p...)
	}
	h.Write(in)
	st.sum = h.Sum(st.sum[:0])
	dst = append(dst, st.sum...)
	if cap(in) <= 4096 { // do not pin a rare huge input in the pool
		st.in = in
	}
	g.macPool.Put(st)
	return dst
}

// randomToken returns n random bytes, base64url without padding.
func randomToken(n int) (string, error) {
	var buf [32]byte // every caller asks for 32 bytes or fewer: no heap copy
	b := buf[:]
	if n > len(buf) {
		b = make([]byte, n)
	}
	b = b[:n]
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// newOpaque mints an opaque code or refresh token "<prefix>.<kid>.<random>"
// and returns it with the signature the store keeps.
func (r *ring) newOpaque(prefix string) (tok, sig string, err error) {
	g := r.primary
	var raw [randBytes + tagBytes]byte
	if _, err := rand.Read(raw[:randBytes]); err != nil {
		return "", "", err
	}
	g.tag(raw[randBytes:randBytes], prefix, raw[:randBytes])
	// Built in one stack buffer and converted once (prefix and key id are
	// short: at most 3 and 32 bytes).
	var text [4 + 33 + (randBytes+tagBytes+2)/3*4]byte
	b := append(append(append(append(text[:0], prefix...), '.'), g.id...), '.')
	tok = string(base64.RawURLEncoding.AppendEncode(b, raw[:]))
	return tok, g.sigOf(prefix, tok), nil
}

// tagBytes is the length of the self-check tag in codes and refresh
// tokens: a MAC of the random part, so a forged or mistyped token is
// refused without a storage lookup (a guessing flood never reaches the
// database).
const tagBytes = 16

func (g *keyGen) tag(dst []byte, prefix string, rnd []byte) []byte {
	var buf [sha256.Size]byte
	m := g.mac(buf[:0], 'k', prefix, string(rnd))
	return append(dst, m[:tagBytes]...)
}

func (g *keyGen) sigOf(prefix, tok string) string {
	which := byte('r')
	if prefix == prefixCode {
		which = 'c'
	}
	var buf [sha256.Size]byte
	return base64.RawURLEncoding.EncodeToString(g.mac(buf[:0], which, tok))
}

// opaqueSig returns the stored signature of an opaque token of the wanted
// type, or false when the token is not of that shape or names an unknown
// key. The random part is never stored, so a database leak yields no usable
// token.
func (r *ring) opaqueSig(prefix, tok string) (string, bool) {
	if len(tok) > maxTokenLen {
		return "", false
	}
	typ, kid, body, ok := split3(tok)
	if !ok || typ != prefix || base64.RawURLEncoding.DecodedLen(len(body)) != randBytes+tagBytes {
		return "", false
	}
	g := r.byID[kid]
	if g == nil {
		return "", false
	}
	var raw [randBytes + tagBytes]byte
	if n, err := strictB64.Decode(raw[:], bytesOf(body)); err != nil || n != len(raw) {
		return "", false
	}
	var want [tagBytes]byte
	if !hmac.Equal(g.tag(want[:0], prefix, raw[:randBytes]), raw[randBytes:]) {
		return "", false
	}
	return g.sigOf(prefix, tok), true
}

// legacyCodeSigs returns the signatures a draft-10 style code
// "<grant id>.<secret>" may have under each key generation (the format has
// no key id; such codes live 60 seconds, so a rotation only races the few
// in flight).
func (r *ring) legacyCodeSigs(code string) []string {
	if len(code) > 256 || strings.Count(code, ".") != 1 || !isB64URL(strings.Replace(code, ".", "", 1)) {
		return nil
	}
	sigs := []string{r.primary.sigOf(prefixCode, code)}
	for _, g := range r.byID {
		if g != r.primary {
			sigs = append(sigs, g.sigOf(prefixCode, code))
		}
	}
	return sigs
}

func split3(tok string) (a, b, c string, ok bool) {
	i := strings.IndexByte(tok, '.')
	if i < 0 {
		return
	}
	j := strings.IndexByte(tok[i+1:], '.')
	if j < 0 {
		return
	}
	j += i + 1
	if strings.IndexByte(tok[j+1:], '.') >= 0 {
		return
	}
	return tok[:i], tok[i+1 : j], tok[j+1:], i > 0 && j > i+1 && j < len(tok)-1
}

func isB64URL(s string) bool {
	// A table lookup per byte: this runs over every access token the
	// resource check opens.
	for i := 0; i < len(s); i++ {
		if !b64URLChars[s[i]] {
			return false
		}
	}
	return len(s) > 0
}

// b64URLChars marks [A-Za-z0-9_-].
var b64URLChars = func() (tab [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		tab[c], tab[c-'a'+'A'] = true, true
	}
	for c := '0'; c <= '9'; c++ {
		tab[c] = true
	}
	tab['-'], tab['_'] = true, true
	return tab
}()

// seal encrypts plaintext under the primary key with header
// "<prefix>.<kid>." as associated data.
func (r *ring) seal(prefix string, pt []byte) (string, error) {
	g := r.primary
	aead := g.atAEAD
	if prefix == prefixPending {
		aead = g.prAEAD
	}
	hdrLen := len(prefix) + len(g.id) + 2
	rawLen := chacha20poly1305.NonceSizeX + len(pt) + aead.Overhead()
	encLen := base64.RawURLEncoding.EncodedLen(rawLen)
	// One allocation for everything: the token text (header, then the
	// base64 of nonce and ciphertext) at the front, the binary nonce and
	// ciphertext after it. The encoding writes only below hdrLen+encLen,
	// so it never overwrites the bytes it reads. Minting runs on every
	// token response; this replaces three allocations and a copy.
	buf := make([]byte, hdrLen+encLen+rawLen)
	raw := buf[hdrLen+encLen : hdrLen+encLen+chacha20poly1305.NonceSizeX : hdrLen+encLen+rawLen]
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	// The header is authenticated, so type, version and key id cannot be
	// swapped (a pending request can never pass as an access token).
	hdr := append(append(append(append(buf[:0:hdrLen], prefix...), '.'), g.id...), '.')
	raw = aead.Seal(raw, raw, pt, hdr)
	out := base64.RawURLEncoding.AppendEncode(buf[:hdrLen:hdrLen+encLen], raw)
	// buf is never written again and nobody else holds it.
	return stringOf(out), nil
}

// open decrypts a token sealed by seal under any known key generation. It
// selects exactly one key by the token's key id; every failure is the same
// error.
func (r *ring) open(prefix, tok string, buf []byte) ([]byte, error) {
	if len(tok) > maxTokenLen && (prefix != prefixPending || len(tok) > maxHandleLen) {
		return nil, errBadToken
	}
	typ, kid, body, ok := split3(tok)
	if !ok || typ != prefix {
		return nil, errBadToken
	}
	g := r.byID[kid]
	if g == nil {
		return nil, errBadToken
	}
	aead := g.atAEAD
	if prefix == prefixPending {
		aead = g.prAEAD
	}
	n := base64.RawURLEncoding.DecodedLen(len(body))
	// The decoder skips CR and LF, which would give a token a second
	// spelling; every other byte outside the alphabet fails strictB64. Two
	// IndexByte scans (vectorised) cost a fraction of a per-byte
	// isB64URL(body) on every resource request.
	if n < chacha20poly1305.NonceSizeX+aead.Overhead() || strings.IndexByte(body, '\n') >= 0 || strings.IndexByte(body, '\r') >= 0 {
		return nil, errBadToken
	}
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	raw := buf[:n]
	if m, err := strictB64.Decode(raw, bytesOf(body)); err != nil || m != n {
		return nil, errBadToken
	}
	hdrLen := len(typ) + len(kid) + 2
	pt, err := aead.Open(raw[chacha20poly1305.NonceSizeX:chacha20poly1305.NonceSizeX], raw[:chacha20poly1305.NonceSizeX], raw[chacha20poly1305.NonceSizeX:], bytesOf(tok[:hdrLen]))
	if err != nil {
		return nil, errBadToken
	}
	return pt, nil
}

// strictB64 refuses non-zero padding bits, so that no second spelling of a
// token (its last character changed in the bits base64 does not use) opens.
var strictB64 = base64.RawURLEncoding.Strict()

// fieldWriter and fieldReader encode the compact binary plaintexts: a
// sequence of uvarint-length-prefixed strings and uvarints.
type fieldWriter struct{ b []byte }

func (w *fieldWriter) str(s string) {
	w.b = binary.AppendUvarint(w.b, uint64(len(s)))
	w.b = append(w.b, s...)
}
func (w *fieldWriter) num(n int64) { w.b = binary.AppendVarint(w.b, n) }

type fieldReader struct {
	s   string // the whole plaintext as one string: one allocation
	off int
	bad bool
}

func (r *fieldReader) uvarint() uint64 {
	var x uint64
	var shift uint
	for i := 0; i < binary.MaxVarintLen64; i++ {
		if r.off >= len(r.s) {
			r.bad = true
			return 0
		}
		c := r.s[r.off]
		r.off++
		if c < 0x80 {
			if i == binary.MaxVarintLen64-1 && c > 1 {
				r.bad = true // overflows 64 bits
				return 0
			}
			return x | uint64(c)<<shift
		}
		x |= uint64(c&0x7f) << shift
		shift += 7
	}
	r.bad = true
	return 0
}

func (r *fieldReader) str() string {
	n := r.uvarint()
	if r.bad || n > uint64(len(r.s)-r.off) {
		r.bad = true
		return ""
	}
	s := r.s[r.off : r.off+int(n)]
	r.off += int(n)
	return s
}

func (r *fieldReader) num() int64 {
	u := r.uvarint()
	x := int64(u >> 1)
	if u&1 != 0 {
		x = ^x
	}
	return x
}

// bytesOf views s as a byte slice without copying. Only for callees that
// read their input and do not keep it (base64 decoding, AEAD associated
// data): the token check runs on every API request and must not allocate a
// copy of every token it reads.
func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// stringOf views b as a string without copying. Only for a buffer that is
// never written again and that nobody else holds (the plaintext open
// returns when called with a nil buf).
func stringOf(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
