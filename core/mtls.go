package core

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf16"
)

// OAuth 2.0 mutual-TLS client authentication and certificate-bound access
// tokens (RFC 8705).
//
// A client registered for AuthTLSClientAuth authenticates with a
// certificate that chains to Config.MTLS.ClientCAs and names it (its
// subject DN or one of its subject alternative names, Client.TLSClientAuth*);
// one registered for AuthSelfSignedTLSClientAuth with a certificate whose
// public key is one of its registered keys (Client.JWKS or JWKSURI), with
// no chain validation. Either sends its client_id in the body, never a
// secret, at every endpoint that authenticates clients.
//
// A token request that arrives with a client certificate gets an access
// token bound to it (cnf x5t#S256, §3) when Config.MTLS.BoundAccessTokens
// is set or the client asks for it (Client.TLSClientCertificateBoundAccessTokens),
// whatever the client authenticated with; CheckRequest then accepts the
// token only from a request that presents the same certificate. One token
// is bound to one thing: when the token request also carries a DPoP proof
// (with DPoP on), the token is bound to the DPoP key and not to the
// certificate.
//
// The certificate is the TLS peer's, as the adapter sees it (the
// PeerCertificates capability of the Request); behind a TLS-terminating
// proxy, the one the proxy forwards in Config.MTLS.CertificateHeader, read
// only from the proxies named in Config.MTLS.TrustedProxies.

// MTLS configures RFC 8705. Every field but Enabled needs Enabled.
type MTLS struct {
	Enabled bool
	// ClientCAs are the roots the certificate chains of tls_client_auth
	// clients are verified against, with the clientAuth extended key usage
	// (a certificate without extended key usages passes) and the server's
	// clock. Nil: tls_client_auth is neither offered nor accepted;
	// self_signed_tls_client_auth needs no CA.
	ClientCAs *x509.CertPool
	// BoundAccessTokens binds every access token of a token request that
	// came with a client certificate to that certificate
	// (tls_client_certificate_bound_access_tokens). Without it only the
	// clients with Client.TLSClientCertificateBoundAccessTokens get bound
	// tokens (and are refused without a certificate).
	BoundAccessTokens bool
	// CertificateHeader is the request header in which a TLS-terminating
	// proxy forwards the client's certificate: URL-encoded PEM, as nginx's
	// $ssl_client_escaped_cert (plain PEM, or base64 DER as Traefik sends
	// it, are accepted too; a chain is the leaf first). It is read only
	// from a peer in TrustedProxies (by the Request's PeerAddr capability,
	// else its RemoteAddr); from any other peer it is ignored (and that is
	// logged, once) and the request's own TLS certificate counts. A request
	// from a trusted proxy counts the header's certificate only, never the
	// proxy's own.
	CertificateHeader string
	// TrustedProxies are the proxies whose CertificateHeader is believed
	// (a single address is a prefix of its full length, /32 or /128).
	// Required with CertificateHeader.
	TrustedProxies []netip.Prefix
	// EndpointAliases is the base URL (https) of the endpoints as served
	// on a host or port that asks for client certificates, when the main
	// ones do not: metadata then lists mtls_endpoint_aliases (RFC 8705
	// §5), the same paths under this base.
	EndpointAliases string

	state *mtlsState // built by New
}

// mtlsState is the per-server state of MTLS: what has been logged once.
type mtlsState struct {
	headerIgnored atomic.Bool
	disabled      atomic.Bool
	noCAs         atomic.Bool
}

// maxCertHeader bounds the forwarded certificate header: a chain of a few
// certificates, URL-encoded.
const maxCertHeader = 32 << 10

