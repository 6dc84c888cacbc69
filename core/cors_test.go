package core_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/oauth2kit/oauth2kit/core"
)

// CORS: discovery answers any origin; the token endpoint a configured
// origin (preflight included) or the client's redirect URI origin;
// authorize never; an unlisted origin gets no allow header.
func TestCORS(t *testing.T) {
	e := newEnv(t, false, func(c *core.Config) { c.CORS.AllowedOrigins = []string{"https://spa.example"} })
	hdr := func(origin string, extra ...string) http.Header {
		h := http.Header{"Origin": {origin}}
		for i := 0; i+1 < len(extra); i += 2 {
			h.Set(extra[i], extra[i+1])
		}
		return h
	}
	w := e.do(&fakeReq{method: "GET", path: "/.well-known/oauth-authorization-server", hdr: hdr("https://anyone.example")})
	if w.hdr.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("metadata: %v", w.hdr)
	}
	w = e.do(&fakeReq{method: "OPTIONS", path: "/oauth2/token", hdr: hdr("https://spa.example", "Access-Control-Request-Method", "POST")})
	if w.status != 204 || w.hdr.Get("Access-Control-Allow-Origin") != "https://spa.example" || w.hdr.Get("Access-Control-Allow-Methods") != "POST" {
		t.Errorf("preflight: %d %v", w.status, w.hdr)
	}
	w = e.do(&fakeReq{method: "OPTIONS", path: "/oauth2/token", hdr: hdr("https://evil.example", "Access-Control-Request-Method", "POST")})
	if w.hdr.Get("Access-Control-Allow-Origin") != "" || w.hdr.Get("Access-Control-Allow-Methods") != "" {
		t.Errorf("preflight from an unlisted origin: %v", w.hdr)
	}
	// The client's own redirect origin, on the actual request.
	form := url.Values{"grant_type": {"client_credentials"}}
	h := basic("conf", e.secret)
	h.Set("Origin", "https://client.example.com")
	h.Set("Content-Type", "application/x-www-form-urlencoded")
	w = e.do(&fakeReq{method: "POST", path: "/oauth2/token", body: form.Encode(), hdr: h})
	if w.status != 200 || w.hdr.Get("Access-Control-Allow-Origin") != "https://client.example.com" {
		t.Errorf("token from the client's origin: %d %v", w.status, w.hdr)
	}
	h.Set("Origin", "https://evil.example")
	w = e.do(&fakeReq{method: "POST", path: "/oauth2/token", body: form.Encode(), hdr: h})
	if w.hdr.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("token from another origin: %v", w.hdr)
	}
	w = e.do(&fakeReq{method: "GET", path: "/oauth2/authorize", query: codeQuery("conf", confCB, "read", "s").Encode(), hdr: hdr("https://spa.example")})
	if w.hdr.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("authorize sent CORS headers: %v", w.hdr)
	}
}
