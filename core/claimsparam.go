package core

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
)

// maxRequestedClaims bounds the claim names of one claims request.
const maxRequestedClaims = 32

// parseClaimsParam reads the claims request parameter (OpenID Connect
// Core §5.5): the names requested for the id_token and for userinfo. The
// kit releases only what the claims source returns for them; values,
// essential and values constraints are the app's concern (it gets the
// names) and are not enforced.
func parseClaimsParam(raw string) (idToken, userinfo []string, ok bool) {
	if raw == "" {
		return nil, nil, true
	}
	var req map[string]json.RawMessage
	if len(raw) > 4096 || json.Unmarshal([]byte(raw), &req) != nil {
		return nil, nil, false
	}
	names := func(m json.RawMessage) ([]string, bool) {
		if len(m) == 0 || string(m) == "null" {
			return nil, true
		}
		var obj map[string]json.RawMessage
		if json.Unmarshal(m, &obj) != nil || len(obj) > maxRequestedClaims {
			return nil, false
		}
		out := make([]string, 0, len(obj))
		for k := range obj {
			if k == "" || len(k) > 64 || !printableASCII(k) {
				return nil, false
			}
			out = append(out, k)
		}
		return out, true
	}
	var ok1, ok2 bool
	idToken, ok1 = names(req["id_token"])
	userinfo, ok2 = names(req["userinfo"])
	return idToken, userinfo, ok1 && ok2
}

// idTokenClaims returns the extra claims the id_token carries: those the
// claims request asked for in it, as the claims source gives them (never
// the ones the kit sets itself).
func (s *Server) idTokenClaims(ctx context.Context, userID, scope string, requested []string) (map[string]any, error) {
	if len(requested) == 0 || s.cfg.OIDC.Claims == nil {
		return nil, nil
	}
	scopes, _ := parseScope(scope)
	got, err := s.cfg.OIDC.Claims.Claims(ctx, userID, scopes, requested)
	if err != nil {
		return nil, err
	}
	out := map[string]any{}
	for _, name := range requested {
		if v, ok := got[name]; ok && !reservedIDClaim(name) {
			out[name] = v
		}
	}
	return out, nil
}

func reservedIDClaim(name string) bool {
	switch name {
	case "iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "azp", "at_hash", "c_hash", "acr", "amr", "sid", "nbf", "jti":
		return true
	}
	return false
}

// extraClaims are the claim names the claims request parameter of p asks
// for that its scopes do not release: the consent page must show them (a
// remembered consent covers scopes only).
func extraClaims(p *pending) []string {
	if p.oidc == nil {
		return nil
	}
	scopes, _ := parseScope(p.scope)
	var out []string
	for _, names := range [][]string{p.oidc.ClaimsID, p.oidc.ClaimsUI} {
		for _, n := range names {
			if !releasedBy(scopes, n) && !reservedIDClaim(n) && !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
	}
	slices.Sort(out)
	return out
}

// joinClaims and splitClaims carry claim names inside tokens.
func joinClaims(names []string) string { return strings.Join(names, " ") }

func splitClaims(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Fields(s)
}

// OfflineAccessOnly is a refresh policy (OIDC.RefreshPolicy) after OpenID
// Connect Core §11: a grant with the openid scope gets a refresh token only
// when offline_access was granted too; other grants as the client allows.
func OfflineAccessOnly(_ *Client, scope string) bool {
	return !hasScope(scope, ScopeOpenID) || hasScope(scope, "offline_access")
}

// userinfoClaimsOf reads the userinfo claim names from a grant's OIDC
// context ("" when none, or no context).
func userinfoClaimsOf(stored string) string {
	if stored == "" {
		return ""
	}
	oc, err := decodeOIDC(stored)
	if err != nil {
		return ""
	}
	return joinClaims(oc.ClaimsUI)
}
