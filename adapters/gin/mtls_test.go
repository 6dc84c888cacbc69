package ginadapter_test

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gin-gonic/gin"

	ginadapter "github.com/oauth2kit/oauth2kit/adapters/gin"
	"github.com/oauth2kit/oauth2kit/core"
	"github.com/oauth2kit/oauth2kit/core/adaptertest"
)

// TestMTLSOverRealTLS: certificate-bound tokens (RFC 8705) through the gin
// mount and MiddlewareFor, over a TLS server that asks for client
// certificates.
func TestMTLSOverRealTLS(t *testing.T) {
	adaptertest.RunMTLS(t, func(t *testing.T, config *tls.Config, newServer func(string) *core.Server) string {
		ts := httptest.NewUnstartedServer(nil)
		ts.TLS = config
		base := "https://" + ts.Listener.Addr().String()
		s := newServer(base)
		r := gin.New()
		ginadapter.Mount(r, s)
		r.GET(adaptertest.PathBound, ginadapter.MiddlewareFor(s, "", adaptertest.BoundScope), func(c *gin.Context) {
			info, _ := ginadapter.TokenInfo(c)
			c.Data(http.StatusOK, "application/json", adaptertest.BoundResponse(info))
		})
		ts.Config.Handler = r
		ts.StartTLS()
		t.Cleanup(ts.Close)
		return base
	})
}

func TestRequestPeerCapabilities(t *testing.T) {
	leaf := new(x509.Certificate) // any certificate: the adapter hands it on
	c, _ := gin.CreateTestContext(httptest.NewRecorder())
	c.Request = httptest.NewRequest("GET", "https://as.example/", nil)
	c.Request.RemoteAddr = "10.0.0.1:443"
	c.Request.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf}}
	adaptertest.CheckPeerCapabilities(t, ginadapter.Request(c), leaf, "10.0.0.1:443")
	c.Request.TLS = nil
	adaptertest.CheckPeerCapabilities(t, ginadapter.Request(c), nil, "10.0.0.1:443")
}
