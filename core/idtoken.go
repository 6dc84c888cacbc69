package core

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"time"
)

// ScopeOpenID asks for an OpenID Connect authentication (an id_token).
const ScopeOpenID = "openid"

// oidcContext is what the server remembers of an OpenID Connect request
// and its authentication: sealed in the pending request while the user
// logs in (all of it), then in Grant.OIDC and RefreshToken.OIDC (what the
// id_token needs: nonce, auth_time, acr, amr, sid).
type oidcContext struct {
	Nonce    string   `json:"n,omitempty"`
	AuthTime int64    `json:"t,omitempty"`
	ACR      string   `json:"acr,omitempty"`
	AMR      []string `json:"amr,omitempty"`
	SID      string   `json:"sid,omitempty"`
	// Claim names the claims request parameter asked for, for the
	// id_token and for userinfo.
	ClaimsID []string `json:"ci,omitempty"`
	ClaimsUI []string `json:"cu,omitempty"`

	// Authorization request parameters handed to the app's pages; never
	// stored with a grant.
	Prompt        string `json:"p,omitempty"`
	MaxAge        int64  `json:"ma,omitempty"` // seconds+1; 0 = not sent
	LoginHint     string `json:"lh,omitempty"`
	IDTokenHint   string `json:"ih,omitempty"`
	UILocales     string `json:"ul,omitempty"`
	ClaimsLocales string `json:"cl,omitempty"`
	ACRValues     string `json:"av,omitempty"`
	Display       string `json:"d,omitempty"`
}

// forGrant keeps what the tokens need.
func (oc *oidcContext) forGrant() oidcContext {
	return oidcContext{Nonce: oc.Nonce, AuthTime: oc.AuthTime, ACR: oc.ACR, AMR: oc.AMR, SID: oc.SID, ClaimsID: oc.ClaimsID, ClaimsUI: oc.ClaimsUI}
}

func (oc *oidcContext) encode() string {
	b, err := json.Marshal(oc)
	if err != nil {
		return "" // cannot happen: strings and numbers only
	}
	return string(b)
}

func decodeOIDC(s string) (*oidcContext, error) {
	var oc oidcContext
	if s == "" {
		return nil, errors.New("empty")
	}
	if err := json.Unmarshal([]byte(s), &oc); err != nil {
		return nil, err
	}
	return &oc, nil
}

// wantsIDToken reports whether a grant of scope gets an id_token.
func (s *Server) wantsIDToken(scope string) bool {
	return s.cfg.OIDC.enabled() && hasScope(scope, ScopeOpenID)
}

// grantOIDC reads the OIDC context a store returned with a grant or a
// refresh token. A store that did not keep it fails the request: an
// id_token without the nonce and auth_time of its authentication would be
// wrong, and a silent one would be worse.
func (s *Server) grantOIDC(ctx context.Context, stored string) (*oidcContext, *oauthError) {
	oc, err := decodeOIDC(stored)
	if err != nil {
		s.log.ErrorContext(ctx, "oauth2kit: the Storage returned a grant without its OpenID Connect context (Grant.OIDC / RefreshToken.OIDC); no id_token issued", "err", err)
		return nil, oerr(500, ErrServerError, "the server could not complete the request")
	}
	return oc, nil
}

// grantIDToken is the id_token of a grant or refresh token of scope, ""
// when the scope has no openid (or OIDC is off); stored is its OIDC context.
func (s *Server) grantIDToken(ctx context.Context, c *Client, userID, scope, stored, access string, now time.Time, withNonce bool) (string, *oauthError) {
	if !s.wantsIDToken(scope) {
		return "", nil
	}
	oc, e := s.grantOIDC(ctx, stored)
	if e != nil {
		return "", e
	}
	return s.mintIDToken(ctx, c, userID, scope, oc, access, now, withNonce)
}

// mintIDToken signs the id_token of an authentication (OpenID Connect
// Core §2, §3.1.3.6): for the client c and its access token (at_hash).
// withNonce is false on refresh (§12.2: the nonce belongs to the
// authentication request, not to later tokens).
func (s *Server) mintIDToken(ctx context.Context, c *Client, userID, scope string, oc *oidcContext, access string, now time.Time, withNonce bool) (string, *oauthError) {
	sg := s.signing.Load().signer(s.fapiIDTokenAlg(c))
	if sg == nil {
		s.log.ErrorContext(ctx, "oauth2kit: no signing key for the client's id_token_signed_response_alg", "client_id", c.ID, "alg", c.IDTokenSignedResponseAlg)
		return "", oerr(500, ErrServerError, "the server has no key for the client's id_token algorithm")
	}
	o := newJSON(512)
	o.str("iss", s.cfg.Issuer)
	o.str("sub", userID)
	o.str("aud", c.ID)
	o.num("exp", now.Add(s.cfg.Lifetimes.IDToken).Unix())
	o.num("iat", now.Unix())
	o.num("auth_time", oc.AuthTime)
	if withNonce {
		o.strIf("nonce", oc.Nonce)
	}
	// azp is required only with several audiences; sending it always costs
	// nothing and some relying parties check it.
	o.str("azp", c.ID)
	if access != "" {
		h := sg.HalfHash().New()
		h.Write([]byte(access))
		sum := h.Sum(nil)
		o.str("at_hash", base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2]))
	}
	o.strIf("acr", oc.ACR)
	if len(oc.AMR) > 0 {
		o.strList("amr", oc.AMR)
	}
	o.strIf("sid", oc.SID)
	extra, err := s.idTokenClaims(ctx, userID, scope, oc.ClaimsID)
	if err != nil {
		s.log.ErrorContext(ctx, "oauth2kit: the claims source failed", "err", err)
		return "", oerr(500, ErrServerError, "the server could not complete the request")
	}
	for name, v := range extra {
		b, err := json.Marshal(v)
		if err != nil {
			continue // not JSON: left out rather than failing the login
		}
		o.key(name)
		o.b = append(o.b, b...)
	}
	tok, err := sg.Sign("JWT", o.bytes())
	if err != nil {
		s.log.ErrorContext(ctx, "oauth2kit: signing an id_token failed", "err", err, "kid", slog.StringValue(sg.KID()))
		return "", oerr(500, ErrServerError, "the server could not complete the request")
	}
	return tok, nil
}
