// Package memstore is an in-memory core.Storage for tests, examples and
// single-instance deployments that can afford to lose every grant on
// restart. Its memory stays bounded: expired codes, refresh tokens and
// family revocations are dropped by a sweep that runs as writes happen.
package memstore

import (
	"context"
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

// AddClient registers (or replaces) a client.
func (s *Store) AddClient(c *core.Client) {
	cp := *c
	s.mu.Lock()
	s.clients[c.ID] = &cp
	s.mu.Unlock()
}

// RemoveClient deletes a client.
func (s *Store) RemoveClient(id string) {
	s.mu.Lock()
	delete(s.clients, id)
	s.mu.Unlock()
}

// GetClient implements core.Storage.
func (s *Store) GetClient(_ context.Context, id string) (*core.Client, error) {
	s.mu.RLock()
	c := s.clients[id]
	s.mu.RUnlock()
	if c == nil {
		return nil, core.ErrNotFound
	}
	cp := *c
	return &cp, nil
}

// CreateGrant implements core.Storage.
func (s *Store) CreateGrant(_ context.Context, g *core.Grant) error {
	cp := *g
	s.mu.Lock()
	s.grants[g.CodeSig] = &cp
	s.sweepLocked()
	s.mu.Unlock()
	return nil
}

// RedeemCode implements core.Storage.
func (s *Store) RedeemCode(_ context.Context, sig string, now time.Time, issue func(*core.Grant) (*core.RefreshToken, error)) (*core.Grant, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.grants[sig]
	if g == nil {
		return nil, core.ErrNotFound
	}
	cp := *g
	if g.UsedAt != nil {
		return &cp, core.ErrCodeUsed
	}
	if !now.Before(g.ExpiresAt) {
		return nil, core.ErrNotFound
	}
	// Under the lock, marking used and storing the refresh token are one
	// step: no other redemption can interleave.
	used := now
	g.UsedAt = &used
	rt, err := issue(&cp)
	if err != nil {
		return nil, err
	}
	if rt != nil {
		rcp := *rt
		s.refresh[rt.Sig] = &rcp
	}
	s.sweepLocked()
	cp.UsedAt = &used
	return &cp, nil
}

// RotateRefreshToken implements core.Storage.
func (s *Store) RotateRefreshToken(_ context.Context, sig string, now time.Time, issue func(*core.RefreshToken) (*core.RefreshToken, error)) (*core.RefreshToken, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.refresh[sig]
	if old == nil || !now.Before(old.ExpiresAt) {
		return nil, core.ErrNotFound
	}
	cp := *old
	if _, revoked := s.revoked[old.FamilyID]; old.RotatedAt != nil || revoked {
		return &cp, core.ErrTokenRotated
	}
	nt, err := issue(&cp)
	if err != nil {
		return nil, err
	}
	rotated := now
	old.RotatedAt = &rotated
	if nt != nil {
		ncp := *nt
		s.refresh[nt.Sig] = &ncp
	}
	s.sweepLocked()
	return &cp, nil
}

// GetRefreshToken implements core.Storage.
func (s *Store) GetRefreshToken(_ context.Context, sig string) (*core.RefreshToken, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	rt := s.refresh[sig]
	if rt == nil {
		return nil, core.ErrNotFound
	}
	cp := *rt
	return &cp, nil
}

// RevokeFamily implements core.Storage.
func (s *Store) RevokeFamily(_ context.Context, familyID string, keepUntil time.Time) error {
	s.mu.Lock()
	if t, ok := s.revoked[familyID]; !ok || keepUntil.After(t) {
		s.revoked[familyID] = keepUntil
	}
	s.sweepLocked()
	s.mu.Unlock()
	return nil
}

// IsFamilyRevoked implements core.Storage.
func (s *Store) IsFamilyRevoked(_ context.Context, familyID string) (bool, error) {
	s.mu.RLock()
	_, ok := s.revoked[familyID]
	s.mu.RUnlock()
	return ok, nil
}

// GetConsent implements core.Storage.
func (s *Store) GetConsent(_ context.Context, userID, clientID string) (string, error) {
	s.mu.RLock()
	sc, ok := s.consents[[2]string{userID, clientID}]
	s.mu.RUnlock()
	if !ok {
		return "", core.ErrNotFound
	}
	return sc, nil
}

// SaveConsent implements core.Storage.
func (s *Store) SaveConsent(_ context.Context, userID, clientID, scope string) error {
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
