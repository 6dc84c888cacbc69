package adaptertest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/oauth2kit/oauth2kit/core"
	"github.com/oauth2kit/oauth2kit/core/memstore"
)

// The route a TLSMount serves besides the server's endpoints.
const (
	// PathBound is served for GET behind the adapter's middleware for the
	// server's own audience with scope BoundScope (MiddlewareFor(s, "",
	// BoundScope)); the handler answers BoundResponse.
	PathBound = "/api/bound"
	// BoundScope is the scope PathBound demands, the one the suite's
	// tokens are issued for.
	BoundScope = "read"
)

// TLSMount serves a core.Server through the adapter under test over TLS,
// with client certificates (RFC 8705).
//
// It must, in this order:
//
//  1. listen on 127.0.0.1 (port 0 is fine) over TLS configured with config
//     (a clone of it will do, as long as its Certificates and ClientAuth
//     are kept: the suite's server certificate for 127.0.0.1, and
//     tls.RequestClientCert or tls.VerifyClientCertIfGiven with the
//     suite's ClientCAs) and work out the base URL,
//     "https://127.0.0.1:<port>", without a trailing slash;
//  2. call newServer(baseURL) exactly once, from the test goroutine;
//  3. route every path of s.Paths() (any method) to the adapter's endpoint
//     handler, and GET PathBound through the adapter's MiddlewareFor(s, "",
//     BoundScope) to a handler that answers 200 with
//     "Content-Type: application/json" and the body BoundResponse(info),
//     info being the token info the middleware handed it;
//  4. start serving, and arrange with t.Cleanup to stop serving;
//  5. return the base URL (identical to the one passed to newServer).
//
// RunMTLS calls TLSMount once per subtest, never concurrently.
type TLSMount func(t *testing.T, config *tls.Config, newServer func(baseURL string) *core.Server) (baseURL string)

// BoundResponse is the body PathBound answers with: {"client_id",
// "x5t#S256"} of the token info (TokenInfo.X5T, the thumbprint of the
// certificate the token is bound to).
func BoundResponse(info *core.TokenInfo) []byte {
	out, err := json.Marshal(bound{ClientID: info.ClientID, X5T: info.X5T})
	if err != nil {
		// Marshalling two strings cannot fail.
		panic(err)
	}
	return out
}

type bound struct {
	ClientID string `json:"client_id"`
	X5T      string `json:"x5t#S256"`
}

// The tls_client_auth client of RunMTLS's servers and the subject of its
// certificates.
const (
	mtlsClientID  = "payments"
	mtlsSubjectDN = "CN=payments-client,O=Example Corp,C=SE"
)

// RunMTLS checks certificate-bound access tokens (RFC 8705) through the
// adapter, over real TLS connections: a tls_client_auth client gets a
// client_credentials token only with its certificate, and that token is
// bound to it. The middleware at PathBound accepts the token with that
// certificate, handing the handler the certificate's thumbprint, and
// refuses it without a certificate or with another one (of the same
// subject, from the same CA). It runs once with the TLS stack only asking
// for certificates (tls.RequestClientCert, the server verifies them) and
// once with it verifying those given (tls.VerifyClientCertIfGiven).
func RunMTLS(t *testing.T, mount TLSMount) {
	t.Helper()
	if mount == nil {
		t.Fatal("adaptertest: RunMTLS needs a TLSMount")
	}
	pki := newMTLSPKI(t)
	for _, auth := range []tls.ClientAuthType{tls.RequestClientCert, tls.VerifyClientCertIfGiven} {
		t.Run(auth.String(), func(t *testing.T) {
			config := &tls.Config{ClientAuth: auth, Certificates: []tls.Certificate{pki.server}}
			if auth == tls.VerifyClientCertIfGiven {
				config.ClientCAs = pki.roots
			}
			e := newMTLSEnv(t, mount, config, pki)
			withCert, withAlt, without := pki.httpClient(t, pki.client), pki.httpClient(t, pki.alt), pki.httpClient(t)

			token := func(c *http.Client) *response {
				t.Helper()
				form := url.Values{"grant_type": {"client_credentials"}, "client_id": {mtlsClientID}, "scope": {BoundScope}}
				return e.post(c, "/oauth2/token", form.Encode(), nil)
			}
			wantOAuthError(t, token(without), 400, core.ErrInvalidClient)
			r := token(withCert)
			wantStatus(t, r, 200)
			wantJSONHeaders(t, r)
			m := decodeJSON(t, r)
			at, _ := m["access_token"].(string)
			if m["token_type"] != "Bearer" || at == "" {
				t.Fatalf("token: %s", r.body)
			}

			call := func(c *http.Client) *response {
				t.Helper()
				return e.get(c, PathBound, bearer(at))
			}
			r = call(withCert)
			wantStatus(t, r, 200)
			if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("%s: Content-Type = %q, want application/json", r.what, ct)
			}
			var got bound
			if err := json.Unmarshal(r.body, &got); err != nil {
				t.Fatalf("%s: body %q: %v", r.what, r.body, err)
			}
			if want := (bound{ClientID: mtlsClientID, X5T: core.CertificateThumbprint(pki.client.Leaf)}); got != want {
				t.Errorf("the bound token with its certificate: the handler saw %+v, want %+v", got, want)
			}
			for name, c := range map[string]*http.Client{"without a certificate": without, "with another certificate": withAlt} {
				t.Run(name, func(t *testing.T) {
					wantBearerError(t, e, call(c), 401, core.ErrInvalidToken, "")
				})
			}
		})
	}
}

