package core

import (
	"context"
	"encoding/json"
	"slices"
)

// ClaimsSource supplies user claims (OpenID Connect Core §5.1) to the
// userinfo endpoint. The app implements it over its user store.
type ClaimsSource interface {
	// Claims returns claims of the user for the granted scopes; requested
	// lists claim names asked for beyond them (the claims request
	// parameter), nil when none. The server passes on only what the
	// scopes (StandardClaims) and the request allow, so returning more
	// is harmless; sub, iss and aud are the server's and are ignored.
	// An error fails the request with server_error.
	Claims(ctx context.Context, userID string, scopes, requested []string) (map[string]any, error)
}

// ClaimsFunc adapts a function to ClaimsSource.
type ClaimsFunc func(ctx context.Context, userID string, scopes, requested []string) (map[string]any, error)

// Claims calls f.
func (f ClaimsFunc) Claims(ctx context.Context, userID string, scopes, requested []string) (map[string]any, error) {
	return f(ctx, userID, scopes, requested)
}

// StandardClaims maps the standard scopes to the claims they release
// (OpenID Connect Core §5.4).
var StandardClaims = map[string][]string{
	"profile": {"name", "family_name", "given_name", "middle_name", "nickname", "preferred_username",
		"profile", "picture", "website", "gender", "birthdate", "zoneinfo", "locale", "updated_at"},
	"email":   {"email", "email_verified"},
	"address": {"address"},
	"phone":   {"phone_number", "phone_number_verified"},
}

// claimsSupported lists every claim the server may release, for discovery.
func claimsSupported() []string {
	out := []string{"sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "azp", "at_hash", "sid"}
	for _, sc := range []string{"profile", "email", "address", "phone"} {
		out = append(out, StandardClaims[sc]...)
	}
	return out
}

// UserInfo is the OpenID Connect userinfo endpoint (Core §5.3): GET or
// POST with an access token granted the openid scope.
func (s *Server) UserInfo(w Responder, r Request) { s.serve(&epUserInfo, w, r) }

var epUserInfo = endpoint{field: "Paths.UserInfo", path: func(c *Config) *string { return &c.Paths.UserInfo }, def: "/oauth2/userinfo",
	methods: []string{"GET", "HEAD", "POST"}, allow: hdrAllowGetHeadPost, meta: "userinfo_endpoint", serve: (*Server).userInfo}

func (s *Server) userInfo(w Responder, r Request) {
	// userinfo is the default audience's: a token issued for another
	// resource (RFC 8707) is not accepted here.
	info, rerr := s.checkRequest(r, s.cfg.Audience, []string{ScopeOpenID})
	if rerr != nil {
		hdrNoStore.set(w)
		rerr.Write(w)
		return
	}
	if info.UserID == "" {
		// A client_credentials token has no end user to describe.
		s.resourceError(403, ErrInsufficientScope, ScopeOpenID, false, nil).Write(w)
		return
	}
	body, err := s.userClaims(r.Context(), info.UserID, info.Scope, splitClaims(info.userinfoClaims))
	if err != nil {
		s.log.ErrorContext(r.Context(), "oauth2kit: the claims source failed", "err", err)
		sendError(w, oerr(500, ErrServerError, "the server could not complete the request"), false)
		return
	}
	sendJSON(w, 200, body)
}

// userClaims is the JSON object of sub and the claims scope (and
// requested) release for the user.
func (s *Server) userClaims(ctx context.Context, userID, scope string, requested []string) ([]byte, error) {
	claims := map[string]any{}
	if src := s.cfg.OIDC.Claims; src != nil {
		scopes, _ := parseScope(scope)
		got, err := src.Claims(ctx, userID, scopes, requested)
		if err != nil {
			return nil, err
		}
		for name, v := range got {
			if releasedBy(scopes, name) || slices.Contains(requested, name) {
				claims[name] = v
			}
		}
	}
	for _, reserved := range []string{"iss", "aud"} {
		delete(claims, reserved)
	}
	claims["sub"] = userID
	return json.Marshal(claims)
}

func releasedBy(scopes []string, claim string) bool {
	for _, sc := range scopes {
		if slices.Contains(StandardClaims[sc], claim) {
			return true
		}
	}
	return false
}
