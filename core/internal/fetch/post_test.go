package fetch

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// PostForm sends the form urlencoded and reports a 2xx as success, any
// other answer with its status and ErrStatus; a redirect is not followed.
func TestPostForm(t *testing.T) {
	var redirected atomic.Int32
	ts, f := testServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
				t.Errorf("%s %q", r.Method, r.Header.Get("Content-Type"))
			}
			if err := r.ParseForm(); err != nil || r.PostForm.Get("logout_token") != "a.b+c/=" {
				t.Errorf("form %v %v", r.PostForm, err)
			}
			w.WriteHeader(http.StatusNoContent)
		case "/moved":
			http.Redirect(w, r, "/target", http.StatusTemporaryRedirect)
		case "/target":
			redirected.Add(1)
		case "/busy":
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(strings.Repeat("x", 100<<10))) // more than MaxBytes: read bounded, not an error
		case "/bad":
			http.Error(w, "no", http.StatusBadRequest)
		}
	}), Options{MaxBytes: 1 << 10})
	ctx := context.Background()
	form := url.Values{"logout_token": {"a.b+c/="}}
	if st, err := f.PostForm(ctx, ts.URL+"/ok", form); st != 204 || err != nil {
		t.Errorf("2xx: %d %v", st, err)
	}
	for path, want := range map[string]int{"/moved": 307, "/busy": 503, "/bad": 400} {
		if st, err := f.PostForm(ctx, ts.URL+path, form); st != want || !errors.Is(err, ErrStatus) {
			t.Errorf("%s: %d %v, want %d ErrStatus", path, st, err, want)
		}
	}
	if redirected.Load() != 0 {
		t.Error("a redirect was followed")
	}
	if st, err := f.PostForm(ctx, ts.URL+"/ok", url.Values{"x": {strings.Repeat("y", 2<<10)}}); st != 0 || !errors.Is(err, ErrTooLarge) {
		t.Errorf("a form over MaxBytes: %d %v", st, err)
	}
}

// Without the test switch PostForm connects to no loopback address and
// takes no http URL; with it, http only to a loopback host.
func TestPostFormRefusals(t *testing.T) {
	var hits atomic.Int32
	h := http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) })
	tls := httptest.NewTLSServer(h)
	t.Cleanup(tls.Close)
	plain := httptest.NewServer(h)
	t.Cleanup(plain.Close)
	ctx := context.Background()
	strict := New(Options{TLS: tls.Client().Transport.(*http.Transport).TLSClientConfig})
	if _, err := strict.PostForm(ctx, tls.URL, nil); !errors.Is(err, ErrAddress) {
		t.Errorf("loopback https without the switch: %v, want ErrAddress", err)
	}
	// The port rule refused that one already (httptest is not on 443):
	// with any port allowed, the loopback address alone is refused.
	anyPort := New(Options{TLS: tls.Client().Transport.(*http.Transport).TLSClientConfig, anyPortForTests: true})
	if _, err := anyPort.PostForm(ctx, tls.URL, nil); !errors.Is(err, ErrAddress) {
		t.Errorf("loopback https on any port without the switch: %v, want ErrAddress", err)
	}
	if _, err := strict.PostForm(ctx, plain.URL, nil); !errors.Is(err, ErrURL) {
		t.Errorf("http without the switch: %v, want ErrURL", err)
	}
	loose := New(Options{AllowLoopbackForTests: true})
	for _, u := range []string{"http://example.com/bc", "http://user@127.0.0.1/bc", "http://127.0.0.1/bc#f", "ftp://127.0.0.1/"} {
		if _, err := loose.PostForm(ctx, u, nil); !errors.Is(err, ErrURL) {
			t.Errorf("%s with the switch: %v, want ErrURL", u, err)
		}
	}
	if st, err := loose.PostForm(ctx, plain.URL+"/bc", nil); st != 200 || err != nil {
		t.Errorf("http loopback with the switch: %d %v", st, err)
	}
	if hits.Load() != 1 {
		t.Errorf("%d requests arrived, want 1", hits.Load())
	}
}

// A relying party that accepts the connection and never answers costs one
// Timeout, not more; a closed port fails at once. Neither has a status.
func TestPostFormHanging(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c // held open, never read or answered
		}
	}()
	t.Cleanup(func() {
		for {
			select {
			case c := <-accepted:
				_ = c.Close()
			default:
				return
			}
		}
	})
	f := New(Options{AllowLoopbackForTests: true, Timeout: 200 * time.Millisecond})
	done := make(chan error, 1)
	go func() {
		_, err := f.PostForm(context.Background(), "http://"+ln.Addr().String()+"/bc", url.Values{"a": {"b"}})
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || errors.Is(err, ErrStatus) {
			t.Errorf("a silent peer: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("PostForm outlived its Timeout")
	}
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := closed.Addr().String()
	_ = closed.Close()
	if st, err := f.PostForm(context.Background(), "http://"+addr+"/bc", nil); st != 0 || err == nil {
		t.Errorf("a closed port: %d %v", st, err)
	}
}
