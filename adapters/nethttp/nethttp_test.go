package nethttp_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/oauth2kit/oauth2kit/adapters/nethttp"
	"github.com/oauth2kit/oauth2kit/core"
	"github.com/oauth2kit/oauth2kit/core/adaptertest"
)

// protectedHandler answers what the conformance suite expects of a
// protected route: the token info the middleware passed on, and the body
// the handler could still read.
func protectedHandler(w http.ResponseWriter, r *http.Request) {
	info, ok := nethttp.TokenInfo(r.Context())
	if !ok {
		http.Error(w, "no token info in the context", http.StatusInternalServerError)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "reading the body failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(adaptertest.ProtectedResponse(info, body))
}

// mount serves a suite server through nethttp.Mount and nethttp.Middleware
// on an httptest server.
func mount(t *testing.T, newServer func(baseURL string) *core.Server) string {
	ts := httptest.NewUnstartedServer(nil)
	base := "http://" + ts.Listener.Addr().String()
	s := newServer(base)
	mux := http.NewServeMux()
	nethttp.Mount(mux, s)
	me := nethttp.Middleware(s)(http.HandlerFunc(protectedHandler))
	mux.Handle("GET "+adaptertest.PathMe, me)
	mux.Handle("POST "+adaptertest.PathMe, me)
	mux.Handle("GET "+adaptertest.PathAdmin, nethttp.Middleware(s, adaptertest.AdminScope)(http.HandlerFunc(protectedHandler)))
	ts.Config.Handler = mux
	ts.Start()
	t.Cleanup(ts.Close)
	return ts.URL
}

func TestConformance(t *testing.T) {
	adaptertest.Run(t, mount)
}
