package keyfile_test

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/oauth2kit/oauth2kit/core"
	"github.com/oauth2kit/oauth2kit/core/keyfile"
	"github.com/oauth2kit/oauth2kit/core/memstore"
)

// Every instance calls LoadOrCreate on the same path at start: the first
// creates the file, the others (also when they start at the same moment)
// read it, so they all mint and accept the same tokens.
func ExampleLoadOrCreate() {
	dir, err := os.MkdirTemp("", "keyfile-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "oauth2kit.keys")

	kf, err := keyfile.LoadOrCreate(path) // creates the file
	if err != nil {
		panic(err)
	}
	other, err := keyfile.LoadOrCreate(path) // another instance: reads it
	if err != nil {
		panic(err)
	}
	fi, _ := os.Stat(path)
	fmt.Println(fi.Mode().Perm(), other.Current.ID == kf.Current.ID, len(kf.Current.CryptKey), len(kf.Current.SignKey))

	cfg := core.Config{Issuer: "https://auth.example.com"}
	kf.Apply(&cfg) // Keys and VerifyKeys
	_, err = core.New(cfg, memstore.New(), noLogin{})
	fmt.Println(err, cfg.Keys.ID == kf.Current.ID)

	// Printing or logging the file shows no key material.
	fmt.Println(fmt.Sprint(kf.Current) == "keyfile.Generation{ID:"+kf.Current.ID+" CryptKey:[redacted] SignKey:[redacted] Created:"+kf.Current.Created.Format(time.RFC3339)+"}")
	// Output:
	// -rw------- true 32 32
	// <nil> true
	// true
}

// Rotate makes a fresh generation current and keeps the old one, accepted
// for verification, until every token it could have minted has expired
// (KeepFor of the servers' configuration: 30 days with core's defaults).
// Then restart the instances; Prune deletes the generation once retired.
func ExampleRotate() {
	dir, err := os.MkdirTemp("", "keyfile-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "oauth2kit.keys")
	first, err := keyfile.LoadOrCreate(path)
	if err != nil {
		panic(err)
	}

	keepFor := keyfile.KeepFor(core.Config{}) // core's defaults
	kf, err := keyfile.Rotate(path, keepFor)
	if err != nil {
		panic(err)
	}
	old := kf.Previous[0]
	fmt.Println(keepFor, kf.Current.ID != first.Current.ID, old.ID == first.Current.ID)
	fmt.Println(time.Until(old.RetireAfter).Round(time.Hour))

	cfg := core.Config{Issuer: "https://auth.example.com"}
	kf.Apply(&cfg)
	fmt.Println(cfg.Keys.ID == kf.Current.ID, len(cfg.VerifyKeys), cfg.VerifyKeys[0].ID == old.ID)

	// Nothing has retired yet: Prune keeps the old generation.
	kf, err = keyfile.Prune(path)
	fmt.Println(len(kf.Previous), err)
	// Output:
	// 720h0m0s true true
	// 720h0m0s
	// true 1 true
	// 1 <nil>
}
