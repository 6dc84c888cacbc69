package core

import (
	"net"
	"sync"
	"time"
)

// throttle counts client authentication failures per client id and per
// remote address in fixed windows. It is per process: with several
// instances behind a load balancer an attacker gets at most the limit per
// instance, which still bounds guessing to a handful of attempts per
// minute against 256-bit secrets.
type throttle struct {
	perKey, perAddr int
	window          time.Duration
	mu              sync.Mutex
	m               map[string]*window
}

type window struct {
	start    time.Time
	failures int
}

const maxThrottleEntries = 200_000

func newThrottle(perKey, perAddr int, w time.Duration) *throttle {
	return &throttle{perKey: perKey, perAddr: perAddr, window: w, m: map[string]*window{}}
}

// addrKey reduces "ip:port" to the ip (and an IPv6 address to its /64, as
// one host usually owns a whole /64).
func addrKey(remote string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return "a:" + host
	}
	if ip4 := ip.To4(); ip4 != nil {
		return "a:" + ip4.String()
	}
	return "a:" + ip.Mask(net.CIDRMask(64, 128)).String()
}

// blocked reports how long the caller must wait before another attempt for
// this client or address, 0 if it may try now.
func (t *throttle) blocked(clientID, remote string, now time.Time) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	wait := time.Duration(0)
	check := func(key string, limit int) {
		if w := t.m[key]; w != nil && now.Sub(w.start) < t.window && w.failures >= limit {
			if d := t.window - now.Sub(w.start); d > wait {
				wait = d
			}
		}
	}
	if clientID != "" {
		check("c:"+clientID, t.perKey)
	}
	check(addrKey(remote), t.perAddr)
	return wait
}

// fail records one failure for the client id and the address.
func (t *throttle) fail(clientID, remote string, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.m) >= maxThrottleEntries {
		for k, w := range t.m {
			if now.Sub(w.start) >= t.window {
				delete(t.m, k)
			}
		}
		if len(t.m) >= maxThrottleEntries {
			// Under a flood of distinct keys, forget everything rather than
			// grow without bound; the per-window limit resumes at once.
			clear(t.m)
		}
	}
	bump := func(key string) {
		w := t.m[key]
		if w == nil || now.Sub(w.start) >= t.window {
			w = &window{start: now}
			t.m[key] = w
		}
		w.failures++
	}
	if clientID != "" && len(clientID) <= 128 {
		bump("c:" + clientID)
	}
	bump(addrKey(remote))
}
