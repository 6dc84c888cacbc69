package core_test

import (
	"net/http"
	"net/url"
	"testing"
)

// The hot paths, in process (no HTTP): the resource check runs on every API
// request, the endpoints once per login or refresh. Run with
//
//	go test -run='^$' -bench=. -benchtime=1s -count=3 ./core/

func BenchmarkCheckToken(b *testing.B) {
	k := newRKit(b)
	at, _ := k.tokens("read write")
	if _, err := k.srv.CheckToken(rctx, at); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := k.srv.CheckToken(rctx, at); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCheckRequest(b *testing.B) {
	k := newRKit(b)
	at, _ := k.tokens("read write")
	r := &fakeReq{method: "GET", path: "/api/things", hdr: http.Header{"Authorization": {"Bearer " + at}}}
	if _, rerr := k.srv.CheckRequest(r, "read"); rerr != nil {
		b.Fatal(rerr)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, rerr := k.srv.CheckRequest(r, "read"); rerr != nil {
			b.Fatal(rerr)
		}
	}
}

// BenchmarkTokenAuthorizationCode measures the code exchange alone: the
// codes are issued (authorize + login) before the timer starts.
func BenchmarkTokenAuthorizationCode(b *testing.B) {
	k := newRKit(b)
	bodies := make([]string, b.N)
	for i := range bodies {
		bodies[i] = rExchangeBody(k.code("read"))
	}
	hdr := k.basic()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		h := http.Header{"Authorization": hdr["Authorization"], "Content-Type": {"application/x-www-form-urlencoded"}}
		if w := k.post("/oauth2/token", bodies[i], h); w.status != 200 {
			b.Fatalf("token: %d %s", w.status, w.body)
		}
	}
}

// BenchmarkFullCodeFlow is authorize (login page) + login (code) + token.
func BenchmarkFullCodeFlow(b *testing.B) {
	k := newRKit(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if w := k.post("/oauth2/token", rExchangeBody(k.code("read")), k.basic()); w.status != 200 {
			b.Fatalf("token: %d %s", w.status, w.body)
		}
	}
}

// BenchmarkTokenRefresh rotates one refresh token chain.
func BenchmarkTokenRefresh(b *testing.B) {
	k := newRKit(b)
	_, rt := k.tokens("read write")
	hdr := k.basic()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		h := http.Header{"Authorization": hdr["Authorization"], "Content-Type": {"application/x-www-form-urlencoded"}}
		w := k.post("/oauth2/token", "grant_type=refresh_token&refresh_token="+rt, h)
		if w.status != 200 {
			b.Fatalf("refresh: %d %s", w.status, w.body)
		}
		rt = rJSONField(w.body, "refresh_token")
	}
}

func BenchmarkTokenClientCredentials(b *testing.B) {
	k := newRKit(b)
	hdr := k.basic()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		h := http.Header{"Authorization": hdr["Authorization"], "Content-Type": {"application/x-www-form-urlencoded"}}
		if w := k.post("/oauth2/token", "grant_type=client_credentials&scope=read", h); w.status != 200 {
			b.Fatalf("client_credentials: %d %s", w.status, w.body)
		}
	}
}

// BenchmarkAuthorize validates an authorization request and renders the
// login page, for a browser that already has a session cookie.
func BenchmarkAuthorize(b *testing.B) {
	k := newRKit(b)
	k.loginPage("read") // sets the session cookie
	q := codeQuery("conf", confCB, "read", "xyz").Encode()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if w := k.do(&fakeReq{method: "GET", path: "/oauth2/authorize", query: q}); w.status != 200 {
			b.Fatalf("authorize: %d %s", w.status, w.body)
		}
	}
}

func BenchmarkIntrospect(b *testing.B) {
	k := newRKit(b)
	at, _ := k.tokens("read write")
	body := url.Values{"token": {at}}.Encode()
	hdr := k.basic()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		h := http.Header{"Authorization": hdr["Authorization"], "Content-Type": {"application/x-www-form-urlencoded"}}
		w := k.post("/oauth2/introspect", body, h)
		if w.status != 200 || w.body[10] != 't' { // {"active":true
			b.Fatalf("introspect: %d %s", w.status, w.body)
		}
	}
}
