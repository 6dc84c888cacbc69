package core

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oauth2kit/oauth2kit/core/internal/dpop"
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
	revCache *ttlCache[struct{}] // "family not revoked", Config.Caches.Revocation
	clients  *ttlCache[*Client]  // Config.Caches.Client
	grants   *grantRegistry
	routes   []*endpoint            // in Paths order
	byPath   map[string]*endpoint   // Handle's dispatch
	access   accessFormat           // the sealed format
	jwt      accessFormat           // RFC 9068, nil without OIDC signing keys
	metadata atomic.Pointer[[]byte] // rebuilt when the signing set changes
	bufPool  sync.Pool
	signing  atomic.Pointer[keySet] // nil without OIDC
	rotateMu sync.Mutex             // one RotateKeys at a time

	regThrottle *throttle // registrations per address; nil without registration
	cimd        *cimdResolver
	dpopNonces  *dpop.Nonces // nil without Config.DPoP.RequireNonce
	// deviceThrottle counts wrong user codes per address; nil without
	// Config.Device.
	deviceThrottle *throttle
	// backchannel delivers logout tokens; nil without
	// Config.BackchannelLogout.
	backchannel *backchannel
}

// New builds a Server. store persists clients, grants and tokens; auth is
// the application's login step (see Authenticator).
func New(cfg Config, store Storage, auth Authenticator) (*Server, error) {
	routes := builtinEndpoints
	if cfg.OIDC.enabled() {
		routes = append(slices.Clip(routes), oidcEndpoints...)
	}
	if cfg.Registration.Policy != RegistrationOff {
		routes = append(slices.Clip(routes), &epRegistration)
	}
	if cfg.PAR.Enabled {
		routes = append(slices.Clip(routes), &epPAR)
	}
	if cfg.Device.Enabled {
		routes = append(slices.Clip(routes), &epDeviceAuthorization, &epDeviceVerification)
	}
	return newServer(cfg, store, auth, builtinGrants, routes)
}

// newServer is New over a grant registry and an endpoint table (tests add
// rows to both; features switched on by configuration will too).
func newServer(cfg Config, store Storage, auth Authenticator, grants *grantRegistry, routes []*endpoint) (*Server, error) {
	if store == nil {
		return nil, errors.New("oauth2kit: a Storage is required")
	}
	if auth == nil {
		return nil, errors.New("oauth2kit: an Authenticator is required")
	}
	if err := cfg.setDefaults(routes); err != nil {
		return nil, err
	}
	grants = grants.enabledFor(&cfg)
	keys, err := newRing(Keys{ID: cfg.Keys.ID, CryptKey: cfg.Keys.CryptKey, SignKey: cfg.Keys.SignKey}, cfg.VerifyKeys)
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
		throttle: newThrottle(cfg.AuthThrottle.PerAccount, cfg.AuthThrottle.PerAddr, true, cfg.AuthThrottle.Window),
		logins:   newThrottle(cfg.LoginThrottle.PerAccount, cfg.LoginThrottle.PerAddr, false, cfg.LoginThrottle.Window),
		revCache: newTTLCache[struct{}](cfg.Caches.Revocation),
		clients:  newTTLCache[*Client](cfg.Caches.Client),
		grants:   grants,
		routes:   routes,
		byPath:   make(map[string]*endpoint, len(routes)),
	}
	for _, ep := range routes {
		s.byPath[*ep.path(&s.cfg)] = ep
	}
	if cfg.OIDC.enabled() {
		ks, err := newKeySet(cfg.OIDC.SigningKeys)
		if err != nil {
			return nil, err
		}
		if cfg.OIDC.AccessTokenAlg != "" && ks.signers[cfg.OIDC.AccessTokenAlg] == nil {
			return nil, fmt.Errorf("oauth2kit: Config.OIDC.AccessTokenAlg %q has no signing key", cfg.OIDC.AccessTokenAlg)
		}
		s.signing.Store(ks)
		s.jwt = jwtFormat{s}
	} else if cfg.AccessTokenFormat == FormatJWT {
		return nil, errors.New("oauth2kit: Config.AccessTokenFormat jwt needs Config.OIDC.SigningKeys")
	}
	s.access = sealedFormat{s}
	if err := s.checkRegistration(); err != nil {
		return nil, err
	}
	// Client assertions before CIMD, whose clients may use them.
	if err := s.setupClientAssertions(); err != nil {
		return nil, err
	}
	if err := s.setupCIMD(); err != nil {
		return nil, err
	}
	if err := s.setupDPoP(); err != nil {
		return nil, err
	}
	if err := s.setupMTLS(); err != nil {
		return nil, err
	}
	if err := s.setupPAR(); err != nil {
		return nil, err
	}
	if err := s.setupDevice(); err != nil {
		return nil, err
	}
	if err := s.setupTokenExchange(); err != nil {
		return nil, err
	}
	if err := s.setupJWTBearer(); err != nil {
		return nil, err
	}
	if err := s.setupBackchannel(); err != nil {
		return nil, err
	}
	if err := s.checkFAPIConfig(); err != nil {
		return nil, err
	}
	md := s.buildMetadata()
	s.metadata.Store(&md)
	return s, nil
}

// Config returns the effective configuration (defaults filled in).
func (s *Server) Config() Config { return s.cfg }

func (s *Server) now() time.Time { return s.cfg.Now() }

// familyKeep is how long a family revocation must be remembered: past the
// expiry of every token the family could hold.
func (s *Server) familyKeep(now time.Time) time.Time {
	return now.Add(s.cfg.Lifetimes.RefreshToken + s.cfg.Lifetimes.AccessToken)
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
	p.dpopJKT = ""
	s.bufPool.Put(p)
}
