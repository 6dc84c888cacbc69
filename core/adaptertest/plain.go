package adaptertest

import (
	"context"
	"io"
	"net/http"

	"github.com/oauth2kit/oauth2kit/core"
)

// PlainHandler serves s over net/http with no adapter and no framework in
// between: the routes a Mount must serve (every path of s.Paths(), GET and
// POST PathMe, GET PathAdmin), each protected route answering
// ProtectedResponse. The suite's own test runs Run against it, and the
// adapters' benchmarks use it as the baseline a framework's overhead is
// measured from, so that no adapter module needs another one.
//
// It does what an adapter does and no more: one value per request on each
// side of the server, constant headers without copies
// (core.HeaderValuesSetter), the body the token check read replayed for the
// handler. The client address is the peer's.
func PlainHandler(s *core.Server) http.Handler {
	mux := http.NewServeMux()
	endpoints := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.Handle(plainResponder{w}, plainRequest{r}) {
			http.NotFound(w, r)
		}
	})
	for _, p := range s.Paths() {
		mux.Handle(p, endpoints)
	}
	me := plainProtected(s)
	mux.Handle("GET "+PathMe, me)
	mux.Handle("POST "+PathMe, me)
	mux.Handle("GET "+PathAdmin, plainProtected(s, AdminScope))
	mux.Handle("GET "+PathResource, plainProtectedFor(s, ResourceAudience))
	if p := s.ProtectedResourcePath(ResourceAudience); p != "" {
		mux.Handle(p, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !s.ServeProtectedResource(plainResponder{w}, plainRequest{r}) {
				http.NotFound(w, r)
			}
		}))
	}
	return mux
}

// plainProtected checks the token, then answers ProtectedResponse with the
// body as the handler can still read it.
func plainProtected(s *core.Server, scopes ...string) http.Handler {
	return plainProtectedFor(s, "", scopes...)
}

// plainProtectedFor is plainProtected at the audience ("" the server's).
func plainProtectedFor(s *core.Server, audience string, scopes ...string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var rec *core.BodyRecorder
		if r.Body != nil && r.Body != http.NoBody {
			rec = core.NewBodyRecorder(r.Body)
			r.Body = rec
		}
		info, rerr := s.CheckRequestFor(plainRequest{r}, audience, scopes...)
		if rec != nil {
			r.Body = rec.Replay()
		}
		if rerr != nil {
			rerr.Write(plainResponder{w})
			return
		}
		var body []byte
		if rec != nil {
			var err error
			if body, err = io.ReadAll(io.LimitReader(r.Body, 1<<20)); err != nil {
				http.Error(w, "reading the body failed", http.StatusBadRequest)
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(ProtectedResponse(info, body))
	})
}

type plainRequest struct{ r *http.Request }

func (q plainRequest) Context() context.Context    { return q.r.Context() }
func (q plainRequest) Method() string              { return q.r.Method }
func (q plainRequest) Path() string                { return q.r.URL.Path }
func (q plainRequest) RawQuery() string            { return q.r.URL.RawQuery }
func (q plainRequest) Header(name string) []string { return q.r.Header.Values(name) }
func (q plainRequest) Body() io.Reader             { return q.r.Body }
func (q plainRequest) RemoteAddr() string          { return q.r.RemoteAddr }
func (q plainRequest) TLS() bool                   { return q.r.TLS != nil }

type plainResponder struct{ w http.ResponseWriter }

var _ core.HeaderValuesSetter = plainResponder{}

func (p plainResponder) SetHeader(name, value string)                 { p.w.Header().Set(name, value) }
func (p plainResponder) AddHeader(name, value string)                 { p.w.Header().Add(name, value) }
func (p plainResponder) SetHeaderValues(name string, values []string) { p.w.Header()[name] = values }

func (p plainResponder) Send(status int, body []byte) error {
	p.w.WriteHeader(status)
	if len(body) == 0 {
		return nil
	}
	_, err := p.w.Write(body)
	return err
}

// PlainWellKnown serves s's RFC 8414 §3.1 path-inserted metadata URLs
// (core.Server.WellKnownPaths) at the root, as an adapter's MountWellKnown
// does, and 404 elsewhere.
func PlainWellKnown(s *core.Server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.ServeWellKnown(plainResponder{w}, plainRequest{r}) {
			http.NotFound(w, r)
		}
	})
}
