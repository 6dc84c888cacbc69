package memstore

import (
	"context"
	"errors"
	"time"

	"github.com/oauth2kit/oauth2kit/core"
)

// ---- dynamic client registration (core.RegistrationStore) --------------------
//
// Clients stay in the one map SaveClient fills; the methods below need no
// index of their own. Counting and expiring dynamic clients scan the map
// under the lock: they serve a registration (a quota check) and a
// periodic purge, and a map of even a hundred thousand clients is scanned
// in well under a millisecond.

// CreateClient implements core.RegistrationStore: c is stored (a copy, as
// SaveClient keeps) only if no client has its ID; otherwise it returns
// core.ErrExists and the stored client is left as it was. The check and
// the insert happen under one lock, so of clients racing for one ID
// exactly one is stored.
func (s *Store) CreateClient(ctx context.Context, c *core.Client) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if c == nil || c.ID == "" {
		return errors.New("memstore: a client needs an ID")
	}
	cp := cloneClient(c)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.clients[c.ID]; ok {
		return core.ErrExists
	}
	s.clients[c.ID] = cp
	return nil
}

// MarkClientUsed implements core.RegistrationStore: the client's UsedAt
// becomes at if it is still zero, so the first use is the one kept
// however many requests race to record theirs. An absent client is not an
// error: it may have been deleted since the request read it.
//
// The stored client is replaced by an updated copy rather than changed in
// place, because GetClient and ListClients copy the client they found
// after releasing the read lock. The copy shares the stored lists, which
// the store never writes to.
func (s *Store) MarkClientUsed(ctx context.Context, id string, at time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.clients[id]; ok && c.UsedAt.IsZero() {
		cp := *c
		cp.UsedAt = at
		s.clients[id] = &cp
	}
	return nil
}

// CountDynamicClients implements core.RegistrationStore.
func (s *Store) CountDynamicClients(ctx context.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	n := 0
	for _, c := range s.clients {
		if c.Dynamic {
			n++
		}
	}
	return n, nil
}

// DeleteUnusedClients implements core.RegistrationStore: every client with
// Dynamic set, a zero UsedAt and a CreatedAt before createdBefore is
// removed as DeleteClient removes one (its consents, codes and refresh
// tokens with it), all in one step under the lock, so a client marked
// used before the call is never removed by it. It returns how many
// clients it removed.
func (s *Store) DeleteUnusedClients(ctx context.Context, createdBefore time.Time) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := map[string]struct{}{}
	for id, c := range s.clients {
		if c.Dynamic && c.UsedAt.IsZero() && c.CreatedAt.Before(createdBefore) {
			ids[id] = struct{}{}
		}
	}
	if len(ids) > 0 {
		s.deleteClientsLocked(ids)
	}
	return len(ids), nil
}