func (s *Server) setupMTLS() error {
	m := &s.cfg.MTLS
	// Always a new state: a Config copied from another Server must not
	// share it.
	m.state = &mtlsState{}
	if !m.Enabled {
		if m.ClientCAs != nil || m.BoundAccessTokens || m.CertificateHeader != "" || len(m.TrustedProxies) > 0 || m.EndpointAliases != "" {
			return errors.New("oauth2kit: Config.MTLS is configured but not Enabled")
		}
		return nil
	}
	if m.CertificateHeader != "" {
		if !validHeaderName(m.CertificateHeader) {
			return fmt.Errorf("oauth2kit: Config.MTLS.CertificateHeader %q is not a header name", m.CertificateHeader)
		}
		if len(m.TrustedProxies) == 0 {
			return errors.New("oauth2kit: Config.MTLS.CertificateHeader needs Config.MTLS.TrustedProxies")
		}
	}
	proxies := make([]netip.Prefix, 0, len(m.TrustedProxies))
	for _, p := range m.TrustedProxies {
		if !p.IsValid() {
			return fmt.Errorf("oauth2kit: Config.MTLS.TrustedProxies: %v is not a valid prefix", p)
		}
		proxies = append(proxies, p.Masked())
	}
	m.TrustedProxies = proxies
	if m.EndpointAliases != "" {
		u, err := url.Parse(m.EndpointAliases)
		if err != nil || !u.IsAbs() || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil ||
			u.Scheme != "https" && !(u.Scheme == "http" && isLoopbackHost(u.Hostname())) {
			return fmt.Errorf("oauth2kit: Config.MTLS.EndpointAliases %q must be an https URL without query or fragment", m.EndpointAliases)
		}
		m.EndpointAliases = strings.TrimSuffix(m.EndpointAliases, "/")
	}
	return nil
}

func validHeaderName(h string) bool {
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return h != ""
}

// tlsClientAuthOffered reports whether tls_client_auth can succeed.
func (s *Server) tlsClientAuthOffered() bool {
	return s.cfg.MTLS.Enabled && s.cfg.MTLS.ClientCAs != nil
}

// mtlsAuthMethods are the RFC 8705 methods the server offers.
func (s *Server) mtlsAuthMethods() []string {
	var out []string
	if s.tlsClientAuthOffered() {
		out = append(out, AuthTLSClientAuth)
	}
	if s.cfg.MTLS.Enabled {
		out = append(out, AuthSelfSignedTLSClientAuth)
	}
	return out
}

// writeMTLSMetadata adds the RFC 8705 §3.3 and §5 members.
func (s *Server) writeMTLSMetadata(o *jsonObj) {
	m := &s.cfg.MTLS
	if !m.Enabled {
		return
	}
	o.boolean("tls_client_certificate_bound_access_tokens", true)
	if m.EndpointAliases == "" {
		return
	}
	// The endpoints where a client authenticates or presents a token.
	aliased := []string{"token_endpoint", "revocation_endpoint", "introspection_endpoint",
		"pushed_authorization_request_endpoint", "userinfo_endpoint"}
	a := newJSON(256)
	for _, ep := range s.routes {
		if slices.Contains(aliased, ep.meta) {
			a.str(ep.meta, m.EndpointAliases+*ep.path(&s.cfg))
		}
	}
	o.key("mtls_endpoint_aliases")
	o.b = append(o.b, a.bytes()...)
}

// CertificateThumbprint is the x5t#S256 of a certificate (RFC 8705 §3.1):
// the base64url SHA-256 of its DER, what TokenInfo.X5T holds for a token
// bound to it. Resource servers that check tokens with CheckToken compare
// it themselves; CheckRequest does.
func CertificateThumbprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// requestCertificates is the client certificate chain of r, leaf first:
// the trusted proxy's header or the TLS peer's; nil for none.
func (s *Server) requestCertificates(r Request) []*x509.Certificate {
	m := &s.cfg.MTLS
	if m.CertificateHeader != "" {
		vals := r.Header(m.CertificateHeader)
		peer := r.RemoteAddr()
		if pa, ok := r.(PeerAddr); ok {
			peer = pa.PeerAddr()
		}
		a, ok := ParseHop(peer)
		switch {
		case ok && m.trusts(a):
			// The proxy's own certificate (if it has one) is not the
			// client's: the header or nothing.
			if len(vals) != 1 || vals[0] == "" {
				return nil
			}
			chain, err := parseCertificateHeader(vals[0])
			if err != nil {
				s.log.WarnContext(r.Context(), "oauth2kit: the forwarded client certificate does not parse", "header", m.CertificateHeader, "err", err)
				return nil
			}
			return chain
		case len(vals) > 0 && m.state != nil && m.state.headerIgnored.CompareAndSwap(false, true):
			s.log.WarnContext(r.Context(), "oauth2kit: a client certificate header from a peer that is not a trusted proxy is ignored (logged once)",
				"header", m.CertificateHeader, "peer", peer)
		}
	}
	if pc, ok := r.(PeerCertificates); ok {
		return pc.PeerCertificates()
	}
	return nil
}

