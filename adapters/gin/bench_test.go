package ginadapter_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	ginadapter "github.com/oauth2kit/oauth2kit/adapters/gin"
	"github.com/oauth2kit/oauth2kit/core"
	"github.com/oauth2kit/oauth2kit/core/adaptertest"
)

// The gin adapter's overhead against plain net/http on the same
// endpoints, in process: each request goes through the router's ServeHTTP
// into an httptest.ResponseRecorder, no network. The baseline is
// adaptertest.PlainHandler, net/http straight onto core. Both sides pay the
// same harness cost (a recorder per request) and answer the protected
// route with adaptertest.ProtectedResponse. Run with
//
//	go test -run='^$' -bench=. -count=3

// adapters build the same routes on each side: the kit's endpoints and
// GET /api/me behind the token check.
var adapters = []struct {
	name  string
	build func(*core.Server) http.Handler
}{
	{"plain", adaptertest.PlainHandler},
	{"gin", func(s *core.Server) http.Handler {
		r := gin.New()
		ginadapter.Mount(r, s)
		r.GET(adaptertest.PathMe, ginadapter.Middleware(s), func(c *gin.Context) {
			info, _ := ginadapter.TokenInfo(c)
			c.Data(http.StatusOK, "application/json", adaptertest.ProtectedResponse(info, nil))
		})
		return r
	}},
}

// serve runs req through h b.N times; reset, when set, prepares req for
// the next round (a fresh body).
func serve(b *testing.B, h http.Handler, req *http.Request, reset func(), want int) {
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if reset != nil {
			reset()
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != want {
			b.Fatalf("status %d, want %d: %s", w.Code, want, w.Body)
		}
	}
}

func BenchmarkTokenClientCredentials(b *testing.B) {
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}.Encode()
	for _, a := range adapters {
		b.Run(a.name, func(b *testing.B) {
			k := newKit(b, nil)
			h := a.build(k.srv)
			req := k.tokenRequest("/oauth2/token", "read")
			body := strings.NewReader(form)
			serve(b, h, req, func() {
				body.Reset(form)
				req.Body = io.NopCloser(body)
			}, http.StatusOK)
		})
	}
}

func BenchmarkProtectedRoute(b *testing.B) {
	for _, a := range adapters {
		b.Run(a.name, func(b *testing.B) {
			k := newKit(b, nil)
			h := a.build(k.srv)
			req := httptest.NewRequest("GET", adaptertest.PathMe, nil)
			req.Header.Set("Authorization", "Bearer "+k.token(b, h, "/oauth2/token", "read"))
			serve(b, h, req, nil, http.StatusOK)
		})
	}
}

func BenchmarkMetadata(b *testing.B) {
	for _, a := range adapters {
		b.Run(a.name, func(b *testing.B) {
			k := newKit(b, nil)
			h := a.build(k.srv)
			req := httptest.NewRequest("GET", "/.well-known/oauth-authorization-server", nil)
			serve(b, h, req, nil, http.StatusOK)
		})
	}
}