// newMTLSEnv mounts a server whose tls_client_auth client mtlsClientID
// gets certificate-bound tokens.
func newMTLSEnv(t *testing.T, mount TLSMount, config *tls.Config, pki *mtlsPKI) *env {
	t.Helper()
	e := &env{t: t, store: memstore.New(), clock: &testClock{}, secrets: map[string]string{}}
	calls := 0
	var given string
	newServer := func(baseURL string) *core.Server {
		t.Helper()
		calls++
		given = baseURL
		if calls > 1 {
			t.Fatalf("adaptertest: TLSMount called newServer %d times; once is the contract", calls)
		}
		srv, err := core.New(core.Config{
			Issuer: baseURL,
			Keys:   core.Keys{CryptKey: make32(), SignKey: make32()},
			Scopes: []string{BoundScope},
			Now:    e.clock.now,
			Logger: slog.New(slog.DiscardHandler),
			MTLS:   core.MTLS{Enabled: true, ClientCAs: pki.roots, BoundAccessTokens: true},
		}, e.store, &loginApp{})
		if err != nil {
			t.Fatalf("adaptertest: core.New with issuer %q: %v", baseURL, err)
		}
		c, _, err := core.NewClient(core.ClientSpec{ID: mtlsClientID, AuthMethod: core.AuthTLSClientAuth,
			TLSClientAuthSubjectDN: mtlsSubjectDN, GrantTypes: []string{core.GrantClientCredentials}})
		if err != nil {
			t.Fatal(err)
		}
		e.store.AddClient(c)
		e.srv = srv
		return srv
	}
	e.base = mount(t, config, newServer)
	switch {
	case calls != 1:
		t.Fatalf("adaptertest: TLSMount called newServer %d times; once is the contract", calls)
	case e.base != given:
		t.Fatalf("adaptertest: TLSMount returned base URL %q but built the server for %q", e.base, given)
	case !strings.HasPrefix(e.base, "https://") || strings.HasSuffix(e.base, "/"):
		t.Fatalf("adaptertest: base URL %q is not https://host:port", e.base)
	}
	return e
}

// httpClient is a client that trusts the CA's server certificate and
// presents certs.
func (p *mtlsPKI) httpClient(t *testing.T, certs ...tls.Certificate) *http.Client {
	tr := &http.Transport{
		DialContext:     (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		TLSClientConfig: &tls.Config{RootCAs: p.roots, Certificates: certs},
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 15 * time.Second, CheckRedirect: noRedirect}
}

// mtlsPKI is a CA, two client certificates of the same subject it issued
// (with different keys) and a server certificate for 127.0.0.1.
type mtlsPKI struct {
	roots               *x509.CertPool
	client, alt, server tls.Certificate
}

func newMTLSPKI(t *testing.T) *mtlsPKI {
	t.Helper()
	now := time.Now()
	newKey := func() *ecdsa.PrivateKey {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return key
	}
	caKey := newKey()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	issue := func(serial int64, edit func(*x509.Certificate)) tls.Certificate {
		key := newKey()
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial),
			Subject:   pkix.Name{CommonName: "payments-client", Organization: []string{"Example Corp"}, Country: []string{"SE"}},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
		if edit != nil {
			edit(tmpl)
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
		if err != nil {
			t.Fatal(err)
		}
		leaf, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	return &mtlsPKI{roots: roots, client: issue(2, nil), alt: issue(3, nil), server: issue(4, func(c *x509.Certificate) {
		c.Subject, c.ExtKeyUsage = pkix.Name{CommonName: "127.0.0.1"}, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		c.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	})}
}

// CheckPeerCapabilities checks the optional capabilities of q, the
// adapter's core.Request for a request over a connection from peer (a
// host:port) that presented leaf (nil: no TLS, or no certificate):
// core.PeerCertificates answers leaf itself (nil for nil), and
// core.PeerAddr answers peer, whatever proxies the adapter trusts.
func CheckPeerCapabilities(t *testing.T, q core.Request, leaf *x509.Certificate, peer string) {
	t.Helper()
	pc, ok := q.(core.PeerCertificates)
	if !ok {
		t.Fatal("the Request does not implement core.PeerCertificates")
	}
	if got := pc.PeerCertificates(); leaf == nil && got != nil || leaf != nil && (len(got) != 1 || got[0] != leaf) {
		t.Errorf("PeerCertificates: %v, want %v", got, leaf)
	}
	pa, ok := q.(core.PeerAddr)
	if !ok {
		t.Fatal("the Request does not implement core.PeerAddr")
	}
	if got := pa.PeerAddr(); got != peer {
		t.Errorf("PeerAddr: %q, want %q", got, peer)
	}
}
