package keyfile

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// The file's JSON form. The member lists name what this version reads;
// members it does not know are kept when the file is rewritten.
type fileJSON struct {
	Version     int          `json:"version"`
	Current     Generation   `json:"current"`
	Previous    []Generation `json:"previous,omitempty"`
	SigningKeys []SigningKey `json:"signing_keys,omitempty"`
}

var fileMembers = []string{"version", "current", "previous", "signing_keys"}

type generationJSON struct {
	ID          string    `json:"id"`
	CryptKey    []byte    `json:"crypt_key"`
	SignKey     []byte    `json:"sign_key"`
	Created     time.Time `json:"created,omitzero"`
	RetireAfter time.Time `json:"retire_after,omitzero"`
}

var generationMembers = []string{"id", "crypt_key", "sign_key", "created", "retire_after"}

type signingKeyJSON struct {
	KID         string          `json:"kid"`
	Alg         string          `json:"alg"`
	State       string          `json:"state"`
	Created     time.Time       `json:"created,omitzero"`
	NotBefore   time.Time       `json:"not_before,omitzero"`
	RetireAfter time.Time       `json:"retire_after,omitzero"`
	JWK         json.RawMessage `json:"jwk,omitempty"`
}

var signingKeyMembers = []string{"kid", "alg", "state", "created", "not_before", "retire_after", "jwk"}

// MarshalJSON encodes the file in the current format, key material
// included: it is what goes to disk. Prefer Load, Update and friends,
// which also write atomically.
func (f File) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal(fileJSON{Version: FormatVersion, Current: f.Current, Previous: f.Previous, SigningKeys: f.SigningKeys})
	if err != nil {
		return nil, err
	}
	return withExtra(b, f.extra)
}

// UnmarshalJSON decodes a file of any supported version; Parse also
// validates the keys.
func (f *File) UnmarshalJSON(data []byte) error {
	var j fileJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return err
	}
	if j.Version < 0 || j.Version > FormatVersion {
		return fmt.Errorf("version %d: this oauth2kit reads versions up to %d; upgrade it", j.Version, FormatVersion)
	}
	extra, err := extraMembers(data, fileMembers)
	if err != nil {
		return err
	}
	*f = File{Current: j.Current, Previous: j.Previous, SigningKeys: j.SigningKeys, extra: extra}
	return nil
}

// MarshalJSON encodes g with its key material.
func (g Generation) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal(generationJSON{ID: g.ID, CryptKey: g.CryptKey, SignKey: g.SignKey, Created: g.Created, RetireAfter: g.RetireAfter})
	if err != nil {
		return nil, err
	}
	return withExtra(b, g.extra)
}

// UnmarshalJSON decodes a generation.
func (g *Generation) UnmarshalJSON(data []byte) error {
	var j generationJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return err
	}
	extra, err := extraMembers(data, generationMembers)
	if err != nil {
		return err
	}
	*g = Generation{ID: j.ID, CryptKey: j.CryptKey, SignKey: j.SignKey, Created: j.Created, RetireAfter: j.RetireAfter, extra: extra}
	return nil
}

// MarshalJSON encodes k with its private key.
func (k SigningKey) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal(signingKeyJSON{KID: k.KID, Alg: k.Alg, State: k.State, Created: k.Created, NotBefore: k.NotBefore, RetireAfter: k.RetireAfter, JWK: k.JWK})
	if err != nil {
		return nil, err
	}
	return withExtra(b, k.extra)
}

// UnmarshalJSON decodes a signing key entry.
func (k *SigningKey) UnmarshalJSON(data []byte) error {
	var j signingKeyJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return err
	}
	extra, err := extraMembers(data, signingKeyMembers)
	if err != nil {
		return err
	}
	*k = SigningKey{KID: j.KID, Alg: j.Alg, State: j.State, Created: j.Created, NotBefore: j.NotBefore, RetireAfter: j.RetireAfter, JWK: j.JWK, extra: extra}
	return nil
}

// extraMembers returns the members of the JSON object data that are not
// in known (matched case-insensitively, as encoding/json matches them to
// fields, so a member decoded into a field is not kept twice).
func extraMembers(data []byte, known []string) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, err
	}
	for name := range m {
		if slices.ContainsFunc(known, func(k string) bool { return strings.EqualFold(k, name) }) {
			delete(m, name)
		}
	}
	if len(m) == 0 {
		return nil, nil
	}
	return m, nil
}

// withExtra appends the members of extra, sorted by name, to the JSON
// object obj.
func withExtra(obj []byte, extra map[string]json.RawMessage) ([]byte, error) {
	if len(extra) == 0 {
		return obj, nil
	}
	names := make([]string, 0, len(extra))
	for name := range extra {
		names = append(names, name)
	}
	slices.Sort(names)
	out := bytes.TrimSuffix(obj, []byte("}"))
	for _, name := range names {
		if len(out) > 1 {
			out = append(out, ',')
		}
		n, err := json.Marshal(name)
		if err != nil {
			return nil, err
		}
		out = append(append(append(out, n...), ':'), extra[name]...)
	}
	return append(out, '}'), nil
}

// Parse decodes and validates a key file's content.
func Parse(data []byte) (*File, error) {
	f, err := parse(data)
	if err != nil {
		return nil, fmt.Errorf("keyfile: %w", err)
	}
	return f, nil
}

// parse is Parse without the package prefix, for errors that name the
// file.
func parse(data []byte) (*File, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		// The examples before this package could leave an empty file when
		// they died between creating and writing it.
		return nil, fmt.Errorf("%w: the file is empty (an interrupted creation?); remove it to generate new keys", ErrMalformed)
	}
	var f File
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if err := f.validate(); err != nil {
		return nil, err
	}
	return &f, nil
}

// validate checks what core.New would refuse, naming the member, and the
// shape the format promises.
func (f *File) validate() error {
	c := f.Current
	if c.ID == "" && len(c.CryptKey) == 0 && len(c.SignKey) == 0 {
		return fmt.Errorf("%w: no \"current\" generation", ErrMalformed)
	}
	seen := map[string]bool{}
	check := func(where string, g Generation) error {
		if len(g.CryptKey) < keyBytes || len(g.SignKey) < keyBytes {
			return fmt.Errorf("%w: %s: crypt_key has %d bytes and sign_key %d; each needs at least %d", ErrMalformed, where, len(g.CryptKey), len(g.SignKey), keyBytes)
		}
		if g.ID == "" {
			return nil
		}
		if !validID(g.ID) {
			return fmt.Errorf("%w: %s: id %q: use 1-32 characters of [A-Za-z0-9_-]", ErrMalformed, where, g.ID)
		}
		if seen[g.ID] {
			return fmt.Errorf("%w: %s: id %q is used twice", ErrMalformed, where, g.ID)
		}
		seen[g.ID] = true
		return nil
	}
	if err := check("current", c); err != nil {
		return err
	}
	for i, g := range f.Previous {
		if err := check(fmt.Sprintf("previous[%d]", i), g); err != nil {
			return err
		}
	}
	return nil
}

// validID is core's rule for key ids.
func validID(id string) bool {
	if len(id) == 0 || len(id) > 32 {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// encode is the file's bytes on disk.
func (f *File) encode() ([]byte, error) {
	b, err := json.Marshal(f)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// ceilSecond rounds t up to a whole second in UTC: the file stays readable,
// and a retire time is never earlier than the expiry it stands for.
func ceilSecond(t time.Time) time.Time {
	t = t.UTC()
	if r := t.Truncate(time.Second); !r.Equal(t) {
		return r.Add(time.Second)
	}
	return t.Round(0)
}
