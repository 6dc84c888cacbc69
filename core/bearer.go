package core

import "strings"

// parseBearer extracts the token from an "Authorization: Bearer <token>"
// value: the scheme is case-insensitive, followed by one or more spaces and
// a token68 (RFC 7235 §2.1). It reports false for anything else.
func parseBearer(h string) (string, bool) { return parseAuthScheme(h, "Bearer") }

func hasScheme(h, scheme string) bool {
	return len(h) >= len(scheme) && strings.EqualFold(h[:len(scheme)], scheme) &&
		(len(h) == len(scheme) || h[len(scheme)] == ' ')
}

func parseAuthScheme(h, scheme string) (string, bool) {
	t, ok := cutScheme(h, scheme)
	if !ok || !isToken68(t) {
		return "", false
	}
	return t, true
}

// isToken68: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
// It runs over every token of every API request: one table lookup per
// byte instead of a chain of range tests.
func isToken68(t string) bool {
	i := 0
	for i < len(t) && token68Chars[t[i]] {
		i++
	}
	if i == 0 {
		return false
	}
	for i < len(t) && t[i] == '=' {
		i++
	}
	return i == len(t)
}

// token68Chars marks ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/".
var token68Chars = func() (tab [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		tab[c], tab[c-'a'+'A'] = true, true
	}
	for c := '0'; c <= '9'; c++ {
		tab[c] = true
	}
	for _, c := range "-._~+/" {
		tab[c] = true
	}
	return tab
}()

// cutScheme returns the credentials after "<scheme> " (scheme compared
// case-insensitively).
func cutScheme(h, scheme string) (string, bool) {
	if len(h) <= len(scheme)+1 || !strings.EqualFold(h[:len(scheme)], scheme) || h[len(scheme)] != ' ' {
		return "", false
	}
	return strings.TrimLeft(h[len(scheme)+1:], " "), true
}
