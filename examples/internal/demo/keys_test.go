package demo

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/oauth2kit/oauth2kit/core/keyfile"
)

// A key file the examples wrote before core/keyfile still starts the demo
// with the same keys, so the demo client's printed secret is unchanged.
// The want value is what the examples' own code derived from this file.
func TestOldKeyFileKeepsTheDemoSecret(t *testing.T) {
	path := filepath.Join(t.TempDir(), "oauth2kit-demo.keys")
	type key struct {
		ID       string `json:"id"`
		CryptKey []byte `json:"crypt_key"`
		SignKey  []byte `json:"sign_key"`
	}
	old, err := json.MarshalIndent(struct {
		Current key `json:"current"`
	}{key{"0a1b2c3d", bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)}}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(old, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	kf, err := keyfile.LoadOrCreate(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := demoSecret(kf), "_vg6yunaw9OTK5JdJqojfb1oxQxhq6vEzpvmNln3obE"; got != want {
		t.Errorf("demo secret %q, want %q", got, want)
	}
	if kf.Current.ID != "0a1b2c3d" {
		t.Errorf("key id %q", kf.Current.ID)
	}
	if data, _ := os.ReadFile(path); !bytes.Equal(data, append(old, '\n')) {
		t.Error("loading rewrote the old file")
	}
}

func TestDefaultKeys(t *testing.T) {
	for _, tc := range []struct{ dsn, keys, want string }{
		{"oauth2kit-demo.db", "", "oauth2kit-demo.keys"},
		{"/var/lib/demo/x.db", "", "/var/lib/demo/oauth2kit-demo.keys"},
		{"/var/lib/demo/x.db", "/etc/k", "/etc/k"},
		{"postgres://db/x", "", "oauth2kit-demo.keys"},
		{"mysql://db/x", "k.json", "k.json"},
	} {
		if got := defaultKeys(tc.dsn, tc.keys); got != filepath.FromSlash(tc.want) {
			t.Errorf("defaultKeys(%q, %q) = %q, want %q", tc.dsn, tc.keys, got, tc.want)
		}
	}
}
