package echoadapter_test

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/labstack/echo/v4"

	echoadapter "github.com/oauth2kit/oauth2kit/adapters/echo"
	"github.com/oauth2kit/oauth2kit/core"
	"github.com/oauth2kit/oauth2kit/core/adaptertest"
)

// TestMTLSOverRealTLS: certificate-bound tokens (RFC 8705) through the
// echo mount and MiddlewareFor, over a TLS server that asks for client
// certificates.
func TestMTLSOverRealTLS(t *testing.T) {
	adaptertest.RunMTLS(t, func(t *testing.T, config *tls.Config, newServer func(string) *core.Server) string {
		ts := httptest.NewUnstartedServer(nil)
		ts.TLS = config
		base := "https://" + ts.Listener.Addr().String()
		s := newServer(base)
		e := echo.New()
		echoadapter.Mount(e, s)
		e.GET(adaptertest.PathBound, func(c echo.Context) error {
			info, _ := echoadapter.TokenInfo(c)
			return c.Blob(http.StatusOK, "application/json", adaptertest.BoundResponse(info))
		}, echoadapter.MiddlewareFor(s, "", adaptertest.BoundScope))
		ts.Config.Handler = e
		ts.StartTLS()
		t.Cleanup(ts.Close)
		return base
	})
}

func TestRequestPeerCapabilities(t *testing.T) {
	leaf := new(x509.Certificate) // any certificate: the adapter hands it on
	req := httptest.NewRequest("GET", "https://as.example/", nil)
	req.RemoteAddr = "10.0.0.1:443"
	req.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf}}
	e := echo.New()
	adaptertest.CheckPeerCapabilities(t, echoadapter.Request(e.NewContext(req, httptest.NewRecorder())), leaf, "10.0.0.1:443")
	req.TLS = nil
	adaptertest.CheckPeerCapabilities(t, echoadapter.Request(e.NewContext(req, httptest.NewRecorder())), nil, "10.0.0.1:443")
}
