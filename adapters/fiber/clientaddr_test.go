package fiberadapter_test

import (
	"net"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	fiberadapter "github.com/oauth2kit/oauth2kit/adapters/fiber"
)

// TestRemoteAddr covers the client address under fiber's trusted-proxy
// settings: nothing, ProxyHeader alone (fiber then believes it from
// anyone), and the check with ranges, single addresses and chains.
func TestRemoteAddr(t *testing.T) {
	checked := func(header string, proxies ...string) fiber.Config {
		return fiber.Config{EnableTrustedProxyCheck: true, TrustedProxies: proxies, ProxyHeader: header}
	}
	xff := fiber.HeaderXForwardedFor
	v4 := &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 1234}
	v6 := &net.TCPAddr{IP: net.ParseIP("2001:db8:ffff::1"), Port: 443}
	many := func(n int, hop string) string { return strings.TrimSuffix(strings.Repeat(hop+", ", n), ", ") }
	tests := []struct {
		name string
		cfg  fiber.Config
		peer *net.TCPAddr
		hdr  map[string][]string
		want string
	}{
		{name: "Defaults", peer: v4, hdr: map[string][]string{xff: {"198.51.100.1"}}, want: "192.0.2.1:1234"},
		{name: "ProxyHeaderWithoutCheck", cfg: fiber.Config{ProxyHeader: xff}, peer: v4, hdr: map[string][]string{xff: {"198.51.100.1"}}, want: "192.0.2.1:1234"},
		{name: "CheckWithoutProxies", cfg: checked(xff), peer: v4, hdr: map[string][]string{xff: {"198.51.100.1"}}, want: "192.0.2.1:1234"},
		{name: "CheckWithoutProxyHeader", cfg: checked("", "192.0.2.1"), peer: v4, hdr: map[string][]string{xff: {"198.51.100.1"}}, want: "192.0.2.1:1234"},
		{name: "UntrustedPeer", cfg: checked(xff, "192.0.2.9"), peer: v4, hdr: map[string][]string{xff: {"198.51.100.1"}}, want: "192.0.2.1:1234"},
		{name: "TrustedAddress", cfg: checked(xff, "192.0.2.1"), peer: v4, hdr: map[string][]string{xff: {"198.51.100.1"}}, want: "198.51.100.1"},
		{name: "TrustedRange", cfg: checked(xff, "192.0.2.0/24"), peer: v4, hdr: map[string][]string{xff: {"198.51.100.1"}}, want: "198.51.100.1"},
		{name: "ForgedLeftPartIgnored", cfg: checked(xff, "192.0.2.0/24"), peer: v4, hdr: map[string][]string{xff: {"203.0.113.5, 198.51.100.1"}}, want: "198.51.100.1"},
		{name: "TrustedHopsSkipped", cfg: checked(xff, "192.0.2.0/24", "10.0.0.0/8", "172.16.0.9"), peer: v4,
			hdr: map[string][]string{xff: {"203.0.113.5, 198.51.100.1, 10.1.1.1, 172.16.0.9"}}, want: "198.51.100.1"},
		{name: "SeveralHeaderLines", cfg: checked(xff, "192.0.2.0/24", "10.0.0.0/8"), peer: v4,
			hdr: map[string][]string{xff: {"203.0.113.5", "198.51.100.1", "10.1.1.1"}}, want: "198.51.100.1"},
		{name: "AllTrustedTakesLeftmost", cfg: checked(xff, "192.0.2.0/24", "10.0.0.0/8"), peer: v4, hdr: map[string][]string{xff: {"10.1.1.1, 10.2.2.2"}}, want: "10.1.1.1"},
		{name: "SetWholeHeader", cfg: checked("X-Real-Ip", "192.0.2.1"), peer: v4,
			hdr: map[string][]string{"X-Real-Ip": {"198.51.100.1"}, xff: {"203.0.113.5"}}, want: "198.51.100.1"},
		{name: "IPv6", cfg: checked(xff, "2001:db8:ffff::/48"), peer: v6, hdr: map[string][]string{xff: {"2001:db8:1::7, 2001:db8:ffff::2"}}, want: "2001:db8:1::7"},
		{name: "EntryForms", cfg: checked(xff, "192.0.2.1"), peer: v4, hdr: map[string][]string{xff: {"[2001:db8:1::7]:5555"}}, want: "2001:db8:1::7"},
		{name: "IPv4WithPort", cfg: checked(xff, "192.0.2.1"), peer: v4, hdr: map[string][]string{xff: {"198.51.100.1:8080"}}, want: "198.51.100.1"},
		{name: "IPv4InIPv6", cfg: checked(xff, "192.0.2.1"), peer: v4, hdr: map[string][]string{xff: {"::ffff:198.51.100.1"}}, want: "198.51.100.1"},
		{name: "GarbageGivesPeer", cfg: checked(xff, "192.0.2.1"), peer: v4, hdr: map[string][]string{xff: {"198.51.100.1, unknown"}}, want: "192.0.2.1:1234"},
		{name: "NoHeaderGivesPeer", cfg: checked(xff, "192.0.2.1"), peer: v4, want: "192.0.2.1:1234"},
		{name: "HugeEntryGivesPeer", cfg: checked(xff, "192.0.2.1"), peer: v4, hdr: map[string][]string{xff: {strings.Repeat("1", 8000)}}, want: "192.0.2.1:1234"},
		{name: "LongHeaderReadFromTheRight", cfg: checked(xff, "192.0.2.1"), peer: v4, hdr: map[string][]string{xff: {many(500, "203.0.113.5") + ", 198.51.100.1"}}, want: "198.51.100.1"},
		{name: "TooManyTrustedHopsGivesPeer", cfg: checked(xff, "192.0.2.1", "10.0.0.0/8"), peer: v4, hdr: map[string][]string{xff: {"198.51.100.1, " + many(40, "10.4.4.4")}}, want: "192.0.2.1:1234"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.DisableStartupMessage = true
			app := fiber.New(cfg)
			var got string
			app.Get("/", func(c *fiber.Ctx) error {
				got = fiberadapter.Request(c).RemoteAddr()
				return nil
			})
			var req fasthttp.Request
			req.Header.SetMethod("GET")
			req.SetRequestURI("/")
			req.Header.SetHost("example.test")
			for k, vs := range tc.hdr {
				for _, v := range vs {
					req.Header.Add(k, v)
				}
			}
			var ctx fasthttp.RequestCtx
			ctx.Init(&req, tc.peer, nil)
			app.Handler()(&ctx)
			if code := ctx.Response.StatusCode(); code != 200 {
				t.Fatalf("status %d", code)
			}
			if got != tc.want {
				t.Errorf("RemoteAddr = %q, want %q", got, tc.want)
			}
		})
	}
}
