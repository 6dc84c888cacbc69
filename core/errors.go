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

// safeDescription reduces s to the characters allowed in error_description
// (%x20-21 / %x23-5B / %x5D-7E), replacing others with '?'.
func safeDescription(s string) string {
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
		inner.str("message", e.code+": "+safeDescription(e.desc))
		o.key("error")
		o.b = append(o.b, inner.bytes()...)
		sendJSON(w, 400, o.bytes())
		return
	}
	o.str("error", e.code)
	o.strIf("error_description", safeDescription(e.desc))
	sendJSON(w, e.status, o.bytes())
}
