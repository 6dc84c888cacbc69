package adaptertest_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/oauth2kit/oauth2kit/core"
	"github.com/oauth2kit/oauth2kit/core/adaptertest"
)

// The suite run against a bare-bones net/http binding written here, so the
// root module exercises it without depending on an adapter module.

type req struct{ r *http.Request }

func (q req) Context() context.Context    { return q.r.Context() }
func (q req) Method() string              { return q.r.Method }
func (q req) Path() string                { return q.r.URL.Path }
func (q req) RawQuery() string            { return q.r.URL.RawQuery }
func (q req) Header(name string) []string { return q.r.Header.Values(name) }
func (q req) Body() io.Reader             { return q.r.Body }
func (q req) RemoteAddr() string          { return q.r.RemoteAddr }
func (q req) TLS() bool                   { return q.r.TLS != nil }

type resp struct{ w http.ResponseWriter }

func (p resp) SetHeader(name, value string) { p.w.Header().Set(name, value) }
func (p resp) AddHeader(name, value string) { p.w.Header().Add(name, value) }
func (p resp) Send(status int, body []byte) error {
	p.w.WriteHeader(status)
	_, err := p.w.Write(body)
	return err
}

// protect checks the token; it reads the whole (bounded) body first so both
// the check and the handler can read it.
func protect(s *core.Server, scopes ...string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, "bad body", 400)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		info, rerr := s.CheckRequest(req{r}, scopes...)
		if rerr != nil {
			rerr.Write(resp{w})
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(adaptertest.ProtectedResponse(info, body))
	})
}

func mount(t *testing.T, newServer func(string) *core.Server) string {
	ts := httptest.NewUnstartedServer(nil)
	base := "http://" + ts.Listener.Addr().String()
	s := newServer(base)
	mux := http.NewServeMux()
	endpoints := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.Handle(resp{w}, req{r}) {
			http.NotFound(w, r)
		}
	})
	for _, p := range s.Paths() {
		mux.Handle(p, endpoints)
	}
	mux.Handle("GET "+adaptertest.PathMe, protect(s))
	mux.Handle("POST "+adaptertest.PathMe, protect(s))
	mux.Handle("GET "+adaptertest.PathAdmin, protect(s, adaptertest.AdminScope))
	ts.Config.Handler = mux
	ts.Start()
	t.Cleanup(ts.Close)
	return ts.URL
}

func TestSuiteAgainstPlainBinding(t *testing.T) {
	adaptertest.Run(t, mount)
}

func TestProtectedResponse(t *testing.T) {
	got := string(adaptertest.ProtectedResponse(&core.TokenInfo{UserID: "u<1>", ClientID: "c", Scope: "a b"}, []byte("x=1&y=2")))
	want := `{"sub":"u\u003c1\u003e","client_id":"c","scope":"a b","body":"x=1\u0026y=2"}`
	if got != want {
		t.Errorf("ProtectedResponse = %s, want %s", got, want)
	}
}
