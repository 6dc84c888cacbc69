package core

import (
	"context"
	"time"
)

// nopStore is a Storage that knows nothing; enough for tests of the codec.
type nopStore struct{}

func (nopStore) GetClient(context.Context, string) (*Client, error) { return nil, ErrNotFound }
func (nopStore) CreateGrant(context.Context, *Grant) error          { return nil }
func (nopStore) RedeemCode(context.Context, string, time.Time, func(*Grant) (*RefreshToken, error)) (*Grant, error) {
	return nil, ErrNotFound
}
func (nopStore) RotateRefreshToken(context.Context, string, time.Time, func(*RefreshToken) (*RefreshToken, error)) (*RefreshToken, error) {
	return nil, ErrNotFound
}
func (nopStore) GetRefreshToken(context.Context, string) (*RefreshToken, error) {
	return nil, ErrNotFound
}
func (nopStore) RevokeFamily(context.Context, string, time.Time) error      { return nil }
func (nopStore) IsFamilyRevoked(context.Context, string) (bool, error)      { return false, nil }
func (nopStore) GetConsent(context.Context, string, string) (string, error) { return "", ErrNotFound }
func (nopStore) SaveConsent(context.Context, string, string, string) error  { return nil }
