package adaptertest

import (
	"net/http"
	"net/url"
	"strconv"
	"testing"

	"github.com/oauth2kit/oauth2kit/core"
)

// RunClientAddress checks the client address the adapter hands the server
// (core.Request.RemoteAddr). The server's failure throttles count per
// address: an address a client can pick lets it dodge them, and one address
// for everyone (a reverse proxy's) lets one client lock all the others out.
//
// Both arguments follow the Mount contract. behindProxy configures the
// framework (or the adapter) to trust the loopback address the suite
// connects from, 127.0.0.1, as a reverse proxy that appends the address of
// its own peer to X-Forwarded-For, as proxies do. direct configures nothing
// about proxies: the framework's defaults.
//
// The suite tells its clients apart by the X-Forwarded-For they send, and
// locks one out by failing client authentication until the token endpoint
// answers 429.
func RunClientAddress(t *testing.T, behindProxy, direct Mount) {
	t.Helper()
	if behindProxy == nil || direct == nil {
		t.Fatal("adaptertest: RunClientAddress needs both Mounts")
	}
	run := func(name string, mount Mount, tests []test) {
		t.Run(name, func(t *testing.T) {
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) { tc.run(t, newEnv(t, mount)) })
			}
		})
	}
	run("BehindProxy", behindProxy, behindProxyTests())
	run("Direct", direct, directTests())
}

// forwarded is the header a proxy sends when its peer is chain (the
// X-Forwarded-For value, "" for none).
func forwarded(chain string) http.Header {
	if chain == "" {
		return http.Header{}
	}
	return http.Header{"X-Forwarded-For": {chain}}
}

// clientCredentials posts a client_credentials request as confID with
// secret and the extra headers.
func (e *env) clientCredentials(secret string, hdr http.Header) *response {
	e.t.Helper()
	h := hdr.Clone()
	h.Set("Authorization", core.EncodeBasic(confID, secret))
	return e.post(e.api, "/oauth2/token", url.Values{"grant_type": {"client_credentials"}}.Encode(), h)
}

// maxLockoutAttempts bounds the failures lockOut sends: far above the
// server's default limits, so the suite does not depend on their values.
const maxLockoutAttempts = 200

// lockOut fails client authentication as confID, with the headers of
// attempt i, until the server refuses with 429.
func (e *env) lockOut(hdr func(i int) http.Header) {
	t := e.t
	t.Helper()
	for i := range maxLockoutAttempts {
		r := e.clientCredentials("not the secret", hdr(i))
		if r.status == http.StatusTooManyRequests {
			wantLockedOut(t, r)
			return
		}
		wantOAuthError(t, r, http.StatusUnauthorized, "invalid_client")
	}
	t.Fatalf("%d failed client authentications did not lock the client out", maxLockoutAttempts)
}

// wantLockedOut checks the throttle's refusal: 429 invalid_client with a
// Retry-After in seconds.
func wantLockedOut(t *testing.T, r *response) {
	t.Helper()
	wantOAuthError(t, r, http.StatusTooManyRequests, "invalid_client")
	if n, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || n <= 0 {
		t.Errorf("%s: Retry-After = %q, want a positive number of seconds", r.what, r.header.Get("Retry-After"))
	}
}

// wantServed demands a token for confID's right secret sent with hdr.
func (e *env) wantServed(hdr http.Header, why string) {
	e.t.Helper()
	r := e.clientCredentials(e.secrets[confID], hdr)
	if r.status != http.StatusOK {
		e.t.Fatalf("%s: %s got %d, want 200\n%s", why, r.what, r.status, r.body)
	}
	e.wantTokens(r, false)
}

// wantRefused demands the lockout for confID's right secret sent with hdr.
func (e *env) wantRefused(hdr http.Header, why string) {
	e.t.Helper()
	r := e.clientCredentials(e.secrets[confID], hdr)
	if r.status != http.StatusTooManyRequests {
		e.t.Fatalf("%s: %s got %d, want 429\n%s", why, r.what, r.status, r.body)
	}
	wantLockedOut(e.t, r)
}

func behindProxyTests() []test {
	// twoClients locks out the client at locked and demands that the one
	// at other still gets its token, as does a request without
	// X-Forwarded-For (the proxy's own, counted under the proxy's address).
	twoClients := func(locked, other string) func(t *testing.T, e *env) {
		return func(t *testing.T, e *env) {
			e.lockOut(func(int) http.Header { return forwarded(locked) })
			e.wantRefused(forwarded(locked), "the locked-out client")
			e.wantServed(forwarded(other), "another client behind the same proxy")
			e.wantServed(forwarded(""), "the proxy's own request")
		}
	}
	return []test{
		{"TwoClientsTwoBudgets", twoClients("198.51.100.1", "198.51.100.2")},
		// The server counts an IPv6 client by its /64, so the two differ
		// in it.
		{"TwoClientsTwoBudgetsIPv6", twoClients("2001:db8:0:1::1", "2001:db8:0:2::1")},
		{"ClientCannotPickItsAddress", func(t *testing.T, e *env) {
			// The client writes what comes before the address the trusted
			// proxy appends: a new address there every time changes
			// nothing.
			e.lockOut(func(i int) http.Header {
				return forwarded("203.0.113." + strconv.Itoa(i%250+1) + ", 198.51.100.1")
			})
			e.wantRefused(forwarded("192.0.2.7, 198.51.100.1"), "a forged first hop")
			e.wantServed(forwarded("198.51.100.1, 198.51.100.2"), "the client 198.51.100.2 naming the locked-out one first")
		}},
	}
}

func directTests() []test {
	return []test{
		{"ForgedForwardedForIsIgnored", func(t *testing.T, e *env) {
			// Nobody is trusted to report a client: whatever the headers
			// say, the peer is the client.
			e.lockOut(func(i int) http.Header {
				a := "198.51.100." + strconv.Itoa(i%250+1)
				h := forwarded(a)
				h.Set("X-Real-Ip", a)
				return h
			})
			e.wantRefused(forwarded("203.0.113.9"), "a new forged X-Forwarded-For")
			e.wantRefused(http.Header{"X-Real-Ip": {"203.0.113.9"}}, "a forged X-Real-IP")
			e.wantRefused(forwarded(""), "no forwarding header at all")
		}},
	}
}
