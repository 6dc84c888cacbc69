package echoadapter_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	echoadapter "github.com/oauth2kit/oauth2kit/adapters/echo"
	"github.com/oauth2kit/oauth2kit/core/adaptertest"
)

// The adapter's overhead against plain net/http: the same server and
// endpoints behind echo and behind adaptertest.PlainHandler (net/http
// straight onto core), in process (ServeHTTP into a ResponseRecorder, no
// network). Both protected routes answer adaptertest.ProtectedResponse.
// Run with
//
//	go test -run='^$' -bench=. -count=3

// benchMounts returns the echo and plain handlers over one server, and a
// token with scope read.
func benchMounts(b *testing.B) (k *kit, handlers []namedHandler, token string) {
	k = newKit(b, "https://auth.example.test", nil)
	e := echo.New()
	echoadapter.Mount(e, k.srv)
	e.GET(adaptertest.PathMe, func(c echo.Context) error {
		info, _ := echoadapter.TokenInfo(c)
		return c.Blob(http.StatusOK, "application/json", adaptertest.ProtectedResponse(info, nil))
	}, echoadapter.Middleware(k.srv))
	return k, []namedHandler{{"echo", e}, {"plain", adaptertest.PlainHandler(k.srv)}}, k.token(b, e, "/oauth2/token", "read")
}

type namedHandler struct {
	name string
	h    http.Handler
}

// run serves r (rebuilt by next for every iteration) and demands status.
func run(b *testing.B, h http.Handler, status int, next func() *http.Request) {
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, next())
		if w.Code != status {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}

func BenchmarkTokenClientCredentials(b *testing.B) {
	k, handlers, _ := benchMounts(b)
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}.Encode()
	for _, nh := range handlers {
		b.Run(nh.name, func(b *testing.B) {
			r := k.tokenRequest("/oauth2/token", "read")
			body := strings.NewReader(form)
			run(b, nh.h, http.StatusOK, func() *http.Request {
				body.Reset(form)
				r.Body = io.NopCloser(body)
				return r
			})
		})
	}
}

func BenchmarkProtected(b *testing.B) {
	_, handlers, token := benchMounts(b)
	for _, nh := range handlers {
		b.Run(nh.name, func(b *testing.B) {
			r := httptest.NewRequest(http.MethodGet, adaptertest.PathMe, nil)
			r.Header.Set("Authorization", "Bearer "+token)
			run(b, nh.h, http.StatusOK, func() *http.Request { return r })
		})
	}
}

func BenchmarkMetadata(b *testing.B) {
	_, handlers, _ := benchMounts(b)
	for _, nh := range handlers {
		b.Run(nh.name, func(b *testing.B) {
			r := httptest.NewRequest(http.MethodGet, "/.well-known/oauth-authorization-server", nil)
			run(b, nh.h, http.StatusOK, func() *http.Request { return r })
		})
	}
}
