package demo

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/oauth2kit/oauth2kit/core"
)

// multi is a repeatable string flag.
type multi []string

func (m *multi) String() string     { return strings.Join(*m, " ") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

const clientUsage = `usage:
  client add -db DSN [-keys FILE] -name NAME -redirect-uri URI [-redirect-uri URI2] [-public] [-scope "a b"]
             [-auth-method private_key_jwt (-jwks FILE | -jwks-uri URL)] [-require-dpop] [-require-par]
             [-post-logout-redirect-uri URI] [-backchannel-logout-uri URL]
  client list -db DSN
  client remove -db DSN [--] ID
  client rotate-secret -db DSN [--] ID`

// clientCommand manages registered clients; output is JSON on stdout.
func clientCommand(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, clientUsage)
		return 2
	}
	fs := flag.NewFlagSet("client "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	dsn := fs.String("db", "oauth2kit-demo.db", "SQLite file path, or postgres://… / mysql://… DSN")
	fs.String("keys", "", "key file (accepted for symmetry with the server; clients need no keys)")
	name := fs.String("name", "", "client name (add)")
	public := fs.Bool("public", false, "public client: no secret, PKCE required (add)")
	scope := fs.String("scope", "", "space-separated scopes the client may ask for (add)")
	atFormat := fs.String("access-token-format", "", "access token format: jwt for RFC 9068 JWTs (add; default: the server's opaque tokens)")
	idAlg := fs.String("id-token-alg", "", "id_token signing algorithm: RS256, ES256, PS256 or EdDSA (add; default RS256)")
	authMethod := fs.String("auth-method", "", "client authentication: private_key_jwt (with -jwks or -jwks-uri; add; default: a secret, or none with -public)")
	jwksFile := fs.String("jwks", "", "file holding the client's public JWK Set, for -auth-method private_key_jwt (add)")
	jwksURI := fs.String("jwks-uri", "", "https URL of the client's JWK Set, for -auth-method private_key_jwt (add)")
	requireDPoP := fs.Bool("require-dpop", false, "refuse the client access tokens not bound to a DPoP key (add)")
	requirePAR := fs.Bool("require-par", false, "refuse the client authorization requests it did not push first (add)")
	var redirects, postLogout, grantTypes multi
	fs.Var(&grantTypes, "grant-type", "grant type the client may use, repeatable (add; default authorization_code and refresh_token)")
	fs.Var(&redirects, "redirect-uri", "redirect URI, repeatable (add)")
	fs.Var(&postLogout, "post-logout-redirect-uri", "where RP-initiated logout may return to, repeatable (add)")
	backchannel := fs.String("backchannel-logout-uri", "", "where logout tokens are POSTed when a login session of the client ends (add)")
	positional, err := parseInterspersed(fs, args[1:])
	if err != nil {
		return 2
	}
	ctx := context.Background()
	st, closeDB, err := openStore(ctx, *dsn)
	if err != nil {
		fmt.Fprintln(stderr, "error:", err)
		return 1
	}
	defer closeDB()
	// The command needs the client registry capability, not this store:
	// any core.Storage that implements it would do.
	reg, ok := core.Storage(st).(registry)
	if !ok {
		fmt.Fprintln(stderr, "error: the store cannot manage clients (it lacks core.ClientRegistry)")
		return 1
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	fail := func(err error) int {
		fmt.Fprintln(stderr, "error:", err)
		return 1
	}
	oneID := func() (string, error) {
		if len(positional) != 1 {
			return "", errors.New("give exactly one client id")
		}
		return positional[0], nil
	}
	switch args[0] {
	case "add":
		spec := core.ClientSpec{Name: *name, RedirectURIs: redirects, Public: *public, GrantTypes: grantTypes,
			AccessTokenFormat: *atFormat, IDTokenSignedResponseAlg: *idAlg, PostLogoutRedirectURIs: postLogout,
			AuthMethod: *authMethod, JWKSURI: *jwksURI, DPoPBoundAccessTokens: *requireDPoP, RequirePAR: *requirePAR}
		if *jwksFile != "" {
			b, err := os.ReadFile(*jwksFile)
			if err != nil {
				return fail(err)
			}
			spec.JWKS = string(b)
		}
		if *scope != "" {
			spec.Scopes = strings.Fields(*scope)
		}
		spec.BackchannelLogoutURI = *backchannel
		c, secret, err := core.NewClient(spec)
		if err != nil {
			return fail(err)
		}
		if err := reg.SaveClient(ctx, c); err != nil {
			return fail(err)
		}
		out := map[string]string{"client_id": c.ID}
		if secret != "" {
			out["client_secret"] = secret
		}
		_ = enc.Encode(out)
	case "list":
		cs, err := reg.ListClients(ctx)
		if err != nil {
			return fail(err)
		}
		type row struct {
			ID           string   `json:"client_id"`
			Name         string   `json:"name"`
			RedirectURIs []string `json:"redirect_uris"`
			Public       bool     `json:"public"`
			Scopes       []string `json:"scopes"`
		}
		rows := []row{}
		for _, c := range cs {
			rows = append(rows, row{c.ID, c.Name, c.RedirectURIs, c.Public, c.Scopes})
		}
		_ = enc.Encode(rows)
	case "remove":
		id, err := oneID()
		if err != nil {
			return fail(err)
		}
		if err := reg.DeleteClient(ctx, id); err != nil {
			return fail(err)
		}
		_ = enc.Encode(map[string]string{"removed": id})
	case "rotate-secret":
		id, err := oneID()
		if err != nil {
			return fail(err)
		}
		secret, err := rotateSecret(ctx, reg, id)
		if err != nil {
			return fail(err)
		}
		_ = enc.Encode(map[string]string{"client_id": id, "client_secret": secret})
	default:
		fmt.Fprintln(stderr, clientUsage)
		return 2
	}
	return 0
}

// registry is a store with the client registry capability.
type registry interface {
	core.Storage
	core.ClientRegistry
}

// secretSetter is a store that replaces a client's secret hash alone, in
// one statement (gormstore.Store.SetClientSecretHash).
type secretSetter interface {
	SetClientSecretHash(ctx context.Context, id, hash string) error
}

// rotateSecret gives the confidential client id a new secret and returns
// it. With a store that can set the hash alone it does, atomically: a
// read-modify-write (GetClient, then SaveClient, an upsert) would bring
// back a client deleted in between, with a working secret, and undo any
// other change made to it meanwhile. Other registries get the
// read-modify-write.
func rotateSecret(ctx context.Context, reg registry, id string) (string, error) {
	c, err := reg.GetClient(ctx, id)
	if err != nil {
		return "", err
	}
	if c.Public {
		return "", errors.New("a public client has no secret")
	}
	secret, err := core.GenerateSecret()
	if err != nil {
		return "", err
	}
	h, err := core.HashSecret(secret)
	if err != nil {
		return "", err
	}
	if set, ok := reg.(secretSetter); ok {
		err = set.SetClientSecretHash(ctx, id, h)
	} else {
		c.SecretHash = h
		err = reg.SaveClient(ctx, c)
	}
	if err != nil {
		return "", err
	}
	return secret, nil
}

// parseInterspersed parses flags before and after positional arguments
// ("client remove ID -db x" and "client remove -db x ID" alike). "--" ends
// the flags: everything after it is positional, so an id that starts with
// '-' (imported ones may) can still be named.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}
