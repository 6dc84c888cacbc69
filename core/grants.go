package core

import (
	"context"
	"fmt"
)

// grantType is one row of the grant registry: everything the token
// endpoint, client validation and the metadata know about a grant type.
// Adding a grant is one file holding its row and handler, and one entry in
// builtinGrants.
type grantType struct {
	name string
	// required are the parameters the grant cannot run without; the
	// token endpoint refuses a request lacking one (invalid_request)
	// before the handler runs.
	required []string
	// public: a public client (client_id alone) may use the grant.
	public bool
	// byDefault: a client registered without a grant type list may use it.
	byDefault bool
	// redirect: a client allowed the grant needs a redirect URI.
	redirect bool
	// enabled reports whether a configuration switches the grant on; nil
	// means always. A server whose configuration leaves it off neither
	// offers it (grant_types_supported) nor serves it
	// (unsupported_grant_type), and registration refuses it.
	enabled func(*Config) bool
	// handle runs the grant for an authenticated client that may use it.
	handle func(s *Server, ctx context.Context, c *Client, f *params) (*tokenResult, *oauthError)
}

// grantRegistry is the table of grant types a server offers, in the order
// grant_types_supported lists them.
type grantRegistry struct {
	list   []*grantType
	byName map[string]*grantType
}

func newGrantRegistry(gts ...*grantType) *grantRegistry {
	r := &grantRegistry{byName: make(map[string]*grantType, len(gts))}
	for _, g := range gts {
		if r.byName[g.name] != nil {
			panic("oauth2kit: grant type " + g.name + " registered twice")
		}
		r.list = append(r.list, g)
		r.byName[g.name] = g
	}
	return r
}

func (r *grantRegistry) lookup(name string) *grantType { return r.byName[name] }

func (r *grantRegistry) names() []string {
	out := make([]string, len(r.list))
	for i, g := range r.list {
		out[i] = g.name
	}
	return out
}

// with returns a registry holding r's grants and more (tests; later
// features switched on by configuration).
func (r *grantRegistry) with(more ...*grantType) *grantRegistry {
	return newGrantRegistry(append(append([]*grantType(nil), r.list...), more...)...)
}

// enabledFor returns the registry of r's grants that cfg switches on (r
// itself when that is all of them).
func (r *grantRegistry) enabledFor(cfg *Config) *grantRegistry {
	on := make([]*grantType, 0, len(r.list))
	for _, g := range r.list {
		if g.enabled == nil || g.enabled(cfg) {
			on = append(on, g)
		}
	}
	if len(on) == len(r.list) {
		return r
	}
	return newGrantRegistry(on...)
}

// builtinGrants is every grant type the kit implements. It is filled in
// init: the handlers reach Client.AllowsGrant, which reads the registry,
// and a package-level initialiser would be a cycle.
var builtinGrants *grantRegistry

func init() {
	builtinGrants = newGrantRegistry(&codeGrant, &refreshGrant, &clientCredentialsGrant, &deviceGrant, &tokenExchangeGrant, &jwtBearerGrant)
}

// checkGrantTypes validates a client's grant type list against reg.
func (r *grantRegistry) checkGrantTypes(gts []string, public bool) error {
	for _, name := range gts {
		g := r.lookup(name)
		if g == nil {
			return fmt.Errorf("grant type %q is not supported", name)
		}
		if public && !g.public {
			return fmt.Errorf("%s needs a confidential client", name)
		}
	}
	return nil
}

// needsRedirect reports whether a client with grant type list gts (empty:
// the default grants) must register a redirect URI.
func (r *grantRegistry) needsRedirect(gts []string) bool {
	for _, g := range r.list {
		if allows(gts, g) && g.redirect {
			return true
		}
	}
	return false
}

// allows reports whether a grant type list (empty: the defaults) allows g.
func allows(gts []string, g *grantType) bool {
	if len(gts) == 0 {
		return g.byDefault
	}
	for _, n := range gts {
		if n == g.name {
			return true
		}
	}
	return false
}
