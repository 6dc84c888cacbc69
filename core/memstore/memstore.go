// Package memstore is an in-memory core.Storage for tests, examples and
// single-instance deployments that can afford to lose every grant on
// restart. Its memory stays bounded: expired codes, refresh tokens,
// family revocations, login sessions and replay cache records are dropped
// by a sweep that runs as writes happen.
//
// It implements the capabilities core.ClientRegistry,
// core.RegistrationStore, core.UserGrantStore, core.LoginSessionStore,
// core.SessionClientStore, core.ReplayCache and core.DeviceStore. Being in memory, its replay cache holds only within
// one process: instances that must refuse each other's replays share a
// database store instead.
package memstore

import (
	"cmp"
	"context"
	"errors"
	"math"
	"slices"
	"sync"
	"time"
	"unique"

	"github.com/oauth2kit/oauth2kit/core"
)

// Store is an in-memory core.Storage. The zero value is not usable; call
// New.
type Store struct {
	mu        sync.RWMutex
	clients   map[string]*core.Client
	grants    map[string]grantRec   // by code signature
	refresh   map[string]refreshRec // by signature
	revoked   map[string]time.Time  // family -> keep until
	consents  map[[2]string]string
	sessions  map[string]core.LoginSession // by ID; see sessions.go
	bySID     map[string]string            // session SID -> ID; see sessions.go
	replay    map[string]time.Time         // key -> until; see replay.go
	devices   map[string]deviceRec         // by device code signature; see device.go
	userCodes map[string]string            // user code signature -> device code signature
	nextSweep time.Time
	// SweepEvery is the minimum interval between sweeps (default 1 min).
	SweepEvery time.Duration
	now        func() time.Time
}

var (
	_ core.Storage           = (*Store)(nil)
	_ core.ClientRegistry    = (*Store)(nil)
	_ core.RegistrationStore = (*Store)(nil)
	_ core.UserGrantStore    = (*Store)(nil)
	_ core.LoginSessionStore = (*Store)(nil)
	_ core.ReplayCache       = (*Store)(nil)
)

