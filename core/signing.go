package core

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/oauth2kit/oauth2kit/core/internal/jose"
)

// The JWS algorithms the server signs id_tokens and JWT access tokens with.
const (
	AlgRS256 = jose.RS256
	AlgPS256 = jose.PS256
	AlgES256 = jose.ES256
	AlgEdDSA = jose.EdDSA
)

// KeyState is where a signing key is in its rotation.
type KeyState uint8

const (
	// KeySigning keys sign (the last one listed per algorithm) and are
	// published. The zero value, so that a single key given as
	// SigningKey{Alg, Signer} just works.
	KeySigning KeyState = iota
	// KeyPublished keys are in the JWKS but do not sign yet: relying
	// parties that cache the JWKS learn them before the first token
	// signed with them arrives.
	KeyPublished
	// KeyRetired keys no longer sign but stay in the JWKS until every
	// token they signed has expired.
	KeyRetired
)

func (k KeyState) String() string {
	switch k {
	case KeySigning:
		return "signing"
	case KeyPublished:
		return "published"
	case KeyRetired:
		return "retired"
	}
	return fmt.Sprintf("KeyState(%d)", uint8(k))
}

// SigningKey is one asymmetric key of the server's signing set
// (Config.OIDC.SigningKeys).
type SigningKey struct {
	// ID is the key's kid. Empty means its RFC 7638 thumbprint.
	ID string
	// Alg is AlgRS256, AlgPS256, AlgES256 or AlgEdDSA; the Signer's key must
	// suit it (RSA of at least 2048 bits, P-256, Ed25519).
	Alg string
	// Signer holds the private key, or reaches it: a KMS or HSM key
	// implements crypto.Signer without the key entering the process.
	Signer crypto.Signer
	State  KeyState
	// Since is when the key entered its State (RotateKeys sets it): a
	// published key signs only once it has been published for
	// OIDC.PublishAhead, and a retired one is dropped once every token it
	// signed has expired. Zero means long ago for a published key (it
	// signs at the next rotation); a retired key whose Since is zero is
	// kept for a full token lifetime from the next rotation.
	Since time.Time
}

// keySet is the effective signing set: immutable once built, swapped as a
// whole (Server.SetSigningKeys), so a request sees one consistent set.
type keySet struct {
	keys    []SigningKey
	signers map[string]*jose.Signer // the signing key per algorithm
	byKID   map[string]*jose.Signer // every published key
	algs    []string                // algorithms with a signing key, in jose.Algorithms order
	verify  []string                // algorithms of every published key: what verification allows
	jwks    []byte
}

func newKeySet(in []SigningKey) (*keySet, error) {
	ks := &keySet{keys: slices.Clone(in), signers: map[string]*jose.Signer{}, byKID: map[string]*jose.Signer{}}
	pubs := make([]jose.PublicKey, 0, len(in))
	for i := range ks.keys {
		k := &ks.keys[i]
		if k.Signer == nil {
			return nil, fmt.Errorf("oauth2kit: Config.OIDC.SigningKeys[%d] has no Signer", i)
		}
		if k.State > KeyRetired {
			return nil, fmt.Errorf("oauth2kit: Config.OIDC.SigningKeys[%d] has an unknown State", i)
		}
		if k.ID == "" {
			tp, err := jose.Thumbprint(k.Signer.Public())
			if err != nil {
				return nil, fmt.Errorf("oauth2kit: Config.OIDC.SigningKeys[%d]: %v", i, err)
			}
			k.ID = tp
		}
		if len(k.ID) > 128 || !printableASCII(k.ID) {
			return nil, fmt.Errorf("oauth2kit: Config.OIDC.SigningKeys[%d].ID must be at most 128 printable ASCII characters", i)
		}
		if ks.byKID[k.ID] != nil {
			return nil, fmt.Errorf("oauth2kit: Config.OIDC.SigningKeys: kid %q is used twice", k.ID)
		}
		sg, err := jose.NewSigner(k.Signer, k.Alg, k.ID)
		if err != nil {
			return nil, fmt.Errorf("oauth2kit: Config.OIDC.SigningKeys[%d] (%s): %v", i, k.ID, err)
		}
		ks.byKID[k.ID] = sg
		if k.State == KeySigning {
			ks.signers[k.Alg] = sg
		}
		pubs = append(pubs, jose.PublicKey{KID: k.ID, Alg: k.Alg, Key: sg.Public()})
	}
	if len(ks.signers) == 0 {
		return nil, errors.New("oauth2kit: Config.OIDC.SigningKeys has no key in state KeySigning")
	}
	for _, a := range jose.Algorithms {
		if ks.signers[a] != nil {
			ks.algs = append(ks.algs, a)
		}
		// A retired key's tokens verify while it is published, even when
		// its algorithm no longer signs.
		if slices.ContainsFunc(ks.keys, func(k SigningKey) bool { return k.Alg == a }) {
			ks.verify = append(ks.verify, a)
		}
	}
	var err error
	if ks.jwks, err = jose.JWKS(pubs); err != nil {
		return nil, fmt.Errorf("oauth2kit: Config.OIDC.SigningKeys: %v", err)
	}
	return ks, nil
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return s != ""
}

// signer returns the key that signs for alg ("" means RS256, or the only
// algorithm configured when RS256 is not).
func (ks *keySet) signer(alg string) *jose.Signer {
	if alg == "" {
		if sg := ks.signers[AlgRS256]; sg != nil {
			return sg
		}
		return ks.signers[ks.algs[0]]
	}
	return ks.signers[alg]
}

