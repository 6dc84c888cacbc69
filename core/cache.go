package core

import (
	"context"
	"sync"
	"time"
)

// ttlCache remembers values for a bounded time. Two generations of maps:
// values go into the current one, which becomes the previous one after a
// TTL (or when it grows past maxCacheEntries), and the previous one is then
// dropped whole. No scan ever runs under the lock on a request path.
type ttlCache[V any] struct {
	ttl       time.Duration
	mu        sync.RWMutex
	cur, prev map[string]cached[V]
	started   time.Time // of cur
}

type cached[V any] struct {
	v     V
	until time.Time
}

const maxCacheEntries = 100_000

func newTTLCache[V any](ttl time.Duration) *ttlCache[V] {
	return &ttlCache[V]{ttl: ttl, cur: map[string]cached[V]{}, prev: map[string]cached[V]{}}
}

func (c *ttlCache[V]) get(id string, now time.Time) (V, bool) {
	var zero V
	if c.ttl <= 0 {
		return zero, false
	}
	c.mu.RLock()
	e, ok := c.cur[id]
	if !ok {
		e, ok = c.prev[id]
	}
	c.mu.RUnlock()
	if !ok || !now.Before(e.until) {
		return zero, false
	}
	return e.v, true
}

func (c *ttlCache[V]) put(id string, v V, now time.Time) {
	if c.ttl <= 0 {
		return
	}
	c.mu.Lock()
	if now.Sub(c.started) >= c.ttl || len(c.cur) >= maxCacheEntries {
		c.prev, c.cur, c.started = c.cur, make(map[string]cached[V], len(c.cur)), now
	}
	c.cur[id] = cached[V]{v, now.Add(c.ttl)}
	c.mu.Unlock()
}

func (c *ttlCache[V]) forget(id string) {
	if c.ttl <= 0 {
		return
	}
	c.mu.Lock()
	delete(c.cur, id)
	delete(c.prev, id)
	c.mu.Unlock()
}

// getClient is Storage.GetClient behind the optional client cache
// (Config.Caches.Client). Callers get their own copy.
func (s *Server) getClient(ctx context.Context, id string) (*Client, error) {
	if s.isCIMDClientID(id) {
		return s.cimdClient(ctx, id)
	}
	now := s.now()
	if c, ok := s.clients.get(id, now); ok {
		cp := *c
		return &cp, nil
	}
	c, err := s.store.GetClient(ctx, id)
	if err != nil {
		return nil, err
	}
	if s.clients.ttl > 0 { // the copy would escape for nothing
		cp := *c
		s.clients.put(id, &cp, now)
	}
	return c, nil
}

// ForgetClient drops a client from the client cache at once (after
// deleting it or rotating its secret through this process). Other
// instances notice within Config.Caches.Client.
func (s *Server) ForgetClient(id string) { s.clients.forget(id) }
