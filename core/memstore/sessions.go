package memstore

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/oauth2kit/oauth2kit/core"
)

// ---- login sessions (core.LoginSessionStore) ---------------------------------
//
// Sessions are kept by value, their AMR list copied on the way in and on
// the way out, so that neither the caller's value nor what it got back
// shares memory with the store. An ended session is deleted at once; an
// expired one answers core.ErrNotFound and is dropped by the sweep, like
// an expired code.

// CreateLoginSession implements core.LoginSessionStore. A session whose ID
// is stored already (until it ends, or the sweep drops it once expired) is
// not stored: it returns core.ErrExists.
func (s *Store) CreateLoginSession(ctx context.Context, ls *core.LoginSession) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if ls == nil || ls.ID == "" {
		return errors.New("memstore: a login session needs an ID")
	}
	rec := cloneSession(ls)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.sessions[ls.ID]; ok {
		return core.ErrExists
	}
	s.sessions[ls.ID] = rec
	s.sweepLocked()
	return nil
}

// GetLoginSession implements core.LoginSessionStore: a copy of the
// session, or core.ErrNotFound if there is none, it ended, or it expired
// (ExpiresAt not after now).
func (s *Store) GetLoginSession(ctx context.Context, id string, now time.Time) (*core.LoginSession, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	rec, ok := s.sessions[id]
	s.mu.RUnlock()
	if !ok || !now.Before(rec.ExpiresAt) {
		return nil, core.ErrNotFound
	}
	cp := cloneSession(&rec)
	return &cp, nil
}

// EndLoginSession implements core.LoginSessionStore: the session is
// deleted. Ending an absent session is not an error.
func (s *Store) EndLoginSession(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	delete(s.sessions, id)
	s.sweepLocked()
	s.mu.Unlock()
	return nil
}

// cloneSession copies ls with its own AMR list (a nil list stays nil).
func cloneSession(ls *core.LoginSession) core.LoginSession {
	cp := *ls
	cp.AMR = slices.Clone(ls.AMR)
	return cp
}

// sweepSessionsLocked drops the sessions expired at now (part of
// sweepLocked).
func (s *Store) sweepSessionsLocked(now time.Time) {
	for k, ls := range s.sessions {
		if !now.Before(ls.ExpiresAt) {
			delete(s.sessions, k)
		}
	}
}