func (m *MTLS) trusts(a netip.Addr) bool {
	for _, p := range m.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// parseCertificateHeader reads a forwarded certificate chain: URL-encoded
// or plain PEM, or base64 DER (comma-separated for a chain).
func parseCertificateHeader(v string) ([]*x509.Certificate, error) {
	if len(v) > maxCertHeader {
		return nil, errors.New("the header is too long")
	}
	if strings.Contains(v, "%") {
		unescape := url.PathUnescape // '+' is base64's
		if strings.Contains(v, "-----BEGIN+") {
			// Form encoding: '+' is a space, base64's '+' is %2B.
			unescape = url.QueryUnescape
		}
		u, err := unescape(v)
		if err != nil {
			return nil, err
		}
		v = u
	}
	var ders [][]byte
	if strings.Contains(v, "-----BEGIN") {
		rest := []byte(v)
		for {
			var b *pem.Block
			if b, rest = pem.Decode(rest); b == nil {
				break
			}
			if b.Type == "CERTIFICATE" {
				ders = append(ders, b.Bytes)
			}
		}
	} else {
		for part := range strings.SplitSeq(v, ",") {
			der, err := base64.StdEncoding.DecodeString(strings.TrimSpace(part))
			if err != nil {
				return nil, errors.New("neither PEM nor base64 DER")
			}
			ders = append(ders, der)
		}
	}
	if len(ders) == 0 || len(ders) > 8 {
		return nil, errors.New("no certificate, or more than 8")
	}
	chain := make([]*x509.Certificate, 0, len(ders))
	for _, der := range ders {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, err
		}
		chain = append(chain, c)
	}
	return chain, nil
}

// verifyClientCertificate authenticates client c (of an RFC 8705 method)
// by the request's certificate: its leaf, or why not.
func (s *Server) verifyClientCertificate(r Request, c *Client, now time.Time) (*x509.Certificate, string) {
	m := &s.cfg.MTLS
	if !m.Enabled {
		if m.state == nil || m.state.disabled.CompareAndSwap(false, true) {
			s.log.ErrorContext(r.Context(), "oauth2kit: a client uses mTLS authentication but Config.MTLS is off; such clients cannot authenticate (logged once)", "client_id", c.ID)
		}
		return nil, "mTLS client authentication is off"
	}
	chain := s.requestCertificates(r)
	if len(chain) == 0 {
		return nil, "no client certificate"
	}
	leaf := chain[0]
	switch c.AuthMethod {
	case AuthTLSClientAuth:
		if m.ClientCAs == nil {
			if m.state.noCAs.CompareAndSwap(false, true) {
				s.log.ErrorContext(r.Context(), "oauth2kit: tls_client_auth needs Config.MTLS.ClientCAs; such clients cannot authenticate (logged once)", "client_id", c.ID)
			}
			return nil, "tls_client_auth is not available"
		}
		inter := x509.NewCertPool()
		for _, ic := range chain[1:] {
			inter.AddCert(ic)
		}
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: m.ClientCAs, Intermediates: inter, CurrentTime: now,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			return nil, "the certificate does not verify: " + err.Error()
		}
		if !tlsSubjectMatches(c, leaf) {
			return nil, "the certificate does not name the client"
		}
	case AuthSelfSignedTLSClientAuth:
		if !s.certKeyRegistered(r.Context(), c, leaf, now) {
			return nil, "the certificate's key is not one of the client's keys"
		}
	default:
		return nil, "not an mTLS client"
	}
	return leaf, ""
}

// certKeyRegistered reports whether the certificate's public key is one of
// the client's registered keys (self_signed_tls_client_auth, RFC 8705
// §2.2). A key found nowhere in a fetched set refetches it once (at most
// once per jwksRefetch): the client may have rotated.
func (s *Server) certKeyRegistered(ctx context.Context, c *Client, leaf *x509.Certificate, now time.Time) bool {
	match := func(keys []clientKey) bool {
		for _, k := range keys {
			if eq, ok := k.key.(interface{ Equal(crypto.PublicKey) bool }); ok && eq.Equal(leaf.PublicKey) {
				return true
			}
		}
		return false
	}
	keys, err := s.clientKeys(ctx, c, now, false)
	if err == nil && match(keys) {
		return true
	}
	if c.JWKSURI != "" {
		if keys, err = s.clientKeys(ctx, c, now, true); err == nil && match(keys) {
			return true
		}
	}
	return false
}

