package core

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/oauth2kit/oauth2kit/core/internal/dpop"
	"github.com/oauth2kit/oauth2kit/core/internal/jose"
)

// DPoP configures sender-constrained tokens (RFC 9449): a client that
// sends a DPoP proof with its token request gets an access token bound to
// the proof's key (token_type DPoP, cnf.jkt), which a resource accepts
// only with a fresh proof of that key, so a stolen token is useless
// alone. Refresh tokens of public clients are bound too. Proof jtis are
// spent in the store's ReplayCache, so a proof is accepted once across
// every instance; New needs that capability.
type DPoP struct {
	Enabled bool
	// Algs are the proof algorithms accepted (dpop_signing_alg_values_supported);
	// default ES256, EdDSA, PS256, RS256.
	Algs []string
	// RequireNonce makes the token endpoint demand a server nonce
	// (use_dpop_nonce, RFC 9449 §8). Nonces are stateless — an HMAC of the
	// time period under a key derived from Config.Keys — so every instance
	// sharing the keys accepts the others' nonces, and they rotate every
	// NoncePeriod (default 5 min; the previous period's stays valid).
	RequireNonce bool
	NoncePeriod  time.Duration
}

// Error codes of RFC 9449 §5, §7.1, §8.
const (
	ErrInvalidDPoPProof = "invalid_dpop_proof"
	ErrUseDPoPNonce     = "use_dpop_nonce"
)

// dpopAlgsDefault is the default proof allow-list, in the order metadata
// advertises it: the compact, fast algorithms first.
var dpopAlgsDefault = []string{jose.ES256, jose.EdDSA, jose.PS256, jose.RS256}

func (s *Server) setupDPoP() error {
	c := &s.cfg.DPoP
	if !c.Enabled {
		return nil
	}
	if s.caps.replay == nil {
		return fmt.Errorf("%w (Config.DPoP: proofs must be accepted once across instances)", missing("ReplayCache"))
	}
	if len(c.Algs) == 0 {
		c.Algs = dpopAlgsDefault
	}
	for _, a := range c.Algs {
		if !slices.Contains(jose.Algorithms, a) {
			return fmt.Errorf("oauth2kit: Config.DPoP.Algs: %q is not one of %v", a, jose.Algorithms)
		}
	}
	if c.NoncePeriod <= 0 {
		c.NoncePeriod = 5 * time.Minute
	}
	if c.RequireNonce {
		key, err := deriveKey(s.cfg.Keys.SignKey, "dpop-nonce")
		if err != nil {
			return err
		}
		if s.dpopNonces, err = dpop.NewNonces(key, c.NoncePeriod); err != nil {
			return err
		}
	}
	return nil
}

// dpopChallenge is the DPoP challenge a resource offers beside Bearer
// (RFC 9449 §7.1), "" with DPoP off.
func (s *Server) dpopChallenge() string {
	if !s.cfg.DPoP.Enabled {
		return ""
	}
	return `DPoP algs="` + strings.Join(s.cfg.DPoP.Algs, " ") + `"`
}

// tokenProof checks the DPoP proof of a token request for client c and
// returns its key's thumbprint, "" when the request carries none (and the
// client may do without). With DPoP off the header is ignored, as a
// server that does not know DPoP would.
func (s *Server) tokenProof(w Responder, r Request, c *Client) (string, *oauthError) {
	if !s.cfg.DPoP.Enabled {
		if c.DPoPBoundAccessTokens {
			s.log.ErrorContext(r.Context(), "oauth2kit: a client requires DPoP but Config.DPoP is off", "client_id", c.ID)
			return "", oerr(400, ErrInvalidDPoPProof, "DPoP is not available")
		}
		return "", nil
	}
	h := r.Header("DPoP")
	switch {
	case len(h) == 0 && c.DPoPBoundAccessTokens:
		return "", oerr(400, ErrInvalidDPoPProof, "this client's tokens must be DPoP-bound: send a DPoP proof")
	case len(h) == 0:
		return "", nil
	case len(h) > 1:
		return "", oerr(400, ErrInvalidDPoPProof, "one DPoP proof per request")
	}
	p, e := s.checkProof(r.Context(), h[0], "POST", s.cfg.Issuer+s.cfg.Paths.Token, "", s.fapiAlgsFor(c, s.cfg.DPoP.Algs))
	if e != nil {
		if e.code == ErrUseDPoPNonce {
			w.SetHeader("DPoP-Nonce", s.dpopNonces.Issue(s.now()))
		}
		return "", e
	}
	if s.dpopNonces != nil {
		// A fresh nonce with every answer (RFC 9449 §8.2), so the client
		// rarely meets an expired one.
		w.SetHeader("DPoP-Nonce", s.dpopNonces.Issue(s.now()))
	}
	return p.JKT, nil
}

