package demo

import (
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/base64"

	"github.com/oauth2kit/oauth2kit/core/keyfile"
)

// The key file (-keys) is the kit's core/keyfile format, created on first
// start by keyfile.LoadOrCreate, so instances started together on one file
// share its keys; keyfile.Rotate rotates it.

// demoSecret derives the demo client's secret from the key file, so every
// instance sharing the file can print it and only its hash is stored.
func demoSecret(kf *keyfile.File) string {
	b, err := hkdf.Key(sha256.New, kf.Current.SignKey, nil, "oauth2kit-demo/v1/demo-client-secret", 32)
	if err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}
