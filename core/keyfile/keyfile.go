// Package keyfile keeps an oauth2kit server's key material in one JSON
// file: it creates the file on first start (two instances starting at once
// end up with the same keys), loads it into a core.Config, rotates the
// symmetric key generation and prunes generations that no token can still
// need. Several instances given the same file behave as one server.
//
//	kf, err := keyfile.LoadOrCreate("/var/lib/myapp/oauth2kit.keys")
//	if err != nil { … }
//	cfg := core.Config{Issuer: "https://auth.example.com"}
//	kf.Apply(&cfg)
//	srv, err := core.New(cfg, store, auth)
//
// # File format
//
// A JSON object, written with two-space indentation and mode 0600:
//
//	{
//	  "version": 1,
//	  "current": {
//	    "id": "3f9a0c1e",
//	    "crypt_key": "<base64, 32 bytes>",
//	    "sign_key": "<base64, 32 bytes>",
//	    "created": "2026-03-01T10:00:00Z"
//	  },
//	  "previous": [
//	    {
//	      "id": "9b2d4e70",
//	      "crypt_key": "…",
//	      "sign_key": "…",
//	      "created": "2026-01-01T10:00:00Z",
//	      "retire_after": "2026-03-31T10:00:01Z"
//	    }
//	  ],
//	  "signing_keys": [
//	    {"kid": "…", "alg": "ES256", "state": "current", "jwk": {…}}
//	  ]
//	}
//
// The members:
//
//   - version: the format version, [FormatVersion]. A file without it is
//     the examples' format from before this package (the same members
//     without created and retire_after) and loads unchanged. A file with a
//     higher version is refused rather than half understood, since
//     rewriting it could drop what this version does not know.
//   - current: the generation that mints (core.Config.Keys: ID, CryptKey
//     and SignKey). crypt_key and sign_key are standard base64 with
//     padding, at least 32 bytes each; id names the generation inside
//     tokens (1-32 characters of [A-Za-z0-9_-]); created is informational.
//   - previous: older generations, newest first, still accepted for
//     verification (core.Config.VerifyKeys). retire_after is when the
//     longest-lived token the generation could have minted has expired:
//     from then on [File.Apply] leaves it out and [Prune] deletes it. A
//     generation without retire_after (an old file's) is kept until a
//     [Rotate] gives it one.
//   - signing_keys: the asymmetric (JOSE) signing keys of the OpenID
//     Provider (id_tokens, JWT access tokens, the JWKS); see [SigningKey],
//     [File.EnsureSigningKeys], [File.RotateSigningKeys] and
//     [File.ApplySigning]. Their states follow the clock (a next key signs
//     from its not_before), so instances that reload the file agree.
//
// Readers from before versioning ignore the new members, so an instance
// not yet upgraded still reads a file written by this package.
//
// # Concurrency and durability
//
// LoadOrCreate writes the new file under a temporary name in the same
// directory, flushes it, and links it to the final name with link(2),
// which fails when the name exists: the first instance wins, the others
// read the winner's file, and no reader ever sees a half-written file.
// Update, Rotate and Prune take an exclusive lock on a sidecar file
// (path + ".lock", flock(2) on Linux and the BSDs, released by the kernel
// when the process dies; elsewhere a lock file created with O_EXCL), read
// the file afresh under it, and replace it atomically (temporary file,
// fsync, rename, fsync of the directory), so two concurrent rotations both
// land and readers see the old file or the new one. The sidecar is never
// deleted where flock is used: deleting it would let two processes lock
// two different files. Linux is the target: there flock also holds on NFS.
// The O_EXCL fallback (Windows, Solaris, AIX, …) deletes its lock file on
// unlock; one left by a crashed process makes later updates fail after 30
// seconds with an error naming it. On a file system without hard links
// LoadOrCreate makes its decision under the same lock instead.
//
// # Key material
//
// Keys come from crypto/rand. [File], [Generation] and [SigningKey] print
// and log (fmt, log/slog) without their key material; only the file and
// [File.MarshalJSON] carry it. [Load] refuses a file that other users may
// read or write (see [ErrPermissions]).
//
// Instances read the file when they start: after a rotation, restart them
// all promptly, since an instance still on the old file refuses tokens
// minted with the new generation (core has no live key reload yet).
package keyfile

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/oauth2kit/oauth2kit/core"
)

