package dpop

import (
	"errors"
	"net/url"
	"strconv"
	"strings"
)

// maxHTU bounds the URL NormalizeHTU parses; an htu cannot be longer than
// the proof anyway.
const maxHTU = MaxProofSize

// NormalizeHTU is u in the form Verify compares htu and Check.URL in
// (RFC 9449 §4.3 asks for the syntax- and scheme-based normalisation of
// RFC 3986 §6.2.2 and §6.2.3 to reduce false negatives): an absolute http
// or https URI, scheme and host lower-cased, the scheme's default port
// removed, an empty path made "/", the query and fragment dropped (htu
// names the target without them). The path is kept byte for byte: no
// percent-decoding and no dot-segment resolution. A server routes on the
// path as it was sent, and a router, a proxy and a handler may each resolve
// "/a/../b" or "%2F" their own way; if the proof check resolved them,
// a proof made for one path string would be accepted for a request to
// another. A client that sends a path as it signed it — all of them, in
// practice — is not affected; one that does not gets a refusal, which is
// the safe error.
//
// Refused: characters outside RFC 3986 (so that both sides are URIs, not
// something a parser repairs), userinfo (a target URI has none, RFC 9110
// §4.2.4), an empty host, a zone identifier, a port outside 1–65535.
func NormalizeHTU(u string) (string, error) {
	if u == "" {
		return "", errors.New("empty")
	}
	if len(u) > maxHTU {
		return "", errors.New("too long")
	}
	for i := 0; i < len(u); i++ {
		if !uriChar(u[i]) {
			return "", errors.New("a character that is not allowed in a URI")
		}
	}
	p, err := url.Parse(u)
	if err != nil {
		return "", errors.New("not a URI")
	}
	var defPort int
	switch p.Scheme { // lower-cased by url.Parse
	case "https":
		defPort = 443
	case "http":
		defPort = 80
	default:
		return "", errors.New("not an http or https URI")
	}
	if p.Opaque != "" || p.Host == "" {
		return "", errors.New("no host")
	}
	if p.User != nil {
		return "", errors.New("userinfo in the URI")
	}
	host := p.Hostname()
	if host == "" {
		return "", errors.New("no host")
	}
	for i := 0; i < len(host); i++ {
		// A percent-encoded byte of a reg-name is decoded by url.Parse:
		// refused when that leaves what is not a plain host (a zone or a
		// non-ASCII name, which the client should send in IDNA form).
		if c := host[i]; c == '%' || c >= 0x80 {
			return "", errors.New("the host is not a plain host name or IP address")
		}
	}
	host = strings.ToLower(host)
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	var b strings.Builder
	b.Grow(len(u))
	b.WriteString(p.Scheme)
	b.WriteString("://")
	b.WriteString(host)
	if port := p.Port(); port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return "", errors.New("the port is out of range")
		}
		if n != defPort {
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(n))
		}
	}
	path := p.EscapedPath() // the path as written, for a valid URI
	if path == "" {
		path = "/"
	}
	b.WriteString(path)
	return b.String(), nil
}

// uriChar reports whether c may appear in a URI (RFC 3986 §2: unreserved,
// reserved and '%').
func uriChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("-._~:/?#[]@!$&'()*+,;=%", c) >= 0
}
