package nethttp_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/oauth2kit/oauth2kit/adapters/nethttp"
	"github.com/oauth2kit/oauth2kit/core"
	"github.com/oauth2kit/oauth2kit/core/adaptertest"
)

// protectedHandler answers what the conformance suite expects of a
// protected route: the token info the middleware passed on, and the body
// the handler could still read.
func protectedHandler(w http.ResponseWriter, r *http.Request) {
	info, ok := nethttp.TokenInfo(r.Context())
	if !ok {
		http.Error(w, "no token info in the context", http.StatusInternalServerError)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "reading the body failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(adaptertest.ProtectedResponse(info, body))
}

// mount serves a suite server through nethttp.Mount and nethttp.Middleware
// on an httptest server.
func mount(t *testing.T, newServer func(baseURL string) *core.Server) string {
	return mountWith()(t, newServer)
}

// mountWith is mount with Mount's options.
func mountWith(opts ...nethttp.Option) adaptertest.Mount {
	return func(t *testing.T, newServer func(baseURL string) *core.Server) string {
		return mountMux(t, newServer, opts)
	}
}

func mountMux(t *testing.T, newServer func(baseURL string) *core.Server, opts []nethttp.Option) string {
	ts := httptest.NewUnstartedServer(nil)
	base := "http://" + ts.Listener.Addr().String()
	s := newServer(base)
	mux := http.NewServeMux()
	nethttp.Mount(mux, s, opts...)
	me := nethttp.Middleware(s)(http.HandlerFunc(protectedHandler))
	mux.Handle("GET "+adaptertest.PathMe, me)
	mux.Handle("POST "+adaptertest.PathMe, me)
	mux.Handle("GET "+adaptertest.PathAdmin, nethttp.Middleware(s, adaptertest.AdminScope)(http.HandlerFunc(protectedHandler)))
	mux.Handle("GET "+adaptertest.PathResource, nethttp.MiddlewareFor(s, adaptertest.ResourceAudience)(http.HandlerFunc(protectedHandler)))
	nethttp.MountProtectedResource(mux, s, adaptertest.ResourceAudience)
	ts.Config.Handler = mux
	ts.Start()
	t.Cleanup(ts.Close)
	return ts.URL
}

func TestConformance(t *testing.T) {
	adaptertest.Run(t, mount)
}

// TestClientAddress: behind the trusted proxy each client has its own
// throttle budget; without TrustedProxies a forged X-Forwarded-For changes
// nothing.
func TestClientAddress(t *testing.T) {
	adaptertest.RunClientAddress(t, mountWith(nethttp.TrustedProxies(netip.MustParsePrefix("127.0.0.1/32"))), mount)
}

// TestTrustedProxies covers how the client address is read from
// X-Forwarded-For: the right end first, past trusted hops only, in every
// form an entry comes in, and the peer whenever the header cannot be
// believed or read.
func TestTrustedProxies(t *testing.T) {
	proxies := nethttp.TrustedProxies(netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8:ffff::/48"))
	many := func(n int, hop string) string { return strings.TrimSuffix(strings.Repeat(hop+", ", n), ", ") }
	tests := []struct {
		name string
		opts []nethttp.Option
		peer string
		xff  []string // header lines
		want string
	}{
		{name: "NoOptionIgnoresHeader", peer: "10.0.0.1:1234", xff: []string{"198.51.100.1"}, want: "10.0.0.1:1234"},
		{name: "UntrustedPeerIgnoresHeader", opts: []nethttp.Option{proxies}, peer: "192.0.2.1:1234", xff: []string{"198.51.100.1"}, want: "192.0.2.1:1234"},
		{name: "TrustedPeerWithoutHeader", opts: []nethttp.Option{proxies}, peer: "10.0.0.1:1234", want: "10.0.0.1:1234"},
		{name: "OneHop", opts: []nethttp.Option{proxies}, peer: "10.0.0.1:1234", xff: []string{"198.51.100.1"}, want: "198.51.100.1"},
		{name: "ForgedLeftPartIgnored", opts: []nethttp.Option{proxies}, peer: "10.0.0.1:1234", xff: []string{"203.0.113.5, 198.51.100.1"}, want: "198.51.100.1"},
		{name: "TrustedHopsSkipped", opts: []nethttp.Option{proxies}, peer: "10.0.0.1:1234", xff: []string{"203.0.113.5, 198.51.100.1, 10.9.9.9,10.8.8.8"}, want: "198.51.100.1"},
		{name: "SeveralHeaderLines", opts: []nethttp.Option{proxies}, peer: "10.0.0.1:1234", xff: []string{"203.0.113.5", "198.51.100.1", "10.2.2.2"}, want: "198.51.100.1"},
		{name: "AllTrustedTakesLeftmost", opts: []nethttp.Option{proxies}, peer: "10.0.0.1:1234", xff: []string{"10.1.1.1, 10.2.2.2"}, want: "10.1.1.1"},
		{name: "IPv6", opts: []nethttp.Option{proxies}, peer: "[2001:db8:ffff::1]:443", xff: []string{"2001:db8:1::7, 2001:db8:ffff::2"}, want: "2001:db8:1::7"},
		{name: "IPv6WithPort", opts: []nethttp.Option{proxies}, peer: "10.0.0.1:1", xff: []string{"[2001:db8:1::7]:5555"}, want: "2001:db8:1::7"},
		{name: "IPv6Bracketed", opts: []nethttp.Option{proxies}, peer: "10.0.0.1:1", xff: []string{"[2001:db8:1::7]"}, want: "2001:db8:1::7"},
		{name: "IPv6Zone", opts: []nethttp.Option{proxies}, peer: "10.0.0.1:1", xff: []string{"fe80::1%eth0"}, want: "fe80::1"},
		{name: "IPv4WithPort", opts: []nethttp.Option{proxies}, peer: "10.0.0.1:1", xff: []string{"198.51.100.1:8080"}, want: "198.51.100.1"},
		{name: "IPv4InIPv6", opts: []nethttp.Option{proxies}, peer: "[::ffff:10.0.0.1]:1", xff: []string{"::ffff:198.51.100.1"}, want: "198.51.100.1"},
		{name: "Whitespace", opts: []nethttp.Option{proxies}, peer: "10.0.0.1:1", xff: []string{" 198.51.100.1 ,\t10.3.3.3 "}, want: "198.51.100.1"},
		{name: "PeerWithoutPort", opts: []nethttp.Option{proxies}, peer: "10.0.0.1", xff: []string{"198.51.100.1"}, want: "198.51.100.1"},
		{name: "GarbageHopGivesPeer", opts: []nethttp.Option{proxies}, peer: "10.0.0.1:1", xff: []string{"198.51.100.1, unknown"}, want: "10.0.0.1:1"},
		{name: "EmptyHopGivesPeer", opts: []nethttp.Option{proxies}, peer: "10.0.0.1:1", xff: []string{"198.51.100.1,"}, want: "10.0.0.1:1"},
		{name: "EmptyHeaderGivesPeer", opts: []nethttp.Option{proxies}, peer: "10.0.0.1:1", xff: []string{""}, want: "10.0.0.1:1"},
		{name: "HugeEntryGivesPeer", opts: []nethttp.Option{proxies}, peer: "10.0.0.1:1", xff: []string{strings.Repeat("1", 1<<20)}, want: "10.0.0.1:1"},
		{name: "HugeHeaderReadFromTheRight", opts: []nethttp.Option{proxies}, peer: "10.0.0.1:1", xff: []string{many(100000, "203.0.113.5") + ", 198.51.100.1"}, want: "198.51.100.1"},
		{name: "TooManyTrustedHopsGivesPeer", opts: []nethttp.Option{proxies}, peer: "10.0.0.1:1", xff: []string{"198.51.100.1, " + many(40, "10.4.4.4")}, want: "10.0.0.1:1"},
		{name: "UnparsablePeer", opts: []nethttp.Option{proxies}, peer: "@", xff: []string{"198.51.100.1"}, want: "@"},
		{name: "OptionsAddUp", opts: []nethttp.Option{nethttp.TrustedProxies(), nethttp.TrustedProxies(netip.MustParsePrefix("192.0.2.1/32"))}, peer: "192.0.2.1:1", xff: []string{"198.51.100.1"}, want: "198.51.100.1"},
		{name: "SingleAddressUnmaskedPrefix", opts: []nethttp.Option{nethttp.TrustedProxies(netip.MustParsePrefix("192.0.2.77/24"))}, peer: "192.0.2.1:1", xff: []string{"198.51.100.1"}, want: "198.51.100.1"},
		{name: "InvalidPrefixIgnored", opts: []nethttp.Option{nethttp.TrustedProxies(netip.Prefix{})}, peer: "192.0.2.1:1", xff: []string{"198.51.100.1"}, want: "192.0.2.1:1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tc.peer
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			q := nethttp.Request(r, tc.opts...)
			if got := q.RemoteAddr(); got != tc.want {
				t.Errorf("RemoteAddr = %q, want %q", got, tc.want)
			}
			if nethttp.Unwrap(q) != r {
				t.Error("Unwrap does not give the request back")
			}
		})
	}
}

// TestRequestWithoutOptionsAllocatesNothing: the common case keeps the
// zero-allocation wrapping.
func TestRequestWithoutOptionsAllocatesNothing(t *testing.T) {
	r := httptest.NewRequest("GET", "/", nil)
	var sink core.Request
	if n := testing.AllocsPerRun(100, func() { sink = nethttp.Request(r) }); n != 0 {
		t.Errorf("Request allocates %v times", n)
	}
	_ = sink
}

// TestMountWellKnown: the RFC 8414 §3.1 URLs of an issuer with a path, on
// the root mux.
func TestMountWellKnown(t *testing.T) {
	adaptertest.RunWellKnown(t, func(t *testing.T, newServer func(baseURL string) *core.Server) string {
		ts := httptest.NewUnstartedServer(nil)
		s := newServer("http://" + ts.Listener.Addr().String())
		mux := http.NewServeMux()
		nethttp.MountWellKnown(mux, s)
		ts.Config.Handler = mux
		ts.Start()
		t.Cleanup(ts.Close)
		return ts.URL
	})
}
