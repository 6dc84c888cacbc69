package core

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"io"
	"mime"
	"net/url"
	"slices"
	"strings"
)

// params is a parsed query or form: at most one value per name. Parsing
// rejects repeated names outright (RFC 6749 §3.1: parameters MUST NOT be
// included more than once), so no handler can pick the "first" of two
// conflicting values.
type params struct {
	keys []string
	vals []string
}

// get returns the value of name; an empty value is the same as absent.
func (p *params) get(name string) string {
	for i, k := range p.keys {
		if k == name {
			return p.vals[i]
		}
	}
	return ""
}

// Values returns a copy as url.Values (for the app's login handler).
func (p *params) values() url.Values {
	v := make(url.Values, len(p.keys))
	for i, k := range p.keys {
		v[k] = []string{p.vals[i]}
	}
	return v
}

var (
	errTooLarge   = errors.New("request too large")
	errRepeated   = errors.New("repeated parameter")
	errMalformed  = errors.New("malformed parameters")
	errTooMany    = errors.New("too many parameters")
	errValueLarge = errors.New("parameter value too long")
)

// parseParams parses application/x-www-form-urlencoded data with limits.
// Empty values are dropped (RFC 6749 §3.1: treated as omitted); a repeated
// name is errRepeated.
func parseParams(s string, maxParams, maxValue int, dst *params) error {
	return parseParamsDups(s, maxParams, maxValue, dst, nil)
}

// parseParamsDups is parseParams that, given dups, records repeated names
// there and keeps the first value instead of failing: the authorization
// endpoint must still find client_id and redirect_uri to know whether it
// may redirect the error.
func parseParamsDups(s string, maxParams, maxValue int, dst *params, dups *[]string) error {
	if dst.keys == nil && s != "" {
		// Keys and values share one backing array sized from the '&'
		// count (bounded by the limit): growing two slices one append at
		// a time cost eight allocations on an authorization request.
		n := max(1, min(strings.Count(s, "&")+1, maxParams))
		buf := make([]string, 2*n)
		dst.keys, dst.vals = buf[:0:n], buf[n:n:2*n]
	}
	seen := 0
	for s != "" {
		var kv string
		kv, s, _ = strings.Cut(s, "&")
		if kv == "" {
			continue
		}
		seen++
		if seen > maxParams {
			return errTooMany
		}
		k, v, _ := strings.Cut(kv, "=")
		if len(v) > 3*maxValue || len(k) > 256 {
			return errValueLarge
		}
		var err error
		if k, err = unescape(k); err != nil {
			return errMalformed
		}
		if v, err = unescape(v); err != nil {
			return errMalformed
		}
		if len(v) > maxValue {
			return errValueLarge
		}
		if slices.Contains(dst.keys, k) {
			if !definedParams[k] {
				continue // unknown parameters are ignored, repeated or not
			}
			if dups == nil {
				return errRepeated
			}
			*dups = append(*dups, k)
			continue
		}
		dst.keys = append(dst.keys, k)
		dst.vals = append(dst.vals, v)
	}
	// Drop empty values only now, so "a=&a=x" still counts as repeated.
	j := 0
	for i := range dst.keys {
		if dst.vals[i] != "" {
			dst.keys[j], dst.vals[j] = dst.keys[i], dst.vals[i]
			j++
		}
	}
	dst.keys, dst.vals = dst.keys[:j], dst.vals[:j]
	return nil
}

// definedParams are the parameters this server gives a meaning to; only
// these may not be repeated (OAuth 2.1 §3.1). Others (RFC 8707 resource,
// an app's own fields) are ignored when repeated, keeping the first value.
var definedParams = map[string]bool{
	"response_type": true, "client_id": true, "redirect_uri": true, "scope": true, "state": true,
	"code_challenge": true, "code_challenge_method": true, "grant_type": true, "code": true,
	"code_verifier": true, "refresh_token": true, "client_secret": true, "token": true,
	"token_type_hint": true, "access_token": true, "oauth_token": true, "username": true,
	"password": true, FieldDecision: true, FieldRequest: true, FieldCSRF: true,
}

// unescape is url.QueryUnescape without the allocation for the common case
// of nothing to unescape.
func unescape(s string) (string, error) {
	if strings.IndexByte(s, '%') < 0 && strings.IndexByte(s, '+') < 0 {
		return s, nil
	}
	return url.QueryUnescape(s)
}