const (
	// FormatVersion is the version this package writes and the highest it
	// reads.
	FormatVersion = 1
	// MaxFileSize bounds what Load reads: a key file is a few kilobytes,
	// and a huge one is a mistake or an attack, not keys.
	MaxFileSize = 1 << 20
	// DefaultKeepFor is how long Rotate keeps the replaced generation when
	// given 0: core's default refresh token lifetime, the longest-lived
	// token a generation mints with core's defaults. See KeepFor.
	DefaultKeepFor = 30 * 24 * time.Hour

	keyBytes = 32 // of each new key; also the minimum core accepts
	idBytes  = 4  // random bytes of a new generation id (8 hex digits, as the examples' ids)
)

var (
	// ErrMalformed is wrapped by every error about the content of a key
	// file: not JSON, an unknown version, a missing or short key, a bad or
	// duplicate id.
	ErrMalformed = errors.New("malformed key file")
	// ErrPermissions is wrapped when a key file on a Unix system grants
	// any access to other users (mode & 0o007), which would let every
	// local account mint tokens. Group access is accepted, so a key file
	// can be shared with a service group (mode 0640 or 0440, as with a
	// Kubernetes secret and fsGroup). Fix with chmod 600 (or 640).
	ErrPermissions = errors.New("key file is accessible to other users")
)

// File is a key file's content.
type File struct {
	// Current mints; Previous are still accepted, newest first.
	Current  Generation
	Previous []Generation
	// SigningKeys are the OpenID Provider's asymmetric signing keys.
	SigningKeys []SigningKey

	extra map[string]json.RawMessage // members this version does not know, kept on rewrite
}

// Generation is one generation of symmetric key material, core.Keys plus
// the times that drive rotation and pruning.
type Generation struct {
	// ID names the generation inside tokens; never reused for other key
	// material. Empty (possible only in files not written here): core
	// derives one from the keys.
	ID string
	// CryptKey and SignKey are core.Keys' roots, at least 32 bytes each.
	CryptKey []byte
	SignKey  []byte
	// Created is when the generation was made (zero in old files).
	Created time.Time
	// RetireAfter is, for a previous generation, when every token it could
	// have minted has expired; zero: not known, kept.
	RetireAfter time.Time

	extra map[string]json.RawMessage
}

// SigningKey is an asymmetric signing key of the OpenID Provider
// (id_tokens, JWT access tokens, JWKS). Entries are parsed when used
// (SigningKeysAt), and rewritten unchanged, unknown members included.
type SigningKey struct {
	// KID is the JWK "kid", published in the JWKS and put in JWS headers.
	KID string
	// Alg is the JWS algorithm: RS256, ES256, EdDSA, …
	Alg string
	// State is "next" (published, not yet signing: publish-ahead),
	// "current" (signs), or "retired" (published for verification until
	// RetireAfter).
	State string
	// Created, NotBefore (signs from then) and RetireAfter (dropped from
	// the JWKS then) drive the key's life; zero when unset.
	Created     time.Time
	NotBefore   time.Time
	RetireAfter time.Time
	// JWK is the private key as a JWK (RFC 7517), private members
	// included. Never printed or logged.
	JWK json.RawMessage

	extra map[string]json.RawMessage
}

// New returns a key file with one fresh generation.
func New() (*File, error) {
	g, err := NewGeneration()
	if err != nil {
		return nil, err
	}
	return &File{Current: g}, nil
}

// NewGeneration returns fresh key material from crypto/rand, created now.
func NewGeneration() (Generation, error) {
	g := Generation{CryptKey: make([]byte, keyBytes), SignKey: make([]byte, keyBytes), Created: ceilSecond(time.Now())}
	id := make([]byte, idBytes)
	for _, b := range [][]byte{g.CryptKey, g.SignKey, id} {
		if _, err := rand.Read(b); err != nil {
			return Generation{}, fmt.Errorf("keyfile: %w", err)
		}
	}
	g.ID = hex.EncodeToString(id)
	return g, nil
}

// KeepFor is how long a replaced generation must stay accepted under cfg:
// the longest lifetime of anything it mints (refresh tokens, with core's
// defaults). Pass a running server's srv.Config(), whose zero lifetimes
// are already the defaults; for a zero Lifetimes.RefreshToken KeepFor
// assumes DefaultKeepFor.
func KeepFor(cfg core.Config) time.Duration {
	d := cfg.Lifetimes.RefreshToken
	if d <= 0 {
		d = DefaultKeepFor
	}
	return max(d, cfg.Lifetimes.AccessToken, cfg.Lifetimes.Code, cfg.Lifetimes.Login)
}

