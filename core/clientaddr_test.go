package core_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/oauth2kit/oauth2kit/core"
)

func TestForwardedClient(t *testing.T) {
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	trusted := func(a netip.Addr) bool {
		for _, p := range proxies {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	for _, c := range []struct {
		values []string
		want   string // "" for false
	}{
		{[]string{"203.0.113.7"}, "203.0.113.7"},
		{[]string{"198.51.100.1, 203.0.113.7"}, "203.0.113.7"},           // the client cannot pick its address by writing it left
		{[]string{"198.51.100.1, 203.0.113.7, 10.0.0.2"}, "203.0.113.7"}, // trusted hops skipped
		{[]string{"198.51.100.1", "203.0.113.7, 10.1.1.1"}, "203.0.113.7"},
		{[]string{"10.0.0.3, 10.0.0.2"}, "10.0.0.3"}, // all trusted: the leftmost
		{[]string{"[2001:db8::1]:443"}, "2001:db8::1"},
		{[]string{"2001:db8::1%eth0"}, "2001:db8::1"},
		{[]string{"::ffff:203.0.113.9"}, "203.0.113.9"},
		{[]string{"203.0.113.7:8080, fd00::1"}, "203.0.113.7"},
		{[]string{"unknown"}, ""},
		{[]string{"203.0.113.7, garbage"}, ""},
		{[]string{""}, ""},
		{nil, ""},
		{[]string{strings.Repeat("1", 100)}, ""},
		{[]string{strings.Repeat("10.0.0.1,", 40) + "10.0.0.1"}, ""}, // more hops than any real chain
	} {
		a, ok := core.ForwardedClient(c.values, trusted)
		got := ""
		if ok {
			got = a.String()
		}
		if got != c.want {
			t.Errorf("%q: %q, want %q", c.values, got, c.want)
		}
	}
	// A huge header costs no more than its last entries.
	big := strings.Repeat("x", 1<<20) + ", 203.0.113.7"
	if a, ok := core.ForwardedClient([]string{big}, trusted); !ok || a.String() != "203.0.113.7" {
		t.Errorf("big header: %v %v", a, ok)
	}
}
