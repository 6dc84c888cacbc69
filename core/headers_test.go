package core

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// The constant header slices are shared by every response: a handler that
// appends to a header after the server set it must get its own copy, never
// write into the shared array.
func TestConstHeaderSharedSliceIsNotWritable(t *testing.T) {
	h := http.Header{}
	h["Cache-Control"] = hdrNoStore.v
	h.Add("Cache-Control", "private")
	if got := hdrNoStore.v; len(got) != 1 || cap(got) != 1 || got[0] != "no-store" {
		t.Fatalf("shared slice changed: %q (cap %d)", got, cap(got))
	}
	if got := h.Values("Cache-Control"); len(got) != 2 || got[0] != "no-store" || got[1] != "private" {
		t.Fatalf("header = %q", got)
	}
}

// A Responder without HeaderValuesSetter gets the same headers through
// SetHeader.
func TestConstHeaderFallback(t *testing.T) {
	w := &plainResponder{h: http.Header{}}
	hdrJSON.set(w)
	setPageHeaders(w)
	if w.h.Get("Content-Type") != "application/json" || w.h.Get("X-Frame-Options") != "DENY" ||
		w.h.Get("Cache-Control") != "no-store" || w.h.Get("Content-Security-Policy") == "" {
		t.Fatalf("headers = %v", w.h)
	}
}

type plainResponder struct{ h http.Header }

func (p *plainResponder) SetHeader(k, v string)  { p.h.Set(k, v) }
func (p *plainResponder) AddHeader(k, v string)  { p.h.Add(k, v) }
func (p *plainResponder) Send(int, []byte) error { return nil }

// redirectURL escapes values itself; it must agree with url.QueryEscape on
// every byte.
func TestWriteQueryEscapedMatchesQueryEscape(t *testing.T) {
	var all []byte
	for c := 0; c < 256; c++ {
		all = append(all, byte(c))
	}
	for _, v := range []string{"", "abc", "a b+c", "https://auth.example.com/x?y=z&w", "é€\x00", string(all)} {
		var b strings.Builder
		writeQueryEscaped(&b, v)
		if got, want := b.String(), url.QueryEscape(v); got != want {
			t.Errorf("escape(%q) = %q, want %q", v, got, want)
		}
	}
	if got := redirectURL("https://c.example/cb?x=1", "code", "a b", "state", "", "iss", "https://i"); got != "https://c.example/cb?x=1&code=a+b&iss=https%3A%2F%2Fi" {
		t.Errorf("redirectURL = %q", got)
	}
}
