package core

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"
)

// Server is the authorization server. It is safe for concurrent use; build
// it once with New and mount it through an adapter (or call its endpoint
// methods from your own HTTP stack).
type Server struct {
	cfg   Config
	store Storage
	caps  capabilities
	auth  Authenticator
	keys  *ring
	log   *slog.Logger

	throttle *throttle           // client authentication failures
	logins   *throttle           // login failures reported by the app
	revCache *ttlCache[struct{}] // "family not revoked", RevocationCacheTTL
	clients  *ttlCache[*Client]  // ClientCacheTTL
	metadata []byte
	bufPool  sync.Pool
}

// New builds a Server. store persists clients, grants and tokens; auth is
// the application's login step (see Authenticator).
func New(cfg Config, store Storage, auth Authenticator) (*Server, error) {
	if store == nil {
		return nil, errors.New("oauth2kit: a Storage is required")
	}
	if auth == nil {
		return nil, errors.New("oauth2kit: an Authenticator is required")
	}
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	keys, err := newRing(Keys{ID: cfg.KeyID, CryptKey: cfg.CryptKey, SignKey: cfg.SignKey}, cfg.VerifyKeys)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:      cfg,
		store:    store,
		caps:     findCapabilities(store),
		auth:     auth,
		keys:     keys,
		log:      cfg.Logger,
		throttle: newThrottle(cfg.MaxAuthFailures, cfg.MaxAuthFailuresPerAddr, true, cfg.AuthFailureWindow),
		logins:   newThrottle(cfg.MaxLoginFailures, cfg.MaxLoginFailuresPerAddr, false, cfg.LoginFailureWindow),
		revCache: newTTLCache[struct{}](cfg.RevocationCacheTTL),
		clients:  newTTLCache[*Client](cfg.ClientCacheTTL),
	}
	s.metadata = s.buildMetadata()
	return s, nil
}

// Config returns the effective configuration (defaults filled in).
func (s *Server) Config() Config { return s.cfg }

// Handle answers r if its path is one of the server's endpoints and reports
// whether it did. Adapters call it for every request under their mount.
func (s *Server) Handle(w Responder, r Request) bool {
	switch r.Path() {
	case s.cfg.AuthorizeURL:
		s.Authorize(w, r)
	case s.cfg.ProcessLoginURL:
		s.ProcessLogin(w, r)
	case s.cfg.TokenURL:
		s.Token(w, r)
	case s.cfg.RevokeURL:
		s.Revoke(w, r)
	case s.cfg.IntrospectURL:
		s.Introspect(w, r)
	case s.cfg.MetadataURL:
		s.Metadata(w, r)
	default:
		return false
	}
	return true
}

// Paths lists the endpoint paths Handle answers, for routers that need
// routes registered one by one.
func (s *Server) Paths() []string {
	c := &s.cfg
	return []string{c.AuthorizeURL, c.ProcessLoginURL, c.TokenURL, c.RevokeURL, c.IntrospectURL, c.MetadataURL}
}

func (s *Server) now() time.Time { return s.cfg.Now() }

// familyKeep is how long a family revocation must be remembered: past the
// expiry of every token the family could hold.
func (s *Server) familyKeep(now time.Time) time.Time {
	return now.Add(s.cfg.RefreshTokenLifetime + s.cfg.AccessTokenLifetime)
}

// revokeFamily revokes a grant's tokens and drops any cached "not revoked"
// answer for it.
func (s *Server) revokeFamily(ctx context.Context, familyID string, now time.Time) error {
	err := s.store.RevokeFamily(ctx, familyID, s.familyKeep(now))
	s.revCache.forget(familyID)
	return err
}

func (s *Server) profileOf(c *Client) Profile {
	if c != nil && c.Profile != ProfileDefault {
		return c.Profile
	}
	return s.cfg.Profile
}

func (s *Server) getParams() *params {
	if p, ok := s.bufPool.Get().(*params); ok {
		return p
	}
	return &params{keys: make([]string, 0, 8), vals: make([]string, 0, 8)}
}

func (s *Server) putParams(p *params) {
	if cap(p.keys) > 256 {
		return
	}
	clear(p.keys)
	clear(p.vals)
	p.keys, p.vals = p.keys[:0], p.vals[:0]
	s.bufPool.Put(p)
}

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
// (Config.ClientCacheTTL). Callers get their own copy.
func (s *Server) getClient(ctx context.Context, id string) (*Client, error) {
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
// instances notice within Config.ClientCacheTTL.
func (s *Server) ForgetClient(id string) { s.clients.forget(id) }
