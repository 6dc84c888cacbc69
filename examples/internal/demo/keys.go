package demo

import (
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/oauth2kit/oauth2kit/core"
)

// keyFile is the on-disk key material: the current generation and older
// ones still accepted for verification (rotation: move "current" into
// "previous", generate a new "current").
type keyFile struct {
	Current  keyJSON   `json:"current"`
	Previous []keyJSON `json:"previous,omitempty"`
}

type keyJSON struct {
	ID       string `json:"id"`
	CryptKey []byte `json:"crypt_key"` // base64 in JSON
	SignKey  []byte `json:"sign_key"`
}

func newKeyJSON() (keyJSON, error) {
	k := keyJSON{CryptKey: make([]byte, 32), SignKey: make([]byte, 32)}
	id := make([]byte, 4)
	for _, b := range [][]byte{k.CryptKey, k.SignKey, id} {
		if _, err := rand.Read(b); err != nil {
			return k, err
		}
	}
	k.ID = hex.EncodeToString(id)
	return k, nil
}

// loadKeys reads the key file, creating it (mode 0600) with fresh random
// keys when it does not exist. Creation is exclusive, so two instances
// started together on one file end up with the same keys.
func loadKeys(path string) (*keyFile, error) {
	if kf, err := readKeys(path); !errors.Is(err, fs.ErrNotExist) {
		return kf, err
	}
	cur, err := newKeyJSON()
	if err != nil {
		return nil, err
	}
	kf := &keyFile{Current: cur}
	data, err := json.MarshalIndent(kf, "", "  ")
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return readKeys(path)
	}
	if err != nil {
		return nil, err
	}
	if _, err := f.Write(append(data, '\n')); err != nil {
		f.Close()
		return nil, err
	}
	return kf, f.Close()
}

func readKeys(path string) (*keyFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var kf keyFile
	if err := json.Unmarshal(data, &kf); err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	if len(kf.Current.CryptKey) < 32 || len(kf.Current.SignKey) < 32 {
		return nil, fmt.Errorf("key file %s: crypt_key and sign_key need 32 bytes", path)
	}
	return &kf, nil
}

func (kf *keyFile) apply(cfg *core.Config) {
	cfg.KeyID, cfg.CryptKey, cfg.SignKey = kf.Current.ID, kf.Current.CryptKey, kf.Current.SignKey
	for _, k := range kf.Previous {
		cfg.VerifyKeys = append(cfg.VerifyKeys, core.Keys{ID: k.ID, CryptKey: k.CryptKey, SignKey: k.SignKey})
	}
}

// demoSecret derives the demo client's secret from the key file, so every
// instance sharing the file can print it and only its hash is stored.
func (kf *keyFile) demoSecret() string {
	b, err := hkdf.Key(sha256.New, kf.Current.SignKey, nil, "oauth2kit-demo/v1/demo-client-secret", 32)
	if err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}
