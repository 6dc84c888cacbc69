package fetch

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testServer is an https server on 127.0.0.1 and a Fetcher that may reach
// it (the test-only loopback switch, trusting its certificate).
func testServer(t *testing.T, h http.Handler, opts Options) (*httptest.Server, *Fetcher) {
	t.Helper()
	ts := httptest.NewTLSServer(h)
	t.Cleanup(ts.Close)
	opts.AllowLoopbackForTests = true
	opts.TLS = ts.Client().Transport.(*http.Transport).TLSClientConfig
	return ts, New(opts)
}

func TestGet(t *testing.T) {
	ts, f := testServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Accept") != "application/json" {
			t.Errorf("Accept %q", r.Header.Get("Accept"))
		}
		w.Header().Set("Cache-Control", "max-age=300")
		_, _ = w.Write([]byte(`{"client_id":"x"}`))
	}), Options{})
	res, err := f.Get(context.Background(), ts.URL+"/doc")
	if err != nil || string(res.Body) != `{"client_id":"x"}` || res.CacheControl != "max-age=300" {
		t.Fatalf("%v %+v", err, res)
	}
}

// The default Fetcher never connects to loopback, whatever the URL says:
// by IP literal or by a name that resolves there (the check is at dial
// time, after resolution, so DNS tricks do not help).
func TestRefusesInternalAddresses(t *testing.T) {
	var hits atomic.Int32
	ts := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	t.Cleanup(ts.Close)
	port := ts.URL[strings.LastIndex(ts.URL, ":")+1:]
	f := New(Options{TLS: ts.Client().Transport.(*http.Transport).TLSClientConfig})
	for _, u := range []string{ts.URL, "https://localhost:" + port + "/", "https://127.0.0.1/", "https://[::1]/", "https://169.254.169.254/latest/meta-data/", "https://10.0.0.1/", "https://192.168.1.1/"} {
		if _, err := f.Get(context.Background(), u); !errors.Is(err, ErrAddress) {
			t.Errorf("%s: %v, want ErrAddress", u, err)
		}
	}
	if hits.Load() != 0 {
		t.Errorf("the loopback server was reached %d times", hits.Load())
	}
}

func TestRefusedURLs(t *testing.T) {
	f := New(Options{})
	for _, u := range []string{"http://example.com/", "ftp://example.com/", "https://user:pw@example.com/", "https://example.com/#frag", "https:///path", "/relative", "https://example.com/" + strings.Repeat("a", 2100)} {
		if _, err := f.Get(context.Background(), u); !errors.Is(err, ErrURL) {
			t.Errorf("%s: %v, want ErrURL", u, err)
		}
	}
}

func TestRefusedAnswers(t *testing.T) {
	ts, f := testServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/redirect":
			http.Redirect(w, r, "https://169.254.169.254/", http.StatusFound)
		case "/404":
			http.NotFound(w, r)
		case "/big":
			_, _ = w.Write([]byte(strings.Repeat("x", 2048)))
		case "/big-chunked":
			for range 4 {
				_, _ = w.Write([]byte(strings.Repeat("x", 600)))
				w.(http.Flusher).Flush()
			}
		case "/slow":
			time.Sleep(800 * time.Millisecond)
			_, _ = w.Write([]byte("{}"))
		}
	}), Options{MaxBytes: 1024, Timeout: 300 * time.Millisecond})
	for path, want := range map[string]error{"/redirect": ErrStatus, "/404": ErrStatus, "/big": ErrTooLarge, "/big-chunked": ErrTooLarge} {
		if _, err := f.Get(context.Background(), ts.URL+path); !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", path, err, want)
		}
	}
	start := time.Now()
	if _, err := f.Get(context.Background(), ts.URL+"/slow"); err == nil || time.Since(start) > 700*time.Millisecond {
		t.Errorf("slow: %v after %v, want a timeout near 300ms", err, time.Since(start))
	}
}

// Concurrent fetches of one URL share one request; distinct URLs run at
// most MaxConcurrent at a time.
func TestMergingAndBound(t *testing.T) {
	var hits, inFlight, peak atomic.Int32
	ts, f := testServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		n := inFlight.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(100 * time.Millisecond)
		inFlight.Add(-1)
		_, _ = w.Write([]byte(`{}`))
	}), Options{MaxConcurrent: 2})
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			if _, err := f.Get(context.Background(), ts.URL+"/same"); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if hits.Load() != 1 {
		t.Errorf("10 concurrent fetches of one URL made %d requests, want 1", hits.Load())
	}
	hits.Store(0)
	for i := range 6 {
		wg.Go(func() {
			if _, err := f.Get(context.Background(), ts.URL+"/u"+strconv.Itoa(i)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if hits.Load() != 6 || peak.Load() > 2 {
		t.Errorf("6 URLs: %d requests, at most %d at once; want 6 and ≤ 2", hits.Load(), peak.Load())
	}
}
