package demo

import (
	"context"
	"errors"
	"flag"
	"io"
	"path/filepath"
	"slices"
	"testing"

	"github.com/oauth2kit/oauth2kit/core"
	"github.com/oauth2kit/oauth2kit/core/memstore"
	gormstore "github.com/oauth2kit/oauth2kit/storage/gorm"
)

func TestParseInterspersed(t *testing.T) {
	for _, tc := range []struct {
		args []string
		db   string
		pos  []string
	}{
		{[]string{"ID", "-db", "x"}, "x", []string{"ID"}},
		{[]string{"-db", "x", "ID"}, "x", []string{"ID"}},
		{[]string{"-db", "x", "--", "-dashid"}, "x", []string{"-dashid"}},
		{[]string{"--", "-dashid", "-db", "y"}, "d", []string{"-dashid", "-db", "y"}},
		{[]string{"a", "--", "-b"}, "d", []string{"a", "-b"}},
		{nil, "d", nil},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		db := fs.String("db", "d", "")
		pos, err := parseInterspersed(fs, tc.args)
		if err != nil || *db != tc.db || !slices.Equal(pos, tc.pos) {
			t.Errorf("%q: got db %q, positional %q, err %v; want db %q, positional %q", tc.args, *db, pos, err, tc.db, tc.pos)
		}
	}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.String("db", "d", "")
	if _, err := parseInterspersed(fs, []string{"-dashid"}); err == nil {
		t.Error("an unknown flag without \"--\" parsed")
	}
}

// rotateSecret works on any client registry: through SetClientSecretHash
// where the store has it (gormstore, atomic), else GetClient + SaveClient
// (memstore). Either way the old secret stops verifying, the new one
// verifies, nothing else of the client changes, and a public or unknown
// client is refused.
func TestRotateSecret(t *testing.T) {
	ctx := context.Background()
	db, err := OpenDB(filepath.Join(t.TempDir(), "rot.db"))
	if err != nil {
		t.Fatal(err)
	}
	if sqlDB, err := db.DB(); err == nil {
		t.Cleanup(func() { _ = sqlDB.Close() })
	}
	gs := gormstore.New(db)
	if err := gs.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	for name, reg := range map[string]registry{"gormstore": gs, "memstore": memstore.New()} {
		t.Run(name, func(t *testing.T) {
			if _, isSetter := reg.(secretSetter); isSetter != (name == "gormstore") {
				t.Fatalf("%s: SetClientSecretHash available = %v", name, isSetter)
			}
			c, old, err := core.NewClient(core.ClientSpec{Name: "App", RedirectURIs: []string{"https://a.example/cb"}, Scopes: []string{"read"}})
			if err != nil {
				t.Fatal(err)
			}
			if err := reg.SaveClient(ctx, c); err != nil {
				t.Fatal(err)
			}
			secret, err := rotateSecret(ctx, reg, c.ID)
			if err != nil {
				t.Fatalf("rotateSecret: %v", err)
			}
			got, err := reg.GetClient(ctx, c.ID)
			if err != nil {
				t.Fatal(err)
			}
			if secret == "" || secret == old || !core.VerifySecret(got.SecretHash, secret) || core.VerifySecret(got.SecretHash, old) {
				t.Errorf("after rotation: the new secret verifies %v, the old one %v", core.VerifySecret(got.SecretHash, secret), core.VerifySecret(got.SecretHash, old))
			}
			if got.Name != c.Name || !slices.Equal(got.RedirectURIs, c.RedirectURIs) || !slices.Equal(got.Scopes, c.Scopes) {
				t.Errorf("rotation changed the client: %+v", got)
			}
			pub, _, err := core.NewClient(core.ClientSpec{Name: "Native", RedirectURIs: []string{"http://127.0.0.1/cb"}, Public: true})
			if err != nil {
				t.Fatal(err)
			}
			if err := reg.SaveClient(ctx, pub); err != nil {
				t.Fatal(err)
			}
			if _, err := rotateSecret(ctx, reg, pub.ID); err == nil {
				t.Error("rotateSecret gave a public client a secret")
			}
			if _, err := rotateSecret(ctx, reg, "no-such-client"); !errors.Is(err, core.ErrNotFound) {
				t.Errorf("rotateSecret of an unknown client: %v, want ErrNotFound", err)
			}
		})
	}
}
