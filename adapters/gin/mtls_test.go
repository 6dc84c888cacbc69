package ginadapter_test

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
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	ginadapter "github.com/oauth2kit/oauth2kit/adapters/gin"
	"github.com/oauth2kit/oauth2kit/core"
	"github.com/oauth2kit/oauth2kit/core/memstore"
)

// TestMTLSOverRealTLS: a certificate-bound token (RFC 8705) through the
// gin mount and MiddlewareFor, over a TLS server that requests client
// certificates.
func TestMTLSOverRealTLS(t *testing.T) {
	pki := newPKI(t)
	ts := httptest.NewUnstartedServer(nil)
	ts.TLS = &tls.Config{ClientAuth: tls.RequestClientCert, Certificates: []tls.Certificate{pki.server}}
	base := "https://" + ts.Listener.Addr().String()
	srv := mtlsServer(t, base, pki)
	r := gin.New()
	ginadapter.Mount(r, srv)
	r.GET("/api/me", ginadapter.MiddlewareFor(srv, "", "read"), func(c *gin.Context) {
		info, _ := ginadapter.TokenInfo(c)
		c.String(http.StatusOK, info.ClientID+" "+info.X5T)
	})
	ts.Config.Handler = r
	ts.StartTLS()
	t.Cleanup(ts.Close)
	checkMTLSFlow(t, base, pki)
}

func TestRequestPeerCapabilities(t *testing.T) {
	pki := newPKI(t)
	c, _ := gin.CreateTestContext(httptest.NewRecorder())
	c.Request = httptest.NewRequest("GET", "https://as.example/", nil)
	c.Request.RemoteAddr = "10.0.0.1:443"
	c.Request.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{pki.client.Leaf}}
	checkPeerCapabilities(t, ginadapter.Request(c), pki.client.Leaf, "10.0.0.1:443")
	c.Request.TLS = nil
	checkPeerCapabilities(t, ginadapter.Request(c), nil, "10.0.0.1:443")
}

// mtlsPKI is a CA, two client certificates of the same subject it issued
// (with different keys) and a server certificate for 127.0.0.1.
type mtlsPKI struct {
	roots               *x509.CertPool
	client, alt, server tls.Certificate
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
	issue := func(serial int64, edit func(*x509.Certificate)) tls.Certificate {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
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
		leaf, _ := x509.ParseCertificate(der)
		return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	return &mtlsPKI{roots: roots, client: issue(2, nil), alt: issue(3, nil), server: issue(4, func(c *x509.Certificate) {
		c.Subject, c.ExtKeyUsage = pkix.Name{CommonName: "127.0.0.1"}, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		c.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	})}
}

// mtlsServer is a server whose tls_client_auth client "payments" gets
// certificate-bound tokens.
func mtlsServer(t *testing.T, issuer string, pki *mtlsPKI) *core.Server {
	t.Helper()
	store := memstore.New()
	srv, err := core.New(core.Config{
		Issuer: issuer,
		Keys:   core.Keys{CryptKey: make([]byte, 32), SignKey: []byte("0123456789abcdef0123456789abcdef")},
		Scopes: []string{"read"},
		MTLS:   core.MTLS{Enabled: true, ClientCAs: pki.roots, BoundAccessTokens: true},
		Logger: slog.New(slog.DiscardHandler),
	}, store, noLogin{})
	if err != nil {
		t.Fatal(err)
	}
	c, _, err := core.NewClient(core.ClientSpec{ID: "payments", AuthMethod: core.AuthTLSClientAuth,
		TLSClientAuthSubjectDN: mtlsSubjectDN, GrantTypes: []string{core.GrantClientCredentials}})
	if err != nil {
		t.Fatal(err)
	}
	store.AddClient(c)
	return srv
}

// checkMTLSFlow obtains a bound client_credentials token with
// tls_client_auth at base over TLS and uses it at base/api/me (which
// answers "<client id> <x5t#S256>"): accepted with the certificate,
// refused without it or with another one.
func checkMTLSFlow(t *testing.T, base string, pki *mtlsPKI) {
	t.Helper()
	client := func(certs ...tls.Certificate) *http.Client {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pki.roots, Certificates: certs}}
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

// checkPeerCapabilities checks a Request over a connection from peer
// that presented leaf.
func checkPeerCapabilities(t *testing.T, q core.Request, leaf *x509.Certificate, peer string) {
	t.Helper()
	pc, ok := q.(core.PeerCertificates)
	if !ok {
		t.Fatal("the Request does not implement core.PeerCertificates")
	}
	if got := pc.PeerCertificates(); leaf == nil && got != nil || leaf != nil && (len(got) != 1 || got[0] != leaf) {
		t.Errorf("PeerCertificates: %v", got)
	}
	pa, ok := q.(core.PeerAddr)
	if !ok || pa.PeerAddr() != peer {
		t.Errorf("PeerAddr: %v", ok)
	}
}
