package core

import (
	"crypto/x509"
	"encoding/base64"
	"errors"
	"net/url"
	"strings"
	"time"
)

// clientAuth is the outcome of client authentication.
type clientAuth struct {
	client   *Client
	viaBasic bool
	// cert is the certificate an mTLS client authenticated with (RFC 8705).
	cert *x509.Certificate
}

// authenticateClient authenticates the client of a token, revocation or
// introspection request: HTTP Basic (form-urlencoded id and secret),
// client_id/client_secret in the body, or a client assertion in the body
// (private_key_jwt, RFC 7523 §2.2: see clientassert.go), never two of
// them; public clients send client_id only. A client authenticates only by
// the method it is registered for: a private_key_jwt client never with a
// secret, a client with a secret never with an assertion (both secret
// methods are accepted for a client with a secret). Failures are counted
// for throttling.
//
// A client of an mTLS method (RFC 8705: tls_client_auth,
// self_signed_tls_client_auth) sends client_id in the body, nothing else,
// and authenticates by the request's certificate. At the token endpoint
// the access token may then be bound to the request's certificate
// (bindCertificate).
func (s *Server) authenticateClient(r Request, f *params, allowPublic bool) (clientAuth, *oauthError) {
	ca, e := s.authenticateClientOnce(r, f, allowPublic)
	if e != nil {
		return ca, e
	}
	return s.bindCertificate(r, f, ca)
}

func (s *Server) authenticateClientOnce(r Request, f *params, allowPublic bool) (clientAuth, *oauthError) {
	// The challenge is built only on the failure paths that send it: a
	// concatenation here cost an allocation on every token request.
	basicChallenge := func() string { return `Basic realm="` + safeDescription(s.cfg.Realm) + `", charset="UTF-8"` }
	invalid := func(basic bool) *oauthError {
		if basic {
			e := oerr(401, ErrInvalidClient, "client authentication failed")
			e.challenge = basicChallenge()
			return e
		}
		return oerr(400, ErrInvalidClient, "client authentication failed")
	}
	hdrs := r.Header("Authorization")
	if len(hdrs) > 1 {
		return clientAuth{}, badRequest("more than one Authorization header")
	}
	bodyID, bodySecret := f.get("client_id"), f.get("client_secret")
	if at, a := f.get("client_assertion_type"), f.get("client_assertion"); at != "" || a != "" {
		if len(hdrs) == 1 || bodySecret != "" {
			return clientAuth{}, badRequest("use one client authentication method, not two")
		}
		return s.authenticateAssertion(r, bodyID, at, a)
	}
	var id, secret string
	basic := false
	if len(hdrs) == 1 {
		basic = true
		if bodySecret != "" {
			return clientAuth{}, badRequest("use one client authentication method, not two")
		}
		raw, ok := cutScheme(hdrs[0], "Basic")
		if !ok {
			s.clientAuthFailed(r, "", "an Authorization header of another scheme")
			return clientAuth{}, invalid(true)
		}
		var decodeOK bool
		id, secret, decodeOK = decodeBasic(raw)
		if !decodeOK {
			// The original library's clients send "Basic <raw secret>" with
			// client_id in the body; honoured only for clients that opted
			// in (checked below once the client is known).
			if bodyID == "" {
				s.clientAuthFailed(r, "", "malformed Basic credentials")
				return clientAuth{}, invalid(true)
			}
			id, secret = bodyID, raw
		} else if bodyID != "" && bodyID != id {
			return clientAuth{}, badRequest("client_id differs from the authenticated client")
		}
		return s.verifyClient(r, id, secret, basic, !decodeOK, allowPublic, invalid)
	}
	if bodyID == "" {
		return clientAuth{}, s.authRequired()
	}
	id, secret = bodyID, bodySecret
	return s.verifyClient(r, id, secret, basic, false, allowPublic, invalid)
}

// authRequired is the refusal of a request that carries no client
// authentication.
func (s *Server) authRequired() *oauthError {
	e := oerr(401, ErrInvalidClient, "client authentication is required")
	e.challenge = `Basic realm="` + safeDescription(s.cfg.Realm) + `", charset="UTF-8"`
	return e
}

