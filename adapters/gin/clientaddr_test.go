package ginadapter_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gin-gonic/gin"

	ginadapter "github.com/oauth2kit/oauth2kit/adapters/gin"
)

// TestRemoteAddr covers the client address under each way an app can set
// gin up: gin's defaults (every peer trusted) and a list of proxies
// cleared, narrowed or combined with a platform header, over IPv4, IPv6
// and a unix socket.
func TestRemoteAddr(t *testing.T) {
	proxies := func(list ...string) func(*testing.T, *gin.Engine) {
		return func(t *testing.T, e *gin.Engine) {
			if err := e.SetTrustedProxies(list); err != nil {
				t.Fatal(err)
			}
		}
	}
	platform := func(name string, list ...string) func(*testing.T, *gin.Engine) {
		return func(t *testing.T, e *gin.Engine) {
			e.TrustedPlatform = name
			if list != nil {
				proxies(list...)(t, e)
			}
		}
	}
	unix := &net.UnixAddr{Name: "/run/app.sock", Net: "unix"}
	tests := []struct {
		name      string
		configure func(*testing.T, *gin.Engine)
		peer      string
		local     net.Addr // the listener's address, when not TCP
		hdr       http.Header
		want      string
	}{
		{name: "DefaultsNoHeader", peer: "192.0.2.1:1234", want: "192.0.2.1:1234"},
		{name: "DefaultsIgnoreXFF", peer: "192.0.2.1:1234", hdr: http.Header{"X-Forwarded-For": {"198.51.100.1"}}, want: "192.0.2.1:1234"},
		{name: "DefaultsIgnoreXRealIP", peer: "192.0.2.1:1234", hdr: http.Header{"X-Real-Ip": {"198.51.100.1"}}, want: "192.0.2.1:1234"},
		{name: "DefaultsIgnoreXFFOverIPv6", peer: "[2001:db8::1]:443", hdr: http.Header{"X-Forwarded-For": {"2001:db8:1::7"}}, want: "[2001:db8::1]:443"},
		{name: "DefaultsIgnoreCustomHeader", configure: func(_ *testing.T, e *gin.Engine) { e.RemoteIPHeaders = []string{"X-Client"} },
			peer: "192.0.2.1:1234", hdr: http.Header{"X-Client": {"198.51.100.1"}}, want: "192.0.2.1:1234"},
		{name: "TrustedProxy", configure: proxies("192.0.2.0/24"), peer: "192.0.2.1:1234",
			hdr: http.Header{"X-Forwarded-For": {"203.0.113.5, 198.51.100.1"}}, want: "198.51.100.1"},
		{name: "TrustedProxyXRealIP", configure: proxies("192.0.2.1"), peer: "192.0.2.1:1234",
			hdr: http.Header{"X-Real-Ip": {"198.51.100.1"}}, want: "198.51.100.1"},
		{name: "TrustedProxyIPv6", configure: proxies("2001:db8:ffff::/48"), peer: "[2001:db8:ffff::1]:443",
			hdr: http.Header{"X-Forwarded-For": {"2001:db8:1::7"}}, want: "2001:db8:1::7"},
		{name: "TrustedProxyCustomHeader", configure: func(t *testing.T, e *gin.Engine) {
			e.RemoteIPHeaders = []string{"X-Client"}
			proxies("192.0.2.1")(t, e)
		},
			peer: "192.0.2.1:1234", hdr: http.Header{"X-Client": {"198.51.100.1"}}, want: "198.51.100.1"},
		{name: "UntrustedPeer", configure: proxies("192.0.2.0/24"), peer: "203.0.113.1:1234",
			hdr: http.Header{"X-Forwarded-For": {"198.51.100.1"}}, want: "203.0.113.1:1234"},
		{name: "ProxiesCleared", configure: proxies(), peer: "192.0.2.1:1234",
			hdr: http.Header{"X-Forwarded-For": {"198.51.100.1"}}, want: "192.0.2.1:1234"},
		{name: "ForwardedByClientIPOff", configure: func(t *testing.T, e *gin.Engine) { e.ForwardedByClientIP = false; proxies("192.0.2.1")(t, e) },
			peer: "192.0.2.1:1234", hdr: http.Header{"X-Forwarded-For": {"198.51.100.1"}}, want: "192.0.2.1:1234"},
		// Behind Cloudflare an app sets the platform and leaves gin's
		// proxies at their default: the platform header counts.
		{name: "Platform", configure: platform(gin.PlatformCloudflare), peer: "192.0.2.1:1234",
			hdr: http.Header{"Cf-Connecting-Ip": {"198.51.100.9"}, "X-Forwarded-For": {"203.0.113.5"}}, want: "198.51.100.9"},
		{name: "PlatformWithProxies", configure: platform(gin.PlatformCloudflare, "192.0.2.1"), peer: "192.0.2.1:1234",
			hdr: http.Header{"Cf-Connecting-Ip": {"198.51.100.9"}}, want: "198.51.100.9"},
		{name: "PlatformHeaderAbsentIgnoresXFF", configure: platform(gin.PlatformCloudflare), peer: "192.0.2.1:1234",
			hdr: http.Header{"X-Forwarded-For": {"203.0.113.5"}}, want: "192.0.2.1:1234"},
		{name: "PlatformHeaderNotAnAddress", configure: platform(gin.PlatformCloudflare), peer: "192.0.2.1:1234",
			hdr: http.Header{"Cf-Connecting-Ip": {"unknown"}}, want: "192.0.2.1:1234"},
		{name: "PlatformHeaderIPv6", configure: platform(gin.PlatformCloudflare), peer: "[2001:db8::1]:443",
			hdr: http.Header{"Cf-Connecting-Ip": {"2001:db8:1::7"}}, want: "2001:db8:1::7"},
		// gin trusts every peer on a unix socket, list or no list.
		{name: "UnixSocketIgnoresXFF", configure: proxies("192.0.2.1"), peer: "@", local: unix,
			hdr: http.Header{"X-Forwarded-For": {"198.51.100.1"}}, want: "@"},
		{name: "UnixSocketPlatform", configure: platform("X-Real-Ip"), peer: "@", local: unix,
			hdr: http.Header{"X-Real-Ip": {"198.51.100.1"}}, want: "198.51.100.1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := gin.New()
			if tc.configure != nil {
				tc.configure(t, e)
			}
			var got string
			req := httptest.NewRequest("GET", "/", nil)
			e.GET("/", func(c *gin.Context) {
				got = ginadapter.Request(c).RemoteAddr()
				if c.Request != req {
					t.Error("the context's request was replaced")
				}
			})
			req.RemoteAddr = tc.peer
			for k, vs := range tc.hdr {
				req.Header[k] = vs
			}
			if tc.local != nil {
				*req = *req.WithContext(context.WithValue(req.Context(), http.LocalAddrContextKey, tc.local))
			}
			e.ServeHTTP(httptest.NewRecorder(), req)
			if got != tc.want {
				t.Errorf("RemoteAddr = %q, want %q", got, tc.want)
			}
			if tc.peer == "192.0.2.1:1234" && req.RemoteAddr != tc.peer {
				t.Errorf("the request's RemoteAddr changed to %q", req.RemoteAddr)
			}
		})
	}
}
