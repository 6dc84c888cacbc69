package core

import (
	"context"
	"crypto/x509"
	"io"
)

// Request is the narrow view of an incoming HTTP request that the endpoints
// need. Adapters implement it over their framework's request type; tests can
// implement it with a plain struct and no HTTP server at all.
//
// Values returned by a Request may be read by the server after the adapter's
// handler returns only if they are copied; the server copies everything it
// keeps, so adapters over pooled buffers (fasthttp) need not copy twice.
type Request interface {
	// Context carries cancellation and deadlines to storage calls.
	Context() context.Context
	// Method is the HTTP method in upper case.
	Method() string
	// Path is the URL path, without the query.
	Path() string
	// RawQuery is the URL query, without the leading '?'; the server parses
	// it itself so that repeated parameters can be detected.
	RawQuery() string
	// Header returns every value of the named header (canonical or not, the
	// lookup is case-insensitive), nil when absent.
	Header(name string) []string
	// Body is the request body. The server reads at most Config.Limits.MaxBodyBytes
	// plus one byte from it.
	Body() io.Reader
	// RemoteAddr is the peer address ("ip:port" or "ip"), used for throttling
	// and logs.
	RemoteAddr() string
	// TLS reports whether the request arrived over TLS; it decides the
	// Secure attribute of cookies.
	TLS() bool
}

// PeerCertificates is an optional Request capability: the certificate
// chain the TLS client presented, leaf first, as the adapter's framework
// sees it (net/http's Request.TLS.PeerCertificates), nil without TLS or
// without a client certificate. The server verifies what it needs itself
// (RFC 8705: Config.MTLS), so the TLS stack may merely request the
// certificate (tls.RequestClientCert) or verify it against its own CAs.
// Adapters that implement it serve mutual-TLS client authentication and
// certificate-bound access tokens; requests of the others have no
// certificate, except the one a trusted proxy forwards
// (Config.MTLS.CertificateHeader).
type PeerCertificates interface {
	PeerCertificates() []*x509.Certificate
}

// PeerAddr is an optional Request capability for adapters whose
// RemoteAddr is the client address trusted proxies report: PeerAddr is
// the address of the connection's peer itself ("ip:port" or "ip"), which
// decides whether Config.MTLS.CertificateHeader comes from a trusted
// proxy. Without it the server goes by RemoteAddr.
type PeerAddr interface {
	PeerAddr() string
}

// Responder is where the endpoints write their answer. Adapters implement it
// over their framework's response type.
type Responder interface {
	// SetHeader replaces the named response header.
	SetHeader(name, value string)
	// AddHeader appends a value to the named response header (Set-Cookie).
	AddHeader(name, value string)
	// Send writes the status line, the headers set so far and body. The
	// server calls it exactly once per request it answers.
	Send(status int, body []byte) error
}

// HeaderValuesSetter is an optional Responder extension for adapters whose
// headers are an http.Header. SetHeaderValues sets the canonical header name
// to values as is, without copying: the server passes package-level slices
// of constant values (Cache-Control: no-store, Content-Type:
// application/json, the page protection headers), which saves an
// allocation per header on every response.
//
// The slices are shared by every response, so the adapter must store them,
// never modify them. (http.Header.Add copies: the slices have len == cap.)
type HeaderValuesSetter interface {
	SetHeaderValues(name string, values []string)
}