// Rotate makes a fresh generation current and keeps the replaced one for
// verification until now+keepFor (0: DefaultKeepFor). It should be at
// least KeepFor of the servers' configuration, plus the time the
// instances take to restart on the new file (until then they still mint
// with the replaced generation). Previous generations without a retire
// time get the same one: they stopped minting before now.
func (f *File) Rotate(now time.Time, keepFor time.Duration) error {
	if keepFor < 0 {
		return fmt.Errorf("keyfile: negative keepFor %v", keepFor)
	}
	if keepFor == 0 {
		keepFor = DefaultKeepFor
	}
	var g Generation
	for {
		var err error
		if g, err = NewGeneration(); err != nil {
			return err
		}
		// Ids are 32 random bits: a clash within one file is unlikely but
		// would make the file unusable, so draw again.
		if !f.hasID(g.ID) {
			break
		}
	}
	retire := ceilSecond(now.Add(keepFor))
	old := f.Current
	old.RetireAfter = retire
	prev := make([]Generation, 0, len(f.Previous)+1)
	prev = append(prev, old)
	for _, p := range f.Previous {
		if p.RetireAfter.IsZero() {
			p.RetireAfter = retire
		}
		prev = append(prev, p)
	}
	f.Current, f.Previous = g, prev
	return nil
}

// Prune deletes the previous generations whose retire time has passed at
// now and returns how many it deleted.
func (f *File) Prune(now time.Time) int {
	n := len(f.Previous)
	f.Previous = slices.DeleteFunc(f.Previous, func(g Generation) bool { return g.retired(now) })
	return n - len(f.Previous)
}

func (g Generation) retired(now time.Time) bool {
	return !g.RetireAfter.IsZero() && now.After(g.RetireAfter)
}

func (f *File) hasID(id string) bool {
	if f.Current.ID == id {
		return true
	}
	return slices.ContainsFunc(f.Previous, func(g Generation) bool { return g.ID == id })
}

// Keys returns the generation that mints and those still accepted at now
// (retired ones left out), as core takes them. The key bytes are copies.
func (f *File) Keys(now time.Time) (current core.Keys, verify []core.Keys) {
	current = f.Current.Keys()
	for _, g := range f.Previous {
		if !g.retired(now) {
			verify = append(verify, g.Keys())
		}
	}
	return current, verify
}

// Apply sets cfg's Keys (ID, CryptKey and SignKey) to the current generation
// and replaces cfg.VerifyKeys with the previous ones not retired (by
// cfg.Now when set), so applying twice is harmless.
func (f *File) Apply(cfg *core.Config) {
	now := time.Now()
	if cfg.Now != nil {
		now = cfg.Now()
	}
	cur, verify := f.Keys(now)
	cfg.Keys.ID, cfg.Keys.CryptKey, cfg.Keys.SignKey = cur.ID, cur.CryptKey, cur.SignKey
	cfg.VerifyKeys = verify
}

// Keys returns g as core takes it; the key bytes are copies.
func (g Generation) Keys() core.Keys {
	return core.Keys{ID: g.ID, CryptKey: bytes.Clone(g.CryptKey), SignKey: bytes.Clone(g.SignKey)}
}

// ---- printing without key material ----

// String names the generations without their key material.
func (f File) String() string {
	ids := make([]string, len(f.Previous))
	for i, g := range f.Previous {
		ids[i] = g.ID
	}
	return fmt.Sprintf("keyfile.File{Current:%s Previous:[%s] SigningKeys:%d}", f.Current.ID, strings.Join(ids, " "), len(f.SigningKeys))
}

// GoString keeps %#v from printing the key bytes.
func (f File) GoString() string { return f.String() }

// LogValue keeps key material out of structured logs.
func (f File) LogValue() slog.Value { return slog.StringValue(f.String()) }

// String describes g without its key material.
func (g Generation) String() string {
	s := "keyfile.Generation{ID:" + g.ID + " CryptKey:[redacted] SignKey:[redacted]"
	if !g.Created.IsZero() {
		s += " Created:" + g.Created.Format(time.RFC3339)
	}
	if !g.RetireAfter.IsZero() {
		s += " RetireAfter:" + g.RetireAfter.Format(time.RFC3339)
	}
	return s + "}"
}

// GoString keeps %#v from printing the key bytes.
func (g Generation) GoString() string { return g.String() }

// LogValue keeps key material out of structured logs.
func (g Generation) LogValue() slog.Value { return slog.StringValue(g.String()) }

// String describes k without its private key.
func (k SigningKey) String() string {
	return "keyfile.SigningKey{KID:" + k.KID + " Alg:" + k.Alg + " State:" + k.State + " JWK:[redacted]}"
}

// GoString keeps %#v from printing the private key.
func (k SigningKey) GoString() string { return k.String() }

// LogValue keeps the private key out of structured logs.
func (k SigningKey) LogValue() slog.Value { return slog.StringValue(k.String()) }
