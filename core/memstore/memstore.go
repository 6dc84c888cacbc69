// Package memstore is an in-memory core.Storage for tests, examples and
// single-instance deployments that can afford to lose every grant on
// restart. Its memory stays bounded: expired codes, refresh tokens and
// family revocations are dropped by a sweep that runs as writes happen.
package memstore

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/oauth2kit/oauth2kit/core"
)

// Store is an in-memory core.Storage. The zero value is not usable; call
// New.
type Store struct {
	mu        sync.RWMutex
	clients   map[string]*core.Client
	grants    map[string]*core.Grant        // by code signature
	refresh   map[string]*core.RefreshToken // by signature
	revoked   map[string]time.Time          // family -> keep until
	consents  map[[2]string]string
	nextSweep time.Time
	// SweepEvery is the minimum interval between sweeps (default 1 min).
	SweepEvery time.Duration
	now        func() time.Time
}

var _ core.Storage = (*Store)(nil)

// New returns an empty store.
func New() *Store {
	return &Store{
		clients:    map[string]*core.Client{},
		grants:     map[string]*core.Grant{},
		refresh:    map[string]*core.RefreshToken{},
		revoked:    map[string]time.Time{},
		consents:   map[[2]string]string{},
		SweepEvery: time.Minute,
		now:        time.Now,
	}
}

// SetClock replaces the clock used for sweeping (tests).
func (s *Store) SetClock(now func() time.Time) {
	s.mu.Lock()
	s.now = now
	s.mu.Unlock()
}

// SaveClient registers a client, replacing any client with the same ID.
// The store keeps its own copy: later changes to c do not reach it.
func (s *Store) SaveClient(ctx context.Context, c *core.Client) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if c == nil || c.ID == "" {
		return errors.New("memstore: a client needs an ID")
	}
	cp := cloneClient(c)
	s.mu.Lock()
	s.clients[c.ID] = cp
	s.mu.Unlock()
	return nil
}

// DeleteClient removes a client and the consents users gave it (so that a
// client registered later under the same ID does not inherit them). It
// returns core.ErrNotFound if there is no such client. The client's codes
// and refresh tokens stay until they expire, but no request can
// authenticate as the client any more.
func (s *Store) DeleteClient(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.clients[id]; !ok {
		return core.ErrNotFound
	}
	delete(s.clients, id)
	for k := range s.consents {
		if k[1] == id {
			delete(s.consents, k)
		}
	}
	// Its codes and refresh tokens go too, so a client registered later
	// under the same id cannot use them. (Access tokens already issued run
	// out on their own, within the access-token lifetime.)
	for k, g := range s.grants {
		if g.ClientID == id {
			delete(s.grants, k)
		}
	}
	for k, rt := range s.refresh {
		if rt.ClientID == id {
			delete(s.refresh, k)
		}
	}
	return nil
}

// AddClient registers (or replaces) a client: SaveClient without a
// context, for tests and examples. It panics on a client without an ID.
func (s *Store) AddClient(c *core.Client) {
	if err := s.SaveClient(context.Background(), c); err != nil {
		panic(err)
	}
}

// RemoveClient deletes a client, if there is one: DeleteClient without a
// context.
func (s *Store) RemoveClient(id string) {
	_ = s.DeleteClient(context.Background(), id)
}

// The store hands out and keeps copies, never shared pointers or slices: a
// caller that modifies what it got (or what it saved) must not change the
// stored state behind the store's lock, as it could not with a database.

func cloneClient(c *core.Client) *core.Client {
	cp := *c
	cp.RedirectURIs = slices.Clone(c.RedirectURIs)
	cp.GrantTypes = slices.Clone(c.GrantTypes)
	cp.Scopes = slices.Clone(c.Scopes)
	return &cp
}

func cloneGrant(g *core.Grant) *core.Grant {
	cp := *g
	if g.UsedAt != nil {
		t := *g.UsedAt
		cp.UsedAt = &t
	}
	return &cp
}

func cloneRefresh(rt *core.RefreshToken) *core.RefreshToken {
	cp := *rt
	if rt.RotatedAt != nil {
		t := *rt.RotatedAt
		cp.RotatedAt = &t
	}
	return &cp
}

// GetClient implements core.Storage.
func (s *Store) GetClient(ctx context.Context, id string) (*core.Client, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	c := s.clients[id]
	s.mu.RUnlock()
	if c == nil {
		return nil, core.ErrNotFound
	}
	return cloneClient(c), nil
}

// CreateGrant implements core.Storage.
func (s *Store) CreateGrant(ctx context.Context, g *core.Grant) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	cp := cloneGrant(g)
	s.mu.Lock()
	s.grants[g.CodeSig] = cp
	s.sweepLocked()
	s.mu.Unlock()
	return nil
}

