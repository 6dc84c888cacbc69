package core

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// throttle counts authentication failures per account (a client id or a
// user name) and per remote address, in fixed windows. It is per process:
// with several instances behind a load balancer an attacker gets the limit
// per instance.
//
// perPair keys the account counter by (account, address) instead of the
// account alone. Client authentication uses it: client ids are public and
// secrets carry 256 bits, so a global per-client counter would only let
// anyone lock a client out, while guessing stays hopeless. Logins keep a
// global per-user counter, as passwords can be guessed.
type throttle struct {
	perKey, perAddr int
	perPair         bool
	window          time.Duration
	mu              sync.Mutex
	m               map[string]*window
	// entries mirrors len(m) (written under mu): blocked, which runs on
	// every client authentication, answers "not blocked" without the lock
	// or building keys while no failure at all is on record.
	entries atomic.Int64
}

type window struct {
	start    time.Time
	failures int
}

const maxThrottleEntries = 200_000

func newThrottle(perKey, perAddr int, perPair bool, w time.Duration) *throttle {
	return &throttle{perKey: perKey, perAddr: perAddr, perPair: perPair, window: w, m: map[string]*window{}}
}

func (t *throttle) accountKey(account, addr string) string {
	if t.perPair {
		return "k:" + account + "|" + addr
	}
	return "k:" + account
}

// addrKey reduces "ip:port" to the ip (and an IPv6 address to its /64, as
// one host usually owns a whole /64).
func addrKey(remote string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	// Fast path without allocations for a plain IPv4 address: netip
	// accepts only canonical dotted decimal for it, so host is already
	// what ip4.String() below would print.
	if a, err := netip.ParseAddr(host); err == nil && a.Is4() {
		return "a:" + host
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
// this account or address, 0 if it may try now.
func (t *throttle) blocked(account, remote string, now time.Time) time.Duration {
	if t.entries.Load() == 0 {
		return 0 // no failure recorded: nothing can be blocked
	}
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
	addr := addrKey(remote)
	if account != "" {
		check(t.accountKey(account, addr), t.perKey)
	}
	check(addr, t.perAddr)
	return wait
}

// fail records one failure for the account ("" for none) and the address.
func (t *throttle) fail(account, remote string, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.m) >= maxThrottleEntries {
		for k, w := range t.m {
			if now.Sub(w.start) >= t.window {
				delete(t.m, k)
			}
		}
	}
	bump := func(key string) {
		w := t.m[key]
		if w == nil {
			// Under a flood of distinct keys the table stops taking new
			// ones rather than grow without bound; the counters it holds
			// (the attacked account's, the flooding addresses') stay.
			if len(t.m) >= maxThrottleEntries {
				return
			}
			w = &window{start: now}
			t.m[key] = w
		} else if now.Sub(w.start) >= t.window {
			*w = window{start: now}
		}
		w.failures++
	}
	addr := addrKey(remote)
	if account != "" && len(account) <= 128 {
		bump(t.accountKey(account, addr))
	}
	bump(addr)
	t.entries.Store(int64(len(t.m)))
}
