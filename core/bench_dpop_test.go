package core_test

import (
	"net/http"
	"testing"

	"github.com/oauth2kit/oauth2kit/core"
)

// DPoP beside its Bearer counterparts (BenchmarkTokenClientCredentials,
// BenchmarkCheckRequest): the proof's signature check, the replay cache
// insert and, for the token, binding it. The proofs are signed before the
// timer starts (every request needs a fresh jti), as a client would.
//
//	go test -run='^$' -bench='ClientCredentials|CheckRequest' -count=6 ./core/

func BenchmarkTokenClientCredentialsDPoP(b *testing.B) {
	k := newRKit(b, func(c *core.Config) { c.DPoP.Enabled = true })
	key := newDPoPKey(b)
	proofs := make([]string, b.N)
	for i := range proofs {
		proofs[i] = key.proof(k.now, "POST", tokenURL)
	}
	hdr := k.basic()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		h := http.Header{"Authorization": hdr["Authorization"], "Content-Type": {"application/x-www-form-urlencoded"}, "Dpop": {proofs[i]}}
		if w := k.post("/oauth2/token", "grant_type=client_credentials&scope=read", h); w.status != 200 {
			b.Fatalf("client_credentials: %d %s", w.status, w.body)
		}
	}
}

func BenchmarkCheckRequestDPoP(b *testing.B) {
	k := newRKit(b, func(c *core.Config) { c.DPoP.Enabled = true })
	key := newDPoPKey(b)
	h := http.Header{"Authorization": k.basic()["Authorization"], "Content-Type": {"application/x-www-form-urlencoded"}, "Dpop": {key.proof(k.now, "POST", tokenURL)}}
	w := k.post("/oauth2/token", "grant_type=client_credentials&scope=read", h)
	at := rJSONField(w.body, "access_token")
	proofs := make([]string, b.N)
	for i := range proofs {
		proofs[i] = key.proof(k.now, "GET", issuer+"/api/things", withATH(at))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := &fakeReq{method: "GET", path: "/api/things", hdr: http.Header{"Authorization": {"DPoP " + at}, "Dpop": {proofs[i]}}}
		if _, rerr := k.srv.CheckRequest(r, "read"); rerr != nil {
			b.Fatal(rerr)
		}
	}
}
