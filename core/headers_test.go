package core

import (
	"net/http"
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
