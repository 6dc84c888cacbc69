package adaptertest

import (
	"crypto/rand"
	"log/slog"
	"net/http"
	"testing"

	"github.com/oauth2kit/oauth2kit/core"
	"github.com/oauth2kit/oauth2kit/core/memstore"
)

// RunWellKnown checks an adapter's MountWellKnown: mount builds the server
// with newServer(baseURL) (its issuer is baseURL+"/auth", with OpenID
// Connect on), registers the adapter's MountWellKnown on the root router,
// and returns baseURL. The RFC 8414 §3.1 path-inserted URLs of both
// documents must answer the metadata; others must not.
func RunWellKnown(t *testing.T, mount Mount) {
	t.Helper()
	base := mount(t, func(baseURL string) *core.Server {
		s, err := core.New(core.Config{
			Issuer: baseURL + "/auth",
			Keys:   core.Keys{CryptKey: make32(), SignKey: make32()},
			OIDC:   core.OIDC{SigningKeys: suiteKeys(t)},
			Logger: slog.New(slog.DiscardHandler),
		}, memstore.New(), &loginApp{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
	e := &env{t: t, base: base}
	e.tr = &http.Transport{}
	t.Cleanup(e.tr.CloseIdleConnections)
	e.api = &http.Client{Transport: e.tr, CheckRedirect: noRedirect}
	var first []byte
	for _, p := range []string{"/.well-known/oauth-authorization-server/auth", "/.well-known/openid-configuration/auth"} {
		r := e.get(e.api, p, nil)
		wantStatus(t, r, 200)
		wantHeader(t, r, "Content-Type", "application/json")
		if m := decodeJSON(t, r); m["issuer"] != base+"/auth" || m["jwks_uri"] != base+"/auth/oauth2/jwks" {
			t.Errorf("%s: issuer %v, jwks_uri %v", p, m["issuer"], m["jwks_uri"])
		}
		if first != nil && string(first) != string(r.body) {
			t.Errorf("%s differs from the RFC 8414 document", p)
		}
		first = r.body
	}
	if r := e.get(e.api, "/.well-known/oauth-authorization-server/other", nil); r.status == 200 {
		t.Errorf("another issuer's path-inserted URL answered 200")
	}
	if r := e.post(e.api, "/.well-known/oauth-authorization-server/auth", "", nil); r.status != 405 {
		t.Errorf("POST: %d, want 405", r.status)
	}
}

func make32() []byte {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return b
}
