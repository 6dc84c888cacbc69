package core

import (
	"errors"
	"strconv"
)

// Error codes of RFC 6749, 6750, 7009.
const (
	ErrInvalidRequest          = "invalid_request"
	ErrInvalidClient           = "invalid_client"
	ErrInvalidGrant            = "invalid_grant"
	ErrUnauthorizedClient      = "unauthorized_client"
	ErrUnsupportedGrantType    = "unsupported_grant_type"
	ErrUnsupportedResponseType = "unsupported_response_type"
	ErrInvalidScope            = "invalid_scope"
	ErrAccessDenied            = "access_denied"
	ErrServerError             = "server_error"
	ErrTemporarilyUnavailable  = "temporarily_unavailable"
	ErrInvalidToken            = "invalid_token"
	ErrInsufficientScope       = "insufficient_scope"
	ErrExpiredToken            = "expired_token" // draft 10
)

// oauthError is an error answer. Its description is written by this package
// only (never an internal cause) and restricted to the characters RFC 6749
// allows in error_description.
type oauthError struct {
	status int
	code   string
	desc   string
	// challenge is the WWW-Authenticate value for 401s.
	challenge string
	// retryAfter (seconds) for 429/503.
	retryAfter int
}

func (e *oauthError) Error() string { return e.code + ": " + e.desc }

func oerr(status int, code, desc string) *oauthError {
	return &oauthError{status: status, code: code, desc: desc}
}

func badRequest(desc string) *oauthError { return oerr(400, ErrInvalidRequest, desc) }
func badGrant(desc string) *oauthError   { return oerr(400, ErrInvalidGrant, desc) }

// storageError maps a storage failure to the wire: transient failures to 503
// temporarily_unavailable, anything else to 500 server_error. The cause
// goes to the log only.
func storageError(err error) *oauthError {
	if errors.Is(err, ErrUnavailable) {
		e := oerr(503, ErrTemporarilyUnavailable, "the service is temporarily unavailable; retry later")
		e.retryAfter = 1
		return e
	}
	return oerr(500, ErrServerError, "the server could not complete the request")
}

// SafeDescription reduces s to the characters allowed in error_description
// (%x20-21 / %x23-5B / %x5D-7E), replacing others with '?'.
func SafeDescription(s string) string {
	ok := true
	for i := 0; i < len(s); i++ {
		if !descChar(s[i]) {
			ok = false
			break
		}
	}
	if ok {
		return s
	}
	b := []byte(s)
	for i := range b {
		if !descChar(b[i]) {
			b[i] = '?'
		}
	}
	return string(b)
}

func descChar(c byte) bool {
	return c >= 0x20 && c <= 0x7e && c != '"' && c != '\\'
}

// appendJSONString appends s as a JSON string literal.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20 || c == '<' || c == '>' || c == '&' || c == 0x7f:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// jsonObj builds a flat JSON object without reflection.
type jsonObj struct{ b []byte }

func newJSON(size int) *jsonObj {
	o := &jsonObj{b: make([]byte, 0, size)}
	o.b = append(o.b, '{')
	return o
}

func (o *jsonObj) key(k string) {
	if len(o.b) > 1 {
		o.b = append(o.b, ',')
	}
	o.b = appendJSONString(o.b, k)
	o.b = append(o.b, ':')
}

func (o *jsonObj) str(k, v string) {
	o.key(k)
	o.b = appendJSONString(o.b, v)
}

func (o *jsonObj) strIf(k, v string) {
	if v != "" {
		o.str(k, v)
	}
}

func (o *jsonObj) num(k string, v int64) {
	o.key(k)
	o.b = strconv.AppendInt(o.b, v, 10)
}

func (o *jsonObj) boolean(k string, v bool) {
	o.key(k)
	o.b = strconv.AppendBool(o.b, v)
}

func (o *jsonObj) strList(k string, vs []string) {
	o.key(k)
	o.b = append(o.b, '[')
	for i, v := range vs {
		if i > 0 {
			o.b = append(o.b, ',')
		}
		o.b = appendJSONString(o.b, v)
	}
	o.b = append(o.b, ']')
}

func (o *jsonObj) bytes() []byte { return append(o.b, '}') }

// sendJSON writes a JSON answer that must not be cached (RFC 6749 §5.1).
func sendJSON(w Responder, status int, body []byte) {
	hdrJSON.set(w)
	hdrNoStore.set(w)
	hdrNoCache.set(w)
	_ = w.Send(status, body)
}

// sendError writes a token/revocation/introspection endpoint error.
func sendError(w Responder, e *oauthError, legacy bool) {
	if e.challenge != "" {
		w.SetHeader("WWW-Authenticate", e.challenge)
	}
	if e.retryAfter > 0 {
		w.SetHeader("Retry-After", strconv.Itoa(e.retryAfter))
	}
	o := newJSON(96)
	if legacy && e.status < 500 && e.status != 429 {
		// The original library's envelope, status 400.
		inner := newJSON(96)
		inner.str("type", "OAuthException")
		inner.str("message", e.code+": "+SafeDescription(e.desc))
		o.key("error")
		o.b = append(o.b, inner.bytes()...)
		sendJSON(w, 400, o.bytes())
		return
	}
	o.str("error", e.code)
	o.strIf("error_description", SafeDescription(e.desc))
	sendJSON(w, e.status, o.bytes())
}