// checkProof verifies a proof for method and URL (and, at a resource, the
// access token it accompanies), demands the server nonce when configured,
// and spends the proof's jti in the replay cache.
func (s *Server) checkProof(ctx context.Context, proof, method, htu, token string, algs []string) (*dpop.Proof, *oauthError) {
	now := s.now()
	p, err := dpop.Verify(proof, dpop.Check{Algs: algs, Method: method, URL: htu, AccessToken: token, Now: now})
	if err != nil {
		return nil, oerr(400, ErrInvalidDPoPProof, strings.TrimPrefix(err.Error(), "dpop: "))
	}
	if s.dpopNonces != nil && !s.dpopNonces.Valid(p.Nonce, now) {
		return nil, oerr(400, ErrUseDPoPNonce, "use the server's DPoP nonce")
	}
	// The key names the jti's owner: another key's proof with the same jti
	// is another proof. Hashed, so the record is bounded whatever the jti.
	sum := sha256.Sum256([]byte(p.JKT + "|" + p.JTI))
	key := "dpop|" + base64.RawURLEncoding.EncodeToString(sum[:])
	// Kept past the proof's acceptance window, so it cannot be replayed
	// while iat still passes.
	fresh, err := s.caps.replay.Remember(ctx, key, now, p.IssuedAt.Add(dpop.MaxAge+dpop.MaxFuture+time.Second))
	if err != nil {
		s.log.ErrorContext(ctx, "oauth2kit: recording a DPoP proof failed", "err", err)
		return nil, storageError(err)
	}
	if !fresh {
		return nil, oerr(400, ErrInvalidDPoPProof, "the proof was used before")
	}
	return p, nil
}

// checkBinding enforces a token's binding at a resource (RFC 9449 §7):
// a bound token only with the DPoP scheme and a proof of its key for this
// request; the DPoP scheme only with a bound token. audience is the
// resource the request is for, whose origin the proof's htu names.
func (s *Server) checkBinding(r Request, tok, scheme, audience string, info *TokenInfo) *ResourceError {
	dpopScheme := scheme == "DPoP"
	switch {
	case info.JKT == "" && !dpopScheme:
		return nil
	case info.JKT == "":
		return s.dpopError(401, ErrInvalidToken, "the access token is not DPoP-bound")
	case !dpopScheme:
		// A bound token presented as a bearer token: whoever holds it
		// without the key is refused (R68).
		return s.resourceError(401, ErrInvalidToken, "", false, errors.New("a DPoP-bound token sent as a bearer token"))
	}
	h := r.Header("DPoP")
	if len(h) != 1 {
		return s.dpopError(401, ErrInvalidDPoPProof, "one DPoP proof is required")
	}
	p, e := s.checkProof(r.Context(), h[0], r.Method(), s.resourceURL(audience, r.Path()), tok, s.cfg.DPoP.Algs)
	if e != nil {
		if e.status >= 500 {
			return &ResourceError{Status: e.status, Body: []byte(`{"error":"temporarily_unavailable"}`), Err: errors.New(e.desc)}
		}
		re := s.dpopError(401, e.code, e.desc)
		if e.code == ErrUseDPoPNonce {
			re.nonce = s.dpopNonces.Issue(s.now())
		}
		return re
	}
	if p.JKT != info.JKT {
		return s.dpopError(401, ErrInvalidDPoPProof, "the proof is not made with the token's key")
	}
	if e := s.fapiResourceAlg(r.Context(), info.ClientID, p.Alg); e != nil {
		return e
	}
	return nil
}

// fapiResourceAlg refuses a proof whose algorithm FAPI 2.0 does not allow
// (§5.4.1) on a token of a FAPI 2.0 client. The client is looked up only
// for such an algorithm, so the common case costs nothing.
func (s *Server) fapiResourceAlg(ctx context.Context, clientID, alg string) *ResourceError {
	if slices.Contains(fapiAlgs, alg) {
		return nil
	}
	// (Under the server-wide profile Config.DPoP.Algs holds FAPI
	// algorithms only: such a proof was refused already.)
	c, err := s.getClient(ctx, clientID)
	switch {
	case errors.Is(err, ErrNotFound):
		// A token whose client is gone: its other checks decide.
	case err != nil:
		s.log.ErrorContext(ctx, "oauth2kit: reading a token's client failed", "err", err)
		return &ResourceError{Status: 503, Body: []byte(`{"error":"temporarily_unavailable"}`), Err: err}
	case s.fapi(c):
		return s.dpopError(401, ErrInvalidDPoPProof, "FAPI 2.0: sign proofs with PS256, ES256 or EdDSA")
	}
	return nil
}

// resourceURL is the URL a proof at the resource names: the resource's
// origin (the audience, or the issuer for the default audience) and the
// request's path. The Host header is not trusted for it: behind proxies
// it names anything.
func (s *Server) resourceURL(audience, path string) string {
	base := audience
	if base == "" || base == s.cfg.Audience {
		base = s.cfg.Issuer
	}
	u, err := url.Parse(base)
	if err != nil {
		return ""
	}
	return u.Scheme + "://" + u.Host + path
}

// dpopError is a refusal at a resource in the DPoP scheme's words: the
// DPoP challenge first (the client used DPoP), then Bearer.
func (s *Server) dpopError(status int, code, desc string) *ResourceError {
	o := newJSON(128)
	o.str("error", code)
	o.str("error_description", desc)
	return &ResourceError{
		Status: status,
		WWWAuthenticate: s.dpopChallenge() + `, error="` + code + `", error_description="` + safeDescription(desc) + `", ` +
			`Bearer realm="` + safeDescription(s.cfg.Realm) + `"`,
		Body: o.bytes(),
		Err:  errors.New(desc),
	}
}
