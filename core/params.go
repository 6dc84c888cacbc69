package core

import (
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
	// dpopJKT is the DPoP key thumbprint of a token request's verified
	// proof (RFC 9449), set by Token before the grant runs: the grant binds
	// what it issues to it.
	dpopJKT string
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
	// Token exchange (RFC 8693 §2.1); the kit issues a token for one
	// audience, so a second one is refused rather than dropped.
	"subject_token": true, "subject_token_type": true, "actor_token": true, "actor_token_type": true,
	"requested_token_type": true, "audience": true,
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

func isForm(r Request) bool {
	ct := firstHeader(r, "Content-Type")
	ct, _, _ = strings.Cut(ct, ";")
	return strings.EqualFold(strings.TrimSpace(ct), "application/x-www-form-urlencoded")
}

// Form field names of the login and consent forms, beside the parser
// that reads them.
const (
	FieldRequest  = "oauth2kit_request"
	FieldCSRF     = "csrf_token"
	FieldDecision = "decision"
)

// formError maps a form parsing failure to its RFC error.
func formError(err error) *oauthError {
	switch err {
	case errTooLarge:
		return oerr(413, ErrInvalidRequest, "request body too large")
	case errRepeated:
		return badRequest("a parameter is repeated")
	case errTooMany:
		return badRequest("too many parameters")
	case errValueLarge:
		return badRequest("a parameter value is too long")
	case errBadContentType:
		return badRequest("the body must be application/x-www-form-urlencoded")
	}
	return badRequest("malformed parameters")
}

// readPost reads the form of a token, revocation or introspection request
// (the endpoint table let only POST through).
func (s *Server) readPost(r Request, f *params) *oauthError {
	// A secret in the URI ends up in logs and histories: refuse it, even
	// when the body authenticates properly (OAuth 2.1 §2.4.1).
	if q := r.RawQuery(); q != "" {
		var qp params
		if err := parseParams(q, s.cfg.Limits.MaxParams, s.cfg.Limits.MaxValueLength, &qp); err != nil {
			return formError(err)
		}
		if qp.get("client_secret") != "" {
			return badRequest("client_secret must not be sent in the URI")
		}
	}
	if err := readForm(r, s.cfg.Limits.MaxBodyBytes, s.cfg.Limits.MaxParams, s.cfg.Limits.MaxValueLength, f); err != nil {
		return formError(err)
	}
	return nil
}
