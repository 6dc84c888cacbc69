package keyfile

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/oauth2kit/oauth2kit/core"
)

// The states of a signing key in the file. The file records intent; the
// times decide: a "next" key signs from its NotBefore, and a key is
// dropped from the JWKS after its RetireAfter, so instances that read the
// same file at the same time agree without talking to each other.
const (
	StateNext    = "next"
	StateCurrent = "current"
	StateRetired = "retired"
)

// DefaultSigningAlgs are the algorithms EnsureSigningKeys gives a file
// keys for: RS256, which OpenID Connect makes mandatory, and ES256 and
// EdDSA, some 30 and 40 times cheaper to sign with.
var DefaultSigningAlgs = []string{core.AlgRS256, core.AlgES256, core.AlgEdDSA}

// NewSigningKey generates a private key for alg (RSA-2048 for RS256 and
// PS256, P-256 for ES256, Ed25519 for EdDSA), in state current, with its
// RFC 7638 thumbprint as kid.
func NewSigningKey(alg string, now time.Time) (SigningKey, error) {
	var priv crypto.Signer
	var err error
	switch alg {
	case core.AlgRS256, core.AlgPS256:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	case core.AlgES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case core.AlgEdDSA:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		return SigningKey{}, fmt.Errorf("keyfile: unsupported signing algorithm %q", alg)
	}
	if err != nil {
		return SigningKey{}, fmt.Errorf("keyfile: %w", err)
	}
	jwk := jose.JSONWebKey{Key: priv, Algorithm: alg, Use: "sig"}
	pub := jwk.Public()
	tp, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		return SigningKey{}, fmt.Errorf("keyfile: %w", err)
	}
	jwk.KeyID = base64.RawURLEncoding.EncodeToString(tp)
	raw, err := jwk.MarshalJSON()
	if err != nil {
		return SigningKey{}, fmt.Errorf("keyfile: %w", err)
	}
	return SigningKey{KID: jwk.KeyID, Alg: alg, State: StateCurrent, Created: ceilSecond(now), JWK: raw}, nil
}

// EnsureSigningKeys gives the file a current key for each of
// DefaultSigningAlgs it has no key for, and reports whether it added any.
func (f *File) EnsureSigningKeys(now time.Time) (bool, error) {
	n := len(f.SigningKeys)
	for _, alg := range DefaultSigningAlgs {
		if slices.ContainsFunc(f.SigningKeys[:n], func(k SigningKey) bool { return k.Alg == alg }) {
			continue
		}
		k, err := NewSigningKey(alg, now)
		if err != nil {
			return false, err
		}
		f.SigningKeys = append(f.SigningKeys, k)
	}
	return len(f.SigningKeys) > n, nil
}

// RotateSigningKeys starts a rotation of every algorithm in the file: a
// next key per algorithm, published at once and signing from
// now+publishAhead; the key it replaces retires then and stays published
// for keepFor more (the longest lifetime of a token it signs). Retired
// keys past their RetireAfter are dropped. publishAhead should exceed the
// JWKS cache lifetime (core.OIDC.PublishAhead, whose sixth the JWKS
// max-age is) plus the instances' reload interval.
func (f *File) RotateSigningKeys(now time.Time, publishAhead, keepFor time.Duration) error {
	if publishAhead <= 0 || keepFor <= 0 {
		return fmt.Errorf("keyfile: publishAhead and keepFor must be positive")
	}
	f.settle(now)
	from := ceilSecond(now.Add(publishAhead))
	var algs []string
	for _, k := range f.SigningKeys {
		if !slices.Contains(algs, k.Alg) {
			algs = append(algs, k.Alg)
		}
	}
	for _, alg := range algs {
		for i := range f.SigningKeys {
			k := &f.SigningKeys[i]
			if k.Alg != alg {
				continue
			}
			switch k.State {
			case StateCurrent:
				// Signs until the next key does, then stays published for
				// the lifetime of what it signed.
				k.RetireAfter = from.Add(keepFor)
			case StateNext:
				// A rotation still pending: its key never signs.
				k.State, k.RetireAfter = StateRetired, from
			}
		}
		nk, err := NewSigningKey(alg, now)
		if err != nil {
			return err
		}
		nk.State, nk.NotBefore = StateNext, from
		f.SigningKeys = append(f.SigningKeys, nk)
	}
	return nil
}

// settle writes down what time has decided: a next key whose NotBefore
// has come is current, a current key superseded by a later one is
// retired, and a retired key past RetireAfter is gone.
func (f *File) settle(now time.Time) {
	latest := map[string]time.Time{}
	for i := range f.SigningKeys {
		k := &f.SigningKeys[i]
		if k.State == StateNext && !now.Before(k.NotBefore) {
			k.State = StateCurrent
		}
		if k.State == StateCurrent && k.NotBefore.After(latest[k.Alg]) {
			latest[k.Alg] = k.NotBefore
		}
	}
	for i := range f.SigningKeys {
		if k := &f.SigningKeys[i]; k.State == StateCurrent && k.NotBefore.Before(latest[k.Alg]) {
			k.State = StateRetired
		}
	}
	f.SigningKeys = slices.DeleteFunc(f.SigningKeys, func(k SigningKey) bool {
		return k.State == StateRetired && !k.RetireAfter.IsZero() && now.After(k.RetireAfter)
	})
}

// SigningKeysAt returns the signing set as core takes it at now: per
// algorithm, the key that signs (the current one, or a next key whose
// NotBefore has come, which then retires the current one), the keys
// published ahead, and the retired ones still within RetireAfter.
func (f *File) SigningKeysAt(now time.Time) ([]core.SigningKey, error) {
	cp := File{SigningKeys: slices.Clone(f.SigningKeys)}
	cp.settle(now)
	out := make([]core.SigningKey, 0, len(cp.SigningKeys))
	for i, k := range cp.SigningKeys {
		signer, err := k.signer()
		if err != nil {
			return nil, fmt.Errorf("keyfile: signing_keys[%d] (%s): %w", i, k.KID, err)
		}
		ck := core.SigningKey{ID: k.KID, Alg: k.Alg, Signer: signer}
		switch k.State {
		case StateNext:
			ck.State, ck.Since = core.KeyPublished, k.Created
		case StateRetired:
			ck.State = core.KeyRetired
		case StateCurrent:
			ck.State, ck.Since = core.KeySigning, k.NotBefore
		default:
			return nil, fmt.Errorf("keyfile: signing_keys[%d] (%s): %w: unknown state %q", i, k.KID, ErrMalformed, k.State)
		}
		out = append(out, ck)
	}
	return out, nil
}

// ApplySigning sets cfg.OIDC.SigningKeys to the file's signing set at
// cfg.Now (or now). A file without signing keys leaves cfg alone.
func (f *File) ApplySigning(cfg *core.Config) error {
	if len(f.SigningKeys) == 0 {
		return nil
	}
	now := time.Now()
	if cfg.Now != nil {
		now = cfg.Now()
	}
	keys, err := f.SigningKeysAt(now)
	if err != nil {
		return err
	}
	cfg.OIDC.SigningKeys = keys
	return nil
}

// signer parses the key's private JWK.
func (k SigningKey) signer() (crypto.Signer, error) {
	var jwk jose.JSONWebKey
	if err := json.Unmarshal(k.JWK, &jwk); err != nil {
		return nil, fmt.Errorf("%w: jwk: %v", ErrMalformed, err)
	}
	s, ok := jwk.Key.(crypto.Signer)
	if !ok || jwk.IsPublic() {
		return nil, fmt.Errorf("%w: jwk is not a private signing key", ErrMalformed)
	}
	return s, nil
}
