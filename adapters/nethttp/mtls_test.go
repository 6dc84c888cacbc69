package nethttp_test

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/oauth2kit/oauth2kit/adapters/nethttp"
	"github.com/oauth2kit/oauth2kit/core"
	"github.com/oauth2kit/oauth2kit/core/adaptertest"
)

// TestMTLSOverRealTLS: certificate-bound tokens (RFC 8705) through the
// net/http mount and MiddlewareFor, over a TLS server that asks for client
// certificates.
func TestMTLSOverRealTLS(t *testing.T) {
	adaptertest.RunMTLS(t, func(t *testing.T, config *tls.Config, newServer func(string) *core.Server) string {
		ts := httptest.NewUnstartedServer(nil)
		ts.TLS = config
		base := "https://" + ts.Listener.Addr().String()
		s := newServer(base)
		mux := http.NewServeMux()
		nethttp.Mount(mux, s)
		mux.Handle("GET "+adaptertest.PathBound, nethttp.MiddlewareFor(s, "", adaptertest.BoundScope)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			info, _ := nethttp.TokenInfo(r.Context())
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(adaptertest.BoundResponse(info))
		})))
		ts.Config.Handler = mux
		ts.StartTLS()
		t.Cleanup(ts.Close)
		return base
	})
}

// The adapter's requests carry the TLS peer's chain and the connection's
// peer address, with or without TrustedProxies.
func TestRequestPeerCapabilities(t *testing.T) {
	leaf := new(x509.Certificate) // any certificate: the adapter hands it on
	r := httptest.NewRequest("GET", "https://as.example/", nil)
	r.RemoteAddr = "10.0.0.1:443"
	r.Header.Set("X-Forwarded-For", "198.51.100.7")
	r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf}}
	for name, q := range map[string]core.Request{
		"plain":   nethttp.Request(r),
		"proxied": nethttp.Request(r, nethttp.TrustedProxies(netip.MustParsePrefix("10.0.0.0/8"))),
	} {
		t.Run(name, func(t *testing.T) { adaptertest.CheckPeerCapabilities(t, q, leaf, "10.0.0.1:443") })
	}
	r.TLS = nil
	adaptertest.CheckPeerCapabilities(t, nethttp.Request(r), nil, "10.0.0.1:443")
}
