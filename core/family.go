package core

import (
	"context"
	"encoding/base64"
	"slices"
	"time"
)

// Families of tokens minted without an authorization code: token
// exchange (exchange.go) and the JWT bearer grant (jwtbearer.go). Each
// issuance is a family of its own, so that revoking one token revokes
// that issuance and nothing else. For a token with a user the family is
// recorded as a grant born used (never redeemable: no code exists for its
// signature), owned by the client and the user and kept while the token
// lives: user-wide revocation (UserGrantStore) finds a family through the
// grants and refresh tokens a store keeps, and would find none otherwise.
//
// An exchanged token also carries the families it descends from
// (TokenInfo.ParentGrantIDs), all of them up to MaxExchangeDepth: every
// check that consults revocation refuses it when any is revoked. Carrying
// only the root and the direct parent would not do: revoking a middle
// link three levels up would miss the token.

// MaxExchangeDepth bounds how many families an exchanged token descends
// from (TokenInfo.ParentGrantIDs): a token that many exchanges away from
// its grant is exchanged no further. It keeps tokens within maxTokenLen
// and a revocation check within MaxExchangeDepth+1 lookups. It equals
// the delegation chain's bound, so no chain of actors runs into it first.
const MaxExchangeDepth = maxActDepth

// familyMargin keeps a born-used grant a little past its token's expiry,
// so that an instance whose clock runs behind, still accepting the token,
// does not find the record dropped by a store on a clock ahead.
const familyMargin = time.Minute

// startFamily returns a new family id for a token of client clientID minted
// at now and valid until exp. For a token with a user it first records the
// family as a grant born used (scope for the record); a storage failure
// issues no token. Tokens without a user (client credentials) record
// nothing: no user-wide revocation can reach them, and revoking the token
// revokes its family by id.
func (s *Server) startFamily(ctx context.Context, clientID, userID, scope string, now, exp time.Time) (string, *oauthError) {
	id, err := newID()
	if err != nil {
		return "", oerr(500, ErrServerError, "the server could not complete the request")
	}
	if userID == "" {
		return id, nil
	}
	// A signature no code can have: a MAC under its own label, of an id
	// nobody else chose.
	var buf [32]byte
	sig := base64.RawURLEncoding.EncodeToString(s.keys.primary.mac(buf[:0], 's', "born-used-family", id))
	used := now
	g := &Grant{
		ID: id, CodeSig: sig, ClientID: clientID, UserID: userID, Scope: scope,
		CreatedAt: now, ExpiresAt: now, KeepUntil: exp.Add(familyMargin), UsedAt: &used,
	}
	if err := s.store.CreateGrant(ctx, g); err != nil {
		s.log.ErrorContext(ctx, "oauth2kit: recording a token family failed", "err", err)
		return "", storageError(err)
	}
	return id, nil
}

// lineage is the parent list of a token exchanged from one in family
// parent that itself descends from parents; false when it would exceed
// MaxExchangeDepth.
func lineage(parent string, parents []string) ([]string, bool) {
	if len(parents) >= MaxExchangeDepth {
		return nil, false
	}
	return append([]string{parent}, parents...), true
}

// lineageRevoked reports whether the token's family, or one it descends
// from, is revoked, asking the store exactly (introspection, exchange:
// answers that issue or describe a token, never the cache's). A token
// without parents costs the one lookup it always did.
func (s *Server) lineageRevoked(ctx context.Context, info *TokenInfo) (bool, error) {
	revoked, err := s.store.IsFamilyRevoked(ctx, info.GrantID)
	for _, p := range info.ParentGrantIDs {
		if revoked || err != nil {
			break
		}
		revoked, err = s.store.IsFamilyRevoked(ctx, p)
	}
	return revoked, err
}

// familyLive is the resource check's revocation lookup of one family:
// errTokenRevoked if it is revoked, nil if not (cached as such within
// Config.Caches.Revocation), the storage error otherwise.
func (s *Server) familyLive(ctx context.Context, family string, now time.Time) error {
	if _, fresh := s.revCache.get(family, now); fresh {
		return nil
	}
	revoked, err := s.store.IsFamilyRevoked(ctx, family)
	if err != nil {
		return err
	}
	if revoked {
		return errTokenRevoked
	}
	s.revCache.put(family, struct{}{}, now)
	return nil
}

// writeParents writes ParentGrantIDs into a sealed access token: their
// count, then each.
func writeParents(w *fieldWriter, ps []string) {
	w.num(int64(len(ps)))
	for _, p := range ps {
		w.str(p)
	}
}

// readParents reads what writeParents wrote; nil for anything malformed
// (no parent, more than MaxExchangeDepth, an empty one).
func readParents(r *fieldReader) []string {
	n := r.num()
	if r.bad || n < 1 || n > MaxExchangeDepth {
		return nil
	}
	ps := make([]string, n)
	for i := range ps {
		if ps[i] = r.str(); r.bad || ps[i] == "" {
			return nil
		}
	}
	return ps
}

// validParents checks the pgid claim of an RFC 9068 access token as
// writeParents checks the sealed field.
func validParents(ps []string) bool {
	return len(ps) >= 1 && len(ps) <= MaxExchangeDepth && !slices.Contains(ps, "")
}
