package memstore

import (
	"context"
	"time"
)

// ---- replay cache (core.ReplayCache) ------------------------------------------
//
// Remembered keys are one map from key to until (kept in UTC, so that a
// record holds no caller's *time.Location). Its size is bounded by how
// many keys callers remember within their lifetimes: the sweep drops a
// record once its until has passed, as it drops an expired code, so a
// client sending fresh keys grows the map only for as long as each key
// must be remembered anyway.

// Remember implements core.ReplayCache. The lookup and the insert happen
// under the store's write lock, so of calls racing with one key exactly
// one reports true. A record whose until is not after now counts as
// absent, whether or not the sweep has dropped it yet. Keys are compared
// byte for byte and may be of any length.
func (s *Store) Remember(ctx context.Context, key string, now, until time.Time) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.replay[key]; ok && t.After(now) {
		return false, nil
	}
	s.replay[key] = until.UTC()
	s.sweepLocked()
	return true, nil
}

// sweepReplayLocked drops the records whose until has passed at now (part
// of sweepLocked).
func (s *Store) sweepReplayLocked(now time.Time) {
	for k, t := range s.replay {
		if !now.Before(t) {
			delete(s.replay, k)
		}
	}
}