// New returns an empty store.
func New() *Store {
	return &Store{
		clients:    map[string]*core.Client{},
		grants:     map[string]grantRec{},
		refresh:    map[string]refreshRec{},
		revoked:    map[string]time.Time{},
		consents:   map[[2]string]string{},
		sessions:   map[string]core.LoginSession{},
		replay:     map[string]time.Time{},
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

// DeleteClient removes a client with its codes, its refresh tokens and the
// consents users gave it (so that a client registered later under the same
// ID inherits none of them). It returns core.ErrNotFound if there is no
// such client.
func (s *Store) DeleteClient(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.clients[id]; !ok {
		return core.ErrNotFound
	}
	s.deleteClientsLocked(map[string]struct{}{id: {}})
	return nil
}

// deleteClientsLocked removes the clients in ids with their consents,
// codes and refresh tokens, in one pass over each map however many
// clients go (DeleteUnusedClients may remove thousands at once). The
// caller holds the write lock.
func (s *Store) deleteClientsLocked(ids map[string]struct{}) {
	has := func(id string) bool { _, ok := ids[id]; return ok }
	for id := range ids {
		delete(s.clients, id)
	}
	for k := range s.consents {
		if has(k[1]) {
			delete(s.consents, k)
		}
	}
	// Their codes and refresh tokens go too, so a client registered later
	// under the same id cannot use them. (Access tokens already issued run
	// out on their own, within the access-token lifetime.)
	for k, g := range s.grants {
		if has(g.shared.Value().clientID) {
			delete(s.grants, k)
		}
	}
	for k, rt := range s.refresh {
		if has(rt.shared.Value().clientID) {
			delete(s.refresh, k)
		}
	}
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

// ListClients implements core.ClientRegistry: copies of every client,
// ordered by ID (byte order).
func (s *Store) ListClients(ctx context.Context) ([]*core.Client, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	out := make([]*core.Client, 0, len(s.clients))
	for _, c := range s.clients {
		out = append(out, cloneClient(c))
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b *core.Client) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// The store hands out and keeps copies, never shared pointers or slices: a
// caller that modifies what it got (or what it saved) must not change the
// stored state behind the store's lock, as it could not with a database.
//
// Codes and refresh tokens are the bulk of the store's memory, and they are
// kept in a form the garbage collector scans cheaply: a record by value in
// the map (no pointer per record, no *time.Time), its per-record strings as
// the caller gave them, and the strings that repeat across records (client,
// user, scope, ...) interned together as one shared value, so the heap
// holds one copy per distinct combination of them instead of one per token.
// The record types are small enough (at most 128 bytes, checked by a test)
// for the map to keep them in its own slots instead of allocating each one
// apart.

// shared holds the fields of a code or refresh token that many records have
// in common. Interned with the unique package: records hold a
// pointer-sized handle, and a value no record uses any more is dropped by
// the runtime, so the table needs no upkeep to stay bounded.
//
// jkt is a refresh token's DPoP key thumbprint (RefreshToken.JKT): every
// token of a family has the same, so it is interned with the rest rather
// than kept per record (codes leave it empty).
type shared struct {
	clientID, userID, redirectURI, scope, challengeMethod, additionalInfo, resource, jkt string
}

// grantRec is a stored code; its signature is the map key.
type grantRec struct {
	id string
	// challengeOIDC is Grant.CodeChallenge followed by Grant.OIDC, split
	// at challengeLen: one string for the two keeps the record within 128
	// bytes. It is the caller's string when either is empty.
	challengeOIDC    string
	shared           unique.Handle[shared]
	created, expires time.Time
	usedAt           time.Time // meaningful only if used
	// keepExtra is how long past expires the record is kept
	// (Grant.KeepUntil - ExpiresAt, never negative): a duration rather
	// than a time.Time keeps the record within 128 bytes.
	keepExtra    time.Duration
	used         bool
	challengeLen uint32 // in the padding after used
}

// keep is when the record may be dropped: max(ExpiresAt, KeepUntil).
func (r *grantRec) keep() time.Time { return r.expires.Add(r.keepExtra) }

// refreshRec is a stored refresh token; its signature is the map key.
type refreshRec struct {
	familyID string
	// oidc is RefreshToken.OIDC, as the caller gave it: the tokens of a
	// family share the grant's string, so it is not interned.
	oidc             string
	shared           unique.Handle[shared]
	created, expires time.Time
	rotatedAt        time.Time // meaningful only if rotated
	rotated          bool
}

// errChallengeTooLong: a code challenge longer than challengeLen can tell
// (4 GiB) is refused rather than split wrongly.
var errChallengeTooLong = errors.New("memstore: code challenge too long")
var errApprovalGrant = errors.New("memstore: an approval stores a grant under the device code's signature")

func newGrantRec(g *core.Grant) grantRec {
	r := grantRec{
		id: g.ID, challengeOIDC: g.CodeChallenge + g.OIDC, challengeLen: uint32(len(g.CodeChallenge)),
		shared: unique.Make(shared{
			clientID: g.ClientID, userID: g.UserID, redirectURI: g.RedirectURI,
			scope: g.Scope, challengeMethod: g.CodeChallengeMethod, additionalInfo: g.AdditionalInfo, resource: g.Resource, jkt: g.DPoPJKT,
		}),
		created: g.CreatedAt, expires: g.ExpiresAt,
	}
	if g.KeepUntil.After(g.ExpiresAt) {
		r.keepExtra = g.KeepUntil.Sub(g.ExpiresAt) // saturates: "keep for ever"
	}
	if g.UsedAt != nil {
		r.used, r.usedAt = true, *g.UsedAt
	}
	return r
}

// grant returns a copy of the record that the caller may keep and modify.
func (r *grantRec) grant(sig string) *core.Grant {
	sh := r.shared.Value()
	g := &core.Grant{
		ID: r.id, CodeSig: sig, ClientID: sh.clientID, UserID: sh.userID,
		RedirectURI: sh.redirectURI, Scope: sh.scope, CodeChallenge: r.challengeOIDC[:r.challengeLen],
		CodeChallengeMethod: sh.challengeMethod, AdditionalInfo: sh.additionalInfo,
		OIDC: r.challengeOIDC[r.challengeLen:], Resource: sh.resource, DPoPJKT: sh.jkt, CreatedAt: r.created, ExpiresAt: r.expires,
	}
	if r.keepExtra > 0 {
		g.KeepUntil = r.keep()
	}
	if r.used {
		t := r.usedAt
		g.UsedAt = &t
	}
	return g
}

func newRefreshRec(rt *core.RefreshToken) refreshRec {
	r := refreshRec{
		familyID: rt.FamilyID, oidc: rt.OIDC,
		shared: unique.Make(shared{
			clientID: rt.ClientID, userID: rt.UserID, scope: rt.Scope, additionalInfo: rt.AdditionalInfo, resource: rt.Resource, jkt: rt.JKT,
		}),
		created: rt.CreatedAt, expires: rt.ExpiresAt,
	}
	if rt.RotatedAt != nil {
		r.rotated, r.rotatedAt = true, *rt.RotatedAt
	}
	return r
}

// token returns a copy of the record that the caller may keep and modify.
func (r *refreshRec) token(sig string) *core.RefreshToken {
	sh := r.shared.Value()
	rt := &core.RefreshToken{
		Sig: sig, FamilyID: r.familyID, ClientID: sh.clientID, UserID: sh.userID,
		Scope: sh.scope, AdditionalInfo: sh.additionalInfo, OIDC: r.oidc, Resource: sh.resource, JKT: sh.jkt,
		CreatedAt: r.created, ExpiresAt: r.expires,
	}
	if r.rotated {
		t := r.rotatedAt
		rt.RotatedAt = &t
	}
	return rt
}

// cloneClient copies c with one allocation for its four lists: they are
// capped sub-slices of one array, so that appending to one of them
// reallocates instead of writing over its neighbour. A nil list stays nil.
func cloneClient(c *core.Client) *core.Client {
	cp := *c
	n1 := len(c.RedirectURIs)
	n2 := n1 + len(c.GrantTypes)
	n3 := n2 + len(c.Scopes)
	n4 := n3 + len(c.PostLogoutRedirectURIs)
	all := make([]string, 0, n4)
	all = append(append(append(append(all, c.RedirectURIs...), c.GrantTypes...), c.Scopes...), c.PostLogoutRedirectURIs...)
	cp.RedirectURIs = sub(c.RedirectURIs, all[:n1:n1])
	cp.GrantTypes = sub(c.GrantTypes, all[n1:n2:n2])
	cp.Scopes = sub(c.Scopes, all[n2:n3:n3])
	cp.PostLogoutRedirectURIs = sub(c.PostLogoutRedirectURIs, all[n3:n4:n4])
	return &cp
}

// sub returns cp, or nil if the list it copies was nil.
func sub(orig, cp []string) []string {
	if orig == nil {
		return nil
	}
	return cp
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

// CreateGrant implements core.Storage. A grant whose code signature is
// already stored (whatever its state, until the sweep drops it) is not
// stored: it returns core.ErrExists.
func (s *Store) CreateGrant(ctx context.Context, g *core.Grant) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if uint64(len(g.CodeChallenge)) > math.MaxUint32 {
		return errChallengeTooLong
	}
	rec := newGrantRec(g)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.grants[g.CodeSig]; ok {
		return core.ErrExists
	}
	s.grants[g.CodeSig] = rec
	s.sweepLocked()
	return nil
}

// RedeemCode implements core.Storage.
func (s *Store) RedeemCode(ctx context.Context, sig string, now time.Time, issue func(*core.Grant) (*core.RefreshToken, error)) (*core.Grant, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.grants[sig]
	if !ok {
		return nil, core.ErrNotFound
	}
	if rec.used {
		return rec.grant(sig), core.ErrCodeUsed
	}
	if !now.Before(rec.expires) {
		return nil, core.ErrNotFound
	}
	// Under the lock, marking used and storing the refresh token are one
	// step: no other redemption can interleave. issue sees the grant as it
	// was before this redemption.
	before := rec.grant(sig)
	rec.used, rec.usedAt = true, now
	s.grants[sig] = rec
	rt, err := issue(before)
	if err != nil {
		return nil, err
	}
	if rt != nil {
		s.refresh[rt.Sig] = newRefreshRec(rt)
	}
	s.sweepLocked()
	return rec.grant(sig), nil
}

// RotateRefreshToken implements core.Storage.
func (s *Store) RotateRefreshToken(ctx context.Context, sig string, now time.Time, issue func(*core.RefreshToken) (*core.RefreshToken, error)) (*core.RefreshToken, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.refresh[sig]
	if !ok || !now.Before(old.expires) {
		return nil, core.ErrNotFound
	}
	cp := old.token(sig)
	if _, revoked := s.revoked[old.familyID]; old.rotated || revoked {
		return cp, core.ErrTokenRotated
	}
	nt, err := issue(old.token(sig))
	if err != nil {
		return nil, err
	}
	old.rotated, old.rotatedAt = true, now
	s.refresh[sig] = old
	// Stored after the old one is marked, so that a new token with the
	// same signature replaces it rather than the other way round.
	if nt != nil {
		s.refresh[nt.Sig] = newRefreshRec(nt)
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
	rec, ok := s.refresh[sig]
	s.mu.RUnlock()
	if !ok {
		return nil, core.ErrNotFound
	}
	return rec.token(sig), nil
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

// ---- user grants (core.UserGrantStore) ----------------------------------------
//
// The store keeps no index by user: the three methods scan the codes and
// refresh tokens under the lock. They serve rare requests (a password
// change, a "connected apps" page) and the store is meant for small
// deployments; an index would cost memory and upkeep on every write.

// codeRevokedAt is the expiry given to a code whose user was revoked: any
// time in the past will do.
var codeRevokedAt = time.Unix(1, 0)

// RevokeUserGrants implements core.UserGrantStore: every family of the
// user's codes and refresh tokens (of clientID only, unless it is "") is
// revoked as RevokeFamily does, in one step under the lock. It returns each
// family once, including families revoked before (their record is kept
// until keepUntil if that is later), so that repeated and concurrent calls
// agree. The user's unredeemed codes are expired (and kept as long as
// before). An empty userID is refused: the tokens of grants without a user
// (client credentials) are never revoked by it.
func (s *Store) RevokeUserGrants(ctx context.Context, userID, clientID string, keepUntil time.Time) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if userID == "" {
		return nil, errors.New("memstore: RevokeUserGrants needs a user id")
	}
	mine := func(h unique.Handle[shared]) bool {
		sh := h.Value()
		return sh.userID == userID && (clientID == "" || sh.clientID == clientID)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := map[string]struct{}{}
	var fams []string
	add := func(f string) {
		if _, dup := seen[f]; !dup {
			seen[f] = struct{}{}
			fams = append(fams, f)
		}
	}
	for sig, g := range s.grants {
		if mine(g.shared) {
			add(g.id)
			if !g.used {
				// Expired, not dropped: the record is kept as long as
				// before, so the family is still found.
				keep := g.keep()
				g.expires = codeRevokedAt
				g.keepExtra = keep.Sub(g.expires)
				s.grants[sig] = g
			}
		}
	}
	for _, rt := range s.refresh {
		if mine(rt.shared) {
			add(rt.familyID)
		}
	}
	for _, f := range fams {
		if t, ok := s.revoked[f]; !ok || keepUntil.After(t) {
			s.revoked[f] = keepUntil
		}
	}
	return fams, nil
}

// UserClients implements core.UserGrantStore: the clients the user gave a
// consent to, or holds a code (until max(ExpiresAt, KeepUntil)) or an
// unexpired refresh token of a family that is not revoked, ordered by
// client ID.
func (s *Store) UserClients(ctx context.Context, userID string, now time.Time) ([]core.UserClient, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	byClient := map[string]*core.UserClient{}
	entry := func(id string) *core.UserClient {
		uc := byClient[id]
		if uc == nil {
			uc = &core.UserClient{ClientID: id}
			byClient[id] = uc
		}
		return uc
	}
	s.mu.RLock()
	for k, sc := range s.consents {
		if k[0] == userID {
			entry(k[1]).ConsentScope = sc
		}
	}
	live := func(h unique.Handle[shared], family string, until time.Time) {
		if sh := h.Value(); sh.userID == userID && now.Before(until) {
			if _, revoked := s.revoked[family]; !revoked {
				entry(sh.clientID).Active = true
			}
		}
	}
	for _, g := range s.grants {
		live(g.shared, g.id, g.keep())
	}
	for _, rt := range s.refresh {
		live(rt.shared, rt.familyID, rt.expires)
	}
	s.mu.RUnlock()
	out := make([]core.UserClient, 0, len(byClient))
	for _, uc := range byClient {
		out = append(out, *uc)
	}
	slices.SortFunc(out, func(a, b core.UserClient) int { return cmp.Compare(a.ClientID, b.ClientID) })
	return out, nil
}

// DeleteConsent implements core.UserGrantStore.
func (s *Store) DeleteConsent(ctx context.Context, userID, clientID string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	delete(s.consents, [2]string{userID, clientID})
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

// PendingCodes reports how many codes the store holds that were never
// redeemed (to observe in tests that no code was issued: the records of
// used login and consent forms are born used and not counted).
func (s *Store) PendingCodes() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	n := 0
	for _, g := range s.grants {
		if !g.used {
			n++
		}
	}
	return n
}

// Sweep drops everything expired now (login sessions and replay cache
// records included), whatever the sweep interval.
func (s *Store) Sweep() {
	s.mu.Lock()
	s.nextSweep = time.Time{}
	s.sweepLocked()
	s.mu.Unlock()
}

// sweepLocked drops expired state at most once per SweepEvery. A used code
// is kept until it expires, so that a replay is still recognised as one
// (and revokes) for the code's whole lifetime, and longer if its
// Grant.KeepUntil says so (user-wide revocation finds the family through
// it); a rotated refresh token until its own expiry, for the same reason.
func (s *Store) sweepLocked() {
	now := s.now()
	if now.Before(s.nextSweep) {
		return
	}
	s.nextSweep = now.Add(s.SweepEvery)
	for k, g := range s.grants {
		if !now.Before(g.keep()) {
			delete(s.grants, k)
		}
	}
	for k, rt := range s.refresh {
		if !now.Before(rt.expires) {
			delete(s.refresh, k)
		}
	}
	for k, t := range s.revoked {
		if !now.Before(t) {
			delete(s.revoked, k)
		}
	}
	s.sweepSessionsLocked(now)
	s.sweepReplayLocked(now)
	s.sweepDevicesLocked(now)
}
