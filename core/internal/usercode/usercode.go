// Package usercode makes and reads the user codes of the device
// authorization grant (RFC 8628 §6.1): 8 letters from an alphabet of 20
// consonants, shown as XXXX-XXXX and accepted however the user types them.
//
// The alphabet has no vowels (no words spelled by accident), no digits and
// none of the letters that read as digits, so what a user copies from a TV
// screen is what was shown. 20^8 ≈ 2^34.6 codes: with the verification
// page throttled per address, guessing a live code in its lifetime is
// hopeless (RFC 8628 §5.1).
package usercode

import (
	"crypto/rand"
	"math/big"
	"strings"
)

// Alphabet is the letters a code is made of.
const Alphabet = "BCDFGHJKLMNPQRSTVWXZ"

// Len is a code's length in letters, without the dash.
const Len = 8

// MaxInput bounds what Normalize reads: a code with a generous amount of
// separators, never a megabyte of them.
const MaxInput = 64

// New returns a fresh code in canonical form (8 letters, no dash), each
// letter uniform over the alphabet (crypto/rand, no modulo bias).
func New() (string, error) {
	var b [Len]byte
	n := big.NewInt(int64(len(Alphabet)))
	for i := range b {
		v, err := rand.Int(rand.Reader, n)
		if err != nil {
			return "", err
		}
		b[i] = Alphabet[v.Int64()]
	}
	return string(b[:]), nil
}

// Format shows a canonical code as the user should see it: XXXX-XXXX.
func Format(code string) string {
	if len(code) != Len {
		return code
	}
	return code[:Len/2] + "-" + code[Len/2:]
}

// Normalize reads a code as a user typed it: letters in either case, with
// any dashes and spaces (the shown dash, a space instead, none). It
// returns the canonical code, or false when what remains is not 8 letters
// of the alphabet. Two inputs normalise to one code only if they differ in
// case and separators alone.
func Normalize(in string) (string, bool) {
	if len(in) > MaxInput {
		return "", false
	}
	var b [Len]byte
	n := 0
	for i := 0; i < len(in); i++ {
		c := in[i]
		switch {
		case c == '-' || c == ' ' || c == '\t':
			continue
		case 'a' <= c && c <= 'z':
			c -= 'a' - 'A'
		}
		if n == Len || strings.IndexByte(Alphabet, c) < 0 {
			return "", false
		}
		b[n] = c
		n++
	}
	if n != Len {
		return "", false
	}
	return string(b[:]), true
}
