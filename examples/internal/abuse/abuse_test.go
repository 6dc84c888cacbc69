package abuse

import (
	"testing"
)

// TestAbuse runs every abuse test against every example server: one
// server per example for the tests that may share it (each plays clients
// from source addresses of its own), then the login throttling test, which
// locks the demo account for minutes and so comes last.
func TestAbuse(t *testing.T) {
	for _, name := range examples {
		t.Run(name, func(t *testing.T) {
			if testing.Short() && name != "nethttp" && name != "fiber" {
				t.Skip("-short: only nethttp and fiber (the net/http and fasthttp stacks)")
			}
			t.Parallel()
			bin := buildExample(t, name)
			tg := startTarget(t, name, bin)
			t.Run("Shared", func(t *testing.T) {
				t.Run("ClientAuthThrottle", func(t *testing.T) { t.Parallel(); testClientAuthThrottle(t, tg) })
				t.Run("BodyLimits", func(t *testing.T) { t.Parallel(); testBodyLimits(t, tg) })
				t.Run("ParamLimits", func(t *testing.T) { t.Parallel(); testParamLimits(t, tg) })
				t.Run("FieldLengths", func(t *testing.T) { t.Parallel(); testFieldLengths(t, tg) })
				t.Run("HeaderLimits", func(t *testing.T) { t.Parallel(); testHeaderLimits(t, tg) })
				t.Run("SlowHeaders", func(t *testing.T) { t.Parallel(); testSlowHeaders(t, tg) })
				t.Run("SlowBody", func(t *testing.T) { t.Parallel(); testSlowBody(t, tg) })
				t.Run("PageHeaders", func(t *testing.T) { t.Parallel(); testPageHeaders(t, tg) })
				t.Run("CSRF", func(t *testing.T) { t.Parallel(); testCSRF(t, tg) })
				t.Run("Cookies", func(t *testing.T) { t.Parallel(); testCookies(t, tg) })
				t.Run("Escaping", func(t *testing.T) { t.Parallel(); testEscaping(t, tg) })
			})
			t.Run("LoginThrottle", func(t *testing.T) { testLoginThrottle(t, tg) })
		})
	}
}
