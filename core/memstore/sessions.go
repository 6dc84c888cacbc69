package memstore

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/oauth2kit/oauth2kit/core"
)

// ---- login sessions (core.LoginSessionStore, core.SessionClientStore) -------
//
// Sessions are kept by value, their AMR and ClientIDs lists copied on the
// way in and on the way out, so that neither the caller's value nor what
// it got back shares memory with the store; bySID finds a session by its
// SID. An ended session is deleted at once; an expired one answers
// core.ErrNotFound and is dropped by the sweep, like an expired code.

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
	if ls.SID != "" {
		if s.bySID == nil {
			s.bySID = map[string]string{}
		}
		s.bySID[ls.SID] = ls.ID
	}
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
	s.deleteSessionLocked(id)
	s.sweepLocked()
	s.mu.Unlock()
	return nil
}

var _ core.SessionClientStore = (*Store)(nil)

// AddSessionClient implements core.SessionClientStore: clientID is
// appended to the live session's ClientIDs unless it is there already;
// core.ErrNotFound without a live session.
func (s *Store) AddSessionClient(ctx context.Context, sid, clientID string, now time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.bySID[sid]
	if !ok || sid == "" {
		return core.ErrNotFound
	}
	rec, ok := s.sessions[id]
	switch {
	case !ok || !now.Before(rec.ExpiresAt):
		return core.ErrNotFound
	case slices.Contains(rec.ClientIDs, clientID):
		return nil
	case len(rec.ClientIDs) >= core.MaxSessionClients:
		return core.ErrTooManySessionClients
	}
	rec.ClientIDs = append(rec.ClientIDs, clientID) // the store's own list (cloneSession)
	s.sessions[id] = rec
	return nil
}

// TakeLoginSession implements core.SessionClientStore: the session is
// deleted and returned (a copy) if it was live.
func (s *Store) TakeLoginSession(ctx context.Context, id string, now time.Time) (*core.LoginSession, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.sessions[id]
	if !ok {
		return nil, core.ErrNotFound
	}
	s.deleteSessionLocked(id)
	s.sweepLocked()
	if !now.Before(rec.ExpiresAt) {
		return nil, core.ErrNotFound
	}
	cp := cloneSession(&rec)
	return &cp, nil
}

// TakeUserLoginSessions implements core.SessionClientStore: every session
// of the user is deleted, the live ones returned (copies). It scans the
// sessions: ending all of a user's sessions is rare.
func (s *Store) TakeUserLoginSessions(ctx context.Context, userID string, now time.Time) ([]*core.LoginSession, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*core.LoginSession
	for id, rec := range s.sessions {
		if rec.UserID != userID {
			continue
		}
		s.deleteSessionLocked(id)
		if now.Before(rec.ExpiresAt) {
			cp := cloneSession(&rec)
			out = append(out, &cp)
		}
	}
	s.sweepLocked()
	return out, nil
}

// deleteSessionLocked deletes the session id and its SID index entry.
func (s *Store) deleteSessionLocked(id string) {
	rec, ok := s.sessions[id]
	if !ok {
		return
	}
	delete(s.sessions, id)
	if s.bySID[rec.SID] == id {
		delete(s.bySID, rec.SID)
	}
}

// cloneSession copies ls with its own AMR and ClientIDs lists (a nil list
// stays nil).
func cloneSession(ls *core.LoginSession) core.LoginSession {
	cp := *ls
	cp.AMR = slices.Clone(ls.AMR)
	cp.ClientIDs = slices.Clone(ls.ClientIDs)
	return cp
}

// sweepSessionsLocked drops the sessions expired at now (part of
// sweepLocked).
func (s *Store) sweepSessionsLocked(now time.Time) {
	for k, ls := range s.sessions {
		if !now.Before(ls.ExpiresAt) {
			s.deleteSessionLocked(k)
		}
	}
}
