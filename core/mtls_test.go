package core_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/oauth2kit/oauth2kit/core"
	"github.com/oauth2kit/oauth2kit/core/memstore"
)

// testCA is a certificate authority of the test, issuing client
// certificates valid around the env's clock.
type testCA struct {
	t    *testing.T
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T, name string, now time.Time) *testCA {
	t.Helper()
	key := newECKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name, Organization: []string{"Test PKI"}},
		NotBefore: now.Add(-24 * time.Hour), NotAfter: now.Add(365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{t: t, cert: cert, key: key, pool: pool}
}

func newECKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// certOpt adjusts a certificate template.
type certOpt func(*x509.Certificate)

func withEKU(eku ...x509.ExtKeyUsage) certOpt {
	return func(c *x509.Certificate) { c.ExtKeyUsage = eku }
}
func validity(from, to time.Time) certOpt {
	return func(c *x509.Certificate) { c.NotBefore, c.NotAfter = from, to }
}
func withDNS(n string) certOpt {
	return func(c *x509.Certificate) { c.DNSNames = append(c.DNSNames, n) }
}
func withURI(u string) certOpt {
	return func(c *x509.Certificate) {
		p, _ := url.Parse(u)
		c.URIs = append(c.URIs, p)
	}
}

// issue signs a client certificate for subject (clientAuth usage, valid
// for a day around now unless opts say otherwise).
func (ca *testCA) issue(subject pkix.Name, now time.Time, opts ...certOpt) *x509.Certificate {
	ca.t.Helper()
	c, _ := ca.issueKey(subject, now, opts...)
	return c
}

func (ca *testCA) issueKey(subject pkix.Name, now time.Time, opts ...certOpt) (*x509.Certificate, *ecdsa.PrivateKey) {
	ca.t.Helper()
	key := newECKey(ca.t)
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: subject,
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	for _, o := range opts {
		o(tmpl)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		ca.t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return cert, key
}

// selfSigned is a self-signed certificate and its key.
func selfSigned(t *testing.T, cn string, now time.Time) (*x509.Certificate, crypto.Signer) {
	t.Helper()
	key := newECKey(t)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: cn},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return cert, key
}

// jwksOf is a JWK Set holding the public keys given.
func jwksOf(t *testing.T, keys ...crypto.PublicKey) string {
	t.Helper()
	var set jose.JSONWebKeySet
	for i, k := range keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k, KeyID: "k" + string(rune('1'+i)), Use: "sig"})
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// certReq is a fakeReq with the PeerCertificates capability and, when
// peer is set, PeerAddr.
type certReq struct {
	*fakeReq
	certs []*x509.Certificate
}

func (r certReq) PeerCertificates() []*x509.Certificate { return r.certs }

type proxiedCertReq struct {
	certReq
	peer string
}

func (r proxiedCertReq) PeerAddr() string { return r.peer }

// send serves r and returns the answer.
func (e *env) send(r core.Request) *fakeResp {
	e.t.Helper()
	w := newResp()
	if !e.srv.Handle(w, r) {
		e.t.Fatalf("path %s not handled", r.Path())
	}
	return w
}

// form is a POST of form to path, over a connection with certs.
func form(path string, f url.Values, hdr http.Header, certs ...*x509.Certificate) certReq {
	if hdr == nil {
		hdr = http.Header{}
	}
	hdr.Set("Content-Type", "application/x-www-form-urlencoded")
	return certReq{&fakeReq{method: "POST", path: path, body: f.Encode(), hdr: hdr, tls: true}, certs}
}

// ccForm asks for a client_credentials token of client id (in the body).
func ccForm(id string) url.Values {
	return url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "scope": {"read"}}
}

func mtlsOn(ca *testCA, mod ...func(*core.MTLS)) func(*core.Config) {
	return func(c *core.Config) {
		c.MTLS = core.MTLS{Enabled: true, ClientCAs: ca.pool}
		// The tests fail many authentications on purpose.
		c.AuthThrottle.PerAccount, c.AuthThrottle.PerAddr = 1000, 1000
		for _, m := range mod {
			m(&c.MTLS)
		}
	}
}

var clientSubject = pkix.Name{CommonName: "client-one", OrganizationalUnit: []string{"Payments"}, Organization: []string{"Example Corp"}, Country: []string{"SE"}}

const clientDN = "CN=client-one,OU=Payments,O=Example Corp,C=SE"

