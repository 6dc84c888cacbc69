package core

import (
	"slices"
	"strings"
)

// validScopeToken: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ).
func validScopeToken(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c == 0x22 || c == 0x5c || c > 0x7e {
			return false
		}
	}
	return true
}

// parseScope splits a scope parameter into its canonical form: sorted,
// without duplicates. It rejects malformed tokens and separators other
// than single spaces.
func parseScope(s string) ([]string, bool) {
	if s == "" {
		return nil, true
	}
	parts := strings.Split(s, " ")
	for _, p := range parts {
		if !validScopeToken(p) {
			return nil, false
		}
	}
	slices.Sort(parts)
	return slices.Compact(parts), true
}

// narrowScope returns the canonical scope for a request that asks for
// requested out of granted: requested if it is a subset of granted,
// granted itself when requested is empty, ok=false otherwise.
func narrowScope(requested, granted string) (string, bool) {
	g, ok := parseScope(granted)
	if !ok {
		return "", false
	}
	if requested == "" {
		return strings.Join(g, " "), true
	}
	r, ok := parseScope(requested)
	if !ok {
		return "", false
	}
	for _, s := range r {
		if _, found := slices.BinarySearch(g, s); !found {
			return "", false
		}
	}
	return strings.Join(r, " "), true
}

// unionScope returns the canonical union of two scopes (malformed parts
// of a are dropped: it comes from storage).
func unionScope(a, b string) string {
	all := strings.Fields(a + " " + b)
	all = slices.DeleteFunc(all, func(s string) bool { return !validScopeToken(s) })
	slices.Sort(all)
	return strings.Join(slices.Compact(all), " ")
}

// hasScope reports whether the space-delimited scope contains want.
func hasScope(scope, want string) bool {
	for scope != "" {
		var s string
		s, scope, _ = strings.Cut(scope, " ")
		if s == want {
			return true
		}
	}
	return false
}
