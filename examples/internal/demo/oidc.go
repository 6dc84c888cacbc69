package demo

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"

	"github.com/oauth2kit/oauth2kit/core"
	"github.com/oauth2kit/oauth2kit/core/keyfile"
)

// demoScopes are the server's scopes: the API's and OpenID Connect's.
var demoScopes = []string{"read", "write", "admin", core.ScopeOpenID, "profile", "email", "offline_access"}

// PublishAhead is how long "keys rotate" publishes a key before it signs
// (the server's OIDC.PublishAhead; the JWKS max-age is a sixth of it).
const PublishAhead = time.Hour

// keepSigned is how long a replaced signing key stays published: the
// longest lifetime of what it signs (id_tokens and access tokens, 1 hour
// by default), plus a margin for clocks.
const keepSigned = time.Hour + 5*time.Minute

// demoClaims is the demo user's profile (EXAMPLES.md, OpenID Connect).
var demoClaims = core.ClaimsFunc(func(_ context.Context, user string, _, _ []string) (map[string]any, error) {
	if user != DemoUser {
		return nil, nil
	}
	return map[string]any{
		"name": "Demo User", "preferred_username": DemoUser,
		"email": "demo@example.com", "email_verified": true,
	}, nil
})

// loadKeys opens (or creates) the key file and gives it signing keys if it
// has none; instances starting together end up with the same ones (the
// change is made under the file's lock).
func loadKeys(path string) (*keyfile.File, error) {
	if _, err := keyfile.LoadOrCreate(path); err != nil {
		return nil, err
	}
	return keyfile.Update(path, func(f *keyfile.File) error {
		_, err := f.EnsureSigningKeys(time.Now())
		return err
	})
}

// reloadSigningKeys reads the key file every interval and installs its
// signing set as of now.
func reloadSigningKeys(ctx context.Context, path string, srv *core.Server, every time.Duration, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	var last []string
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		kf, err := keyfile.Load(path)
		if err == nil {
			var keys []core.SigningKey
			if keys, err = kf.SigningKeysAt(time.Now()); err == nil {
				err = srv.SetSigningKeys(keys)
				if now := describe(keys); err == nil && !slices.Equal(now, last) {
					log.Info("demo: signing keys loaded", "keys", now)
					last = now
				}
			}
		}
		if err != nil {
			log.Warn("demo: reloading signing keys failed; keeping the current ones", "err", err)
		}
	}
}

func describe(keys []core.SigningKey) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k.ID + " " + k.Alg + " " + k.State.String()
	}
	return out
}

const keysUsage = `usage:
  keys list   [-keys FILE]   each signing key's kid, alg and state
  keys rotate [-keys FILE]   publish a next key per algorithm; it signs after the publish-ahead time (1h)`

func keysCommand(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "list" && args[0] != "rotate") {
		fmt.Fprintln(stderr, keysUsage)
		return 2
	}
	fs := flag.NewFlagSet("keys "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	dsn := fs.String("db", "oauth2kit-demo.db", "SQLite file the key file sits beside by default")
	path := fs.String("keys", "", "key file (default oauth2kit-demo.keys next to a SQLite file)")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	p := defaultKeys(*dsn, *path)
	kf, err := keyfile.Load(p)
	if err != nil {
		fmt.Fprintln(stderr, "error:", err)
		return 1
	}
	if args[0] == "rotate" {
		if kf, err = keyfile.Update(p, func(f *keyfile.File) error {
			if _, err := f.EnsureSigningKeys(time.Now()); err != nil {
				return err
			}
			return f.RotateSigningKeys(time.Now(), PublishAhead, keepSigned)
		}); err != nil {
			fmt.Fprintln(stderr, "error:", err)
			return 1
		}
	}
	keys, err := kf.SigningKeysAt(time.Now())
	if err != nil {
		fmt.Fprintln(stderr, "error:", err)
		return 1
	}
	for _, k := range keys {
		fmt.Fprintf(stdout, "%s\t%s\t%s\n", k.ID, k.Alg, k.State)
	}
	return 0
}
