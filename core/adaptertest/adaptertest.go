// Package adaptertest is the conformance suite every oauth2kit framework
// adapter (net/http, gin, echo, fiber, ...) runs against its own mount. It
// talks to the adapter only over HTTP, through a base URL, so it works for
// adapters that are not http.Handlers (fiber) as well.
//
// An adapter's test implements a Mount and calls Run:
//
//	func TestConformance(t *testing.T) {
//		adaptertest.Run(t, func(t *testing.T, newServer func(baseURL string) *core.Server) string {
//			ln, _ := net.Listen("tcp", "127.0.0.1:0")
//			base := "http://" + ln.Addr().String()
//			s := newServer(base)
//			// route s.Paths() and the protected routes, serve on ln,
//			// t.Cleanup(stop)
//			return base
//		})
//	}
//
// Run builds a fresh core.Server (memory store, its own login page and
// consent step, its own clients) for every subtest and calls the Mount once
// per subtest. RunClientAddress checks, with two Mounts (behind a trusted
// proxy, and with nothing configured), the client address the failure
// throttles count by. RunMTLS checks certificate-bound tokens (RFC 8705)
// over TLS, through a TLSMount.
//
// Besides the suites: PlainHandler is net/http straight onto a core.Server,
// the baseline of the adapters' benchmarks, and Flow walks the
// authorization code flow as a browser and a client would, the driving
// half of the adapters' Examples.
package adaptertest

import (
	"encoding/json"
	"testing"

	"github.com/oauth2kit/oauth2kit/core"
)

// Routes the Mount serves besides the server's endpoints.
const (
	// PathMe is served for GET and POST; any valid access token passes.
	PathMe = "/api/me"
	// PathAdmin is served for GET; the token must hold AdminScope.
	PathAdmin = "/api/admin"
	// AdminScope is the scope PathAdmin demands.
	AdminScope = "admin"
	// PathResource is served for GET behind the adapter's middleware for
	// the audience ResourceAudience (MiddlewareFor): a resource of its
	// own (RFC 8707), which tokens for the default audience do not reach.
	PathResource = "/api/resource"
	// ResourceAudience is the resource the suite's server knows.
	ResourceAudience = "https://resource.example.test/mcp"
)

// Mount serves a core.Server through the adapter under test.
//
// It must, in this order:
//
//  1. listen on a loopback address (127.0.0.1, port 0 is fine) over plain
//     HTTP and work out the base URL, "http://127.0.0.1:<port>", without a
//     trailing slash;
//  2. call newServer(baseURL) exactly once, from the test goroutine, to get
//     the server (its Config.Issuer is baseURL: the issuer must be known
//     before the server is built, hence this callback);
//  3. route every path of s.Paths() (any method) to the adapter's endpoint
//     handler, and through the adapter's own token middleware:
//     GET and POST PathMe (no scope required), GET PathAdmin (scope
//     AdminScope), and GET PathResource (no scope, audience
//     ResourceAudience: the adapter's MiddlewareFor), and the protected
//     resource metadata of ResourceAudience (the adapter's
//     MountProtectedResource). Each protected handler answers 200 with
//     "Content-Type: application/json" and the body
//     ProtectedResponse(info, body), where info is the token info the
//     middleware handed the handler and body is the request body as the
//     handler read it (empty for GET);
//  4. start serving, and arrange with t.Cleanup to stop serving;
//  5. return the base URL (identical to the one passed to newServer).
//
// Run calls Mount once per subtest, never concurrently.
type Mount func(t *testing.T, newServer func(baseURL string) *core.Server) (baseURL string)

// ProtectedResponse is the body the protected routes answer with:
// {"sub","client_id","scope","body"}, where body is the request body the
// handler received. Adapters call it so that every adapter answers alike.
func ProtectedResponse(info *core.TokenInfo, body []byte) []byte {
	out, err := json.Marshal(protected{Sub: info.UserID, ClientID: info.ClientID, Scope: info.Scope, Body: string(body)})
	if err != nil {
		// Marshalling four strings cannot fail.
		panic(err)
	}
	return out
}

type protected struct {
	Sub      string `json:"sub"`
	ClientID string `json:"client_id"`
	Scope    string `json:"scope"`
	Body     string `json:"body"`
}

// test is one subtest: it gets a fresh server behind the adapter.
type test struct {
	name string
	run  func(t *testing.T, e *env)
}

type group struct {
	name  string
	tests func() []test
}

// Run runs the conformance suite against mount. Every subtest builds its
// own server, so subtests can be run alone with -run.
func Run(t *testing.T, mount Mount) {
	t.Helper()
	if mount == nil {
		t.Fatal("adaptertest: Run needs a Mount")
	}
	groups := []group{
		{"Metadata", metadataTests},
		{"Authorize", authorizeFlowTests},
		{"AuthorizeErrors", authorizeErrorTests},
		{"LoginCSRF", loginCSRFTests},
		{"Token", tokenTests},
		{"Refresh", refreshTests},
		{"Revoke", revokeTests},
		{"Introspect", introspectTests},
		{"Resource", resourceTests},
		{"OIDC", oidcTests},
		{"Sessions", sessionTests},
		{"OIDCConformance", conformanceTests},
		{"Registration", registrationTests},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tc := range g.tests() {
				t.Run(tc.name, func(t *testing.T) {
					tc.run(t, newEnv(t, mount))
				})
			}
		})
	}
}