func wantStatus(t *testing.T, what string, w *fakeResp, status int, code string) {
	t.Helper()
	if w.status != status {
		t.Fatalf("%s: %d %s, want %d", what, w.status, w.body, status)
	}
	if code != "" {
		if got := w.json(t)["error"]; got != code {
			t.Fatalf("%s: error %v, want %s (%s)", what, got, code, w.body)
		}
	}
}

func TestMTLSClientAuth(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	ca := newTestCA(t, "Test CA", now)
	other := newTestCA(t, "Other CA", now)
	e := newEnv(t, false, mtlsOn(ca))
	add := func(spec core.ClientSpec) {
		spec.AuthMethod, spec.GrantTypes = core.AuthTLSClientAuth, []string{"client_credentials"}
		if secret := e.addClient(spec); secret != "" {
			t.Fatalf("a tls_client_auth client got a secret")
		}
	}
	add(core.ClientSpec{ID: "dn", TLSClientAuthSubjectDN: clientDN})
	// The same DN written otherwise: types in lower case and by OID,
	// spaces around the separators.
	add(core.ClientSpec{ID: "dn-loose", TLSClientAuthSubjectDN: "cn = client-one, 2.5.4.11=Payments, o=Example Corp, C=SE"})
	add(core.ClientSpec{ID: "dn-case", TLSClientAuthSubjectDN: "CN=Client-One,OU=Payments,O=Example Corp,C=SE"})
	add(core.ClientSpec{ID: "dn-order", TLSClientAuthSubjectDN: "C=SE,O=Example Corp,OU=Payments,CN=client-one"})
	add(core.ClientSpec{ID: "dn-escaped", TLSClientAuthSubjectDN: `CN=a\,b+UID=7,O=Ex\"a\"mple\20,C=SE`})
	add(core.ClientSpec{ID: "dn-hex", TLSClientAuthSubjectDN: "CN=#0c0a636c69656e742d6f6e65,OU=Payments,O=Example Corp,C=SE"})
	add(core.ClientSpec{ID: "san-dns", TLSClientAuthSANDNS: "Client.Example.COM"})
	add(core.ClientSpec{ID: "san-uri", TLSClientAuthSANURI: "spiffe://example.org/client"})

	good := ca.issue(clientSubject, e.now)
	ok := func(id string, certs ...*x509.Certificate) {
		t.Helper()
		w := e.send(form("/oauth2/token", ccForm(id), nil, certs...))
		wantStatus(t, id, w, 200, "")
		if m := w.json(t); m["token_type"] != "Bearer" {
			t.Fatalf("%s: %v", id, m)
		}
	}
	refused := func(what, id string, certs ...*x509.Certificate) {
		t.Helper()
		wantStatus(t, what, e.send(form("/oauth2/token", ccForm(id), nil, certs...)), 400, core.ErrInvalidClient)
	}
	ok("dn", good)
	ok("dn-loose", good)
	ok("dn-hex", good)
	refused("values are compared exactly", "dn-case", good)
	refused("RDN order matters", "dn-order", good)
	ok("dn-escaped", ca.issue(pkix.Name{}, e.now, func(c *x509.Certificate) {
		// A multi-valued RDN (UID+CN) last in the DER, first in the
		// string, its members in another order.
		c.RawSubject = rawName(t, [][]pkix.AttributeTypeAndValue{
			{{Type: asn1.ObjectIdentifier{2, 5, 4, 6}, Value: "SE"}},
			{{Type: asn1.ObjectIdentifier{2, 5, 4, 10}, Value: `Ex"a"mple `}},
			{{Type: asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 1}, Value: "7"}, {Type: asn1.ObjectIdentifier{2, 5, 4, 3}, Value: "a,b"}},
		})
	}))
	ok("san-dns", ca.issue(pkix.Name{CommonName: "whatever"}, e.now, withDNS("other.example"), withDNS("client.example.com")))
	ok("san-uri", ca.issue(pkix.Name{CommonName: "whatever"}, e.now, withURI("spiffe://example.org/client")))
	refused("another SAN", "san-dns", ca.issue(pkix.Name{CommonName: "client.example.com"}, e.now, withDNS("x.client.example.com")))
	refused("another URI", "san-uri", ca.issue(pkix.Name{CommonName: "x"}, e.now, withURI("spiffe://example.org/client/2")))

	refused("no certificate", "dn")
	refused("another subject", "dn", ca.issue(pkix.Name{CommonName: "client-two", OrganizationalUnit: []string{"Payments"}, Organization: []string{"Example Corp"}, Country: []string{"SE"}}, e.now))
	refused("an untrusted CA", "dn", other.issue(clientSubject, e.now))
	refused("expired", "dn", ca.issue(clientSubject, e.now, validity(e.now.Add(-48*time.Hour), e.now.Add(-time.Second))))
	refused("not yet valid", "dn", ca.issue(clientSubject, e.now, validity(e.now.Add(time.Hour), e.now.Add(48*time.Hour))))
	refused("a server certificate", "dn", ca.issue(clientSubject, e.now, withEKU(x509.ExtKeyUsageServerAuth)))
	self, _ := selfSigned(t, "client-one", e.now)
	refused("self-signed", "dn", self)

	// The certificate is the credential: no secret, no Basic header.
	f := ccForm("dn")
	f.Set("client_secret", "x")
	wantStatus(t, "with a secret", e.send(form("/oauth2/token", f, nil, good)), 400, core.ErrInvalidClient)
	f = ccForm("dn")
	f.Del("client_id")
	wantStatus(t, "Basic from an mTLS client", e.send(form("/oauth2/token", f, basic("dn", ""), good)), 401, core.ErrInvalidClient)
	// Another client's certificate authenticates nobody else.
	refused("the conf client with a certificate and no secret", "conf", good)

	// Revocation and introspection authenticate the same way.
	tok := e.send(form("/oauth2/token", ccForm("dn"), nil, good)).json(t)["access_token"].(string)
	in := e.send(form("/oauth2/introspect", url.Values{"client_id": {"dn"}, "token": {tok}}, nil, good))
	if in.status != 200 || in.json(t)["active"] != true {
		t.Fatalf("introspection by an mTLS client: %d %s", in.status, in.body)
	}
	if w := e.send(form("/oauth2/introspect", url.Values{"client_id": {"dn"}, "token": {tok}}, nil)); w.status != 401 {
		t.Fatalf("introspection without the certificate: %d %s", w.status, w.body)
	}
	if w := e.send(form("/oauth2/revoke", url.Values{"client_id": {"dn"}, "token": {tok}}, nil, good)); w.status != 200 {
		t.Fatalf("revocation by an mTLS client: %d %s", w.status, w.body)
	}
	if _, err := e.srv.CheckToken(context.Background(), tok); err == nil {
		t.Fatal("the revoked token is still good")
	}
}