// tlsSubjectMatches reports whether leaf names client c as its
// registration says (RFC 8705 §2.1.2): the subject DN, or a subject
// alternative name of the registered type.
func tlsSubjectMatches(c *Client, leaf *x509.Certificate) bool {
	switch {
	case c.TLSClientAuthSubjectDN != "":
		want, err := parseDN(c.TLSClientAuthSubjectDN)
		if err != nil {
			return false
		}
		got, err := certSubjectDN(leaf.RawSubject)
		return err == nil && want.equal(got)
	case c.TLSClientAuthSANDNS != "":
		return slices.ContainsFunc(leaf.DNSNames, func(n string) bool { return strings.EqualFold(n, c.TLSClientAuthSANDNS) })
	case c.TLSClientAuthSANURI != "":
		return slices.ContainsFunc(leaf.URIs, func(u *url.URL) bool { return u.String() == c.TLSClientAuthSANURI })
	case c.TLSClientAuthSANIP != "":
		want, err := netip.ParseAddr(c.TLSClientAuthSANIP)
		if err != nil {
			return false
		}
		for _, ip := range leaf.IPAddresses {
			if a, ok := netip.AddrFromSlice(ip); ok && a.Unmap() == want.Unmap() {
				return true
			}
		}
		return false
	case c.TLSClientAuthSANEmail != "":
		return slices.Contains(leaf.EmailAddresses, c.TLSClientAuthSANEmail)
	}
	return false
}

// checkTLSClientSpec validates the certificate names of a tls_client_auth
// client: exactly one, well formed.
func checkTLSClientSpec(spec *ClientSpec) error {
	n := 0
	for _, v := range []string{spec.TLSClientAuthSubjectDN, spec.TLSClientAuthSANDNS, spec.TLSClientAuthSANURI, spec.TLSClientAuthSANIP, spec.TLSClientAuthSANEmail} {
		if v != "" {
			n++
		}
	}
	if n != 1 {
		return errors.New("a tls_client_auth client names its certificate by exactly one of TLSClientAuthSubjectDN, TLSClientAuthSANDNS, TLSClientAuthSANURI, TLSClientAuthSANIP, TLSClientAuthSANEmail")
	}
	switch {
	case spec.TLSClientAuthSubjectDN != "":
		if dn, err := parseDN(spec.TLSClientAuthSubjectDN); err != nil || len(dn) == 0 {
			return fmt.Errorf("TLSClientAuthSubjectDN %q is not an RFC 4514 distinguished name", spec.TLSClientAuthSubjectDN)
		}
	case spec.TLSClientAuthSANDNS != "":
		if !printable(spec.TLSClientAuthSANDNS) || strings.ContainsAny(spec.TLSClientAuthSANDNS, " /") {
			return fmt.Errorf("TLSClientAuthSANDNS %q is not a DNS name", spec.TLSClientAuthSANDNS)
		}
	case spec.TLSClientAuthSANURI != "":
		if u, err := url.Parse(spec.TLSClientAuthSANURI); err != nil || !u.IsAbs() {
			return fmt.Errorf("TLSClientAuthSANURI %q is not an absolute URI", spec.TLSClientAuthSANURI)
		}
	case spec.TLSClientAuthSANIP != "":
		if _, err := netip.ParseAddr(spec.TLSClientAuthSANIP); err != nil {
			return fmt.Errorf("TLSClientAuthSANIP %q is not an IP address", spec.TLSClientAuthSANIP)
		}
	case spec.TLSClientAuthSANEmail != "":
		if !printable(spec.TLSClientAuthSANEmail) || !strings.Contains(spec.TLSClientAuthSANEmail, "@") {
			return fmt.Errorf("TLSClientAuthSANEmail %q is not an email address", spec.TLSClientAuthSANEmail)
		}
	}
	return nil
}