// RedeemCode implements core.Storage.
func (s *Store) RedeemCode(ctx context.Context, sig string, now time.Time, issue func(*core.Grant) (*core.RefreshToken, error)) (*core.Grant, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.grants[sig]
	if g == nil {
		return nil, core.ErrNotFound
	}
	if g.UsedAt != nil {
		return cloneGrant(g), core.ErrCodeUsed
	}
	if !now.Before(g.ExpiresAt) {
		return nil, core.ErrNotFound
	}
	// Under the lock, marking used and storing the refresh token are one
	// step: no other redemption can interleave.
	used := now
	g.UsedAt = &used
	cp := cloneGrant(g)
	cp.UsedAt = nil // issue sees the grant as it was before this redemption
	rt, err := issue(cp)
	if err != nil {
		return nil, err
	}
	if rt != nil {
		s.refresh[rt.Sig] = cloneRefresh(rt)
	}
	s.sweepLocked()
	return cloneGrant(g), nil
}

// RotateRefreshToken implements core.Storage.
func (s *Store) RotateRefreshToken(ctx context.Context, sig string, now time.Time, issue func(*core.RefreshToken) (*core.RefreshToken, error)) (*core.RefreshToken, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.refresh[sig]
	if old == nil || !now.Before(old.ExpiresAt) {
		return nil, core.ErrNotFound
	}
	cp := cloneRefresh(old)
	if _, revoked := s.revoked[old.FamilyID]; old.RotatedAt != nil || revoked {
		return cp, core.ErrTokenRotated
	}
	nt, err := issue(cloneRefresh(old))
	if err != nil {
		return nil, err
	}
	rotated := now
	old.RotatedAt = &rotated
	if nt != nil {
		s.refresh[nt.Sig] = cloneRefresh(nt)
	}
	s.sweepLocked()
	return cp, nil
}

// GetRefreshToken implements core.Storage.
func (s *Store) GetRefreshToken(ctx context.Context, sig string) (*core.RefreshToken, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	rt := s.refresh[sig]
	if rt == nil {
		return nil, core.ErrNotFound
	}
	return cloneRefresh(rt), nil
}

// RevokeFamily implements core.Storage.
func (s *Store) RevokeFamily(ctx context.Context, familyID string, keepUntil time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	if t, ok := s.revoked[familyID]; !ok || keepUntil.After(t) {
		s.revoked[familyID] = keepUntil
	}
	s.sweepLocked()
	s.mu.Unlock()
	return nil
}

// IsFamilyRevoked implements core.Storage.
func (s *Store) IsFamilyRevoked(ctx context.Context, familyID string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	s.mu.RLock()
	_, ok := s.revoked[familyID]
	s.mu.RUnlock()
	return ok, nil
}

// GetConsent implements core.Storage.
func (s *Store) GetConsent(ctx context.Context, userID, clientID string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	s.mu.RLock()
	sc, ok := s.consents[[2]string{userID, clientID}]
	s.mu.RUnlock()
	if !ok {
		return "", core.ErrNotFound
	}
	return sc, nil
}

// SaveConsent implements core.Storage.
func (s *Store) SaveConsent(ctx context.Context, userID, clientID, scope string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	s.consents[[2]string{userID, clientID}] = scope
	s.mu.Unlock()
	return nil
}

// Len reports how many codes, refresh tokens and family revocations the
// store holds (to observe that memory stays bounded).
func (s *Store) Len() (grants, refreshTokens, revocations int) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.grants), len(s.refresh), len(s.revoked)
}

// Sweep drops everything expired now, whatever the sweep interval.
func (s *Store) Sweep() {
	s.mu.Lock()
	s.nextSweep = time.Time{}
	s.sweepLocked()
	s.mu.Unlock()
}

// sweepLocked drops expired state at most once per SweepEvery. A used code
// is kept until it expires, so that a replay is still recognised as one
// (and revokes) for the code's whole lifetime; a rotated refresh token
// until its own expiry, for the same reason.
func (s *Store) sweepLocked() {
	now := s.now()
	if now.Before(s.nextSweep) {
		return
	}
	s.nextSweep = now.Add(s.SweepEvery)
	for k, g := range s.grants {
		if !now.Before(g.ExpiresAt) {
			delete(s.grants, k)
		}
	}
	for k, rt := range s.refresh {
		if !now.Before(rt.ExpiresAt) {
			delete(s.refresh, k)
		}
	}
	for k, t := range s.revoked {
		if !now.Before(t) {
			delete(s.revoked, k)
		}
	}
}