func (s *Server) verifyClient(r Request, id, secret string, basic, legacyRaw, allowPublic bool, invalid func(bool) *oauthError) (clientAuth, *oauthError) {
	now := s.now()
	if wait := s.throttle.blocked(id, r.RemoteAddr(), now); wait > 0 {
		e := oerr(429, ErrInvalidClient, "too many failed authentication attempts; retry later")
		e.retryAfter = int(wait/time.Second) + 1
		s.clientAuthFailed(r, id, "throttled")
		return clientAuth{}, e
	}
	if len(id) > 128 || len(secret) > 512 {
		s.throttle.fail("", r.RemoteAddr(), now)
		s.clientAuthFailed(r, id, "oversized credentials")
		return clientAuth{}, invalid(basic)
	}
	c, err := s.getClient(r.Context(), id)
	if err != nil {
		if !errors.Is(err, ErrNotFound) {
			s.log.ErrorContext(r.Context(), "oauth2kit: client lookup failed", "err", err)
			return clientAuth{}, storageError(err)
		}
		// Spend what a wrong secret costs, so timing does not tell
		// registered client ids from unknown ones.
		VerifySecret(dummyHash, secret)
		s.throttle.fail(id, r.RemoteAddr(), now)
		s.clientAuthFailed(r, id, "unknown client")
		return clientAuth{}, invalid(basic)
	}
	ok := false
	var cert *x509.Certificate
	reason := ""
	switch {
	case c.AuthMethod == AuthTLSClientAuth || c.AuthMethod == AuthSelfSignedTLSClientAuth:
		// RFC 8705 §2: the certificate is the credential; a secret or a
		// Basic header is another method.
		if reason = "a secret or Basic credentials from an mTLS client"; secret == "" && !basic && !legacyRaw {
			cert, reason = s.verifyClientCertificate(r, c, now)
			ok = cert != nil
		}
	case c.Public:
		ok = secret == "" && allowPublic && !legacyRaw && (c.AuthMethod == "" || c.AuthMethod == AuthNone)
	case !secretMethod(c.AuthMethod):
		// A private_key_jwt client (or one of a method this server does
		// not know) never authenticates with a secret. Hashing anyway
		// keeps the answer as slow as a wrong secret's.
		VerifySecret(dummyHash, secret)
	case legacyRaw:
		ok = c.LegacyBasicSecret && s.profileOf(c) == ProfileDraft10 && VerifySecret(c.SecretHash, secret)
	default:
		// Hash even an empty secret: the answer takes the same time.
		ok = VerifySecret(c.SecretHash, secret) && secret != ""
	}
	if !ok {
		account := id
		if c.Public {
			account = "" // nothing to guess: count the address only
		}
		s.throttle.fail(account, r.RemoteAddr(), now)
		if reason != "" {
			s.log.WarnContext(r.Context(), "oauth2kit: client authentication failed", "client_id", id, "remote", r.RemoteAddr(), "reason", reason)
		} else {
			s.log.WarnContext(r.Context(), "oauth2kit: client authentication failed", "client_id", id, "remote", r.RemoteAddr())
		}
		if reason == "" {
			reason = "wrong credentials"
		}
		s.clientAuthFailed(r, id, reason)
		return clientAuth{}, invalid(basic)
	}
	return clientAuth{client: c, viaBasic: basic, cert: cert}, nil
}

// secretMethod reports whether a confidential client registered with
// method authenticates with its secret.
func secretMethod(method string) bool {
	return method == "" || method == AuthClientSecretBasic || method == AuthClientSecretPost
}

// decodeBasic decodes Basic credentials: base64 of "id:secret" where both
// are form-urlencoded (RFC 6749 §2.3.1). A malformed escape fails.
func decodeBasic(raw string) (id, secret string, ok bool) {
	if len(raw) > 2048 {
		return "", "", false
	}
	b, err := base64.StdEncoding.DecodeString(raw)
	if err != nil {
		return "", "", false
	}
	u, p, found := strings.Cut(string(b), ":")
	if !found || u == "" {
		return "", "", false
	}
	if u, err = url.QueryUnescape(u); err != nil {
		return "", "", false
	}
	if p, err = url.QueryUnescape(p); err != nil {
		return "", "", false
	}
	return u, p, true
}

// EncodeBasic builds the value of an Authorization header for client
// credentials, form-urlencoding both parts as RFC 6749 §2.3.1 requires.
func EncodeBasic(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
}