// bindCertificate decides, for a token request (one with a grant_type),
// whether the access token is bound to the request's certificate, and if
// so returns ca with a copy of its client that carries the thumbprint
// (mintAccessToken puts it into the token). DPoP wins: a request with a
// DPoP proof gets a DPoP-bound token. A client that demands bound tokens
// is refused without a certificate.
func (s *Server) bindCertificate(r Request, f *params, ca clientAuth) (clientAuth, *oauthError) {
	c, m := ca.client, &s.cfg.MTLS
	if !(m.BoundAccessTokens || c.TLSClientCertificateBoundAccessTokens) || f.get("grant_type") == "" {
		return ca, nil
	}
	if s.cfg.DPoP.Enabled && len(r.Header("DPoP")) > 0 {
		return ca, nil
	}
	if !m.Enabled {
		s.log.ErrorContext(r.Context(), "oauth2kit: a client requires certificate-bound tokens but Config.MTLS is off", "client_id", c.ID)
		return ca, badRequest("certificate-bound access tokens are not available")
	}
	leaf := ca.cert
	if leaf == nil {
		if chain := s.requestCertificates(r); len(chain) > 0 {
			leaf = chain[0]
		}
	}
	if leaf == nil {
		if c.TLSClientCertificateBoundAccessTokens {
			return ca, badRequest("this client's access tokens must be certificate-bound: present a client certificate")
		}
		return ca, nil
	}
	cp := *c
	cp.boundCert = CertificateThumbprint(leaf)
	ca.client = &cp
	return ca, nil
}

// checkCertBinding enforces a certificate-bound token at a resource
// (RFC 8705 §3): the request must present the certificate the token is
// bound to. No chain is verified: the binding is the proof.
func (s *Server) checkCertBinding(r Request, info *TokenInfo) *ResourceError {
	chain := s.requestCertificates(r)
	if len(chain) == 0 {
		return s.resourceError(401, ErrInvalidToken, "", false, errors.New("a certificate-bound token without a client certificate"))
	}
	if subtle.ConstantTimeCompare([]byte(CertificateThumbprint(chain[0])), []byte(info.X5T)) != 1 {
		return s.resourceError(401, ErrInvalidToken, "", false, errors.New("a certificate-bound token with another certificate"))
	}
	return nil
}

// Distinguished names (RFC 4514). A registered subject DN and the
// certificate's subject are compared as sequences of RDNs, each a set of
// attribute type and value: types by name or OID, case-insensitively
// (CN and 2.5.4.3 are one type); values exactly, after unescaping; the
// RDNs in the order of the string form (the most specific, CN, first).

type dnAttr struct{ typ, val string }

type distinguishedName [][]dnAttr

func (d distinguishedName) equal(o distinguishedName) bool {
	return slices.EqualFunc(d, o, func(a, b []dnAttr) bool { return slices.Equal(a, b) })
}

// dnTypes maps the attribute type names of RFC 4514 §3 (and a few that
// certificates carry) to their OIDs; types are compared as OIDs.
var dnTypes = map[string]string{
	"CN": "2.5.4.3", "SERIALNUMBER": "2.5.4.5", "C": "2.5.4.6", "L": "2.5.4.7", "ST": "2.5.4.8", "S": "2.5.4.8",
	"STREET": "2.5.4.9", "O": "2.5.4.10", "OU": "2.5.4.11", "TITLE": "2.5.4.12", "POSTALCODE": "2.5.4.17",
	"GIVENNAME": "2.5.4.42", "SN": "2.5.4.4", "DC": "0.9.2342.19200300.100.1.25", "UID": "0.9.2342.19200300.100.1.1",
	"EMAILADDRESS": "1.2.840.113549.1.9.1", "E": "1.2.840.113549.1.9.1",
}

// normalizeRDN sorts an RDN's attributes, so that multi-valued RDNs
// compare as the sets they are.
func normalizeRDN(rdn []dnAttr) []dnAttr {
	slices.SortFunc(rdn, func(a, b dnAttr) int {
		if c := strings.Compare(a.typ, b.typ); c != 0 {
			return c
		}
		return strings.Compare(a.val, b.val)
	})
	return rdn
}

