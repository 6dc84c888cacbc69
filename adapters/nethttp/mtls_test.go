package nethttp_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/oauth2kit/oauth2kit/adapters/nethttp"
	"github.com/oauth2kit/oauth2kit/core"
	"github.com/oauth2kit/oauth2kit/core/memstore"
)

// mtlsPKI is a CA and two client certificates of the same subject it
// issued (with different keys).
type mtlsPKI struct {
	roots       *x509.CertPool
	client, alt tls.Certificate
}

const mtlsSubjectDN = "CN=payments-client,O=Example Corp,C=SE"

func newPKI(t *testing.T) *mtlsPKI {
	t.Helper()
	now := time.Now()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	issue := func(serial int64) tls.Certificate {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial),
			Subject:   pkix.Name{CommonName: "payments-client", Organization: []string{"Example Corp"}, Country: []string{"SE"}},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
		if err != nil {
			t.Fatal(err)
		}
		leaf, _ := x509.ParseCertificate(der)
		return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	return &mtlsPKI{roots: roots, client: issue(2), alt: issue(3)}
}

// TestMTLSOverRealTLS obtains a certificate-bound client_credentials
// token with tls_client_auth over a real TLS connection and uses it at a
// MiddlewareFor-protected route: accepted with the certificate, refused
// without it or with another one.
func TestMTLSOverRealTLS(t *testing.T) {
	pki := newPKI(t)
	ts := httptest.NewUnstartedServer(nil)
	// The TLS stack only asks for the certificate; the server verifies it.
	ts.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
	base := "https://" + ts.Listener.Addr().String()
	store := memstore.New()
	srv, err := core.New(core.Config{
		Issuer: base,
		Keys:   core.Keys{CryptKey: make([]byte, 32), SignKey: []byte("0123456789abcdef0123456789abcdef")},
		Scopes: []string{"read"},
		Logger: slog.New(slog.DiscardHandler),
		MTLS:   core.MTLS{Enabled: true, ClientCAs: pki.roots, BoundAccessTokens: true},
	}, store, &e2eApp{})
	if err != nil {
		t.Fatal(err)
	}
	c, _, err := core.NewClient(core.ClientSpec{ID: "payments", AuthMethod: core.AuthTLSClientAuth,
		TLSClientAuthSubjectDN: mtlsSubjectDN, GrantTypes: []string{core.GrantClientCredentials}})
	if err != nil {
		t.Fatal(err)
	}
	store.AddClient(c)
	mux := http.NewServeMux()
	nethttp.Mount(mux, srv)
	mux.Handle("GET /api/me", nethttp.MiddlewareFor(srv, "", "read")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info, _ := nethttp.TokenInfo(r.Context())
		_, _ = w.Write([]byte(info.ClientID + " " + info.X5T))
	})))
	ts.Config.Handler = mux
	ts.StartTLS()
	t.Cleanup(ts.Close)

	client := func(certs ...tls.Certificate) *http.Client {
		tr := ts.Client().Transport.(*http.Transport).Clone()
		tr.TLSClientConfig.Certificates = certs
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr, Timeout: 10 * time.Second}
	}
	withCert, withAlt, without := client(pki.client), client(pki.alt), client()

	token := func(hc *http.Client) (int, map[string]any) {
		res, err := hc.PostForm(base+"/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {"payments"}, "scope": {"read"}})
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(res.Body).Decode(&m)
		return res.StatusCode, m
	}
	if status, m := token(without); status != 400 || m["error"] != core.ErrInvalidClient {
		t.Fatalf("token without a certificate: %d %v", status, m)
	}
	status, m := token(withCert)
	if status != 200 || m["token_type"] != "Bearer" {
		t.Fatalf("token: %d %v", status, m)
	}
	at := m["access_token"].(string)

	api := func(hc *http.Client) (int, string) {
		req, _ := http.NewRequest("GET", base+"/api/me", nil)
		req.Header.Set("Authorization", "Bearer "+at)
		res, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	if status, body := api(withCert); status != 200 || body != "payments "+core.CertificateThumbprint(pki.client.Leaf) {
		t.Fatalf("the bound token with its certificate: %d %q", status, body)
	}
	for name, hc := range map[string]*http.Client{"without a certificate": without, "with another certificate": withAlt} {
		if status, body := api(hc); status != 401 || !strings.Contains(body, core.ErrInvalidToken) {
			t.Fatalf("the bound token %s: %d %q", name, status, body)
		}
	}
}

// The adapter's requests carry the TLS peer's chain and the connection's
// peer address, with or without TrustedProxies.
func TestRequestPeerCapabilities(t *testing.T) {
	pki := newPKI(t)
	r := httptest.NewRequest("GET", "https://as.example/", nil)
	r.RemoteAddr = "10.0.0.1:443"
	r.Header.Set("X-Forwarded-For", "198.51.100.7")
	r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{pki.client.Leaf}}
	for name, q := range map[string]core.Request{
		"plain":   nethttp.Request(r),
		"proxied": nethttp.Request(r, nethttp.TrustedProxies(netip.MustParsePrefix("10.0.0.0/8"))),
	} {
		pc, ok := q.(core.PeerCertificates)
		if !ok || len(pc.PeerCertificates()) != 1 || pc.PeerCertificates()[0] != pki.client.Leaf {
			t.Errorf("%s: PeerCertificates %v", name, ok)
		}
		pa, ok := q.(core.PeerAddr)
		if !ok || pa.PeerAddr() != "10.0.0.1:443" {
			t.Errorf("%s: PeerAddr %v", name, ok)
		}
	}
	r.TLS = nil
	if certs := nethttp.Request(r).(core.PeerCertificates).PeerCertificates(); certs != nil {
		t.Errorf("without TLS: %v", certs)
	}
}