// rawName is the DER of an RDN sequence given in DER order.
func rawName(t *testing.T, rdns [][]pkix.AttributeTypeAndValue) []byte {
	t.Helper()
	var seq pkix.RDNSequence
	for _, r := range rdns {
		seq = append(seq, r)
	}
	b, err := asn1.Marshal(seq)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestMTLSSelfSigned(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	ca := newTestCA(t, "Test CA", now)
	// Without ClientCAs: self-signed clients need none.
	e := newEnv(t, false, func(c *core.Config) { c.MTLS = core.MTLS{Enabled: true} })
	cert, key := selfSigned(t, "my client", e.now)
	rotated, _ := selfSigned(t, "my client", e.now)
	e.addClient(core.ClientSpec{ID: "self", AuthMethod: core.AuthSelfSignedTLSClientAuth, GrantTypes: []string{"client_credentials"},
		JWKS: jwksOf(t, newECKey(t).Public(), key.Public())})
	if w := e.send(form("/oauth2/token", ccForm("self"), nil, cert)); w.status != 200 {
		t.Fatalf("self-signed: %d %s", w.status, w.body)
	}
	// No chain validation: an expired certificate, or a CA-issued one,
	// counts by its key alone.
	if w := e.send(form("/oauth2/token", ccForm("self"), nil, ca.issue(pkix.Name{CommonName: "x"}, e.now, validity(now.Add(-48*time.Hour), now.Add(-24*time.Hour))))); w.status != 400 {
		t.Fatalf("a CA certificate of another key: %d %s", w.status, w.body)
	}
	// Nor are dates checked: the key is the credential.
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(8), Subject: pkix.Name{CommonName: "old"},
		NotBefore: now.Add(-72 * time.Hour), NotAfter: now.Add(-48 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	expired, _ := x509.ParseCertificate(der)
	wantStatus(t, "an expired certificate of the key", e.send(form("/oauth2/token", ccForm("self"), nil, expired)), 200, "")
	wantStatus(t, "a key not in the JWKS", e.send(form("/oauth2/token", ccForm("self"), nil, rotated)), 400, core.ErrInvalidClient)
	wantStatus(t, "no certificate", e.send(form("/oauth2/token", ccForm("self"), nil)), 400, core.ErrInvalidClient)

	// tls_client_auth is not available without ClientCAs.
	e.addClient(core.ClientSpec{ID: "dn", AuthMethod: core.AuthTLSClientAuth, GrantTypes: []string{"client_credentials"}, TLSClientAuthSubjectDN: clientDN})
	wantStatus(t, "tls_client_auth without ClientCAs", e.send(form("/oauth2/token", ccForm("dn"), nil, ca.issue(clientSubject, e.now))), 400, core.ErrInvalidClient)
}

// urlPEM is cert as nginx's $ssl_client_escaped_cert writes it.
func urlPEM(certs ...*x509.Certificate) string {
	var b []byte
	for _, c := range certs {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	// nginx escapes a space as %20 and '+' as %2B.
	return strings.ReplaceAll(url.QueryEscape(string(b)), "+", "%20")
}

func TestMTLSProxyHeader(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	ca := newTestCA(t, "Test CA", now)
	var logs bytes.Buffer
	e := newEnv(t, false, mtlsOn(ca, func(m *core.MTLS) {
		m.CertificateHeader = "X-Client-Cert"
		m.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	}), func(c *core.Config) { c.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	e.addClient(core.ClientSpec{ID: "dn", AuthMethod: core.AuthTLSClientAuth, GrantTypes: []string{"client_credentials"}, TLSClientAuthSubjectDN: clientDN})
	good := ca.issue(clientSubject, e.now)
	proxyCert := ca.issue(pkix.Name{CommonName: "proxy"}, e.now)
	via := func(peer, header string, direct ...*x509.Certificate) core.Request {
		r := form("/oauth2/token", ccForm("dn"), nil, direct...)
		if header != "" {
			r.hdr.Set("X-Client-Cert", header)
		}
		return proxiedCertReq{r, peer}
	}
	if w := e.send(via("10.1.2.3:443", urlPEM(good), proxyCert)); w.status != 200 {
		t.Fatalf("from a trusted proxy: %d %s\n%s", w.status, w.body, logs.String())
	}
	// Form encoding, plain PEM and base64 DER are read too.
	if w := e.send(via("10.1.2.3:443", url.QueryEscape(string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: good.Raw}))))); w.status != 200 {
		t.Fatalf("form-encoded PEM: %d %s", w.status, w.body)
	}
	if w := e.send(via("10.1.2.3:443", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: good.Raw})))); w.status != 200 {
		t.Fatalf("plain PEM: %d %s", w.status, w.body)
	}
	if w := e.send(via("10.1.2.3:443", base64.StdEncoding.EncodeToString(good.Raw))); w.status != 200 {
		t.Fatalf("base64 DER: %d %s", w.status, w.body)
	}
	// From a trusted proxy, its own certificate is never the client's.
	wantStatus(t, "a trusted proxy without the header", e.send(via("10.1.2.3:443", "", good)), 400, core.ErrInvalidClient)
	wantStatus(t, "garbage in the header", e.send(via("10.1.2.3:443", "not a certificate")), 400, core.ErrInvalidClient)
	// From anyone else the header is ignored (logged once).
	for range 2 {
		wantStatus(t, "from an untrusted peer", e.send(via("192.0.2.7:5555", urlPEM(good))), 400, core.ErrInvalidClient)
	}
	if n := strings.Count(logs.String(), "not a trusted proxy"); n != 1 {
		t.Fatalf("the ignored header was logged %d times:\n%s", n, logs.String())
	}
	// ...and the connection's own certificate counts.
	if w := e.send(via("192.0.2.7:5555", urlPEM(ca.issue(pkix.Name{CommonName: "forged"}, e.now)), good)); w.status != 200 {
		t.Fatalf("an untrusted peer's own certificate: %d %s", w.status, w.body)
	}
	// Without the PeerAddr capability, RemoteAddr decides.
	r := form("/oauth2/token", ccForm("dn"), nil)
	r.hdr.Set("X-Client-Cert", urlPEM(good))
	r.remote = "10.9.9.9:1000"
	if w := e.send(r.fakeReq); w.status != 200 {
		t.Fatalf("a trusted RemoteAddr: %d %s", w.status, w.body)
	}
	r = form("/oauth2/token", ccForm("dn"), nil)
	r.hdr.Set("X-Client-Cert", urlPEM(good))
	if w := e.send(r.fakeReq); w.status != 400 {
		t.Fatalf("an untrusted RemoteAddr: %d %s", w.status, w.body)
	}

	// At a resource the header counts the same way.
	e.rebuild(false, e.store, mtlsOn(ca, func(m *core.MTLS) {
		m.CertificateHeader = "X-Client-Cert"
		m.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
		m.BoundAccessTokens = true
	}))
	tok := e.send(via("10.1.2.3:443", urlPEM(good))).json(t)["access_token"].(string)
	api := func(peer, header string) *core.ResourceError {
		q := &fakeReq{method: "GET", path: "/api", hdr: bearer(tok)}
		if header != "" {
			q.hdr.Set("X-Client-Cert", header)
		}
		_, rerr := e.srv.CheckRequest(proxiedCertReq{certReq{q, nil}, peer})
		return rerr
	}
	if rerr := api("10.1.2.3:443", urlPEM(good)); rerr != nil {
		t.Fatalf("the bound token through the proxy: %s", rerr.Body)
	}
	if rerr := api("192.0.2.7:5555", urlPEM(good)); rerr == nil || rerr.Status != 401 {
		t.Fatalf("the bound token with a header from an untrusted peer: %+v", rerr)
	}
}