// verifyKey is the jose.KeyFunc over the published keys: a token this
// server signed verifies while its key is published, under the algorithm
// the key was made for.
func (ks *keySet) verifyKey(kid, alg string) (crypto.PublicKey, error) {
	sg := ks.byKID[kid]
	if sg == nil {
		return nil, errors.New("unknown kid")
	}
	if sg.Alg() != alg {
		return nil, errors.New("the key is not for this algorithm")
	}
	return sg.Public(), nil
}

// ErrRotateTooSoon is returned by RotateKeys when the key that would start
// signing has not been published for OIDC.PublishAhead yet: relying
// parties may still hold a JWKS without it.
var ErrRotateTooSoon = errors.New("oauth2kit: the next signing key has not been published long enough")

// SigningKeys returns the signing set in effect (a copy), with defaulted
// kids filled in: what an operator persists after RotateKeys.
func (s *Server) SigningKeys() []SigningKey {
	ks := s.signing.Load()
	if ks == nil {
		return nil
	}
	return slices.Clone(ks.keys)
}

// SetSigningKeys replaces the signing set (the keys validated as at New):
// how an instance picks up a set another instance rotated, from wherever
// the deployment shares it. The server must have been built with OIDC
// signing keys.
func (s *Server) SetSigningKeys(keys []SigningKey) error {
	s.rotateMu.Lock()
	defer s.rotateMu.Unlock()
	if s.signing.Load() == nil {
		return errors.New("oauth2kit: the server has no OIDC signing keys")
	}
	ks, err := s.newSet(keys)
	if err != nil {
		return err
	}
	s.install(ks)
	s.emit(context.Background(), Event{Kind: EventKeyRotated})
	return nil
}

// newSet validates keys as the server's set: newKeySet's rules, and a
// signing key for the JWT access tokens' algorithm.
func (s *Server) newSet(keys []SigningKey) (*keySet, error) {
	ks, err := newKeySet(keys)
	if err != nil {
		return nil, err
	}
	if a := s.cfg.OIDC.AccessTokenAlg; a != "" && ks.signers[a] == nil {
		return nil, fmt.Errorf("oauth2kit: Config.OIDC.AccessTokenAlg %q has no signing key in the set", a)
	}
	return ks, nil
}

// install makes ks the signing set, and the metadata that lists its
// algorithms.
func (s *Server) install(ks *keySet) {
	s.signing.Store(ks)
	md := s.buildMetadata()
	s.metadata.Store(&md)
}

// RotateKeys advances the rotation of next.Alg by one step and installs
// the result on this server: the key of that algorithm published earlier
// starts signing, the one that signed retires (published until every token
// it signed has expired, then dropped by a later RotateKeys), and next is
// published, to sign at the following rotation. The first rotation of an
// algorithm only publishes next. Rotating sooner than OIDC.PublishAhead
// after the previous one returns ErrRotateTooSoon and changes nothing.
//
// It returns the new set for the operator to persist and share
// (SetSigningKeys on the other instances).
func (s *Server) RotateKeys(next SigningKey) ([]SigningKey, error) {
	s.rotateMu.Lock()
	defer s.rotateMu.Unlock()
	cur := s.signing.Load()
	if cur == nil {
		return nil, errors.New("oauth2kit: the server has no OIDC signing keys")
	}
	now := s.now()
	next.State, next.Since = KeyPublished, now
	out := make([]SigningKey, 0, len(cur.keys)+1)
	promote := -1
	for i, k := range cur.keys {
		if k.Alg == next.Alg && k.State == KeyPublished {
			if now.Sub(k.Since) < s.cfg.OIDC.PublishAhead {
				return nil, fmt.Errorf("%w: %s signs from %s", ErrRotateTooSoon, k.ID, k.Since.Add(s.cfg.OIDC.PublishAhead).UTC().Format(time.RFC3339))
			}
			promote = i
		}
	}
	for i, k := range cur.keys {
		switch {
		case k.State == KeyRetired && !k.Since.IsZero() && now.Sub(k.Since) >= s.maxSignedLifetime():
			continue // nothing it signed is still valid
		case k.State == KeyRetired && k.Since.IsZero():
			k.Since = now // retired at an unknown time: keep it a full term from now
		case k.Alg != next.Alg:
		case i == promote:
			k.State, k.Since = KeySigning, now
		case k.State == KeySigning && promote >= 0:
			k.State, k.Since = KeyRetired, now
		}
		out = append(out, k)
	}
	out = append(out, next)
	ks, err := s.newSet(out)
	if err != nil {
		return nil, err
	}
	s.install(ks)
	s.log.Info("oauth2kit: signing keys rotated", "alg", next.Alg, "published", ks.keys[len(ks.keys)-1].ID)
	s.emit(context.Background(), Event{Kind: EventKeyRotated, KeyID: ks.keys[len(ks.keys)-1].ID})
	return slices.Clone(ks.keys), nil
}

// maxSignedLifetime is the longest a token signed by the set stays valid.
func (s *Server) maxSignedLifetime() time.Duration {
	return max(s.cfg.Lifetimes.IDToken, s.cfg.Lifetimes.AccessToken)
}

// String describes the key without its Signer: %v of a SigningKey prints
// no private key material.
func (k SigningKey) String() string {
	return fmt.Sprintf("core.SigningKey{ID:%q Alg:%s State:%s Since:%s Signer:[redacted]}", k.ID, k.Alg, k.State, k.Since.UTC().Format(time.RFC3339))
}

// GoString is String.
func (k SigningKey) GoString() string { return k.String() }
