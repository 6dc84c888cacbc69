package memstore

import (
	"context"
	"math"
	"time"

	"github.com/oauth2kit/oauth2kit/core"
)

// ---- device codes (core.DeviceStore) -------------------------------------------
//
// Device codes are a map by device code signature and an index by user
// code signature, both under the store's lock, so a decision and the grant
// it stores happen together. The sweep drops a device code
// core.DeviceCodeKeep after it expired (a device still polling learns
// expired_token until then); an approval's grant has its own lifetime.

type deviceRec struct {
	d core.DeviceCode // times in UTC, DecidedAt its own copy
}

var _ core.DeviceStore = (*Store)(nil)

func (s *Store) devicesLocked() {
	if s.devices == nil {
		s.devices, s.userCodes = map[string]deviceRec{}, map[string]string{}
	}
}

// CreateDeviceCode implements core.DeviceStore.
func (s *Store) CreateDeviceCode(ctx context.Context, d *core.DeviceCode) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.devicesLocked()
	if _, ok := s.devices[d.Sig]; ok {
		return core.ErrExists
	}
	if _, ok := s.userCodes[d.UserCodeSig]; ok {
		return core.ErrExists
	}
	rec := deviceRec{d: *d}
	rec.d.CreatedAt, rec.d.ExpiresAt, rec.d.NextPollAt = d.CreatedAt.UTC(), d.ExpiresAt.UTC(), d.NextPollAt.UTC()
	if d.DecidedAt != nil {
		t := d.DecidedAt.UTC()
		rec.d.DecidedAt = &t
	}
	s.devices[d.Sig] = rec
	s.userCodes[d.UserCodeSig] = d.Sig
	s.sweepLocked()
	return nil
}

func (r deviceRec) code() *core.DeviceCode {
	d := r.d
	if r.d.DecidedAt != nil {
		t := *r.d.DecidedAt
		d.DecidedAt = &t
	}
	return &d
}

// GetDeviceCode implements core.DeviceStore.
func (s *Store) GetDeviceCode(ctx context.Context, sig string) (*core.DeviceCode, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	rec, ok := s.devices[sig]
	if !ok {
		return nil, core.ErrNotFound
	}
	return rec.code(), nil
}

// GetDeviceCodeByUserCode implements core.DeviceStore.
func (s *Store) GetDeviceCodeByUserCode(ctx context.Context, userCodeSig string) (*core.DeviceCode, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	sig, ok := s.userCodes[userCodeSig]
	if !ok {
		return nil, core.ErrNotFound
	}
	return s.devices[sig].code(), nil
}

// DecideDeviceCode implements core.DeviceStore: the check, the decision
// and the grant under one write lock.
func (s *Store) DecideDeviceCode(ctx context.Context, sig string, now time.Time, approve bool, userID string, g *core.Grant) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if approve && (g == nil || g.CodeSig != sig) {
		return errApprovalGrant
	}
	if g != nil && uint64(len(g.CodeChallenge)) > math.MaxUint32 {
		return errChallengeTooLong
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.devices[sig]
	switch {
	case !ok || !now.Before(rec.d.ExpiresAt):
		return core.ErrNotFound
	case rec.d.DecidedAt != nil:
		return core.ErrCodeUsed
	}
	if approve {
		if _, taken := s.grants[sig]; taken {
			return core.ErrCodeUsed
		}
		s.grants[sig] = newGrantRec(g)
	}
	t := now.UTC()
	rec.d.DecidedAt, rec.d.Approved, rec.d.UserID = &t, approve, userID
	s.devices[sig] = rec
	return nil
}

// PollDeviceCode implements core.DeviceStore.
func (s *Store) PollDeviceCode(ctx context.Context, sig string, now, next time.Time) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.devices[sig]
	switch {
	case !ok:
		return false, core.ErrNotFound
	case rec.d.NextPollAt.After(now):
		return false, nil
	}
	rec.d.NextPollAt = next.UTC()
	s.devices[sig] = rec
	return true, nil
}

// SlowDownDeviceCode implements core.DeviceStore.
func (s *Store) SlowDownDeviceCode(ctx context.Context, sig string, interval time.Duration, next time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.devices[sig]
	if !ok {
		return core.ErrNotFound
	}
	rec.d.Interval, rec.d.NextPollAt = max(rec.d.Interval, interval), next.UTC()
	s.devices[sig] = rec
	return nil
}

// sweepDevicesLocked drops expired device codes (part of sweepLocked).
func (s *Store) sweepDevicesLocked(now time.Time) {
	for sig, rec := range s.devices {
		if !now.Before(rec.d.ExpiresAt.Add(core.DeviceCodeKeep)) {
			delete(s.devices, sig)
			delete(s.userCodes, rec.d.UserCodeSig)
		}
	}
}