// parseDN parses the RFC 4514 string form. It is lenient where RFC 4514
// parsers may be: spaces around the separators, an unescaped '=' in a
// value.
func parseDN(s string) (distinguishedName, error) {
	var dn distinguishedName
	if strings.TrimSpace(s) == "" {
		return dn, nil
	}
	bad := errors.New("malformed distinguished name")
	i := 0
	skip := func() {
		for i < len(s) && s[i] == ' ' {
			i++
		}
	}
	var rdn []dnAttr
	for {
		skip()
		eq := strings.IndexByte(s[i:], '=')
		if eq < 0 {
			return nil, bad
		}
		typ, ok := dnType(strings.TrimSpace(s[i : i+eq]))
		if !ok {
			return nil, bad
		}
		i += eq + 1
		skip()
		var val []byte
		if i < len(s) && s[i] == '#' {
			j := i + 1
			for j < len(s) && s[j] != ',' && s[j] != '+' {
				j++
			}
			der, err := hex.DecodeString(strings.TrimRight(s[i+1:j], " "))
			if err != nil || len(der) == 0 {
				return nil, bad
			}
			v, err := dnValue(der)
			if err != nil {
				return nil, bad
			}
			val, i = []byte(v), j
		} else {
			keep := 0 // length of val up to its last significant byte
			for i < len(s) && s[i] != ',' && s[i] != '+' {
				switch c := s[i]; {
				case c == '\\':
					if i+1 >= len(s) {
						return nil, bad
					}
					if strings.IndexByte(` "#+,;<=>\`, s[i+1]) >= 0 {
						val = append(val, s[i+1])
						i += 2
					} else if b, err := hex.DecodeString(s[i+1 : min(i+3, len(s))]); err == nil && len(b) == 1 {
						val = append(val, b[0])
						i += 3
					} else {
						return nil, bad
					}
					keep = len(val)
				case c == '"' || c == ';' || c == '<' || c == '>' || c < 0x20:
					return nil, bad
				default:
					val = append(val, c)
					i++
					if c != ' ' {
						keep = len(val)
					}
				}
			}
			val = val[:keep]
		}
		rdn = append(rdn, dnAttr{typ, string(val)})
		if i == len(s) {
			return append(dn, normalizeRDN(rdn)), nil
		}
		if s[i] == ',' {
			dn, rdn = append(dn, normalizeRDN(rdn)), nil
		}
		i++
		if strings.TrimSpace(s[i:]) == "" {
			return nil, bad // a trailing separator
		}
	}
}

// dnType is an attribute type's OID: numeric as is, a name by dnTypes
// (case-insensitively); an unknown name stays itself, upper case.
func dnType(t string) (string, bool) {
	if t == "" {
		return "", false
	}
	if t[0] >= '0' && t[0] <= '9' {
		for _, arc := range strings.Split(t, ".") {
			if arc == "" || strings.Trim(arc, "0123456789") != "" {
				return "", false
			}
		}
		return t, true
	}
	u := strings.ToUpper(t)
	for i := 0; i < len(u); i++ {
		if c := u[i]; !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return "", false
		}
	}
	if oid, ok := dnTypes[u]; ok {
		return oid, true
	}
	return u, true
}

// dnValue is an attribute value as compared: the text of a string type,
// "#"+hex of the DER for any other.
func dnValue(der []byte) (string, error) {
	var rv asn1.RawValue
	rest, err := asn1.Unmarshal(der, &rv)
	if err != nil || len(rest) > 0 {
		return "", errors.New("not one DER value")
	}
	if rv.Class == asn1.ClassUniversal {
		switch rv.Tag {
		case asn1.TagUTF8String, asn1.TagPrintableString, asn1.TagIA5String, asn1.TagT61String, asn1.TagNumericString:
			return string(rv.Bytes), nil
		case asn1.TagBMPString:
			if len(rv.Bytes)%2 != 0 {
				return "", errors.New("odd BMPString")
			}
			u := make([]uint16, len(rv.Bytes)/2)
			for i := range u {
				u[i] = uint16(rv.Bytes[2*i])<<8 | uint16(rv.Bytes[2*i+1])
			}
			return string(utf16.Decode(u)), nil
		}
	}
	return "#" + hex.EncodeToString(rv.FullBytes), nil
}

// rawATV and rawRDNSET read a certificate's subject keeping each value's
// DER (asn1 reads a slice type whose name ends in SET as a SET OF).
type rawATV struct {
	Type  asn1.ObjectIdentifier
	Value asn1.RawValue
}

type rawRDNSET []rawATV

// certSubjectDN reads a certificate's raw subject, in string order (the
// reverse of the DER's).
func certSubjectDN(raw []byte) (distinguishedName, error) {
	var seq []rawRDNSET
	if rest, err := asn1.Unmarshal(raw, &seq); err != nil || len(rest) > 0 {
		return nil, errors.New("malformed subject")
	}
	dn := make(distinguishedName, 0, len(seq))
	for i := len(seq) - 1; i >= 0; i-- {
		rdn := make([]dnAttr, 0, len(seq[i]))
		for _, atv := range seq[i] {
			v, err := dnValue(atv.Value.FullBytes)
			if err != nil {
				return nil, err
			}
			rdn = append(rdn, dnAttr{atv.Type.String(), v})
		}
		dn = append(dn, normalizeRDN(rdn))
	}
	return dn, nil
}