// readForm reads a form body: the content type must be
// application/x-www-form-urlencoded (UTF-8 if a charset is named).
func readForm(r Request, limit int64, maxParams, maxValue int, dst *params) error {
	ct := firstHeader(r, "Content-Type")
	// Fast path for what nearly every client sends: the exact media type
	// without parameters is accepted as it is (mime.ParseMediaType would
	// allocate a parameter map on every token request to say the same).
	if ct != "application/x-www-form-urlencoded" {
		mt, ps, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/x-www-form-urlencoded" {
			return errBadContentType
		}
		if cs, ok := ps["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
			return errBadContentType
		}
	}
	body, err := readBody(r, limit)
	if err != nil {
		return err
	}
	return parseParams(body, maxParams, maxValue, dst)
}

var errBadContentType = errors.New("content type must be application/x-www-form-urlencoded")

func readBody(r Request, limit int64) (string, error) {
	b := r.Body()
	if b == nil {
		return "", nil
	}
	data, err := io.ReadAll(io.LimitReader(b, limit+1))
	if err != nil {
		return "", errMalformed
	}
	if int64(len(data)) > limit {
		return "", errTooLarge
	}
	// data is ours alone (io.ReadAll allocated it) and is never written
	// again: view it as a string instead of copying every body.
	return stringOf(data), nil
}

func firstHeader(r Request, name string) string {
	if v := r.Header(name); len(v) > 0 {
		return v[0]
	}
	return ""
}

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

// NarrowScope returns the canonical scope for a request that asks for
// requested out of granted: requested if it is a subset of granted,
// granted itself when requested is empty, ok=false otherwise.
func NarrowScope(requested, granted string) (string, bool) {
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

// HasScope reports whether the space-delimited scope contains want.
func HasScope(scope, want string) bool {
	for scope != "" {
		var s string
		s, scope, _ = strings.Cut(scope, " ")
		if s == want {
			return true
		}
	}
	return false
}

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

// VerifyPKCE reports whether verifier matches challenge under method
// ("S256", or "plain" when the caller allows it). Malformed inputs never
// match; the length check runs before any hashing.
func VerifyPKCE(verifier, challenge, method string) bool {
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

func isLoopbackHost(h string) bool {
	return h == "127.0.0.1" || h == "::1" || h == "localhost"
}

// MatchRedirectURI reports whether requested may be used for the registered
// redirect URI: byte-for-byte equality (no case folding, no decoding, no
// normalisation), except that for an http loopback IP literal (127.0.0.1 or
// [::1]) the port may differ (RFC 8252 §7.3).
func MatchRedirectURI(registered, requested string) bool {
	if registered == requested {
		return true
	}
	for _, host := range []string{"http://127.0.0.1", "http://[::1]"} {
		rr, ok1 := strings.CutPrefix(registered, host)
		qq, ok2 := strings.CutPrefix(requested, host)
		if !ok1 || !ok2 {
			continue
		}
		rr, ok1 = stripPort(rr)
		qq, ok2 = stripPort(qq)
		return ok1 && ok2 && rr == qq
	}
	return false
}

// stripPort removes a leading ":digits" and demands that what follows
// starts the path or query (or is empty), so "http://127.0.0.1.evil" or
// "http://127.0.0.1@evil" never match.
func stripPort(s string) (string, bool) {
	if strings.HasPrefix(s, ":") {
		i := 1
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == 1 || i > 6 {
			return "", false
		}
		s = s[i:]
	}
	if s != "" && s[0] != '/' && s[0] != '?' {
		return "", false
	}
	return s, true
}

// ValidateRedirectURI checks a URI offered for registration: absolute, no
// fragment, no userinfo, and http only for loopback hosts (RFC 9700 §2.6,
// OAuth 2.1 §2.3). Custom schemes (native apps) are allowed.
func ValidateRedirectURI(s string) error {
	if len(s) > 2000 {
		return errors.New("redirect URI too long")
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= 0x20 || s[i] >= 0x7f || s[i] == '\\' {
			return errors.New("redirect URI contains a space, control, backslash or non-ASCII character")
		}
	}
	u, err := url.Parse(s)
	if err != nil {
		return errors.New("redirect URI does not parse")
	}
	switch {
	case !u.IsAbs():
		return errors.New("redirect URI must be absolute")
	case u.Fragment != "" || strings.Contains(s, "#"):
		return errors.New("redirect URI must not contain a fragment")
	case u.User != nil:
		return errors.New("redirect URI must not contain userinfo")
	case u.Scheme == "http" && !isLoopbackHost(u.Hostname()):
		return errors.New("http redirect URIs are allowed only for loopback hosts; use https")
	case (u.Scheme == "http" || u.Scheme == "https") && u.Host == "":
		return errors.New("redirect URI has no host")
	case u.Scheme == "javascript" || u.Scheme == "data" || u.Scheme == "file" || u.Scheme == "vbscript":
		return errors.New("redirect URI scheme not allowed")
	}
	return nil
}