func TestMTLSBoundTokens(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	ca := newTestCA(t, "Test CA", now)
	e := newEnv(t, false, mtlsOn(ca, func(m *core.MTLS) { m.BoundAccessTokens = true }))
	e.addClient(core.ClientSpec{ID: "dn", AuthMethod: core.AuthTLSClientAuth, GrantTypes: []string{"client_credentials"}, TLSClientAuthSubjectDN: clientDN})
	good := ca.issue(clientSubject, e.now)
	another := ca.issue(clientSubject, e.now)
	w := e.send(form("/oauth2/token", ccForm("dn"), nil, good))
	wantStatus(t, "token", w, 200, "")
	m := w.json(t)
	tok := m["access_token"].(string)
	if m["token_type"] != "Bearer" {
		t.Fatalf("a certificate-bound token is a Bearer token (RFC 8705 §3): %v", m)
	}
	sum := sha256.Sum256(good.Raw)
	x5t := base64.RawURLEncoding.EncodeToString(sum[:])
	if core.CertificateThumbprint(good) != x5t {
		t.Fatal("CertificateThumbprint")
	}
	api := func(certs ...*x509.Certificate) (*core.TokenInfo, *core.ResourceError) {
		return e.srv.CheckRequest(certReq{&fakeReq{method: "GET", path: "/api", hdr: bearer(tok)}, certs}, "read")
	}
	info, rerr := api(good)
	if rerr != nil || info.X5T != x5t || info.JKT != "" {
		t.Fatalf("with its certificate: %+v %+v", info, rerr)
	}
	for what, certs := range map[string][]*x509.Certificate{"another certificate": {another}, "no certificate": nil} {
		_, rerr := api(certs...)
		if rerr == nil || rerr.Status != 401 || !strings.Contains(string(rerr.Body), core.ErrInvalidToken) {
			t.Fatalf("%s: %+v", what, rerr)
		}
	}
	if _, rerr := e.srv.CheckRequest(&fakeReq{method: "GET", path: "/api", hdr: bearer(tok)}); rerr == nil {
		t.Fatal("a request without the capability passed")
	}
	if info, err := e.srv.CheckToken(context.Background(), tok); err != nil || info.X5T != x5t {
		t.Fatalf("CheckToken reports the binding: %+v %v", info, err)
	}
	in := e.send(form("/oauth2/introspect", url.Values{"token": {tok}}, basic("conf", e.secret))).json(t)
	if cnf, _ := in["cnf"].(map[string]any); in["active"] != true || cnf["x5t#S256"] != x5t || in["token_type"] != "Bearer" {
		t.Fatalf("introspection: %v", in)
	}

	// Any client, any method: the conf client over a connection with a
	// (self-signed, unverified) certificate, in the code flow.
	self, _ := selfSigned(t, "anything", e.now)
	code := e.code("read")
	w = e.send(form("/oauth2/token", url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {confCB}, "code_verifier": {verifier}},
		basic("conf", e.secret), self))
	wantStatus(t, "code with a certificate", w, 200, "")
	if info, err := e.srv.CheckToken(context.Background(), w.json(t)["access_token"].(string)); err != nil || info.X5T != core.CertificateThumbprint(self) {
		t.Fatalf("code grant token: %+v %v", info, err)
	}
	// Without a certificate the token stays a bearer token.
	w = e.send(form("/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, basic("conf", e.secret)))
	if info, err := e.srv.CheckToken(context.Background(), w.json(t)["access_token"].(string)); err != nil || info.X5T != "" {
		t.Fatalf("no certificate: %+v %v", info, err)
	}
}

func TestMTLSClientRequiresBinding(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	ca := newTestCA(t, "Test CA", now)
	e := newEnv(t, false, mtlsOn(ca), dpopOn)
	e.addClient(core.ClientSpec{ID: "dn", AuthMethod: core.AuthTLSClientAuth, GrantTypes: []string{"client_credentials"}, TLSClientAuthSubjectDN: clientDN})
	secret := e.addClient(core.ClientSpec{ID: "bound", GrantTypes: []string{"client_credentials"}, TLSClientCertificateBoundAccessTokens: true})
	good := ca.issue(clientSubject, e.now)
	// BoundAccessTokens off: the dn client's token is a bearer token.
	w := e.send(form("/oauth2/token", ccForm("dn"), nil, good))
	if info, err := e.srv.CheckToken(context.Background(), w.json(t)["access_token"].(string)); err != nil || info.X5T != "" {
		t.Fatalf("unbound: %+v %v", info, err)
	}
	// A client that asks for bound tokens gets them, and is refused
	// without a certificate.
	self, _ := selfSigned(t, "bound", e.now)
	cc := url.Values{"grant_type": {"client_credentials"}}
	w = e.send(form("/oauth2/token", cc, basic("bound", secret), self))
	if info, err := e.srv.CheckToken(context.Background(), w.json(t)["access_token"].(string)); err != nil || info.X5T != core.CertificateThumbprint(self) {
		t.Fatalf("bound: %d %s %+v %v", w.status, w.body, info, err)
	}
	wantStatus(t, "no certificate", e.send(form("/oauth2/token", cc, basic("bound", secret))), 400, core.ErrInvalidRequest)
	// With a DPoP proof, DPoP wins: the token is bound to the key only.
	k := newDPoPKey(t)
	hdr := basic("bound", secret)
	hdr.Set("DPoP", k.proof(e.now, "POST", tokenURL))
	w = e.send(form("/oauth2/token", cc, hdr, self))
	wantStatus(t, "DPoP and a certificate", w, 200, "")
	if m := w.json(t); m["token_type"] != "DPoP" {
		t.Fatalf("DPoP and a certificate: %v", m)
	}
	info, err := e.srv.CheckToken(context.Background(), w.json(t)["access_token"].(string))
	if err != nil || info.JKT != k.jkt() || info.X5T != "" {
		t.Fatalf("DPoP wins: %+v %v", info, err)
	}
	// With MTLS off such a client cannot get a token at all.
	e.rebuild(false, e.store, func(c *core.Config) { c.MTLS = core.MTLS{} })
	wantStatus(t, "MTLS off", e.send(form("/oauth2/token", cc, basic("bound", secret), self)), 400, core.ErrInvalidRequest)
	wantStatus(t, "tls_client_auth with MTLS off", e.send(form("/oauth2/token", ccForm("dn"), nil, good)), 400, core.ErrInvalidClient)
}

func TestMTLSJWTAccessTokenCnf(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	ca := newTestCA(t, "Test CA", now)
	e := newEnv(t, false, mtlsOn(ca, func(m *core.MTLS) { m.BoundAccessTokens = true }), func(c *core.Config) {
		c.OIDC.SigningKeys = oidcKeys(t)
		c.Scopes = append(c.Scopes, core.ScopeOpenID)
		c.AccessTokenFormat = core.FormatJWT
	})
	e.addClient(core.ClientSpec{ID: "dn", AuthMethod: core.AuthTLSClientAuth, GrantTypes: []string{"client_credentials"}, TLSClientAuthSubjectDN: clientDN})
	good := ca.issue(clientSubject, e.now)
	tok := e.send(form("/oauth2/token", ccForm("dn"), nil, good)).json(t)["access_token"].(string)
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %s", tok)
	}
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var claims struct {
		Cnf map[string]string `json:"cnf"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil || claims.Cnf["x5t#S256"] != core.CertificateThumbprint(good) || len(claims.Cnf) != 1 {
		t.Fatalf("cnf: %v %s", err, payload)
	}
	if _, rerr := e.srv.CheckRequest(certReq{&fakeReq{method: "GET", path: "/api", hdr: bearer(tok)}, []*x509.Certificate{good}}); rerr != nil {
		t.Fatalf("the JWT with its certificate: %s", rerr.Body)
	}
	if _, rerr := e.srv.CheckRequest(certReq{&fakeReq{method: "GET", path: "/api", hdr: bearer(tok)}, nil}); rerr == nil {
		t.Fatal("the bound JWT without its certificate")
	}
	in := e.send(form("/oauth2/introspect", url.Values{"token": {tok}}, basic("conf", e.secret))).json(t)
	if cnf, _ := in["cnf"].(map[string]any); cnf["x5t#S256"] != core.CertificateThumbprint(good) {
		t.Fatalf("introspection of the JWT: %v", in)
	}
}

func TestMTLSMetadata(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	ca := newTestCA(t, "Test CA", now)
	meta := func(mod ...func(*core.Config)) map[string]any {
		e := newEnv(t, false, mod...)
		return e.do(&fakeReq{method: "GET", path: "/.well-known/oauth-authorization-server"}).json(t)
	}
	has := func(m map[string]any, member, v string) bool {
		l, _ := m[member].([]any)
		for _, x := range l {
			if x == v {
				return true
			}
		}
		return false
	}
	off := meta()
	if has(off, "token_endpoint_auth_methods_supported", core.AuthTLSClientAuth) || off["tls_client_certificate_bound_access_tokens"] != nil || off["mtls_endpoint_aliases"] != nil {
		t.Fatalf("MTLS off: %v", off)
	}
	on := meta(mtlsOn(ca, func(m *core.MTLS) { m.EndpointAliases = "https://mtls.as.example.com/" }))
	for _, member := range []string{"token_endpoint_auth_methods_supported", "revocation_endpoint_auth_methods_supported", "introspection_endpoint_auth_methods_supported"} {
		if !has(on, member, core.AuthTLSClientAuth) || !has(on, member, core.AuthSelfSignedTLSClientAuth) {
			t.Fatalf("%s: %v", member, on[member])
		}
	}
	if on["tls_client_certificate_bound_access_tokens"] != true {
		t.Fatalf("tls_client_certificate_bound_access_tokens: %v", on)
	}
	aliases, _ := on["mtls_endpoint_aliases"].(map[string]any)
	if aliases["token_endpoint"] != "https://mtls.as.example.com/oauth2/token" || aliases["introspection_endpoint"] != "https://mtls.as.example.com/oauth2/introspect" ||
		aliases["revocation_endpoint"] != "https://mtls.as.example.com/oauth2/revoke" || aliases["authorization_endpoint"] != nil {
		t.Fatalf("mtls_endpoint_aliases: %v", aliases)
	}
	noCA := meta(func(c *core.Config) { c.MTLS.Enabled = true })
	if has(noCA, "token_endpoint_auth_methods_supported", core.AuthTLSClientAuth) || !has(noCA, "token_endpoint_auth_methods_supported", core.AuthSelfSignedTLSClientAuth) {
		t.Fatalf("without ClientCAs: %v", noCA["token_endpoint_auth_methods_supported"])
	}
}

func TestMTLSConfig(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	ca := newTestCA(t, "Test CA", now)
	for name, m := range map[string]core.MTLS{
		"fields without Enabled": {ClientCAs: ca.pool},
		"bound without Enabled":  {BoundAccessTokens: true},
		"header without proxies": {Enabled: true, CertificateHeader: "X-Client-Cert"},
		"bad header name":        {Enabled: true, CertificateHeader: "X Client Cert", TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}},
		"invalid proxy":          {Enabled: true, TrustedProxies: []netip.Prefix{{}}},
		"http aliases":           {Enabled: true, EndpointAliases: "http://mtls.example.com"},
		"aliases with a query":   {Enabled: true, EndpointAliases: "https://mtls.example.com/?x=1"},
	} {
		cfg := core.Config{Issuer: issuer, Keys: core.Keys{CryptKey: make([]byte, 32), SignKey: make([]byte, 32)}, MTLS: m}
		var srv *core.Server
		if _, err := core.New(cfg, memstore.New(), &testAuth{srv: &srv}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestNewClientMTLS(t *testing.T) {
	k := newECKey(t)
	jwks := jwksOf(t, k.Public())
	for name, spec := range map[string]core.ClientSpec{
		"no name":            {AuthMethod: core.AuthTLSClientAuth},
		"two names":          {AuthMethod: core.AuthTLSClientAuth, TLSClientAuthSubjectDN: clientDN, TLSClientAuthSANDNS: "a.example"},
		"bad DN":             {AuthMethod: core.AuthTLSClientAuth, TLSClientAuthSubjectDN: "CN=a,"},
		"DN without type":    {AuthMethod: core.AuthTLSClientAuth, TLSClientAuthSubjectDN: "client-one"},
		"bad DN escape":      {AuthMethod: core.AuthTLSClientAuth, TLSClientAuthSubjectDN: `CN=a\q`},
		"bad IP":             {AuthMethod: core.AuthTLSClientAuth, TLSClientAuthSANIP: "300.1.1.1"},
		"relative URI":       {AuthMethod: core.AuthTLSClientAuth, TLSClientAuthSANURI: "/client"},
		"with a secret":      {AuthMethod: core.AuthTLSClientAuth, TLSClientAuthSubjectDN: clientDN, Secret: strings.Repeat("s", 40)},
		"public":             {AuthMethod: core.AuthTLSClientAuth, TLSClientAuthSubjectDN: clientDN, Public: true},
		"with keys":          {AuthMethod: core.AuthTLSClientAuth, TLSClientAuthSubjectDN: clientDN, JWKS: jwks},
		"self without keys":  {AuthMethod: core.AuthSelfSignedTLSClientAuth},
		"self with a DN":     {AuthMethod: core.AuthSelfSignedTLSClientAuth, JWKS: jwks, TLSClientAuthSubjectDN: clientDN},
		"DN for a secret":    {TLSClientAuthSubjectDN: clientDN},
		"self public":        {AuthMethod: core.AuthSelfSignedTLSClientAuth, JWKS: jwks, Public: true},
		"self with bad JWKS": {AuthMethod: core.AuthSelfSignedTLSClientAuth, JWKS: `{"keys":[]}`},
	} {
		spec.GrantTypes = []string{"client_credentials"}
		if _, _, err := core.NewClient(spec); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	for name, spec := range map[string]core.ClientSpec{
		"dn":    {AuthMethod: core.AuthTLSClientAuth, TLSClientAuthSubjectDN: clientDN},
		"ip":    {AuthMethod: core.AuthTLSClientAuth, TLSClientAuthSANIP: "2001:db8::1"},
		"email": {AuthMethod: core.AuthTLSClientAuth, TLSClientAuthSANEmail: "c@example.com"},
		"self":  {AuthMethod: core.AuthSelfSignedTLSClientAuth, JWKSURI: "https://client.example.com/jwks.json"},
		"bound": {TLSClientCertificateBoundAccessTokens: true},
	} {
		spec.GrantTypes = []string{"client_credentials"}
		c, secret, err := core.NewClient(spec)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if (spec.AuthMethod != "") != (secret == "" && c.SecretHash == "") || c.AuthMethod != spec.AuthMethod ||
			c.TLSClientAuthSubjectDN != spec.TLSClientAuthSubjectDN || c.TLSClientAuthSANIP != spec.TLSClientAuthSANIP ||
			c.TLSClientAuthSANEmail != spec.TLSClientAuthSANEmail || c.JWKSURI != spec.JWKSURI || c.TLSClientCertificateBoundAccessTokens != spec.TLSClientCertificateBoundAccessTokens {
			t.Errorf("%s: %+v", name, c)
		}
	}
}

func TestMTLSSANIPAndEmail(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	ca := newTestCA(t, "Test CA", now)
	e := newEnv(t, false, mtlsOn(ca))
	e.addClient(core.ClientSpec{ID: "ip", AuthMethod: core.AuthTLSClientAuth, GrantTypes: []string{"client_credentials"}, TLSClientAuthSANIP: "192.0.2.10"})
	e.addClient(core.ClientSpec{ID: "mail", AuthMethod: core.AuthTLSClientAuth, GrantTypes: []string{"client_credentials"}, TLSClientAuthSANEmail: "svc@example.com"})
	ipCert := ca.issue(pkix.Name{CommonName: "x"}, e.now, func(c *x509.Certificate) { c.IPAddresses = []net.IP{net.ParseIP("192.0.2.10")} })
	mailCert := ca.issue(pkix.Name{CommonName: "x"}, e.now, func(c *x509.Certificate) { c.EmailAddresses = []string{"svc@example.com"} })
	wantStatus(t, "ip", e.send(form("/oauth2/token", ccForm("ip"), nil, ipCert)), 200, "")
	wantStatus(t, "mail", e.send(form("/oauth2/token", ccForm("mail"), nil, mailCert)), 200, "")
	wantStatus(t, "ip with the mail cert", e.send(form("/oauth2/token", ccForm("ip"), nil, mailCert)), 400, core.ErrInvalidClient)
}
