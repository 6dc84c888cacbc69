package keyfile_test

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oauth2kit/oauth2kit/core"
	"github.com/oauth2kit/oauth2kit/core/keyfile"
	"github.com/oauth2kit/oauth2kit/core/memstore"
)

func statesAt(t *testing.T, f *keyfile.File, now time.Time) map[string]core.KeyState {
	t.Helper()
	keys, err := f.SigningKeysAt(now)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]core.KeyState{}
	for _, k := range keys {
		out[k.ID] = k.State
	}
	return out
}

// A rotation publishes the next key at once, lets it sign from
// NotBefore, keeps the old one published until RetireAfter, then drops it;
// every step is what the file and the clock say, so instances reading the
// same file agree.
func TestSigningKeyRotation(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	f, err := keyfile.New()
	if err != nil {
		t.Fatal(err)
	}
	if added, err := f.EnsureSigningKeys(t0); err != nil || !added || len(f.SigningKeys) != 3 {
		t.Fatalf("EnsureSigningKeys: %v %v %d", added, err, len(f.SigningKeys))
	}
	if f.SigningKeys[0].Alg != core.AlgRS256 || f.SigningKeys[1].Alg != core.AlgES256 || f.SigningKeys[2].Alg != core.AlgEdDSA || len(f.SigningKeys[0].KID) != 43 {
		t.Fatalf("default keys %v", f.SigningKeys)
	}
	if added, _ := f.EnsureSigningKeys(t0); added {
		t.Fatal("EnsureSigningKeys added keys to a file that has some")
	}
	oldRS := f.SigningKeys[0].KID
	if err := f.RotateSigningKeys(t0, time.Hour, 2*time.Hour); err != nil {
		t.Fatal(err)
	}
	if len(f.SigningKeys) != 6 {
		t.Fatalf("%d keys after a rotation, want 6", len(f.SigningKeys))
	}
	newRS := f.SigningKeys[3].KID
	// The file round-trips through its JSON form.
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	if f, err = keyfile.Parse(b); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		at       time.Duration
		old, new core.KeyState
		gone     bool
	}{
		{0, core.KeySigning, core.KeyPublished, false},
		{59 * time.Minute, core.KeySigning, core.KeyPublished, false},
		{time.Hour, core.KeyRetired, core.KeySigning, false},
		{3 * time.Hour, core.KeyRetired, core.KeySigning, false},
		{3*time.Hour + time.Second, 0, core.KeySigning, true},
	} {
		st := statesAt(t, f, t0.Add(c.at))
		if _, present := st[oldRS]; present == c.gone || (!c.gone && st[oldRS] != c.old) || st[newRS] != c.new {
			t.Errorf("at +%v: old %v (present %v), new %v; want old %v (gone %v), new %v", c.at, st[oldRS], !c.gone, st[newRS], c.old, c.gone, c.new)
		}
	}
	// core accepts every set on the way.
	for _, d := range []time.Duration{0, time.Hour, 4 * time.Hour} {
		cfg := core.Config{Issuer: "https://as.example", Now: func() time.Time { return t0.Add(d) }}
		f.Apply(&cfg)
		if err := f.ApplySigning(&cfg); err != nil {
			t.Fatal(err)
		}
		if _, err := core.New(cfg, memstore.New(), noLogin{}); err != nil {
			t.Fatalf("at +%v: core.New: %v", d, err)
		}
	}
}

func TestSigningKeysOnDisk(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.json")
	if _, err := keyfile.LoadOrCreate(path); err != nil {
		t.Fatal(err)
	}
	f, err := keyfile.Update(path, func(f *keyfile.File) error { _, err := f.EnsureSigningKeys(time.Now()); return err })
	if err != nil || len(f.SigningKeys) != 3 {
		t.Fatalf("%v %v", err, f)
	}
	g, err := keyfile.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.SigningKeysAt(time.Now()); err != nil {
		t.Fatal(err)
	}
	if s := g.SigningKeys[0].String(); strings.Contains(s, `"d"`) {
		t.Fatalf("printed a private key: %s", s)
	}
	bad := keyfile.File{SigningKeys: []keyfile.SigningKey{{KID: "x", Alg: "ES256", State: "current", JWK: json.RawMessage(`{"kty":"EC"}`)}}}
	if _, err := bad.SigningKeysAt(time.Now()); err == nil {
		t.Fatal("a malformed JWK was accepted")
	}
}
